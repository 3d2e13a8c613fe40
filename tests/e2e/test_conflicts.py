"""A fix that conflicts with the PR branch: rebased, else fixed again on the new head, else a
person decides (DESIGN 1.7). The conflicts are real: a person pushes to the PR branch while
the agent works, changing the line next to the one the agent deletes."""

import asyncio
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.fix.land import CLOSED_MEANWHILE
from bot.loop.store import LoopStore
from bot.sandbox import Driver
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    bare_git,
    fix_pr_checks,
    fix_pulls,
    landed_over_git,
    open_pr,
    poll,
    poll_async,
    show,
    task_branches,
    task_rows,
    write_agent,
    write_catalog,
)

pytestmark = pytest.mark.slow

MODULE = (
    '"""Pricing."""\n\nimport os\nimport sys\n\n\ndef price() -> str:\n    return sys.version\n'
)
CONFIG = "routes:\n  - rule: F401\n    agent: gated\n"


def gated_agent(workdir: Path) -> list[str]:
    """Deletes `import os`; run N logs `started-N` and waits for `go-N` before it edits."""
    return write_agent(
        workdir,
        "gated",
        f"""
        runs = pathlib.Path({str(workdir)!r})
        n = 1
        while (runs / f"started-{{n}}").exists():
            n += 1
        (runs / f"started-{{n}}").write_text(os.getcwd())
        deadline = time.time() + 60
        while not (runs / f"go-{{n}}").exists() and time.time() < deadline:
            time.sleep(0.05)
        p = pathlib.Path("shop/pricing.py")
        p.write_text(p.read_text().replace("import os\\n", ""))
        """,
    )


def rename_sys(alias: str) -> dict[str, str | None]:
    """The person's edit: the line right below `import os` changes, so the agent's deletion
    and this edit touch and git cannot merge them."""
    text = MODULE.replace("import sys\n", f"import sys as {alias}\n")
    return {"shop/pricing.py": text.replace("sys.version", f"{alias}.version")}


async def push_while_agent_waits(stack: Any, workdir: Path, run: int, alias: str) -> str:
    await poll((workdir / f"started-{run}").exists, what=f"agent run {run} to start")
    driver = stack.sandbox.driver
    head = await asyncio.to_thread(
        driver.push, REPO, "change", rename_sys(alias), as_user=AUTHOR, message=f"Use {alias}"
    )
    (workdir / f"go-{run}").touch()
    return str(head)


async def test_a_conflicting_fix_is_made_again_on_the_new_head(workdir: Path, e2e_db: str) -> None:
    """The fix PR conflicts with a person's push and so does its rebase: the agent runs again
    on the new head and the same fix PR, now on top of the person's commit, merges."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        human_head = await push_while_agent_waits(stack, workdir, 1, "system")
        (workdir / "go-2").touch()  # the second run goes straight through
        row = await wait_settled(stack, REPO, number)
        driver = stack.sandbox.driver
        [fix] = fix_pulls(stack, number)
        tasks = await task_rows(stack, "status, error, base_sha, fix_pr")
        pr = driver.pull(REPO, number)
        final = bare_git(stack, "show", f"{pr['head']['sha']}:shop/pricing.py")
        parents = bare_git(stack, "rev-parse", f"{fix['head']['sha']}^@").split()
        fix_checks = fix_pr_checks(stack, fix)
        over_git = landed_over_git(stack, fix, number)

    assert row.state == "ready", row.reason
    assert fix["merged_at"] is not None and over_git
    assert parents == [human_head], "the fix was made again on the new head"
    assert "import os" not in final and "import sys as system" in final
    assert [t["status"] for t in tasks] == ["merged"]
    assert tasks[0]["base_sha"] == human_head
    assert (workdir / "started-2").exists() and not (workdir / "started-3").exists()
    # Merged by the bot into a branch that requires no check: no check run on its head.
    assert fix_checks == []


async def test_a_fix_that_keeps_conflicting_goes_to_a_person(workdir: Path, e2e_db: str) -> None:
    """The person pushes again while the agent's second run works: the fix still conflicts,
    so the issue is handed to a person, the fix PR stays open with its check run, and the
    summary says why."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        await push_while_agent_waits(stack, workdir, 1, "system")
        await push_while_agent_waits(stack, workdir, 2, "platform")
        row = await wait_settled(stack, REPO, number)
        driver = stack.sandbox.driver
        [fix] = fix_pulls(stack, number)
        tasks = await task_rows(stack, "status, error, base_sha, fix_pr")
        issues = [i for i in driver.issues(REPO, "all") if "pull_request" not in i]
        summary = next(c["body"] for c in driver.comments(REPO, number) if "Round" in c["body"])
        fix_checks = driver.check_runs(REPO, fix["head"]["sha"])

    assert row.state == "needs-human"
    assert "its fix conflicts with the branch" in (row.reason or "")
    assert fix["state"] == "open" and fix["merged_at"] is None
    # Left for a person: the head they would merge shows the fleet's audit of it.
    assert [(c["name"], c["conclusion"]) for c in fix_checks] == [("review-loop", "success")]
    assert [t["status"] for t in tasks] == ["conflict"]
    assert "also after a rebase" in tasks[0]["error"]
    [issue] = issues
    assert issue["state"] == "open"
    assert "review-loop:needs-human" in {lbl["name"] for lbl in issue["labels"]}
    assert "conflicts with the branch" in summary
    assert not (workdir / "started-3").exists(), "no third run: a person decides"


