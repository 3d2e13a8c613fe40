"""Leases with fencing tokens: one holder at a time; an expired holder is refused."""

import asyncio

import pytest

from bot.engine.leases import Lease, LeaseLost, Leases
from bot.loop.fix.runner import holder_name
from bot.runtime import Runtime


async def test_racing_workers_exactly_one_holds_the_lease(runtime: Runtime) -> None:
    """Twenty holders racing for one key: exactly one gets it."""
    leases = Leases(runtime.pool)
    got = await asyncio.gather(*(leases.acquire("pr:o/r#1", f"w{i}", 30) for i in range(20)))
    holders = [lease for lease in got if lease is not None]
    assert len(holders) == 1
    await leases.check(holders[0])


async def test_expired_holder_is_refused_by_the_token_check(runtime: Runtime) -> None:
    """Once a lease expires and another worker takes it, the old token fails every check."""
    leases = Leases(runtime.pool)
    old = await leases.acquire("issue:o/r#7", "w1", 0.2)
    assert old is not None
    assert await leases.acquire("issue:o/r#7", "w2", 30) is None
    async with runtime.pool.connection() as conn:  # let it expire without sleeping
        await conn.execute(
            "UPDATE review_loop_leases SET expires_at = now() - interval '1 s' WHERE key = %s",
            ("issue:o/r#7",),
        )
    new = await leases.acquire("issue:o/r#7", "w2", 30)
    assert new is not None and new.token > old.token
    with pytest.raises(LeaseLost):
        await leases.check(old)
    with pytest.raises(LeaseLost):
        await leases.renew(old, 30)
    await leases.check(new)


async def test_release_frees_the_key_and_a_stale_token_cannot_release(runtime: Runtime) -> None:
    """Releasing with a stale token does nothing; the holder's release frees the key."""
    leases = Leases(runtime.pool)
    first = await leases.acquire("k", "w1", 30)
    assert first is not None
    stale = Lease(first.key, first.holder, first.token - 1, first.expires_at)
    await leases.release(stale)
    assert await leases.acquire("k", "w2", 30) is None
    await leases.release(first)
    assert await leases.acquire("k", "w2", 30) is not None


async def test_two_jobs_of_one_process_cannot_both_hold_a_key(runtime: Runtime) -> None:
    """Every job is its own holder: a second job in the same process is refused while the
    first holds the key, even under the same name."""
    leases = Leases(runtime.pool)
    assert holder_name() != holder_name()
    first = await leases.acquire("pr:o/r#9", holder_name(), 30)
    assert first is not None
    assert await leases.acquire("pr:o/r#9", holder_name(), 30) is None
    assert await leases.acquire("pr:o/r#9", first.holder, 30) is None
    await leases.check(first)


async def test_a_holder_that_cannot_renew_is_stopped(runtime: Runtime) -> None:
    """When renewal fails, the block holding the lease is cancelled with LeaseLost."""
    leases = Leases(runtime.pool)
    reached_end = False
    with pytest.raises(LeaseLost):
        async with leases.hold("pr:o/r#2", "w1", 0.3) as lease:
            assert lease is not None
            async with runtime.pool.connection() as conn:  # another worker steals it
                await conn.execute("UPDATE review_loop_leases SET token = token + 1000")
            await asyncio.Event().wait()  # would wait forever if not stopped
            reached_end = True
    assert not reached_end


async def test_hold_yields_none_when_someone_else_holds_it(runtime: Runtime) -> None:
    """A second holder is told no instead of waiting."""
    leases = Leases(runtime.pool)
    async with leases.hold("pr:o/r#3", "w1", 30) as mine:
        assert mine is not None
        async with leases.hold("pr:o/r#3", "w2", 30) as theirs:
            assert theirs is None
    assert await leases.acquire("pr:o/r#3", "w2", 30) is not None
