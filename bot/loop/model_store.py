"""The model reviewers' rows: the findings each reported on a pull request."""

import json
from collections.abc import Sequence

from bot.audit.findings import Finding
from bot.engine.database import Pool


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
