"""How people talk to the loop: commands from writers, polite refusals, waivers, limits."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.github.markers import parse_marker
from bot.loop.tasks import request_reconcile
from tests.e2e.scenario import AUTHOR, REPO, open_pr, poll, poll_async, task_branches, task_rows

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
NO_FIXES = "max_rounds: 0\n"


def replies(stack, number: int) -> list[str]:  # type: ignore[no-untyped-def]
    return [
        c["body"]
        for c in stack.sandbox.driver.comments(REPO, number)
        if (parse_marker(c["body"]) or {}).get("kind") in ("reply", "label-refused")
    ]


async def test_writers_command_readers_are_refused_and_a_waiver_makes_the_pr_ready(
    workdir: Path, e2e_db: str
) -> None:
    """A reader's command gets a polite refusal and changes nothing; a writer's
    `help` is answered and `waive` closes the finding, after which the PR is ready."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=NO_FIXES)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "needs-human" and "max_rounds: 0" in (row.reason or "")
        finding = next(i for i in driver.issues(REPO, "all") if "pull_request" not in i)

        def as_reader() -> None:
            driver.create_user("bob")
            driver.set_permission(REPO, "bob", "read")
            driver.comment(REPO, number, "@review-loop audit", as_user="bob")

        await asyncio.to_thread(as_reader)
        await poll(lambda: len(replies(stack, number)) >= 1, what="the refusal on the PR")
        assert "only people with write access" in replies(stack, number)[0]
        await wait_settled(stack, REPO, number)
        tasks = await _count(stack, "SELECT count(*) AS n FROM review_loop_tasks")
        assert tasks == 0

        await asyncio.to_thread(driver.comment, REPO, number, "@review-loop help", as_user=AUTHOR)
        await poll(
            lambda: any("review-loop commands" in r for r in replies(stack, number)),
            what="the help text",
        )
        await asyncio.to_thread(
            driver.comment,
            REPO,
            number,
            f"@review-loop waive #{finding['number']} a deliberate import",
            as_user=AUTHOR,
        )

        def waived() -> bool:
            issue = driver.issue(REPO, finding["number"])
            labels = {lbl["name"] for lbl in issue["labels"]}
            return issue["state"] == "closed" and "review-loop:waived" in labels

        await poll(waived, what="the finding to be waived")
        row = await wait_settled(stack, REPO, number)
        assert row.state == "ready"


async def test_sixty_findings_are_filed_without_tripping_the_creation_limit(
    workdir: Path, e2e_db: str
) -> None:
    """A PR with 60 findings gets 60 issues while the sandbox enforces a content-creation
    limit; the bot's throttle waits instead of being refused. GitHub's minute is shortened
    to 8 s on both sides (the sandbox's limit and the bot's throttle): the same arithmetic,
    without waiting a minute. The bot keeps a margin (36 of the 40 allowed) for the requests
    in flight: the sandbox counts a creation when it arrives, the bot when it sends it."""
    imports = "".join(f"import mod{i}\n" for i in range(60))
    module = f'"""Many imports."""\n\n{imports}'
    config = "max_rounds: 0\ngroup_threshold: 100\nmax_open_issues: 100\n"
    minute_s = 8.0
    async with local_stack(
        workdir,
        database_url=e2e_db,
        writes_per_minute=36,
        write_interval_s=0,
        write_minute_s=minute_s,
    ) as stack:
        driver = stack.sandbox.driver
        await asyncio.to_thread(
            driver.set_faults,
            enforce_creation_limit=True,
            creation_limit_per_minute=40,
            creation_window_s=minute_s,
        )
        number = await open_pr(stack, pr_files={"shop/many.py": module}, config=config)
        await wait_settled(stack, REPO, number, timeout=240)
        issues = [i for i in driver.issues(REPO, "all") if "pull_request" not in i]
        fps = {(parse_marker(i["body"]) or {}).get("fp") for i in issues}
        assert len(issues) == 60 and len(fps) == 60
        stats = driver.fault_stats()
        assert stats["injected"].get("creation_limit", 0) == 0
        assert stats["injected"].get("secondary_rate_limit", 0) == 0
        # The throttle, not luck, kept the bot under the limit: its writes slept, or (a slot
        # more than `write_defer_after_s` away) their reconcile was queued again at the slot.
        stats = stack.runtime.github.throttles.stats().values()
        held = sum(s.waited_s + s.deferred_s for s in stats)
        assert held > 0


