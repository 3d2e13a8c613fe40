"""procrastinate's job manager, except that a worker a peer took for dead comes back.

A worker whose heartbeat lapsed for `stalled_after_s` (a paused or CPU-starved process, an
event loop blocked for a while) has its `procrastinate_workers` row deleted by a peer's
reaper; procrastinate 3.x then sets its running jobs' worker to NULL (so the reaper retries
them), its heartbeats update nothing, and its next fetch fails on the foreign key of the
deleted row, which ends `run_worker_async` and the process with it. Here the worker puts its
row back under the same id instead, and keeps working; a job of it that was retried in the
meantime runs twice, which the fix task's fencing lease already tolerates.
"""

import logging
from collections.abc import Iterable

import psycopg
from procrastinate import exceptions, jobs, manager

log = logging.getLogger(__name__)

# `xmax = 0` on the returned row: it was inserted, not updated (the row had been deleted).
_HEARTBEAT = """
    INSERT INTO procrastinate_workers (id, last_heartbeat) OVERRIDING SYSTEM VALUE
    VALUES (%(worker_id)s, NOW())
    ON CONFLICT (id) DO UPDATE SET last_heartbeat = NOW()
    RETURNING xmax = 0 AS inserted
"""


class JobManager(manager.JobManager):
    async def update_heartbeat(self, worker_id: int) -> None:
        """Beat, registering again when a peer has pruned this worker."""
        await self._beat(worker_id)

    async def fetch_job(self, queues: Iterable[str] | None, worker_id: int) -> jobs.Job | None:
        try:
            return await super().fetch_job(queues, worker_id)
        except exceptions.ConnectorException as exc:
            if not isinstance(exc.__cause__, psycopg.errors.ForeignKeyViolation):
                raise
        await self._beat(worker_id)
        return await super().fetch_job(queues, worker_id)

    async def _beat(self, worker_id: int) -> None:
        row = await self.connector.execute_query_one_async(_HEARTBEAT, worker_id=worker_id)
        if row["inserted"]:
            log.warning(
                "worker %s was taken for stalled (no heartbeat in time) and pruned by a peer; "
                "registered again: its jobs running then are retried elsewhere as well",
                worker_id,
            )
