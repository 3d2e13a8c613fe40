"""The retry policy: which waits a failed response asks for, and the cap on total time."""

from __future__ import annotations

import email.utils
import time

import httpx
import pytest

from bot.agents.models.retry import RetryPolicy, retry_after_s, retrying
from tests.modelsandbox import SleepLog


class Failed(Exception):
    """A transient failure carrying a response, like the SDKs' status errors."""

    def __init__(self, headers: dict[str, str]) -> None:
        super().__init__("429")
        self.response = httpx.Response(429, headers=headers)


@pytest.mark.parametrize(
    ("headers", "expected"),
    [
        pytest.param({"retry-after": "7"}, 7.0, id="seconds"),
        pytest.param({"retry-after": "1.5"}, 1.5, id="fractional-seconds"),
        pytest.param({"retry-after-ms": "250", "retry-after": "9"}, 0.25, id="milliseconds-first"),
        pytest.param({"retry-after": "soon"}, None, id="unreadable"),
        pytest.param({}, None, id="absent"),
        pytest.param({"retry-after": "-3"}, 0.0, id="negative-is-now"),
    ],
)
def test_retry_after_is_read_from_the_response_headers(
    headers: dict[str, str], expected: float | None
) -> None:
    """retry-after-ms, then retry-after in seconds; anything else means no advice."""
    assert retry_after_s(Failed(headers)) == expected


def test_retry_after_may_be_an_http_date() -> None:
    """An HTTP date is turned into the seconds left until then."""
    when = email.utils.formatdate(time.time() + 60, usegmt=True)
    wait = retry_after_s(Failed({"retry-after": when}))
    assert wait is not None and 50 < wait <= 60


def test_an_error_without_a_response_gives_no_advice() -> None:
    """Timeouts and lost connections carry no headers."""
    assert retry_after_s(TimeoutError()) is None


async def test_a_wait_past_the_total_budget_stops_the_retries_at_once() -> None:
    """A retry-after longer than the time left is not slept through: the error surfaces."""
    sleeps = SleepLog()
    policy = RetryPolicy(max_total_s=10, sleep=sleeps)
    attempts = 0
    with pytest.raises(Failed):
        async for attempt in retrying(policy, max_retries=5, transient=(Failed,)):
            with attempt:
                attempts += 1
                raise Failed({"retry-after": "3600"})
    assert attempts == 1 and sleeps.waits == []


async def test_only_the_named_exceptions_are_retried() -> None:
    """Anything not listed as transient surfaces on the first attempt."""
    attempts = 0
    with pytest.raises(ValueError):
        async for attempt in retrying(
            RetryPolicy.without_waits(), max_retries=5, transient=(Failed,)
        ):
            with attempt:
                attempts += 1
                raise ValueError("a bug, not a hiccup")
    assert attempts == 1
