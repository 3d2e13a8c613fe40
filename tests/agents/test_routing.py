"""Routing a finding or an issue to a narrow agent."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import pytest

from bot.agents.routing import Routing, explain_route, route
from bot.audit.findings import Edit, Finding
from bot.repo_config import RepoConfig, Route

KNOWN = frozenset({"ruff-fix", "ruff-format", "claude", "writer", "security"})

LINT = Finding("ruff", "E711", "lint", "src/app/views.py", 3, 3, "None", "x == None", fix="safe")
UNUSED = Finding("ruff", "F401", "lint", "tests/test_a.py", 1, 1, "unused", "import os", fix="safe")
TERNARY = Finding(
    "ruff", "SIM108", "lint", "src/app/views.py", 4, 7, "ternary", "if a:", fix="unsafe"
)
LONG = Finding("ruff", "E501", "lint", "src/app/views.py", 3, 3, "Line too long", "x = 1")
FORMAT = Finding("ruff-format", "format", "format", "src/app/views.py", 5, 6, "fmt", "x=1")
LLM = Finding("llm", "sql-injection", "security", "src/db.py", 9, 9, "unsafe", "q = f'{x}'")

ROUTES = RepoConfig(
    routes=[
        Route(rule="E*", path="src/**", agent="claude"),
        Route(category="security", agent="security"),
        Route(label="docs", agent="writer"),
        Route(analyzer="ruff", rule="F401", agent="not-in-catalog"),
        Route(analyzer="llm", label="urgent", agent="claude"),
    ]
)
DEFAULTS = RepoConfig()


@pytest.mark.parametrize(
    ("finding", "labels", "config", "expected"),
    [
        pytest.param(LINT, [], DEFAULTS, "ruff-fix", id="ruff-default"),
        pytest.param(FORMAT, [], DEFAULTS, "ruff-format", id="format-default"),
        pytest.param(LLM, [], DEFAULTS, None, id="unknown-analyzer-needs-human"),
        pytest.param(LINT, [], ROUTES, "claude", id="rule-and-path-glob-route"),
        pytest.param(UNUSED, [], ROUTES, "ruff-fix", id="route-to-unknown-agent-skipped"),
        pytest.param(LLM, [], ROUTES, "security", id="category-route"),
        pytest.param(LLM, ["urgent"], ROUTES, "security", id="first-matching-route-wins"),
        pytest.param(FORMAT, ["docs"], ROUTES, "writer", id="label-route-for-finding"),
        pytest.param(LINT, ["agent:writer"], ROUTES, "writer", id="agent-label-beats-routes"),
        pytest.param(LINT, ["agent:nobody"], ROUTES, "claude", id="unknown-agent-label-ignored"),
        pytest.param(
            LINT, ["agent:nobody", "agent:security"], ROUTES, "security", id="first-known-label"
        ),
        pytest.param(LINT, ["review-loop:fix"], DEFAULTS, "ruff-fix", id="fix-label-uses-rules"),
        pytest.param(None, ["review-loop:fix"], DEFAULTS, None, id="fix-label-no-finding"),
        pytest.param(
            None, ["review-loop:fix", "agent:claude"], DEFAULTS, "claude", id="fix-and-agent-label"
        ),
        pytest.param(None, ["agent:claude"], DEFAULTS, "claude", id="human-issue-agent-label"),
        pytest.param(None, ["docs"], ROUTES, "writer", id="label-only-route-for-human-issue"),
        pytest.param(None, ["urgent"], ROUTES, None, id="finding-matchers-need-a-finding"),
        pytest.param(
            LINT, [], RepoConfig(routes=[Route(agent="claude")]), "claude", id="catch-all-route"
        ),
        pytest.param(
            None, [], RepoConfig(routes=[Route(agent="claude")]), None, id="catch-all-no-finding"
        ),
    ],
)
def test_route(
    finding: Finding | None, labels: Sequence[str], config: RepoConfig, expected: str | None
) -> None:
    """Agent label if known, else first matching route to a known agent, else defaults."""
    assert route(finding, labels, config, KNOWN) == expected


def test_defaults_need_the_builtin_agents_in_the_catalog() -> None:
    """A server without the ruff fixers sends ruff findings to a person."""
    assert route(LINT, [], DEFAULTS, {"claude"}) is None


def test_a_severity_route_matches_model_findings_only() -> None:
    """`severity` matches a model finding's severity (glob); ruff findings have none."""
    from dataclasses import replace

    config = RepoConfig(
        routes=[Route(severity="high", agent="security"), Route(severity="*", agent="writer")]
    )
    high = replace(LLM, severity="high")
    low = replace(LLM, severity="low")
    assert route(high, [], config, KNOWN) == "security"
    assert route(low, [], config, KNOWN) == "writer"
    assert route(LINT, [], config, KNOWN) == "ruff-fix"


