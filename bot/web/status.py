"""What the bot has been doing: recent deliveries and outcomes, jobs by state, leases, and
what its model calls cost (totals by agent and purpose; per installation today and this
month, the periods of the operator's caps)."""

from typing import Any

from bot.engine.database import Pool
from bot.loop.model_store import ModelStore


async def collect_status(pool: Pool, *, limit: int = 20) -> dict[str, Any]:
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, event, action, repository, status, outcome,
                      received_at, dispatched_at, attempts
                 FROM review_loop_deliveries ORDER BY received_at DESC LIMIT %s""",
            (limit,),
        )
        deliveries = await cur.fetchall()
        cur = await conn.execute(
            "SELECT status::text AS status, count(*) AS n FROM procrastinate_jobs GROUP BY 1"
        )
        jobs = {r["status"]: r["n"] for r in await cur.fetchall()}
        cur = await conn.execute(
            """SELECT key, holder, token, expires_at, expires_at > now() AS live
                 FROM review_loop_leases ORDER BY key"""
        )
        leases = await cur.fetchall()
        cur = await conn.execute(
            """SELECT installation_id,
                      coalesce(sum(cost_usd) FILTER (WHERE created_at >=
                          date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)
                          AS today_usd,
                      coalesce(sum(cost_usd), 0) AS month_usd
                 FROM review_loop_model_calls
                WHERE installation_id IS NOT NULL AND created_at >=
                      date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
                GROUP BY 1 ORDER BY 1"""
        )
        installations = await cur.fetchall()
    by_agent = await ModelStore(pool).totals()
    costs = {
        "total_usd": sum(r["cost_usd"] for r in by_agent),
        "tokens_in": sum(r["tokens_in"] for r in by_agent),
        "tokens_out": sum(r["tokens_out"] for r in by_agent),
        "unpriced_calls": sum(r["unpriced"] for r in by_agent),
        "by_agent": by_agent,
        "installations": installations,
    }
    for row in (*deliveries, *leases):
        for key, value in list(row.items()):
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    return {"deliveries": deliveries, "jobs": jobs, "leases": leases, "costs": costs}
