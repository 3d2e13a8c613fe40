"""The built-in auditors run real ruff in a worktree."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bot.audit.runners import (
    AUDITORS,
    AuditError,
    audit,
    parse_format_diff,
    read_only,
    run_ruff,
    run_ruff_format,
)
from tests.gitrepos import GitRepo

UNFORMATTED = (
    "import os\n\n\n\ndef f( x ):\n    return x+1\n\n\n"
    "A = 1\nB = 2\nC = 3\nD = 4\nE = 5\nF = 6\nG = 7\ny=[1,\n  2]\n"
)


@pytest.fixture
def worktree(tmp_path: Path) -> Path:
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["F"]\n')
    (tmp_path / "pkg").mkdir()
    (tmp_path / "pkg" / "a.py").write_text(UNFORMATTED)
    (tmp_path / "clean.py").write_text("VALUE = 1\n")
    return tmp_path


async def test_ruff_format_reports_one_finding_per_hunk_with_original_lines(
    worktree: Path,
) -> None:
    """Each hunk of `ruff format --diff` is a finding over the original lines it rewrites."""
    findings = await run_ruff_format(worktree)
    assert [(f.path, f.start_line, f.end_line) for f in findings] == [
        ("pkg/a.py", 4, 6),
        ("pkg/a.py", 16, 17),
    ]
    first, second = findings
    assert first.snippet == "\ndef f( x ):\n    return x+1"
    assert second.snippet == "y=[1,\n  2]"
    assert {(f.analyzer, f.rule, f.category) for f in findings} == {
        ("ruff-format", "format", "format")
    }


async def test_ruff_honours_the_repository_configuration(worktree: Path) -> None:
    """Rules the repository did not select are not reported."""
    assert [(f.rule, f.start_line) for f in await run_ruff(worktree)] == [("F401", 1)]
    (worktree / "ruff.toml").write_text('[lint]\nselect = ["E"]\nignore = ["E"]\n')
    assert await run_ruff(worktree) == []


async def test_ruff_respects_the_repository_excludes_for_explicit_paths(worktree: Path) -> None:
    """Files the repository excludes stay excluded even when named explicitly."""
    (worktree / "ruff.toml").write_text('extend-exclude = ["pkg"]\n[lint]\nselect = ["F"]\n')
    assert await run_ruff(worktree, ["pkg/a.py"]) == []
    assert await run_ruff_format(worktree, ["pkg/a.py"]) == []


async def test_auditors_look_only_at_the_given_paths_that_exist(worktree: Path) -> None:
    """Deleted paths are skipped; no remaining path means no findings (not a whole-repo run)."""
    assert await run_ruff(worktree, ["clean.py", "gone.py"]) == []
    assert await run_ruff_format(worktree, ["gone.py"]) == []
    assert len(await run_ruff(worktree, ["pkg/a.py"])) == 1


async def test_the_built_ins_are_never_given_files_ruff_does_not_read(worktree: Path) -> None:
    """A text file named among the paths is skipped, not linted as Python (ruff reads any
    file it is given by name)."""
    (worktree / "notes.txt").write_text("plain words, not Python\n")
    assert [f.path for f in await run_ruff(worktree, ["notes.txt", "pkg/a.py"])] == ["pkg/a.py"]
    assert await run_ruff(worktree, ["notes.txt"]) == []
    assert await run_ruff_format(worktree, ["notes.txt"]) == []


async def test_format_ignores_files_that_do_not_parse(worktree: Path) -> None:
    """A syntax error (reported by `ruff check`) does not stop format findings elsewhere."""
    (worktree / "broken.py").write_text("def (:\n")
    assert {f.path for f in await run_ruff_format(worktree)} == {"pkg/a.py"}


async def test_a_broken_ruff_configuration_is_a_clear_audit_error(worktree: Path) -> None:
    """Ruff refusing the repo's config raises AuditError that says where to look."""
    (worktree / "ruff.toml").write_text('line-length = "long"\n')
    with pytest.raises(AuditError, match=r"(?s)ruff check failed.*ruff configuration.*ruff\.toml"):
        await run_ruff(worktree)
    with pytest.raises(AuditError, match="ruff format --diff failed"):
        await run_ruff_format(worktree)


async def test_a_ruff_run_past_its_timeout_is_an_audit_error(worktree: Path) -> None:
    """The subprocess is killed and the timeout named."""
    with pytest.raises(AuditError, match="did not finish within 0 s"):
        await run_ruff(worktree, timeout_s=0)


async def test_audit_runs_the_named_auditors_and_sorts_their_findings(worktree: Path) -> None:
    """`audit` combines the registry's auditors, ordered by path and line."""
    assert set(AUDITORS) == {"ruff", "ruff-format"}
    findings = await audit(worktree, ["ruff-format", "ruff"])
    assert [(f.rule, f.start_line) for f in findings] == [
        ("F401", 1),
        ("format", 4),
        ("format", 16),
    ]


async def test_audit_refuses_unknown_auditors(worktree: Path) -> None:
    """An auditor name that is not built in is named in the error, with the known ones."""
    with pytest.raises(AuditError, match=r"unknown auditor.*mypy.*ruff, ruff-format"):
        await audit(worktree, ["ruff", "mypy"])


