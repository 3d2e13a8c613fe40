"""A real `review-loop` worker process with one extra slow task, for crash tests.

Run as: python -m tests.engine.slow_worker DATABASE_URL
"""

import asyncio
import os
import sys
from pathlib import Path

from bot.config import Settings
from bot.engine.queue import Job
from bot.runtime import open_runtime
from bot.webhooks.context import Context
from bot.webhooks.routing import Router
from bot.worker import run_worker, wire

# Fast failure detection so the test does not wait a minute for a dead worker.
CRASH_SETTINGS = {"heartbeat_s": 0.5, "stalled_after_s": 5.0, "reaper_interval_s": 0.5}


async def slow(_: None, marker: str, seconds: float) -> None:
    with Path(marker + ".started").open("a") as f:
        f.write(f"{os.getpid()}\n")
    await asyncio.sleep(seconds)
    with Path(marker + ".done").open("a") as f:
        f.write(f"{os.getpid()}\n")


SLOW = Job("slow", slow)

# A handler for the `slow_event` deliveries of crash tests: the first run of it (in any
# process) notes its pid in the payload's `marker` file and hangs; later runs note theirs
# and return.
slow_router = Router()


@slow_router.register("slow_event")
async def slow_handler(ctx: Context) -> None:
    started = Path(ctx.payload["marker"] + ".started")
    first = not started.exists()
    with started.open("a") as f:
        f.write(f"{os.getpid()}\n")
    if first:
        await asyncio.sleep(60)


async def main(url: str) -> None:
    settings = Settings(_env_file=None, database_url=url, worker_concurrency=1, **CRASH_SETTINGS)  # type: ignore[call-arg,arg-type]
    async with open_runtime(settings) as runtime:
        fleet = wire(runtime, slow_router)
        runtime.queue.register(SLOW, None)
        await run_worker(fleet)


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1]))
