"""Structured calls through both SDKs against the scripted sandbox: replies, repair, faults."""

from __future__ import annotations

import json

import pytest
from pydantic import BaseModel, ConfigDict

from bot.agents.catalog import AgentSpec
from bot.agents.models import (
    ModelAuthError,
    ModelConfigError,
    ModelReplyError,
    ModelRequestError,
    ModelUnavailable,
    open_model_client,
)
from bot.agents.models.client import ModelClient
from bot.sandbox.models import ModelFault, ModelSandbox, Rule, Scenario
from tests.modelsandbox import API_KEY, KEY_VAR, KINDS, PRICE, Kind, SleepLog, model_client

VERIFY_BRIEF = """Decide whether one finding is fixed.

File: app.py

## Flagged code (before the fix)
```
def total(count):
```

## Code after the fix
```
def total(count):
    if count < 0:
        raise ValueError(count)
```
"""
SCENARIO = Scenario([Rule("negative-count", r"def \w+\(.*\bcount\b", unless=r"count < 0")])


class Verdict(BaseModel):
    """Whether the finding is fixed."""

    model_config = ConfigDict(title="verify_fix")

    resolved: bool
    reason: str


async def ask(client: ModelClient) -> Verdict:
    reply = await client.structured("Be brief.", VERIFY_BRIEF, Verdict, purpose="verify")
    return reply.value


@pytest.mark.parametrize("kind", KINDS)
async def test_a_structured_reply_is_validated_and_its_call_recorded(
    models: ModelSandbox, kind: Kind
) -> None:
    """The reply comes back as the pydantic object, with one priced call for its tokens."""
    models.scenario = SCENARIO
    async with model_client(models, kind) as client:
        reply = await client.structured("Be brief.", VERIFY_BRIEF, Verdict, purpose="verify")
    assert reply.value.resolved is True
    assert "Scripted verifier" in reply.value.reason
    (call,) = reply.calls
    recorded = models.requests[-1]
    assert (call.agent, call.model, call.purpose) == (
        f"{kind}-agent",
        f"scripted-{kind}-test-model",
        "verify",
    )
    assert call.tokens_in == recorded.prompt_tokens > 0
    assert call.tokens_out > 0 and call.attempts == 1 and not call.repair
    expected = call.tokens_in * PRICE.input_per_mtok + call.tokens_out * PRICE.output_per_mtok
    assert call.cost_usd == pytest.approx(expected / 1_000_000)
    assert recorded.schema_name == "verify_fix"


@pytest.mark.parametrize("kind", KINDS)
async def test_an_unpriced_model_counts_tokens_and_flags_the_cost_unknown(
    models: ModelSandbox, kind: Kind
) -> None:
    """Without a price in the catalog the cost is None (unknown), not zero."""
    async with model_client(models, kind, price=None) as client:
        reply = await client.structured("Be brief.", VERIFY_BRIEF, Verdict, purpose="verify")
    (call,) = reply.calls
    assert call.cost_usd is None and not call.priced
    assert call.tokens_in > 0


