"""Leases with fencing tokens: exactly one holder is in charge of a key at a time.

Acquiring bumps a monotonic token. A holder renews before expiry and re-checks its token
before every side effect; once the lease has expired or moved on, the old token is refused.
"""

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from bot.engine.database import Pool

log = logging.getLogger(__name__)


class LeaseLost(Exception):
    """The lease expired or was taken over: stop before the next side effect."""


@dataclass(frozen=True)
class Lease:
    key: str
    holder: str
    token: int
    expires_at: datetime


class Leases:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def acquire(self, key: str, holder: str, ttl_s: float) -> Lease | None:
        """Take `key` if it is free or expired; None while a lease on it is live (ours too:
        holders are one per job, and a job renews rather than re-acquires)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """INSERT INTO review_loop_leases (key, holder, token, expires_at)
                   VALUES (%(key)s, %(holder)s, nextval('review_loop_lease_tokens'),
                           now() + make_interval(secs => %(ttl)s))
                   ON CONFLICT (key) DO UPDATE
                      SET holder = excluded.holder, token = excluded.token,
                          acquired_at = now(), expires_at = excluded.expires_at
                    WHERE review_loop_leases.expires_at <= now()
                   RETURNING key, holder, token, expires_at""",
                {"key": key, "holder": holder, "ttl": ttl_s},
            )
            row = await cur.fetchone()
        return None if row is None else Lease(**row)

    async def renew(self, lease: Lease, ttl_s: float) -> Lease:
        """Extend a lease that is still ours; LeaseLost otherwise."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE review_loop_leases
                      SET expires_at = now() + make_interval(secs => %(ttl)s)
                    WHERE key = %(key)s AND token = %(token)s AND expires_at > now()
                   RETURNING key, holder, token, expires_at""",
                {"key": lease.key, "token": lease.token, "ttl": ttl_s},
            )
            row = await cur.fetchone()
        if row is None:
            raise LeaseLost(f"lease {lease.key} (token {lease.token}) is no longer held")
        return Lease(**row)

    async def check(self, lease: Lease) -> None:
        """Raise LeaseLost unless `lease` is still the current, unexpired one."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT 1 FROM review_loop_leases
                    WHERE key = %s AND token = %s AND expires_at > now()""",
                (lease.key, lease.token),
            )
            if await cur.fetchone() is None:
                raise LeaseLost(f"lease {lease.key} (token {lease.token}) is no longer held")

    async def release(self, lease: Lease) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM review_loop_leases WHERE key = %s AND token = %s",
                (lease.key, lease.token),
            )

    @contextlib.asynccontextmanager
    async def hold(self, key: str, holder: str, ttl_s: float) -> AsyncIterator[Lease | None]:
        """Hold `key` for the block, renewing in the background.

        Yields None when someone else holds it. If renewal fails, the block's task is
        cancelled (a worker that cannot renew must stop its agent) and LeaseLost is raised.
        """
        lease = await self.acquire(key, holder, ttl_s)
        if lease is None:
            yield None
            return
        owner = asyncio.current_task()
        lost = asyncio.Event()

        async def keep() -> None:
            nonlocal lease
            while True:
                await asyncio.sleep(ttl_s / 3)
                try:
                    assert lease is not None
                    lease = await self.renew(lease, ttl_s)
                except Exception:
                    log.warning("lost lease %s; stopping its holder", key, exc_info=True)
                    lost.set()
                    if owner is not None:
                        owner.cancel()
                    return

        renewer = asyncio.create_task(keep(), name=f"lease-renew:{key}")
        try:
            yield lease
        except asyncio.CancelledError:
            if lost.is_set():
                if owner is not None:
                    owner.uncancel()
                raise LeaseLost(f"lease {key} was lost while held") from None
            raise
        finally:
            renewer.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await renewer
            if not lost.is_set():
                with contextlib.suppress(Exception):
                    await self.release(lease)
