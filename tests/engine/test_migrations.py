"""Migrations are tracked, idempotent and safe to run from several processes at once."""

import asyncio

from bot.engine import database, migrations


async def test_concurrent_migrators_apply_each_migration_once(empty_db_url: str) -> None:
    """Three processes migrating one empty database at once: each migration applied once."""
    pools = [database.open_pool(empty_db_url, max_size=1) for _ in range(3)]
    for pool in pools:
        await pool.open(wait=True)
    try:

        async def run(pool: database.Pool) -> list[migrations.Migration]:
            async with pool.connection() as conn:
                return await migrations.migrate(conn)

        results = await asyncio.gather(*(run(p) for p in pools))
        applied = [m.version for result in results for m in result]
        assert sorted(applied) == [m.version for m in migrations.MIGRATIONS]
        async with pools[0].connection() as conn:
            assert await migrations.is_current(conn)
            assert await migrations.migrate(conn) == []
            cur = await conn.execute("SELECT to_regclass('procrastinate_jobs') IS NOT NULL AS ok")
            row = await cur.fetchone()
            assert row is not None and row["ok"]
    finally:
        for pool in pools:
            await pool.close()
