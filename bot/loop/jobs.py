"""The loop's jobs: reconcile a PR, run a fix task. Both hold a lease while they act."""

import logging

from bot.engine.jobs import task
from bot.loop.fixing import LEASE_TTL_S, FixRunner, TaskFailed, holder_name
from bot.loop.fleetctx import Fleet
from bot.loop.reconcile import PrReconciler
from bot.loop.store import LoopStore
from bot.loop.triggers import request_reconcile, requeue_reconcile
from bot.runtime import Runtime

log = logging.getLogger(__name__)

BUSY_RETRY_S = 2.0
# A task left in one of these by a crashed worker is picked up again by the retried job;
# "pushed" included: opening and merging its fix PR are idempotent.
RESUMABLE = ("queued", "running", "pushed")


def lease_ttl(runtime: Runtime) -> float:
    """Leases lapse no later than the reaper presumes a silent worker dead: otherwise the
    job it retries finds the dead worker's lease and waits out the rest of its TTL."""
    return min(LEASE_TTL_S, runtime.settings.stalled_after_s)


async def reconcile_pr(runtime: Runtime, repo: str, number: int, generation: int) -> None:
    store = LoopStore(runtime.pool)
    row = await store.get(repo, number)
    if row is None or generation < row.generation:
        return  # a job for a newer generation is queued and will see the same state
    fleet = Fleet.of(runtime)
    async with runtime.leases.hold(
        f"pr:{repo}#{number}", holder_name(), lease_ttl(runtime)
    ) as lease:
        if lease is None:
            await requeue_reconcile(runtime, repo, number, generation, BUSY_RETRY_S)
            return
        row = await store.get(repo, number)
        assert row is not None
        if row.generation > generation:
            return
        async with runtime.github.installation_client(row.installation_id) as gh:
            api = await runtime.github.repo_api(gh, repo)
            await PrReconciler(fleet, api, row, lease).run()
        await store.mark_handled(repo, number, generation)


async def run_fix_task(runtime: Runtime, task_id: int) -> None:
    store = LoopStore(runtime.pool)
    row = await store.task(task_id)
    if row is None or row.status not in RESUMABLE:
        return  # finished already: a redelivered job changes nothing
    fleet = Fleet.of(runtime)
    key = f"issue:{row.repo}#{row.issue_number}"
    async with runtime.leases.hold(key, holder_name(), lease_ttl(runtime)) as lease:
        if lease is None:
            job = task(runtime.jobs, "run_fix_task").configure(
                schedule_in={"seconds": BUSY_RETRY_S}
            )
            await job.defer_async(task_id=task_id)
            return
        row = await store.task(task_id)  # it may have finished while we waited for the lease
        if row is None or row.status not in RESUMABLE:
            return
        await store.update_task(task_id, status="running", attempts=row.attempts + 1)
        row = await store.task(task_id)
        assert row is not None
        try:
            async with runtime.github.installation_client(row.installation_id) as gh:
                api = await runtime.github.repo_api(gh, row.repo)
                await FixRunner(fleet, api, row, lease).run()
        except TaskFailed as exc:
            log.warning(
                "fix task %s for #%s ended %s: %s",
                task_id,
                row.issue_number,
                exc.status,
                exc.reason,
            )
            await store.update_task(task_id, status=exc.status, error=exc.reason[:2000])
        except Exception as exc:
            log.exception("fix task %s for #%s failed", task_id, row.issue_number)
            await store.update_task(
                task_id, status="failed", error=f"{type(exc).__name__}: {exc}"[:2000]
            )
    row = await store.task(task_id)
    assert row is not None
    # The bot's own merges and PRs send webhooks the bot ignores: it asks for the
    # follow-up reconcile itself.
    if row.pr_number is not None:
        await request_reconcile(runtime, row.repo, row.pr_number, row.installation_id)
    elif row.fix_pr is not None:
        await request_reconcile(
            runtime, row.repo, row.fix_pr, row.installation_id, force_audit=True
        )
