"""The creates of the bot's own GitHub objects it began, so a create needs a lookup first
only when one may have happened.

Only this App makes its check runs (only GitHub Apps can create check runs: "To create a
check run, you must use a GitHub App", https://docs.github.com/en/rest/checks/runs) and the
comments carrying its markers from its login (`RepoAPI` looks those up by app id and bot
login), so such an object exists only if the bot once sent its POST. Before it does, it
commits an intent for the object's key (rows of `review_loop_github_intents`, migration 14);
once GitHub answers, the intent gets the object's id. So, for a key:

- no intent: the bot never tried to make it since intents were first recorded (migration
  14's `applied_at`, the horizon). When the object's subject (the pull request it is on) was
  made on GitHub after the horizon, nothing older can have made it: it is created without a
  lookup. A subject older than the horizon is looked up as before: a version without intents
  may have made the object.
- an intent with an id: the object is that one (edited, not looked up).
- an intent without an id: a create whose answer was lost, or a crash between its POST and
  the record: looked up as before, so it is never made twice.

Retention: intents are never dropped, unlike the cache's rows (`bot.github.memo`), which
expire: an absent intent must mean "never attempted", not "forgotten". A row is one key and
an id (about 150 bytes): one per head and check name, and one per marked comment of the
bot's. Dropping old rows would need the horizon moved past them, so that their subjects are
looked up again.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from bot.engine.database import Pool

SINCE_MIGRATION = 14  # the migration that made the table: intents are recorded from then on


@dataclass(frozen=True)
class Claim:
    """What an intent says of an object: whether it was recorded by this claim (no create
    was ever begun before), and the object's id when a create was answered."""

    fresh: bool
    object_id: int | None


class Intents:
    """The intents of one database, shared by every process on it."""

    def __init__(self, pool: Pool) -> None:
        self._pool = pool
        self._horizon: datetime | None = None

    async def horizon(self) -> datetime:
        """Since when every create of the bot's own objects has had an intent."""
        if self._horizon is None:
            async with self._pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT applied_at FROM review_loop_migrations WHERE version = %s",
                    (SINCE_MIGRATION,),
                )
                row = await cur.fetchone()
            if row is None:
                raise RuntimeError(f"migration {SINCE_MIGRATION} is not applied")
            self._horizon = row["applied_at"]
        return self._horizon

    async def claim(self, key: str) -> Claim:
        """Record the intent to make the object `key` (committed when this returns, before
        any POST), or what an earlier one says. Of processes claiming a new key at once, one
        gets it fresh: the others look the object up."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """INSERT INTO review_loop_github_intents (key) VALUES (%s)
                    ON CONFLICT (key) DO NOTHING RETURNING key""",
                (key,),
            )
            if await cur.fetchone() is not None:
                return Claim(fresh=True, object_id=None)
            cur = await conn.execute(
                "SELECT object_id FROM review_loop_github_intents WHERE key = %s", (key,)
            )
            row = await cur.fetchone()
        object_id = None if row is None else row["object_id"]
        return Claim(fresh=False, object_id=None if object_id is None else int(object_id))

    async def made(self, key: str, object_id: int) -> None:
        """The object `key` is `object_id` (made, or found by a lookup)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_github_intents (key, object_id) VALUES (%s, %s)
                    ON CONFLICT (key) DO UPDATE SET object_id = EXCLUDED.object_id""",
                (key, object_id),
            )
