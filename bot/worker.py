"""A worker process: the wiring of every job to what its body receives, the job loop, and the
background passes (reaper, janitor, resync, sweep, redelivery, retention)."""

import asyncio
import contextlib
import logging
import os
import socket
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from bot.engine.reaper import reap_once
from bot.engine.retention import delete_finished_jobs
from bot.loop.fleet import Fleet
from bot.loop.resync import resync_once, sweep_open_prs
from bot.loop.tasks import RECONCILE_PR, RUN_FIX_TASK
from bot.periodic import every
from bot.runtime import Runtime
from bot.webhooks.deliveries import delete_old_deliveries
from bot.webhooks.dispatch import DISPATCH_DELIVERIES, DISPATCH_DELIVERY, Dispatcher
from bot.webhooks.redeliver import redeliver_missed
from bot.webhooks.routing import Router

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


def wire(runtime: Runtime, router: Router) -> Fleet:
    """Build this process's fleet and register every job it runs, each with the context its
    body takes first. Once per process: every worker loop of the process shares the fleet."""
    fleet = Fleet.build(runtime)
    dispatcher = Dispatcher(fleet, router)
    runtime.queue.register(DISPATCH_DELIVERIES, dispatcher)
    runtime.queue.register(DISPATCH_DELIVERY, dispatcher)  # jobs queued before batching
    runtime.queue.register(RECONCILE_PR, fleet)
    runtime.queue.register(RUN_FIX_TASK, fleet)
    return fleet


async def run_worker(
    fleet: Fleet, *, install_signal_handlers: bool = True, started: asyncio.Event | None = None
) -> None:
    """Work until cancelled (or, with signal handlers, until SIGINT/SIGTERM). `started` is set
    once every pass that runs at start (reaper, sweep, redelivery) has run once: the worker's
    start-up requests to GitHub are made by then."""
    runtime = fleet.runtime
    settings = runtime.settings
    at_start: list[asyncio.Event] = []

    def passes(
        interval_s: float, work: Callable[[], Awaitable[object]], what: str, now: bool = True
    ) -> Coroutine[Any, Any, None]:
        ran = asyncio.Event()
        if now:
            at_start.append(ran)
        return every(interval_s, work, what=what, now=now, ran=ran)

    background = [
        asyncio.create_task(
            passes(
                settings.reaper_interval_s,
                lambda: reap_once(runtime.queue.app, runtime.pool, settings.stalled_after_s),
                "reaper pass",
            ),
            name="reaper",
        ),
        asyncio.create_task(
            passes(JANITOR_INTERVAL_S, lambda: janitor_pass(fleet), "worktree janitor", now=False),
            name="janitor",
        ),
    ]
    if settings.resync_interval_s > 0:
        resyncing = passes(
            settings.resync_interval_s,
            lambda: resync_once(runtime, quiet_for_s=settings.resync_quiet_s),
            "resync pass",
            now=False,
        )
        background.append(asyncio.create_task(resyncing, name="resync"))
    if settings.app_id is not None:
        # Asked of GitHub at the first start of a deployment, read from the database at the
        # others: so not inside the first job's requests.
        knowing = passes(IDENTITY_INTERVAL_S, runtime.github.identity, "the App's identity")
        background.append(asyncio.create_task(knowing, name="identity"))
    if settings.sweep_interval_s > 0 and settings.app_id is not None:
        sweeping = passes(
            settings.sweep_interval_s, lambda: sweep_open_prs(runtime), "sweep of open PRs"
        )
        background.append(asyncio.create_task(sweeping, name="sweep"))
    if settings.redeliver_interval_s > 0 and settings.app_id is not None:
        redelivering = passes(
            settings.redeliver_interval_s,
            lambda: redeliver_missed(runtime),
            "check for missed deliveries",
        )
        background.append(asyncio.create_task(redelivering, name="redeliver"))
    if settings.retention_days > 0:
        # At start too, but not one of the start-up passes `started` waits for: it asks
        # GitHub nothing, and a first pass over a large backlog may take a while.
        keeping = every(
            RETENTION_INTERVAL_S, lambda: retention_pass(runtime), what="retention pass"
        )
        background.append(asyncio.create_task(keeping, name="retention"))
    if started is not None:
        background.append(asyncio.create_task(_all_set(at_start, started), name="started"))
    log.info("worker %s started (concurrency %d)", worker_name(), settings.worker_concurrency)
    try:
        await runtime.queue.app.run_worker_async(
            name=worker_name(),
            concurrency=settings.worker_concurrency,
            update_heartbeat_interval=settings.heartbeat_s,
            fetch_job_polling_interval=settings.job_poll_interval_s,
            stalled_worker_timeout=settings.stalled_after_s,
            install_signal_handlers=install_signal_handlers,
        )
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


JANITOR_INTERVAL_S = 60.0
RETENTION_INTERVAL_S = 3600.0
IDENTITY_INTERVAL_S = 60.0  # until it is known (then each pass is an answer from memory)


async def _all_set(events: list[asyncio.Event], then: asyncio.Event) -> None:
    for event in events:
        await event.wait()
    then.set()


async def janitor_pass(fleet: Fleet) -> None:
    """Delete finished worktrees in a batch, away from the moment the next one is created
    (deleting a big checkout slows the filesystem for a while), stale warm ones and those
    whose worker died; prune the metadata of worktrees a crash left (never done as a
    worktree is made)."""
    await fleet.warm.drop_stale()
    abandoned = await fleet.mirrors.prune_abandoned()
    if abandoned:
        log.info("removed %d worktrees whose worker is gone", len(abandoned))
    await fleet.mirrors.prune_metadata()
    removed = await fleet.mirrors.empty_trash(max_entries=50)
    if removed:
        log.info("deleted %d finished worktrees", removed)


async def drain(runtime: Runtime) -> None:
    """Run every job that is ready now, then return (tests and one-shot tools)."""
    await runtime.queue.app.run_worker_async(
        name=worker_name(),
        concurrency=runtime.settings.worker_concurrency,
        wait=False,
        install_signal_handlers=False,
        listen_notify=False,
    )


async def retention_pass(runtime: Runtime) -> tuple[int, int]:
    """Delete the finished jobs and the dispatched deliveries older than the retention
    (`REVIEW_LOOP_RETENTION_DAYS`); (jobs, deliveries) deleted."""
    older_than_s = runtime.settings.retention_days * 86400
    jobs = await delete_finished_jobs(runtime.pool, older_than_s)
    deliveries = await delete_old_deliveries(runtime.pool, older_than_s)
    if jobs or deliveries:
        log.info(
            "retention: deleted %d finished jobs and %d deliveries older than %g days",
            jobs,
            deliveries,
            runtime.settings.retention_days,
        )
    return jobs, deliveries
