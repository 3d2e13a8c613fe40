"""One benchmark point: a repository with N unused imports in N files, a sleeping fixer.

The fixer is a real subprocess command agent from an agents catalog: it reads its brief on
stdin, sleeps `t` seconds, then removes the flagged `import os` from each file the brief
names. The repository's `setup` command is `sleep s`. Each finding sits in its own file, so
parallel fixes never conflict.
"""

import asyncio
import json
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from bot.demo.stack import LocalStack, wait_settled

REPO = "acme/bench"
AUTHOR = "alice"
AGENT = "sleeper"
MODES = ("parallel", "inline", "auto")  # forced ones first: auto plans with their costs

PYPROJECT = (
    '[project]\nname = "bench"\nversion = "0.1.0"\n\n'
    '[tool.ruff]\nline-length = 100\n\n[tool.ruff.lint]\nselect = ["E", "F", "I"]\n'
)

AGENT_SCRIPT = textwrap.dedent(
    '''\
    """Sleep for argv[1] seconds, then remove `import os` from the files the brief names."""
    import pathlib
    import re
    import sys
    import time

    brief = sys.stdin.read()
    time.sleep(float(sys.argv[1]))
    for path in sorted(set(re.findall(r"F401 in `([^`]+)`", brief))):
        target = pathlib.Path(path)
        target.write_text(target.read_text().replace("import os\\n\\n", "", 1))
    '''
)


def module(k: int, tag: str) -> str:
    """A file with one F401 finding; `tag` makes each PR's commit distinct."""
    return f'"""Module {k} ({tag})."""\n\nimport os\n\n\ndef f{k}() -> str:\n    return "ok"\n'


def repo_config(setup_s: float) -> str:
    return (
        "routes:\n"
        "  - rule: F401\n"
        f"    agent: {AGENT}\n"
        "group_threshold: 1000\n"
        "max_parallel: 64\n"
        "max_rounds: 3\n"
        f'setup: "sleep {setup_s:g}"\n'
    )


def write_catalog(workdir: Path, run_s: float) -> Path:
    """The operator's agents catalog with the one sleeping agent."""
    script = workdir / "sleeper.py"
    script.write_text(AGENT_SCRIPT)
    argv = [sys.executable, str(script), f"{run_s:g}"]
    catalog = workdir / "agents.toml"
    catalog.write_text(
        f"[agents.{AGENT}]\n"
        'kind = "command"\n'
        f"argv = [{', '.join(json.dumps(a) for a in argv)}]\n"
        "timeout_s = 120\n"
    )
    return catalog


@dataclass(frozen=True)
class TaskTiming:
    id: int
    round: int
    status: str
    issues: int
    warm: bool
    spawn_s: float | None
    run_s: float | None
    created: float  # epoch seconds
    updated: float


@dataclass(frozen=True)
class RunResult:
    """One PR through the loop under one fan-out mode."""

    mode: str
    state: str
    width: int  # tasks the planner made in round 1
    planned_t: float
    planned_s: float
    explain: str
    makespan_s: float  # round 1: first task queued -> last task finished
    open_to_settled_s: float
    open_to_queued_s: float
    writes: int  # content-creating GitHub requests the bot sent for this PR
    throttle_wait_s: float  # seconds those writes waited in the bot's write throttle
    tasks: list[TaskTiming]

    @property
    def clean(self) -> bool:
        """One round, every task merged, the PR ready: the makespan measures what it says."""
        first = [t for t in self.tasks if t.round == 1]
        return (
            self.state == "ready"
            and all(t.status == "merged" for t in first)
            and all(t.round == 1 for t in self.tasks)
        )


async def create_repo(stack: LocalStack, setup_s: float) -> None:
    driver = stack.sandbox.driver

    def make() -> None:
        driver.create_user(AUTHOR)
        driver.create_org("acme")
        files = {
            "pyproject.toml": PYPROJECT,
            "pkg/__init__.py": '"""Bench."""\n',
            ".github/review-loop.yml": repo_config(setup_s),
        }
        driver.create_repo(REPO, files, author=AUTHOR)
        driver.set_permission(REPO, AUTHOR, "write")
        driver.install_app("acme", sender=AUTHOR)

    await asyncio.to_thread(make)


