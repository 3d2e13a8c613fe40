"""A process that asks for many reservations under one installation's cap at once, as a
worker would for its runs: `python -m tests.loop.reserving_process URL GO_FILE` prints how
many were admitted. It waits until GO_FILE exists, so two of them ask at the same moment."""

import asyncio
import sys
import time
from pathlib import Path

from bot.engine.database import open_pool
from bot.loop.budget import Caps
from bot.loop.model_store import ModelStore

INSTALLATION = 77
CAP = Caps(daily_usd=1.0)
EXPECTED = 0.1
ASKS = 10


async def main(url: str, go: Path) -> int:
    pool = open_pool(url, min_size=ASKS, max_size=ASKS)
    await pool.open(wait=True, timeout=30)
    try:
        store = ModelStore(pool)
        while not go.exists():
            time.sleep(0.005)
        answers = await asyncio.gather(
            *(store.reserve(INSTALLATION, CAP, EXPECTED, f"run {i}") for i in range(ASKS))
        )
    finally:
        await pool.close()
    return sum(1 for reservation, _ in answers if reservation is not None)


if __name__ == "__main__":
    print(asyncio.run(main(sys.argv[1], Path(sys.argv[2]))))
