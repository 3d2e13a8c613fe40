"""The loop's jobs queued again: a busy lease or a far write slot puts the job back, at its
own priority and a little later than asked (jobs put back for one moment do not all wake
at it)."""

import pytest

from bot.engine.leases import Lease
from bot.loop.store import LoopStore
from bot.loop.tasks import BUSY_RETRY_S, RECONCILE_PR, REQUEUE_JITTER_MAX_S, jittered
from bot.runtime import Runtime
from bot.worker import drain


async def test_a_reconcile_put_back_for_a_busy_lease_keeps_its_priority(runtime: Runtime) -> None:
    """A reconcile of priority 3 whose PR's lease another worker holds is queued again with
    priority 3, not the default 0 (it would then wait behind jobs it went before)."""
    store = LoopStore(runtime.pool)
    await store.bump("o/r", 1, 7)
    generation = await store.bump("o/r", 1, 7)  # not a first reconcile: no priority of its own
    await runtime.queue.job(RECONCILE_PR, priority=3).defer(
        repo="o/r", number=1, generation=generation
    )
    held = await runtime.leases.acquire("pr:o/r#1", "another worker", 60)
    assert isinstance(held, Lease)

    await drain(runtime)

    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT status, priority, args FROM procrastinate_jobs
                WHERE task_name LIKE '%%reconcile_pr' ORDER BY id"""
        )
        jobs = [(r["status"], r["priority"], r["args"]["generation"]) for r in await cur.fetchall()]
    assert jobs == [("succeeded", 3, generation), ("todo", 3, generation)]


@pytest.mark.parametrize(
    ("wait_s", "rand", "expected"),
    [
        pytest.param(BUSY_RETRY_S, 0.0, BUSY_RETRY_S, id="never-earlier"),
        pytest.param(2.0, 1.0, 3.0, id="at-most-half-more"),
        pytest.param(60.0, 1.0, 60.0 + REQUEUE_JITTER_MAX_S, id="capped"),
        pytest.param(60.0, 0.5, 60.0 + REQUEUE_JITTER_MAX_S / 2, id="between"),
    ],
)
def test_a_job_put_back_waits_its_wait_and_a_bounded_random_part_more(
    wait_s: float, rand: float, expected: float
) -> None:
    """Never before the slot asked for, at most half again and REQUEUE_JITTER_MAX_S later."""
    assert jittered(wait_s, rand=lambda: rand) == pytest.approx(expected)
