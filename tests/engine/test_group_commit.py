"""Group commit: concurrent items share a write, each submitter gets its own result after
that write committed, and a failed write fails its own submitters only."""

import asyncio
from collections.abc import AsyncIterator, Sequence

import psycopg
import pytest

from bot.engine.database import Conn, Pool, open_pool
from bot.engine.group_commit import GroupCommit


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    opened = open_pool(db_url, max_size=4)
    await opened.open(wait=True)
    async with opened.connection() as conn:
        await conn.execute("CREATE TABLE items (n integer PRIMARY KEY)")
        await conn.commit()
    yield opened
    await opened.close()


class Recorder:
    """A write that inserts its items, can be held at its next call, and fails on -1."""

    def __init__(self) -> None:
        self.batches: list[list[int]] = []
        self.hold = asyncio.Event()
        self.hold.set()
        self.entered = asyncio.Event()

    async def write(self, conn: Conn, items: Sequence[int]) -> list[int]:
        self.batches.append(list(items))
        self.entered.set()
        await self.hold.wait()
        async with conn.transaction():  # two steps: the write opens its own transaction
            await conn.execute("INSERT INTO items SELECT unnest(%s::int[])", (list(items),))
            if -1 in items:
                raise ValueError("refused")
        return [n * 10 for n in items]


async def _stored(pool: Pool) -> set[int]:
    async with pool.connection() as conn:
        cur = await conn.execute("SELECT n FROM items")
        return {row["n"] for row in await cur.fetchall()}


@pytest.mark.parametrize("in_flight", [1, 2])
async def test_every_item_is_written_while_writers_come_and_go(pool: Pool, in_flight: int) -> None:
    """Sixteen submitters, each submitting again as soon as it is answered: every item is
    written, none is left waiting for a writer that was just stopping."""
    recorder = Recorder()
    commit = GroupCommit(pool, recorder.write, max_in_flight=in_flight)

    async def submitter(k: int) -> list[int]:
        return [await commit.submit(k * 100 + n) for n in range(15)]

    results = await asyncio.wait_for(asyncio.gather(*(submitter(k) for k in range(16))), 60)
    assert results == [[(k * 100 + n) * 10 for n in range(15)] for k in range(16)]
    assert await _stored(pool) == {k * 100 + n for k in range(16) for n in range(15)}


async def test_items_arriving_during_a_write_share_the_next_one(pool: Pool) -> None:
    """With one writer busy, nine items that arrive meanwhile go out together in one write."""
    recorder = Recorder()
    commit = GroupCommit(pool, recorder.write, max_in_flight=1)
    recorder.hold.clear()
    first = asyncio.create_task(commit.submit(0))
    await recorder.entered.wait()
    rest = [asyncio.create_task(commit.submit(n)) for n in range(1, 10)]
    await asyncio.sleep(0)
    recorder.hold.set()
    assert await asyncio.gather(first, *rest) == [n * 10 for n in range(10)]
    assert recorder.batches == [[0], list(range(1, 10))]


async def test_an_answer_comes_only_after_the_commit(pool: Pool, db_url: str) -> None:
    """What a submitter is told was written can be read by another connection."""
    recorder = Recorder()
    commit = GroupCommit(pool, recorder.write)
    await commit.submit(7)
    async with await psycopg.AsyncConnection.connect(db_url) as other:
        cur = await other.execute("SELECT n FROM items")
        assert [row[0] for row in await cur.fetchall()] == [7]


async def test_a_failed_write_fails_its_own_submitters_only(pool: Pool) -> None:
    """The batch holding -1 fails for each of its submitters and stores nothing; the batch
    after it is written."""
    recorder = Recorder()
    commit = GroupCommit(pool, recorder.write, max_in_flight=1)
    recorder.hold.clear()
    first = asyncio.create_task(commit.submit(-1))
    await recorder.entered.wait()
    recorder.hold.set()
    with pytest.raises(ValueError, match="refused"):
        await first
    assert await asyncio.gather(commit.submit(1), commit.submit(2)) == [10, 20]
    assert await _stored(pool) == {1, 2}


async def test_a_submitter_answered_and_submitting_again_at_once_joins_the_next_write(
    pool: Pool,
) -> None:
    """One request waits while a write is in the database; when that write commits, its
    submitter's next item comes in the very next turn of the event loop (as a client's next
    request is read): it rides with the waiting one, not in a write of its own."""
    recorder = Recorder()
    recorder.hold.clear()
    commit = GroupCommit(pool, recorder.write, max_in_flight=1)  # as the intake's writer

    async def submitter() -> list[int]:
        return [await commit.submit(1), await commit.submit(3)]

    first = asyncio.create_task(submitter())
    await recorder.entered.wait()
    waiting = asyncio.create_task(commit.submit(2))
    await asyncio.sleep(0)  # 2 is pending while 1's write is held
    recorder.hold.set()

    assert await asyncio.gather(first, waiting) == [[10, 30], 20]
    assert recorder.batches == [[1], [2, 3]]
