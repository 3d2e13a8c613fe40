"""Routing: which narrow agent fixes a finding or an issue (None: a person must)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase

from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.labels import labelled_agent
from bot.repo_config import RepoConfig, Route

__all__ = ["DEFAULT_AGENTS", "Routing", "cannot_fix", "explain_route", "route"]

# When no rule of the repository matches: the built-in fixers for the built-in auditors,
# and for any other analyzer's finding with a fix marked safe, the fix itself.
DEFAULT_AGENTS = {"ruff": "ruff-fix", "ruff-format": "ruff-format"}
SARIF_FIX = "sarif-fix"


@dataclass(frozen=True)
class Routing:
    """The agent for an issue, or None with why no agent will fix it (None: no route)."""

    agent: str | None
    why: str | None = None


def route(
    finding: Finding | None,
    labels: Sequence[str],
    config: RepoConfig,
    known_agents: Collection[str],
) -> str | None:
    """The agent for an issue (see `explain_route`); None means "needs a human"."""
    return explain_route(finding, labels, config, known_agents).agent


def explain_route(
    finding: Finding | None,
    labels: Sequence[str],
    config: RepoConfig,
    known_agents: Collection[str],
) -> Routing:
    """The agent for an issue: an `agent:` label, else the first matching route, else defaults.

    Rules on analyzer, rule, category, path or severity need a finding; a route with only a `label`
    matcher can also route an issue a person filed. No agent means "needs a human". Agents
    unknown to the server's catalog are skipped wherever they are named, and so is a built-in
    fixer named for a finding it cannot fix (ruff-fix applies safe fixes only): the next
    route gets the finding, and with none left, `why` says what stopped the fixer.
    """
    refused: str | None = None
    candidates = [labelled_agent(labels, known_agents)]
    candidates += [
        rule.agent
        for rule in config.routes
        if rule.agent in known_agents and _matches(rule, finding, labels)
    ]
    if finding is not None:
        default = DEFAULT_AGENTS.get(finding.analyzer)
        if default is None and finding.edits and finding.fix == "safe":
            default = SARIF_FIX
        candidates.append(default if default in known_agents else None)
    for agent in candidates:
        if agent is None:
            continue
        why = cannot_fix(agent, finding)
        if why is None:
            return Routing(agent)
        refused = refused or why
    return Routing(None, refused)


def cannot_fix(agent: str, finding: Finding | None) -> str | None:
    """Why a built-in fixer cannot fix `finding`, or None when it can (or is not built in).

    Ruff says per finding whether it has a fix and whether that fix is safe; `ruff-fix`
    applies only safe ones, so anything else would be a task that changes nothing. `sarif-fix`
    applies a SARIF analyzer's own fix, only one marked safe.
    """
    if agent == SARIF_FIX and finding is not None:
        if not finding.edits:
            return (
                f"{finding.analyzer} gives no fix for {finding.rule}; `{SARIF_FIX}` has "
                "nothing to apply"
            )
        if finding.fix != "safe":
            return (
                f"{finding.analyzer}'s fix for {finding.rule} is not marked safe (by the rule or "
                "the operator's `safe_fixes`); route it to an agent or fix it by hand"
            )
        return None
    if agent != "ruff-fix" or finding is None:
        return None
    if finding.analyzer != "ruff":
        return f"`ruff-fix` fixes ruff's findings only, not {finding.analyzer} {finding.rule}"
    if finding.fix == "safe":
        return None
    only = " (only an unsafe one)" if finding.fix == "unsafe" else ""
    return f"ruff has no safe fix for {finding.rule}{only}; route it to an agent or fix it by hand"


def _matches(rule: Route, finding: Finding | None, labels: Sequence[str]) -> bool:
    if rule.label is not None and not any(fnmatchcase(label, rule.label) for label in labels):
        return False
    finding_matchers = (rule.analyzer, rule.rule, rule.category, rule.path, rule.severity)
    if finding is None:
        return rule.label is not None and all(m is None for m in finding_matchers)
    return (
        (rule.analyzer is None or fnmatchcase(finding.analyzer, rule.analyzer))
        and (rule.rule is None or fnmatchcase(finding.rule, rule.rule))
        and (rule.category is None or fnmatchcase(finding.category, rule.category))
        and (rule.path is None or path_matches(finding.path, rule.path))
        and (
            rule.severity is None
            or (finding.severity is not None and fnmatchcase(finding.severity, rule.severity))
        )
    )
