"""A 2xx from the intake means the delivery and its dispatch job are committed: requests
that arrive together share one transaction and are answered after it, and a transaction
that fails answers 503 to its own requests only."""

import asyncio
import json
from collections.abc import AsyncIterator

import httpx
import psycopg
import pytest

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.web.intake import NOT_STORED
from tests.support import load_event, serve_asgi, signed_headers

BODY = json.dumps(load_event("issues.labeled")).encode()


async def _post(client: httpx.AsyncClient, base: str, delivery: str) -> httpx.Response:
    headers = signed_headers("issues", BODY, delivery=delivery)
    return await client.post(base + "/webhook", content=BODY, headers=headers)


async def _committed(db_url: str) -> dict[str, int]:
    """Committed deliveries, each with how many dispatch jobs name it (read from outside)."""
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        cur = await conn.execute(
            """SELECT d.id, count(j.id) AS jobs
                 FROM review_loop_deliveries d
                 LEFT JOIN procrastinate_jobs j
                        ON j.task_name = 'dispatch_deliveries'
                       AND j.args->'delivery_ids' ? d.id
                GROUP BY d.id"""
        )
        return {row[0]: int(row[1]) for row in await cur.fetchall()}


@pytest.fixture
async def served(runtime: Runtime) -> AsyncIterator[tuple[httpx.AsyncClient, str]]:
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient(timeout=60) as client:
        yield client, base


async def test_every_accepted_delivery_is_committed_with_its_job(
    runtime: Runtime, db_url: str, served: tuple[httpx.AsyncClient, str]
) -> None:
    """Sixty concurrent deliveries: each 202 names a delivery that is committed and named
    by exactly one queued dispatch job."""
    client, base = served
    answers = await asyncio.gather(*(_post(client, base, f"d-{i}") for i in range(60)))
    assert [a.status_code for a in answers] == [202] * 60
    assert {a.json()["delivery"] for a in answers} == {f"d-{i}" for i in range(60)}
    assert await _committed(db_url) == {f"d-{i}": 1 for i in range(60)}


async def test_no_answer_before_the_commit(
    runtime: Runtime, db_url: str, served: tuple[httpx.AsyncClient, str]
) -> None:
    """While the batch's INSERT waits on a lock nothing is answered; once it commits, every
    request of the batch gets its 202."""
    client, base = served
    async with await psycopg.AsyncConnection.connect(db_url) as locker:
        await locker.execute("LOCK TABLE review_loop_deliveries IN SHARE ROW EXCLUSIVE MODE")
        posts = [asyncio.create_task(_post(client, base, f"d-held-{i}")) for i in range(5)]
        await _wait_for_blocked_insert(db_url)
        done, _ = await asyncio.wait(posts, timeout=0.5)
        assert done == set()  # a correct intake cannot have answered: nothing is committed
        assert await _committed(db_url) == {}
        await locker.rollback()  # releases the lock
    answers = await asyncio.gather(*posts)
    assert [a.status_code for a in answers] == [202] * 5
    assert await _committed(db_url) == {f"d-held-{i}": 1 for i in range(5)}


async def _wait_for_blocked_insert(db_url: str) -> None:
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as conn:
        for _ in range(500):
            cur = await conn.execute(
                """SELECT count(*) FROM pg_stat_activity
                    WHERE wait_event_type = 'Lock'
                      AND query LIKE '%INSERT INTO review_loop_deliveries%'"""
            )
            row = await cur.fetchone()
            if row and row[0]:
                return
            await asyncio.sleep(0.02)
    raise AssertionError("the intake's INSERT never reached the database")


async def test_a_failed_batch_answers_503_to_its_requests_only(
    runtime: Runtime, db_url: str, served: tuple[httpx.AsyncClient, str]
) -> None:
    """With the table gone the batch fails: its requests get 503 and nothing is kept; the
    next batch, the table back, is stored, and so is the first delivery sent again."""
    client, base = served
    async with await psycopg.AsyncConnection.connect(db_url, autocommit=True) as admin:
        await admin.execute("ALTER TABLE review_loop_deliveries RENAME TO deliveries_away")
        failed = await asyncio.gather(*(_post(client, base, f"d-lost-{i}") for i in range(3)))
        await admin.execute("ALTER TABLE deliveries_away RENAME TO review_loop_deliveries")
    assert [a.status_code for a in failed] == [503] * 3
    assert failed[0].json()["error"] == NOT_STORED
    assert await _committed(db_url) == {}
    later = await _post(client, base, "d-later")
    again = await _post(client, base, "d-lost-0")
    assert (later.status_code, again.status_code) == (202, 202)
    assert await _committed(db_url) == {"d-later": 1, "d-lost-0": 1}


async def test_redelivery_is_a_duplicate_even_within_one_batch(
    runtime: Runtime, db_url: str, served: tuple[httpx.AsyncClient, str]
) -> None:
    """The same delivery id posted ten times at once: one 202 queued, nine 200 duplicates,
    one row, one job."""
    client, base = served
    answers = await asyncio.gather(*(_post(client, base, "d-same") for _ in range(10)))
    codes = sorted(a.status_code for a in answers)
    assert codes == [200] * 9 + [202]
    assert all(a.json().get("duplicate") for a in answers if a.status_code == 200)
    assert await _committed(db_url) == {"d-same": 1}
