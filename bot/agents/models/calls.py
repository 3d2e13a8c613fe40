"""What one model call cost and how it went, the validated reply, and the errors that end a call."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Generic, Literal, TypeVar

from pydantic import BaseModel

T = TypeVar("T", bound=BaseModel)


@dataclass(frozen=True)
class Turn:
    """One message of a conversation with a model."""

    role: Literal["user", "assistant"]
    text: str


@dataclass(frozen=True)
class ModelCall:
    """One logical request to a model: its retries are `attempts`, a repair is its own call.

    `cost_usd` is None when the catalog gives no price for the model: the tokens are still
    counted and `priced` says the cost is unknown, not zero.
    """

    agent: str
    model: str
    purpose: str
    tokens_in: int
    tokens_out: int
    cost_usd: float | None
    duration_s: float
    attempts: int
    repair: bool = False
    error: str | None = None

    @property
    def priced(self) -> bool:
        return self.cost_usd is not None


@dataclass(frozen=True)
class Reply(Generic[T]):
    """A validated structured reply, the raw text it was read from, and every call it took."""

    value: T
    raw: str
    calls: tuple[ModelCall, ...]


def total_cost(calls: Sequence[ModelCall]) -> float | None:
    """The summed cost of `calls`, or None when any of them is unpriced."""
    costs = [call.cost_usd for call in calls]
    if any(cost is None for cost in costs):
        return None
    return sum(cost for cost in costs if cost is not None)


class ModelError(Exception):
    """A model call that did not give a usable answer; `calls` holds every call made so far.

    The message names the agent and says what to do; it never contains an API key.
    """

    def __init__(self, message: str, calls: Sequence[ModelCall] = ()) -> None:
        super().__init__(message)
        self.calls: tuple[ModelCall, ...] = tuple(calls)

    def with_calls(self, earlier: Sequence[ModelCall]) -> ModelError:
        """The same error, with `earlier` calls (made before this one failed) in front."""
        return type(self)(str(self), (*earlier, *self.calls))


class ModelConfigError(ModelError):
    """The agent cannot be called as configured (e.g. its API key variable is unset)."""


class ModelAuthError(ModelError):
    """The service refused the API key (401) or the key may not do this (403). Not retried."""


class ModelRequestError(ModelError):
    """The service refused the request itself (400, 404, ...). Not retried."""


class ModelUnavailable(ModelError):
    """Transient failures (429, 5xx, timeouts, lost connections) outlasted the retries."""


class ModelReplyError(ModelError):
    """The model's reply stayed unusable after one repair request."""
