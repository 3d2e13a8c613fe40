"""Per-process services, built once from Settings and passed in: database, queue, GitHub."""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass

import httpx

from bot.config import Settings
from bot.engine import database, migrations
from bot.engine.leases import Leases
from bot.engine.queue import Queue
from bot.github.client import GitHubApp

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    pool: database.Pool
    queue: Queue
    leases: Leases
    github: GitHubApp
    database_url: str
    embedded: bool


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    *,
    migrate: bool = True,
    github_transport: httpx.AsyncBaseTransport | None = None,
    pool_size: int = 10,
) -> AsyncIterator[Runtime]:
    """Locate (or start) the database, apply migrations, open the pool and the job queue.

    The queue knows no job yet: a worker registers the jobs it runs (`bot/worker.py`)."""
    where = database.locate(settings)
    pool = database.open_pool(where.url, max_size=pool_size)
    await pool.open(wait=True, timeout=30)
    try:
        if migrate:
            async with pool.connection() as conn:
                await migrations.migrate(conn)
        queue = Queue(where.url)
        async with queue.app.open_async(pool):
            yield Runtime(
                settings=settings,
                pool=pool,
                queue=queue,
                leases=Leases(pool),
                github=GitHubApp(settings, transport=github_transport, pool=pool),
                database_url=where.url,
                embedded=where.embedded,
            )
    finally:
        await pool.close()
