"""Retrying transient model-service failures: named exceptions, backoff with jitter, caps.

The SDKs' own retries are switched off (`max_retries=0`) so that this is the one place that
decides: the catalog's `max_retries` caps the attempts, `RetryPolicy.max_total_s` the time,
and a `retry-after` the service sends is honoured rather than guessed.
"""

from __future__ import annotations

import asyncio
import email.utils
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from tenacity import (
    AsyncRetrying,
    RetryCallState,
    retry_if_exception_type,
    stop_after_attempt,
    stop_before_delay,
    wait_exponential_jitter,
)

Sleep = Callable[[float], Awaitable[None]]


async def _no_sleep(_: float) -> None:
    return None


@dataclass(frozen=True)
class RetryPolicy:
    """How long to back off between attempts, and the most time all attempts may take.

    `sleep` is the seam tests use to remove the waits (`RetryPolicy.without_waits()`), or to
    record them.
    """

    max_total_s: float = 300.0
    initial_wait_s: float = 1.0
    max_wait_s: float = 30.0
    jitter_s: float = 1.0
    sleep: Sleep = field(default=asyncio.sleep, compare=False)

    @classmethod
    def without_waits(cls) -> RetryPolicy:
        return cls(sleep=_no_sleep)


def retry_after_s(error: BaseException) -> float | None:
    """The wait the service asked for in the failed response's headers, if any.

    `retry-after-ms` (OpenAI), then `retry-after` as seconds or as an HTTP date.
    """
    response = getattr(error, "response", None)
    headers = getattr(response, "headers", None)
    if headers is None:
        return None
    milliseconds = headers.get("retry-after-ms")
    if milliseconds is not None:
        try:
            return max(0.0, float(milliseconds) / 1000)
        except ValueError:
            pass
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - time.time())


class _WaitRetryAfterOrBackoff:
    """The service's `retry-after` when it sent one, else exponential backoff with jitter."""

    def __init__(self, policy: RetryPolicy) -> None:
        self._backoff = wait_exponential_jitter(
            initial=policy.initial_wait_s, max=policy.max_wait_s, jitter=policy.jitter_s
        )

    def __call__(self, state: RetryCallState) -> float:
        error = state.outcome.exception() if state.outcome is not None else None
        asked = retry_after_s(error) if error is not None else None
        return asked if asked is not None else self._backoff(state)


def retrying(
    policy: RetryPolicy, *, max_retries: int, transient: tuple[type[BaseException], ...]
) -> AsyncRetrying:
    """An `AsyncRetrying` that retries only `transient` errors, at most `max_retries` times.

    It stops early rather than sleep past `policy.max_total_s`, and re-raises the last error.
    """
    return AsyncRetrying(
        retry=retry_if_exception_type(transient),
        stop=stop_after_attempt(max_retries + 1) | stop_before_delay(policy.max_total_s),
        wait=_WaitRetryAfterOrBackoff(policy),
        sleep=policy.sleep,
        reraise=True,
    )
