"""The loop's jobs queued: a reconcile asked for while one of the same PR waits in the queue
takes that one; a busy lease or a far write slot puts the job back, at its own priority and
a little later than asked (jobs put back for one moment do not all wake at it)."""

import pytest

from bot.engine.leases import Lease
from bot.loop.store import LoopStore
from bot.loop.tasks import (
    BUSY_RETRY_S,
    RECONCILE_PR,
    REQUEUE_JITTER_MAX_S,
    jittered,
    queue_fix,
    request_reconcile,
)
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


async def test_only_tasks_that_will_end_make_a_reconcile_wait(runtime: Runtime) -> None:
    """A task not ended whose job is queued counts; one ended, or whose job failed for good
    (nothing would come after it), does not."""
    store = LoopStore(runtime.pool)

    async def task(issue: int) -> int:
        row = await store.add_task(
            repo="o/r", pr_number=1, issue_number=issue, installation_id=7, agent="a",
            round=1, base_ref="change", base_sha="s", branch=f"b{issue}",
        )  # fmt: skip
        assert row is not None
        await queue_fix(runtime, row.id)
        return row.id

    waiting, ended, lost = await task(2), await task(3), await task(4)
    await store.update_task(ended, status="merged")
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """UPDATE procrastinate_jobs SET status = 'failed'
                WHERE task_name = 'run_fix_task' AND (args->>'task_id')::bigint = %s""",
            (lost,),
        )
    assert await store.fixes_under_way("o/r", 1) == [waiting]
    assert await store.fixes_under_way("o/r", 2) == []


async def reconciles(runtime: Runtime) -> list[tuple[str, int, int]]:
    """(status, PR number, generation) of every reconcile job, oldest first."""
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT status, args FROM procrastinate_jobs
                WHERE task_name = 'reconcile_pr' ORDER BY id"""
        )
        return [
            (r["status"], r["args"]["number"], r["args"]["generation"])
            for r in await cur.fetchall()
        ]


async def test_a_reconcile_asked_for_while_one_waits_raises_that_ones_generation(
    runtime: Runtime,
) -> None:
    """A burst of events for one PR queues one reconcile, of the latest generation; another
    PR's request queues its own."""
    for _ in range(3):
        latest = await request_reconcile(runtime, "o/r", 1, 7)
    await request_reconcile(runtime, "o/r", 2, 7)
    await request_reconcile(runtime, "o/other", 1, 7)

    assert latest == 3
    assert await reconciles(runtime) == [("todo", 1, 3), ("todo", 2, 1), ("todo", 1, 1)]
    row = await LoopStore(runtime.pool).get("o/r", 1)
    assert row is not None and row.generation == 3


@pytest.mark.parametrize(
    "queued",
    [
        pytest.param("SET status = 'doing'", id="taken-by-a-worker"),
        pytest.param("SET attempts = 1", id="a-retry"),
        pytest.param("SET scheduled_at = now() + interval '1 minute'", id="not-due-yet"),
        pytest.param(None, id="being-taken-now"),
    ],
)
async def test_a_reconcile_is_queued_anew_when_the_waiting_one_cannot_take_it(
    runtime: Runtime, queued: str | None
) -> None:
    """A job a worker runs or is taking (its row locked) may have read the PR already; a
    retry keeps its own count of attempts; one put back for later must not run earlier
    and must not make the new request wait: each time a new job is queued."""
    first = await request_reconcile(runtime, "o/r", 1, 7)
    async with runtime.pool.connection() as conn:
        if queued is not None:
            await conn.execute(
                f"UPDATE procrastinate_jobs {queued} WHERE task_name = 'reconcile_pr'"
            )
            second = await request_reconcile(runtime, "o/r", 1, 7)
        else:
            async with conn.transaction():
                await conn.execute(
                    "SELECT id FROM procrastinate_jobs WHERE task_name = 'reconcile_pr' FOR UPDATE"
                )
                second = await request_reconcile(runtime, "o/r", 1, 7)

    jobs = await reconciles(runtime)
    assert [(number, generation) for _, number, generation in jobs] == [(1, first), (1, second)]
    assert jobs[1][0] == "todo"


async def test_a_reconcile_asked_for_later_is_queued_for_then(runtime: Runtime) -> None:
    """A request with a delay does not ride on a job due now (it would run early)."""
    await request_reconcile(runtime, "o/r", 1, 7)
    await request_reconcile(runtime, "o/r", 1, 7, delay_s=60)

    assert [generation for _, _, generation in await reconciles(runtime)] == [1, 2]
