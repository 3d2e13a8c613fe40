"""The no-storage baselines of `make bench-intake`, served by uvicorn[standard] (httptools +
uvloop) as the bot is: HMAC-SHA256 over the raw body, parse, 202.

`starlette` is the baseline the goal is measured against: a bare Starlette endpoint with
`json.loads`. `asgi` is a reference for what the bot's own request path costs without
storage: a plain ASGI endpoint with orjson, as `bot/web/intake.py` does it.
"""

import argparse
import hashlib
import hmac
import json
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

Message = MutableMapping[str, Any]


def starlette_app(secret: str) -> Starlette:
    key = secret.encode()

    async def webhook(request: Request) -> JSONResponse:
        body = await request.body()
        digest = "sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest()
        if not hmac.compare_digest(digest, request.headers.get("x-hub-signature-256", "")):
            return JSONResponse({"error": "bad signature"}, status_code=401)
        try:
            json.loads(body)
        except ValueError:
            return JSONResponse({"error": "bad json"}, status_code=400)
        delivery = request.headers.get("x-github-delivery")
        return JSONResponse({"delivery": delivery, "queued": True}, status_code=202)

    return Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])


Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
ASGIApp = Callable[[Message, Receive, Send], Awaitable[None]]


def asgi_app(secret: str) -> ASGIApp:
    key = secret.encode()

    async def app(scope: Message, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return
        chunks = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if not message.get("more_body"):
                break
        body = b"".join(chunks)
        headers = dict(scope["headers"])
        digest = b"sha256=" + hmac.new(key, body, hashlib.sha256).hexdigest().encode()
        status = (
            202 if hmac.compare_digest(digest, headers.get(b"x-hub-signature-256", b"")) else 401
        )
        try:
            orjson.loads(body)
        except orjson.JSONDecodeError:
            status = 400
        out = orjson.dumps(
            {"delivery": headers.get(b"x-github-delivery", b"").decode(), "queued": True}
        )
        await send({"type": "http.response.start", "status": status,
                    "headers": [(b"content-type", b"application/json"),
                                (b"content-length", str(len(out)).encode())]})  # fmt: skip
        await send({"type": "http.response.body", "body": out})

    return app


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--secret", required=True)
    parser.add_argument("--kind", choices=["starlette", "asgi"], default="starlette")
    args = parser.parse_args()
    app = starlette_app(args.secret) if args.kind == "starlette" else asgi_app(args.secret)
    uvicorn.run(
        app, host="127.0.0.1", port=args.port, log_level="warning", access_log=False, lifespan="off"
    )


if __name__ == "__main__":
    main()
