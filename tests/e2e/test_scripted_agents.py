"""Scripted agents prove the guard rails: verification, oscillation, isolation, human issues."""

import os
import signal
import subprocess
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.github.markers import parse_marker
from tests.e2e.scenario import (
    AUTHOR,
    REPO,
    open_pr,
    poll,
    show,
    task_rows,
    write_agent,
    write_catalog,
)

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'


def remote_branches(stack, prefix: str = "review-loop/") -> dict[str, str]:  # type: ignore[no-untyped-def]
    url = stack.sandbox.driver.remote_url(REPO, AUTHOR)
    out = subprocess.run(["git", "ls-remote", url], capture_output=True, text=True, check=True)
    refs = {}
    for line in out.stdout.splitlines():
        sha, ref = line.split()
        if ref.startswith("refs/heads/" + prefix):
            refs[ref.removeprefix("refs/heads/")] = sha
    return refs


def host_pid(argv: list[str]) -> int:
    """The pid, as this process sees it, of the running program started as `argv`. A fixer
    runs in a PID namespace of its own where the OS allows (bot/process.py), where its
    os.getpid() is 1: a number that names another process out here."""
    for entry in Path("/proc").iterdir():
        try:
            args = [os.fsdecode(a) for a in (entry / "cmdline").read_bytes().split(b"\0")[:-1]]
        except OSError:
            continue  # not a process, or it exited meanwhile
        if len(args) == len(argv) and args[1:] == argv[1:]:  # `unshare`'s own has more
            return int(entry.name)
    raise AssertionError(f"no process runs {argv}")


async def test_agent_that_adds_a_finding_is_never_pushed(workdir: Path, e2e_db: str) -> None:
    """A fix that removes its finding but adds another is refused: no branch, no fix PR."""
    sloppy = write_agent(
        workdir,
        "sloppy",
        """
        p = pathlib.Path("shop/pricing.py")
        p.write_text(p.read_text().replace("import os", "import sys"))
    """,
    )
    catalog = write_catalog(workdir, {"sloppy": sloppy})
    config = "routes:\n  - rule: F401\n    agent: sloppy\n"
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=config)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "needs-human"
        assert "failed twice" in (row.reason or "")
        assert remote_branches(stack) == {}
        pulls = stack.sandbox.driver.pulls(REPO, "all")
        assert [p["number"] for p in pulls] == [number]
        tasks = await task_rows(stack)
        assert [t["status"] for t in tasks] == ["refused", "refused"]
        assert all("adds a new finding" in t["error"] for t in tasks)


async def test_oscillating_fixes_stop_in_needs_human(workdir: Path, e2e_db: str) -> None:
    """Two agents undoing each other: the finding that comes back stops the loop, and the
    summary says why."""
    flip = write_agent(
        workdir,
        "flip",
        """
        p = pathlib.Path("shop/pricing.py")
        p.write_text(p.read_text().replace("import os\\n\\n\\n", "").replace('"ok"', "'ok'"))
    """,
    )
    flop = write_agent(
        workdir,
        "flop",
        """
        p = pathlib.Path("shop/pricing.py")
        text = p.read_text().replace("'ok'", '"ok"')
        doc = chr(34) * 3 + "Pricing." + chr(34) * 3 + "\\n\\n"
        p.write_text(text.replace(doc, doc + "import os\\n\\n\\n"))
    """,
    )
    catalog = write_catalog(workdir, {"flip": flip, "flop": flop})
    config = (
        "routes:\n  - rule: F401\n    agent: flip\n  - analyzer: ruff-format\n    agent: flop\n"
    )
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config=config)
        row = await wait_settled(stack, REPO, number)
        assert row.state == "needs-human"
        assert "came back after it had been fixed" in (row.reason or "")
        comments = stack.sandbox.driver.comments(REPO, number)
        summary = [c for c in comments if (parse_marker(c["body"]) or {}).get("kind") == "summary"]
        assert len(summary) == 1
        assert "came back after it had been fixed" in summary[0]["body"]
        labels = {lbl["name"] for lbl in stack.sandbox.driver.pull(REPO, number)["labels"]}
        assert "review-loop:needs-human" in labels


