"""What the loop asks GitHub: the repository and its config are read once, not per job."""

import asyncio
import contextlib
import shutil
import tempfile
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from tests.conftest import database_kind, migrated_copy
from tests.e2e.scenario import REPO, open_pr

pytestmark = pytest.mark.slow

FILES = {
    "shop/a.py": '"""A."""\n\nimport os\n\n\ndef a() -> str:\n    return "a"\n',
    "shop/b.py": '"""B."""\n\nimport json\n\n\ndef b() -> str:\n    return "b"\n',
}


@dataclass(frozen=True)
class Loop:
    """One PR's loop run to rest, and what it asked the sandbox GitHub."""

    number: int
    row: Any
    requests: list[dict[str, Any]]
    ran: int  # reconcile and fix-task jobs


async def run_loop(workdir: Path, db: str) -> Loop:
    async with local_stack(workdir, database_url=db) as stack:
        number = await open_pr(stack, pr_files=FILES)
        row = await wait_settled(stack, REPO, number)
        requests = await asyncio.to_thread(stack.sandbox.driver.requests)
        async with stack.runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT count(*) AS n FROM procrastinate_jobs WHERE task_name = ANY(%s)",
                (["reconcile_pr", "run_fix_task"],),
            )
            ran = (await cur.fetchone())["n"]
    return Loop(number, row, requests, ran)


@pytest.fixture(scope="module")
def loop(request: pytest.FixtureRequest) -> Iterator[Loop]:
    """The loop is run once for the module: each test reads what it asked for its own
    question (a fresh database and workdir, as `e2e_db` and `workdir` give a test)."""
    workdir = Path(tempfile.mkdtemp(prefix="review-loop-test-"))
    try:
        with contextlib.contextmanager(migrated_copy)(request, database_kind()) as db:
            yield asyncio.run(run_loop(workdir, db))
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def test_repository_config_and_labels_are_read_once_for_the_whole_loop(loop: Loop) -> None:
    """Several reconciles and fix tasks run; the repository, its config file, the owner's
    absent `.github` repository and the labels are each asked for once."""
    assert loop.row.state == "ready", loop.row.reason
    asked = Counter((r["method"], r["route"], r["status"]) for r in loop.requests)
    assert loop.ran >= 4  # reconciles and fix tasks: each once read the repository and config
    assert asked["GET", "/repos/{owner}/{repo}", 200] == 1, asked
    # The repository's own config file and the owner's `.github` one: both absent, once each.
    assert asked["GET", "/repos/{owner}/{repo}/contents/{path:path}", 404] == 2, asked
    assert asked["GET", "/repos/{owner}/{repo}/labels", 200] == 1, asked


def test_a_prs_first_check_run_goes_before_its_issues_and_summary(loop: Loop) -> None:
    """The author's first feedback is the check run with the audit's findings: in the PR's
    first reconcile it is created before any issue is filed and before the summary comment,
    and later edited with the loop's state."""
    assert loop.row.handled >= 1
    asked = [(r["method"], r["path"].removeprefix("/api/v3")) for r in loop.requests]
    check = asked.index(("POST", f"/repos/{REPO}/check-runs"))
    issue = asked.index(("POST", f"/repos/{REPO}/issues"))
    summary = asked.index(("POST", f"/repos/{REPO}/issues/{loop.number}/comments"))
    assert check < issue < summary, asked
    edits = [m for m, path in asked[check:] if path.startswith(f"/repos/{REPO}/check-runs/")]
    assert "PATCH" in edits, asked
