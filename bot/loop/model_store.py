"""The model reviewers' rows: the findings each reported on a pull request."""

import json
from collections.abc import Sequence

from bot.agents.models import ModelCall
from bot.audit.findings import Finding
from bot.engine.database import Pool
from bot.loop.budget import Spend

RUNS_AVERAGED = 5  # an agent's expected cost per run: the mean of its latest runs


class ModelStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def replace_findings(
        self, repo: str, pr_number: int, analyzer: str, findings: Sequence[Finding], sha: str
    ) -> None:
        """What reviewer `analyzer` reports on the PR now, in place of what it reported before."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                """DELETE FROM review_loop_model_findings
                    WHERE repo = %s AND pr_number = %s AND analyzer = %s""",
                (repo, pr_number, analyzer),
            )
            for finding in findings:
                await conn.execute(
                    """INSERT INTO review_loop_model_findings
                           (repo, pr_number, fingerprint, analyzer, finding, head_sha)
                       VALUES (%s, %s, %s, %s, %s, %s)
                       ON CONFLICT (repo, pr_number, fingerprint) DO UPDATE
                          SET analyzer = EXCLUDED.analyzer, finding = EXCLUDED.finding,
                              head_sha = EXCLUDED.head_sha, updated_at = now()""",
                    (
                        repo,
                        pr_number,
                        finding.fingerprint,
                        analyzer,
                        json.dumps(finding.to_dict()),
                        sha,
                    ),
                )

    async def findings(
        self, repo: str, pr_number: int, analyzer: str | None = None
    ) -> list[Finding]:
        """The findings stored for the PR (of one reviewer, with `analyzer`)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT finding FROM review_loop_model_findings
                    WHERE repo = %s AND pr_number = %s AND (%s::text IS NULL OR analyzer = %s)
                    ORDER BY fingerprint""",
                (repo, pr_number, analyzer, analyzer),
            )
            rows = await cur.fetchall()
        return [Finding.from_dict(row["finding"]) for row in rows]

    async def finding(self, repo: str, pr_number: int, fingerprint: str) -> Finding | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT finding FROM review_loop_model_findings
                    WHERE repo = %s AND pr_number = %s AND fingerprint = %s""",
                (repo, pr_number, fingerprint),
            )
            row = await cur.fetchone()
        return None if row is None else Finding.from_dict(row["finding"])

    # -- the review cache ----------------------------------------------------------------

    async def cached_reply(self, key: str) -> str | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """UPDATE review_loop_review_cache SET hits = hits + 1, used_at = now()
                    WHERE key = %s RETURNING reply""",
                (key,),
            )
            row = await cur.fetchone()
        return None if row is None else str(row["reply"])

    async def cache_reply(self, key: str, agent: str, model: str, reply: str) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_review_cache (key, agent, model, reply)
                   VALUES (%s, %s, %s, %s) ON CONFLICT (key) DO NOTHING""",
                (key, agent, model, reply),
            )

    # -- what the calls cost -------------------------------------------------------------

    async def record_calls(
        self,
        calls: Sequence[ModelCall],
        *,
        repo: str,
        pr_number: int | None,
        task_id: int | None = None,
        round: int | None = None,
    ) -> None:
        """Keep `calls` (model, tokens in and out, cost, duration) for budgets; `round` is the
        loop round they were made in."""
        if not calls:
            return
        async with self._pool.connection() as conn:
            cur = conn.cursor()
            await cur.executemany(
                """INSERT INTO review_loop_model_calls
                       (repo, pr_number, task_id, agent, model, purpose, tokens_in, tokens_out,
                        cost_usd, duration_s, attempts, repair, error, round)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
                [
                    (
                        repo,
                        pr_number,
                        task_id,
                        c.agent,
                        c.model,
                        c.purpose,
                        c.tokens_in,
                        c.tokens_out,
                        c.cost_usd,
                        c.duration_s,
                        c.attempts,
                        c.repair,
                        c.error,
                        round,
                    )
                    for c in calls
                ],
            )

    async def calls(self, repo: str, pr_number: int | None = None) -> list[ModelCall]:
        """The calls recorded for the repository (one PR's, with `pr_number`), oldest first."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT agent, model, purpose, tokens_in, tokens_out, cost_usd, duration_s,
                          attempts, repair, error
                     FROM review_loop_model_calls
                    WHERE repo = %s AND (%s::integer IS NULL OR pr_number = %s)
                    ORDER BY id""",
                (repo, pr_number, pr_number),
            )
            rows = await cur.fetchall()
        return [ModelCall(**row) for row in rows]

    async def spend(self, repo: str, pr_number: int, round: int) -> Spend:
        """What the PR's model calls cost: in all, in round `round`, and per agent."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT agent, COALESCE(SUM(cost_usd), 0) AS usd,
                          COALESCE(SUM(cost_usd) FILTER (WHERE round = %s), 0) AS round_usd,
                          COUNT(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
                     FROM review_loop_model_calls
                    WHERE repo = %s AND pr_number = %s
                    GROUP BY agent ORDER BY agent""",
                (round, repo, pr_number),
            )
            rows = await cur.fetchall()
        return Spend(
            pr_usd=sum(float(r["usd"]) for r in rows),
            round_usd=sum(float(r["round_usd"]) for r in rows),
            round=round,
            by_agent={str(r["agent"]): float(r["usd"]) for r in rows},
            unpriced_calls=sum(int(r["unpriced"]) for r in rows),
        )

    async def expected_cost(self, repo: str, agent: str) -> float | None:
        """What one run of `agent` is expected to cost: the mean of its latest recorded runs
        in the repository (a fix task's calls are one run, a review call is one); None: none
        recorded yet."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT AVG(usd) AS mean FROM (
                       SELECT COALESCE(SUM(cost_usd), 0) AS usd
                         FROM review_loop_model_calls
                        WHERE repo = %s AND agent = %s
                        GROUP BY COALESCE(task_id, -id)
                        ORDER BY MAX(id) DESC LIMIT %s) AS runs""",
                (repo, agent, RUNS_AVERAGED),
            )
            row = await cur.fetchone()
        return None if row is None or row["mean"] is None else float(row["mean"])
