"""Which GitHub failures are worth trying again, and how long to wait before the next try.

Transient: a 5xx, a timeout, a dropped connection, a rate limit. The wait is what GitHub
asked for (`retry-after`, or `x-ratelimit-reset` when the budget is spent), else an
exponential backoff with jitter; tenacity's `wait` and `retry` take these directly.
"""

import time
from collections.abc import Callable

from githubkit.exception import RateLimitExceeded, RequestError, RequestFailed
from tenacity import RetryCallState, wait_exponential_jitter
from tenacity.wait import wait_base

from bot.github.throttle import write_deferred

Clock = Callable[[], float]


def transient(exc: BaseException) -> bool:
    """A failure that says nothing of whether GitHub did it: a 5xx, a timeout, a reset. A
    write our throttle deferred (`WriteDeferred`, wrapped by githubkit) was never sent: it is
    for the job layer, not a retry."""
    if isinstance(exc, RequestFailed):
        return exc.response.status_code >= 500
    return isinstance(exc, RequestError) and write_deferred(exc) is None


def worth_retrying(exc: BaseException) -> bool:
    """A failure that may pass by itself: transient, or a rate limit (primary or secondary)."""
    return isinstance(exc, RateLimitExceeded) or transient(exc)


def requested_wait_s(exc: BaseException, now: float) -> float | None:
    """The seconds GitHub asked us to wait in the failed answer, if it did (`now`: epoch)."""
    if not isinstance(exc, RequestFailed):
        return None
    headers = exc.response.headers
    retry_after = headers.get("retry-after")
    if retry_after is not None:
        try:
            return max(float(retry_after), 0.0)
        except ValueError:
            return None
    reset = headers.get("x-ratelimit-reset")
    if headers.get("x-ratelimit-remaining") == "0" and reset is not None:
        try:
            return max(float(reset) - now, 0.0)
        except ValueError:
            return None
    return None


class WaitGitHub(wait_base):
    """GitHub's requested wait (at most `max_s`), else `backoff`."""

    def __init__(
        self,
        backoff: wait_base | None = None,
        *,
        max_s: float = 300.0,
        wall_clock: Clock = time.time,
    ) -> None:
        self.backoff = backoff or wait_exponential_jitter(multiplier=2, max=60, jitter=2)
        self.max_s = max_s
        self.wall_clock = wall_clock

    def __call__(self, retry_state: RetryCallState) -> float:
        outcome = retry_state.outcome
        exc = outcome.exception() if outcome is not None else None
        asked = None if exc is None else requested_wait_s(exc, self.wall_clock())
        if asked is not None:
            return min(asked, self.max_s)
        return min(float(self.backoff(retry_state)), self.max_s)
