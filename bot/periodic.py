"""Background passes a worker repeats (reaper, janitor, resync, sweep, redelivery)."""

import asyncio
import logging
from collections.abc import Awaitable, Callable

log = logging.getLogger(__name__)


async def every(
    interval_s: float,
    work: Callable[[], Awaitable[object]],
    *,
    what: str,
    now: bool = True,
    ran: asyncio.Event | None = None,
) -> None:
    """Run `work` (at once, or after one interval with `now=False`), then every `interval_s`,
    until cancelled. A failing pass is logged and the next one tries again. `ran` is set
    when the first pass has ended, however it ended."""
    if not now:
        await asyncio.sleep(interval_s)
    while True:
        try:
            await work()
        except Exception:
            log.warning("%s failed; will try again in %.0f s", what, interval_s, exc_info=True)
        if ran is not None:
            ran.set()
        await asyncio.sleep(interval_s)