@pytest.mark.parametrize("kind", KINDS)
async def test_the_request_carries_a_strict_schema(models: ModelSandbox, kind: Kind) -> None:
    """OpenAI gets response_format json_schema strict; Anthropic one forced tool."""
    async with model_client(models, kind) as client:
        await ask(client)
    body = json.loads(models.requests[-1].body)
    if kind == "openai":
        fmt = body["response_format"]
        assert fmt["type"] == "json_schema" and fmt["json_schema"]["strict"] is True
        schema = fmt["json_schema"]["schema"]
    else:
        (tool,) = body["tools"]
        assert body["tool_choice"] == {"type": "tool", "name": "verify_fix"}
        schema = tool["input_schema"]
    assert schema["additionalProperties"] is False
    assert schema["required"] == ["resolved", "reason"]


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["schema_violation", "malformed_json"])
async def test_one_bad_reply_is_repaired_with_the_validation_error_quoted(
    models: ModelSandbox, kind: Kind, fault: str
) -> None:
    """A reply that is not valid JSON for the schema gets one repair request, which quotes
    the error; the repaired reply is used and both calls are kept."""
    models.scenario = SCENARIO
    models.set_faults(ModelFault(fault, times=1))  # type: ignore[arg-type]
    async with model_client(models, kind) as client:
        reply = await client.structured("Be brief.", VERIFY_BRIEF, Verdict, purpose="verify")
    assert reply.value.resolved is True
    assert [call.repair for call in reply.calls] == [False, True]
    repair = models.requests[-1]
    assert "could not be used" in repair.prompt
    expected = "Field required" if fault == "schema_violation" else "Invalid JSON"
    assert expected in repair.prompt
    assert VERIFY_BRIEF.splitlines()[0] in repair.prompt  # the conversation is kept


@pytest.mark.parametrize("kind", KINDS)
async def test_a_reply_still_bad_after_the_repair_fails_with_the_error_and_both_calls(
    models: ModelSandbox, kind: Kind
) -> None:
    """Two schema-breaking replies end in ModelReplyError naming the problem, calls kept."""
    models.set_faults(ModelFault("schema_violation"))
    async with model_client(models, kind) as client:
        with pytest.raises(ModelReplyError) as caught:
            await ask(client)
    assert "resolved: Field required" in str(caught.value)
    assert f"'{kind}-agent'" in str(caught.value)
    assert len(caught.value.calls) == 2 and caught.value.calls[1].repair
    assert all(call.tokens_in > 0 for call in caught.value.calls)


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["rate_limited", "server_error", "truncated"])
async def test_a_transient_failure_is_retried_and_then_answered(
    models: ModelSandbox, kind: Kind, fault: str
) -> None:
    """429, 500 and a body cut short are retried; the call records both attempts."""
    models.set_faults(ModelFault(fault, times=1))  # type: ignore[arg-type]
    async with model_client(models, kind) as client:
        reply = await client.structured("Be brief.", VERIFY_BRIEF, Verdict, purpose="verify")
    assert reply.calls[0].attempts == 2
    assert len(models.requests) == 2 and models.requests[0].fault == fault


@pytest.mark.parametrize("kind", KINDS)
async def test_retry_after_is_honoured(models: ModelSandbox, kind: Kind) -> None:
    """The wait before the retry is the 429's retry-after, not a guess."""
    models.set_faults(ModelFault("rate_limited", times=2, retry_after_s=7))
    sleeps = SleepLog()
    async with model_client(models, kind, sleeps=sleeps) as client:
        await ask(client)
    assert sleeps.waits == [7.0, 7.0]


@pytest.mark.parametrize("kind", KINDS)
async def test_without_retry_after_the_backoff_grows(models: ModelSandbox, kind: Kind) -> None:
    """500s carry no retry-after: exponential backoff (with jitter), capped per wait."""
    models.set_faults(ModelFault("server_error", times=3))
    sleeps = SleepLog()
    async with model_client(models, kind, sleeps=sleeps, max_retries=3) as client:
        await ask(client)
    assert len(sleeps.waits) == 3
    assert 1 <= sleeps.waits[0] <= 2 and 2 <= sleeps.waits[1] <= 3 and 4 <= sleeps.waits[2] <= 5


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize("fault", ["rate_limited", "server_error", "truncated"])
async def test_transient_failures_past_max_retries_fail_with_every_attempt_counted(
    models: ModelSandbox, kind: Kind, fault: str
) -> None:
    """After max_retries + 1 attempts the call fails as ModelUnavailable, saying why."""
    models.set_faults(ModelFault(fault))  # type: ignore[arg-type]
    async with model_client(models, kind, max_retries=2) as client:
        with pytest.raises(ModelUnavailable) as caught:
            await ask(client)
    assert "gave up after 3 attempts" in str(caught.value)
    (call,) = caught.value.calls
    assert call.attempts == 3 and call.error is not None and call.tokens_in == 0
    assert len(models.requests) == 3


