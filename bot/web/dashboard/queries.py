"""What the dashboard shows, read from the loop's tables and procrastinate's, one page a call.
Rows are plain dicts; the templates escape every value."""

from typing import Any

from bot.engine.database import Pool
from bot.loop.store import ACTIVE_TASK_STATES

Row = dict[str, Any]

# Finding issues still to be dealt with (the summary's states: open, fixed, waived, needs-human).
OPEN_FINDING_STATES = ("open", "needs-human")


async def fleet(pool: Pool) -> dict[str, Any]:
    """Every PR in the loop with its round, open findings and tasks, and the states' counts."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT p.repo, p.number, p.state, p.reason, p.round, p.updated_at,
                      (SELECT count(*) FROM jsonb_array_elements(
                              coalesce(p.summary -> 'issues', '[]'::jsonb)) AS i
                        WHERE i ->> 'state' = ANY(%(open)s)) AS open_findings,
                      (SELECT count(*) FROM review_loop_tasks t
                        WHERE t.repo = p.repo AND t.pr_number = p.number
                          AND t.status = 'running') AS running_tasks,
                      (SELECT count(*) FROM review_loop_tasks t
                        WHERE t.repo = p.repo AND t.pr_number = p.number
                          AND t.status = ANY(%(active)s)) AS active_tasks
                 FROM review_loop_prs p
                ORDER BY p.updated_at DESC, p.repo, p.number""",
            {"open": list(OPEN_FINDING_STATES), "active": list(ACTIVE_TASK_STATES)},
        )
        prs = await cur.fetchall()
    states: dict[str, int] = {}
    for pr in prs:
        states[pr["state"]] = states.get(pr["state"], 0) + 1
    return {"prs": prs, "states": dict(sorted(states.items()))}


async def pull_request(pool: Pool, repo: str, number: int) -> dict[str, Any] | None:
    """One PR's timeline: its row, findings, fan-out decisions and tasks, round by round."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT repo, number, state, reason, round, audited_sha, generation, handled,
                      stopped, summary, updated_at
                 FROM review_loop_prs WHERE repo = %s AND number = %s""",
            (repo, number),
        )
        pr = await cur.fetchone()
        if pr is None:
            return None
        cur = await conn.execute(
            """SELECT round, agent, n, t, s, width, explain, created_at
                 FROM review_loop_plans WHERE repo = %s AND pr_number = %s
                ORDER BY round, agent""",
            (repo, number),
        )
        plans = await cur.fetchall()
        cur = await conn.execute(
            """SELECT id, round, agent, issue_number, batch, fixed, failed, status, fix_pr,
                      attempts, error, spawn_s, run_s, warm, branch, created_at, updated_at
                 FROM review_loop_tasks WHERE repo = %s AND pr_number = %s
                ORDER BY round, id""",
            (repo, number),
        )
        tasks = await cur.fetchall()
    rounds: dict[int, dict[str, list[Row]]] = {}
    for plan in plans:
        rounds.setdefault(plan["round"], {"plans": [], "tasks": []})["plans"].append(plan)
    for task in tasks:
        task["issues"] = list(task["batch"]) or [task["issue_number"]]
        rounds.setdefault(task["round"], {"plans": [], "tasks": []})["tasks"].append(task)
    findings = list(pr["summary"].get("issues", []))
    return {
        "pr": pr,
        "findings": findings,
        "open_findings": sum(1 for f in findings if f.get("state") in OPEN_FINDING_STATES),
        "rounds": sorted(rounds.items()),
        "tasks": tasks,
        "fix_prs": [t for t in tasks if t["fix_pr"] is not None],
    }


async def queue(pool: Pool, *, alive_within_s: float) -> dict[str, Any]:
    """Jobs by task and state, the oldest jobs waiting, workers, leases."""
    async with pool.connection() as conn:
        cur = await conn.execute(
            """SELECT regexp_replace(task_name, '^.*[.:]', '') AS task, status::text AS status,
                      count(*) AS n
                 FROM procrastinate_jobs GROUP BY 1, 2 ORDER BY 1, 2"""
        )
        jobs = await cur.fetchall()
        cur = await conn.execute(
            """SELECT j.id, regexp_replace(j.task_name, '^.*[.:]', '') AS task, j.attempts,
                      coalesce(j.scheduled_at, e.at) AS due,
                      extract(epoch FROM now() - coalesce(j.scheduled_at, e.at)) AS waiting_s
                 FROM procrastinate_jobs j
                 LEFT JOIN LATERAL (SELECT min(at) AS at FROM procrastinate_events
                                     WHERE job_id = j.id AND type = 'deferred') e ON true
                WHERE j.status = 'todo' AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
                ORDER BY due NULLS LAST, j.id LIMIT 10"""
        )
        waiting = await cur.fetchall()
        cur = await conn.execute(
            """SELECT id, last_heartbeat,
                      extract(epoch FROM now() - last_heartbeat) AS silent_s,
                      last_heartbeat > now() - make_interval(secs => %s) AS alive
                 FROM procrastinate_workers ORDER BY id""",
            (alive_within_s,),
        )
        workers = await cur.fetchall()
        cur = await conn.execute(
            """SELECT key, holder, token, expires_at FROM review_loop_leases
                WHERE expires_at > now() ORDER BY key"""
        )
        leases = await cur.fetchall()
    states: dict[str, int] = {}
    for row in jobs:
        states[row["status"]] = states.get(row["status"], 0) + row["n"]
    return {
        "jobs": jobs,
        "states": dict(sorted(states.items())),
        "waiting": waiting,
        "workers": workers,
        "alive": sum(1 for w in workers if w["alive"]),
        "leases": leases,
    }
