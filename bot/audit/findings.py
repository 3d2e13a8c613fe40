"""Findings: what an auditor reports, and the fingerprint that follows a finding across edits."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

_WHITESPACE = re.compile(r"\s+")
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


def split_lines(text: str) -> list[str]:
    """Split source text into lines the way analyzers number them (\\n, \\r\\n or \\r)."""
    lines = _LINE_BREAK.split(text)
    if lines and lines[-1] == "":
        lines.pop()
    return lines


def end_line_of(start: int, end: int | None, end_column: object) -> int:
    """The last flagged line of a range from `start` to `end` (None: `start`).

    A range that stops at column 1 of a later line ends on the line before it: nothing of
    that line is flagged (analyzers end whole-line ranges so).
    """
    last = end if end is not None else start
    if last > start and end_column == 1:
        last -= 1
    return max(last, start)


@dataclass(frozen=True, slots=True)
class Edit:
    """One replacement of an analyzer's fix: `length` characters at `offset` of the file at
    `path` (as read with its own line endings) are `deleted`, `inserted` takes their place.

    `deleted` is what the analyzer saw there; a fixer refuses an edit whose file changed.
    """

    path: str
    offset: int
    length: int
    deleted: str
    inserted: str


def normalise_code(snippet: str) -> str:
    """Flagged code reduced to what matters: lines stripped, inner whitespace collapsed, no blanks.

    Re-indenting a block or adding blank lines around it therefore keeps its fingerprint.
    """
    lines = (_WHITESPACE.sub(" ", line.strip()) for line in split_lines(snippet))
    return "\n".join(line for line in lines if line)


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem an analyzer found at one place in the code.

    `occurrence` tells apart identical flagged snippets for the same rule in one file
    (0 for the first by line, 1 for the next...); `number_occurrences` assigns it.
    `fix` is the analyzer's own fix for it: "safe", "unsafe" or "display-only" (ruff's
    applicability), None when it has none or does not say. `explanation` is why the rule
    matters, from the analyzer's documentation. Neither is part of the fingerprint.
    A SARIF analyzer's fix is carried as `edits` (exactly its replacements); `level` is the
    SARIF level (error, warning, note); `partial_fingerprint` is the analyzer's own stable
    identity of the result (SARIF `partialFingerprints`), which the fingerprint prefers.
    """

    analyzer: str
    rule: str
    category: str
    path: str
    start_line: int
    end_line: int
    message: str
    snippet: str
    help_uri: str | None = None
    occurrence: int = 0
    severity: str | None = None  # model reviewers' findings only; not part of the fingerprint
    fix: str | None = None
    explanation: str | None = None
    edits: tuple[Edit, ...] = ()
    level: str | None = None
    partial_fingerprint: str | None = None

    def __post_init__(self) -> None:
        if self.start_line < 1 or self.end_line < self.start_line:
            raise ValueError(
                f"finding {self.rule} in {self.path} has bad lines "
                f"{self.start_line}-{self.end_line}: lines start at 1 and end >= start"
            )

    @property
    def lines(self) -> range:
        """The flagged line numbers, inclusive of `end_line`."""
        return range(self.start_line, self.end_line + 1)

    @property
    def identity(self) -> tuple[str, str, str, str]:
        """What the fingerprint hashes, before the occurrence index."""
        if self.partial_fingerprint is not None:
            return (self.analyzer, self.rule, self.path, f"partial:{self.partial_fingerprint}")
        code = normalise_code(self.snippet)
        # Flagged lines that are all blank (e.g. "too many blank lines") say nothing:
        # the message is then the best stable description of the problem.
        return (self.analyzer, self.rule, self.path, code or f"message:{self.message}")

    @property
    def fingerprint(self) -> str:
        """sha256 over analyzer, rule, path, normalised flagged code and occurrence index
        (the analyzer's partial fingerprint instead of the code, when it gives one).

        The line number is deliberately left out, so the fingerprint survives edits
        elsewhere in the file.
        """
        payload = json.dumps([*self.identity, self.occurrence], ensure_ascii=False)
        return hashlib.sha256(payload.encode()).hexdigest()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready dict; `fingerprint` is included for readers, ignored by `from_dict`."""
        data = dataclasses.asdict(self)
        data["fingerprint"] = self.fingerprint
        return data

    @classmethod
    def from_dict(cls, data: Mapping[str, Any]) -> Finding:
        """Rebuild a finding stored with `to_dict`."""
        names = {field.name for field in dataclasses.fields(cls)}
        fields = {key: value for key, value in data.items() if key in names}
        fields["edits"] = tuple(
            edit if isinstance(edit, Edit) else Edit(**edit) for edit in fields.get("edits") or ()
        )
        return cls(**fields)


def number_occurrences(findings: Iterable[Finding]) -> list[Finding]:
    """Give findings with the same identity (same rule, file and code) occurrence 0, 1, 2...

    Ordered by line, so the index is stable as long as the copies keep their order.
    The result is sorted by path, line and rule.
    """
    ordered = sorted(findings, key=_sort_key)
    seen: dict[tuple[str, str, str, str], int] = {}
    numbered = []
    for finding in ordered:
        index = seen.get(finding.identity, 0)
        seen[finding.identity] = index + 1
        numbered.append(dataclasses.replace(finding, occurrence=index))
    return numbered


def _sort_key(finding: Finding) -> tuple[str, int, int, str, str, str]:
    return (
        finding.path,
        finding.start_line,
        finding.end_line,
        finding.analyzer,
        finding.rule,
        finding.message,
    )