async def test_parallel_fixers_are_isolated_and_a_killed_one_keeps_its_partial_work(
    workdir: Path, e2e_db: str
) -> None:
    """Two fixers run at once in different worktrees; killing one leaves the other's fix
    merged and the killed one's partial work on its own branch."""
    cwd_log, first_run = workdir / "cwds", workdir / "ran-once"
    slow = write_agent(
        workdir,
        "slowpoke",
        f"""
        with open({str(cwd_log)!r}, "a") as f:
            f.write(os.getcwd() + "\\n")
        p = pathlib.Path("shop/pricing.py")
        p.write_text(p.read_text().replace("import os\\n\\n", ""))
        if not os.path.exists({str(first_run)!r}):
            open({str(first_run)!r}, "w").close()
            time.sleep(120)
    """,
    )
    fmt = write_agent(
        workdir,
        "formatter",
        f"""
        with open({str(cwd_log)!r}, "a") as f:
            f.write(os.getcwd() + "\\n")
        import subprocess
        subprocess.run([sys.executable, "-m", "ruff", "format", "--no-cache", "."], check=True)
    """,
    )
    catalog = write_catalog(workdir, {"slowpoke": slow, "formatter": fmt})
    config = (
        "routes:\n  - rule: F401\n    agent: slowpoke\n"
        "  - analyzer: ruff-format\n    agent: formatter\n"
    )
    files = {"shop/pricing.py": MODULE, "shop/tax.py": '"""Tax."""\n\nx=1\n'}
    async with local_stack(workdir, database_url=e2e_db, agents_file=catalog) as stack:
        number = await open_pr(stack, pr_files=files, config=config)
        await poll(first_run.exists, what="the slow agent to start")
        driver = stack.sandbox.driver

        def formatter_merged() -> bool:
            return any(
                p.get("merged_at") and "tax.py" in p["title"] for p in driver.pulls(REPO, "all")
            )

        await poll(formatter_merged, what="the formatter's fix to be merged")
        os.kill(host_pid(slow), signal.SIGKILL)

        def partial_labelled() -> bool:
            return any(
                "review-loop:partial" in {lbl["name"] for lbl in i["labels"]}
                for i in driver.issues(REPO, "all")
            )

        await poll(partial_labelled, what="the killed task's issue to be labelled partial")
        branches = remote_branches(stack)
        slow_branch = next(b for b in branches if b.startswith(f"review-loop/pr-{number}/"))
        partial = show(stack, branches[slow_branch], "shop/pricing.py")
        assert "import os" not in partial  # the edit made before the kill is on its branch
        pr_head = driver.pull(REPO, number)["head"]["ref"]
        assert show(stack, pr_head, "shop/tax.py") == '"""Tax."""\n\nx = 1\n'
        row = await wait_settled(stack, REPO, number)
        assert row.state == "ready"  # the retry resumed and finished
        killed = [t for t in await task_rows(stack, "agent, error") if t["error"]]
        assert [t["agent"] for t in killed] == ["slowpoke"]
        assert "timed out" not in killed[0]["error"]  # the kill ended it, not its timeout
    cwds = cwd_log.read_text().split()
    assert len(cwds) == 3 and len(set(cwds)) == 3
    assert all("/task-" in c for c in cwds)


async def test_human_filed_issue_labelled_for_an_agent_gets_a_fix_pr_to_the_default_branch(
    workdir: Path, e2e_db: str
) -> None:
    """A person's issue labelled `agent:ruff-fix` becomes a fix PR against the default
    branch, and that PR then runs the loop."""
    base = {"shop/pricing.py": MODULE}
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver

        def setup() -> int:
            driver.create_user(AUTHOR)
            driver.create_org("acme")
            driver.create_repo(REPO, {"pyproject.toml": _pyproject(), **base}, author=AUTHOR)
            driver.set_permission(REPO, AUTHOR, "write")
            driver.install_app("acme", sender=AUTHOR)
            issue = driver.file_issue(
                REPO,
                "Unused import in pricing",
                as_user=AUTHOR,
                body="shop/pricing.py imports os and never uses it.",
            )
            driver.add_label(REPO, issue["number"], "agent:ruff-fix", as_user=AUTHOR)
            return int(issue["number"])

        import asyncio

        issue = await asyncio.to_thread(setup)

        def fix_pr() -> dict | None:  # type: ignore[type-arg]
            for p in driver.pulls(REPO, "all"):
                if p["head"]["ref"] == f"review-loop/default/{issue}":
                    return p
            return None

        pr = await poll(fix_pr, what="a fix PR for the person's issue")
        assert pr["base"]["ref"] == "main"
        assert f"Fixes #{issue}" in pr["body"]
        assert "import os" not in show(stack, pr["head"]["sha"], "shop/pricing.py")
        row = await wait_settled(stack, REPO, pr["number"])
        assert row.state == "ready"
        assert driver.pull(REPO, pr["number"])["merged_at"] is None  # never merged into main


def _pyproject() -> str:
    from tests.e2e.scenario import PYPROJECT

    return PYPROJECT
