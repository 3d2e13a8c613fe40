"""Turning events into work: bump the PR's generation and queue a reconcile.

Repeat events are coalesced: a reconcile job whose generation is older than the PR's
latest exits at once, because a newer job will look at the same (newer) state.
"""

from bot.engine.jobs import task
from bot.loop.store import LoopStore
from bot.runtime import Runtime


async def request_reconcile(
    runtime: Runtime,
    repo: str,
    number: int,
    installation_id: int,
    *,
    delay_s: float = 0,
    **flags: bool,
) -> int:
    """Queue a reconcile of PR `repo#number`; returns the generation it will handle.

    The bump and the job are written in one transaction: a bump without its job would make
    the already queued job (an older generation) exit, and nothing would reconcile the PR."""
    store = LoopStore(runtime.pool)
    async with runtime.pool.connection() as conn, conn.transaction():
        generation = await store.bump(repo, number, installation_id, conn, **flags)
        options: dict[str, object] = {"connection": conn}
        if delay_s:
            options["schedule_in"] = {"seconds": delay_s}
        job = task(runtime.jobs, "reconcile_pr").configure(**options)
        await job.defer_async(repo=repo, number=number, generation=generation)
    return generation


async def requeue_reconcile(
    runtime: Runtime, repo: str, number: int, generation: int, delay_s: float
) -> None:
    """Try the same generation again later (its PR was busy)."""
    job = task(runtime.jobs, "reconcile_pr").configure(schedule_in={"seconds": delay_s})
    await job.defer_async(repo=repo, number=number, generation=generation)


async def queue_fix(runtime: Runtime, task_id: int) -> None:
    await task(runtime.jobs, "run_fix_task").defer_async(task_id=task_id)
