"""Resync: a PR whose loop stalled away from rest is reconciled again; others are left alone."""

from bot.loop.resync import resync_once
from bot.loop.store import LoopStore
from bot.loop.tasks import RECONCILE_PR
from bot.runtime import Runtime


async def _pr(runtime: Runtime, number: int, state: str, minutes_ago: int) -> None:
    await LoopStore(runtime.pool).bump("o/r", number, 7)
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """UPDATE review_loop_prs
                  SET state = %s, updated_at = now() - make_interval(mins => %s)
                WHERE repo = 'o/r' AND number = %s""",
            (state, minutes_ago, number),
        )


async def test_stalled_prs_are_reconciled_again_and_no_others(runtime: Runtime) -> None:
    """Only a PR not at rest, quiet for long enough and with no reconcile queued is picked."""
    await _pr(runtime, 1, "fixing", 30)  # stalled: picked
    await _pr(runtime, 2, "ready", 30)  # at rest
    await _pr(runtime, 3, "fixing", 1)  # still moving
    await _pr(runtime, 4, "new", 30)  # stalled, but a reconcile is already queued
    await runtime.queue.defer(RECONCILE_PR, repo="o/r", number=4, generation=1)

    picked = await resync_once(runtime, quiet_for_s=600)

    assert picked == [("o/r", 1)]
    row = await LoopStore(runtime.pool).get("o/r", 1)
    assert row is not None and row.generation == 2
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT args FROM procrastinate_jobs
                WHERE task_name LIKE '%%reconcile_pr' ORDER BY id"""
        )
        queued = [(r["args"]["number"], r["args"]["generation"]) for r in await cur.fetchall()]
    assert queued == [(4, 1), (1, 2)]
    assert await resync_once(runtime, quiet_for_s=600) == []  # its reconcile is queued now
