"""The deliveries table: a batch of deliveries and their dispatch jobs in one statement.

A delivery is stored as the signed bytes GitHub sent (see `bot/webhooks/payload.py`), with
a few fields copied out for people (`review-loop status`, /metrics). One INSERT stores the
new ones (a delivery id seen before is skipped: redelivery keeps the id) and, in the same
statement, queues one dispatch job for the batch (`dispatch_deliveries`, its ids in
`delivery_ids`) through procrastinate's own `procrastinate_defer_jobs_v1` (what
`defer_async` runs): both are committed together or not at all.

A delivery the intake found no handler wants (`Delivery.ignored`, from
`Router.ignored`) is stored as dispatch would have recorded it, `ignored` with the reason
and a dispatch time, without its body (nothing reads it; migration 19), and is left out of
the job: a batch of such deliveries queues none.
"""

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson
from procrastinate.jobs import DEFAULT_QUEUE

from bot.engine.database import Conn, Pool
from bot.engine.group_commit import GroupCommit
from bot.engine.retention import BATCH, delete_in_batches
from bot.webhooks.dispatch import DISPATCH_DELIVERIES
from bot.webhooks.payload import pack_body

BIGINT = range(-(2**63), 2**63)
SHOWN_CHARS = 200  # of the copied-out fields; they are for people, the body is the record

STORE_AND_QUEUE = """
WITH incoming AS (
    SELECT *
      FROM ROWS FROM (
               json_to_recordset(%(fields)s::json)
                   AS (id text, event text, action text, installation_id bigint,
                       repository text, sender text, ignored text),
               unnest(%(bodies)b::bytea[]))
           AS t(id, event, action, installation_id, repository, sender, ignored, body)
), stored AS (
    INSERT INTO review_loop_deliveries
           (id, event, action, installation_id, repository, sender, body,
            status, outcome, dispatched_at)
    SELECT id, event, action, installation_id, repository, sender, body,
           CASE WHEN ignored IS NULL THEN 'queued' ELSE 'ignored' END,
           CASE WHEN ignored IS NULL THEN NULL ELSE jsonb_build_object('reason', ignored) END,
           CASE WHEN ignored IS NULL THEN NULL ELSE now() END
      FROM incoming
        ON CONFLICT (id) DO NOTHING
    RETURNING id, status
), queued AS (
    SELECT procrastinate_defer_jobs_v1(ARRAY(
               SELECT ROW(%(queue)s, %(task)s, %(priority)s, NULL, NULL,
                          jsonb_build_object('delivery_ids', ids),
                          NULL)::procrastinate_job_to_defer_v1
                 FROM (SELECT jsonb_agg(id) AS ids FROM stored
                        WHERE status = 'queued') AS batch
                WHERE ids IS NOT NULL)) AS job_ids
)
SELECT ARRAY(SELECT id FROM stored) AS stored,
       ARRAY(SELECT id FROM stored WHERE status = 'queued') AS queued,
       (SELECT coalesce(cardinality(job_ids), 0) FROM queued) AS jobs
"""


# A dispatch is a parse and a lookup per delivery: it goes before the jobs it queues (a
# first reconcile has priority 1), so new PRs are in the queue at once, not after the
# reconciles that hold every worker.
DISPATCH_PRIORITY = 2


def _shown(value: object) -> str | None:
    """A payload string fit for a text column: PostgreSQL's text refuses NUL characters."""
    if not isinstance(value, str):
        return None
    return value.replace("\x00", "")[:SHOWN_CHARS]


def _field(payload: Mapping[str, Any], key: str, name: str) -> object:
    inner = payload.get(key)
    return inner.get(name) if isinstance(inner, Mapping) else None


