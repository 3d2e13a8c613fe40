"""The loop on repositories configured the way real projects are: a ruff config that asks for
fixes (`fix = true`), rules without a safe fix, and people who read the issues."""

import asyncio
import sys
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.github.markers import parse_marker
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    bare_git,
    fix_pulls,
    open_pr,
    poll,
    show,
    task_rows,
    write_agent,
    write_catalog,
)

pytestmark = pytest.mark.slow

FIXING_PYPROJECT = (
    '[project]\nname = "shop"\nversion = "0.1.0"\n\n'
    '[tool.ruff]\nline-length = 100\nfix = true\n\n[tool.ruff.lint]\nselect = ["E", "F", "I"]\n'
)
MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
STRICT_PYPROJECT = FIXING_PYPROJECT.replace('"I"]', '"I", "SIM"]')
TERNARY = (
    '"""Pricing."""\n\nimport os\n\n\ndef price(member: bool) -> str:\n'
    '    if member:\n        label = "member"\n    else:\n        label = "guest"\n'
    "    return label\n"
)
LEGACY = '"""Old code the pull request does not touch."""\n\nimport json\n\nVALUE = 1\n'


async def test_a_repository_that_asks_ruff_to_fix_is_audited_read_only(
    workdir: Path, e2e_db: str
) -> None:
    """With `[tool.ruff] fix = true` the safe-fixable finding is still filed (the audit does
    not fix it in passing), its fix changes only the PR's file, and a file outside the PR
    with a fixable finding of its own is left alone."""
    base = {"pyproject.toml": FIXING_PYPROJECT, "shop/legacy.py": LEGACY}
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, base_files=base)
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        touched = set(bare_git(stack, "log", "--format=", "--name-only", f"main..{head}").split())
        legacy_at_head = show(stack, head, "shop/legacy.py")
        issues = [i for i in stack.sandbox.driver.issues(REPO) if "pull_request" not in i]

    assert row.state == "ready", row.reason
    filed = {i["title"].split(":")[0]: i["state"] for i in issues}
    assert filed.get("F401 in shop/pricing.py") == "closed", filed  # filed, then fixed
    assert set(filed.values()) == {"closed"}
    assert fixes and all(f["merged_at"] is not None for f in fixes)
    assert touched == {"shop/pricing.py"}, "no commit of the loop touched another file"
    assert legacy_at_head == LEGACY


async def test_a_finding_ruff_cannot_fix_safely_goes_to_a_person_told_why(
    workdir: Path, e2e_db: str
) -> None:
    """SIM108 has only an unsafe fix: no `ruff-fix` task is spent on it; its issue goes to a
    person with one comment saying why, and its body promises no fix PR. The safe-fixable
    F401 beside it is fixed as usual."""
    base = {"pyproject.toml": STRICT_PYPROJECT}
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": TERNARY}, base_files=base)
        row = await wait_settled(stack, REPO, number)
        driver = stack.sandbox.driver
        issues = [i for i in driver.issues(REPO) if "pull_request" not in i]
        [sim] = [i for i in issues if i["title"].startswith("SIM108")]
        comments = [c["body"] for c in driver.comments(REPO, sim["number"])]
        tasks = await task_rows(stack, "issue_number, batch, agent")
        head = driver.pull(REPO, number)["head"]["sha"]
        at_head = show(stack, head, "shop/pricing.py")

    assert row.state == "needs-human", row.reason
    assert f"#{sim['number']} (ruff has no safe fix for SIM108" in (row.reason or "")
    assert sim["state"] == "open"
    assert "review-loop:needs-human" in [label["name"] for label in sim["labels"]]
    assert "will propose a fix" not in sim["body"]
    assert "no fix pull request will come: ruff has no safe fix for SIM108" in sim["body"]
    assert len(comments) == 1
    assert "ruff has no safe fix for SIM108 (only an unsafe one)" in comments[0]
    tasked = {n for t in tasks for n in (t["batch"] or [t["issue_number"]])}
    assert sim["number"] not in tasked, "no task was spent on it"
    assert "import os" not in at_head and "if member:" in at_head


