"""SARIF from `ruff check` turned into findings."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path
from typing import Any

import pytest
from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from bot.audit.sarif import SarifError, parse_sarif, read_sarif, validate_sarif


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


FIXTURES = Path(__file__).parent.parent / "fixtures" / "sarif"


def fixture(name: str, root: Path) -> dict[str, Any]:
    text = (FIXTURES / name).read_text().replace("{root_uri}", root.resolve().as_uri())
    doc: dict[str, Any] = json.loads(text)
    return doc


@pytest.fixture
def js_repo(tmp_path: Path) -> Path:
    (tmp_path / "main.js").write_text("// main\nconst foo = 1;\n")
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "promises.js").write_text(
        "// promises\nfunction resolvingPromise() {\n  return 1;\n}\neval('x');\n"
    )
    return tmp_path


def test_code_scanning_log_reads_every_run_with_rule_metadata(js_repo: Path) -> None:
    """GitHub's shape: two runs, %SRCROOT% paths, rules by ruleIndex with their help, a level
    from the rule's default; a suppressed result and one outside the repository dropped."""
    doc = fixture("code-scanning.sarif", js_repo)
    validate_sarif(doc, "scanner")

    read = read_sarif(doc, "scanner", js_repo)

    assert (read.outside, read.suppressed) == (1, 1)
    got = [
        (f.rule[:7], f.path, f.start_line, f.end_line, f.level, f.category) for f in read.findings
    ]
    assert got == [
        ("3f29204", "main.js", 2, 2, "note", "lint"),
        ("d5b664a", "src/promises.js", 2, 3, "error", "security"),  # ends at column 1 of 4
        ("no-eval", "src/promises.js", 5, 5, "warning", "lint"),
    ]
    unused, new, no_eval = read.findings
    assert unused.explanation is not None and unused.explanation.startswith("Unused variables")
    assert new.explanation == "Call the function consistently: always with 'new', or never."
    assert new.help_uri is not None and new.help_uri.endswith("js-inconsistent-use-of-new/")
    assert new.snippet == "function resolvingPromise() {\n  return 1;"
    assert no_eval.explanation == "Disallow eval()"
    assert unused.partial_fingerprint is not None and no_eval.partial_fingerprint is None


def test_partial_fingerprints_are_the_identity_combined_with_the_analyzer(js_repo: Path) -> None:
    """With partialFingerprints the flagged code no longer matters; the analyzer still does."""
    doc = fixture("code-scanning.sarif", js_repo)
    before = read_sarif(doc, "scanner", js_repo).findings[0]
    (js_repo / "main.js").write_text("// main\nconst foo = 2; // edited\n")
    after = read_sarif(doc, "scanner", js_repo).findings[0]
    other = read_sarif(doc, "another-scanner", js_repo).findings[0]

    assert before.snippet != after.snippet
    assert before.fingerprint == after.fingerprint
    assert other.fingerprint != before.fingerprint


@pytest.fixture
def py_repo(tmp_path: Path) -> Path:
    (tmp_path / "src").mkdir()
    (tmp_path / "src" / "conf.py").write_text('x = 1\npassword = "hunter2"\nünused = 2\n')
    return tmp_path


def test_spec_features_extensions_base_ids_artifacts_and_fixes(py_repo: Path) -> None:
    """Rules of a tool extension, an originalUriBaseIds chain, a location by artifact index,
    code-point columns; a rejected suppression still counts, absent and pass results do not,
    a URI on the web is outside the repository."""
    doc = fixture("spec-features.sarif", py_repo)
    validate_sarif(doc, "scanner")

    read = read_sarif(doc, "scanner", py_repo)

    assert (read.outside, read.suppressed) == (1, 1)
    by_line = {f.start_line: f for f in read.findings}
    assert sorted(by_line) == [1, 2, 3]
    secret, unused = by_line[2], by_line[3]
    assert (secret.rule, secret.level, secret.category) == ("SEC1001", "error", "security")
    assert secret.help_uri == "https://example.com/rules/SEC1001"
    assert secret.fix == "safe"  # the rule is tagged safe-fix
    assert [(e.path, e.deleted, e.inserted) for e in secret.edits] == [
        ("src/conf.py", '"hunter2"', 'os.environ["PASSWORD"]'),
        ("src/conf.py", "", "import os\n"),
    ]
    assert (unused.level, unused.fix) == ("warning", "unsafe")  # a fix, not marked safe
    assert [(e.offset, e.deleted, e.inserted) for e in unused.edits] == [(27, "ünused = 2\n", "")]
    assert by_line[1].message.startswith("Suppressed, but the suppression was rejected")


