"""The whole thing on one machine: the sandbox GitHub plus the bot (web + worker) in process.

Used by `review-loop demo` and the end-to-end tests. The bot is the unchanged production
code; it only knows the sandbox through REVIEW_LOOP_GITHUB_URL.
"""

import asyncio
import contextlib
import secrets
import socket
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import uvicorn

from bot.config import Settings
from bot.engine.database import stop_embedded
from bot.loop.fleet import Fleet
from bot.runtime import Runtime, open_runtime
from bot.sandbox.server import Sandbox
from bot.web.app import create_app
from bot.worker import run_worker, wire


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def,unused-ignore]
        yield


@dataclass
class LocalStack:
    sandbox: Sandbox
    fleet: Fleet
    webhook_url: str
    started: list[asyncio.Event] = field(default_factory=list)  # one per worker

    async def started_up(self) -> None:
        """Wait until every worker has run its start-up passes (reaper, sweep, redelivery)
        once: what the bot asks GitHub at start is asked by then."""
        for event in self.started:
            await event.wait()

    @property
    def runtime(self) -> Runtime:
        return self.fleet.runtime

    @property
    def settings(self) -> Settings:
        return self.runtime.settings


@contextlib.asynccontextmanager
async def local_stack(
    workdir: Path,
    *,
    database_url: str | None = None,
    workers: int = 1,
    **overrides: Any,
) -> AsyncIterator[LocalStack]:
    """Start the sandbox, then the bot against it; stop both at the end."""
    secret = secrets.token_hex(16)
    sandbox = await asyncio.to_thread(Sandbox.start, workdir / "github", webhook_secret=secret)
    try:
        values: dict[str, Any] = {
            "app_id": sandbox.app_id,
            "private_key_path": sandbox.private_key_path,
            "webhook_secret": secret,
            "github_url": sandbox.api_url,
            "data_dir": workdir / "bot",
            "database_url": database_url,
            "write_interval_s": 0.05,
            "heartbeat_s": 1.0,
            "stalled_after_s": 10.0,
            "reaper_interval_s": 2.0,
            "job_poll_interval_s": 0.5,
            "worker_concurrency": 4,
        }
        values.update(overrides)
        settings = Settings(_env_file=None, **values)
        from handlers import enabled_router

        async with open_runtime(settings) as runtime:
            router = enabled_router()
            fleet = wire(runtime, router)
            sock = socket.socket()
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
            server = _Server(
                uvicorn.Config(
                    create_app(runtime, router),
                    log_level="warning",
                    lifespan="off",
                    access_log=False,
                )
            )
            web = asyncio.create_task(server.serve(sockets=[sock]))
            while not server.started:
                if web.done():
                    web.result()
                await asyncio.sleep(0.01)
            url = f"http://127.0.0.1:{port}/webhook"
            await asyncio.to_thread(sandbox.set_webhook, url, secret)
            started = [asyncio.Event() for _ in range(workers)]
            working = [
                asyncio.create_task(run_worker(fleet, install_signal_handlers=False, started=event))
                for event in started
            ]
            try:
                yield LocalStack(sandbox, fleet, url, started)
            finally:
                for w in working:
                    w.cancel()
                for w in working:
                    with contextlib.suppress(asyncio.CancelledError):
                        await w
                server.should_exit = True
                await web
                sock.close()
    finally:
        await asyncio.to_thread(sandbox.stop)
        if database_url is None:
            # The embedded PostgreSQL lives in the work directory, which callers remove
            # next: stopped at exit instead, it would find its directory gone and run on
            # until it notices its lock file missing (a minute).
            await asyncio.to_thread(stop_embedded, overrides.get("data_dir", workdir / "bot"))


SETTLED_STATES = ("ready", "needs-human", "waiting")


async def pending_jobs(runtime: Runtime) -> int:
    async with runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT count(*) AS n FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        )
        row = await cur.fetchone()
    return int(row["n"]) if row else 0


async def wait_settled(
    stack: LocalStack,
    repo: str,
    number: int,
    *,
    timeout: float = 300,
    on_progress: Any = None,
) -> Any:
    """Wait until the PR's loop has come to rest (ready or needs-human, no job pending)."""
    from bot.loop.store import LoopStore

    store = LoopStore(stack.runtime.pool)
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        if on_progress is not None:
            await on_progress()
        row = await store.get(repo, number)
        idle = await asyncio.to_thread(stack.sandbox.hub.webhooks.wait_idle, 0)
        pending = await pending_jobs(stack.runtime)
        if (
            row is not None
            and row.state in SETTLED_STATES
            and row.handled >= row.generation
            and idle
            and pending == 0
        ):
            return row
        if loop.time() > deadline:
            state = (
                f"state {row.state}, handled {row.handled} of generation {row.generation}"
                if row
                else "not started"
            )
            raise TimeoutError(
                f"{repo}#{number} did not settle in {timeout} s ({state}; "
                f"webhooks {'idle' if idle else 'in flight'}; {pending} jobs pending)"
            )
        await asyncio.sleep(0.25)
