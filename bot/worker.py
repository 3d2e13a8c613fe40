"""A worker process: runs queued jobs and the stalled-job reaper."""

import asyncio
import contextlib
import logging
import os
import socket

from bot.engine.reaper import run_reaper
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_worker(runtime: Runtime, *, install_signal_handlers: bool = True) -> None:
    """Work until cancelled (or, with signal handlers, until SIGINT/SIGTERM)."""
    settings = runtime.settings
    reaper = asyncio.create_task(
        run_reaper(
            runtime.jobs,
            runtime.pool,
            interval_s=settings.reaper_interval_s,
            stalled_after_s=settings.stalled_after_s,
        ),
        name="reaper",
    )
    janitor = asyncio.create_task(run_janitor(runtime), name="janitor")
    background = [reaper, janitor]
    if settings.resync_interval_s > 0:
        from bot.loop.resync import run_resync

        resyncing = run_resync(
            runtime, interval_s=settings.resync_interval_s, quiet_for_s=settings.resync_quiet_s
        )
        background.append(asyncio.create_task(resyncing))
    if settings.sweep_interval_s > 0 and settings.app_id is not None:
        from bot.loop.resync import run_sweeper

        sweeping = run_sweeper(runtime, interval_s=settings.sweep_interval_s)
        background.append(asyncio.create_task(sweeping))
    if settings.redeliver_interval_s > 0 and settings.app_id is not None:
        from bot.redeliver import run_redeliverer

        interval = settings.redeliver_interval_s
        background.append(asyncio.create_task(run_redeliverer(runtime, interval_s=interval)))
    log.info("worker %s started (concurrency %d)", worker_name(), settings.worker_concurrency)
    try:
        await runtime.jobs.run_worker_async(
            name=worker_name(),
            concurrency=settings.worker_concurrency,
            additional_context={"runtime": runtime},
            update_heartbeat_interval=settings.heartbeat_s,
            stalled_worker_timeout=settings.stalled_after_s,
            install_signal_handlers=install_signal_handlers,
        )
    finally:
        for task in background:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task


JANITOR_INTERVAL_S = 60.0


async def run_janitor(runtime: Runtime) -> None:
    """Delete finished worktrees in batches, away from the moment the next one is created
    (deleting a big checkout slows the filesystem for a while)."""
    from bot.loop.fleetctx import Fleet

    while True:
        await asyncio.sleep(JANITOR_INTERVAL_S)
        try:
            fleet = Fleet.of(runtime)
            await fleet.warm.drop_stale()
            removed = await fleet.mirrors.empty_trash(max_entries=50)
            if removed:
                log.info("deleted %d finished worktrees", removed)
        except Exception:
            log.exception("emptying the worktree trash failed; will try again")


async def drain(runtime: Runtime) -> None:
    """Run every job that is ready now, then return (tests and one-shot tools)."""
    await runtime.jobs.run_worker_async(
        name=worker_name(),
        concurrency=runtime.settings.worker_concurrency,
        additional_context={"runtime": runtime},
        wait=False,
        install_signal_handlers=False,
        listen_notify=False,
    )
