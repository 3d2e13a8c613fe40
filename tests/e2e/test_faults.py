"""GitHub's faults on the bot's writes: the loop converges with nothing twice, nothing lost."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import LocalStack, local_stack, wait_settled
from bot.github.markers import parse_marker
from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile, run_fix_task
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    fix_pulls,
    open_pr,
    poll_async,
    task_branches,
    task_rows,
)

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
QUIET = {"redeliver_interval_s": 0, "resync_interval_s": 0, "sweep_interval_s": 0}


def _rule(fault: str, route: str) -> dict[str, Any]:
    return {"fault": fault, "route": route, "limit": 1}


@pytest.mark.parametrize("fault", ["server_error", "lost_answer"])
async def test_one_failed_answer_on_each_create_fails_nothing_and_duplicates_nothing(
    workdir: Path, e2e_db: str, fault: str
) -> None:
    """The first create of each kind (finding issue, fix PR, comment, check run, label) fails
    without an answer: the fix task still lands its fix, nothing is made twice, no fix PR is
    left open."""
    rules = [
        _rule(fault, r"^POST /repos/[^/]+/[^/]+/issues$"),
        _rule(fault, r"^POST /repos/[^/]+/[^/]+/pulls$"),
        _rule(fault, r"^POST /repos/.*/comments$"),
        _rule(fault, r"^POST /repos/.*/check-runs$"),
        _rule(fault, r"^POST /repos/[^/]+/[^/]+/labels$"),
    ]
    async with local_stack(workdir, database_url=e2e_db, **QUIET) as stack:
        driver = stack.sandbox.driver
        await asyncio.to_thread(driver.set_faults, rules=rules)
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="")
        row = await wait_settled(stack, REPO, number)
        tasks = await task_rows(stack)
        pulls = await asyncio.to_thread(fix_pulls, stack, number)
        issues = await asyncio.to_thread(driver.issues, REPO)
        comments = [
            c for i in issues for c in await asyncio.to_thread(driver.comments, REPO, i["number"])
        ]
        stats = await asyncio.to_thread(driver.fault_stats)

    assert stats["injected"][fault] >= 4
    assert row.state == "ready"
    assert tasks and {t["status"] for t in tasks} == {"merged"}
    assert len(pulls) == len(tasks)
    assert all(p["state"] == "closed" and p["merged_at"] for p in pulls)
    findings = [parse_marker(i["body"]) for i in issues if "pull_request" not in i]
    assert len(findings) == len({(m or {}).get("fp") for m in findings}) == len(tasks)
    bodies = [c["body"] for c in comments]
    assert len(bodies) == len(set(bodies))


@pytest.mark.parametrize(
    "person",
    [None, "pushed", "closed"],
    ids=["as-left", "a-person-pushed-after", "a-person-closed-it-then-the-pr"],
)
async def test_a_retried_task_whose_findings_are_gone_closes_the_fix_pr_a_killed_run_opened(
    workdir: Path, e2e_db: str, person: str | None
) -> None:
    """A task killed after opening its fix PR, retried once its finding was fixed anyway (by
    a sibling): the retry ends obsolete, closes the PR the first run opened and deletes its
    branch, unless a person pushed to it after the killed run (then it is theirs, kept). A
    fix PR a person closed (and then the PR: the retry ends obsolete before it looks at its
    fix PR) keeps its branch too: they may reopen it."""
    async with local_stack(workdir, database_url=e2e_db, **QUIET) as stack:
        driver, store = stack.sandbox.driver, LoopStore(stack.runtime.pool)
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="")
        await wait_settled(stack, REPO, number)
        [done, *_] = await store.tasks_for_pr(REPO, number)
        head = (await asyncio.to_thread(driver.pull, REPO, number))["head"]["sha"]
        # The killed run: its branch on the PR's head, its fix PR open, its row `running`.
        branch = f"review-loop/pr-{number}/killed"
        pushed = await asyncio.to_thread(
            driver.push, REPO, branch, {"shop/notes.py": '"""Notes."""\n'}, as_user=AUTHOR,
            base="change",
        )  # fmt: skip
        async with stack.runtime.github.installation_client(done.installation_id) as gh:
            api = await stack.runtime.github.repo_api(gh, REPO)
            marker = {"kind": "fix", "issues": [done.issue_number], "task": 0}
            opened = await api.create_pull("Fix", "A killed run's", branch, "change", marker)
        killed = await store.add_task(
            repo=REPO, pr_number=number, issue_number=done.issue_number,
            installation_id=done.installation_id, agent=done.agent, round=done.round + 1,
            base_ref="change", base_sha=head, branch=branch,
        )  # fmt: skip
        assert killed is not None
        await store.update_task(
            killed.id, status="running", attempts=1, fix_pr=opened.number, pushed_sha=pushed
        )
        if person == "pushed":
            pushed = await asyncio.to_thread(
                driver.push, REPO, branch, {"shop/more.py": '"""More."""\n'}, as_user=AUTHOR
            )
        if person == "closed":
            for closing in (opened.number, number):
                await asyncio.to_thread(
                    driver.set_issue_state, REPO, closing, "closed", as_user=AUTHOR
                )

        await run_fix_task(stack.fleet, killed.id)
        ended = await store.task(killed.id)
        pull = await asyncio.to_thread(driver.pull, REPO, opened.number)
        comments = await asyncio.to_thread(driver.comments, REPO, opened.number)
        branches = await asyncio.to_thread(task_branches, stack, number)

    assert ended is not None and ended.status == "obsolete"
    assert (pull["state"], pull["merged_at"]) == ("closed", None)
    closing = [] if person == "closed" else [{"kind": "obsolete", "pr": opened.number}]
    assert [parse_marker(c["body"]) for c in comments] == closing
    assert branches == ({} if person is None else {branch: pushed})


class Waits:
    """The bot's injected sleep (`GitHubApp.sleep`): records the waits, waits for nothing."""

    def __init__(self) -> None:
        self.waited: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.waited.append(seconds)
        await asyncio.sleep(0)


