"""What counts as fixed: a change must remove its targets and add nothing, lines aside."""

import pytest

from bot.audit.findings import Finding
from bot.audit.groups import FindingGroup
from bot.git.cmd import git
from bot.git.worktrees import Worktree, record_setup_output, snapshot
from bot.loop.fix.branch import commit_fix, reset_worktree
from bot.loop.fix.job import BotIdentity, TaskFailed
from bot.loop.fix.verify import (
    audit_worktree,
    check_agent_change,
    fixed_earlier,
    judged_paths,
    judges_of,
    targets_of,
    verify,
    verify_fix,
)


def finding(rule: str, snippet: str, line: int = 3, path: str = "shop/a.py") -> Finding:
    return Finding("ruff", rule, "lint", path, line, line, f"{rule} message", snippet)


OS = finding("F401", "import os")
SYS = finding("F401", "import sys", line=4)
OS_MOVED = finding("F401", "import os", line=9)
OS_OTHER_FILE = finding("F401", "import os", path="shop/b.py")


@pytest.mark.parametrize(
    ("before", "after", "targets", "expected"),
    [
        pytest.param([OS, SYS], [SYS], [OS], None, id="target-gone-rest-unchanged"),
        pytest.param([OS], [], [OS], None, id="target-gone-nothing-left"),
        pytest.param([OS], [OS_MOVED], [OS], "the finding is still there: F401 in shop/a.py:3",
                     id="target-only-moved-is-still-there"),
        pytest.param([OS, SYS], [SYS, finding("E501", "x = 1")], [OS],
                     "the change adds a new finding: ruff E501 in shop/a.py",
                     id="new-finding-refused"),
        pytest.param([OS, SYS], [SYS, SYS], [OS],
                     "the change adds a new finding: ruff F401 in shop/a.py",
                     id="a-second-copy-of-an-old-finding-is-new"),
        pytest.param([OS, SYS], [OS_MOVED], [SYS], None, id="unrelated-lines-may-move"),
        pytest.param([OS, OS_OTHER_FILE], [OS_OTHER_FILE], [OS], None,
                     id="same-code-in-another-file-is-another-finding"),
        pytest.param([OS], [OS, SYS], [], "the change adds a new finding: ruff F401 in shop/a.py",
                     id="no-targets-still-adds-nothing"),
    ],
)  # fmt: skip
def test_verify(
    before: list[Finding], after: list[Finding], targets: list[Finding], expected: str | None
) -> None:
    """A change is proposed only when its targets are gone and no finding grew."""
    assert verify(before, after, targets) == expected


def test_targets_of_a_single_finding_and_of_a_group() -> None:
    """An issue's marker names one finding by its fingerprint, or a same-rule group in a file;
    a fingerprint the audit no longer has names nothing."""
    findings = [OS, SYS, OS_OTHER_FILE]
    assert targets_of(findings, {"fp": OS.fingerprint}) == [OS]
    group = FindingGroup((OS, SYS))
    assert targets_of(findings, {"fp": group.fingerprint}) == [OS, SYS]
    assert targets_of([SYS], {"fp": OS.fingerprint}) == []
    assert targets_of(findings, {}) == []


FORMAT = Finding("ruff-format", "format", "format", "shop/a.py", 5, 5, "not formatted", "x=1")


@pytest.mark.parametrize(
    ("targets", "agent", "expected"),
    [
        pytest.param([OS, FORMAT], "claude", ["ruff", "ruff-format"], id="the-findings-analyzers"),
        pytest.param([], "ruff-format", ["ruff-format"], id="persons-issue-builtin-agent"),
        pytest.param([], "claude", ["ruff", "ruff-format", "mypy"], id="persons-issue-any-agent"),
    ],
)  # fmt: skip
def test_judges_of(targets: list[Finding], agent: str, expected: list[str]) -> None:
    """A fix is judged by the analyzers of its findings; a person's issue by the agent's own
    analyzer, or by every auditor."""
    assert judges_of(targets, agent, ["ruff", "ruff-format", "mypy"]) == expected


@pytest.mark.parametrize(
    ("base", "now", "expected"),
    [
        pytest.param([OS, SYS], [SYS], True, id="earlier-commits-removed-it"),
        pytest.param([SYS], [SYS], False, id="already-gone-at-the-base"),
        pytest.param([OS], [FORMAT], True, id="other-analyzers-do-not-judge"),
        pytest.param([OS], [finding("F841", "y = 2")], "adds a new finding: ruff F841",
                     id="earlier-commits-added-one"),
        pytest.param([OS], [finding("F841", "y = 2", path="vendored/x.py")], True,
                     id="ignored-paths-do-not-count"),
    ],
)  # fmt: skip
def test_fixed_earlier(base: list[Finding], now: list[Finding], expected: bool | str) -> None:
    """A resumed task's finding that is gone was fixed by its branch's earlier commits only
    when the base had it and those commits added nothing the same analyzer reports."""
    marker: dict[str, object] = {"fp": OS.fingerprint}
    if isinstance(expected, bool):
        assert fixed_earlier(base, marker, now, ["vendored/**"]) is expected
        return
    with pytest.raises(TaskFailed, match=expected) as caught:
        fixed_earlier(base, marker, now, ["vendored/**"])
    assert caught.value.status == "refused"


