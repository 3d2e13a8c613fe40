"""What the bot has been doing: recent deliveries and outcomes, jobs by state, leases."""

from typing import Any

from bot.engine.database import Pool


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
    for row in (*deliveries, *leases):
        for key, value in list(row.items()):
            if hasattr(value, "isoformat"):
                row[key] = value.isoformat()
    return {"deliveries": deliveries, "jobs": jobs, "leases": leases}
