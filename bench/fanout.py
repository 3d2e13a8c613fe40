"""`make bench-fanout`: is the planner's fan-out choice the fast one?

For each point (N findings, agent time t, setup time s) one PR runs the loop under forced
parallel fan-out, one under forced inline, then one under the planner's choice ("auto"),
all against one repository in one fresh database, so the planner plans with the costs the
forced runs just measured. Everything is real: the sandbox GitHub over HTTP, git mirrors and
worktrees, subprocess agents, PostgreSQL.
"""

import argparse
import asyncio
import contextlib
import logging
import os
import shutil
import statistics
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import psycopg

from bench.scenario import MODES, RunResult, costs, create_repo, run_pr, write_catalog
from bot.demo.stack import local_stack

SERVER_URL_VAR = "REVIEW_LOOP_TEST_DATABASE_URL"


@dataclass(frozen=True)
class Sweep:
    n: tuple[int, ...]
    t: tuple[float, ...]
    s: float


FULL = Sweep(n=(2, 4, 6), t=(0.5, 1.0, 3.0), s=3.0)
QUICK = Sweep(n=(2, 6), t=(0.5, 3.0), s=3.0)


@dataclass(frozen=True)
class Point:
    n: int
    t: float
    s: float
    runs: dict[str, RunResult]
    costs_seen: tuple[float, float, int] | None  # what auto planned with

    @property
    def best_forced(self) -> float:
        return min(self.runs["parallel"].makespan_s, self.runs["inline"].makespan_s)

    @property
    def ratio(self) -> float:
        return self.runs["auto"].makespan_s / self.best_forced

    @property
    def choice(self) -> str:
        return "parallel" if self.runs["auto"].width > 1 else "inline"


@contextlib.contextmanager
def database_server(root: Path) -> Iterator[str]:
    """An admin URL: the PostgreSQL server of REVIEW_LOOP_TEST_DATABASE_URL, else the embedded
    wheel started in `root` (stopped at the end)."""
    url = os.environ.get(SERVER_URL_VAR)
    if url:
        yield url
        return
    from bot.engine.database import embedded_url, stop_embedded

    try:
        yield embedded_url(root / "pg")
    finally:
        stop_embedded(root / "pg")


@contextlib.contextmanager
def fresh_database(admin_url: str) -> Iterator[str]:
    name = f"rl_bench_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield psycopg.conninfo.make_conninfo(admin_url, dbname=name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


# The bench measures fan-out, not GitHub's secondary limits: with the production limits (80
# writes a minute per installation) the third PR of a point waits for the writes of the first
# two. `--write-limits` keeps them.
LIFTED_WRITE_LIMITS = {"writes_per_minute": 100_000, "writes_per_hour": 1_000_000}


async def run_point(
    admin_url: str,
    root: Path,
    n: int,
    t: float,
    s: float,
    *,
    write_limits: bool = False,
    prewarm: bool = True,
) -> Point:
    workdir = root / f"n{n}-t{t:g}-s{s:g}"
    workdir.mkdir(parents=True)
    catalog = write_catalog(workdir, t)
    runs: dict[str, RunResult] = {}
    seen = None
    with fresh_database(admin_url) as url:
        async with local_stack(
            workdir,
            database_url=url,
            agents_file=catalog,
            worker_concurrency=n + 2,  # N fix tasks plus the reconciles: parallel is not capped
            fanout=MODES[0],
            prewarm=prewarm,
            **({} if write_limits else LIFTED_WRITE_LIMITS),
        ) as stack:
            await create_repo(stack, s)
            for mode in MODES:
                if mode == "auto":
                    seen = await costs(stack)
                runs[mode] = await run_pr(stack, mode, n, timeout_s=120 + 3 * n * (t + s))
    return Point(n, t, s, runs, seen)


def _fmt(x: float) -> str:
    return f"{x:.2f}"