def set_fanout(stack: LocalStack, mode: str) -> None:
    """Switch the fan-out mode between PRs of one stack (one database, one cost table)."""
    runtime = stack.runtime
    runtime.settings = runtime.settings.model_copy(update={"fanout": mode})


async def run_pr(stack: LocalStack, mode: str, n: int, timeout_s: float) -> RunResult:
    """Open a PR with `n` findings under fan-out `mode`, wait until it is ready, measure."""
    set_fanout(stack, mode)
    driver = stack.sandbox.driver
    branch = f"change-{mode}"
    files = {f"pkg/f{k}.py": module(k, mode) for k in range(1, n + 1)}

    def push() -> None:
        driver.push(REPO, branch, dict(files), as_user=AUTHOR, message=f"{n} modules")

    await asyncio.to_thread(push)
    writes_before, waited_before = _throttle(stack)
    opened = time.time()
    pr: dict[str, Any] = await asyncio.to_thread(
        driver.open_pr, REPO, branch, as_user=AUTHOR, title=f"{n} modules ({mode})"
    )
    number = int(pr["number"])
    row = await wait_settled(stack, REPO, number, timeout=timeout_s)
    settled = time.time()
    writes_after, waited_after = _throttle(stack)
    tasks = await _tasks(stack, number)
    plan = await _plan(stack, number)
    first = [t for t in tasks if t.round == 1]
    makespan = max(t.updated for t in first) - min(t.created for t in first) if first else 0.0
    return RunResult(
        mode=mode,
        state=row.state,
        width=len(first),
        planned_t=float(plan["t"]) if plan else 0.0,
        planned_s=float(plan["s"]) if plan else 0.0,
        explain=str(plan["explain"]) if plan else "",
        makespan_s=makespan,
        open_to_settled_s=settled - opened,
        open_to_queued_s=(min(t.created for t in first) - opened) if first else 0.0,
        writes=writes_after - writes_before,
        throttle_wait_s=waited_after - waited_before,
        tasks=tasks,
    )


def _throttle(stack: LocalStack) -> tuple[int, float]:
    """Writes sent and seconds waited so far, over every installation of the bot."""
    stats = stack.runtime.github.throttles.stats().values()
    return sum(s.writes for s in stats), sum(s.waited_s for s in stats)


async def costs(stack: LocalStack) -> tuple[float, float, int] | None:
    """The measured (spawn_s, run_s, samples) the planner will use for the agent."""
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            "SELECT spawn_s, run_s, samples FROM review_loop_costs WHERE repo = %s AND agent = %s",
            (REPO, AGENT),
        )
        row = await cur.fetchone()
    return None if row is None else (row["spawn_s"], row["run_s"], row["samples"])


async def _tasks(stack: LocalStack, number: int) -> list[TaskTiming]:
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, round, status, cardinality(batch) AS batch, warm, spawn_s, run_s,
                      extract(epoch FROM created_at)::float8 AS created,
                      extract(epoch FROM updated_at)::float8 AS updated
                 FROM review_loop_tasks WHERE repo = %s AND pr_number = %s ORDER BY id""",
            (REPO, number),
        )
        rows = await cur.fetchall()
    return [
        TaskTiming(
            id=r["id"],
            round=r["round"],
            status=r["status"],
            issues=max(1, r["batch"]),
            warm=r["warm"],
            spawn_s=r["spawn_s"],
            run_s=r["run_s"],
            created=r["created"],
            updated=r["updated"],
        )
        for r in rows
    ]


async def _plan(stack: LocalStack, number: int) -> dict[str, Any] | None:
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT t, s, width, explain FROM review_loop_plans
                WHERE repo = %s AND pr_number = %s AND agent = %s ORDER BY round LIMIT 1""",
            (REPO, number, AGENT),
        )
        row = await cur.fetchone()
    return None if row is None else dict(row)
