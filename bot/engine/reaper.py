"""The reaper: retries jobs whose worker stopped heart-beating (a crashed or killed worker).

procrastinate only detects stalled jobs; nothing re-runs them by itself. Every worker runs
this loop; an advisory lock lets one of them reap at a time.
"""

import logging

import procrastinate
from procrastinate import exceptions as proc_exc

from bot.engine.database import Pool, try_advisory_lock

log = logging.getLogger(__name__)

_REAPER_LOCK = 0x7265617072  # "reapr"


async def reap_once(jobs: procrastinate.App, pool: Pool, stalled_after_s: float) -> list[int]:
    """Put back in the queue every running job whose worker has been silent for
    `stalled_after_s`; return their ids."""
    retried: list[int] = []
    async with pool.connection() as conn, conn.transaction():
        if not await try_advisory_lock(conn, _REAPER_LOCK):
            return retried
        stalled = await jobs.job_manager.get_stalled_jobs(seconds_since_heartbeat=stalled_after_s)
        for job in stalled:
            try:
                await jobs.job_manager.retry_job(job)
            except proc_exc.ConnectorException:
                # Finished or retried by someone else between the two queries: nothing to do.
                log.info("stalled job %s changed state before it could be retried", job.id)
                continue
            log.warning(
                "retrying job %s (%s): its worker %s stopped heart-beating",
                job.id,
                job.task_name,
                job.worker_id,
            )
            assert job.id is not None
            retried.append(job.id)
        await jobs.job_manager.prune_stalled_workers(seconds_since_heartbeat=stalled_after_s)
    return retried
