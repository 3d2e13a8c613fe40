"""OpenAI-compatible chat completions (OpenAI, Azure, vLLM, llama.cpp, Ollama, OpenRouter).

Structured output through `response_format: json_schema` in strict mode; the reply's
`choices[0].message.content` is the JSON text.
"""

from __future__ import annotations

from typing import Any

import openai
from openai.types.chat import ChatCompletionMessageParam

from bot.agents.catalog import AgentSpec
from bot.agents.models.backend import Completion, StructuredRequest, refusal, short

DEFAULT_BASE_URL = "https://api.openai.com/v1"


class OpenAIChat:
    """A `Backend` over `AsyncOpenAI.chat.completions.create`."""

    transient: tuple[type[BaseException], ...] = (
        openai.RateLimitError,
        openai.InternalServerError,
        openai.APIConnectionError,  # includes APITimeoutError
    )

    def __init__(self, spec: AgentSpec, api_key: str) -> None:
        self._spec = spec
        self.base_url = spec.base_url or DEFAULT_BASE_URL
        self._client = openai.AsyncOpenAI(
            api_key=api_key,
            base_url=self.base_url,
            timeout=spec.timeout_s,
            max_retries=0,
        )

    async def complete(self, request: StructuredRequest) -> Completion:
        messages: list[ChatCompletionMessageParam] = [{"role": "system", "content": request.system}]
        for turn in request.turns:
            if turn.role == "user":
                messages.append({"role": "user", "content": turn.text})
            else:
                messages.append({"role": "assistant", "content": turn.text})
        assert self._spec.model is not None
        try:
            completion = await self._client.chat.completions.create(
                model=self._spec.model,
                messages=messages,
                response_format={
                    "type": "json_schema",
                    "json_schema": {
                        "name": request.schema_name,
                        "description": request.description,
                        "strict": True,
                        "schema": dict(request.schema),
                    },
                },
                temperature=self._spec.temperature,
                max_completion_tokens=self._spec.max_output_tokens,
            )
        except openai.APIStatusError as error:
            if isinstance(error, self.transient):
                raise
            raise refusal(
                self._spec, self.base_url, error.status_code, _api_message(error.body)
            ) from None
        usage = completion.usage
        tokens_in = usage.prompt_tokens if usage else 0
        tokens_out = usage.completion_tokens if usage else 0
        if not completion.choices:
            return Completion(
                None, completion.model, tokens_in, tokens_out, "the reply had no choices"
            )
        choice = completion.choices[0]
        message = choice.message
        problem = None
        if message.refusal:
            problem = f"the model refused: {short(message.refusal)}"
        elif choice.finish_reason == "length":
            problem = "the reply stopped at the output token limit"
        elif not message.content:
            problem = "the reply had no content"
        text = message.content or None
        return Completion(text, completion.model, tokens_in, tokens_out, problem)

    def describe(self, error: BaseException) -> str:
        if isinstance(error, openai.APITimeoutError):
            return f"no answer within {self._spec.timeout_s:g} s"
        if isinstance(error, openai.APIConnectionError):
            cause = short(error.__cause__) or "connection failed"
            return f"could not reach {self.base_url} ({cause})"
        if isinstance(error, openai.APIStatusError):
            said = _api_message(error.body)
            return f"{error.status_code} from {self.base_url}" + (f": {said}" if said else "")
        return type(error).__name__

    async def aclose(self) -> None:
        await self._client.close()


def _api_message(body: object) -> str | None:
    """The `error.message` of an OpenAI-style error body."""
    if isinstance(body, dict):
        inner: Any = body.get("error", body)
        if isinstance(inner, dict):
            return short(inner.get("message"))
        return short(inner)
    return short(body)