async def test_the_audit_never_applies_fixes_even_when_the_repository_config_asks(
    tmp_path: Path,
) -> None:
    """`[tool.ruff] fix = true` (common) does not make the audit rewrite files: the safe-fixable
    finding is reported where it is, and the checkout is left exactly as it was."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("pyproject.toml", '[tool.ruff]\nfix = true\n[tool.ruff.lint]\nselect = ["F"]\n')
    repo.write("pkg/a.py", UNFORMATTED)
    repo.commit("base")
    findings = await audit(repo.root, ["ruff", "ruff-format"])
    assert [(f.rule, f.start_line) for f in findings] == [
        ("F401", 1),
        ("format", 4),
        ("format", 16),
    ]
    assert (repo.root / "pkg" / "a.py").read_text() == UNFORMATTED
    assert repo.git("status", "--porcelain") == ""


async def test_ruff_findings_say_whether_ruff_has_a_safe_fix(tmp_path: Path) -> None:
    """Each lint finding carries ruff's fix applicability: safe, unsafe, or none at all."""
    (tmp_path / "ruff.toml").write_text(
        'line-length = 40\n[lint]\nselect = ["F401", "C408", "E501"]\n'
    )
    (tmp_path / "a.py").write_text(
        "import os\n\nVALUE = dict()\nNAME = 'a string that is far too long to fit'\n"
    )
    findings = await run_ruff(tmp_path)
    assert [(f.rule, f.start_line, f.fix) for f in findings] == [
        ("F401", 1, "safe"),
        ("C408", 3, "unsafe"),
        ("E501", 4, None),
    ]
    assert findings[0].help_uri == "https://docs.astral.sh/ruff/rules/unused-import"
    assert (findings[0].explanation or "").startswith("Unused imports add a performance overhead")
    assert findings[0].snippet == "import os"
    assert {f.fix for f in await run_ruff_format(tmp_path)} <= {"safe"}


async def test_anything_that_changes_the_checkout_during_an_audit_is_an_audit_error(
    tmp_path: Path,
) -> None:
    """A dirty tree after an audit is an error naming the files, never a result to use; an
    audit of an already dirty tree that leaves it as it was is fine."""
    repo = GitRepo(tmp_path / "repo")
    repo.write("a.py", "A = 1\n")
    repo.commit("base")
    (repo.root / "a.py").write_text("A = 2\n")  # an agent's change, say: not the audit's
    async with read_only(repo.root):
        pass
    with pytest.raises(AuditError, match=r"changed 2 file\(s\) in the worktree \(a\.py, new\.py\)"):
        async with read_only(repo.root):
            (repo.root / "a.py").write_text("A = 3\n")
            (repo.root / "new.py").write_text("B = 1\n")


@pytest.mark.parametrize(
    ("diff", "expected"),
    [
        pytest.param(
            "--- a.py\n+++ a.py\n@@ -1,3 +1,4 @@\n x = 1\n+\n+\n y = 2\n z = 3\n",
            [(1, 1, "x = 1")],
            id="pure-insertion-points-at-line-above",
        ),
        pytest.param(
            "--- a.py\n+++ a.py\n@@ -0,0 +1 @@\n+x = 1\n",
            [(1, 1, "")],
            id="insertion-into-empty-file",
        ),
        pytest.param(
            "--- a.py\n+++ a.py\n@@ -1,2 +1 @@\n--- comment\n-x\n+-- comment\n",
            [(1, 2, "-- comment\nx")],
            id="removed-line-that-looks-like-a-header",
        ),
        pytest.param(
            "--- a.py\n+++ a.py\n@@ -5 +5 @@\n-x=1\n\\ No newline at end of file\n+x = 1\n",
            [(5, 5, "x=1")],
            id="no-newline-at-end-of-file",
        ),
    ],
)
def test_format_diff_edge_cases(
    tmp_path: Path, diff: str, expected: list[tuple[int, int, str]]
) -> None:
    """Odd hunks still map to the original lines they touch."""
    findings = parse_format_diff(diff, tmp_path)
    assert [(f.start_line, f.end_line, f.snippet) for f in findings] == expected


async def test_a_config_above_the_worktree_does_not_judge_it(tmp_path: Path) -> None:
    """A worktree without its own ruff config gets ruff's defaults, not the data dir's parent's."""
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["E711"]\n')
    worktree = tmp_path / "data" / "worktrees" / "task-1"
    worktree.mkdir(parents=True)
    (worktree / "a.py").write_text("import os\nx = None\nprint(x == None)\n")
    rules = {f.rule for f in await run_ruff(worktree)}
    assert "F401" in rules and "E711" not in rules  # ruff's defaults, not the outer select
    (worktree / "pyproject.toml").write_text('[tool.ruff.lint]\nselect = ["E711"]\n')
    assert [f.rule for f in await run_ruff(worktree)] == ["E711"]


async def test_notebooks_are_not_audited(tmp_path: Path) -> None:
    """Ruff numbers notebook lines per cell, so notebook findings would point nowhere."""
    cell: dict[str, object] = {
        "cell_type": "code",
        "metadata": {},
        "outputs": [],
        "execution_count": None,
    }
    notebook = {
        "cells": [{**cell, "source": ["x=1\n", "import os"]}],
        "metadata": {"language_info": {"name": "python"}},
        "nbformat": 4,
        "nbformat_minor": 5,
    }
    (tmp_path / "n.ipynb").write_text(json.dumps(notebook))
    assert await run_ruff(tmp_path) == []
    assert await run_ruff_format(tmp_path) == []