@pytest.mark.parametrize("kind", KINDS)
async def test_a_model_slower_than_the_timeout_is_given_up_on(
    models: ModelSandbox, kind: Kind
) -> None:
    """A reply slower than timeout_s is a timeout: retried, then a clear failure."""
    models.set_faults(ModelFault("timeout", delay_s=30))
    async with model_client(models, kind, timeout_s=0.3, max_retries=1) as client:
        with pytest.raises(ModelUnavailable) as caught:
            await ask(client)
    assert "no answer within 0.3 s" in str(caught.value)
    assert caught.value.calls[0].attempts == 2


@pytest.mark.parametrize("kind", KINDS)
@pytest.mark.parametrize(
    ("fault", "error", "words"),
    [
        pytest.param(
            "unauthorized", ModelAuthError, f"API key in ${KEY_VAR} was refused", id="401"
        ),
        pytest.param("forbidden", ModelAuthError, f"API key in ${KEY_VAR} may not", id="403"),
        pytest.param("bad_request", ModelRequestError, "refused the request (400", id="400"),
    ],
)
async def test_refusals_are_not_retried_and_say_what_to_check(
    models: ModelSandbox, kind: Kind, fault: str, error: type[Exception], words: str
) -> None:
    """401, 403 and 400 fail at once with an error that names the key variable, not the key."""
    models.set_faults(ModelFault(fault))  # type: ignore[arg-type]
    sleeps = SleepLog()
    async with model_client(models, kind, sleeps=sleeps) as client:
        with pytest.raises(error) as caught:
            await ask(client)
    assert words in str(caught.value)
    assert API_KEY not in str(caught.value) and API_KEY not in repr(caught.value.__cause__)
    assert len(models.requests) == 1 and sleeps.waits == []


@pytest.mark.parametrize("kind", KINDS)
async def test_a_wrong_key_is_refused_by_the_sandbox(models: ModelSandbox, kind: Kind) -> None:
    """The sandbox checks the key: another one gets a 401, reported as refused."""
    spec = model_client(models, kind).spec
    client = open_model_client(spec, environ={KEY_VAR: "sk-wrong-key-000000000000"})
    async with client:
        with pytest.raises(ModelAuthError, match="was refused"):
            await ask(client)
    assert not models.requests[-1].authorized


def test_an_unset_key_variable_is_a_config_error_naming_it(models: ModelSandbox) -> None:
    """An empty or unset api_key_env variable stops before any request, naming it."""
    spec = model_client(models).spec
    with pytest.raises(ModelConfigError, match=rf"set \${KEY_VAR}"):
        open_model_client(spec, environ={})
    assert models.requests == []


@pytest.mark.parametrize("kind", KINDS)
async def test_the_api_key_never_reaches_a_prompt(models: ModelSandbox, kind: Kind) -> None:
    """The key travels in a header only: no recorded body or prompt contains it."""
    models.scenario = SCENARIO
    models.set_faults(ModelFault("schema_violation", times=1))
    async with model_client(models, kind) as client:
        await ask(client)
    assert len(models.requests) == 2
    for request in models.requests:
        assert API_KEY not in request.body and API_KEY not in request.prompt
    # Anthropic's SDK 2.x sends the key as a bearer token; Claude Code sends x-api-key.
    assert {"authorization", "x-api-key"} & set(models.requests[0].header_names)


def test_a_model_kind_needs_a_model_entry() -> None:
    """open_model_client refuses a command or builtin entry."""
    spec = AgentSpec(name="x", kind="command", argv=["x"])
    with pytest.raises(ModelConfigError, match="not a model"):
        open_model_client(spec, environ={})
