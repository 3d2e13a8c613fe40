"""The task's branch on real git: where it stands, its commits, pushes that refuse to clobber
a moved branch or to carry the token out of a rewired worktree, and kept partial work."""

import pytest

from bot.engine.leases import LeaseLost
from bot.git.cmd import GitError, git
from bot.git.worktrees import Mirrors, Worktree
from bot.github.repo_api import RepoAPI
from bot.labels import PARTIAL_LABEL
from bot.loop.fix.branch import (
    TaskBranch,
    branch_sha,
    commit_fix,
    descends,
    keep_partial_work,
)
from bot.loop.fix.job import BotIdentity, TaskFailed
from tests.fakes.github import FakeGitHub
from tests.gitrepos import Remote

BOT = BotIdentity("rl[bot]", "7+rl[bot]@users.noreply.github.com")


async def lease_held() -> None:
    return None


async def lease_lost() -> None:
    raise LeaseLost("taken over")


def task_branch(
    wt: Worktree, remote: Remote, remote_sha: str | None = None, told: list[str] | None = None
) -> TaskBranch:
    """The task branch of `wt` on `remote`; `told` collects where each push says it pushed."""

    async def pushed(sha: str) -> None:
        if told is not None:
            told.append(sha)

    return TaskBranch(wt.branch, remote.url, None, remote_sha, lease_held, pushed=pushed)


async def on_remote(remote: Remote, branch: str) -> str | None:
    try:
        return await remote.sha(branch)
    except GitError:
        return None


async def commit_file(wt: Worktree, name: str, text: str, number: int = 1) -> str:
    (wt.path / name).write_text(text)
    return await commit_fix(wt, number, "a finding", BOT)


async def test_a_push_puts_head_on_the_branch_and_remembers_it(
    worktree: Worktree, remote: Remote
) -> None:
    """Each push expects the branch where the last one left it, moves it on, and tells where
    (the task's row keeps it, to delete the branch at the task's end)."""
    told: list[str] = []
    branch = task_branch(worktree, remote, told=told)

    first = await commit_file(worktree, "a.py", "a = 1\n")
    await branch.push(worktree)
    assert branch.remote_sha == first == await on_remote(remote, worktree.branch)

    second = await commit_file(worktree, "b.py", "b = 1\n", number=2)
    await branch.push(worktree)
    assert branch.remote_sha == second == await on_remote(remote, worktree.branch)
    assert told == [first, second]


async def test_a_push_is_refused_when_the_branch_moved_since_it_was_seen(
    worktree: Worktree, remote: Remote
) -> None:
    """A person's push to the task branch is never overwritten (nor told as the task's)."""
    told: list[str] = []
    branch = task_branch(worktree, remote, told=told)  # seen absent
    theirs = await remote.commit({"theirs.py": "x = 1\n"}, branch=worktree.branch)
    await commit_file(worktree, "a.py", "a = 1\n")

    with pytest.raises(GitError, match="stale info"):
        await branch.push(worktree)

    assert await on_remote(remote, worktree.branch) == theirs
    assert branch.remote_sha is None
    assert told == []


@pytest.mark.parametrize(
    "rewire",
    [
        pytest.param(["config", "core.fsmonitor", "touch owned"], id="config-key"),
        pytest.param(["config", "core.hooksPath", "/tmp"], id="hooks-path"),
    ],
)
async def test_a_push_from_a_rewired_worktree_is_refused(
    worktree: Worktree, remote: Remote, rewire: list[str]
) -> None:
    """A git config key planted in the worktree stops the push that would carry the token."""
    await commit_file(worktree, "a.py", "a = 1\n")
    await git(*rewire, cwd=worktree.path)

    with pytest.raises(TaskFailed) as caught:
        await task_branch(worktree, remote).push(worktree)

    assert (caught.value.status, caught.value.tampered) == ("refused", True)
    assert await on_remote(remote, worktree.branch) is None


async def test_a_push_from_a_worktree_with_a_planted_hook_is_refused(
    worktree: Worktree, remote: Remote
) -> None:
    """A hook installed in the mirror stops the push too."""
    await commit_file(worktree, "a.py", "a = 1\n")
    hook = worktree.mirror / "hooks" / "pre-push"
    hook.parent.mkdir(exist_ok=True)
    hook.write_text("#!/bin/sh\n")

    with pytest.raises(TaskFailed, match="git hook pre-push") as caught:
        await task_branch(worktree, remote).push(worktree)

    assert caught.value.tampered
    assert await on_remote(remote, worktree.branch) is None


