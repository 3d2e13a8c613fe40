"""SARIF 2.1.0 results (as `ruff check --output-format sarif` writes them) turned into findings."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urlparse

from bot.audit.findings import Finding, number_occurrences, split_lines

__all__ = ["SarifError", "SourceCache", "parse_sarif", "repo_path"]

# Categories by rule: analyzers that report syntax errors use these rule ids.
_SYNTAX_RULES = frozenset({"invalid-syntax", "E999", "syntax-error"})


class SarifError(ValueError):
    """A SARIF document this module cannot read; the message says what is wrong."""


def parse_sarif(doc: Mapping[str, Any], analyzer: str, root: Path) -> list[Finding]:
    """Findings from a SARIF log, with paths relative to `root` and snippets read under it.

    Results outside `root` or without a location are skipped: the loop can only act on
    files in the worktree.
    """
    runs = doc.get("runs")
    if not isinstance(runs, list):
        raise SarifError(f"{analyzer}: SARIF document has no 'runs' list")
    root = root.resolve()
    sources = SourceCache(root)
    findings: list[Finding] = []
    for run in runs:
        if not isinstance(run, Mapping):
            raise SarifError(f"{analyzer}: SARIF run is not an object")
        rules = _rules_by_id(run)
        rule_list = list(rules.values())
        for result in run.get("results") or []:
            finding = _finding(result, analyzer, root, rules, rule_list, sources)
            if finding is not None:
                findings.append(finding)
    return number_occurrences(findings)


def _finding(
    result: Mapping[str, Any],
    analyzer: str,
    root: Path,
    rules: Mapping[str, Mapping[str, Any]],
    rule_list: list[Mapping[str, Any]],
    sources: SourceCache,
) -> Finding | None:
    location = _first_physical_location(result)
    if location is None:
        return None
    uri = (location.get("artifactLocation") or {}).get("uri")
    path = repo_path(uri, root) if isinstance(uri, str) else None
    if path is None:
        return None
    region = location.get("region") or {}
    start = int(region.get("startLine") or 1)
    end = int(region.get("endLine") or start)
    # A region that stops at column 1 of a later line ends on the line before it.
    if end > start and region.get("endColumn") == 1:
        end -= 1
    end = max(end, start)
    rule_meta = _rule_for(result, rules, rule_list)
    rule = str(result.get("ruleId") or rule_meta.get("id") or "unknown")
    message = str((result.get("message") or {}).get("text") or rule)
    help_uri = rule_meta.get("helpUri")
    return Finding(
        analyzer=analyzer,
        rule=rule,
        category="syntax" if rule in _SYNTAX_RULES else "lint",
        path=path,
        start_line=start,
        end_line=end,
        message=message,
        snippet=sources.lines(path, start, end),
        help_uri=help_uri if isinstance(help_uri, str) else None,
    )


def _first_physical_location(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for location in result.get("locations") or []:
        physical = location.get("physicalLocation") if isinstance(location, Mapping) else None
        if isinstance(physical, Mapping):
            return physical
    return None


def _rules_by_id(run: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    driver = (run.get("tool") or {}).get("driver") or {}
    return {
        str(rule["id"]): rule
        for rule in driver.get("rules") or []
        if isinstance(rule, Mapping) and "id" in rule
    }


def _rule_for(
    result: Mapping[str, Any],
    rules: Mapping[str, Mapping[str, Any]],
    rule_list: list[Mapping[str, Any]],
) -> Mapping[str, Any]:
    rule_id = result.get("ruleId")
    if isinstance(rule_id, str) and rule_id in rules:
        return rules[rule_id]
    index = result.get("ruleIndex")
    if isinstance(index, int) and 0 <= index < len(rule_list):
        return rule_list[index]
    return {}


def repo_path(uri: str, root: Path) -> str | None:
    """A repo-relative posix path for a `file://` URI or a relative URI; None if outside root."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        absolute = Path(unquote(parsed.path))
    elif parsed.scheme == "":
        absolute = root / unquote(uri)
    else:
        return None
    try:
        relative = absolute.resolve().relative_to(root)
    except ValueError:
        return None
    return PurePosixPath(*relative.parts).as_posix()


class SourceCache:
    """Reads each flagged file once."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._files: dict[str, list[str]] = {}

    def lines(self, path: str, start: int, end: int) -> str:
        if path not in self._files:
            try:
                text = (self._root / path).read_text(encoding="utf-8", errors="replace")
            except OSError:
                text = ""
            self._files[path] = split_lines(text)
        return "\n".join(self._files[path][start - 1 : end])
