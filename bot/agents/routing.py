"""Routing: which narrow agent fixes a finding or an issue (None: a person must)."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from fnmatch import fnmatchcase

from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.labels import labelled_agent
from bot.repo_config import RepoConfig, Route

__all__ = ["DEFAULT_AGENTS", "route"]

# When no rule of the repository matches: the built-in fixers for the built-in auditors.
DEFAULT_AGENTS = {"ruff": "ruff-fix", "ruff-format": "ruff-format"}


def route(
    finding: Finding | None,
    labels: Sequence[str],
    config: RepoConfig,
    known_agents: Collection[str],
) -> str | None:
    """The agent for an issue: an `agent:` label, else the first matching route, else defaults.

    Rules on analyzer, rule, category, path or severity need a finding; a route with only a `label`
    matcher can also route an issue a person filed. None means "needs a human". Agents
    unknown to the server's catalog are skipped wherever they are named.
    """
    chosen = labelled_agent(labels, known_agents)
    if chosen is not None:
        return chosen
    for rule in config.routes:
        if rule.agent in known_agents and _matches(rule, finding, labels):
            return rule.agent
    if finding is not None:
        default = DEFAULT_AGENTS.get(finding.analyzer)
        if default in known_agents:
            return default
    return None


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
