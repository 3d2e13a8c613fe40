"""GET /metrics in Prometheus' text format, through prometheus-client: the fleet's counts,
read from the shared database at scrape time, then this process's histograms.

The counts (`review_loop_deliveries`, `_jobs`, `_pull_requests`, ...) are aggregates of the
shared database, the same whichever process answers; the histograms (`bot/meters.py`) are
this process's own. docs/operations.md says which is which; nothing names a repository or a
person.
"""

import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from prometheus_client import CollectorRegistry, Histogram, generate_latest
from prometheus_client.core import GaugeMetricFamily, Metric
from prometheus_client.exposition import CONTENT_TYPE_PLAIN_0_0_4
from prometheus_client.registry import Collector
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from bot import meters
from bot.engine.database import Pool

CONTENT_TYPE = CONTENT_TYPE_PLAIN_0_0_4


@dataclass(frozen=True)
class Count:
    """One gauge of the shared database: its name, help, query and label columns (the query
    returns those columns and `value`)."""

    name: str
    help: str
    sql: str
    labels: tuple[str, ...] = ()


COUNTS: tuple[Count, ...] = (
    Count(
        "review_loop_deliveries",
        "Webhook deliveries stored, by dispatch status.",
        "SELECT status, count(*) AS value FROM review_loop_deliveries GROUP BY status",
        ("status",),
    ),
    Count(
        "review_loop_jobs",
        "Jobs in the queue, by task and status.",
        """SELECT regexp_replace(task_name, '^.*[.:]', '') AS task, status::text AS status,
                  count(*) AS value
             FROM procrastinate_jobs GROUP BY 1, 2""",
        ("task", "status"),
    ),
    Count(
        "review_loop_oldest_waiting_job_seconds",
        "Age of the oldest job due to run and not yet started (0: none).",
        """SELECT coalesce(extract(epoch FROM now() - min(coalesce(scheduled_at, e.at))), 0)
                  AS value
             FROM procrastinate_jobs j
             LEFT JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events
                                 WHERE job_id = j.id AND type = 'deferred') e ON true
            WHERE j.status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())""",
    ),
    Count(
        "review_loop_pull_requests",
        "Pull requests the loop looks after, by loop state.",
        "SELECT state, count(*) AS value FROM review_loop_prs GROUP BY state",
        ("state",),
    ),
    Count(
        "review_loop_fix_tasks",
        "Fix tasks, by status.",
        "SELECT status, count(*) AS value FROM review_loop_tasks GROUP BY status",
        ("status",),
    ),
    Count(
        "review_loop_model_cost_usd",
        "What the model calls recorded in the ledger cost, in US dollars (calls to models "
        "without a price count 0), by agent and what they were for (review, fix, verify).",
        """SELECT agent, purpose, coalesce(sum(cost_usd), 0) AS value
             FROM review_loop_model_calls GROUP BY 1, 2""",
        ("agent", "purpose"),
    ),
    Count(
        "review_loop_model_tokens",
        "Tokens of the model calls in the ledger, by agent, purpose and direction (in, out).",
        """SELECT agent, purpose, 'in' AS direction, coalesce(sum(tokens_in), 0) AS value
             FROM review_loop_model_calls GROUP BY 1, 2
           UNION ALL
           SELECT agent, purpose, 'out', coalesce(sum(tokens_out), 0)
             FROM review_loop_model_calls GROUP BY 1, 2""",
        ("agent", "purpose", "direction"),
    ),
    Count(
        "review_loop_model_calls",
        "Model calls in the ledger, by agent, purpose and whether the catalog prices them.",
        """SELECT agent, purpose, (cost_usd IS NOT NULL)::text AS priced, count(*) AS value
             FROM review_loop_model_calls GROUP BY 1, 2, 3""",
        ("agent", "purpose", "priced"),
    ),
    Count(
        "review_loop_live_leases",
        "Leases held now (a PR's reconcile or an issue's fix in progress).",
        "SELECT count(*) AS value FROM review_loop_leases WHERE expires_at > now()",
    ),
)

Rows = Sequence[tuple[Count, Sequence[dict[str, object]]]]


async def read_counts(pool: Pool) -> Rows:
    """Every count's rows, read now (one connection, one query each)."""
    out = []
    async with pool.connection() as conn:
        for count in COUNTS:
            cur = await conn.execute(count.sql)
            out.append((count, await cur.fetchall()))
    return out


class FleetCollector(Collector):
    """The shared database's counts as gauges. prometheus-client collects synchronously and
    the pool is async, so the scrape reads the rows first and this collector renders them."""

    def __init__(self, rows: Rows) -> None:
        self.rows = rows

    def collect(self) -> Iterable[Metric]:
        for count, rows in self.rows:
            gauge = GaugeMetricFamily(count.name, count.help, labels=count.labels)
            for row in rows:
                gauge.add_metric([str(row[k]) for k in count.labels], float(str(row["value"])))
            yield gauge


class _Forward(Collector):
    """Another registry's metrics, collected through this one."""

    def __init__(self, registry: CollectorRegistry) -> None:
        self.registry = registry

    def collect(self) -> Iterable[Metric]:
        return self.registry.collect()


async def exposition(pool: Pool) -> bytes:
    """The page: the fleet's counts read now, then this process's histograms."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(FleetCollector(await read_counts(pool)))
    registry.register(_Forward(meters.REGISTRY))
    return generate_latest(registry)


class TimedIntake:
    """The intake, each request observed in `review_loop_intake_seconds` by status code.

    The histogram's children are looked up once per status code, not per request (a
    `labels()` call costs as much as the intake's HMAC)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._by_status: dict[int, Histogram] = {}
        self._error = meters.INTAKE_SECONDS.labels(status="error")

    def _child(self, status: int) -> Histogram:
        child = self._by_status.get(status)
        if child is None:
            child = self._by_status[status] = meters.INTAKE_SECONDS.labels(status=str(status))
        return child

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        start = time.perf_counter()
        observed = self._error

        async def sending(message: Message) -> None:
            nonlocal observed
            if message["type"] == "http.response.start":
                observed = self._child(message["status"])
            await send(message)

        try:
            await self.app(scope, receive, sending)
        finally:
            observed.observe(time.perf_counter() - start)
