"""GET /metrics: what the bot holds, in Prometheus' text format, read from the database.

Every figure is an aggregate of the shared database, so any web process answers for the whole
fleet; nothing names a repository or a person. Scrape one process, not all of them.
"""

from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from bot.engine.database import Pool

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


@dataclass(frozen=True)
class Metric:
    name: str
    help: str
    samples: Sequence[tuple[dict[str, str], float]]
    type: str = "gauge"


def render(metrics: Iterable[Metric]) -> str:
    """Prometheus' text exposition format (version 0.0.4)."""
    lines: list[str] = []
    for m in metrics:
        lines += [f"# HELP {m.name} {m.help}", f"# TYPE {m.name} {m.type}"]
        for labels, value in m.samples:
            text = ",".join(f'{k}="{_escape(v)}"' for k, v in sorted(labels.items()))
            lines.append(f"{m.name}{{{text}}} {value:g}" if text else f"{m.name} {value:g}")
    return "\n".join(lines) + "\n"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")


QUERIES: tuple[tuple[str, str, str, tuple[str, ...]], ...] = (
    (
        "review_loop_deliveries",
        "Webhook deliveries stored, by dispatch status.",
        "SELECT status, count(*) AS value FROM review_loop_deliveries GROUP BY status",
        ("status",),
    ),
    (
        "review_loop_jobs",
        "Jobs in the queue, by task and status.",
        """SELECT regexp_replace(task_name, '^.*[.:]', '') AS task, status::text AS status,
                  count(*) AS value
             FROM procrastinate_jobs GROUP BY 1, 2""",
        ("task", "status"),
    ),
    (
        "review_loop_oldest_waiting_job_seconds",
        "Age of the oldest job due to run and not yet started (0: none).",
        """SELECT coalesce(extract(epoch FROM now() - min(coalesce(scheduled_at, e.at))), 0)
                  AS value
             FROM procrastinate_jobs j
             LEFT JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events
                                 WHERE job_id = j.id AND type = 'deferred') e ON true
            WHERE j.status = 'todo' AND (scheduled_at IS NULL OR scheduled_at <= now())""",
        (),
    ),
    (
        "review_loop_pull_requests",
        "Pull requests the loop looks after, by loop state.",
        "SELECT state, count(*) AS value FROM review_loop_prs GROUP BY state",
        ("state",),
    ),
    (
        "review_loop_fix_tasks",
        "Fix tasks, by status.",
        "SELECT status, count(*) AS value FROM review_loop_tasks GROUP BY status",
        ("status",),
    ),
    (
        "review_loop_live_leases",
        "Leases held now (a PR's reconcile or an issue's fix in progress).",
        "SELECT count(*) AS value FROM review_loop_leases WHERE expires_at > now()",
        (),
    ),
)


async def collect(pool: Pool) -> list[Metric]:
    metrics = []
    async with pool.connection() as conn:
        for name, help_text, sql, labels in QUERIES:
            cur = await conn.execute(sql)
            rows = await cur.fetchall()
            samples = [({k: str(r[k]) for k in labels}, float(r["value"])) for r in rows]
            metrics.append(Metric(name, help_text, samples))
    return metrics
