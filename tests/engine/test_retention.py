"""Retention: finished jobs and dispatched deliveries older than `REVIEW_LOOP_RETENTION_DAYS`
are deleted; nothing unfinished is, nor anything newer."""

import pytest
from pydantic import ValidationError

from bot.config import Settings
from bot.engine.database import Pool
from bot.engine.retention import delete_finished_jobs
from bot.loop.tasks import RECONCILE_PR
from bot.runtime import Runtime
from bot.webhooks.deliveries import Delivery, store_deliveries
from bot.worker import retention_pass

DAY_S = 86400.0


async def job(runtime: Runtime, status: str, age_days: float) -> int:
    """A reconcile job in `status` whose events are all `age_days` old."""
    job_id = await runtime.queue.defer(RECONCILE_PR, repo="o/r", number=1, generation=1)
    async with runtime.pool.connection() as conn:
        await conn.execute(
            "UPDATE procrastinate_jobs SET status = %s WHERE id = %s", (status, job_id)
        )
        await conn.execute(
            """INSERT INTO procrastinate_events (job_id, type, at)
               VALUES (%s, 'started', now())""",
            (job_id,),
        )
        await conn.execute(
            """UPDATE procrastinate_events SET at = now() - make_interval(secs => %s)
                WHERE job_id = %s""",
            (age_days * DAY_S, job_id),
        )
    return job_id


async def delivery(pool: Pool, delivery_id: str, status: str, age_days: float) -> None:
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        await store_deliveries(conn, [Delivery.of(delivery_id, "ping", b"{}", {})])
        await conn.execute(
            """UPDATE review_loop_deliveries
                  SET status = %s, received_at = now() - make_interval(secs => %s)
                WHERE id = %s""",
            (status, age_days * DAY_S, delivery_id),
        )


async def ids(pool: Pool, query: str) -> set[object]:
    async with pool.connection() as conn:
        cur = await conn.execute(query)
        return {row["id"] for row in await cur.fetchall()}


async def test_the_pass_deletes_only_finished_work_older_than_the_retention(
    runtime: Runtime,
) -> None:
    """14 days kept: jobs that ended 20 days ago go with their events, whatever their end;
    one that ended 2 days ago stays, and so do jobs not ended however old. Deliveries
    dispatched 20 days ago go; a queued one stays however old, and a recent one stays."""
    assert runtime.settings.retention_days == 14
    old = [await job(runtime, status, 20) for status in ("succeeded", "failed", "cancelled")]
    kept = [
        await job(runtime, "succeeded", 2),
        await job(runtime, "todo", 20),
        await job(runtime, "doing", 20),
    ]
    for delivery_id, status, age in [
        ("old-done", "done", 20),
        ("old-ignored", "ignored", 20),
        ("old-failed", "failed", 20),
        ("old-queued", "queued", 20),
        ("new-done", "done", 2),
    ]:
        await delivery(runtime.pool, delivery_id, status, age)

    assert await retention_pass(runtime) == (3, 3)

    jobs = await ids(runtime.pool, "SELECT id FROM procrastinate_jobs")
    events = await ids(runtime.pool, "SELECT DISTINCT job_id AS id FROM procrastinate_events")
    # The dispatch jobs the deliveries queued are recent: kept.
    assert set(kept) <= jobs and not set(old) & jobs
    assert not set(old) & events
    deliveries = await ids(runtime.pool, "SELECT id FROM review_loop_deliveries")
    assert deliveries == {"old-queued", "new-done"}

    assert await retention_pass(runtime) == (0, 0)


async def test_jobs_are_deleted_in_batches_until_none_is_left(runtime: Runtime) -> None:
    """A backlog larger than a batch is deleted by several short statements, all of it."""
    for _ in range(5):
        await job(runtime, "succeeded", 30)

    assert await delete_finished_jobs(runtime.pool, 14 * DAY_S, batch=2) == 5
    assert await ids(runtime.pool, "SELECT id FROM procrastinate_jobs") == set()


@pytest.mark.parametrize(("days", "ok"), [(0, True), (7, True), (14, True), (3, False)])
def test_a_retention_shorter_than_githubs_redelivery_window_is_refused(
    days: float, ok: bool
) -> None:
    """0 keeps everything; under 7 days a delivery GitHub may still redeliver would be
    forgotten, and taken as new when it comes again."""
    if ok:
        assert Settings(_env_file=None, retention_days=days).retention_days == days  # type: ignore[call-arg]
    else:
        with pytest.raises(ValidationError, match="at least 7 days"):
            Settings(_env_file=None, retention_days=days)  # type: ignore[call-arg]