@dataclass(frozen=True)
class Delivery:
    """A verified delivery about to be stored: its id, event and body (none for one stored
    ignored: nothing reads it), and what is copied out of the payload for people."""

    id: str
    event: str
    stored_body: bytes | None  # `pack_body` of the signed body; None when ignored
    action: str | None = None
    installation_id: int | None = None
    repository: str | None = None
    sender: str | None = None
    ignored: str | None = None  # why no handler wants it: stored as ignored, with no job

    @classmethod
    def of(
        cls,
        delivery_id: str,
        event: str,
        body: bytes,
        payload: Mapping[str, Any],
        *,
        ignored: str | None = None,
    ) -> "Delivery":
        installation = _field(payload, "installation", "id")
        in_range = type(installation) is int and installation in BIGINT
        return cls(
            id=delivery_id,
            event=event,
            stored_body=pack_body(body) if ignored is None else None,
            action=_shown(payload.get("action")),
            installation_id=installation if in_range else None,  # type: ignore[arg-type]
            repository=_shown(_field(payload, "repository", "full_name")),
            sender=_shown(_field(payload, "sender", "login")),
            ignored=ignored,
        )


async def store_deliveries(conn: Conn, deliveries: Sequence[Delivery]) -> list[bool]:
    """Store each delivery, and one dispatch job for those of them not `ignored`; per
    delivery, True if it was new (stored now), False if its id was stored before (or
    earlier in this batch)."""
    first: dict[str, Delivery] = {}
    for d in deliveries:
        first.setdefault(d.id, d)
    batch = list(first.values())
    fields = [
        {
            "id": d.id,
            "event": d.event,
            "action": d.action,
            "installation_id": d.installation_id,
            "repository": d.repository,
            "sender": d.sender,
            "ignored": d.ignored,
        }
        for d in batch
    ]
    cur = await conn.execute(
        STORE_AND_QUEUE,
        {
            "fields": orjson.dumps(fields).decode(),
            "bodies": [d.stored_body for d in batch],
            "queue": DEFAULT_QUEUE,
            "task": DISPATCH_DELIVERIES.name,
            "priority": DISPATCH_PRIORITY,
        },
    )
    row = await cur.fetchone()
    assert row is not None
    stored = set(row["stored"])
    if row["jobs"] != (1 if row["queued"] else 0):
        raise RuntimeError(
            f"stored {len(row['queued'])} deliveries to dispatch but queued {row['jobs']} jobs"
        )
    answers = []
    for d in deliveries:
        answers.append(d.id in stored)
        stored.discard(d.id)  # a second copy in the same batch is a duplicate
    return answers


class DeliveryWriter:
    """Stores deliveries with group commit: concurrent requests share one transaction."""

    def __init__(self, pool: Pool, *, max_batch: int = 256, max_in_flight: int = 1) -> None:
        self._commit: GroupCommit[Delivery, bool] = GroupCommit(
            pool, store_deliveries, max_batch=max_batch, max_in_flight=max_in_flight
        )

    async def store(self, delivery: Delivery) -> bool:
        """Store `delivery` and queue its dispatch; True once committed, False if its id was
        stored before. Raises the database's error if its batch could not be committed."""
        return await self._commit.submit(delivery)


# Oldest first, through the index on `received_at`; a delivery still to dispatch stays.
_DELETE_OLD = """
DELETE FROM review_loop_deliveries
 WHERE id IN (
       SELECT id FROM review_loop_deliveries
        WHERE status <> 'queued'
          AND received_at < now() - make_interval(secs => %(older_than_s)s)
        ORDER BY received_at
        LIMIT %(batch)s
          FOR UPDATE SKIP LOCKED)
"""


async def delete_old_deliveries(pool: Pool, older_than_s: float, *, batch: int = BATCH) -> int:
    """Delete the deliveries received more than `older_than_s` ago and dispatched (done,
    ignored or failed for good); how many. A redelivery of one of them would be taken as a
    new delivery: keep them for longer than GitHub redelivers (`MIN_RETENTION_DAYS`)."""
    params = {"older_than_s": older_than_s, "batch": batch}
    return await delete_in_batches(pool, _DELETE_OLD, params, batch)
