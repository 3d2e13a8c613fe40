"""The loop's rows: pull requests it looks after and their fix tasks."""

import contextlib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from bot.engine.database import Conn, Pool, autocommit

ACTIVE_TASK_STATES = ("queued", "running", "pushed")
# Task ends that leave the fix PR open for a person (the others close it, or it was closed).
FIX_PR_LEFT_OPEN = frozenset({"conflict", "failed"})
# How a task ends when it could not fix what it was given ("rejected": a person closed its
# fix PR without merging it).
ENDED_BADLY = ("failed", "refused", "conflict", "rejected")
# Held back by the budget before it started: nothing failed; the next round queues it again.
HELD = "held"
REJECTED_ERROR = "a person closed the fix PR without merging it"
# A PR's row says this once the reconcile after its close (or merge) has run.
PR_CLOSED_REASON = "the pull request is closed"


@dataclass(frozen=True)
class PrRow:
    repo: str
    number: int
    installation_id: int
    generation: int
    handled: int
    state: str
    reason: str | None
    round: int
    audited_sha: str | None
    force_audit: bool
    stopped: bool
    summary: dict[str, Any]
    # The generation of the latest request that must not wait for the PR's fix tasks.
    urgent_generation: int = 0
    # Changes of the PR's fix tasks, counted (migration 16), and the count the last finished
    # reconcile read as it began (None: none finished since the count began).
    task_epoch: int = 0
    handled_epoch: int | None = None

    @property
    def urgent(self) -> bool:
        """Whether a request that must not wait (`tasks.reconcile_pr`) is not handled yet."""
        return self.urgent_generation > self.handled

    @property
    def tasks_unchanged(self) -> bool:
        """Whether no fix task of the PR changed since the last finished reconcile began."""
        return self.handled_epoch == self.task_epoch


@dataclass(frozen=True)
class TaskRow:
    id: int
    repo: str
    pr_number: int | None
    issue_number: int
    installation_id: int
    agent: str
    round: int
    base_ref: str
    base_sha: str
    status: str
    branch: str
    fix_pr: int | None
    attempts: int
    error: str | None
    spawn_s: float | None
    run_s: float | None
    batch: list[int]
    fixed: list[int]
    failed: list[int]
    warm: bool
    created_at: datetime | None = None  # when the round planned it (the database's clock)
    pushed_sha: str | None = None  # where the task last pushed its branch (None: never)

    @property
    def issues(self) -> list[int]:
        """The issues this task fixes: its batch, or its one issue."""
        return list(self.batch) or [self.issue_number]

    @property
    def failed_issues(self) -> list[int]:
        """The issues this task counts as failed (two failures hand an issue to a person).
        A task that ended badly landed nothing, so it failed all its issues, even those it
        had fixed on its branch; otherwise its `failed` list names them."""
        if self.status in ENDED_BADLY:
            return self.issues
        return list(self.failed)

    def failure_reasons(self) -> dict[int, tuple[str, str]]:
        """How and why each of `failed_issues` failed: issue -> (status, reason). `error`
        holds one line `#<issue> <status>: <reason>` per issue that failed on its own (see
        `failures_text`), or, for a task that failed as a whole, one reason for all."""
        each = {n: (status, reason) for n, status, reason in parse_failures(self.error or "")}
        whole = (self.status, " ".join((self.error or "").split())) if not each else None
        return {n: each.get(n) or whole or (self.status, "") for n in self.failed_issues}


_FAILURE_LINE = re.compile(r"^#(\d+) ([a-z-]+): (.*)$")


def failures_text(failures: Sequence[tuple[int, str, str]]) -> str:
    """The `error` of a task whose issues failed one by one: `#<issue> <status>: <reason>`
    on a line each."""
    return "\n".join(f"#{n} {status}: {' '.join(why.split())}" for n, status, why in failures)


def parse_failures(text: str) -> list[tuple[int, str, str]]:
    """The (issue, status, reason) lines `failures_text` wrote; [] for any other text."""
    lines = text.splitlines()
    matches = [_FAILURE_LINE.match(line) for line in lines]
    if not lines or not all(matches):
        return []
    return [(int(m[1]), m[2], m[3]) for m in matches if m]


_PR_COLUMNS = ", ".join(PrRow.__dataclass_fields__)
_TASK_COLUMNS = ", ".join(TaskRow.__dataclass_fields__)


PR_FLAGS = ("stopped", "force_audit")  # boolean columns of review_loop_prs


