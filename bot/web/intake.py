"""POST /webhook: verify, store the delivery and queue its dispatch, answer after the commit.

The signature is checked on the raw bytes before anything else; nothing is parsed, stored
or logged from an unverified body. No GitHub call and no model parse on this path: the body
is checked to be a JSON object (`bot/webhooks/payload.py`) and stored as it came (the body
of a delivery no handler wants is not kept), with its dispatch job, in one statement shared
by the requests that arrive together (group commit, `bot/engine/group_commit.py`). A 2xx
means both are committed:

    202 {"delivery": ID, "queued": true}     stored now, dispatch queued
    202 {"delivery": ID, "queued": false, "ignored": REASON}
                                             stored now as ignored: no handler wants it
    200 {"delivery": ID, "duplicate": true}  this delivery id was stored before
    200 {"ok": true, "zen": ...}             GitHub's ping (nothing stored)
    400 malformed (headers, JSON)   401 bad signature   413 body too large
    503 the database did not commit the batch: nothing was stored, deliver again

Given the handlers' router, the intake asks it (`Router.ignored`, the payload alone) whether
any handler wants the delivery: one that none wants (a comment with no command, a label
that asks for no fix, an event no handler knows) is stored as ignored with no job, so the
workers never see the bulk of what an installation sends. Without a router every delivery
is queued and the worker decides.

A plain ASGI endpoint rather than a Starlette Request/Response pair: it is the one path
that must keep up with GitHub, and the objects cost a third of its time.
"""

import logging
import re
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson
import psycopg

from bot.config import MAX_WEBHOOK_BYTES
from bot.web import signing
from bot.webhooks.deliveries import Delivery, DeliveryWriter
from bot.webhooks.payload import InvalidPayload, check_payload
from bot.webhooks.routing import Router

log = logging.getLogger(__name__)

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

MAX_HEADER_BYTES = 16 * 1024
DELIVERY_ID = re.compile(r"[\x21-\x7e]{1,128}")  # GitHub sends a 36-character GUID
EVENT_NAME = re.compile(r"[a-z][a-z0-9_]{0,63}")

BAD_SIGNATURE = (
    "invalid or missing X-Hub-Signature-256: check that REVIEW_LOOP_WEBHOOK_SECRET matches "
    "the webhook secret of the GitHub App"
)
HEADERS_TOO_LARGE = f"request headers larger than {MAX_HEADER_BYTES} bytes"
MISSING_HEADERS = "X-GitHub-Event and X-GitHub-Delivery headers are required"
BAD_DELIVERY_ID = (
    "X-GitHub-Delivery must be 1 to 128 printable ASCII characters without spaces "
    "(GitHub sends a 36-character GUID)"
)
BAD_EVENT = "X-GitHub-Event must be a GitHub event name: 1 to 64 of a-z, 0-9 and _"
TOO_LARGE = f"body larger than {MAX_WEBHOOK_BYTES} bytes"
NOT_STORED = (
    "the delivery could not be stored (database unavailable); nothing was kept: deliver it again"
)

_JSON = [(b"content-type", b"application/json")]


class BodyTooLarge(Exception):
    pass


class Disconnected(Exception):
    pass


async def _read_capped(receive: Receive, declared: int | None, limit: int) -> bytes:
    if declared is not None and declared > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            raise Disconnected
        chunk: bytes = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
        if not message.get("more_body", False):
            return chunks[0] if len(chunks) == 1 else b"".join(chunks)


async def _answer(send: Send, status: int, content: dict[str, object]) -> None:
    body = orjson.dumps(content)
    headers = [*_JSON, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


async def _error(send: Send, status: int, message: str) -> None:
    await _answer(send, status, {"error": message})


class Intake:
    """The ASGI endpoint of POST /webhook."""

    def __init__(self, secret: str, writer: DeliveryWriter, router: Router | None = None) -> None:
        self._secret = secret
        self._writer = writer
        self._router = router

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        signature = event = delivery_id = None
        declared: int | None = None
        header_bytes = 0
        for name, value in scope["headers"]:
            header_bytes += len(name) + len(value)
            if name == b"x-hub-signature-256":
                signature = value.decode("latin-1")
            elif name == b"x-github-event":
                event = value.decode("latin-1")
            elif name == b"x-github-delivery":
                delivery_id = value.decode("latin-1")
            elif name == b"content-length" and value.isdigit():
                declared = int(value)
        if header_bytes > MAX_HEADER_BYTES:
            return await _error(send, 400, HEADERS_TOO_LARGE)
        try:
            body = await _read_capped(receive, declared, MAX_WEBHOOK_BYTES)
        except BodyTooLarge:
            return await _error(send, 413, TOO_LARGE)
        except Disconnected:
            return None  # nobody to answer
        if not signing.verify(self._secret, body, signature):
            client = scope.get("client")
            log.warning(
                "refused delivery %.64s: bad signature (from %s)",
                delivery_id or "?",
                client[0] if client else "?",
            )
            return await _error(send, 401, BAD_SIGNATURE)
        if not event or not delivery_id:
            return await _error(send, 400, MISSING_HEADERS)
        if not DELIVERY_ID.fullmatch(delivery_id):
            return await _error(send, 400, BAD_DELIVERY_ID)
        if not EVENT_NAME.fullmatch(event):
            return await _error(send, 400, BAD_EVENT)
        try:
            payload = check_payload(body)
        except InvalidPayload as exc:
            return await _error(send, 400, str(exc))
        if event == "ping":
            return await _answer(send, 200, {"ok": True, "zen": payload.get("zen")})
        ignored = None
        if self._router is not None:
            action = payload.get("action")
            ignored = self._router.ignored(
                event, action if isinstance(action, str) else None, payload
            )
        delivery = Delivery.of(delivery_id, event, body, payload, ignored=ignored)
        try:
            stored = await self._writer.store(delivery)
        except psycopg.Error as exc:
            log.error("delivery %s (%s) not stored: %s", delivery_id, event, exc)
            return await _error(send, 503, NOT_STORED)
        if not stored:
            return await _answer(send, 200, {"delivery": delivery_id, "duplicate": True})
        if ignored is not None:
            return await _answer(
                send, 202, {"delivery": delivery_id, "queued": False, "ignored": ignored}
            )
        return await _answer(send, 202, {"delivery": delivery_id, "queued": True})