async def test_a_push_checks_the_lease_first(worktree: Worktree, remote: Remote) -> None:
    """A task that lost its issue's lease pushes nothing."""
    await commit_file(worktree, "a.py", "a = 1\n")
    branch = TaskBranch(worktree.branch, remote.url, None, None, lease_lost)

    with pytest.raises(LeaseLost):
        await branch.push(worktree)

    assert await on_remote(remote, worktree.branch) is None


async def test_branch_sha_is_where_the_mirror_last_fetched_the_branch(
    worktree: Worktree, remote: Remote, mirrors: Mirrors
) -> None:
    """Absent until the branch is on GitHub and fetched; then its commit."""
    assert await branch_sha(worktree.mirror, worktree.branch) is None
    pushed = await commit_file(worktree, "a.py", "a = 1\n")
    await task_branch(worktree, remote).push(worktree)
    assert await branch_sha(worktree.mirror, worktree.branch) is None  # not fetched yet

    await mirrors.ensure("acme/demo", remote.url, None)

    assert await branch_sha(worktree.mirror, worktree.branch) == pushed


@pytest.mark.parametrize(
    ("sha", "base", "expected"),
    [
        pytest.param("child", "root", True, id="base-plus-commits"),
        pytest.param("root", "root", False, id="the-base-itself"),
        pytest.param("root", "child", False, id="behind-the-base"),
        pytest.param("side", "child", False, id="diverged"),
    ],
)
async def test_descends(
    remote: Remote, mirrors: Mirrors, sha: str, base: str, expected: bool
) -> None:
    """Only the base plus commits counts as work built on the base."""
    shas = {"root": await remote.sha()}
    shas["child"] = await remote.commit({"a.py": "a = 1\n"})
    await git("checkout", "--quiet", "--detach", shas["root"], cwd=remote.work)
    shas["side"] = await remote.commit({"b.py": "b = 1\n"}, branch="side")
    mirror = await mirrors.ensure("acme/demo", remote.url, None)

    assert await descends(mirror, shas[sha], shas[base]) is expected


async def test_a_fix_commit_names_the_issue_it_fixes(worktree: Worktree) -> None:
    """The bot's commit says `Fixes #n` under a title cut to 200 characters, by the bot."""
    (worktree.path / "a.py").write_text("a = 1\n")

    sha = await commit_fix(worktree, 7, "x" * 300, BOT)

    log = await git("log", "-1", "--format=%an <%ae>%n%B", sha, cwd=worktree.path)
    assert log == f"{BOT.name} <{BOT.email}>\nFix #7: {'x' * 192}\n\nFixes #7\n\n"


async def test_partial_work_is_pushed_and_its_issue_labelled(
    worktree: Worktree, remote: Remote, fake: FakeGitHub, api: RepoAPI
) -> None:
    """What a failed agent left is committed to the task branch for a person to pick up."""
    issue = fake.add_issue("finding")
    (worktree.path / "half.py").write_text("half = 1\n")

    await keep_partial_work(
        api, task_branch(worktree, remote), worktree, issue.number, agent="claude", identity=BOT
    )

    pushed = await on_remote(remote, worktree.branch)
    assert pushed is not None
    subject = await git("log", "-1", "--format=%s", pushed, cwd=remote.bare)
    assert subject.strip() == f"Partial work for #{issue.number} (agent claude)"
    assert issue.labels == [PARTIAL_LABEL]


@pytest.mark.parametrize(
    ("leftover", "text"),
    [
        pytest.param(None, "", id="nothing-left"),
        pytest.param(".github/workflows/ci.yml", "on: push\n", id="fails-the-checks"),
    ],
)
async def test_partial_work_that_cannot_be_kept_pushes_nothing(
    worktree: Worktree,
    remote: Remote,
    fake: FakeGitHub,
    api: RepoAPI,
    leftover: str | None,
    text: str,
) -> None:
    """No leftovers, or leftovers an agent may not make: no commit, no push, no label."""
    issue = fake.add_issue("finding")
    if leftover is not None:
        (worktree.path / leftover).parent.mkdir(parents=True, exist_ok=True)
        (worktree.path / leftover).write_text(text)

    await keep_partial_work(
        api, task_branch(worktree, remote), worktree, issue.number, agent="claude", identity=BOT
    )

    assert await on_remote(remote, worktree.branch) is None
    assert issue.labels == []
    assert (await git("rev-parse", "HEAD", cwd=worktree.path)).strip() == worktree.base_sha
