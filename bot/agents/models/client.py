"""The model client: one structured request, validated by pydantic, with one repair retry."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping, Sequence
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError

from bot import held_secrets
from bot.agents.briefs import redact_secrets
from bot.agents.catalog import AgentSpec
from bot.agents.models.backend import NO_KEY, Backend, Completion, StructuredRequest
from bot.agents.models.calls import (
    ModelCall,
    ModelConfigError,
    ModelError,
    ModelReplyError,
    ModelUnavailable,
    Reply,
    Turn,
)
from bot.agents.models.retry import RetryPolicy, retrying
from bot.agents.models.schema import strict_schema

T = TypeVar("T", bound=BaseModel)

REPAIR = (
    "Your previous reply could not be used: {problem}\n"
    "Reply again with one JSON object that matches the {name} schema exactly: every field "
    "present, no other fields, the right types."
)
# The SDK's own timeout covers each read; this covers a service that trickles bytes forever.
HARD_TIMEOUT_FACTOR = 2.0
MAX_ERRORS_SHOWN = 5


class ModelClient:
    """Structured calls to one catalog agent's model (`open_model_client` builds one).

    `structured` returns the validated reply and the calls it took, or raises a `ModelError`
    carrying those calls: nothing it spent is lost either way.
    """

    def __init__(
        self,
        spec: AgentSpec,
        backend: Backend,
        *,
        retry: RetryPolicy | None = None,
        secret: str | None = None,
    ) -> None:
        self.spec = spec
        self._backend = backend
        self._retry = retry or RetryPolicy()
        self._secret = secret

    async def structured(
        self,
        system: str,
        user: str,
        schema: type[T],
        *,
        purpose: str,
        history: Sequence[Turn] = (),
    ) -> Reply[T]:
        """Ask for one `schema` object; one repair request if the reply does not validate."""
        name = schema_name(schema)
        json_schema = strict_schema(schema)
        description = (schema.__doc__ or name).strip().splitlines()[0]
        turns = (*history, Turn("user", user))
        calls: list[ModelCall] = []
        for repair in (False, True):
            request = StructuredRequest(system, turns, name, json_schema, description)
            completion = await self._call(request, purpose, repair, calls)
            problem = completion.problem or "the reply was empty"
            if completion.text is not None:
                try:
                    value = schema.model_validate_json(completion.text)
                except ValidationError as error:
                    problem = describe_validation(error)
                    if completion.problem:  # e.g. cut at the token limit: say both
                        problem = f"{completion.problem}; {problem}"
                else:
                    return Reply(value, completion.text, tuple(calls))
            if repair:
                raise ModelReplyError(
                    self._scrub(
                        f"agent {self.spec.name!r}: the {purpose} reply is not a valid {name} "
                        f"object, even after a repair request: {problem}"
                    ),
                    calls,
                )
            turns = (
                *turns,
                Turn("assistant", completion.text or "(no answer)"),
                Turn("user", REPAIR.format(problem=problem, name=name)),
            )
        raise AssertionError("unreachable")  # pragma: no cover

    async def _call(
        self, request: StructuredRequest, purpose: str, repair: bool, calls: list[ModelCall]
    ) -> Completion:
        started = time.monotonic()
        attempts = 0
        completion: Completion | None = None
        error: ModelError | None = None
        transient: tuple[type[BaseException], ...] = (*self._backend.transient, TimeoutError)
        try:
            async for attempt in retrying(
                self._retry, max_retries=self.spec.max_retries, transient=transient
            ):
                with attempt:
                    attempts += 1
                    async with asyncio.timeout(self.spec.timeout_s * HARD_TIMEOUT_FACTOR):
                        completion = await self._backend.complete(request)
        except ModelError as refused:
            error = type(refused)(self._scrub(str(refused)))
        except transient as failure:
            said = (
                f"no answer within {self.spec.timeout_s * HARD_TIMEOUT_FACTOR:g} s"
                if isinstance(failure, TimeoutError)
                else self._backend.describe(failure)
            )
            error = ModelUnavailable(
                self._scrub(
                    f"agent {self.spec.name!r}: the model service kept failing ({said}); gave "
                    f"up after {attempts} attempt{'s' if attempts != 1 else ''} in "
                    f"{time.monotonic() - started:.1f} s"
                )
            )
        duration = time.monotonic() - started
        if error is not None or completion is None:
            message = str(error) if error else "no completion"
            calls.append(self._record(purpose, repair, None, duration, attempts, message))
            raise (error or ModelUnavailable(message)).with_calls(calls) from None
        calls.append(self._record(purpose, repair, completion, duration, attempts, None))
        return completion

    def _record(
        self,
        purpose: str,
        repair: bool,
        completion: Completion | None,
        duration: float,
        attempts: int,
        error: str | None,
    ) -> ModelCall:
        tokens_in = completion.tokens_in if completion else 0
        tokens_out = completion.tokens_out if completion else 0
        price = self.spec.price
        cost = (
            (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1_000_000
            if price is not None
            else None
        )
        return ModelCall(
            agent=self.spec.name,
            model=completion.model if completion else str(self.spec.model),
            purpose=purpose,
            tokens_in=tokens_in,
            tokens_out=tokens_out,
            cost_usd=cost,
            duration_s=duration,
            attempts=attempts,
            repair=repair,
            error=error,
        )

    def _scrub(self, text: str) -> str:
        if self._secret and self._secret != NO_KEY:
            text = text.replace(self._secret, "[REDACTED API key]")
        return redact_secrets(text)

    async def aclose(self) -> None:
        await self._backend.aclose()

    async def __aenter__(self) -> ModelClient:
        return self

    async def __aexit__(self, *_: object) -> None:
        await self.aclose()


def open_model_client(
    spec: AgentSpec, *, environ: Mapping[str, str] | None = None, retry: RetryPolicy | None = None
) -> ModelClient:
    """The client for catalog entry `spec` (kind `openai` or `anthropic`).

    The API key is read from `environ` (default: the process environment, read now, with the
    secrets held since start-up: `bot.held_secrets`) under
    the entry's `api_key_env`; it is held by the SDK client and never logged.
    """
    from bot.agents.models.anthropic_messages import AnthropicMessages
    from bot.agents.models.openai_chat import OpenAIChat

    source = held_secrets.environ_with_secrets() if environ is None else environ
    if spec.api_key_env is None:
        key = NO_KEY
    else:
        key = source.get(spec.api_key_env, "")
        if not key:
            raise ModelConfigError(
                f"agent {spec.name!r}: set ${spec.api_key_env} to its API key (it is unset "
                "or empty)"
            )
    backend: Backend
    if spec.kind == "openai":
        backend = OpenAIChat(spec, key)
    elif spec.kind == "anthropic":
        backend = AnthropicMessages(spec, key)
    else:
        raise ModelConfigError(f"agent {spec.name!r} is a {spec.kind} agent, not a model")
    return ModelClient(spec, backend, retry=retry, secret=key)


def preload_backends() -> None:
    """Import the vendor SDKs now: a first import takes seconds, which must not happen
    inside a running job (it would stall the event loop, and with it the lease renewals)."""
    from bot.agents.models.anthropic_messages import AnthropicMessages
    from bot.agents.models.openai_chat import OpenAIChat

    del AnthropicMessages, OpenAIChat


def schema_name(schema: type[BaseModel]) -> str:
    """The name the schema goes by on the wire: its `title` in model_config, else the class."""
    title: Any = schema.model_config.get("title")
    return str(title or schema.__name__)


def describe_validation(error: ValidationError) -> str:
    """The validation errors in a few lines, without echoing the whole reply back."""
    parts = []
    for item in error.errors()[:MAX_ERRORS_SHOWN]:
        where = ".".join(str(p) for p in item["loc"]) or "(the whole reply)"
        parts.append(f"{where}: {item['msg']}")
    more = error.error_count() - MAX_ERRORS_SHOWN
    if more > 0:
        parts.append(f"... and {more} more")
    return "; ".join(parts)
