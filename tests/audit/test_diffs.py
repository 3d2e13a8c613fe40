"""Changed lines of a pull request, and the filters built on them."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING

import pytest

from bot.audit.diffs import (
    changed_lines,
    filter_ignored,
    filter_to_changed,
    parse_unified_zero_diff,
)
from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.audit.runners import AuditError

if TYPE_CHECKING:
    from tests.gitrepos import GitRepo

BASE_TEXT = "".join(f"line {n}\n" for n in range(1, 11))


def finding(path: str, start: int, end: int | None = None) -> Finding:
    return Finding("ruff", "F401", "lint", path, start, end or start, "m", "code")


async def test_changed_lines_are_new_side_lines_of_a_real_branch(repo: GitRepo) -> None:
    """Edits, new files, renames and deletions map to the lines a PR changed on its side."""
    repo.write("edited.py", BASE_TEXT)
    repo.write("deleted.py", "gone\n")
    repo.write("old_name.py", BASE_TEXT)
    repo.write("untouched.py", "same\n")
    base = repo.commit("base")
    repo.git("checkout", "-q", "-b", "feature")
    repo.write(
        "edited.py", BASE_TEXT.replace("line 3\n", "LINE 3\nextra\n").replace("line 9\n", "")
    )
    (repo.root / "deleted.py").unlink()
    repo.git("mv", "old_name.py", "new_name.py")
    repo.write("new_name.py", BASE_TEXT.replace("line 7", "line seven"))
    repo.write("pkg/new file.py", "a\nb\n")
    head = repo.commit("feature")
    # The base branch moving on after the fork point must not count as the PR's change.
    repo.git("checkout", "-q", "main")
    repo.write("untouched.py", "changed on main\n")
    repo.commit("main moves on")

    changed = await changed_lines(repo.root, base="main", head=head)

    assert changed == {
        "edited.py": {3, 4},
        "new_name.py": {7},
        "pkg/new file.py": {1, 2},
    }
    assert base != head


async def test_changed_lines_of_an_unknown_commit_is_an_audit_error(repo: GitRepo) -> None:
    """A missing commit raises an AuditError that asks whether it was fetched."""
    repo.write("a.py", "x\n")
    head = repo.commit()
    with pytest.raises(AuditError, match="are both commits fetched"):
        await changed_lines(repo.root, "0" * 40, head)


def test_quoted_paths_in_git_diffs_are_unquoted() -> None:
    """Git quotes paths with tabs or quotes; the changed-lines map uses the real name."""
    diff = (
        'diff --git "a/tab\\there.py" "b/tab\\there.py"\n'
        '--- "a/tab\\there.py"\n'
        '+++ "b/tab\\there.py"\n'
        "@@ -1 +1,2 @@\n-x\n+y\n+z\n"
        "diff --git a/b/c.py b/b/c.py\n--- a/b/c.py\n+++ b/b/c.py\n@@ -2,0 +3 @@\n+w\n"
        'diff --git "a/caf\\303\\251.py" "b/caf\\303\\251.py"\n'
        '--- "a/caf\\303\\251.py"\n+++ "b/caf\\303\\251.py"\n@@ -1 +1 @@\n-a\n+b\n'
    )
    assert parse_unified_zero_diff(diff) == {"tab\there.py": {1, 2}, "b/c.py": {3}, "café.py": {1}}


@pytest.mark.parametrize(
    ("flagged", "kept"),
    [
        pytest.param(finding("a.py", 4), True, id="on-a-changed-line"),
        pytest.param(finding("a.py", 1, 3), False, id="just-above-the-change"),
        pytest.param(finding("a.py", 3, 5), True, id="spanning-a-changed-line"),
        pytest.param(finding("b.py", 4), False, id="file-not-in-the-diff"),
    ],
)
def test_filter_to_changed_keeps_findings_touching_changed_lines(
    flagged: Finding, kept: bool
) -> None:
    """A finding stays if any of its lines is among the changed lines of its file."""
    assert filter_to_changed([flagged], {"a.py": {4, 5}}) == ([flagged] if kept else [])


def test_filter_ignored_drops_findings_under_ignored_globs() -> None:
    """Findings in ignored paths are dropped, the rest kept in order."""
    findings = [finding(path, 1) for path in ("src/a.py", "docs/conf.py", "nb/x.ipynb")]
    kept = filter_ignored(findings, ["docs/", "*.ipynb"])
    assert [f.path for f in kept] == ["src/a.py"]
    assert filter_ignored(findings, []) == findings
    assert dataclasses.replace(findings[0]) == kept[0]


@pytest.mark.parametrize(
    ("path", "glob", "matches"),
    [
        pytest.param("a.py", "*.py", True, id="star-any-dir-when-no-slash"),
        pytest.param("src/deep/a.py", "*.py", True, id="basename-glob-in-subdir"),
        pytest.param("src/a.py", "src/*.py", True, id="star-in-dir"),
        pytest.param("src/deep/a.py", "src/*.py", False, id="star-stays-in-segment"),
        pytest.param("src/deep/a.py", "src/**/*.py", True, id="double-star-spans-segments"),
        pytest.param("src/a.py", "src/**/*.py", True, id="double-star-matches-zero-dirs"),
        pytest.param("docs/x/y.md", "docs/**", True, id="trailing-double-star"),
        pytest.param("docs/x/y.md", "docs/", True, id="trailing-slash-is-a-directory"),
        pytest.param("documents/y.md", "docs/", False, id="directory-prefix-is-whole-segment"),
        pytest.param("tests/test_a.py", "tests/test_?.py", True, id="question-mark"),
        pytest.param("v1/a.py", "v[0-9]/*.py", True, id="character-class"),
        pytest.param("vx/a.py", "v[!0-9]/*.py", True, id="negated-character-class"),
        pytest.param("migrations/0001.py", "/migrations/*", True, id="leading-slash-anchors"),
        pytest.param("a.pyi", "*.py", False, id="whole-name-must-match"),
    ],
)
def test_path_globs(path: str, glob: str, matches: bool) -> None:
    """Ignore and route globs follow the conventions of .gitignore-style globs."""
    assert path_matches(path, glob) is matches
