"""The model sandbox's HTTP app: authenticate, record, draw a fault, answer from the script."""

from __future__ import annotations

import asyncio
import dataclasses
import itertools
import json
import secrets
import threading
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response, StreamingResponse
from starlette.routing import Route
from starlette.types import Receive, Scope, Send

from bot.sandbox.models import prompts
from bot.sandbox.models.anthropic_messages import AnthropicMessages
from bot.sandbox.models.asks import Ask, Usage
from bot.sandbox.models.faults import CONTENT, INJECTIONS, STATUS, ModelFault, ModelFaults
from bot.sandbox.models.gemini import Gemini
from bot.sandbox.models.openai_chat import OpenAIChat
from bot.sandbox.models.openai_responses import OpenAIResponses
from bot.sandbox.models.scenario import Scenario, scripted_name
from bot.sandbox.models.wire import Plain, Reply, Stream, Wire

ALWAYS = frozenset({*STATUS, "timeout", "truncated"})
WRONG_KEY = "scripted model sandbox: this is not the API key the sandbox was started with"
POLL_S = 0.05


@dataclass(frozen=True)
class RecordedRequest:
    """One request as the sandbox received it, for tests to assert on.

    `prompt_tokens` is the sandbox's count (words and punctuation marks, see `count_tokens`)
    over the system text and every message; `files` are the paths the brief names on its
    `File:` lines; `body` is the raw request body; header values are not kept.
    """

    route: str
    path: str
    model: str
    stream: bool
    schema_name: str | None
    tools: tuple[str, ...]
    tool_results: int
    prompt: str
    prompt_tokens: int
    files: tuple[str, ...]
    body: str
    header_names: tuple[str, ...]
    authorized: bool
    fault: str | None


class ModelHub:
    """The sandbox's state: the scenario, the faults, the expected key and the recording."""

    def __init__(self, scenario: Scenario | None = None, api_key: str | None = None) -> None:
        self.scenario = scenario or Scenario()
        self.faults = ModelFaults()
        self.api_key = api_key
        self.closing = threading.Event()
        self._lock = threading.Lock()
        self._requests: list[RecordedRequest] = []
        self._serial = itertools.count(1)

    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self._requests.append(request)

    @property
    def requests(self) -> list[RecordedRequest]:
        with self._lock:
            return list(self._requests)

    def clear(self) -> None:
        with self._lock:
            self._requests.clear()

    def serial(self) -> int:
        with self._lock:
            return next(self._serial)

    def authorized(self, key: str | None) -> bool:
        if self.api_key is None:
            return True
        return key is not None and secrets.compare_digest(key.encode(), self.api_key.encode())


def build_app(hub: ModelHub) -> Starlette:
    """Starlette app speaking every wire format the sandbox knows, plus its admin routes."""

    def endpoint(wire: Wire) -> Any:
        async def handle(request: Request) -> Response:
            return await _serve(hub, wire, request)

        return handle

    async def root(_: Request) -> Response:  # Claude Code checks HEAD / before it starts
        return Response("scripted model sandbox\n", media_type="text/plain")

    async def list_requests(_: Request) -> Response:
        return JSONResponse([dataclasses.asdict(r) for r in hub.requests])

    async def clear_requests(_: Request) -> Response:
        hub.clear()
        return Response(status_code=204)

    async def set_faults(request: Request) -> Response:
        data = await request.json()
        faults = [ModelFault.from_json(item) for item in data.get("faults", [])]
        hub.faults.configure(faults, seed=int(data.get("seed", 0)))
        return JSONResponse(hub.faults.snapshot())

    async def get_faults(_: Request) -> Response:
        return JSONResponse(hub.faults.snapshot())

    async def set_scenario(request: Request) -> Response:
        hub.scenario = Scenario.from_json(await request.json())
        return Response(status_code=204)

    return Starlette(
        routes=[
            Route("/", root, methods=["GET", "HEAD"]),
            Route("/v1/chat/completions", endpoint(OpenAIChat()), methods=["POST"]),
            Route("/v1/responses", endpoint(OpenAIResponses()), methods=["POST"]),
            Route("/v1/messages", endpoint(AnthropicMessages()), methods=["POST"]),
            Route("/v1beta/models/{target}", endpoint(Gemini()), methods=["POST"]),
            Route("/_sandbox/requests", list_requests, methods=["GET"]),
            Route("/_sandbox/requests", clear_requests, methods=["DELETE"]),
            Route("/_sandbox/faults", get_faults, methods=["GET"]),
            Route("/_sandbox/faults", set_faults, methods=["POST"]),
            Route("/_sandbox/scenario", set_scenario, methods=["POST"]),
        ]
    )


