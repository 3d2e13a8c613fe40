"""A round is audited once: the reconcile a fix task's end queues while the round's other
fix tasks are under way waits for the last of them, and an author's push does not wait."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import LocalStack, local_stack, wait_settled
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    bare_git,
    open_pr,
    poll,
    task_rows,
    write_agent,
    write_catalog,
)

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
TAX = '"""Tax."""\n\nx=1\n'
CONFIG = "routes:\n  - rule: F401\n    agent: quick\n  - analyzer: ruff-format\n    agent: gated\n"


def agents(workdir: Path, gate: Path) -> Path:
    """`quick` fixes the unused import at once; `gated` formats only once `gate` exists, so
    the quick task's end, and the reconcile it queues, come while `gated` still runs."""
    quick = write_agent(
        workdir,
        "quick",
        """
        p = pathlib.Path("shop/pricing.py")
        p.write_text(p.read_text().replace("import os\\n\\n", ""))
        """,
    )
    gated = write_agent(
        workdir,
        "gated",
        f"""
        import subprocess
        while not os.path.exists({str(gate)!r}):
            time.sleep(0.1)
        subprocess.run([sys.executable, "-m", "ruff", "format", "--no-cache", "."], check=True)
        """,
    )
    return write_catalog(workdir, {"quick": quick, "gated": gated})


async def quick_task_reconciled(stack: LocalStack) -> bool:
    """The quick task merged, its job ended (so its reconcile was asked for) and no
    reconcile is queued or running: the reconcile its end queued is done."""
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT
                 EXISTS (SELECT 1 FROM review_loop_tasks t
                          WHERE t.agent = 'quick' AND t.status = 'merged'
                            AND NOT EXISTS (
                                SELECT 1 FROM procrastinate_jobs j
                                 WHERE j.task_name = 'run_fix_task'
                                   AND (j.args->>'task_id')::bigint = t.id
                                   AND j.status IN ('todo', 'doing'))) AS merged,
                 EXISTS (SELECT 1 FROM procrastinate_jobs
                          WHERE task_name = 'reconcile_pr'
                            AND status IN ('todo', 'doing')) AS reconciling"""
        )
        row = await cur.fetchone()
    assert row is not None
    return bool(row["merged"] and not row["reconciling"])


async def wait_for(stack: LocalStack, what: str, check: Any) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 120
    while not await check(stack):
        assert loop.time() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.2)


def audited_heads(stack: LocalStack, number: int) -> list[str]:
    """The PR's heads (its branch's first-parent commits, oldest first; the fix PRs' own
    commits are second parents) that carry a `review-loop` check run: those it audited."""
    driver = stack.sandbox.driver
    head = driver.pull(REPO, number)["head"]["sha"]
    shas = bare_git(stack, "rev-list", "--reverse", "--first-parent", f"main..{head}").split()
    return [
        sha for sha in shas if any(r["name"] == "review-loop" for r in driver.check_runs(REPO, sha))
    ]


async def test_a_round_of_two_fixes_is_audited_once_after_the_last(
    workdir: Path, e2e_db: str
) -> None:
    """The first fix's merge makes a head no one audits: the PR's heads with a check run
    are its first and the one after the round's last merge."""
    gate = workdir / "gate"
    catalog = agents(workdir, gate)
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        # The start-up sweep done first: late (a loaded machine), it could come in the moment
        # between the quick fix's merge and its task's reconcile request, and audit that head.
        await stack.started_up()
        files = {"shop/pricing.py": MODULE, "shop/tax.py": TAX}
        number = await open_pr(stack, pr_files=files, config=CONFIG)
        first = await poll(lambda: audited_heads(stack, number), what="the first head's check run")
        await wait_for(stack, "the quick task's reconcile", quick_task_reconciled)
        gate.touch()
        row = await wait_settled(stack, REPO, number)
        audited = await asyncio.to_thread(audited_heads, stack, number)
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        tasks = await task_rows(stack, "agent, status")
    assert row.state == "ready", row.reason
    assert sorted((t["agent"], t["status"]) for t in tasks) == [
        ("gated", "merged"),
        ("quick", "merged"),
    ]
    assert audited == [first[0], head], "audited: the first head and the round's last only"


async def test_an_authors_push_is_audited_while_the_rounds_fixes_run(
    workdir: Path, e2e_db: str
) -> None:
    """The author pushes while a fix runs: that head is audited at once, not after the fix."""
    gate = workdir / "gate"
    catalog = agents(workdir, gate)
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        files = {"shop/pricing.py": MODULE, "shop/tax.py": TAX}
        number = await open_pr(stack, pr_files=files, config=CONFIG)
        await wait_for(stack, "the quick task's reconcile", quick_task_reconciled)
        driver = stack.sandbox.driver
        pushed = await asyncio.to_thread(
            driver.push,
            REPO,
            "change",
            {"shop/notes.py": '"""Notes."""\n'},
            as_user=AUTHOR,
            message="Notes",
        )
        await poll(lambda: pushed in audited_heads(stack, number), what="the author's head audited")
        running = await task_rows(stack, "agent, status")
        gate.touch()
        row = await wait_settled(stack, REPO, number)
    assert ("gated", "running") in [(t["agent"], t["status"]) for t in running]
    assert row.state == "ready", row.reason