async def test_a_failing_fix_is_explained_once_on_its_issue(workdir: Path, e2e_db: str) -> None:
    """An agent that fails twice: its issue gets one comment about the failure (reason, agent,
    its output collapsed), edited rather than repeated, and one saying it goes to a person;
    the summary lists the issue once under "Fixes that did not land"."""
    broken = write_agent(workdir, "broken", 'print("thinking very hard")\nsys.exit("gave up")\n')
    catalog = write_catalog(workdir, {"broken": broken})
    config = "routes:\n  - rule: F401\n    agent: broken\n"
    module = {"shop/pricing.py": MODULE}
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files=module, config=config)
        row = await wait_settled(stack, REPO, number)
        driver = stack.sandbox.driver
        [issue] = [i for i in driver.issues(REPO) if "pull_request" not in i]
        comments = [c["body"] for c in driver.comments(REPO, issue["number"])]
        [summary] = [
            c["body"] for c in driver.comments(REPO, number) if "### review-loop" in c["body"]
        ]
        tasks = await task_rows(stack)

    assert row.state == "needs-human", row.reason
    assert [t["status"] for t in tasks] == ["failed", "failed"]
    failures = [c for c in comments if "could not fix this" in c]
    assert len(failures) == 1, comments
    assert "(agent `broken`, failed): agent broken failed:" in failures[0]
    assert "<details><summary>The end of the agent's output</summary>" in failures[0]
    assert "gave up" in failures[0] and "thinking very hard" in failures[0]
    assert [c for c in comments if "to a person: failed twice" in c], comments
    assert len(comments) == 2
    not_landed = summary.split("Fixes that did not land:\n", 1)[1].split("\n\n", 1)[0]
    assert not_landed.splitlines() == [
        f"- #{issue['number']} `broken`: failed — agent broken failed: agent 'broken': exit code 1"
    ]


async def test_check_runs_count_and_annotate_open_findings_each_once(
    workdir: Path, e2e_db: str
) -> None:
    """A finding left to a person is annotated once on its commit's check run, however often
    the run is updated; once waived it is no longer counted, and the next commit's run
    neither counts nor annotates it."""
    base = {"pyproject.toml": STRICT_PYPROJECT}
    module = TERNARY.replace("import os\n\n\n", "")  # SIM108 alone: it goes to a person
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        number = await open_pr(stack, pr_files={"shop/pricing.py": module}, base_files=base)
        row = await wait_settled(stack, REPO, number)
        first_head = driver.pull(REPO, number)["head"]["sha"]
        before = run_of(driver, first_head)
        issues = [i for i in driver.issues(REPO) if "pull_request" not in i]
        [sim] = [i for i in issues if i["title"].startswith("SIM108")]
        await asyncio.to_thread(
            driver.set_issue_state, REPO, sim["number"], "closed", as_user=AUTHOR,
            reason="not_planned",
        )  # fmt: skip
        await poll(lambda: run_of(driver, first_head)["conclusion"] == "success", what="ready")
        waived = run_of(driver, first_head)
        second_head = await asyncio.to_thread(
            driver.push, REPO, "change", {"README.md": "# shop\n"}, as_user=AUTHOR
        )
        await poll(lambda: run_of(driver, second_head), what="the new commit's check run")
        await wait_settled(stack, REPO, number)
        after = run_of(driver, second_head)

    assert row.state == "needs-human", row.reason
    assert before["output"]["title"] == "Needs a human: 1 open finding"
    assert before["output"]["annotations_count"] == 1
    assert waived["output"]["title"] == "Ready for human review: no open findings"
    assert waived["output"]["annotations_count"] == 1, "sent once, never again"
    assert after["output"]["title"] == "Ready for human review: no open findings"
    assert after["output"]["annotations_count"] == 0, "a waived finding is not annotated"


def run_of(driver: Any, sha: str) -> Any:
    """The `review-loop` check run of commit `sha`, or None."""
    runs = [r for r in driver.check_runs(REPO, sha) if r["name"] == "review-loop"]
    return runs[-1] if runs else None