def test_the_operator_can_mark_a_rules_fixes_safe(py_repo: Path) -> None:
    doc = fixture("spec-features.sarif", py_repo)
    read = read_sarif(doc, "scanner", py_repo, safe_rules=["C2*"])
    assert {f.rule: f.fix for f in read.findings if f.edits} == {"SEC1001": "safe", "C2001": "safe"}


def test_a_fix_that_does_not_fit_the_file_is_no_fix(py_repo: Path) -> None:
    """Half a fix is no fix: a replacement beyond the end of the file drops all edits."""
    doc = fixture("spec-features.sarif", py_repo)
    change = doc["runs"][0]["results"][0]["fixes"][0]["artifactChanges"][0]
    change["replacements"][1]["deletedRegion"] = {"startLine": 40, "startColumn": 1}
    [secret] = [f for f in read_sarif(doc, "scanner", py_repo).findings if f.rule == "SEC1001"]
    assert (secret.edits, secret.fix) == ((), None)


def test_utf16_columns_count_astral_characters_twice(tmp_path: Path) -> None:
    """SARIF's default columnKind counts UTF-16 code units: an emoji is two columns."""
    (tmp_path / "a.py").write_text('s = "😀"; bad = 1\n')
    doc = sarif("a.py", 1)
    result = doc["runs"][0]["results"][0]
    region = {"startLine": 1, "startColumn": 11, "endColumn": 14}  # `bad`, after the emoji
    replacement = {"deletedRegion": region, "insertedContent": {"text": "good"}}
    change = {"artifactLocation": {"uri": "a.py"}, "replacements": [replacement]}
    result["fixes"] = [{"artifactChanges": [change]}]
    [finding] = parse_sarif(doc, "x", tmp_path)
    assert [(e.deleted, e.inserted) for e in finding.edits] == [("bad", "good")]


@pytest.mark.parametrize(
    ("doc", "where"),
    [
        pytest.param({"runs": []}, "(the log)", id="no-version"),
        pytest.param({"version": "2.0.0", "runs": []}, "version", id="old-version"),
        pytest.param(
            {"version": "2.1.0", "runs": [{"tool": {"driver": {}}}]},
            "runs/0/tool/driver",
            id="driver-without-name",
        ),
        pytest.param(
            {
                "version": "2.1.0",
                "runs": [
                    {
                        "tool": {"driver": {"name": "x"}},
                        "results": [{"message": {"text": "m"}, "level": "fatal"}],
                    }
                ],
            },
            "runs/0/results/0/level",
            id="bad-level",
        ),
        pytest.param(
            {
                "version": "2.1.0",
                "runs": [
                    {
                        "tool": {"driver": {"name": "x"}},
                        "results": [
                            {
                                "message": {"text": "m"},
                                "locations": [
                                    {
                                        "physicalLocation": {
                                            "artifactLocation": {"uri": "a.py"},
                                            "region": {"endLine": 2},
                                        }
                                    }
                                ],
                            }
                        ],
                    }
                ],
            },
            "runs/0/results/0/locations/0/physicalLocation/region",
            id="region-without-a-start",  # required by the final 2.1.0 schema, not by rtm.5
        ),
    ],
)
def test_a_log_that_fails_the_schema_says_where(doc: dict[str, Any], where: str) -> None:
    with pytest.raises(
        SarifError,
        match=re.escape(f"mylinter wrote a log that is not valid SARIF 2.1.0: at {where}: "),
    ):
        validate_sarif(doc, "mylinter")
