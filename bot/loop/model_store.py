"""The model reviewers' rows (the findings each reported on a pull request), the review cache,
and the cost ledger: every model call, the installation caps' reservations, the totals."""

import json
from collections.abc import Sequence
from typing import Any

from bot.agents.models import ModelCall
from bot.audit.findings import Finding
from bot.engine.database import Conn, Pool
from bot.loop.budget import Caps, InstallationSpend, RunCost, Spend, over_cap

RUNS_AVERAGED = 5  # an agent's expected cost per run: the mean of its latest runs
# A reservation a crashed worker never released stops counting after this long.
RESERVATION_TTL_S = 3600.0


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
        installation_id: int | None = None,
    ) -> None:
        """Keep `calls` (model, tokens in and out, cost or None when unpriced, duration, what
        each was for) for budgets and totals: `round` is the loop round they were made in,
        `installation_id` the installation whose caps they count against. An agent run of any
        kind (a CLI that reports its own cost too) is recorded as one or more ModelCalls."""
        if not calls:
            return
        async with self._pool.connection() as conn:
            cur = conn.cursor()
            await cur.executemany(
                """INSERT INTO review_loop_model_calls
                       (repo, pr_number, task_id, agent, model, purpose, tokens_in, tokens_out,
                        cost_usd, duration_s, attempts, repair, error, round, installation_id)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)""",
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
                        installation_id,
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
        """What `agent` is expected to cost per issue it works on: the mean of its latest
        recorded runs in the repository, each run's cost divided by the issues it worked on
        (a fix task's calls are one run, over its fixed and failed issues; a review call is
        one); None: none recorded yet."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT AVG(usd) AS mean FROM (
                       SELECT COALESCE(SUM(c.cost_usd), 0) / GREATEST(1, MAX(
                                  COALESCE(cardinality(t.fixed) + cardinality(t.failed), 0)))
                                  AS usd
                         FROM review_loop_model_calls c
                         LEFT JOIN review_loop_tasks t ON t.id = c.task_id
                        WHERE c.repo = %s AND c.agent = %s
                        GROUP BY COALESCE(c.task_id, -c.id)
                        ORDER BY MAX(c.id) DESC LIMIT %s) AS runs""",
                (repo, agent, RUNS_AVERAGED),
            )
            row = await cur.fetchone()
        return None if row is None or row["mean"] is None else float(row["mean"])

    async def task_cost(self, task_id: int) -> RunCost:
        """What fix task `task_id`'s model calls cost (all its runs; unpriced calls count 0)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT COALESCE(SUM(cost_usd), 0) AS usd, COUNT(*) AS calls,
                          COALESCE(SUM(tokens_in), 0) AS tin, COALESCE(SUM(tokens_out), 0) AS tout,
                          COUNT(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
                     FROM review_loop_model_calls WHERE task_id = %s""",
                (task_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        return RunCost(
            usd=float(row["usd"]),
            tokens_in=int(row["tin"]),
            tokens_out=int(row["tout"]),
            calls=int(row["calls"]),
            unpriced_calls=int(row["unpriced"]),
        )

    # -- the installation's caps ---------------------------------------------------------

    async def installation_spend(
        self, installation_id: int, conn: Conn | None = None
    ) -> InstallationSpend:
        """What the installation's model calls cost this UTC day and month, and what its runs
        under way have reserved."""
        if conn is None:
            async with self._pool.connection() as own:
                return await self.installation_spend(installation_id, own)
        cur = await conn.execute(
            # The UTC day and month the caps count in (`now()`: the transaction's start).
            """SELECT COALESCE(SUM(cost_usd) FILTER (WHERE created_at >=
                           date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'), 0)
                           AS day,
                       COALESCE(SUM(cost_usd), 0) AS month
                  FROM review_loop_model_calls
                 WHERE installation_id = %s AND created_at >=
                       date_trunc('month', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'""",
            (installation_id,),
        )
        spent = await cur.fetchone()
        cur = await conn.execute(
            """SELECT COALESCE(SUM(expected_usd), 0) AS reserved
                 FROM review_loop_cost_reservations
                WHERE installation_id = %s AND expires_at > now()""",
            (installation_id,),
        )
        reserved = await cur.fetchone()
        assert spent is not None and reserved is not None
        return InstallationSpend(
            day_usd=float(spent["day"]),
            month_usd=float(spent["month"]),
            reserved_usd=float(reserved["reserved"]),
        )

    async def reserve(
        self, installation_id: int, caps: Caps, expected: float, purpose: str
    ) -> tuple[int | None, str | None]:
        """Admit a model run expected to cost `expected` under the installation's caps: its
        reservation's id, or why not (the cap it would pass). Atomic across processes: the
        installation's row is locked while the spend is read and the reservation written, so
        two workers never both admit the run that fills the cap."""
        async with self._pool.connection() as conn, conn.transaction():
            await conn.execute(
                """INSERT INTO review_loop_installation_budgets (installation_id) VALUES (%s)
                   ON CONFLICT DO NOTHING""",
                (installation_id,),
            )
            await conn.execute(
                """SELECT installation_id FROM review_loop_installation_budgets
                    WHERE installation_id = %s FOR UPDATE""",
                (installation_id,),
            )
            spend = await self.installation_spend(installation_id, conn)
            why = over_cap(caps, spend, expected)
            if why is not None:
                return None, why
            cur = await conn.execute(
                """INSERT INTO review_loop_cost_reservations
                       (installation_id, expected_usd, purpose, expires_at)
                   VALUES (%s, %s, %s, now() + make_interval(secs => %s)) RETURNING id""",
                (installation_id, expected, purpose, RESERVATION_TTL_S),
            )
            row = await cur.fetchone()
        assert row is not None
        return int(row["id"]), None

    async def release(self, reservation_id: int) -> None:
        """The run ended: its calls are in the ledger, its reservation no longer counts."""
        async with self._pool.connection() as conn:
            await conn.execute(
                "DELETE FROM review_loop_cost_reservations WHERE id = %s", (reservation_id,)
            )

    async def totals(self) -> list[dict[str, Any]]:
        """The ledger's totals per agent and purpose (no repository named): calls, tokens in
        and out, USD, unpriced calls."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT agent, purpose, COUNT(*) AS calls,
                          COALESCE(SUM(tokens_in), 0) AS tokens_in,
                          COALESCE(SUM(tokens_out), 0) AS tokens_out,
                          COALESCE(SUM(cost_usd), 0) AS cost_usd,
                          COUNT(*) FILTER (WHERE cost_usd IS NULL) AS unpriced
                     FROM review_loop_model_calls GROUP BY agent, purpose ORDER BY agent, purpose"""
            )
            rows = await cur.fetchall()
        return [
            {
                "agent": str(r["agent"]),
                "purpose": str(r["purpose"]),
                "calls": int(r["calls"]),
                "tokens_in": int(r["tokens_in"]),
                "tokens_out": int(r["tokens_out"]),
                "cost_usd": float(r["cost_usd"]),
                "unpriced": int(r["unpriced"]),
            }
            for r in rows
        ]
