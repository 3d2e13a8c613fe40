"""Pre-warmed worktrees: prepared once per commit, claimed by one task, cleaned up unclaimed."""

import asyncio
from pathlib import Path

from bot.gitcmd import git
from bot.loop.warm import WarmPool
from bot.worktrees import Mirrors
from tests.fleet.conftest import Remote

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


async def test_only_the_first_claim_waits_for_a_worktree_still_being_prepared(
    tmp_path: Path, mirrors: Mirrors, remote: Remote
) -> None:
    """While setup runs, the first task to claim waits for it; the others of the round get
    None at once and spawn cold instead of queueing behind a worktree they cannot all have."""
    mirror = await mirrors.ensure(REPO, remote.url, None)
    pool, sha = WarmPool(mirrors), await remote.sha()
    gate = tmp_path / "gate"
    setup = f"while [ ! -e {gate} ]; do sleep 0.02; done"
    preparing = asyncio.create_task(pool.prepare(REPO, mirror, sha, setup))
    while not any(p.is_dir() for p in pool.root.glob("*/*/*")):  # the checkout has begun
        await asyncio.sleep(0.02)

    async def claim(n: int) -> object:
        path = mirrors.worktree_path(REPO, f"task-{n}")
        return await pool.claim(REPO, mirror, sha, path, f"review-loop/pr-1/{n}", wait_s=60)

    waiter = asyncio.create_task(claim(1))
    await asyncio.sleep(0)  # the first claim runs up to its wait
    others = [asyncio.create_task(claim(n)) for n in (2, 3)]
    # With the gate shut the worktree cannot become ready: only claims that do not wait end.
    assert await asyncio.wait_for(asyncio.gather(*others), timeout=30) == [None, None]
    assert not waiter.done() and not preparing.done()
    gate.touch()
    assert await preparing
    wt = await asyncio.wait_for(waiter, timeout=30)
    assert wt is not None and wt.path == mirrors.worktree_path(REPO, "task-1")
