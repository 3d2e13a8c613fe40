"""Schema migrations tracked by the bot: procrastinate's schema and the bot's own tables."""

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from importlib import resources

from procrastinate.schema import SchemaManager
from psycopg import sql

from bot.engine.database import Conn

log = logging.getLogger(__name__)

# Any constant works: it only has to be the same in every process that migrates.
_ADVISORY_LOCK = 0x7265766C  # "revl"

Apply = Callable[[Conn], Awaitable[None]]


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    apply: Apply


def _sql_file(name: str) -> Apply:
    async def apply(conn: Conn) -> None:
        text = (resources.files("bot.engine") / "sql" / name).read_text(encoding="utf-8")
        await conn.execute(sql.SQL(text))

    return apply


async def _procrastinate_schema(conn: Conn) -> None:
    await conn.execute(sql.SQL(SchemaManager.get_schema()))


MIGRATIONS: tuple[Migration, ...] = (
    Migration(1, "procrastinate job queue schema", _procrastinate_schema),
    Migration(2, "deliveries and leases", _sql_file("0002_bot_tables.sql")),
    Migration(3, "review loop state: pull requests and fix tasks", _sql_file("0003_loop.sql")),
    Migration(4, "fan-out: measured costs, plans, batched tasks", _sql_file("0004_fanout.sql")),
    Migration(5, "write throttle shared by every process", _sql_file("0005_write_throttle.sql")),
    Migration(6, "deliveries keep their raw bodies", _sql_file("0006_raw_bodies.sql")),
    Migration(7, "model reviewers' findings", _sql_file("0007_model_findings.sql")),
    Migration(8, "model review cache and call records", _sql_file("0008_model_cache_calls.sql")),
    Migration(9, "the round of each model call", _sql_file("0009_call_rounds.sql")),
    Migration(10, "per-installation cost caps", _sql_file("0010_installation_caps.sql")),
    Migration(11, "what the bot read from GitHub, cached", _sql_file("0011_github_cache.sql")),
    Migration(12, "write sends: content-creating or not", _sql_file("0012_write_kinds.sql")),
    Migration(13, "reconciles that must not wait for a round", _sql_file("0013_urgent.sql")),
    Migration(14, "GitHub creates begun, the App's identity", _sql_file("0014_github_intents.sql")),
    Migration(15, "queued reconciles and fix jobs indexed", _sql_file("0015_job_indexes.sql")),
    Migration(16, "the changes of each PR's fix tasks, counted", _sql_file("0016_task_epoch.sql")),
    Migration(17, "where each fix task pushed its branch", _sql_file("0017_pushed_sha.sql")),
    Migration(18, "delivery rows stored as they come", _sql_file("0018_delivery_rows_inline.sql")),
    Migration(19, "ignored deliveries keep no body", _sql_file("0019_ignored_without_body.sql")),
)

LATEST = MIGRATIONS[-1].version


async def _ensure_table(conn: Conn) -> None:
    await conn.execute(
        """CREATE TABLE IF NOT EXISTS review_loop_migrations (
               version integer PRIMARY KEY,
               name text NOT NULL,
               applied_at timestamptz NOT NULL DEFAULT now())"""
    )


async def applied_versions(conn: Conn) -> set[int]:
    cur = await conn.execute("SELECT to_regclass('review_loop_migrations') IS NOT NULL AS ok")
    row = await cur.fetchone()
    if not row or not row["ok"]:
        return set()
    cur = await conn.execute("SELECT version FROM review_loop_migrations")
    return {int(r["version"]) for r in await cur.fetchall()}


async def migrate(conn: Conn) -> list[Migration]:
    """Apply every pending migration, each in its own transaction; safe to run concurrently."""
    done: list[Migration] = []
    async with conn.transaction():
        # Serialise migrators: a second process waits here, then finds nothing to do.
        await conn.execute("SELECT pg_advisory_xact_lock(%s)", (_ADVISORY_LOCK,))
        await _ensure_table(conn)
        have = await applied_versions(conn)
        for migration in MIGRATIONS:
            if migration.version in have:
                continue
            async with conn.transaction():
                await migration.apply(conn)
                await conn.execute(
                    "INSERT INTO review_loop_migrations (version, name) VALUES (%s, %s)",
                    (migration.version, migration.name),
                )
            log.info("applied migration %d: %s", migration.version, migration.name)
            done.append(migration)
    return done


async def is_current(conn: Conn) -> bool:
    return LATEST in await applied_versions(conn)
