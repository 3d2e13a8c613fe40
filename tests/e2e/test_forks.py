"""Pull requests from forks are audited, never fixed: the bot cannot push to a fork."""

import asyncio
import subprocess
from pathlib import Path
from typing import Any

import pytest
from githubkit import GitHub

from bot.demo.stack import LocalStack, local_stack, wait_settled
from bot.labels import FINDING_LABEL
from tests.e2e.scenario import AUTHOR, PYPROJECT, REPO, poll

pytestmark = pytest.mark.slow

CONTRIBUTOR = "carol"
FORK = f"{CONTRIBUTOR}/shop"
MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
FORK_REASON = "on a pull request from a fork; review-loop audits forks but does not fix them"


async def open_fork_pr(
    stack: LocalStack, branch: str = "pricing", base: str = "main"
) -> tuple[int, str]:
    """acme/shop (branches main and release) with the App on acme; carol forks it, pushes an
    unused import to her fork's `branch` and opens `carol:<branch>` against acme/shop's `base`."""
    driver = stack.sandbox.driver

    def setup() -> tuple[int, str]:
        driver.create_user(AUTHOR)
        driver.create_user(CONTRIBUTOR)
        driver.create_org("acme")
        files = {"pyproject.toml": PYPROJECT, "shop/__init__.py": '"""Shop."""\n'}
        driver.create_repo(REPO, files, author=AUTHOR)
        driver.set_permission(REPO, AUTHOR, "write")
        driver.push(REPO, "release", {"CHANGES.md": "# 1.0\n"}, as_user=AUTHOR)
        driver.install_app("acme", sender=AUTHOR)
        driver.fork(REPO, as_user=CONTRIBUTOR)
        files = {"shop/pricing.py": MODULE}
        sha = driver.push(FORK, branch, files, as_user=CONTRIBUTOR, base=base)
        head = f"{CONTRIBUTOR}:{branch}"
        pr = driver.open_pr(REPO, head, as_user=CONTRIBUTOR, title="Pricing", base=base)
        return int(pr["number"]), sha

    return await asyncio.to_thread(setup)


def branches(stack: LocalStack) -> list[str]:
    url = stack.sandbox.driver.remote_url(REPO, AUTHOR)
    out = subprocess.run(["git", "ls-remote", "--heads", url], capture_output=True, text=True)
    return [line.split("\t")[1] for line in out.stdout.splitlines()]


def operator(stack: LocalStack) -> GitHub[Any]:
    driver = stack.sandbox.driver
    return GitHub(driver.operator_token, base_url=stack.sandbox.api_url, auto_retry=False)


async def test_a_fork_pull_request_is_audited_but_not_fixed(workdir: Path, e2e_db: str) -> None:
    """The finding is filed and annotated on the fork head's check run, the PR needs a human,
    no fix branch or fix PR appears; a push to the fork's branch re-audits at the new head."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number, head = await open_fork_pr(stack)
        row = await wait_settled(stack, REPO, number)
        assert (row.state, row.audited_sha) == ("needs-human", head)
        assert FORK_REASON in (row.reason or "")

        [finding] = driver.issues(REPO, "all", labels=FINDING_LABEL)
        assert finding["state"] == "open" and "shop/pricing.py" in finding["body"]
        assert [p["number"] for p in driver.pulls(REPO)] == [number]
        assert await asyncio.to_thread(branches, stack) == ["refs/heads/main", "refs/heads/release"]
        async with stack.runtime.pool.connection() as conn:
            tasks = await (
                await conn.execute("SELECT count(*) AS n FROM review_loop_tasks")
            ).fetchone()
        assert tasks is not None and tasks["n"] == 0

        [check] = driver.check_runs(REPO, head)
        assert (check["name"], check["conclusion"]) == ("review-loop", "action_required")
        github = operator(stack)
        notes = github.rest.checks.list_annotations("acme", "shop", check["id"])
        assert [(a.path, a.start_line) for a in notes.parsed_data] == [("shop/pricing.py", 3)]

        fixed = MODULE.replace("import os\n\n", "")
        pushed = await asyncio.to_thread(
            driver.push, FORK, "pricing", {"shop/pricing.py": fixed}, as_user=CONTRIBUTOR
        )
        await poll(
            lambda: driver.check_runs(REPO, pushed), what="a check run on the fork's new head"
        )
        row = await wait_settled(stack, REPO, number)
        assert (row.state, row.audited_sha) == ("ready", pushed)
        assert driver.issue(REPO, finding["number"])["state"] == "closed"
        [check] = driver.check_runs(REPO, pushed)
        assert check["conclusion"] == "success"


async def test_re_audit_on_a_fork_pull_requests_check_run_audits_it_again(
    workdir: Path, e2e_db: str
) -> None:
    """Pressing the check run's "Re-audit" button on a fork PR asks for a fresh audit."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number, head = await open_fork_pr(stack)
        before = await wait_settled(stack, REPO, number)
        [check] = driver.check_runs(REPO, head)
        await asyncio.to_thread(
            driver.press_check_action, REPO, check["id"], "reaudit", as_user=AUTHOR
        )
        after = await wait_settled(stack, REPO, number)
        assert after.generation > before.generation


async def test_a_pull_request_whose_fork_was_deleted_is_audited_from_refs_pull(
    workdir: Path, e2e_db: str
) -> None:
    """With the fork gone (`head.repo: null`) a re-audit still reaches the head through the
    base repository's `refs/pull/<n>/head` and the PR stays audit-only."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number, head = await open_fork_pr(stack)
        before = await wait_settled(stack, REPO, number)
        await asyncio.to_thread(driver.delete_repo, FORK, as_user=CONTRIBUTOR)
        assert driver.pull(REPO, number)["head"]["repo"] is None
        await asyncio.to_thread(driver.comment, REPO, number, "@review-loop audit", as_user=AUTHOR)
        row = await wait_settled(stack, REPO, number)
        assert row.generation > before.generation
        assert (row.state, row.audited_sha) == ("needs-human", head)
        assert FORK_REASON in (row.reason or "")


async def test_a_fork_branch_named_like_a_fix_branch_is_still_audited_as_a_fork(
    workdir: Path, e2e_db: str
) -> None:
    """A contributor naming a fork branch `review-loop/...` does not pass for the bot's own
    fix PR: the finding is filed and the PR needs a human."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        _, head = await open_fork_pr(stack, branch="review-loop/pr-1/2", base="release")
        # The first check run is posted in progress, before the issues; then completed.
        [check] = await poll(
            lambda: [r for r in driver.check_runs(REPO, head) if r["status"] == "completed"],
            what="the completed check run",
        )
        assert check["conclusion"] == "action_required"
        assert driver.issues(REPO, "all", labels=FINDING_LABEL) != []
