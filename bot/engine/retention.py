"""Retention: the finished work the database keeps, so that it does not grow without end.

Every webhook batch, reconcile and fix task leaves a finished job in procrastinate's tables,
with its events, and every delivery its row with its signed body. A worker's retention pass
(`bot/worker.py`, hourly) deletes what ended longer ago than `REVIEW_LOOP_RETENTION_DAYS`, in
batches of `BATCH` rows per statement (short transactions, whatever the backlog). Nothing
unfinished goes: a job `todo` or `doing`, a delivery still `queued`. Two workers' passes at
once delete disjoint rows (each batch skips the rows another one locked).
"""

from collections.abc import Mapping

from bot.engine.database import Pool, autocommit

FINISHED_JOB_STATES = ("succeeded", "failed", "cancelled", "aborted")
BATCH = 5000

# A finished job whose every event is older than the cut-off (its last one is its end); its
# events go with it (procrastinate's foreign key cascades, and its own trigger unlinks a
# periodic task's record of the job: this bot defers none).
_DELETE_JOBS = """
DELETE FROM procrastinate_jobs
 WHERE id IN (
       SELECT j.id FROM procrastinate_jobs j
        WHERE j.status = ANY(%(states)s::procrastinate_job_status[])
          AND NOT EXISTS (SELECT 1 FROM procrastinate_events e
                           WHERE e.job_id = j.id
                             AND e.at >= now() - make_interval(secs => %(older_than_s)s))
        ORDER BY j.id
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED)
"""


async def delete_finished_jobs(pool: Pool, older_than_s: float, *, batch: int = BATCH) -> int:
    """Delete the jobs that finished more than `older_than_s` ago; how many."""
    params = {"states": list(FINISHED_JOB_STATES), "older_than_s": older_than_s, "batch": batch}
    return await delete_in_batches(pool, _DELETE_JOBS, params, batch)


async def delete_in_batches(
    pool: Pool, statement: str, params: Mapping[str, object], batch: int
) -> int:
    """Run the DELETE `statement` (which deletes at most `batch` rows) until it deletes fewer;
    the rows deleted in all."""
    deleted = 0
    while True:
        async with autocommit(pool) as conn:
            cur = await conn.execute(statement, params)
            deleted += cur.rowcount
        if cur.rowcount < batch:
            return deleted
