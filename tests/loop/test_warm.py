"""Pre-warmed worktrees: prepared once per commit, claimed by one task, cleaned up unclaimed."""

from bot.git.cmd import git
from bot.git.worktrees import Mirrors
from bot.loop.warm import WarmPool
from tests.gitrepos import Remote

REPO = "acme/demo"


async def test_a_ready_worktree_is_claimed_once_and_moved_onto_the_task_branch(
    mirrors: Mirrors, remote: Remote
) -> None:
    """The claim moves the prepared worktree to the task's place and branch; a second claim
    at the same commit gets nothing (one warm worktree per commit)."""
    mirror = await mirrors.ensure(REPO, remote.url, None)
    pool, sha = WarmPool(mirrors), await remote.sha()
    assert await pool.prepare(REPO, mirror, sha, "echo warmed > warm.txt")
    assert not await pool.prepare(REPO, mirror, sha, None), "once per commit"
    first = mirrors.worktree_path(REPO, "task-1")
    wt = await pool.claim(REPO, mirror, sha, first, "review-loop/pr-1/1")
    assert wt is not None and wt.path == first
    assert (first / "warm.txt").read_text() == "warmed\n"
    assert (await git("rev-parse", "--abbrev-ref", "HEAD", cwd=first)).strip() == (
        "review-loop/pr-1/1"
    )
    assert (await git("rev-parse", "HEAD", cwd=first)).strip() == sha
    second = mirrors.worktree_path(REPO, "task-2")
    assert await pool.claim(REPO, mirror, sha, second, "review-loop/pr-1/2") is None
