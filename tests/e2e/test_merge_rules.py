"""GitHub's merge rules on the PR branch: the repository's allowed merge methods and branch
protection decide how (and whether) the bot merges a fix PR."""

import asyncio
from collections.abc import Callable
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.github.markers import parse_marker
from bot.loop.tasks import request_reconcile
from bot.sandbox import Driver
from tests.e2e.scenario import AUTHOR, REPO, bare_git, fix_pulls, open_pr, task_rows

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'


def squash_only_with_required_check(check: str) -> Callable[[Driver], None]:
    def settings(driver: Driver) -> None:
        driver.set_merge_methods(REPO, "squash")
        driver.protect_branch(REPO, "change", required_checks=[check])

    return settings


async def test_a_squash_only_repository_gets_squash_merges(workdir: Path, e2e_db: str) -> None:
    """Merge commits are not allowed and the PR branch requires the `review-loop` check (the
    bot's own audit of each fix PR): the fix is squash-merged and the loop ends ready."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE},
            settings=squash_only_with_required_check("review-loop"),
        )
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        tasks = await task_rows(stack)
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        parents = bare_git(stack, "rev-parse", f"{head}^@").split()

    assert row.state == "ready", row.reason
    assert tasks and {t["status"] for t in tasks} == {"merged"}
    assert fixes and all(fix["merged_at"] is not None for fix in fixes)
    assert len(parents) == 1, "a squash merge: one parent, no merge commit"


async def test_a_merge_github_blocks_waits_for_a_person_with_githubs_message(
    workdir: Path, e2e_db: str
) -> None:
    """A required check nobody runs: GitHub refuses the merge with 405, which is no conflict
    (no rebase, no second agent run). The fix PR stays open, says why, and the loop waits
    for a person with GitHub's message."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE},
            settings=squash_only_with_required_check("ci"),
        )
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        tasks = await task_rows(stack)
        notes = [
            [
                c["body"]
                for c in stack.sandbox.driver.comments(REPO, fix["number"])
                if (parse_marker(c["body"]) or {}).get("kind") == "merge-blocked"
            ]
            for fix in fixes
        ]

    message = 'Required status check "ci" is expected.'
    assert row.state == "waiting", row.reason
    assert message in (row.reason or "")
    assert fixes and all(f["state"] == "open" and f["merged_at"] is None for f in fixes)
    assert tasks and {t["status"] for t in tasks} == {"pushed"}
    assert all(len(n) == 1 and message in n[0] and "(squash)" in n[0] for n in notes)


async def test_a_blocked_fix_pr_a_person_merges_unheard_moves_the_loop_on(
    workdir: Path, e2e_db: str
) -> None:
    """The loop waits on a fix PR GitHub would not merge; a person lifts the rule and merges
    it, and that webhook is lost: the next reconcile looks at the fix PR itself, records the
    merge and goes on to ready."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE},
            settings=squash_only_with_required_check("ci"),
        )
        waiting = await wait_settled(stack, REPO, number)
        assert waiting.state == "waiting", waiting.reason

        def merge_unheard() -> None:
            driver.unprotect_branch(REPO, "change")
            driver.set_faults(drop_webhook_rate=1.0)
            for fix in fix_pulls(stack, number):
                driver.merge(REPO, fix["number"], as_user=AUTHOR, method="squash")
            stack.sandbox.wait_for_deliveries()
            driver.set_faults(drop_webhook_rate=0.0)

        await asyncio.to_thread(merge_unheard)
        await request_reconcile(stack.runtime, REPO, number, waiting.installation_id)
        row = await wait_settled(stack, REPO, number)
        tasks = await task_rows(stack)

    assert {t["status"] for t in tasks} == {"merged"}
    assert row.state != "waiting", row.reason