async def _serve(hub: ModelHub, wire: Wire, request: Request) -> Response:
    raw = await request.body()
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if not isinstance(body, dict):
        return JSONResponse(wire.error(400, "the request body is not a JSON object"), 400)
    query = dict(request.query_params)
    ask = wire.parse(body, request.path_params.get("target", ""), query)
    authorized = hub.authorized(wire.api_key(request.headers, query))
    fault = hub.faults.draw(wire.route, _applicable(ask)) if authorized else None
    hub.record(
        RecordedRequest(
            route=wire.route,
            path=request.url.path,
            model=ask.model,
            stream=ask.stream,
            schema_name=ask.schema_name,
            tools=ask.tools,
            tool_results=ask.tool_results,
            prompt=ask.prompt,
            prompt_tokens=ask.prompt_tokens,
            files=tuple(prompts.file_paths("\n".join(m.text for m in ask.messages))),
            body=raw.decode("utf-8", errors="replace"),
            header_names=tuple(sorted(request.headers.keys())),
            authorized=authorized,
            fault=fault.kind if fault else None,
        )
    )
    if not authorized:
        return JSONResponse(wire.error(401, WRONG_KEY), 401)
    if fault is not None and fault.kind in STATUS:
        status = STATUS[fault.kind]
        headers = {"retry-after": f"{fault.retry_after_s:g}"} if status == 429 else {}
        message = f"scripted model sandbox: injected fault {fault.kind} ({status})"
        return JSONResponse(wire.error(status, message), status, headers=headers)
    if fault is not None and fault.kind == "timeout":
        await _stall(hub, request, fault.delay_s)
    content_fault = fault.kind if fault and fault.kind in CONTENT | INJECTIONS else None
    answer = hub.scenario.answer(ask, fault=content_fault)
    reply = Reply(
        model=scripted_name(ask.model),
        usage=Usage(ask.prompt_tokens, answer.tokens),
        serial=hub.serial(),
        created=int(time.time()),
    )
    rendered = wire.render(ask, answer, reply)
    cut = fault is not None and fault.kind == "truncated"
    if isinstance(rendered, Stream):
        events = rendered.events[: len(rendered.events) // 2] if cut else rendered.events
        return StreamingResponse(_each(events), media_type="text/event-stream")
    assert isinstance(rendered, Plain)
    payload = json.dumps(rendered.body, ensure_ascii=False).encode()
    return _CutShort(payload) if cut else Response(payload, media_type="application/json")


def _applicable(ask: Ask) -> frozenset[str]:
    kinds = set(ALWAYS)
    if ask.structured:
        kinds |= CONTENT
    if ask.schema_name in (prompts.REVIEW_SCHEMA, prompts.FIX_SCHEMA):
        kinds |= INJECTIONS
    return frozenset(kinds)


async def _stall(hub: ModelHub, request: Request, seconds: float) -> None:
    """Wait `seconds`, or less if the client hangs up or the sandbox stops."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and not hub.closing.is_set():
        if await request.is_disconnected():
            return
        await asyncio.sleep(POLL_S)


async def _each(events: list[str]) -> AsyncIterator[str]:
    for event in events:
        yield event


class _CutShort(Response):
    """A JSON body that promises its full length and stops halfway: a dropped connection."""

    def __init__(self, payload: bytes) -> None:
        super().__init__(payload, media_type="application/json")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self.body)).encode()),
                ],
            }
        )
        await send(
            {
                "type": "http.response.body",
                "body": self.body[: len(self.body) // 2],
                "more_body": True,
            }
        )
