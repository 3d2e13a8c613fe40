"""`@review-loop retry #n` forgives #n's failures, in single tasks and in inline batches alike."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.commands import retry_reset
from bot.loop.store import LoopStore, TaskRow
from bot.runtime import Runtime
from handlers.issue_comment import forgive
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    open_pr,
    poll,
    task_rows,
    write_agent,
    write_catalog,
)

MODULE = '"""{name}."""\n\nimport os\n\n\ndef {name}() -> str:\n    return "ok"\n'


def task(issue_number: int = 5, **fields: Any) -> TaskRow:
    values: dict[str, Any] = {
        "id": 1, "repo": REPO, "pr_number": 1, "issue_number": issue_number,
        "installation_id": 1, "agent": "a", "round": 1, "base_ref": "change",
        "base_sha": "0" * 40, "status": "failed", "branch": "b", "fix_pr": None,
        "attempts": 1, "error": None, "spawn_s": None, "run_s": None, "batch": [],
        "fixed": [], "failed": [], "warm": False,
    }  # fmt: skip
    values.update(fields)
    return TaskRow(**values)


@pytest.mark.parametrize(
    ("row", "issue", "expected"),
    [
        pytest.param(task(status="failed"), 5, {"status": "retried", "failed": []},
                     id="single-failed"),
        pytest.param(task(status="refused", failed=[5]), 5, {"status": "retried", "failed": []},
                     id="single-refused"),
        pytest.param(task(status="conflict"), 5, {"status": "retried", "failed": []},
                     id="single-conflict"),
        pytest.param(task(status="merged"), 5, None, id="single-merged-is-kept"),
        pytest.param(task(status="running"), 5, None, id="single-running-is-left-alone"),
        pytest.param(task(status="retried"), 5, None, id="single-retried-already"),
        pytest.param(task(status="merged", batch=[5, 6, 7], fixed=[5], failed=[6, 7]), 7,
                     {"failed": [6]}, id="merged-batch-forgets-only-the-issue"),
        pytest.param(task(status="merged", batch=[5, 6, 7], fixed=[5], failed=[6, 7]), 5,
                     None, id="merged-batch-its-fixed-issue-is-kept"),
        pytest.param(task(status="failed", batch=[5, 6, 7], fixed=[], failed=[5, 6]), 7,
                     {"status": "retried", "failed": [5, 6]},
                     id="failed-batch-still-counts-the-others-even-unattempted"),
        pytest.param(task(status="conflict", batch=[5, 6], fixed=[5], failed=[6]), 6,
                     {"status": "retried", "failed": [5]},
                     id="conflicted-batch-landed-nothing-so-the-others-still-count"),
        pytest.param(task(status="retried", batch=[5, 6], failed=[5]), 6, None,
                     id="retried-batch-already-forgave-it"),
        pytest.param(task(status="running", batch=[5, 6], failed=[6]), 6, None,
                     id="running-batch-is-left-alone"),
    ],
)  # fmt: skip
def test_retry_reset(row: TaskRow, issue: int, expected: dict[str, object] | None) -> None:
    """Retry changes a task only where it counts the issue as failed, and only that."""
    assert retry_reset(row, issue) == expected


@pytest.mark.slow
async def test_retry_of_a_later_batch_issue_fixes_it_without_redoing_the_merged_one(
    workdir: Path, e2e_db: str
) -> None:
    """Inline batches fix one of three findings and fail the other two, twice; `retry` of
    the later failed issue runs a fix for it alone, while the merged fix stays merged and
    the other failure stays with a person."""
    runs, allowed = workdir / "runs", workdir / "allowed"
    allowed.write_text("shop/a.py\n")
    picky = write_agent(
        workdir,
        "picky",
        f"""
        import re
        paths = re.findall(r"^\\d+\\. ruff F401 in `([^`]+)`", sys.stdin.read(), re.M)
        with open({str(runs)!r}, "a") as f:
            f.write(" ".join(paths) + "\\n")
        for p in paths:
            if p not in pathlib.Path({str(allowed)!r}).read_text().split():
                sys.exit(f"will not touch {{p}}")
            f = pathlib.Path(p)
            f.write_text(f.read_text().replace("import os\\n\\n", ""))
    """,
    )
    catalog = write_catalog(workdir, {"picky": picky})
    config = "routes:\n  - rule: F401\n    agent: picky\n"
    files = {f"shop/{n}.py": MODULE.format(name=n) for n in "abc"}
    async with local_stack(
        workdir, database_url=e2e_db, agents_file=catalog, fanout="inline"
    ) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files=files, config=config)
        row = await wait_settled(stack, REPO, number)
        issue = {
            i["title"].split(" in ")[1].split(":")[0]: i["number"]
            for i in driver.issues(REPO, "all")
            if "pull_request" not in i
        }
        a, b, c = issue["shop/a.py"], issue["shop/b.py"], issue["shop/c.py"]
        first, later = sorted([b, c])
        assert row.state == "needs-human" and "failed twice" in (row.reason or "")
        before = await task_rows(stack, "issue_number, status, batch, fixed, failed")
        assert [(t["status"], t["batch"], t["fixed"]) for t in before] == [
            ("merged", sorted([a, b, c]), [a]),
            ("failed", [first, later], []),
        ]
        assert later not in (t["issue_number"] for t in before)  # only batches name it

        path = next(p for p, n in issue.items() if n == later)
        allowed.write_text(f"shop/a.py\n{path}\n")
        await asyncio.to_thread(
            driver.comment, REPO, number, f"@review-loop retry #{later}", as_user=AUTHOR
        )
        await poll(
            lambda: driver.issue(REPO, later)["state"] == "closed", what=f"#{later} to be fixed"
        )
        row = await wait_settled(stack, REPO, number)

        assert row.state == "needs-human"
        assert f"#{first}" in (row.reason or "") and f"#{later}" not in (row.reason or "")
        assert driver.issue(REPO, a)["state"] == "closed"
        assert driver.issue(REPO, first)["state"] == "open"
        after = await task_rows(stack, "issue_number, status, batch, fixed, failed")
        assert [(t["status"], t["batch"], t["fixed"], t["failed"]) for t in after] == [
            ("merged", sorted([a, b, c]), [a], [first]),
            ("retried", [first, later], [], [first]),
            ("merged", [], [later], []),
        ]
        assert after[2]["issue_number"] == later
    agent_runs = runs.read_text().split()
    assert agent_runs.count("shop/a.py") == 1  # the merged fix was not redone
    assert agent_runs.count(path) == 3  # the batch, the second batch, the retry


async def test_retries_of_two_issues_of_one_batch_both_count(runtime: Runtime) -> None:
    """`retry #5` and `retry #6` on one failed batch, the second applied from a stale read:
    compare-and-set re-reads the task, so neither forgiveness is lost."""
    store = LoopStore(runtime.pool)
    row = await store.add_task(
        repo=REPO, pr_number=1, issue_number=5, installation_id=1, agent="a", round=1,
        base_ref="change", base_sha="0" * 40, branch="review-loop/pr-1/5", batch=[5, 6, 7],
    )  # fmt: skip
    assert row is not None
    await store.update_task(row.id, status="failed", failed=[5, 6])
    stale = await store.task(row.id)
    assert stale is not None

    await forgive(store, stale, 5)
    await forgive(store, stale, 6)  # read before #5 was forgiven

    final = await store.task(row.id)
    assert final is not None
    assert (final.status, final.failed) == ("retried", [7])
    assert final.failed_issues == [7]
