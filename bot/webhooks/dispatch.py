"""Dispatch a stored delivery to every handler registered for its event and action.

One failing handler is logged with its name and the delivery id and never stops the others;
the outcome of each is recorded on the delivery. A delivery with a failed handler is retried
(every handler again: they are idempotent) until the job's last attempt, so a passing fault
(a GitHub 502, a database hiccup) loses nothing.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from procrastinate import RetryStrategy
from pydantic import ValidationError

from bot.engine.queue import Job, current_attempt
from bot.logs import delivery_context
from bot.loop.fleet import Fleet
from bot.runtime import Runtime
from bot.webhooks.context import Context, DeliveryLogger
from bot.webhooks.events import Envelope
from bot.webhooks.routing import Router

log = logging.getLogger(__name__)

DISPATCH_RETRY = RetryStrategy(max_attempts=5, exponential_wait=2)


@dataclass(frozen=True)
class Dispatcher:
    """What dispatching needs: the worker's fleet (handlers get it in their Context) and the
    enabled handlers."""

    fleet: Fleet
    router: Router


async def _finish(runtime: Runtime, delivery_id: str, status: str, outcome: dict[str, Any]) -> None:
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """UPDATE review_loop_deliveries
                  SET status = %s, outcome = %s::jsonb, dispatched_at = now()
                WHERE id = %s""",
            (status, json.dumps(outcome), delivery_id),
        )


async def _record(runtime: Runtime, delivery_id: str, outcome: dict[str, Any]) -> None:
    """Note the outcome of an attempt that will be retried (the status stays queued)."""
    async with runtime.pool.connection() as conn:
        await conn.execute(
            "UPDATE review_loop_deliveries SET outcome = %s::jsonb WHERE id = %s",
            (json.dumps(outcome), delivery_id),
        )


async def ignored_sender(runtime: Runtime, envelope: Envelope) -> str | None:
    """Why the sender's events are ignored, or None to act on them."""
    sender = envelope.sender
    if sender is None or sender.type != "Bot":
        return None
    if sender.login in runtime.settings.allowed_bots:
        return None
    if runtime.settings.app_id is None and not runtime.settings.app_slug:
        return f"event sent by bot {sender.login}"
    identity = await runtime.github.identity()
    if sender.login == identity.bot_login:
        return "event sent by this App's own bot account"
    return f"event sent by bot {sender.login} (not in REVIEW_LOOP_ALLOWED_BOTS)"


class HandlerFailed(Exception):
    """A handler raised; the dispatch job is retried."""


async def dispatch_delivery(dispatcher: Dispatcher, delivery_id: str) -> None:
    """Run every handler registered for a stored delivery (the job's body)."""
    await dispatch(dispatcher, delivery_id, final_attempt=current_attempt().final)


DISPATCH_DELIVERY = Job("dispatch_delivery", dispatch_delivery, retry=DISPATCH_RETRY)


async def dispatch(dispatcher: Dispatcher, delivery_id: str, *, final_attempt: bool = True) -> None:
    runtime = dispatcher.fleet.runtime
    with delivery_context(delivery_id):
        async with runtime.pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE review_loop_deliveries SET attempts = attempts + 1
                    WHERE id = %s
                   RETURNING event, action, payload, status""",
                (delivery_id,),
            )
            row = await cur.fetchone()
        if row is None:
            log.error("delivery %s is not stored; nothing to dispatch", delivery_id)
            return
        if row["status"] != "queued":
            log.info("delivery already dispatched (%s); nothing to do", row["status"])
            return
        event, action, payload = row["event"], row["action"], row["payload"]
        try:
            envelope = Envelope.model_validate(payload)
        except ValidationError as exc:
            log.warning("%s payload lacks fields the bot reads: %s", event, exc)
            await _finish(runtime, delivery_id, "failed", {"error": f"unreadable payload: {exc}"})
            return
        reason = await ignored_sender(runtime, envelope)
        if reason:
            log.info("ignored: %s", reason)
            await _finish(runtime, delivery_id, "ignored", {"reason": reason})
            return
        handlers = dispatcher.router.handlers_for(event, action)
        if not handlers:
            name = f"{event}.{action}" if action else event
            log.info("no handler for %s; ignored", name)
            await _finish(runtime, delivery_id, "ignored", {"reason": f"no handler for {name}"})
            return
        ctx = Context(
            event=event,
            action=action,
            delivery_id=delivery_id,
            payload=payload,
            envelope=envelope,
            fleet=dispatcher.fleet,
            log=DeliveryLogger(logging.getLogger("handlers"), {"event": event}),
        )
        outcome: dict[str, Any] = {}
        for handler in handlers:
            name = f"{handler.__module__}.{handler.__qualname__}"
            try:
                await handler(ctx)
            except Exception as exc:
                log.exception("handler %s failed on delivery %s", name, delivery_id)
                outcome[name] = f"error: {type(exc).__name__}: {exc}"
            else:
                outcome[name] = "ok"
        failed = [name for name, result in outcome.items() if result != "ok"]
        if failed and not final_attempt:
            await _record(runtime, delivery_id, outcome)
            raise HandlerFailed(f"{', '.join(failed)} failed; the delivery will be retried")
        await _finish(runtime, delivery_id, "failed" if failed else "done", outcome)
