"""The scripted model sandbox for tests: one server per session, reset before each test."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, Literal

import pytest

from bot.agents.catalog import AgentSpec, Price
from bot.agents.models.client import ModelClient, open_model_client
from bot.agents.models.retry import RetryPolicy
from bot.sandbox.models import ModelSandbox, Scenario

API_KEY = "sk-sandbox-test-key-0123456789abcdef"
KEY_VAR = "SANDBOX_MODEL_API_KEY"
ENVIRON = {KEY_VAR: API_KEY}
PRICE = Price(input_per_mtok=2.0, output_per_mtok=8.0)
Kind = Literal["openai", "anthropic"]
KINDS: tuple[Kind, ...] = ("openai", "anthropic")


@pytest.fixture(scope="session")
def model_server() -> Iterator[ModelSandbox]:
    with ModelSandbox.start(api_key=API_KEY) as sandbox:
        yield sandbox


@pytest.fixture
def models(model_server: ModelSandbox) -> Iterator[ModelSandbox]:
    """The sandbox with an empty scenario, no faults and no recorded requests."""
    model_server.scenario = Scenario()
    model_server.set_faults()
    model_server.hub.clear()
    yield model_server
    model_server.set_faults()


def model_spec(sandbox: ModelSandbox, kind: Kind = "openai", **settings: Any) -> AgentSpec:
    """A catalog entry of `kind` pointing at the sandbox."""
    base_url = sandbox.openai_base_url if kind == "openai" else sandbox.anthropic_base_url
    entry: dict[str, Any] = {
        "name": f"{kind}-agent",
        "kind": kind,
        "model": f"{kind}-test-model",
        "base_url": base_url,
        "api_key_env": KEY_VAR,
        "timeout_s": 5.0,
        "max_retries": 2,
        "price": PRICE,
    }
    return AgentSpec.model_validate(entry | settings)


class SleepLog:
    """A `RetryPolicy.sleep` that waits for nothing and remembers what it was asked to wait."""

    def __init__(self) -> None:
        self.waits: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waits.append(seconds)


def model_client(
    sandbox: ModelSandbox,
    kind: Kind = "openai",
    *,
    sleeps: SleepLog | None = None,
    **settings: Any,
) -> ModelClient:
    """A client for a `kind` entry on the sandbox, whose retries never really wait."""
    policy = RetryPolicy(sleep=sleeps if sleeps is not None else SleepLog())
    return open_model_client(model_spec(sandbox, kind, **settings), environ=ENVIRON, retry=policy)
