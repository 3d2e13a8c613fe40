"""POST /webhook: verify, store and enqueue in one transaction, then answer 202.

The signature is checked on the raw bytes before anything else; nothing is parsed, stored
or logged from an unverified body. No GitHub call and no full model parse on this path.
"""

import json
import logging

from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse

from bot.config import MAX_WEBHOOK_BYTES
from bot.runtime import Runtime
from bot.web import signing
from bot.webhooks.dispatch import DISPATCH_DELIVERY

log = logging.getLogger(__name__)

BAD_SIGNATURE = (
    "invalid or missing X-Hub-Signature-256: check that REVIEW_LOOP_WEBHOOK_SECRET matches "
    "the webhook secret of the GitHub App"
)


class BodyTooLarge(Exception):
    pass


async def _read_capped(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise BodyTooLarge
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise BodyTooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def store_delivery(
    runtime: Runtime, delivery_id: str, event: str, payload: dict[str, object], body: bytes
) -> bool:
    """Store the delivery and enqueue its dispatch job atomically; False if seen before."""
    action = payload.get("action")
    installation = payload.get("installation")
    repository = payload.get("repository")
    sender = payload.get("sender")
    async with runtime.pool.connection() as conn, conn.transaction():
        cur = await conn.execute(
            """INSERT INTO review_loop_deliveries
                   (id, event, action, installation_id, repository, sender, payload)
               VALUES (%s, %s, %s, %s, %s, %s, %s::jsonb)
               ON CONFLICT (id) DO NOTHING
               RETURNING id""",
            (
                delivery_id,
                event,
                action if isinstance(action, str) else None,
                installation.get("id") if isinstance(installation, dict) else None,
                repository.get("full_name") if isinstance(repository, dict) else None,
                sender.get("login") if isinstance(sender, dict) else None,
                body.decode("utf-8"),
            ),
        )
        if await cur.fetchone() is None:
            return False
        await runtime.queue.job(DISPATCH_DELIVERY, conn=conn).defer(delivery_id=delivery_id)
    return True


async def receive_webhook(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    secret: str = request.app.state.webhook_secret
    try:
        body = await _read_capped(request, MAX_WEBHOOK_BYTES)
    except BodyTooLarge:
        return _error(413, f"body larger than {MAX_WEBHOOK_BYTES} bytes")
    except ClientDisconnect:
        return _error(400, "client disconnected")
    if not signing.verify(secret, body, request.headers.get("x-hub-signature-256")):
        log.warning(
            "refused delivery %s: bad signature (from %s)",
            request.headers.get("x-github-delivery", "?"),
            request.client.host if request.client else "?",
        )
        return _error(401, BAD_SIGNATURE)
    event = request.headers.get("x-github-event")
    delivery_id = request.headers.get("x-github-delivery")
    if not event or not delivery_id:
        return _error(400, "X-GitHub-Event and X-GitHub-Delivery headers are required")
    try:
        payload = json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return _error(400, "body is not valid JSON")
    if not isinstance(payload, dict):
        return _error(400, "body is not a JSON object")
    if event == "ping":
        return JSONResponse({"ok": True, "zen": payload.get("zen")}, status_code=200)
    stored = await store_delivery(runtime, delivery_id, event, payload, body)
    if not stored:
        return JSONResponse({"delivery": delivery_id, "duplicate": True}, status_code=200)
    return JSONResponse({"delivery": delivery_id, "queued": True}, status_code=202)
