"""`held_autocommit`: one connection lent to a block's short statements, one at a time."""

import asyncio

from bot.engine.database import Pool, autocommit, held_autocommit


async def backend(pool: Pool) -> int:
    async with autocommit(pool) as conn:
        cur = await conn.execute("SELECT pg_backend_pid() AS pid")
        row = await cur.fetchone()
        assert row is not None
        return int(row["pid"])


async def test_a_held_connection_is_lent_to_each_statement_of_the_block(pool: Pool) -> None:
    """Inside the block every `autocommit` gets the held connection (one backend, and no
    borrow from the pool); one nested in another, which finds it lent, borrows another."""
    before = pool.get_stats().get("requests_num", 0)
    async with held_autocommit(pool):
        first, second = await backend(pool), await backend(pool)
        async with autocommit(pool) as outer:
            cur = await outer.execute("SELECT pg_backend_pid() AS pid")
            row = await cur.fetchone()
            nested = await backend(pool)
    borrowed = pool.get_stats().get("requests_num", 0) - before
    assert row is not None and first == second == row["pid"]
    assert nested != first
    assert borrowed == 2, "the held connection and the nested one"


async def test_a_task_started_in_the_block_does_not_use_it_after_the_block(pool: Pool) -> None:
    """A task started inside the block inherits its context; once the block is over (the
    connection back in the pool, free to be lent to another) it borrows its own."""
    go = asyncio.Event()

    async def later() -> int:
        await go.wait()
        return await backend(pool)

    async with held_autocommit(pool):
        task = asyncio.create_task(later())
        await asyncio.sleep(0)
    before = pool.get_stats().get("requests_num", 0)
    go.set()
    await task
    assert pool.get_stats().get("requests_num", 0) == before + 1
