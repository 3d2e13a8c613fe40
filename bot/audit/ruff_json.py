"""`ruff check --output-format json` turned into findings, with ruff's fix applicability.

The JSON output (unlike SARIF) says per finding whether ruff has a fix and whether it is
safe, which routing needs: the built-in `ruff-fix` applies safe fixes only.
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from bot.audit.findings import Finding, end_line_of, number_occurrences
from bot.audit.sarif import SourceCache, repo_path

__all__ = ["RuffJsonError", "parse_ruff_json"]

SYNTAX_RULES = frozenset({"invalid-syntax", "E999", "syntax-error"})
APPLICABILITIES = frozenset({"safe", "unsafe", "display-only"})


class RuffJsonError(ValueError):
    """Output of `ruff check --output-format json` this module cannot read."""


def parse_ruff_json(doc: Any, root: Path, analyzer: str = "ruff") -> list[Finding]:
    """Findings from ruff's JSON list, paths relative to `root`, snippets read under it.

    Results outside `root` are skipped: the loop can only act on files in the worktree.
    """
    if not isinstance(doc, list):
        raise RuffJsonError("ruff's JSON output is not a list")
    root = root.resolve()
    sources = SourceCache(root)
    findings = []
    for item in doc:
        if not isinstance(item, Mapping):
            raise RuffJsonError("an entry of ruff's JSON output is not an object")
        finding = _finding(item, root, analyzer, sources)
        if finding is not None:
            findings.append(finding)
    return number_occurrences(findings)


def _finding(
    item: Mapping[str, Any], root: Path, analyzer: str, sources: SourceCache
) -> Finding | None:
    filename = item.get("filename")
    path = repo_path(Path(filename).as_uri(), root) if isinstance(filename, str) else None
    if path is None or item.get("cell") is not None:
        return None
    start = _row(item.get("location")) or 1
    end = end_line_of(start, _row(item.get("end_location")), _column(item.get("end_location")))
    rule = str(item.get("code") or item.get("name") or "unknown")
    url = item.get("url")
    return Finding(
        analyzer=analyzer,
        rule=rule,
        category="syntax" if rule in SYNTAX_RULES else "lint",
        path=path,
        start_line=start,
        end_line=end,
        message=str(item.get("message") or rule),
        snippet=sources.lines(path, start, end),
        help_uri=url if isinstance(url, str) else None,
        fix=_applicability(item.get("fix")),
    )


def _row(location: object) -> int | None:
    row = location.get("row") if isinstance(location, Mapping) else None
    return row if isinstance(row, int) and row >= 1 else None


def _column(location: object) -> object:
    return location.get("column") if isinstance(location, Mapping) else None


def _applicability(fix: object) -> str | None:
    value = fix.get("applicability") if isinstance(fix, Mapping) else None
    return value if value in APPLICABILITIES else None
