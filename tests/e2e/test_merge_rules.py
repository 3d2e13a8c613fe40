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
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    bare_git,
    fix_pr_checks,
    fix_pulls,
    landed_over_git,
    merge_answers,
    open_pr,
    task_branches,
    task_rows,
)

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
UNFORMATTED = '"""Tax."""\n\n\ndef tax(amount : int) -> int:\n    return amount//10\n'


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


def loop_checks(driver: Driver, sha: str) -> list[tuple[str, str | None]]:
    return [(r["name"], r["conclusion"]) for r in driver.check_runs(REPO, sha)]


async def test_a_required_check_is_posted_after_one_refused_merge_then_up_front(
    workdir: Path, e2e_db: str
) -> None:
    """The PR branch requires the `review-loop` check: the first fix PR is merged without it,
    GitHub refuses that with 405, the bot posts the check run and merges again; the branch
    is remembered, so the next fix PR (run after it: one task at a time) gets its check run
    first and merges at the first try."""
    async with local_stack(workdir, database_url=e2e_db, worker_concurrency=1) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE, "shop/tax.py": UNFORMATTED},
            settings=squash_only_with_required_check("review-loop"),
        )
        row = await wait_settled(stack, REPO, number)
        fixes = sorted(fix_pulls(stack, number), key=lambda f: f["number"])
        answers = [await asyncio.to_thread(merge_answers, driver, f["number"]) for f in fixes]
        checks = [loop_checks(driver, f["head"]["sha"]) for f in fixes]

    assert row.state == "ready", row.reason
    assert len(fixes) >= 2 and all(f["merged_at"] is not None for f in fixes)
    assert answers[0] == [405, 200], "merged first, its check run posted after GitHub's 405"
    assert all(a == [200] for a in answers[1:]), "the branch is known to require the check"
    assert checks == [[("review-loop", "success")] for _ in fixes]


async def test_fix_prs_land_over_git_with_no_merge_request_and_no_check_run(
    workdir: Path, e2e_db: str
) -> None:
    """Nothing protects the PR branch: each fix PR lands by a push onto it (no `PUT
    …/merge`, a content-creating write), GitHub marks it merged by the bot, its branch is
    deleted, and it gets no check run (its findings are the PR's own audit's once landed)."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(
            stack, pr_files={"shop/pricing.py": MODULE, "shop/tax.py": UNFORMATTED}
        )
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        over_git = [landed_over_git(stack, f, number) for f in fixes]
        merged_by = [
            stack.sandbox.driver.pull(REPO, f["number"])["merged_by"]["login"] for f in fixes
        ]
        checks = [fix_pr_checks(stack, f) for f in fixes]
        left = task_branches(stack, number)

    assert row.state == "ready", row.reason
    assert len(fixes) >= 2 and all(m == "review-loop[bot]" for m in merged_by)
    assert all(over_git)
    assert checks == [[] for _ in fixes]
    assert left == {}, "each landed fix PR's branch is deleted"


async def test_a_fix_pr_github_marks_merged_late_keeps_its_branch_until_then(
    workdir: Path, e2e_db: str
) -> None:
    """GitHub marks a pushed fix PR merged a moment after the push (here 1.5 s): the bot
    reads the fix PR until it says merged before deleting its branch, for deleting the
    head of a pull request still open closes it unmerged. Every fix PR ends merged."""

    def late_marking(driver: Driver) -> None:
        driver.set_faults(merge_by_push_delay_s=1.5)

    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, settings=late_marking)
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        over_git = [landed_over_git(stack, f, number) for f in fixes]
        left = task_branches(stack, number)
        injected = stack.sandbox.driver.fault_stats()["injected"]

    assert row.state == "ready", row.reason
    assert injected.get("merge_by_push_delay", 0) >= len(fixes) >= 1
    assert all(f["state"] == "closed" for f in fixes)
    assert all(over_git), "merged, not closed unmerged by the branch's deletion"
    assert left == {}


async def test_a_squash_only_repository_keeps_the_pr_branch_linear_over_git(
    workdir: Path, e2e_db: str
) -> None:
    """Merge commits are not allowed and nothing protects the PR branch: fixes land over git
    as fast-forwards (one made on a head a sibling's fix has moved is rebased first), so
    the PR branch has no merge commit and every fix PR is marked merged."""

    def squash_only(driver: Driver) -> None:
        driver.set_merge_methods(REPO, "squash")

    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE, "shop/tax.py": UNFORMATTED},
            settings=squash_only,
        )
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        over_git = [landed_over_git(stack, f, number) for f in fixes]
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        merges = bare_git(stack, "rev-list", "--merges", f"main..{head}").split()

    assert row.state == "ready", row.reason
    assert len(fixes) >= 2 and all(over_git)
    assert merges == [], "fast-forwards only"


async def test_a_merge_github_blocks_waits_for_a_person_with_githubs_message(
    workdir: Path, e2e_db: str
) -> None:
    """A required check nobody runs: GitHub refuses the merge with 405, which is no conflict
    (no rebase, no second agent run). The fix PR stays open, says why, shows its check run
    to the person, and the loop waits for a person with GitHub's message."""
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
        checks = [loop_checks(stack.sandbox.driver, f["head"]["sha"]) for f in fixes]

    message = 'Required status check "ci" is expected.'
    assert row.state == "waiting", row.reason
    assert message in (row.reason or "")
    assert fixes and all(f["state"] == "open" and f["merged_at"] is None for f in fixes)
    assert tasks and {t["status"] for t in tasks} == {"pushed"}
    assert all(len(n) == 1 and message in n[0] and "(squash)" in n[0] for n in notes)
    assert checks == [[("review-loop", "success")] for _ in fixes]


async def test_a_fix_pr_left_for_a_reviewer_shows_its_check_run(workdir: Path, e2e_db: str) -> None:
    """The PR branch requires an approving review, no check: GitHub refuses the merge, the
    fix PR waits for a person, and its head carries the bot's check run for them to see."""

    def review_required(driver: Driver) -> None:
        driver.protect_branch(REPO, "change", required_approvals=1)

    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack, pr_files={"shop/pricing.py": MODULE}, settings=review_required
        )
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        answers = [await asyncio.to_thread(merge_answers, driver, f["number"]) for f in fixes]
        checks = [loop_checks(driver, f["head"]["sha"]) for f in fixes]

    assert row.state == "waiting", row.reason
    assert fixes and all(f["state"] == "open" for f in fixes)
    assert all(a == [405] for a in answers), "no check is missing: the merge is not retried"
    assert checks == [[("review-loop", "success")] for _ in fixes]


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