async def test_setup_output_is_kept_across_a_batch_and_never_committed(
    workdir: Path, e2e_db: str
) -> None:
    """`setup` makes a `.venv` the repository does not ignore, and the tests need it: both
    fixes of an inline batch pass their tests (nothing cleaned it away after the first), and
    no commit of the loop carries it."""
    make_venv = "import pathlib; pathlib.Path('.venv/bin').mkdir(parents=True); "
    make_venv += "pathlib.Path('.venv/bin/tool').write_text('x')"
    config = f'setup: {sys.executable} -c "{make_venv}"\ntest: test -f .venv/bin/tool\n'
    files = {"shop/pricing.py": MODULE, "shop/tax.py": MODULE.replace("Pricing", "Tax")}
    async with local_stack(workdir, database_url=e2e_db, fanout="inline") as stack:
        number = await open_pr(stack, pr_files=files, config=config)
        row = await wait_settled(stack, REPO, number)
        head = stack.sandbox.driver.pull(REPO, number)["head"]["sha"]
        touched = set(bare_git(stack, "log", "--format=", "--name-only", f"main..{head}").split())
        tasks = await task_rows(stack, "status, error, batch, issue_number, warm")

    assert row.state == "ready", (row.reason, tasks)
    assert len(tasks[0]["batch"]) == 2, "one task fixed both, one after the other"
    assert [t["error"] for t in tasks] == [None] * len(tasks), "no fix failed its tests"
    assert all(t["status"] == "merged" for t in tasks), tasks
    assert touched == {"shop/pricing.py", "shop/tax.py"}


async def test_one_rule_across_files_past_the_threshold_is_one_issue_and_one_fix(
    workdir: Path, e2e_db: str
) -> None:
    """Four files with an unused import and four with a formatting slip (threshold 3): one
    issue per rule listing the four files, one fix PR each, closed once the fixes landed."""
    files = {
        f"shop/m{n}.py": f'"""M{n}."""\n\nimport os\n\n\ndef f{n}() -> int:\n    return {n}\n'
        for n in range(4)
    }
    files |= {f"shop/s{n}.py": f'"""S{n}."""\n\nVALUE={n}\n' for n in range(4)}
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files=files)
        row = await wait_settled(stack, REPO, number)
        fixes = fix_pulls(stack, number)
        issues = [i for i in stack.sandbox.driver.issues(REPO) if "pull_request" not in i]

    assert row.state == "ready", row.reason
    titles = sorted(i["title"] for i in issues)
    assert titles == ["F401 in 4 files: 4 findings", "format in 4 files: 4 findings"], titles
    [issue] = [i for i in issues if i["title"].startswith("F401")]
    assert all(f"shop/m{n}.py" in issue["body"] for n in range(4))
    [slips] = [i for i in issues if i["title"].startswith("format")]
    assert all(f"shop/s{n}.py" in slips["body"] for n in range(4))
    assert {i["state"] for i in issues} == {"closed"}
    assert len(fixes) == 2  # one per issue, not one per file


async def test_findings_past_max_open_issues_wait_and_are_filed_as_fixes_close_others(
    workdir: Path, e2e_db: str
) -> None:
    """Five unused imports in five files with `max_open_issues: 2`: at most two issues are
    open at a time, the others are filed at later heads, and the loop still ends ready."""
    files = {f"shop/m{n}.py": f'"""M{n}."""\n\nimport os\n\nVALUE = {n}\n' for n in range(5)}
    config = "max_open_issues: 2\ngroup_threshold: 10\nauditors: [ruff]\n"
    async with local_stack(workdir, database_url=e2e_db) as stack:
        number = await open_pr(stack, pr_files=files, config=config)
        row = await wait_settled(stack, REPO, number)
        issues = [i for i in stack.sandbox.driver.issues(REPO) if "pull_request" not in i]

    assert row.state == "ready", row.reason
    assert sorted(i["title"].split(":")[0] for i in issues) == [
        f"F401 in shop/m{n}.py" for n in range(5)
    ]
    assert {i["state"] for i in issues} == {"closed"}
    filed_at = [parse_marker(i["body"])["sha"] for i in sorted(issues, key=lambda i: i["number"])]
    # Two at the PR's head, then the rest at heads the fixes made: never more than two open.
    assert filed_at[0] == filed_at[1] != filed_at[2]
    assert len(set(filed_at)) >= 3