async def _reconcile_under(stack: LocalStack, number: int, rule: dict[str, Any]) -> int:
    """Settle the PR, then ask for one more reconcile while `rule` breaks GitHub; the
    generation asked for."""
    await wait_settled(stack, REPO, number)
    row = await LoopStore(stack.runtime.pool).get(REPO, number)
    assert row is not None
    await asyncio.to_thread(stack.sandbox.driver.set_faults, rules=[rule])
    return await request_reconcile(stack.runtime, REPO, number, row.installation_id)


async def test_a_reconcile_outlasts_a_burst_of_failures_longer_than_the_jobs_retries(
    workdir: Path, e2e_db: str
) -> None:
    """Reading the PR fails four times running (more than the job's three attempts): the
    reconcile tries again in the job, backing off, and handles its generation."""
    async with local_stack(workdir, database_url=e2e_db, **QUIET) as stack:
        waits = Waits()
        stack.runtime.github.sleep = waits
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="")
        rule = {"fault": "reset", "route": rf"^GET /repos/{REPO}/pulls/{number}$", "limit": 4}
        generation = await _reconcile_under(stack, number, rule)
        row = await wait_settled(stack, REPO, number)
        stats = await asyncio.to_thread(stack.sandbox.driver.fault_stats)

    assert stats["injected"] == {"reset": 4}
    assert row.handled >= generation
    assert len([w for w in waits.waited if w > 0]) >= 4


async def test_a_reconcile_that_runs_out_of_retries_is_queued_again_later(
    workdir: Path, e2e_db: str
) -> None:
    """GitHub keeps failing: once the reconcile's retries are spent, the same generation is
    queued a few minutes later instead of the job failing and the PR waiting for resync."""
    async with local_stack(workdir, database_url=e2e_db, **QUIET) as stack:
        stack.runtime.github.sleep = Waits()
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="")
        rule = {"fault": "reset", "route": rf"^GET /repos/{REPO}/pulls/{number}$"}
        generation = await _reconcile_under(stack, number, rule)

        async def queued_later() -> list[Any]:
            async with stack.runtime.pool.connection() as conn:
                cur = await conn.execute(
                    """SELECT status,
                           coalesce(scheduled_at > now() + interval '1 minute', false) AS later
                         FROM procrastinate_jobs
                        WHERE task_name = 'reconcile_pr'
                          AND (args->>'generation')::int = %s
                        ORDER BY id""",
                    (generation,),
                )
                rows = list(await cur.fetchall())
            # The requeue is written by the first job before procrastinate marks it done.
            done = all(r["status"] != "doing" for r in rows)
            return rows if done and len(rows) >= 2 else []

        jobs = await poll_async(queued_later, what="the reconcile to be queued again")
        row = await LoopStore(stack.runtime.pool).get(REPO, number)

    assert [(j["status"], j["later"]) for j in jobs] == [("succeeded", False), ("todo", True)]
    assert row is not None and row.handled < generation
