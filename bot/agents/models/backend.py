"""The seam between the model client and one vendor's SDK: one structured request, one answer."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Protocol

from bot.agents.catalog import AgentSpec
from bot.agents.models.calls import ModelAuthError, ModelError, ModelRequestError, Turn

NO_KEY = "no-key"  # sent to a local server that needs none, so no SDK reads its env variables


@dataclass(frozen=True)
class StructuredRequest:
    """Ask for one JSON object matching `schema` (already in strict form)."""

    system: str
    turns: tuple[Turn, ...]
    schema_name: str
    schema: Mapping[str, Any]
    description: str


@dataclass(frozen=True)
class Completion:
    """What the service answered: the JSON text (None when there is none) and the tokens used.

    `problem` says why there is no usable text (a refusal, the token limit), for the repair.
    """

    text: str | None
    model: str
    tokens_in: int
    tokens_out: int
    problem: str | None = None


class Backend(Protocol):
    """One vendor's API, called once per `complete` (the client does the retrying).

    `complete` raises the SDK's own exceptions for transient failures (those in `transient`,
    which the client retries) and a `ModelError` for everything that retrying cannot fix.
    """

    transient: tuple[type[BaseException], ...]

    async def complete(self, request: StructuredRequest) -> Completion: ...

    def describe(self, error: BaseException) -> str:
        """A short description of a transient error, safe to show (no key, no headers)."""
        ...

    async def aclose(self) -> None: ...


def refusal(spec: AgentSpec, base_url: str, status: int, api_message: str | None) -> ModelError:
    """The error for a status that retrying cannot fix, saying what to check."""
    said = f": {api_message}" if api_message else ""
    if status in (401, 403):
        if spec.api_key_env is None:
            return ModelAuthError(
                f"agent {spec.name!r}: {base_url} refused the request ({status}{said}); it "
                "wants an API key: set api_key_env in the agents catalog"
            )
        verb = "was refused" if status == 401 else "may not use this model or endpoint"
        return ModelAuthError(
            f"agent {spec.name!r}: the API key in ${spec.api_key_env} {verb} ({status}{said}); "
            f"check the key and that it belongs to {base_url}"
        )
    if status == 404:
        return ModelRequestError(
            f"agent {spec.name!r}: {base_url} answered 404{said}; check base_url and that the "
            f"model {spec.model!r} exists there"
        )
    return ModelRequestError(
        f"agent {spec.name!r}: the model service refused the request ({status}{said})"
    )


def short(text: object, limit: int = 300) -> str | None:
    """`text` on one line and at most `limit` characters, or None when empty."""
    if text is None:
        return None
    flat = " ".join(str(text).split())
    if not flat:
        return None
    return flat if len(flat) <= limit else flat[: limit - 3] + "..."
