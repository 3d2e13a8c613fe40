"""SARIF from `ruff check` turned into findings."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from bot.audit.sarif import SarifError, parse_sarif


def ruff_sarif(root: Path) -> dict[str, Any]:
    done = subprocess.run(
        [find_ruff_bin(), "check", "--output-format", "sarif", "--exit-zero", "--no-cache", "."],
        cwd=root,
        capture_output=True,
        text=True,
        check=True,
    )
    doc: dict[str, Any] = json.loads(done.stdout)
    return doc


def sarif(uri: str, start: int = 1, end: int | None = None, **region: int) -> dict[str, Any]:
    location = {
        "physicalLocation": {
            "artifactLocation": {"uri": uri},
            "region": {"startLine": start, "endLine": end or start, **region},
        }
    }
    result = {"ruleId": "X1", "message": {"text": "bad"}, "locations": [location]}
    return {"runs": [{"tool": {"driver": {"name": "x", "rules": []}}, "results": [result]}]}


def test_ruff_sarif_becomes_findings_with_repo_paths_lines_and_snippets(tmp_path: Path) -> None:
    """Absolute file:// URIs become repo-relative paths; snippets are the flagged lines."""
    (tmp_path / "ruff.toml").write_text('line-length = 20\n[lint]\nselect = ["F401", "E501"]\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "mod.py").write_text('import os\nVALUE = "a string that is far too long"\n')

    findings = parse_sarif(ruff_sarif(tmp_path), "ruff", tmp_path)

    assert [(f.analyzer, f.rule, f.path, f.start_line, f.end_line) for f in findings] == [
        ("ruff", "F401", "pkg/mod.py", 1, 1),
        ("ruff", "E501", "pkg/mod.py", 2, 2),
    ]
    unused, too_long = findings
    assert unused.snippet == "import os"
    assert unused.message == "`os` imported but unused"
    assert unused.category == "lint"
    assert unused.help_uri == "https://docs.astral.sh/ruff/rules/unused-import"
    assert too_long.snippet == 'VALUE = "a string that is far too long"'


def test_syntax_errors_are_findings_of_their_own_category(tmp_path: Path) -> None:
    """Ruff's `invalid-syntax` results are kept, with category "syntax"."""
    (tmp_path / "broken.py").write_text("def (:\n")
    findings = parse_sarif(ruff_sarif(tmp_path), "ruff", tmp_path)
    assert findings
    assert {(f.rule, f.category, f.path) for f in findings} == {
        ("invalid-syntax", "syntax", "broken.py")
    }


def test_regions_ending_at_column_one_stop_on_the_line_before(tmp_path: Path) -> None:
    """A region that ends at the start of line 3 flags lines 1-2 only."""
    (tmp_path / "a.py").write_text("one\ntwo\nthree\n")
    doc = sarif((tmp_path / "a.py").as_uri(), 1, 3, endColumn=1)
    [finding] = parse_sarif(doc, "x", tmp_path)
    assert (finding.start_line, finding.end_line, finding.snippet) == (1, 2, "one\ntwo")


def test_relative_uris_resolve_against_the_root(tmp_path: Path) -> None:
    """Relative URIs (as other SARIF producers write them) are taken from the root."""
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "b c.py").write_text("x\n")
    [finding] = parse_sarif(sarif("src/b%20c.py"), "x", tmp_path)
    assert (finding.path, finding.snippet) == ("src/b c.py", "x")


def test_results_outside_the_worktree_are_dropped(tmp_path: Path) -> None:
    """The loop cannot act on files outside its worktree, so they yield no finding."""
    assert parse_sarif(sarif("file:///etc/passwd"), "x", tmp_path) == []
    assert parse_sarif(sarif("../elsewhere.py"), "x", tmp_path) == []


def test_a_document_without_runs_is_refused(tmp_path: Path) -> None:
    """Output that is not SARIF raises a SarifError naming the analyzer."""
    with pytest.raises(SarifError, match="mylinter: SARIF document has no 'runs' list"):
        parse_sarif({"version": "2.1.0"}, "mylinter", tmp_path)