@pytest.mark.parametrize("via", ["api", "git", "git-squash-only"])
async def test_a_person_pushing_meanwhile_gets_the_fix_landed_on_top(
    workdir: Path, e2e_db: str, via: str
) -> None:
    """A person pushes an unrelated commit while the agent works; the agent runs once
    whatever the way the fix lands. Through the merge API (`merge_method` set), GitHub
    refuses the merge with 405 "Base branch was modified": that is no conflict, so the merge
    is tried again (no rebase). Over git (the default), the fix is not a fast-forward any
    more: the bot makes the merge commit itself and pushes it, with no merge request. Over
    git in a repository that allows no merge commits, the fix is rebased onto the person's
    commit, verified again, and fast-forwards the branch."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    config = CONFIG + ("merge_method: merge\n" if via == "api" else "")

    def squash_only(driver: Driver) -> None:
        driver.set_merge_methods(REPO, "squash")

    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack,
            pr_files={"shop/pricing.py": MODULE},
            config=config,
            settings=squash_only if via == "git-squash-only" else None,
        )
        await poll((workdir / "started-1").exists, what="the agent to start")

        def unrelated_push() -> str:
            head = driver.push(REPO, "change", {"shop/notes.py": '"""Notes."""\n'}, as_user=AUTHOR)
            if via == "api":
                driver.set_faults(base_modified_merges=1)
            return str(head)

        person_head = await asyncio.to_thread(unrelated_push)
        (workdir / "go-1").touch()
        row = await wait_settled(stack, REPO, number)
        [fix] = fix_pulls(stack, number)
        tasks = await task_rows(stack, "status, error, base_sha, fix_pr")
        parents = bare_git(stack, "rev-parse", f"{fix['head']['sha']}^@").split()
        pr_head = driver.pull(REPO, number)["head"]["sha"]
        merged_on = bare_git(stack, "rev-parse", f"{pr_head}^@").split()
        injected = driver.fault_stats()["injected"]
        over_git = landed_over_git(stack, fix, number)

    assert row.state == "ready", row.reason
    assert injected == ({"base_modified": 1} if via == "api" else {})
    assert over_git is (via != "api")
    assert [t["status"] for t in tasks] == ["merged"]
    assert fix["merged_at"] is not None
    if via == "git-squash-only":
        assert parents == [person_head], "rebased onto the person's commit"
        assert pr_head == fix["head"]["sha"], "a fast-forward: no merge commit"
    else:
        assert parents != [person_head], "the fix commit was not rebased"
        assert merged_on == [person_head, fix["head"]["sha"]], "merged on the person's push"
    assert not (workdir / "started-2").exists(), "the agent ran once"


async def test_a_fix_pr_github_moves_onto_the_default_branch_is_closed_not_merged(
    workdir: Path, e2e_db: str
) -> None:
    """While the agent's second run works (its first conflicted with a person's push), the
    person merges the PR and deletes its branch: GitHub retargets the fix PR to `main`. The
    bot never merges into a base branch, so it closes the fix PR, says why and deletes its
    branch."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        await push_while_agent_waits(stack, workdir, 1, "system")
        await poll((workdir / "started-2").exists, what="the agent's second run")
        [fix] = fix_pulls(stack, number)

        def merge_and_delete() -> str:
            sha = driver.merge(REPO, number, as_user=AUTHOR)
            driver.delete_branch(REPO, "change", as_user=AUTHOR)
            return sha

        merged_into_main = await asyncio.to_thread(merge_and_delete)
        assert driver.pull(REPO, fix["number"])["base"]["ref"] == "main", "GitHub retargeted it"
        # The closed PR's reconcile is done while the agent still works: it leaves the
        # running task's fix PR to the task.
        store = LoopStore(stack.runtime.pool)

        async def closed_reconciled() -> bool:
            row = await store.get(REPO, number)
            return bool(
                row and row.reason == "the pull request is closed" and row.handled >= row.generation
            )

        await poll_async(closed_reconciled, what="the closed PR's reconcile")
        (workdir / "go-2").touch()

        async def task_ended() -> list[dict[str, Any]]:
            tasks = await task_rows(stack, "status, error")
            return tasks if tasks[0]["status"] not in ("queued", "running", "pushed") else []

        tasks = await poll_async(task_ended, what="the fix task to end")
        fix = driver.pull(REPO, fix["number"])
        comments = [c["body"] for c in driver.comments(REPO, fix["number"])]
        main_file = show(stack, "main", "shop/pricing.py")
        main_sha = bare_git(stack, "rev-parse", "main").strip()
        branches = task_branches(stack, number)

    # The merged PR's reconcile ran before the agent went on, so the task sees the PR
    # merged before it would merge its fix (`land.history_kept`); had it not, the fix PR's
    # base, `main` now, would refuse the merge (`land._BaseCheck`, tests/loop/fix/test_land.py).
    assert [(t["status"], t["error"]) for t in tasks] == [("obsolete", CLOSED_MEANWHILE)]
    assert fix["state"] == "closed" and fix["merged_at"] is None
    assert any(CLOSED_MEANWHILE in body for body in comments), comments
    assert branches == {}, "the closed fix PR's branch is deleted"
    assert main_sha == merged_into_main, "nothing of the bot's landed on main"
    assert "import os" in main_file


