"""The process's heartbeat file: touched from its event loop, read by `review-loop healthcheck`.

A container's liveness probe runs in another process, so the running one leaves a trace it
can read: `$REVIEW_LOOP_DATA_DIR/heartbeat`, touched every `REVIEW_LOOP_HEARTBEAT_S` by a task
on the same event loop as the worker's jobs and the web server. A wedged loop stops touching
it; a crashed process removes it or leaves it to go stale. It says nothing about the database
or GitHub: a probe that failed on those would restart every worker during a database outage,
which fixes nothing.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from pathlib import Path

log = logging.getLogger(__name__)

HEARTBEAT_FILE = "heartbeat"


def heartbeat_path(data_dir: Path) -> Path:
    return data_dir / HEARTBEAT_FILE


def touch(path: Path) -> None:
    """Set the file's modification time to now, creating it (and its folder) if needed."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch()


def stale_reason(path: Path, max_age_s: float, now: float) -> str | None:
    """Why the heartbeat at `path` does not show a live process at `now` (epoch seconds), or
    None when it was touched within `max_age_s`."""
    try:
        touched = path.stat().st_mtime
    except FileNotFoundError:
        return f"no heartbeat at {path}: the process is not running, or not yet started"
    age = now - touched
    if age > max_age_s:
        return f"heartbeat at {path} is {age:.0f} s old (more than {max_age_s:g} s)"
    return None


@contextlib.asynccontextmanager
async def heartbeat(path: Path, interval_s: float) -> AsyncIterator[None]:
    """Touch `path` now and every `interval_s` while the block runs; remove it afterwards."""

    def touch_or_warn() -> None:
        try:
            touch(path)
        except OSError as exc:
            # Left stale on purpose: a process that cannot write its data dir is unwell.
            log.warning("cannot touch the heartbeat file %s: %s", path, exc)

    async def beat() -> None:
        while True:
            await asyncio.sleep(interval_s)
            touch_or_warn()

    touch_or_warn()
    task = asyncio.create_task(beat(), name="heartbeat")
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        path.unlink(missing_ok=True)
