"""What the bot read from GitHub and may use again without asking, shared by every process.

Rows of `review_loop_github_cache` (migration 11), each a key and a JSON value, younger than
`ttl_s`, or kept until forgotten (`durable`). `bot.loop.repo_cache` keeps a repository's
metadata and config files here, and the labels known to be on it (durably); `RepoAPI` keeps the
ids (and text digests) of the bot's own marked comments, so editing one needs no listing, and
an unchanged one no request at all.
"""

from __future__ import annotations

from typing import Any

from psycopg.types.json import Jsonb

from bot.engine.database import Pool


class Memo:
    """Keyed JSON values younger than `ttl_s` (0: nothing is kept; None: kept until
    forgotten)."""

    def __init__(self, pool: Pool, ttl_s: float | None) -> None:
        self._pool = pool
        self.ttl_s = ttl_s

    def durable(self) -> Memo:
        """A memo on the same rows whose values are kept until forgotten, whatever the TTL."""
        return Memo(self._pool, None)

    def _off(self) -> bool:
        return self.ttl_s is not None and self.ttl_s <= 0

    async def get(self, key: str) -> Any:
        """The value kept under `key`, or None when there is none (or it is too old)."""
        if self._off():
            return None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT value FROM review_loop_github_cache
                    WHERE key = %(key)s AND (%(ttl)s::float8 IS NULL
                        OR fetched_at > now() - make_interval(secs => %(ttl)s::float8))""",
                {"key": key, "ttl": self.ttl_s},
            )
            row = await cur.fetchone()
        return None if row is None else row["value"]

    async def put(self, key: str, value: Any) -> None:
        if self._off():
            return
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_github_cache (key, value) VALUES (%s, %s)
                    ON CONFLICT (key) DO UPDATE
                    SET value = EXCLUDED.value, fetched_at = now()""",
                (key, Jsonb(value)),
            )

    async def take(self, key: str) -> Any:
        """`get` and drop `key` in one step: of processes taking it at once, one gets it."""
        if self._off():
            return None
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """DELETE FROM review_loop_github_cache
                    WHERE key = %(key)s AND (%(ttl)s::float8 IS NULL
                        OR fetched_at > now() - make_interval(secs => %(ttl)s::float8))
                    RETURNING value""",
                {"key": key, "ttl": self.ttl_s},
            )
            row = await cur.fetchone()
        return None if row is None else row["value"]

    async def forget(self, *patterns: str) -> None:
        """Drop the keys matching any of the SQL LIKE `patterns`."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM review_loop_github_cache WHERE key LIKE ANY(%s)", (list(patterns),)
            )
