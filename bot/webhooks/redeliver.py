"""Missed deliveries: GitHub does not redeliver a failed webhook by itself.

On start and periodically, the bot lists the App's recent deliveries, finds those that never
succeeded and that it has not stored, and asks GitHub to deliver them again. Redelivery keeps
the X-GitHub-Delivery id, so the intake's dedupe makes this safe to repeat.

A delivery attempted in the last `grace` is left to the next pass: it may still be arriving
(GitHub waits 10 s for an answer, docs.github.com "Best practices for using webhooks":
"respond within 10 seconds"; the intake stores it before answering), so the log may not show
its success yet and the deliveries table may not hold it yet. Asking for it again then was
the start-up sweep's race with the first webhooks: a redelivery of a delivery being handled.
"""

import logging
import os
import re
import socket
from datetime import UTC, datetime, timedelta

from bot.engine.database import Pool
from bot.runtime import Runtime

log = logging.getLogger(__name__)

# One redelivery pass at a time across workers. A lease rather than an advisory lock: a lock
# lives on a connection, and a pass must not hold a pooled connection while it waits on GitHub.
LEASE_KEY = "redeliver"
LEASE_TTL_S = 60.0
_CURSOR = re.compile(r"[?&]cursor=([^&>]+)[^>]*>;\s*rel=\"next\"")
MAX_PAGES = 10
MAX_ATTEMPTS = 3
LOOKBACK = timedelta(hours=6)


async def redeliver_missed(
    runtime: Runtime, *, lookback: timedelta = LOOKBACK, grace: timedelta | None = None
) -> list[str]:
    """Ask GitHub to redeliver every recent delivery that failed and was never stored, and
    whose latest attempt is older than `grace` (default: the `redeliver_grace_s` setting);
    [] when another worker's pass is running."""
    if grace is None:
        grace = timedelta(seconds=runtime.settings.redeliver_grace_s)
    holder = f"{socket.gethostname()}:{os.getpid()}"
    async with runtime.leases.hold(LEASE_KEY, holder, LEASE_TTL_S) as lease:
        if lease is None:
            return []
        now = datetime.now(UTC)
        since, settled = now - lookback, now - grace
        async with runtime.github.app_client() as gh:
            attempts: dict[str, list[tuple[int, bool, datetime]]] = {}
            cursor: str | None = None
            for _ in range(MAX_PAGES):
                resp = await gh.rest.apps.async_list_webhook_deliveries(
                    per_page=100, **({"cursor": cursor} if cursor else {})
                )
                items = resp.parsed_data
                for d in items:
                    ok = 200 <= d.status_code < 300
                    attempts.setdefault(d.guid, []).append((d.id, ok, d.delivered_at))
                match = _CURSOR.search(resp.headers.get("link", ""))
                if not items or match is None or min(d.delivered_at for d in items) < since:
                    break
                cursor = match.group(1)
            missed = {
                guid: max(tries)[0]
                for guid, tries in attempts.items()
                # A delivery refused three times (e.g. a wrong secret) is left to a person.
                if not any(ok for _, ok, _ in tries)
                and len(tries) < MAX_ATTEMPTS
                and since <= max(t[2] for t in tries) < settled
            }
            if not missed:
                return []
            stored = await _stored(runtime.pool, list(missed))
            again = []
            for guid, delivery_id in sorted(missed.items()):
                if guid in stored:
                    continue
                # Fencing: a pass that stalled past its lease stops before asking again.
                await runtime.leases.check(lease)
                await gh.rest.apps.async_redeliver_webhook_delivery(delivery_id)
                again.append(guid)
    if again:
        log.warning("asked GitHub to redeliver %d missed deliveries", len(again))
    return again


async def _stored(pool: Pool, guids: list[str]) -> set[str]:
    """The deliveries among `guids` that reached the bot."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            "SELECT id FROM review_loop_deliveries WHERE id = ANY(%s)", (guids,)
        )
        return {r["id"] for r in await cur.fetchall()}
