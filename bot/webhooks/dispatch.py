"""Dispatch a stored delivery to every handler registered for its event and action.

One failing handler is logged with its name and the delivery id and never stops the others;
the outcome of each is recorded on the delivery. A delivery with a failed handler is retried
(every handler again: they are idempotent) until the job's last attempt, so a passing fault
(a GitHub 502, a database hiccup) loses nothing.

The intake queues one job per batch of deliveries it committed together: a worker claims
the batch in one statement and records the outcomes in one more, so the many deliveries no
handler wants cost a parse and a lookup each, not a job of their own.
"""

import json
import logging
from dataclasses import dataclass
from typing import Any

from procrastinate import RetryStrategy
from pydantic import ValidationError

from bot.engine.database import autocommit, held_autocommit
from bot.engine.queue import Job, current_attempt
from bot.logs import delivery_context
from bot.loop.fleet import Fleet
from bot.runtime import Runtime
from bot.webhooks.context import Context, DeliveryLogger
from bot.webhooks.events import Envelope
from bot.webhooks.payload import InvalidPayload, parse_payload, unpack_body
from bot.webhooks.routing import Router

log = logging.getLogger(__name__)

DISPATCH_RETRY = RetryStrategy(max_attempts=5, exponential_wait=2)


@dataclass(frozen=True)
class Dispatcher:
    """What dispatching needs: the worker's fleet (handlers get it in their Context) and the
    enabled handlers."""

    fleet: Fleet
    router: Router


def _outcome_json(outcome: dict[str, Any]) -> str:
    """The outcome as jsonb accepts it: handler errors may quote payload text, and jsonb
    refuses NUL characters and lone surrogates, which valid JSON can carry."""

    def safe(text: str) -> str:
        return text.replace("\x00", "\\0").encode("utf-8", "backslashreplace").decode("utf-8")

    return json.dumps(
        {safe(k): safe(v) if isinstance(v, str) else v for k, v in outcome.items()},
        ensure_ascii=False,
    )


async def _claim(runtime: Runtime, delivery_ids: list[str]) -> dict[str, dict[str, Any]]:
    """Count an attempt on each stored delivery of `delivery_ids`; their rows by id."""
    async with autocommit(runtime.pool) as conn:
        cur = await conn.execute(
            """UPDATE review_loop_deliveries SET attempts = attempts + 1
                WHERE id = ANY(%s)
               RETURNING id, event, body, status""",
            (delivery_ids,),
        )
        return {row["id"]: row for row in await cur.fetchall()}


Outcome = tuple[str, str, dict[str, Any]]  # delivery id, status, what each handler did


async def _write_outcomes(runtime: Runtime, outcomes: list[Outcome]) -> None:
    """Record (id, status, outcome) of each dispatched delivery in one statement; a delivery
    left `queued` (its failed handlers are retried) keeps no dispatch time."""
    if not outcomes:
        return
    async with autocommit(runtime.pool) as conn:
        await conn.execute(
            """UPDATE review_loop_deliveries d
                  SET status = u.status, outcome = u.outcome::jsonb,
                      dispatched_at = CASE WHEN u.status = 'queued' THEN d.dispatched_at
                                           ELSE now() END
                 FROM unnest(%s::text[], %s::text[], %s::text[]) AS u(id, status, outcome)
                WHERE d.id = u.id""",
            (
                [o[0] for o in outcomes],
                [o[1] for o in outcomes],
                [_outcome_json(o[2]) for o in outcomes],
            ),
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


async def dispatch_deliveries(dispatcher: Dispatcher, delivery_ids: list[str]) -> None:
    """Run every handler registered for each stored delivery of a batch (the job's body).
    The intake queues one such job per batch it commits; a retry skips the deliveries
    already dispatched."""
    final = current_attempt().final
    failed = await dispatch_many(dispatcher, delivery_ids, final_attempt=final)
    if failed:
        raise HandlerFailed(f"deliveries {', '.join(failed)} will be retried")


async def dispatch_delivery(dispatcher: Dispatcher, delivery_id: str) -> None:
    """The job of one delivery, as queued before the intake batched them."""
    await dispatch_deliveries(dispatcher, [delivery_id])


DISPATCH_DELIVERIES = Job("dispatch_deliveries", dispatch_deliveries, retry=DISPATCH_RETRY)
DISPATCH_DELIVERY = Job("dispatch_delivery", dispatch_delivery, retry=DISPATCH_RETRY)


async def dispatch(dispatcher: Dispatcher, delivery_id: str, *, final_attempt: bool = True) -> None:
    """Dispatch one stored delivery; HandlerFailed if a handler failed and it is retried."""
    if await dispatch_many(dispatcher, [delivery_id], final_attempt=final_attempt):
        raise HandlerFailed(f"delivery {delivery_id} will be retried")


async def dispatch_many(
    dispatcher: Dispatcher, delivery_ids: list[str], *, final_attempt: bool
) -> list[str]:
    """Dispatch each stored, not yet dispatched delivery of `delivery_ids`, in order, and
    record every outcome; returns the ids left queued for a retry."""
    runtime = dispatcher.fleet.runtime
    async with held_autocommit(runtime.pool):
        return await _dispatch_held(dispatcher, delivery_ids, final_attempt)


async def _dispatch_held(
    dispatcher: Dispatcher, delivery_ids: list[str], final_attempt: bool
) -> list[str]:
    runtime = dispatcher.fleet.runtime
    rows = await _claim(runtime, delivery_ids)
    outcomes: list[Outcome] = []
    try:
        for delivery_id in delivery_ids:
            with delivery_context(delivery_id):
                row = rows.get(delivery_id)
                if row is None:
                    log.error("delivery %s is not stored; nothing to dispatch", delivery_id)
                elif row["status"] != "queued":
                    log.info("delivery already dispatched (%s); nothing to do", row["status"])
                else:
                    status, outcome = await _dispatch_one(
                        dispatcher, delivery_id, row, final_attempt
                    )
                    outcomes.append((delivery_id, status, outcome))
    finally:
        await _write_outcomes(runtime, outcomes)
    return [delivery_id for delivery_id, status, _ in outcomes if status == "queued"]


async def _dispatch_one(
    dispatcher: Dispatcher, delivery_id: str, row: dict[str, Any], final_attempt: bool
) -> tuple[str, dict[str, Any]]:
    """Run the handlers of one claimed delivery: its new status and outcome ("queued" when
    a handler failed and this is not the last attempt)."""
    runtime = dispatcher.fleet.runtime
    event = row["event"]
    try:
        payload = parse_payload(unpack_body(row["body"]))
        envelope = Envelope.model_validate(payload)
    except (InvalidPayload, ValidationError) as exc:
        log.warning("%s payload lacks fields the bot reads: %s", event, exc)
        return "failed", {"error": f"unreadable payload: {exc}"}
    action = payload.get("action") if isinstance(payload.get("action"), str) else None
    reason = await ignored_sender(runtime, envelope)
    if reason:
        log.info("ignored: %s", reason)
        return "ignored", {"reason": reason}
    handlers = dispatcher.router.handlers_for(event, action)
    if not handlers:
        name = f"{event}.{action}" if action else event
        log.info("no handler for %s; ignored", name)
        return "ignored", {"reason": f"no handler for {name}"}
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
        log.warning("%s failed; the delivery will be retried", ", ".join(failed))
        return "queued", outcome
    return ("failed" if failed else "done"), outcome
