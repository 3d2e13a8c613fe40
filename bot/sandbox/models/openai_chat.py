"""OpenAI chat completions: `POST /v1/chat/completions`, plain or streamed (SSE)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.models.asks import Answer, Ask, Message, pieces, text_of
from bot.sandbox.models.wire import Plain, Reply, Stream, bearer, sse

ERROR_TYPES = {
    400: ("invalid_request_error", None),
    401: ("invalid_request_error", "invalid_api_key"),
    403: ("permission_denied", "unsupported_country_region_territory"),
    429: ("requests", "rate_limit_exceeded"),
    500: ("server_error", None),
}


class OpenAIChat:
    route = "openai.chat"

    def parse(self, body: Mapping[str, Any], target: str, query: Mapping[str, str]) -> Ask:
        system, messages, results = [], [], 0
        for message in body.get("messages") or []:
            role = message.get("role")
            text = text_of(message.get("content"))
            if role in ("system", "developer"):
                system.append(text)
            elif role == "tool":
                results += 1
                messages.append(Message("tool", text))
            elif role in ("user", "assistant"):
                for call in message.get("tool_calls") or []:
                    text += "\n" + str((call.get("function") or {}).get("arguments", ""))
                messages.append(Message(role, text))
        fmt = body.get("response_format") or {}
        spec = (fmt.get("json_schema") or {}) if fmt.get("type") == "json_schema" else {}
        tools = tuple(
            str((tool.get("function") or {}).get("name", "")) for tool in body.get("tools") or []
        )
        return Ask(
            route=self.route,
            model=str(body.get("model", "")),
            system="\n".join(system),
            messages=tuple(messages),
            stream=bool(body.get("stream")),
            tools=tools,
            tool_results=results,
            schema_name=spec.get("name"),
            schema=spec.get("schema"),
            schema_via="content" if spec.get("schema") is not None else None,
            options={
                "include_usage": bool((body.get("stream_options") or {}).get("include_usage"))
            },
        )

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer(headers)

    def render(self, ask: Ask, answer: Answer, reply: Reply) -> Plain | Stream:
        ident = f"chatcmpl-scripted-{reply.serial}"
        finish = "tool_calls" if answer.tool else "stop"
        usage = {
            "prompt_tokens": reply.usage.prompt_tokens,
            "completion_tokens": reply.usage.completion_tokens,
            "total_tokens": reply.usage.total_tokens,
        }
        head = {"id": ident, "created": reply.created, "model": reply.model}
        call_id = f"call_scripted_{reply.serial}"
        if not ask.stream:
            message: dict[str, Any] = {
                "role": "assistant",
                "content": answer.text or None,
                "refusal": None,
            }
            if answer.tool:
                message["tool_calls"] = [
                    {
                        "id": call_id,
                        "type": "function",
                        "function": {"name": answer.tool.name, "arguments": answer.tool.arguments},
                    }
                ]
            return Plain(
                {
                    **head,
                    "object": "chat.completion",
                    "choices": [
                        {"index": 0, "message": message, "finish_reason": finish, "logprobs": None}
                    ],
                    "usage": usage,
                    "system_fingerprint": "scripted",
                }
            )

        def chunk(delta: dict[str, Any], finish_reason: str | None = None) -> str:
            choice = {"index": 0, "delta": delta, "finish_reason": finish_reason}
            return sse({**head, "object": "chat.completion.chunk", "choices": [choice]})

        events = [chunk({"role": "assistant", "content": ""})]
        events += [chunk({"content": piece}) for piece in pieces(answer.text)]
        if answer.tool:
            start = {"index": 0, "id": call_id, "type": "function"}
            events.append(
                chunk(
                    {
                        "tool_calls": [
                            start | {"function": {"name": answer.tool.name, "arguments": ""}}
                        ]
                    }
                )
            )
            events += [
                chunk({"tool_calls": [{"index": 0, "function": {"arguments": piece}}]})
                for piece in pieces(answer.tool.arguments)
            ]
        events.append(chunk({}, finish))
        if ask.options.get("include_usage"):
            events.append(
                sse({**head, "object": "chat.completion.chunk", "choices": [], "usage": usage})
            )
        events.append(sse("[DONE]"))
        return Stream(events)

    def error(self, status: int, message: str) -> Any:
        kind, code = ERROR_TYPES.get(status, ("server_error", None))
        return {"error": {"message": message, "type": kind, "param": None, "code": code}}
