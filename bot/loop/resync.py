"""Periodic resync: webhooks are hints, and a hint can be lost for good (a reconcile that
exhausted its retries, an event GitHub never sent). PRs whose loop is not at rest and has not
moved for a while get a fresh reconcile; being level-triggered, it just looks again."""

import asyncio
import logging

from bot.engine.database import try_advisory_lock
from bot.loop.triggers import request_reconcile
from bot.runtime import Runtime

log = logging.getLogger(__name__)

_LOCK = 0x72737963  # "rsyc": one resync pass at a time across workers
AT_REST = ("ready", "needs-human", "stopped", "audited", "waiting")


async def resync_once(runtime: Runtime, *, quiet_for_s: float) -> list[tuple[str, int]]:
    """Reconcile again every PR not at rest whose row has not changed for `quiet_for_s`
    and that has no reconcile queued or running."""
    async with runtime.pool.connection() as conn, conn.transaction():
        if not await try_advisory_lock(conn, _LOCK):
            return []
        cur = await conn.execute(
            """SELECT p.repo, p.number, p.installation_id FROM review_loop_prs p
                WHERE p.state <> ALL(%s)
                  AND p.updated_at < now() - make_interval(secs => %s)
                  AND NOT EXISTS (
                      SELECT 1 FROM procrastinate_jobs j
                       WHERE j.task_name LIKE '%%reconcile_pr'
                         AND j.status IN ('todo', 'doing')
                         AND j.args->>'repo' = p.repo
                         AND (j.args->>'number')::int = p.number)""",
            (list(AT_REST), quiet_for_s),
        )
        stale = await cur.fetchall()
    for pr in stale:
        log.warning("resync: %s#%s has not moved; reconciling it again", pr["repo"], pr["number"])
        await request_reconcile(runtime, pr["repo"], pr["number"], pr["installation_id"])
    return [(pr["repo"], pr["number"]) for pr in stale]


async def run_resync(runtime: Runtime, *, interval_s: float, quiet_for_s: float) -> None:
    while True:
        await asyncio.sleep(interval_s)
        try:
            await resync_once(runtime, quiet_for_s=quiet_for_s)
        except Exception:
            log.warning("resync pass failed; will try again", exc_info=True)