async def test_only_what_the_agent_changed_is_its_change_and_is_committed(
    worktree: Worktree,
) -> None:
    """What the worktree held before the agent ran (setup output, say) is neither judged nor
    committed; the agent's own change is, and a built-in fixer may change only its files."""
    (worktree.path / "setup-output.txt").write_text("made by setup\n")
    since = await snapshot(worktree.path)
    (worktree.path / "src" / "app.py").write_text("def main() -> int:\n    return 1\n")

    with pytest.raises(TaskFailed, match=r"changed files it was not given: src/app\.py"):
        await check_agent_change(worktree, "ruff-fix", since, allowed={"src/other.py"})
    changed = await check_agent_change(worktree, "ruff-fix", since, allowed={"src/app.py"})
    assert changed == ["src/app.py"]
    sha = await commit_fix(worktree, 3, "a finding", BotIdentity("bot", "bot@x"), paths=changed)

    committed = await git("show", "--format=", "--name-only", sha, cwd=worktree.path)
    assert committed.split() == ["src/app.py"]
    assert (worktree.path / "setup-output.txt").exists()


async def test_an_agent_that_changed_nothing_of_its_own_changed_nothing(
    worktree: Worktree,
) -> None:
    """A worktree dirty before the agent ran does not count as the agent's work."""
    (worktree.path / "setup-output.txt").write_text("made by setup\n")
    since = await snapshot(worktree.path)
    with pytest.raises(TaskFailed, match="agent claude changed nothing"):
        await check_agent_change(worktree, "claude", since, allowed=None)


async def test_setup_output_is_never_the_agents_change_and_survives_resets(
    worktree: Worktree,
) -> None:
    """What `setup` left untracked (a `.venv` not in .gitignore) is not judged, not committed
    and not cleaned away between the issues of a batch; the agent's leftovers are."""
    venv = worktree.path / ".venv" / "lib"
    venv.mkdir(parents=True)
    (venv / "site.py").write_text("import os\n")
    assert await record_setup_output(worktree.path) == [".venv"]
    since = await snapshot(worktree.path)
    (worktree.path / "src" / "app.py").write_text("def main() -> int:\n    return 1\n")
    (venv / "site.py").write_text("import sys\n")  # the setup's tool rewrote its own file

    changed = await check_agent_change(worktree, "claude", since, allowed=None)
    assert changed == ["src/app.py"]
    sha = await commit_fix(worktree, 3, "a finding", BotIdentity("bot", "bot@x"), paths=changed)
    assert (await git("show", "--format=", "--name-only", sha, cwd=worktree.path)).split() == [
        "src/app.py"
    ]
    (worktree.path / "junk.txt").write_text("left by the tests\n")
    await reset_worktree(worktree)
    assert (venv / "site.py").exists()
    assert not (worktree.path / "junk.txt").exists()


REVIEWED = Finding("reviewer", "naming", "review", "docs/guide.md", 2, 2, "unclear", "text")
IN_CFG = Finding("ruff", "E501", "lint", "tool.cfg", 1, 1, "long", "x")


@pytest.mark.parametrize(
    ("changed", "targets", "expected"),
    [
        pytest.param(["shop/c.py", "shop/a.py"], [OS], ["shop/a.py", "shop/c.py"],
                     id="touched-files-and-the-findings-file"),
        pytest.param(["shop/c.py"], [OS, OS_OTHER_FILE], ["shop/a.py", "shop/b.py", "shop/c.py"],
                     id="a-group-across-files"),
        pytest.param(["README.md"], [], ["README.md"], id="persons-issue-touched-only"),
        pytest.param(["docs/guide.md"], [REVIEWED], ["docs/guide.md"],
                     id="a-model-reviewers-finding"),
        pytest.param(["tool.cfg"], [IN_CFG], None,
                     id="a-file-ruff-reads-only-by-the-repositorys-include-whole-tree"),
        pytest.param([f"m{i}.py" for i in range(1001)], [], None,
                     id="more-files-than-a-command-line-should-carry-whole-tree"),
    ],
)  # fmt: skip
def test_judged_paths(
    changed: list[str], targets: list[Finding], expected: list[str] | None
) -> None:
    """A fix is judged on the files it touched and its findings' files; the whole tree when
    a finding lies where a per-file audit by name would not read it as ruff does."""
    assert judged_paths(changed, targets) == expected


async def test_verification_audits_the_touched_files_not_the_whole_tree(
    worktree: Worktree,
) -> None:
    """A fix of one file is judged on that file: a finding in a file the fix never touched
    is not looked at (it cannot have moved), while the whole-tree audit would see it."""
    (worktree.path / "src" / "fixed.py").write_text("import os\n\nVALUE = 1\n")
    (worktree.path / "src" / "untouched.py").write_text("import sys\n")
    before = await audit_worktree(worktree, ["ruff"])
    target = next(f for f in before if f.path == "src/fixed.py")
    before_without_untouched = [f for f in before if f.path != "src/untouched.py"]
    (worktree.path / "src" / "fixed.py").write_text("VALUE = 1\n")

    await verify_fix(
        worktree, before_without_untouched, [target], ["ruff"], changed=["src/fixed.py"]
    )
    with pytest.raises(TaskFailed, match=r"adds a new finding: ruff F401 in src/untouched\.py"):
        await verify_fix(worktree, before_without_untouched, [target], ["ruff"])


async def test_a_fix_that_adds_a_finding_in_a_touched_file_is_refused(
    worktree: Worktree,
) -> None:
    """The restricted audit still sees what the fix added in the files it touched."""
    (worktree.path / "src" / "fixed.py").write_text("import os\n\nVALUE = 1\n")
    before = await audit_worktree(worktree, ["ruff"])
    (worktree.path / "src" / "fixed.py").write_text("VALUE = 1\n")
    (worktree.path / "src" / "app.py").write_text("import json\n")
    with pytest.raises(TaskFailed, match=r"adds a new finding: ruff F401 in src/app\.py"):
        await verify_fix(worktree, before, before, ["ruff"], changed=["src/fixed.py", "src/app.py"])
