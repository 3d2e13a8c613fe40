"""Building blocks for end-to-end scenarios: a repository, a PR, scripted agents."""

import asyncio
import subprocess
import sys
import textwrap
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bot.demo.stack import LocalStack
from bot.sandbox import Driver

REPO = "acme/shop"
AUTHOR = "alice"

PYPROJECT = (
    '[project]\nname = "shop"\nversion = "0.1.0"\n\n'
    '[tool.ruff]\nline-length = 100\n\n[tool.ruff.lint]\nselect = ["E", "F", "I"]\n'
)


def write_agent(workdir: Path, name: str, body: str) -> list[str]:
    """A scripted command agent: a Python script run in the task's worktree."""
    script = workdir / f"{name}.py"
    script.write_text("import os, pathlib, sys, time\n" + textwrap.dedent(body))
    return [sys.executable, str(script)]


def write_catalog(workdir: Path, agents: dict[str, list[str]], timeout_s: float = 60) -> Path:
    lines = []
    for name, argv in agents.items():
        args = ", ".join(f'"{a}"' for a in argv)
        lines += [
            f"[agents.{name}]",
            'kind = "command"',
            f"argv = [{args}]",
            f"timeout_s = {timeout_s}",
            "",
        ]
    path = workdir / "agents.toml"
    path.write_text("\n".join(lines))
    return path


async def open_pr(
    stack: LocalStack,
    *,
    pr_files: dict[str, str],
    base_files: dict[str, str] | None = None,
    config: str | None = None,
    title: str = "A change",
    body: str = "",
    settings: Callable[[Driver], None] | None = None,
) -> int:
    """Create the repository (config on its default branch), push a branch, let `settings`
    change what the repository's Settings page would, open a PR."""
    driver = stack.sandbox.driver
    files = {"pyproject.toml": PYPROJECT, "shop/__init__.py": '"""Shop."""\n'}
    files.update(base_files or {})
    if config is not None:
        files[".github/review-loop.yml"] = config

    def setup() -> int:
        driver.create_user(AUTHOR)
        driver.create_org("acme")
        driver.create_repo(REPO, files, author=AUTHOR)
        driver.set_permission(REPO, AUTHOR, "write")
        driver.install_app("acme", sender=AUTHOR)
        driver.push(REPO, "change", dict(pr_files), as_user=AUTHOR, message="A change")
        if settings is not None:  # after the push: a protected branch refuses a writer's
            settings(driver)
        pr: dict[str, Any] = driver.open_pr(REPO, "change", as_user=AUTHOR, title=title, body=body)
        return int(pr["number"])

    return await asyncio.to_thread(setup)


async def poll(predicate: Any, *, timeout: float = 120, what: str = "condition") -> Any:
    """Wait until `predicate()` (run in a thread) returns something truthy; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await asyncio.to_thread(predicate)
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


async def poll_async(
    predicate: Callable[[], Awaitable[Any]], *, timeout: float = 120, what: str = "condition"
) -> Any:
    """Wait until `await predicate()` returns something truthy; return it."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        value = await predicate()
        if value:
            return value
        await asyncio.sleep(0.2)
    raise AssertionError(f"timed out waiting for {what}")


def bare_git(stack: LocalStack, *args: str) -> str:
    """git in the sandbox's bare repository of REPO (what GitHub holds); its stdout."""
    out = subprocess.run(
        ["git", *args], cwd=_bare(stack), capture_output=True, text=True, check=True
    )
    return out.stdout


def _bare(stack: LocalStack) -> Path:
    return stack.sandbox.hub.store.repos_dir / f"{REPO}.git"


def show(stack: LocalStack, ref: str, path: str) -> str:
    """A file as it is at `ref` in the sandbox repository."""
    return bare_git(stack, "show", f"{ref}:{path}")


def fix_pulls(stack: LocalStack, number: int) -> list[dict[str, Any]]:
    """The fix PRs the bot opened for PR `number`, in every state."""
    return [
        p
        for p in stack.sandbox.driver.pulls(REPO, "all")
        if p["head"]["ref"].startswith(f"review-loop/pr-{number}/")
    ]


def fix_pr_checks(stack: LocalStack, fix: dict[str, Any]) -> list[dict[str, Any]]:
    """The fix PR's own check runs (its audit of the lines the fix changed) on its head. A
    fix that landed by a fast-forward has its head at the PR's head, where the PR's own
    verdict is posted too; that one is not the fix PR's. (Both are upserts by name and
    commit: the PR's verdict replaces a fix PR's run posted there before.)"""
    runs = stack.sandbox.driver.check_runs(REPO, fix["head"]["sha"])
    return [r for r in runs if "this fix changed" in (r["output"]["summary"] or "")]


def landed_over_git(stack: LocalStack, fix: dict[str, Any], pr_number: int) -> bool:
    """Whether fix PR `fix` landed with no merge request: GitHub marked it merged by the
    bot's push, its head in the PR branch's history."""
    driver = stack.sandbox.driver
    if merge_answers(driver, fix["number"]):
        return False
    head = driver.pull(REPO, pr_number)["head"]["sha"]
    contained = subprocess.run(
        ["git", "merge-base", "--is-ancestor", fix["head"]["sha"], head],
        cwd=_bare(stack),
        check=False,
    )
    return bool(fix["merged_at"]) and contained.returncode == 0


def merge_answers(driver: Driver, fix_number: int) -> list[int]:
    """The statuses GitHub answered the bot's merges of fix PR `fix_number` with, in order."""
    path = f"/repos/{REPO}/pulls/{fix_number}/merge"
    return [r["status"] for r in driver.requests() if r["method"] == "PUT" and r["path"] == path]


def task_branches(stack: LocalStack, number: int) -> dict[str, str]:
    """The bot's task branches for PR `number` that the sandbox holds: name -> sha."""
    prefix = f"refs/heads/review-loop/pr-{number}/"
    listed = bare_git(stack, "for-each-ref", "--format=%(refname) %(objectname)", prefix)
    return {
        ref.removeprefix("refs/heads/"): sha
        for ref, sha in (line.split() for line in listed.splitlines())
    }


async def task_rows(stack: LocalStack, columns: str = "status, error") -> list[dict[str, Any]]:
    """`columns` of every fix task, oldest first."""
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            f"SELECT {columns} FROM review_loop_tasks ORDER BY id"  # noqa: S608 - tests' own
        )
        return list(await cur.fetchall())
