"""The write throttle kept in PostgreSQL: worker processes on one database keep GitHub's
secondary limits together, and a pause one of them records holds them all."""

import asyncio
import itertools
from collections.abc import AsyncIterator, Sequence

import httpx
import pytest

from bot.engine import database
from bot.github.throttle import (
    BACKGROUND,
    FIRST_CHECK,
    FIRST_FEEDBACK,
    SharedWriteThrottle,
    ThrottledTransport,
    WriteLimits,
    write_priority,
)
from bot.runtime import Runtime
from tests.github.test_throttle import Gate, until

API = "https://api.github.test"
# Send times come from the database as float8; spacing is compared with this much slack.
EPSILON = 1e-6


@pytest.fixture
async def pools(db_url: str) -> AsyncIterator[list[database.Pool]]:
    """Three pools on one migrated database: three worker processes, as PostgreSQL sees it."""
    pools = [database.open_pool(db_url, max_size=2) for _ in range(3)]
    for pool in pools:
        await pool.open(wait=True)
    try:
        yield pools
    finally:
        for pool in pools:
            await pool.close()


def most_in_any_window(times: Sequence[float], window_s: float) -> int:
    """The most send times that fall in one half-open window [t, t + window_s)."""
    return max(sum(1 for u in times if t <= u < t + window_s - EPSILON) for t in times)


async def send_times(pool: database.Pool, installation_id: int) -> list[float]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT sent_at FROM review_loop_write_sends
                WHERE installation_id = %s ORDER BY sent_at""",
            (installation_id,),
        )
        return [row["sent_at"] for row in await cur.fetchall()]


async def paused_until(pool: database.Pool, installation_id: int) -> float:
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT paused_until FROM review_loop_write_pauses WHERE installation_id = %s",
            (installation_id,),
        )
        row = await cur.fetchone()
    assert row is not None
    return float(row["paused_until"])


@pytest.mark.parametrize(
    "limits",
    [
        pytest.param(
            WriteLimits(min_interval_s=0.01, per_minute=5, per_hour=1000, minute_s=0.4),
            id="minute-window",
        ),
        pytest.param(
            WriteLimits(min_interval_s=0.0, per_minute=1000, per_hour=4, hour_s=0.4),
            id="hour-window",
        ),
    ],
)
async def test_processes_keep_the_installations_limits_together(
    pools: list[database.Pool], limits: WriteLimits
) -> None:
    """Three processes each sending five writes of one installation at once: the fifteen
    are spaced by the interval and no window holds more than its limit between them."""
    throttles = [SharedWriteThrottle(pool, 7, limits) for pool in pools]

    sent = await asyncio.gather(*(t.acquire() for t in throttles for _ in range(5)))

    times = sorted(sent)
    assert len(times) == 15
    assert [t.stats().writes for t in throttles] == [5, 5, 5]
    assert all(b - a >= limits.min_interval_s - EPSILON for a, b in itertools.pairwise(times))
    assert most_in_any_window(times, limits.minute_s) <= limits.per_minute
    assert most_in_any_window(times, limits.hour_s) <= limits.per_hour
    assert sum(t.stats().waits for t in throttles) > 0
    # Send times older than the hour window are dropped; the rest are the ones returned.
    kept = await send_times(pools[0], 7)
    assert kept == [t for t in times if t > times[-1] - limits.hour_s]


async def test_a_pause_recorded_by_one_process_holds_the_others(
    pools: list[database.Pool],
) -> None:
    """After one process pauses the installation, another's next write waits for the pause
    to end, by the database's clock."""
    limits = WriteLimits(min_interval_s=0.0)
    pausing, other = (
        SharedWriteThrottle(pools[0], 7, limits),
        SharedWriteThrottle(pools[1], 7, limits),
    )
    before = await other.acquire()

    await pausing.pause(0.5)
    until = await paused_until(pools[0], 7)
    after = await other.acquire()

    assert before < until <= after
    assert pausing.stats().pauses == 1 and other.stats().waits >= 1


async def test_a_refused_write_pauses_the_installation_for_every_process(
    pools: list[database.Pool],
) -> None:
    """A 403 with retry-after is recorded as the installation's pause; the refused write is
    sent again once the pause has ended."""
    throttle = SharedWriteThrottle(pools[0], 7, WriteLimits(min_interval_s=0.0))
    answers = [httpx.Response(403, headers={"retry-after": "0.3"}), httpx.Response(201)]
    transport = ThrottledTransport(httpx.MockTransport(lambda _: answers.pop(0)), throttle)
    async with httpx.AsyncClient(base_url=API, transport=transport) as http:
        response = await http.post("/repos/o/r/issues", json={})

    assert response.status_code == 201
    refused, retried = await send_times(pools[1], 7)
    assert refused < await paused_until(pools[1], 7) <= retried


async def test_installations_do_not_hold_each_other(pools: list[database.Pool]) -> None:
    """One installation at its per-minute limit and paused for a minute does not delay
    another installation's writes from another process."""
    limits = WriteLimits(min_interval_s=0.0, per_minute=3)
    busy, idle = SharedWriteThrottle(pools[0], 1, limits), SharedWriteThrottle(pools[1], 2, limits)
    for _ in range(3):
        await busy.acquire()
    await busy.pause(60)

    sent = [await idle.acquire() for _ in range(3)]

    assert idle.stats().waits == 0
    assert max(sent) < await paused_until(pools[0], 1)
    assert len(await send_times(pools[0], 2)) == 3


async def test_the_runtime_shares_its_throttles_through_the_database(runtime: Runtime) -> None:
    """With a database, every installation client's throttle is the shared one, built from
    the write settings."""
    throttle = runtime.github.throttles.for_installation(5)
    assert isinstance(throttle, SharedWriteThrottle)
    assert throttle.pool is runtime.pool
    settings = runtime.settings
    assert throttle.limits == WriteLimits(
        settings.write_interval_s,
        settings.writes_per_minute,
        settings.writes_per_hour,
        minute_s=settings.write_minute_s,
    )


async def test_the_highest_priority_write_of_a_process_goes_first(
    pools: list[database.Pool],
) -> None:
    """Writes of one process wait for the installation's slot, held by a pause in the
    database: a fix task's, a first reconcile's issue, then a PR's first check run. When the
    pause ends, the check run is sent first, then the issue, then the fix task's write."""
    gate = Gate()
    throttle = SharedWriteThrottle(pools[0], 7, WriteLimits(min_interval_s=0.01), sleep=gate.sleep)
    await throttle.pause(60)
    sent: dict[str, float] = {}

    async def write(name: str, priority: int) -> None:
        with write_priority(priority):
            sent[name] = await throttle.acquire()

    tasks = []
    for n, (name, priority) in enumerate(
        [("fix", BACKGROUND), ("issue", FIRST_FEEDBACK), ("check", FIRST_CHECK)]
    ):
        tasks.append(asyncio.create_task(write(name, priority)))
        await until(lambda n=n: throttle.waiting() == n + 1, f"{name} queued")
    # The check run, first of the queue now, has claimed, found the pause and sleeps.
    await until(lambda: tasks[-1] in gate.sleepers, "the check run first of the queue")
    async with pools[1].connection() as conn:
        await conn.execute("DELETE FROM review_loop_write_pauses WHERE installation_id = 7")
    while len(sent) < 3:
        gate.open()
        await asyncio.sleep(0.01)
    await asyncio.gather(*tasks)

    assert sorted(sent, key=sent.__getitem__) == ["check", "issue", "fix"]
    assert sorted(sent.values()) == await send_times(pools[0], 7)
