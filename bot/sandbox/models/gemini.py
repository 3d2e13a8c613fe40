"""Gemini: `POST /v1beta/models/<model>:generateContent` and `:streamGenerateContent?alt=sse`.

The wire the Gemini CLI speaks (`GOOGLE_GEMINI_BASE_URL`, key in `x-goog-api-key`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from bot.sandbox.models.asks import Answer, Ask, Message, pieces
from bot.sandbox.models.wire import Plain, Reply, Stream, arguments_object, sse

STATUS_NAMES = {
    400: "INVALID_ARGUMENT",
    401: "UNAUTHENTICATED",
    403: "PERMISSION_DENIED",
    429: "RESOURCE_EXHAUSTED",
    500: "INTERNAL",
}


class Gemini:
    route = "gemini.generate"

    def parse(self, body: Mapping[str, Any], target: str, query: Mapping[str, str]) -> Ask:
        model, _, method = target.partition(":")
        messages, results = [], 0
        for content in body.get("contents") or []:
            role: Literal["user", "assistant"] = (
                "assistant" if content.get("role") == "model" else "user"
            )
            texts = []
            for part in content.get("parts") or []:
                if "functionResponse" in part:
                    results += 1
                    messages.append(Message("tool", json.dumps(part["functionResponse"])))
                elif "functionCall" in part:
                    texts.append(json.dumps(part["functionCall"].get("args", {})))
                elif isinstance(part.get("text"), str):
                    texts.append(part["text"])
            if texts:
                messages.append(Message(role, "\n".join(texts)))
        system = body.get("systemInstruction") or body.get("system_instruction") or {}
        config = body.get("generationConfig") or {}
        schema = config.get("responseJsonSchema") or config.get("responseSchema")
        tools = tuple(
            str(declaration.get("name", ""))
            for tool in body.get("tools") or []
            for declaration in tool.get("functionDeclarations") or []
        )
        return Ask(
            route=self.route,
            model=model,
            system="\n".join(str(p.get("text", "")) for p in system.get("parts") or []),
            messages=tuple(messages),
            stream=method == "streamGenerateContent",
            tools=tools,
            tool_results=results,
            schema=schema,
            schema_via="content" if schema is not None else None,
            options={"method": method, "alt": query.get("alt")},
        )

    def api_key(self, headers: Mapping[str, str], query: Mapping[str, str]) -> str | None:
        return headers.get("x-goog-api-key") or query.get("key")

    def render(self, ask: Ask, answer: Answer, reply: Reply) -> Plain | Stream:
        usage = {
            "promptTokenCount": reply.usage.prompt_tokens,
            "candidatesTokenCount": reply.usage.completion_tokens,
            "totalTokenCount": reply.usage.total_tokens,
        }
        parts: list[dict[str, Any]] = [{"text": p} for p in pieces(answer.text)]
        if answer.tool:
            args = arguments_object(answer.tool.arguments)
            if args is None:
                parts.append({"text": answer.tool.arguments})
            else:
                parts.append({"functionCall": {"name": answer.tool.name, "args": args}})

        def chunk(chunk_parts: list[dict[str, Any]], last: bool) -> dict[str, Any]:
            candidate: dict[str, Any] = {
                "content": {"role": "model", "parts": chunk_parts},
                "index": 0,
            }
            if last:
                candidate["finishReason"] = "STOP"
            return {
                "candidates": [candidate],
                "usageMetadata": usage,
                "modelVersion": reply.model,
                "responseId": f"scripted-{reply.serial}",
            }

        if not ask.stream:
            return Plain(chunk(_merged(parts), True))
        chunks = [chunk([part], n == len(parts) - 1) for n, part in enumerate(parts)] or [
            chunk([{"text": ""}], True)
        ]
        if ask.options.get("alt") == "sse":
            return Stream([sse(c) for c in chunks])
        return Plain(chunks)

    def error(self, status: int, message: str) -> Any:
        return {
            "error": {
                "code": status,
                "message": message,
                "status": STATUS_NAMES.get(status, "INTERNAL"),
            }
        }


def _merged(parts: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Consecutive text parts joined, as a whole (unstreamed) reply has them."""
    merged: list[dict[str, Any]] = []
    for part in parts:
        if "text" in part and merged and "text" in merged[-1]:
            merged[-1] = {"text": merged[-1]["text"] + part["text"]}
        else:
            merged.append(dict(part))
    return merged
