"""Per-process services, built once from Settings and passed in: database, jobs, GitHub."""

import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import httpx
import procrastinate
from procrastinate import Blueprint

from bot.config import Settings
from bot.engine import database, migrations
from bot.engine.jobs import build_job_app
from bot.engine.leases import Leases
from bot.github import GitHubApp
from bot.routing import Router

log = logging.getLogger(__name__)


@dataclass
class Runtime:
    settings: Settings
    router: Router
    pool: database.Pool
    jobs: procrastinate.App
    leases: Leases
    github: GitHubApp
    database_url: str
    embedded: bool
    extras: dict[str, object] = field(default_factory=dict)


@contextlib.asynccontextmanager
async def open_runtime(
    settings: Settings,
    router: Router,
    *,
    migrate: bool = True,
    extra_tasks: tuple[Blueprint, ...] = (),
    github_transport: httpx.AsyncBaseTransport | None = None,
    pool_size: int = 10,
) -> AsyncIterator[Runtime]:
    """Locate (or start) the database, apply migrations, open the pool and the job queue."""
    where = database.locate(settings)
    pool = database.open_pool(where.url, max_size=pool_size)
    await pool.open(wait=True, timeout=30)
    try:
        if migrate:
            async with pool.connection() as conn:
                await migrations.migrate(conn)
        jobs = build_job_app(where.url, *extra_tasks)
        async with jobs.open_async(pool):
            yield Runtime(
                settings=settings,
                router=router,
                pool=pool,
                jobs=jobs,
                leases=Leases(pool),
                github=GitHubApp(settings, transport=github_transport, pool=pool),
                database_url=where.url,
                embedded=where.embedded,
            )
    finally:
        await pool.close()
