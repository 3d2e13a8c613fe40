"""Many worker processes share one database: no issue is handled twice, none is lost, and a
killed worker's half-done task is finished by another without redoing its work."""

import contextlib
import os
import signal
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import LocalStack, local_stack, wait_settled
from bot.github.markers import parse_marker
from bot.labels import FINDING_LABEL
from tests.e2e.scenario import REPO, poll, write_catalog
from tests.e2e.worker_processes import (
    FILES_PER_PR,
    AgentRun,
    Worker,
    agent_runs,
    bare_git,
    fix_commits,
    open_prs,
    recording_agent,
    worker_processes,
)

pytestmark = [pytest.mark.server_db, pytest.mark.slow]

CONFIG = "group_threshold: 100\nroutes:\n  - rule: F401\n    agent: recorder\n"


async def test_three_workers_fix_six_prs_each_issue_exactly_once(
    workdir: Path, scale_db: str
) -> None:
    """Three worker processes fix 6 PRs x 5 findings: every PR ends ready, every issue is
    fixed by exactly one agent run in one merged task, each task in its own worktree, and
    one PR's tasks ran on different workers at the same time."""
    log = workdir / "agent-runs.jsonl"
    catalog = write_catalog(workdir, {"recorder": recording_agent(workdir, log, 0.5)})
    settings: dict[str, Any] = {
        "heartbeat_s": 1.0,
        "stalled_after_s": 20.0,
        "reaper_interval_s": 2.0,
        "worker_concurrency": 4,
        "fanout": "parallel",
    }
    async with local_stack(
        workdir, database_url=scale_db, workers=0, agents_file=catalog, **settings
    ) as stack:
        with worker_processes(stack, workdir, scale_db, 3, **settings) as workers:
            numbers = await open_prs(stack, 6, CONFIG)  # 30 tasks on 12 slots: contention
            rows = [
                await wait_settled(stack, REPO, n, timeout=400, on_progress=alive(workers))
                for n in numbers
            ]
            tasks = await task_rows(stack)
            issues = finding_issues(stack)
            commits = {n: fix_commits(stack, pull_head(stack, n)) for n in numbers}
        data_dirs = [str(w.data_dir) for w in workers]

    assert [r.state for r in rows] == ["ready"] * len(numbers)
    assert len(issues) == len(numbers) * FILES_PER_PR
    assert all(i["state"] == "closed" for i in issues.values())

    merged = [t for t in tasks if t["status"] == "merged"]
    fixed_by_merged = Counter(n for t in merged for n in t["fixed"])
    twice = [t for t in merged if any(fixed_by_merged[n] > 1 for n in t["fixed"])]
    assert not twice, f"issues fixed by two merged tasks: {twice}"
    assert set(fixed_by_merged) == set(issues), "no issue lost"
    for number in numbers:
        mine = [n for n, i in issues.items() if i["pr"] == number]
        fixed_here = [issue for issue, _ in commits[number]]
        assert sorted(fixed_here) == sorted(mine), f"one fix commit per issue on #{number}"

    runs = agent_runs(log)
    assert all(r.ended is not None for r in runs)
    paths = Counter(p for r in runs for p in r.paths)
    assert len(paths) == len(issues) and set(paths.values()) == {1}, "one agent run per finding"
    # Agents run in their own PID namespace (their parent pid is 0 there): the worker that
    # ran one is the one whose data directory holds its worktree.
    assert all(any(r.cwd.startswith(d) for d in data_dirs) for r in runs)
    ran_on = {r: next(d for d in data_dirs if r.cwd.startswith(d)) for r in runs}
    # One worktree per task: as many distinct directories as tasks that ran an agent, and
    # no two agents running at the same time ever shared one.
    assert len({r.cwd for r in runs}) == len(merged)
    assert all(Path(r.cwd).name.startswith("task-") for r in runs)
    assert not [(a, b) for a, b in pairs(runs) if a.cwd == b.cwd and a.overlaps(b)]
    spread = [
        number
        for number in numbers
        if any(
            ran_on[a] != ran_on[b] and a.overlaps(b)
            for a, b in pairs([r for r in runs if pr_of(r) == numbers.index(number)])
        )
    ]
    assert spread, "some PR's tasks ran on two workers at once"
    print(
        f"\n{len(numbers)} PRs, {len(issues)} issues, {len(tasks)} tasks "
        f"({Counter(t['status'] for t in tasks)}), {len(runs)} agent runs on "
        f"{len(set(ran_on.values()))} workers "
        f"({Counter(ran_on.values())}), rounds {Counter(r.round for r in rows)}, "
        f"{len(spread)} PRs ran on two workers at once"
    )