async def test_a_triagers_fix_label_is_refused_a_writers_is_not(workdir: Path, e2e_db: str) -> None:
    """Triagers may label issues on GitHub, but a fix label spends the operator's agents: a
    triager's `agent:ruff-fix` gets a refusal and no task; the same label from a writer does."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        await open_pr(
            stack,
            base_files={"shop/pricing.py": MODULE},  # the issue is about the default branch
            pr_files={"shop/extra.py": '"""Extra."""\n'},
            config=NO_FIXES,
        )

        def triager_labels() -> int:
            driver.create_user("carol")
            driver.set_permission(REPO, "carol", "triage")
            issue = driver.file_issue(
                REPO, "Unused import", as_user="carol", body="shop/pricing.py imports os."
            )
            driver.add_label(REPO, issue["number"], "agent:ruff-fix", as_user="carol")
            return int(issue["number"])

        issue = await asyncio.to_thread(triager_labels)
        await poll(lambda: replies(stack, issue), what="the refusal on the issue")
        refused_tasks = await _count(stack, "SELECT count(*) AS n FROM review_loop_tasks")

        def writer_relabels() -> None:
            driver.remove_label(REPO, issue, "agent:ruff-fix", as_user=AUTHOR)
            driver.add_label(REPO, issue, "agent:ruff-fix", as_user=AUTHOR)

        await asyncio.to_thread(writer_relabels)
        await poll(
            lambda: any(
                p["head"]["ref"] == f"review-loop/default/{issue}"
                for p in driver.pulls(REPO, "all")
            ),
            what="the fix PR a writer's label asks for",
        )
        answers = replies(stack, issue)

    assert refused_tasks == 0
    assert len(answers) == 1, "one refusal, and none for the writer"
    assert "@carol" in answers[0] and "only people with write access" in answers[0]


async def test_manual_merging_waits_for_a_person_and_goes_on_after_each_merge(
    workdir: Path, e2e_db: str
) -> None:
    """`merge_fixes: manual`: the loop opens fix PRs and waits (check run still in
    progress) until a person merges them; each merge moves the loop on, to ready at last."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack, pr_files={"shop/pricing.py": MODULE}, config="merge_fixes: manual\n"
        )
        waits = []
        for _ in range(4):
            row = await wait_settled(stack, REPO, number)
            if row.state != "waiting":
                break
            fixes = [
                p
                for p in driver.pulls(REPO, "open")
                if p["head"]["ref"].startswith(f"review-loop/pr-{number}/")
            ]
            head = driver.pull(REPO, number)["head"]["sha"]
            [check] = driver.check_runs(REPO, head)
            waits.append((row.reason, [p["number"] for p in fixes], check["status"]))
            for fix in fixes:
                await asyncio.to_thread(driver.merge, REPO, fix["number"], as_user=AUTHOR)
        merged = [p for p in driver.pulls(REPO, "all") if p["merged_at"]]

    assert row.state == "ready", row.reason
    assert waits, "the loop waited for the person at least once"
    for reason, fixes, status in waits:
        assert fixes and status == "in_progress"
        assert all(f"#{n}" in (reason or "") for n in fixes)
        assert "merge_fixes: manual" in (reason or "")
    assert sorted(p["number"] for p in merged) == sorted(n for _, f, _ in waits for n in f)


async def fix_waiting_for_a_person(stack: Any) -> tuple[int, Any, dict[str, Any]]:
    """A PR under `merge_fixes: manual`, settled while its one fix PR waits for a person: the
    PR's number, its row and the fix PR."""
    driver = stack.sandbox.driver
    number = await open_pr(
        stack, pr_files={"shop/pricing.py": MODULE}, config="merge_fixes: manual\n"
    )
    waiting = await wait_settled(stack, REPO, number)
    [fix] = [p for p in driver.pulls(REPO, "open") if p["number"] != number]
    return number, waiting, fix


async def test_a_fix_pr_a_person_closes_is_not_proposed_again(workdir: Path, e2e_db: str) -> None:
    """`merge_fixes: manual`: a person closes the fix PR, and that webhook is lost. The next
    reconcile looks at the fix PR itself, hands the issue to a person and opens no new one."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number, waiting, fix = await fix_waiting_for_a_person(stack)

        def close_unheard() -> None:
            driver.set_faults(drop_webhook_rate=1.0)
            driver.set_issue_state(REPO, fix["number"], "closed", as_user=AUTHOR)
            stack.sandbox.wait_for_deliveries()
            driver.set_faults(drop_webhook_rate=0.0)

        await asyncio.to_thread(close_unheard)
        await request_reconcile(stack.runtime, REPO, number, waiting.installation_id)
        row = await wait_settled(stack, REPO, number)
        pulls = [p["number"] for p in driver.pulls(REPO, "all") if p["number"] != number]
        statuses = [t["status"] for t in await task_rows(stack, "status")]

    assert waiting.state == "waiting"
    assert row.state == "needs-human"
    assert "a person closed its fix PR" in (row.reason or "")
    assert pulls == [fix["number"]], "no second fix PR"
    assert statuses == ["rejected"]


async def test_the_fix_prs_left_for_a_person_are_closed_when_the_pr_merges(
    workdir: Path, e2e_db: str
) -> None:
    """`merge_fixes: manual`: the fix PR waits for a person, who merges the PR itself
    instead. The bot closes the fix PR, saying why, deletes its branch, and its task ends:
    nothing is left open that GitHub would retarget to the default branch once the PR's
    branch is deleted, nor a branch nothing needs."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number, waiting, fix = await fix_waiting_for_a_person(stack)
        before = task_branches(stack, number)

        await asyncio.to_thread(driver.merge, REPO, number, as_user=AUTHOR)

        async def task_ended() -> list[str]:
            statuses = [t["status"] for t in await task_rows(stack, "status")]
            return statuses if statuses != ["pushed"] else []

        statuses = await poll_async(task_ended, what="the fix task to end")
        closed = driver.pull(REPO, fix["number"])
        comments = [c["body"] for c in driver.comments(REPO, fix["number"])]
        after = task_branches(stack, number)

    assert waiting.state == "waiting"
    assert before == {fix["head"]["ref"]: fix["head"]["sha"]}
    assert (closed["state"], closed["merged_at"]) == ("closed", None)
    assert any(f"Closed: #{number} was merged" in body for body in comments), comments
    assert statuses == ["obsolete"]
    assert after == {}, "the closed fix PR's branch is deleted"


async def _count(stack, sql: str) -> int:  # type: ignore[no-untyped-def]
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(sql)
        row = await cur.fetchone()
    return int(row["n"])
