"""OpenAI Responses: `POST /v1/responses`, plain or streamed (SSE), with function calls.

The wire Codex speaks (`wire_api = "responses"`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.sandbox.models.asks import Answer, Ask, Message, pieces, text_of
from bot.sandbox.models.openai_chat import OpenAIChat
from bot.sandbox.models.wire import Plain, Reply, Stream, bearer, sse


class OpenAIResponses:
    route = "openai.responses"

    def parse(self, body: Mapping[str, Any], target: str, query: Mapping[str, str]) -> Ask:
        messages, results = [], 0
        items = body.get("input")
        if isinstance(items, str):
            items = [{"role": "user", "content": items}]
        system = [str(body.get("instructions") or "")]
        for item in items or []:
            kind = item.get("type", "message")
            if kind == "function_call_output":
                results += 1
                messages.append(Message("tool", text_of(item.get("output"))))
            elif kind == "function_call":
                messages.append(Message("assistant", str(item.get("arguments", ""))))
            elif kind == "message":
                role = item.get("role")
                text = text_of(item.get("content"))
                if role in ("system", "developer"):
                    system.append(text)
                elif role in ("user", "assistant"):
                    messages.append(Message(role, text))
        fmt = (body.get("text") or {}).get("format") or {}
        structured = fmt.get("type") == "json_schema"
        tools = tuple(str(t.get("name", "")) for t in body.get("tools") or [] if t.get("name"))
        return Ask(
            route=self.route,
            model=str(body.get("model", "")),
            system="\n".join(part for part in system if part),
            messages=tuple(messages),
            stream=bool(body.get("stream")),
            tools=tools,
            tool_results=results,
            schema_name=fmt.get("name") if structured else None,
            schema=fmt.get("schema") if structured else None,
            schema_via="content" if structured and fmt.get("schema") is not None else None,
        )

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return bearer(headers)

    def render(self, ask: Ask, answer: Answer, reply: Reply) -> Plain | Stream:
        serial = reply.serial
        items: list[dict[str, Any]] = []
        if answer.text:
            items.append(
                {
                    "type": "message",
                    "id": f"msg_scripted_{serial}",
                    "status": "completed",
                    "role": "assistant",
                    "content": [{"type": "output_text", "text": answer.text, "annotations": []}],
                }
            )
        if answer.tool:
            items.append(
                {
                    "type": "function_call",
                    "id": f"fc_scripted_{serial}",
                    "call_id": f"call_scripted_{serial}",
                    "name": answer.tool.name,
                    "arguments": answer.tool.arguments,
                    "status": "completed",
                }
            )
        usage = {
            "input_tokens": reply.usage.prompt_tokens,
            "input_tokens_details": {"cached_tokens": 0, "cache_write_tokens": 0},
            "output_tokens": reply.usage.completion_tokens,
            "output_tokens_details": {"reasoning_tokens": 0},
            "total_tokens": reply.usage.total_tokens,
        }

        def response(status: str, output: list[dict[str, Any]]) -> dict[str, Any]:
            return {
                "id": f"resp_scripted_{serial}",
                "object": "response",
                "created_at": reply.created,
                "model": reply.model,
                "status": status,
                "output": output,
                "parallel_tool_calls": False,
                "tool_choice": "auto",
                "tools": [],
                "error": None,
                "incomplete_details": None,
                "instructions": None,
                "metadata": {},
                "usage": usage if status == "completed" else None,
            }

        if not ask.stream:
            return Plain(response("completed", items))
        events: list[dict[str, Any]] = [
            {"type": "response.created", "response": response("in_progress", [])},
            {"type": "response.in_progress", "response": response("in_progress", [])},
        ]
        for index, item in enumerate(items):
            ident = item["id"]
            if item["type"] == "message":
                text = item["content"][0]["text"]
                empty = {"type": "output_text", "text": "", "annotations": []}
                where = {"item_id": ident, "output_index": index, "content_index": 0}
                events += [
                    {
                        "type": "response.output_item.added",
                        "output_index": index,
                        "item": {**item, "status": "in_progress", "content": []},
                    },
                    {"type": "response.content_part.added", **where, "part": empty},
                    *(
                        {"type": "response.output_text.delta", **where, "delta": p, "logprobs": []}
                        for p in pieces(text)
                    ),
                    {"type": "response.output_text.done", **where, "text": text, "logprobs": []},
                    {"type": "response.content_part.done", **where, "part": item["content"][0]},
                ]
            else:
                where = {"item_id": ident, "output_index": index}
                events += [
                    {
                        "type": "response.output_item.added",
                        "output_index": index,
                        "item": {**item, "status": "in_progress", "arguments": ""},
                    },
                    *(
                        {"type": "response.function_call_arguments.delta", **where, "delta": p}
                        for p in pieces(item["arguments"])
                    ),
                    {
                        "type": "response.function_call_arguments.done",
                        **where,
                        "name": item["name"],
                        "arguments": item["arguments"],
                    },
                ]
            events.append(
                {"type": "response.output_item.done", "output_index": index, "item": item}
            )
        events.append({"type": "response.completed", "response": response("completed", items)})
        return Stream(
            [sse({**event, "sequence_number": n}, event["type"]) for n, event in enumerate(events)]
        )

    def error(self, status: int, message: str) -> Any:
        return OpenAIChat().error(status, message)