def render(points: list[Point]) -> str:
    lines = [
        "| N | t (s) | s (s) | (N-1)*t vs s | planner saw s / t | planner choice "
        "| auto (s) | parallel (s) | inline (s) | auto / best forced |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for p in points:
        lhs = (p.n - 1) * p.t
        rel = ">" if lhs > p.s else "<="
        auto = p.runs["auto"]
        flags = "" if all(r.clean for r in p.runs.values()) else " (!)"
        lines.append(
            f"| {p.n} | {p.t:g} | {p.s:g} | {lhs:g} {rel} {p.s:g} "
            f"| {_fmt(auto.planned_s)} / {_fmt(auto.planned_t)} | {p.choice} "
            f"| {_fmt(auto.makespan_s)} | {_fmt(p.runs['parallel'].makespan_s)} "
            f"| {_fmt(p.runs['inline'].makespan_s)} | {p.ratio:.3f}{flags} |"
        )
    return "\n".join(lines)


def render_end_to_end(points: list[Point]) -> str:
    lines = [
        "| N | t (s) | open -> tasks queued (s) | open -> settled: auto / parallel / inline (s) "
        "| GitHub writes: auto / parallel / inline | throttle wait (s) |",
        "|---|---|---|---|---|---|",
    ]
    for p in points:
        r = p.runs
        queued = statistics.mean(x.open_to_queued_s for x in r.values())
        lines.append(
            f"| {p.n} | {p.t:g} | {_fmt(queued)} | {_fmt(r['auto'].open_to_settled_s)} / "
            f"{_fmt(r['parallel'].open_to_settled_s)} / {_fmt(r['inline'].open_to_settled_s)} "
            f"| {r['auto'].writes} / {r['parallel'].writes} / {r['inline'].writes} "
            f"| {_fmt(sum(x.throttle_wait_s for x in r.values()))} |"
        )
    return "\n".join(lines)


def prewarm_figures(points: list[Point]) -> tuple[list[float], list[float]]:
    """spawn_s of every task that claimed a warm worktree, and of every cold spawn."""
    warm: list[float] = []
    cold: list[float] = []
    for p in points:
        for run in p.runs.values():
            for task in run.tasks:
                if task.spawn_s is not None:
                    (warm if task.warm else cold).append(task.spawn_s)
    return warm, cold


def _summary(values: list[float]) -> str:
    if not values:
        return "no samples"
    return (
        f"median {statistics.median(values):.3f} s, mean {statistics.mean(values):.3f} s, "
        f"min {min(values):.3f} s, max {max(values):.3f} s, {len(values)} tasks"
    )


async def main_async(args: argparse.Namespace) -> int:
    grid = QUICK if args.quick else FULL
    ns = [int(x) for x in args.n.split(",")] if args.n else list(grid.n)
    ts = [float(x) for x in args.t.split(",")] if args.t else list(grid.t)
    s = args.s if args.s is not None else grid.s
    root = Path(tempfile.mkdtemp(prefix="review-loop-bench-"))
    points: list[Point] = []
    started = time.monotonic()
    try:
        with database_server(root) as admin:
            where = "server " + SERVER_URL_VAR if os.environ.get(SERVER_URL_VAR) else "embedded"
            print(f"database: {where} PostgreSQL, a fresh database per point", flush=True)
            print(
                "per point, in one database: forced parallel, then forced inline, then auto; "
                "auto plans with the costs (review_loop_costs) the forced runs measured",
                flush=True,
            )
            for n in ns:
                for t in ts:
                    point = await run_point(
                        admin, root, n, t, s, write_limits=args.write_limits, prewarm=args.prewarm
                    )
                    points.append(point)
                    r = point.runs
                    print(
                        f"N={n} t={t:g} s={s:g}: auto={r['auto'].makespan_s:.2f}s "
                        f"({point.choice}) parallel={r['parallel'].makespan_s:.2f}s "
                        f"inline={r['inline'].makespan_s:.2f}s  [{r['auto'].explain}]",
                        flush=True,
                    )
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)
    print()
    print("makespan = round 1 of the PR: first fix task queued -> last fix task finished")
    print(render(points))
    if any(not r.clean for p in points for r in p.runs.values()):
        print("(!) a run did not end in one clean round (a task not merged, or a round 2)")
    print()
    print(render_end_to_end(points))
    warm, cold = prewarm_figures(points)
    print()
    print(f"spawn on the critical path, warm worktree claimed: {_summary(warm)}")
    print(f"spawn on the critical path, cold spawn:            {_summary(cold)}")
    print(f"total bench time: {time.monotonic() - started:.0f} s")
    worst = max(p.ratio for p in points)
    print(f"worst_ratio_to_best_forced={worst:.3f}")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="a smaller sweep: N 2,6 x t 0.5,3")
    parser.add_argument("--n", help="comma-separated N values (overrides the sweep)")
    parser.add_argument("--t", help="comma-separated agent seconds (overrides the sweep)")
    parser.add_argument("--s", type=float, help="setup seconds (default 3)")
    parser.add_argument(
        "--write-limits",
        action="store_true",
        help="keep GitHub's write limits (80/min, 500/h per installation) in the bot's throttle",
    )
    parser.add_argument(
        "--no-prewarm",
        dest="prewarm",
        action="store_false",
        help="run the bot with REVIEW_LOOP_PREWARM=false (every task spawns cold)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the work directory")
    args = parser.parse_args()
    logging.basicConfig(level=logging.ERROR, format="%(levelname)s %(name)s: %(message)s")
    return asyncio.run(main_async(args))


if __name__ == "__main__":
    raise SystemExit(main())
