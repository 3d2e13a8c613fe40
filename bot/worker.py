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
        reaper.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await reaper


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