NO_SAFE_FIX = (
    "ruff has no safe fix for SIM108 (only an unsafe one); route it to an agent or fix it by hand"
)


@pytest.mark.parametrize(
    ("finding", "labels", "config", "expected"),
    [
        pytest.param(UNUSED, [], DEFAULTS, Routing("ruff-fix"), id="safe-fix-goes-to-ruff-fix"),
        pytest.param(TERNARY, [], DEFAULTS, Routing(None, NO_SAFE_FIX), id="unsafe-fix-only"),
        pytest.param(
            LONG,
            [],
            DEFAULTS,
            Routing(None, "ruff has no safe fix for E501; route it to an agent or fix it by hand"),
            id="no-fix-at-all",
        ),
        pytest.param(
            TERNARY,
            [],
            RepoConfig(routes=[Route(rule="SIM*", agent="ruff-fix"), Route(agent="claude")]),
            Routing("claude"),
            id="a-route-to-ruff-fix-it-cannot-use-falls-to-the-next-route",
        ),
        pytest.param(
            TERNARY,
            ["agent:ruff-fix"],
            DEFAULTS,
            Routing(None, NO_SAFE_FIX),
            id="its-own-agent-label-does-not-bring-it-back",
        ),
        pytest.param(
            FORMAT,
            [],
            RepoConfig(routes=[Route(agent="ruff-fix")]),
            Routing("ruff-format"),
            id="ruff-fix-takes-only-ruff-findings",
        ),
        pytest.param(None, ["agent:ruff-fix"], DEFAULTS, Routing("ruff-fix"), id="a-persons-issue"),
    ],
)
def test_routing_follows_fixability(
    finding: Finding | None, labels: Sequence[str], config: RepoConfig, expected: Routing
) -> None:
    """A finding without a safe fix is not given to `ruff-fix`: the next route gets it, or a
    person, told why."""
    assert explain_route(finding, labels, config, KNOWN) == expected


EDIT = Edit("app.js", 0, 3, "var", "let")
SARIF_SAFE = Finding(
    "semgrep", "no-var", "lint", "app.js", 1, 1, "var", "var x", fix="safe", edits=(EDIT,)
)
SARIF_UNSAFE = dataclasses.replace(SARIF_SAFE, fix="unsafe")
SARIF_NO_FIX = dataclasses.replace(SARIF_SAFE, fix=None, edits=())
WITH_SARIF = KNOWN | {"sarif-fix"}


def test_a_sarif_finding_with_a_safe_fix_goes_to_sarif_fix_by_default() -> None:
    assert explain_route(SARIF_SAFE, [], DEFAULTS, WITH_SARIF) == Routing("sarif-fix")


def test_a_sarif_fix_not_marked_safe_or_missing_goes_to_a_person() -> None:
    unsafe = explain_route(SARIF_UNSAFE, [], DEFAULTS, WITH_SARIF)
    assert unsafe.agent is None  # by default; a route can still send it to an agent
    routed = RepoConfig(routes=[Route(analyzer="semgrep", agent="sarif-fix")])
    why = explain_route(SARIF_UNSAFE, [], routed, WITH_SARIF)
    assert why.agent is None and why.why is not None and "not marked safe" in why.why
    none = explain_route(SARIF_NO_FIX, [], routed, WITH_SARIF)
    assert none.why == "semgrep gives no fix for no-var; `sarif-fix` has nothing to apply"
    other = RepoConfig(routes=[Route(analyzer="semgrep", agent="sarif-fix"),
                               Route(analyzer="semgrep", agent="claude")])  # fmt: skip
    assert explain_route(SARIF_NO_FIX, [], other, WITH_SARIF) == Routing("claude")