async def test_a_fix_made_on_history_a_force_push_rewrote_is_not_proposed(
    workdir: Path, e2e_db: str
) -> None:
    """While the agent works, the author force-pushes the PR branch rewritten: the unused
    import and a debug file gone. The fix PR, made on the old history, would merge cleanly
    (its change undoes the import, the file is in its history) and bring the file back: the
    task ends `stale` before it opens its fix PR, and the rewritten head is left as the
    author pushed it."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    clean = MODULE.replace("import os\n", "")
    rewritten = clean + "\n\ndef tax() -> int:\n    return 20\n"
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(
            stack,
            base_files={"shop/pricing.py": clean},
            pr_files={"shop/pricing.py": MODULE, "shop/debug.py": '"""Debug."""\n'},
            config=CONFIG,
        )
        await poll((workdir / "started-1").exists, what="the agent to start")
        before = await generation_of(stack, number)
        rewrite = await asyncio.to_thread(
            driver.push,
            REPO,
            "change",
            {"shop/pricing.py": rewritten},
            as_user=AUTHOR,
            message="Rewrite the change",
            force=True,
        )
        await event_seen(stack, number, before)  # the push's, before the agent goes on
        (workdir / "go-1").touch()
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        tasks = await task_rows(stack, "status, error")
        head = driver.pull(REPO, number)["head"]["sha"]
        tree = bare_git(stack, "ls-tree", "-r", "--name-only", head).split()
        branches = task_branches(stack, number)

    assert head == rewrite, "the author's rewritten head stands"
    assert "shop/debug.py" not in tree
    assert [t["status"] for t in tasks] == ["stale"]
    assert "rewritten" in tasks[0]["error"]
    assert fixes == [], "no fix PR on the old history"
    assert branches == {}, "the task's pushed branch is deleted"
    assert row.state == "ready", row.reason


async def test_a_fix_finished_after_its_pr_was_closed_is_not_proposed(
    workdir: Path, e2e_db: str
) -> None:
    """The author closes the PR while the agent works: the task ends `obsolete` without
    opening a fix PR, the closed PR's branch gets nothing of the bot's, and the task's own
    branch, pushed already, is deleted."""
    catalog = write_catalog(workdir, {"gated": gated_agent(workdir)})
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=CONFIG)
        await poll((workdir / "started-1").exists, what="the agent to start")
        before = await generation_of(stack, number)
        head = driver.pull(REPO, number)["head"]["sha"]
        await asyncio.to_thread(driver.set_issue_state, REPO, number, "closed", as_user=AUTHOR)
        store = LoopStore(stack.runtime.pool)

        async def closed_reconciled() -> bool:
            row = await store.get(REPO, number)
            return row is not None and row.generation > before and row.handled >= row.generation

        await poll_async(closed_reconciled, what="the closed PR's reconcile")
        (workdir / "go-1").touch()

        async def task_ended() -> bool:
            return (await task_rows(stack, "status"))[0]["status"] not in ("queued", "running")

        await poll_async(task_ended, what="the fix task to end")
        tasks = await task_rows(stack, "status, error, fix_pr, pushed_sha")
        branch_head = bare_git(stack, "rev-parse", "change").strip()
        fixes = fix_pulls(stack, number)
        branches = task_branches(stack, number)

    assert [(t["status"], t["fix_pr"], t["pushed_sha"] is None) for t in tasks] == [
        ("obsolete", None, False)
    ]
    assert tasks[0]["error"] == CLOSED_MEANWHILE
    assert fixes == []
    assert branch_head == head
    assert branches == {}, "the task's pushed branch is deleted"


async def generation_of(stack: Any, number: int) -> int:
    row = await LoopStore(stack.runtime.pool).get(REPO, number)
    assert row is not None
    return row.generation


async def event_seen(stack: Any, number: int, since: int) -> None:
    """Wait until an event about PR `number` came in after generation `since`."""

    async def moved() -> bool:
        return await generation_of(stack, number) > since

    await poll_async(moved, what="the event's webhook")
