"""Background passes: repeated until cancelled, a failing pass logged and not fatal."""

import asyncio
import logging

import pytest

from bot.periodic import every


async def test_a_failing_pass_is_logged_and_the_next_one_runs(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """The first pass raises; the loop logs it with its name and goes on to the next."""
    calls: list[int] = []
    third = asyncio.Event()

    async def work() -> None:
        calls.append(len(calls))
        if len(calls) == 1:
            raise RuntimeError("boom")
        if len(calls) == 3:
            third.set()

    with caplog.at_level(logging.WARNING, logger="bot.periodic"):
        task = asyncio.create_task(every(0, work, what="test pass"))
        await asyncio.wait_for(third.wait(), timeout=10)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert len(calls) >= 3
    [record] = [r for r in caplog.records if "test pass failed" in r.getMessage()]
    assert record.exc_info is not None


async def test_now_false_waits_one_interval_before_the_first_pass() -> None:
    """With `now=False` nothing runs before the first interval has passed."""
    calls: list[int] = []

    async def work() -> None:
        calls.append(1)

    task = asyncio.create_task(every(3600, work, what="slow pass", now=False))
    await asyncio.sleep(0.05)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert calls == []


async def test_ran_is_set_once_the_first_pass_has_ended_even_failing() -> None:
    """`ran` is not set while the first pass runs, and is set when it ends, failed or not."""
    release = asyncio.Event()
    ran = asyncio.Event()

    async def work() -> None:
        await release.wait()
        raise RuntimeError("the first pass fails")

    task = asyncio.create_task(every(3600, work, what="start-up pass", ran=ran))
    await asyncio.sleep(0.05)
    assert not ran.is_set()
    release.set()
    await asyncio.wait_for(ran.wait(), timeout=10)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
