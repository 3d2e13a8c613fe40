"""Anthropic Messages: `POST /v1/messages`, plain or streamed (SSE), with tool use."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Literal

from bot.sandbox.models.asks import Answer, Ask, Message, pieces, text_of
from bot.sandbox.models.wire import Plain, Reply, Stream, arguments_object, bearer, sse

ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    429: "rate_limit_error",
    500: "api_error",
    529: "overloaded_error",
}


class AnthropicMessages:
    route = "anthropic.messages"

    def parse(self, body: Mapping[str, Any], target: str, query: Mapping[str, str]) -> Ask:
        messages, results = [], 0
        for message in body.get("messages") or []:
            role: Literal["user", "assistant"] = (
                "assistant" if message.get("role") == "assistant" else "user"
            )
            content = message.get("content")
            blocks = content if isinstance(content, list) else []
            for block in blocks:
                if isinstance(block, Mapping) and block.get("type") == "tool_result":
                    results += 1
                    messages.append(Message("tool", text_of(block.get("content"))))
            text = text_of(content)
            if text or not blocks:
                messages.append(Message(role, text))
        tools = {
            str(tool.get("name", "")): tool.get("input_schema") for tool in body.get("tools") or []
        }
        choice = body.get("tool_choice") or {}
        forced = choice.get("name") if choice.get("type") == "tool" else None
        return Ask(
            route=self.route,
            model=str(body.get("model", "")),
            system=text_of(body.get("system") or ""),
            messages=tuple(messages),
            stream=bool(body.get("stream")),
            tools=tuple(tools),
            tool_results=results,
            schema_name=forced,
            schema=tools.get(forced) if forced else None,
            schema_via="tool" if forced and tools.get(forced) is not None else None,
        )

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-api-key") or bearer(headers)

    def render(self, ask: Ask, answer: Answer, reply: Reply) -> Plain | Stream:
        ident = f"msg_scripted_{reply.serial}"
        tool_id = f"toolu_scripted_{reply.serial}"
        blocks: list[dict[str, Any]] = []
        text = answer.text
        tool_input = arguments_object(answer.tool.arguments) if answer.tool else None
        if answer.tool and tool_input is None and not ask.stream:
            # Parsed tool input cannot be broken JSON: the model "answered in text" instead.
            text = (text + "\n" if text else "") + answer.tool.arguments
        if text:
            blocks.append({"type": "text", "text": text})
        if answer.tool and (tool_input is not None or ask.stream):
            blocks.append({"type": "tool_use", "id": tool_id, "name": answer.tool.name})
        stop = "tool_use" if any(b["type"] == "tool_use" for b in blocks) else "end_turn"
        usage = {
            "input_tokens": reply.usage.prompt_tokens,
            "output_tokens": reply.usage.completion_tokens,
        }
        message = {
            "id": ident,
            "type": "message",
            "role": "assistant",
            "model": reply.model,
            "stop_sequence": None,
        }
        if not ask.stream:
            for block in blocks:
                if block["type"] == "tool_use":
                    block["input"] = tool_input
            return Plain({**message, "content": blocks, "stop_reason": stop, "usage": usage})
        events = [
            sse(
                {
                    "type": "message_start",
                    "message": {
                        **message,
                        "content": [],
                        "stop_reason": None,
                        "usage": {"input_tokens": usage["input_tokens"], "output_tokens": 1},
                    },
                },
                "message_start",
            )
        ]
        for index, block in enumerate(blocks):
            if block["type"] == "text":
                start: dict[str, Any] = {"type": "text", "text": ""}
                deltas = [{"type": "text_delta", "text": p} for p in pieces(block["text"])]
            else:
                assert answer.tool is not None
                start = {**block, "input": {}}
                deltas = [
                    {"type": "input_json_delta", "partial_json": p}
                    for p in pieces(answer.tool.arguments)
                ]
            events.append(
                sse(
                    {"type": "content_block_start", "index": index, "content_block": start},
                    "content_block_start",
                )
            )
            events += [
                sse(
                    {"type": "content_block_delta", "index": index, "delta": d},
                    "content_block_delta",
                )
                for d in deltas
            ]
            events.append(sse({"type": "content_block_stop", "index": index}, "content_block_stop"))
        events.append(
            sse(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": stop, "stop_sequence": None},
                    "usage": {"output_tokens": usage["output_tokens"]},
                },
                "message_delta",
            )
        )
        events.append(sse({"type": "message_stop"}, "message_stop"))
        return Stream(events)

    def error(self, status: int, message: str) -> Any:
        return {
            "type": "error",
            "error": {"type": ERROR_TYPES.get(status, "api_error"), "message": message},
        }
