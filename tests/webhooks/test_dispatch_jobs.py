"""Deliveries stored before the intake batched and compressed them still dispatch."""

import json

from bot.runtime import Runtime
from bot.webhooks.context import Context
from bot.webhooks.dispatch import DISPATCH_DELIVERY
from bot.webhooks.routing import Router
from bot.worker import drain
from tests.support import load_event


async def test_a_delivery_from_before_the_upgrade_is_dispatched(
    runtime: Runtime, router: Router
) -> None:
    """A row whose body is plain JSON (as migration 6 converts the old jsonb payloads) and
    its old one-delivery job reach the handler with the payload intact."""
    seen: list[Context] = []

    @router.register("issues", action="labeled")
    async def record(ctx: Context) -> None:
        seen.append(ctx)

    payload = load_event("issues.labeled")
    async with runtime.pool.connection() as conn:
        await conn.execute(
            "INSERT INTO review_loop_deliveries (id, event, body) VALUES ('d-old', 'issues', %s)",
            (json.dumps(payload).encode(),),
        )
        await runtime.queue.job(DISPATCH_DELIVERY, conn=conn).defer(delivery_id="d-old")
        await conn.commit()
    await drain(runtime)
    assert [(c.delivery_id, c.payload) for c in seen] == [("d-old", payload)]
