"""Anthropic Messages: structured output through one tool the model is forced to call.

The tool's `input_schema` is the wanted schema; the tool call's `input` is the answer. The
Messages API of SDK 2.x takes no sampling parameters, so no temperature is sent.
"""

from __future__ import annotations

import json

import anthropic
from anthropic.types import MessageParam

from bot.agents.catalog import AgentSpec
from bot.agents.models.backend import Completion, StructuredRequest, refusal, short

DEFAULT_BASE_URL = "https://api.anthropic.com"


class AnthropicMessages:
    """A `Backend` over `AsyncAnthropic.messages.create` with a forced tool."""

    transient: tuple[type[BaseException], ...] = (
        anthropic.RateLimitError,
        anthropic.InternalServerError,  # includes 529 overloaded
        anthropic.RequestTimeoutError,
        anthropic.APIConnectionError,  # includes APITimeoutError
    )

    def __init__(self, spec: AgentSpec, api_key: str) -> None:
        self._spec = spec
        self.base_url = spec.base_url or DEFAULT_BASE_URL
        self._client = anthropic.AsyncAnthropic(
            api_key=api_key,
            base_url=self.base_url,
            timeout=spec.timeout_s,
            max_retries=0,
        )

    async def complete(self, request: StructuredRequest) -> Completion:
        messages: list[MessageParam] = []
        for turn in request.turns:
            if turn.role == "user":
                messages.append({"role": "user", "content": turn.text})
            else:
                messages.append({"role": "assistant", "content": turn.text})
        assert self._spec.model is not None
        try:
            message = await self._client.messages.create(
                model=self._spec.model,
                max_tokens=self._spec.max_output_tokens,
                system=request.system,
                messages=messages,
                tools=[
                    {
                        "name": request.schema_name,
                        "description": request.description,
                        "input_schema": dict(request.schema),
                    }
                ],
                tool_choice={"type": "tool", "name": request.schema_name},
            )
        except anthropic.APIStatusError as error:
            if isinstance(error, self.transient):
                raise
            raise refusal(
                self._spec, self.base_url, error.status_code, short(error.api_message)
            ) from None
        tokens_in, tokens_out = message.usage.input_tokens, message.usage.output_tokens
        for block in message.content:
            if block.type == "tool_use" and block.name == request.schema_name:
                text = json.dumps(block.input, ensure_ascii=False)
                return Completion(text, message.model, tokens_in, tokens_out)
        said = " ".join(block.text for block in message.content if block.type == "text")
        problem = f"the reply did not call the tool {request.schema_name!r}"
        if message.stop_reason == "max_tokens":
            problem += " (it stopped at the output token limit)"
        return Completion(said or None, message.model, tokens_in, tokens_out, problem)

    def describe(self, error: BaseException) -> str:
        if isinstance(error, anthropic.APITimeoutError):
            return f"no answer within {self._spec.timeout_s:g} s"
        if isinstance(error, anthropic.APIConnectionError):
            cause = short(error.__cause__) or "connection failed"
            return f"could not reach {self.base_url} ({cause})"
        if isinstance(error, anthropic.APIStatusError):
            said = short(error.api_message)
            return f"{error.status_code} from {self.base_url}" + (f": {said}" if said else "")
        return type(error).__name__

    async def aclose(self) -> None:
        await self._client.close()
