"""The verifier: one finding and the code after its fix -> resolved or not, and why."""

from __future__ import annotations

import pytest

from bot.agents.models import verify_fix
from bot.audit.findings import Finding
from bot.sandbox.models import ModelSandbox, Rule, Scenario
from tests.modelsandbox import KINDS, Kind, model_client

FINDING = Finding(
    analyzer="anthropic-agent",
    rule="correctness",
    category="correctness",
    path="app.py",
    start_line=1,
    end_line=1,
    message="[high] count is never checked for negative values: it slices from the end.",
    snippet="def total(prices, count):",
)
BEFORE = "def total(prices, count):\n    return sum(prices[:count])\n"
AFTER = "def total(prices, count):\n    if count < 0:\n        raise ValueError(count)\n"
RULE = Rule("negative-count", r"def \w+\(.*\bcount\b", unless="count < 0")


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("code_after", "resolved", "words"),
    [
        pytest.param(AFTER, True, "gone", id="fixed"),
        pytest.param(BEFORE, False, "still there", id="unchanged"),
    ],
)
async def test_the_verifier_says_whether_the_flagged_problem_is_gone(
    models: ModelSandbox, kind: Kind, code_after: str, resolved: bool, words: str
) -> None:
    """Resolved when the flagged pattern is gone from the code after the fix, else not."""
    models.scenario = Scenario([RULE])
    async with model_client(models, kind) as client:
        verdict = await verify_fix(client, FINDING, code_after)
    assert verdict.resolved is resolved
    assert words in verdict.reason and "Scripted verifier" in verdict.reason
    assert len(verdict.calls) == 1
    (request,) = models.requests
    assert request.files == ("app.py",) and request.schema_name == "verify_fix"
    assert "## Code after the fix" in request.prompt


async def test_an_unscripted_finding_is_not_called_resolved(models: ModelSandbox) -> None:
    """Without a script the sandbox refuses: resolved is false and the reason says so."""
    async with model_client(models) as client:
        verdict = await verify_fix(client, FINDING, AFTER)
    assert verdict.resolved is False
    assert "no script" in verdict.reason