def bump_statement(flags: Iterable[str], *, urgent: bool = False) -> str:
    """The upsert that bumps PR `%(repo)s#%(number)s`'s generation (installation `%(iid)s`)
    and sets the boolean columns `flags` to their parameters; RETURNING generation.
    `urgent`: the new generation is one that must not wait for the PR's fix tasks."""
    names = list(flags)
    unknown = set(names) - set(PR_FLAGS)
    if unknown:
        raise TypeError(f"unknown PR flags: {', '.join(sorted(unknown))}")
    columns = "".join(f", {name}" for name in names)
    values = "".join(f", %({name})s" for name in names)
    updates = "".join(f", {name} = excluded.{name}" for name in names)
    if urgent:
        columns += ", urgent_generation"
        values += ", 1"
        updates += ", urgent_generation = review_loop_prs.generation + 1"
    return f"""INSERT INTO review_loop_prs (repo, number, installation_id, generation{columns})
         VALUES (%(repo)s, %(number)s, %(iid)s, 1{values})
    ON CONFLICT (repo, number) DO UPDATE
       SET generation = review_loop_prs.generation + 1,
           installation_id = excluded.installation_id,
           updated_at = now(){updates}
    RETURNING generation"""  # noqa: S608 - the names are PR_FLAGS only


class LoopStore:
    def __init__(self, pool: Pool) -> None:
        self._pool = pool

    async def bump(
        self,
        repo: str,
        number: int,
        installation_id: int,
        conn: Conn | None = None,
        **flags: bool,
    ) -> int:
        """Record that something happened to the PR (and set `flags`); its new generation.
        With `conn`, inside the caller's transaction."""
        if conn is None:
            async with self._pool.connection() as own:
                return await self.bump(repo, number, installation_id, own, **flags)
        cur = await conn.execute(
            bump_statement(flags), {"repo": repo, "number": number, "iid": installation_id, **flags}
        )
        row = await cur.fetchone()
        assert row is not None
        return int(row["generation"])

    async def get(self, repo: str, number: int) -> PrRow | None:
        async with autocommit(self._pool) as conn:
            cur = await conn.execute(
                f"SELECT {_PR_COLUMNS} FROM review_loop_prs WHERE repo = %s AND number = %s",  # noqa: S608
                (repo, number),
            )
            row = await cur.fetchone()
        return None if row is None else PrRow(**row)

    async def repos_of_owner(self, owner: str) -> list[str]:
        """The repositories of `owner` that have PRs in the loop."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT DISTINCT repo FROM review_loop_prs
                    WHERE split_part(repo, '/', 1) = %s ORDER BY repo""",
                (owner,),
            )
            return [str(r["repo"]) for r in await cur.fetchall()]

    async def prs_audited_at(self, repo: str, sha: str) -> list[int]:
        """The PRs of `repo` whose last audit was at commit `sha`."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT number FROM review_loop_prs
                    WHERE repo = %s AND audited_sha = %s ORDER BY number""",
                (repo, sha),
            )
            return [int(r["number"]) for r in await cur.fetchall()]

    async def first_feedback_waiting(self, installation_id: int, repo: str, number: int) -> bool:
        """Whether another PR of the installation, never reconciled yet, has its reconcile
        due in the queue (not running): a PR still waiting for its first feedback."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT EXISTS (
                     SELECT 1 FROM procrastinate_jobs j
                       JOIN review_loop_prs p
                         ON p.repo = j.args->>'repo' AND p.number = (j.args->>'number')::int
                      WHERE j.task_name = 'reconcile_pr' AND j.status = 'todo'
                        AND (j.scheduled_at IS NULL OR j.scheduled_at <= now())
                        AND p.installation_id = %s AND p.handled = 0
                        AND NOT (p.repo = %s AND p.number = %s)) AS waiting""",
                (installation_id, repo, number),
            )
            row = await cur.fetchone()
        return bool(row and row["waiting"])

    async def mark_handled(
        self, repo: str, number: int, generation: int, task_epoch: int | None = None
    ) -> None:
        """Record that a reconcile of `generation` finished, having read the PR's fix tasks'
        `task_epoch` as it began (None: unknown, so the next reconcile looks again)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """UPDATE review_loop_prs
                      SET handled_epoch = CASE WHEN %(g)s >= handled THEN %(epoch)s
                                               ELSE handled_epoch END,
                          handled = GREATEST(handled, %(g)s)
                    WHERE repo = %(repo)s AND number = %(number)s""",
                {"g": generation, "epoch": task_epoch, "repo": repo, "number": number},
            )

    async def save_state(
        self,
        repo: str,
        number: int,
        *,
        state: str,
        reason: str | None,
        round: int,
        audited_sha: str | None,
        summary: dict[str, Any],
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """UPDATE review_loop_prs
                      SET state = %s, reason = %s, round = %s, audited_sha = %s,
                          summary = %s::jsonb, force_audit = false, updated_at = now()
                    WHERE repo = %s AND number = %s""",
                (state, reason, round, audited_sha, json.dumps(summary), repo, number),
            )

    # -- fix tasks --------------------------------------------------------------------------

    async def add_task(
        self,
        *,
        repo: str,
        pr_number: int | None,
        issue_number: int,
        installation_id: int,
        agent: str,
        round: int,
        base_ref: str,
        base_sha: str,
        branch: str,
        batch: list[int] | None = None,
        conn: Conn | None = None,
    ) -> TaskRow | None:
        """Create the task for this issue at this head; None if it already exists. A task
        that was held back by the budget before it started is queued again instead. With
        `conn`, inside the caller's transaction (the task and its job commit together)."""
        async with contextlib.AsyncExitStack() as stack:
            if conn is None:
                conn = await stack.enter_async_context(self._pool.connection())
            cur = await conn.execute(
                f"""INSERT INTO review_loop_tasks
                        (repo, pr_number, issue_number, installation_id, agent, round,
                         base_ref, base_sha, branch, batch)
                    VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
                    ON CONFLICT (repo, issue_number, base_sha, round) DO UPDATE
                       SET status = 'queued', error = NULL, agent = EXCLUDED.agent,
                           batch = EXCLUDED.batch, updated_at = now()
                     WHERE review_loop_tasks.status = 'held'
                    RETURNING {_TASK_COLUMNS}""",  # noqa: S608
                (
                    repo,
                    pr_number,
                    issue_number,
                    installation_id,
                    agent,
                    round,
                    base_ref,
                    base_sha,
                    branch,
                    batch or [],
                ),
            )
            row = await cur.fetchone()
        return None if row is None else TaskRow(**row)

    async def fixes_under_way(self, repo: str, pr_number: int) -> list[int]:
        """The PR's fix tasks that have not ended and whose job is queued or running: each
        will end, whatever its outcome, by asking for a reconcile of the PR (a crashed
        worker's job is queued again by the reaper). A task whose job is gone (failed for
        good) is not counted: nothing would come after it."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT t.id FROM review_loop_tasks t
                    WHERE t.repo = %s AND t.pr_number = %s AND t.status = ANY(%s)
                      AND EXISTS (
                          SELECT 1 FROM procrastinate_jobs j
                           WHERE j.task_name = 'run_fix_task'
                             AND j.status IN ('todo', 'doing')
                             AND (j.args->>'task_id')::bigint = t.id)
                    ORDER BY t.id""",
                (repo, pr_number, list(ACTIVE_TASK_STATES)),
            )
            rows = await cur.fetchall()
        return [int(r["id"]) for r in rows]

    async def task(self, task_id: int) -> TaskRow | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"SELECT {_TASK_COLUMNS} FROM review_loop_tasks WHERE id = %s",  # noqa: S608
                (task_id,),
            )
            row = await cur.fetchone()
        return None if row is None else TaskRow(**row)

    async def tasks_for_pr(self, repo: str, pr_number: int) -> list[TaskRow]:
        return await self._tasks_where("pr_number", repo, pr_number)

    async def tasks_for_issue(self, repo: str, issue_number: int) -> list[TaskRow]:
        """The tasks that worked on this issue: alone, or as any issue of an inline batch
        (`issue_number` names only a batch's first issue)."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {_TASK_COLUMNS} FROM review_loop_tasks
                     WHERE repo = %(repo)s
                       AND (issue_number = %(n)s OR %(n)s = ANY(batch))
                     ORDER BY id""",  # noqa: S608 - ours
                {"repo": repo, "n": issue_number},
            )
            rows = await cur.fetchall()
        return [TaskRow(**r) for r in rows]

    async def _tasks_where(self, column: str, repo: str, number: int) -> list[TaskRow]:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {_TASK_COLUMNS} FROM review_loop_tasks
                     WHERE repo = %s AND {column} = %s ORDER BY id""",  # noqa: S608 - ours
                (repo, number),
            )
            rows = await cur.fetchall()
        return [TaskRow(**r) for r in rows]

    async def update_task(self, task_id: int, **fields: object) -> None:
        sets = ", ".join(f"{name} = %({name})s" for name in fields)
        async with self._pool.connection() as conn:
            await conn.execute(
                f"""UPDATE review_loop_tasks SET {sets}, updated_at = now()
                     WHERE id = %(id)s""",  # noqa: S608
                {"id": task_id, **fields},
            )

    async def fix_pr_closed(self, task_id: int, *, merged: bool) -> None:
        """The task's fix PR was closed: merged (the fix landed) or by a person (rejected)."""
        if merged:
            await self.update_task(task_id, status="merged")
        else:
            await self.update_task(task_id, status="rejected", error=REJECTED_ERROR)

    async def update_task_if(self, seen: TaskRow, **fields: object) -> bool:
        """Update the task only if its status and failures are still as `seen` (another
        writer, e.g. a concurrent `retry`, did not get there first); False otherwise."""
        sets = ", ".join(f"{name} = %({name})s" for name in fields)
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"""UPDATE review_loop_tasks SET {sets}, updated_at = now()
                     WHERE id = %(id)s AND status = %(seen_status)s
                       AND failed = %(seen_failed)s::int[]""",  # noqa: S608
                {"id": seen.id, "seen_status": seen.status, "seen_failed": seen.failed, **fields},
            )
            return cur.rowcount == 1

    async def task_by_fix_pr(self, repo: str, fix_pr: int) -> TaskRow | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                f"""SELECT {_TASK_COLUMNS} FROM review_loop_tasks
                     WHERE repo = %s AND fix_pr = %s ORDER BY id DESC LIMIT 1""",  # noqa: S608
                (repo, fix_pr),
            )
            row = await cur.fetchone()
        return None if row is None else TaskRow(**row)

    # -- fixed fingerprints (oscillation detection) ------------------------------------------

    async def record_fixed(
        self, repo: str, pr_number: int, fingerprint: str, issue_number: int, sha: str
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_fixed
                       (repo, pr_number, fingerprint, issue_number, fixed_sha)
                   VALUES (%s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (repo, pr_number, fingerprint, issue_number, sha),
            )

    async def forget_fixed(self, repo: str, pr_number: int, issue_numbers: Iterable[int]) -> None:
        """Drop the fixed records of these issues (open again, or never closed after all)."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """DELETE FROM review_loop_fixed
                    WHERE repo = %s AND pr_number = %s AND issue_number = ANY(%s)""",
                (repo, pr_number, sorted(issue_numbers)),
            )

    async def fixed_issue_numbers(self, repo: str, pr_number: int) -> set[int]:
        """Issues of this PR the bot itself closed as fixed."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT issue_number FROM review_loop_fixed
                    WHERE repo = %s AND pr_number = %s""",
                (repo, pr_number),
            )
            rows = await cur.fetchall()
        return {int(r["issue_number"]) for r in rows}

    # -- costs and plans (the fan-out planner) -------------------------------------------------

    async def costs(self, repo: str, agent: str) -> tuple[float, float, int] | None:
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT spawn_s, run_s, samples FROM review_loop_costs
                    WHERE repo = %s AND agent = %s""",
                (repo, agent),
            )
            row = await cur.fetchone()
        return None if row is None else (row["spawn_s"], row["run_s"], row["samples"])

    async def record_costs(
        self, repo: str, agent: str, spawn_s: float | None, run_s: float, prior_spawn_s: float = 0
    ) -> None:
        """Fold one task's measurements into the moving averages (alpha 0.3); `spawn_s` None
        (a warm start) leaves the spawn cost as it was."""
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_costs (repo, agent, spawn_s, run_s)
                   VALUES (%(repo)s, %(agent)s, COALESCE(%(s)s, %(prior)s), %(t)s)
                   ON CONFLICT (repo, agent) DO UPDATE
                      SET spawn_s = COALESCE(0.7 * review_loop_costs.spawn_s + 0.3 * %(s)s,
                                             review_loop_costs.spawn_s),
                          run_s = 0.7 * review_loop_costs.run_s + 0.3 * %(t)s,
                          samples = review_loop_costs.samples + 1, updated_at = now()""",
                {"repo": repo, "agent": agent, "s": spawn_s, "t": run_s, "prior": prior_spawn_s},
            )

    async def record_plan(
        self,
        repo: str,
        pr_number: int,
        round: int,
        agent: str,
        n: int,
        t: float,
        s: float,
        width: int,
        explain: str,
    ) -> None:
        async with self._pool.connection() as conn:
            await conn.execute(
                """INSERT INTO review_loop_plans
                       (repo, pr_number, round, agent, n, t, s, width, explain)
                   VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s) ON CONFLICT DO NOTHING""",
                (repo, pr_number, round, agent, n, t, s, width, explain),
            )

    async def plans(self, repo: str, pr_number: int) -> list[str]:
        """The decisions of the PR's latest round, as text."""
        async with self._pool.connection() as conn:
            cur = await conn.execute(
                """SELECT explain FROM review_loop_plans
                    WHERE repo = %s AND pr_number = %s
                      AND round = (SELECT max(round) FROM review_loop_plans
                                    WHERE repo = %s AND pr_number = %s)
                    ORDER BY agent""",
                (repo, pr_number, repo, pr_number),
            )
            rows = await cur.fetchall()
        return [r["explain"] for r in rows]
