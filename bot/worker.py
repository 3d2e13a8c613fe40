"""A worker process: runs queued jobs and the stalled-job reaper."""

import asyncio
import contextlib
import logging
import os
import socket

from bot.engine.reaper import reap_once
from bot.periodic import every
from bot.runtime import Runtime

log = logging.getLogger(__name__)


def worker_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


async def run_worker(runtime: Runtime, *, install_signal_handlers: bool = True) -> None:
    """Work until cancelled (or, with signal handlers, until SIGINT/SIGTERM)."""
    settings = runtime.settings
    background = [
        asyncio.create_task(
            every(
                settings.reaper_interval_s,
                lambda: reap_once(runtime.jobs, runtime.pool, settings.stalled_after_s),
                what="reaper pass",
            ),
            name="reaper",
        ),
        asyncio.create_task(
            every(
                JANITOR_INTERVAL_S,
                lambda: janitor_pass(runtime),
                what="worktree janitor",
                now=False,
            ),
            name="janitor",
        ),
    ]
    if settings.resync_interval_s > 0:
        from bot.loop.resync import resync_once

        resyncing = every(
            settings.resync_interval_s,
            lambda: resync_once(runtime, quiet_for_s=settings.resync_quiet_s),
            what="resync pass",
            now=False,
        )
        background.append(asyncio.create_task(resyncing, name="resync"))
    if settings.sweep_interval_s > 0 and settings.app_id is not None:
        from bot.loop.resync import sweep_open_prs

        sweeping = every(
            settings.sweep_interval_s, lambda: sweep_open_prs(runtime), what="sweep of open PRs"
        )
        background.append(asyncio.create_task(sweeping, name="sweep"))
    if settings.redeliver_interval_s > 0 and settings.app_id is not None:
        from bot.redeliver import redeliver_missed

        redelivering = every(
            settings.redeliver_interval_s,
            lambda: redeliver_missed(runtime),
            what="check for missed deliveries",
        )
        background.append(asyncio.create_task(redelivering, name="redeliver"))
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


async def janitor_pass(runtime: Runtime) -> None:
    """Delete finished worktrees in a batch, away from the moment the next one is created
    (deleting a big checkout slows the filesystem for a while), and stale warm ones."""
    from bot.loop.fleetctx import Fleet

    fleet = Fleet.of(runtime)
    await fleet.warm.drop_stale()
    removed = await fleet.mirrors.empty_trash(max_entries=50)
    if removed:
        log.info("deleted %d finished worktrees", removed)


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
