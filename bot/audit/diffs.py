"""Which lines a pull request changed, and keeping only the findings on them."""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.audit.runners import DEFAULT_TIMEOUT_S, AuditError, run_tool

__all__ = ["changed_lines", "filter_ignored", "filter_to_changed", "parse_unified_zero_diff"]

_HUNK_HEADER = re.compile(r"^@@ -\d+(?:,\d+)? \+(\d+)(?:,(\d+))? @@")
_ESCAPES = {"a": "\a", "b": "\b", "f": "\f", "n": "\n", "r": "\r", "t": "\t", "v": "\v"}


async def changed_lines(
    repo: Path, base: str, head: str, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> dict[str, set[int]]:
    """New-side line numbers the PR changed, per file, from `git diff -U0 base...head`.

    Deleted files are absent; a renamed file appears under its new path (with only the
    lines changed besides the rename); a new file has all its lines.
    """
    args = [
        "git",
        "-c",
        "core.quotePath=false",
        "diff",
        "-U0",
        "--no-color",
        "--no-ext-diff",
        "--no-textconv",
        "--find-renames",
        "--src-prefix=a/",
        "--dst-prefix=b/",
        f"{base}...{head}",
        "--",
    ]
    result = await run_tool(args, repo, timeout_s, os.environ)
    if result.returncode != 0:
        raise AuditError(
            f"git diff {base}...{head} failed in {repo} (exit code {result.returncode}); "
            f"are both commits fetched? git said: {result.stderr_text.strip()}"
        )
    return parse_unified_zero_diff(result.stdout_text)


def parse_unified_zero_diff(diff: str) -> dict[str, set[int]]:
    """Changed new-side lines per path from `git diff -U0` output (with a/ and b/ prefixes)."""
    changed: dict[str, set[int]] = {}
    path: str | None = None
    for line in diff.splitlines():
        if line.startswith("diff --git "):
            path = None
        elif line.startswith("rename to "):
            path = _unquote(line[len("rename to ") :])
            changed.setdefault(path, set())
        elif line.startswith("+++ "):
            # git ends a name containing spaces with a tab (for patch(1)); quoted names
            # carry their own tabs escaped.
            target = line[4:].removesuffix("\t")
            path = None if target == "/dev/null" else _unquote(target).removeprefix("b/")
            if path is not None:
                changed.setdefault(path, set())
        elif path is not None and (header := _HUNK_HEADER.match(line)):
            start = int(header[1])
            count = int(header[2]) if header[2] is not None else 1
            changed[path].update(range(start, start + count))
    return changed


def filter_to_changed(
    findings: Iterable[Finding], changed: Mapping[str, set[int]]
) -> list[Finding]:
    """The findings with at least one flagged line among the changed lines of their file."""
    return [
        finding
        for finding in findings
        if not changed.get(finding.path, set()).isdisjoint(finding.lines)
    ]


def filter_ignored(findings: Iterable[Finding], globs: Sequence[str]) -> list[Finding]:
    """The findings whose path matches none of the ignore globs."""
    return [f for f in findings if not any(path_matches(f.path, glob) for glob in globs)]


def _unquote(path: str) -> str:
    """Undo git's C-style quoting of unusual paths (`"a\\tb.py"`)."""
    if not (len(path) >= 2 and path.startswith('"') and path.endswith('"')):
        return path
    body = path[1:-1]
    out = bytearray()
    i = 0
    while i < len(body):
        char = body[i]
        if char != "\\" or i + 1 == len(body):
            out += char.encode()
            i += 1
            continue
        octal = body[i + 1 : i + 4]
        if len(octal) == 3 and all(digit in "01234567" for digit in octal):
            out.append(int(octal, 8))
            i += 4
        else:
            out += _ESCAPES.get(body[i + 1], body[i + 1]).encode()
            i += 2
    return out.decode("utf-8", errors="replace")