async def test_killed_worker_batch_is_resumed_without_redoing_pushed_fixes(
    workdir: Path, scale_db: str
) -> None:
    """A worker killed after its inline batch pushed some fixes: another worker's reaper
    retries the task, which resumes from the branch and runs the agent only for the rest."""
    log = workdir / "agent-runs.jsonl"
    catalog = write_catalog(workdir, {"recorder": recording_agent(workdir, log, 1.5)})
    settings: dict[str, Any] = {
        "heartbeat_s": 0.5,
        "stalled_after_s": 4.0,
        "reaper_interval_s": 1.0,
        "worker_concurrency": 2,
        "fanout": "inline",
    }
    async with local_stack(
        workdir, database_url=scale_db, workers=0, agents_file=catalog, **settings
    ) as stack:
        with worker_processes(stack, workdir, scale_db, 2, **settings) as workers:
            [number] = await open_prs(stack, 1, CONFIG)

            def pushed() -> list[tuple[int, list[str]]]:
                return [c for ref in fix_branches(stack, number) for c in fix_commits(stack, ref)]

            await poll(pushed, timeout=300, what="the batch's first pushed fix")
            victim = next(w for w in workers if w.ran(agent_runs(log)[-1]))
            victim.proc.send_signal(signal.SIGKILL)
            victim.proc.wait()
            kill_orphaned_agents(victim)
            before_kill = pushed()
            survivors = [w for w in workers if w is not victim]
            row = await wait_settled(stack, REPO, number, timeout=300, on_progress=alive(survivors))
            [task] = await task_rows(stack)
            issues = finding_issues(stack)
            after = fix_commits(stack, pull_head(stack, number))

    assert row.state == "ready"
    assert 1 <= len(before_kill) < FILES_PER_PR, "killed in the middle of the batch"
    assert task["status"] == "merged" and task["attempts"] >= 2
    assert sorted(task["fixed"]) == sorted(issues) and len(issues) == FILES_PER_PR
    assert all(i["state"] == "closed" for i in issues.values())
    assert sorted(n for n, _ in after) == sorted(issues), "one fix commit per issue"
    runs = agent_runs(log)
    for _, files in before_kill:
        [run] = [r for r in runs if set(r.paths) & set(files)]
        assert victim.ran(run), "a fix pushed before the kill is not redone"
    redone = [r for r in runs if not victim.ran(r)]
    assert len(redone) == FILES_PER_PR - len(before_kill)
    assert all(r.ended is not None for r in redone)
    print(
        f"\nkilled worker {victim.pid} after {len(before_kill)} of {FILES_PER_PR} fixes; "
        f"task attempts {task['attempts']}; agent runs {len(runs)} "
        f"({len(redone)} by the successor)"
    )


def alive(workers: list[Worker]) -> Any:
    """An on_progress check for wait_settled: fail at once when a worker process died."""

    async def check() -> None:
        for w in workers:
            if w.proc.poll() is not None:
                raise AssertionError(f"worker {w.pid} exited with {w.proc.returncode}")

    return check


def kill_orphaned_agents(victim: Worker) -> None:
    """Agents run in their own session and outlive a killed worker: stop the ones it left,
    found by their working directory (one started just before the kill may not have logged
    its start yet)."""
    inside = f"{victim.data_dir.resolve()}{os.sep}"
    for proc in Path("/proc").iterdir():
        if not proc.name.isdigit():
            continue
        with contextlib.suppress(OSError):
            if os.readlink(proc / "cwd").startswith(inside):
                os.kill(int(proc.name), signal.SIGKILL)


def pairs(runs: list[AgentRun]) -> list[tuple[AgentRun, AgentRun]]:
    return [(a, b) for i, a in enumerate(runs) for b in runs[i + 1 :]]


def pr_of(run: AgentRun) -> int:
    """The index of the PR whose files the run fixed (files are named `pr<i>_m<k>.py`)."""
    [index] = {int(Path(p).name.split("_")[0].removeprefix("pr")) for p in run.paths}
    return index


def pull_head(stack: LocalStack, number: int) -> str:
    return str(stack.sandbox.driver.pull(REPO, number)["head"]["sha"])


def fix_branches(stack: LocalStack, number: int) -> list[str]:
    prefix = f"refs/heads/review-loop/pr-{number}/"
    return bare_git(stack, "for-each-ref", "--format=%(refname)", prefix).split()


def finding_issues(stack: LocalStack) -> dict[int, dict[str, Any]]:
    """The finding issues: number -> state and the PR they belong to."""
    out = {}
    for issue in stack.sandbox.driver.issues(REPO, "all"):
        if FINDING_LABEL in {label["name"] for label in issue["labels"]}:
            marker = parse_marker(issue["body"]) or {}
            out[int(issue["number"])] = {"state": issue["state"], "pr": marker.get("pr")}
    return out


async def task_rows(stack: LocalStack) -> list[dict[str, Any]]:
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(
            """SELECT id, pr_number, status, fixed, batch, issue_number, attempts, error
                 FROM review_loop_tasks ORDER BY id"""
        )
        return list(await cur.fetchall())
