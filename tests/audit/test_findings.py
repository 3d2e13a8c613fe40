"""Findings and their fingerprints."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import pytest

from bot.audit.findings import Finding, normalise_code, number_occurrences
from bot.audit.runners import run_ruff, run_ruff_format

RUFF_TOML = '[lint]\nselect = ["F401", "F841", "E711"]\n'


def make(snippet: str = "import os", line: int = 1, **changes: Any) -> Finding:
    finding = Finding(
        analyzer="ruff",
        rule="F401",
        category="lint",
        path="pkg/a.py",
        start_line=line,
        end_line=line,
        message="`os` imported but unused",
        snippet=snippet,
        help_uri="https://docs.astral.sh/ruff/rules/unused-import",
    )
    return dataclasses.replace(finding, **changes)


def fingerprints(findings: list[Finding]) -> dict[tuple[str, str], str]:
    return {(f.rule, f.snippet.strip()): f.fingerprint for f in findings}


async def test_fingerprints_survive_lines_inserted_above(tmp_path: Path) -> None:
    """Real ruff findings keep their fingerprints when unrelated lines are added above them."""
    (tmp_path / "ruff.toml").write_text(RUFF_TOML)
    code = "import os\n\n\ndef f(x):\n    unused = 1\n    return x == None\n"
    (tmp_path / "a.py").write_text(code)
    before = await run_ruff(tmp_path) + await run_ruff_format(tmp_path)
    (tmp_path / "a.py").write_text('"""Docs."""\n\nimport sys\n\nsys.exit\n' + code)
    after = await run_ruff(tmp_path) + await run_ruff_format(tmp_path)

    assert {f.rule for f in before} == {"F401", "F841", "E711"}
    assert [f.start_line for f in after if f.rule == "E711"] == [11]
    assert fingerprints(after) == fingerprints(before)


def test_fingerprint_ignores_line_number_and_whitespace() -> None:
    """Moving or re-indenting the flagged code does not change the fingerprint."""
    base = make("x = foo( 1,\n\n    2 )", line=3)
    moved = make("    x   =  foo( 1,\n        2 )  ", line=40)
    assert base.fingerprint == moved.fingerprint
    assert normalise_code(moved.snippet) == "x = foo( 1,\n2 )"


@pytest.mark.parametrize(
    "change",
    [
        pytest.param({"analyzer": "other"}, id="analyzer"),
        pytest.param({"rule": "F811"}, id="rule"),
        pytest.param({"path": "pkg/b.py"}, id="path"),
        pytest.param({"snippet": "import sys"}, id="code"),
        pytest.param({"occurrence": 1}, id="occurrence"),
    ],
)
def test_fingerprint_changes_with_what_identifies_a_finding(change: dict[str, Any]) -> None:
    """Analyzer, rule, path, flagged code and occurrence index each change the fingerprint."""
    assert make(**change).fingerprint != make().fingerprint


def test_identical_snippets_in_one_file_get_distinct_fingerprints() -> None:
    """Equal flagged code for one rule in one file is numbered by line order."""
    numbered = number_occurrences([make(line=9), make(line=2), make(line=5, path="other.py")])
    assert [(f.path, f.start_line, f.occurrence) for f in numbered] == [
        ("other.py", 5, 0),
        ("pkg/a.py", 2, 0),
        ("pkg/a.py", 9, 1),
    ]
    assert len({f.fingerprint for f in numbered}) == 3


def test_blank_flagged_lines_fall_back_to_the_message() -> None:
    """Findings on blank lines are told apart by their message, not all hashed alike."""
    a = make("\n\n", message="Too many blank lines (3)")
    b = make("\n", message="Blank line contains whitespace")
    assert a.fingerprint != b.fingerprint


def test_findings_round_trip_through_dicts() -> None:
    """`to_dict` output (with its informative fingerprint) rebuilds the same finding."""
    finding = make(occurrence=2)
    data = finding.to_dict()
    assert data["fingerprint"] == finding.fingerprint
    assert Finding.from_dict(data) == finding


def test_findings_reject_impossible_lines() -> None:
    """A finding whose lines run backwards is a bug in the auditor, reported at once."""
    with pytest.raises(ValueError, match="bad lines 5-4"):
        make(line=5, end_line=4)
