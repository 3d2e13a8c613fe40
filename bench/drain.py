"""How fast one `review-loop worker` drains a backlog of the intake bench's event mix.

`make bench-intake` measures the drain too, after its intake runs; this is the same worker
on the same mix without the intake runs before it, for profiling the worker alone:

    .venv/bin/python -m bench.drain --deliveries 4000 [--py-spy out.txt] [--keep]

A fresh embedded PostgreSQL is migrated and filled with `--deliveries` deliveries of
`bench.intake.MIX` (the real payloads), stored by the intake's own `store_deliveries` in
batches of `--batch` (what the group commit makes at 16 connections); then one worker,
pinned to core 0 like in the intake bench, GitHub pointed at a closed port, drains them.
Prints deliveries dispatched per second and CPU per delivery (worker + PostgreSQL).
"""

import argparse
import asyncio
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import psycopg

from bench.intake import CLIENT_CORE, FIXTURES, MIX, ROOT, SERVER_CORE, bot_env, free_port, started
from bench.proc import ProcessCpu, tree_cpu_s
from bot.engine.database import embedded_url, open_pool, stop_embedded
from bot.engine.migrations import migrate
from bot.webhooks.deliveries import Delivery, store_deliveries
from bot.webhooks.payload import parse_payload
from handlers import enabled_router


def mix_bodies() -> list[tuple[str, bytes]]:
    """(event, compacted body) per delivery of one turn of the mix, in the intake's order."""
    bodies = {
        name: json.dumps(
            json.loads((FIXTURES / f"{name}.json").read_text()), separators=(",", ":")
        ).encode()
        for name in MIX
    }
    turn = []
    for i in range(max(MIX.values())):
        turn += [(name.split(".")[0], bodies[name]) for name, w in MIX.items() if i < w]
    return turn


async def fill(url: str, deliveries: int, batch: int, *, decide: bool) -> None:
    """Store `deliveries` of the mix in batches; with `decide`, the ones no handler wants
    are stored ignored, with no job, as `review-loop web` does."""
    router = enabled_router() if decide else None
    pool = open_pool(url, max_size=2)
    await pool.open()
    try:
        async with pool.connection() as conn:
            await migrate(conn)
        turn = mix_bodies()
        prefix = uuid.uuid4().hex[:8]
        items = []
        for n in range(deliveries):
            event, body = turn[n % len(turn)]
            payload = parse_payload(body)
            delivery_id = f"drain-{prefix}-{n}"
            if router is None:  # as the intake stored them before it decided
                items.append(Delivery.of(delivery_id, event, body, payload))
                continue
            ignored = router.ignored(event, payload.get("action"), payload)
            items.append(Delivery.of(delivery_id, event, body, payload, ignored=ignored))
        async with pool.connection() as conn:
            await conn.set_autocommit(True)
            for start in range(0, len(items), batch):
                await store_deliveries(conn, items[start : start + batch])
    finally:
        await pool.close()


def remaining(url: str) -> int:
    with psycopg.connect(url, autocommit=True) as conn:
        row = conn.execute(
            "SELECT count(*) FROM review_loop_deliveries WHERE status = 'queued'"
        ).fetchone()
    assert row is not None
    return int(row[0])


def jobs(url: str) -> str:
    """The jobs by task and status, for the reader: what the worker ran besides dispatch."""
    with psycopg.connect(url, autocommit=True) as conn:
        rows = conn.execute(
            """SELECT task_name, status::text, count(*) FROM procrastinate_jobs
                GROUP BY 1, 2 ORDER BY 1, 2"""
        ).fetchall()
    return ", ".join(f"{task} {status} {n}" for task, status, n in rows)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bench.drain", description=__doc__)
    parser.add_argument("--deliveries", type=int, default=3000)
    parser.add_argument("--batch", type=int, default=8, help="deliveries per intake batch (8)")
    parser.add_argument(
        "--no-decide",
        action="store_true",
        help="queue every delivery for the worker (no intake decision, as before it)",
    )
    parser.add_argument("--timeout-s", type=float, default=120.0)
    parser.add_argument("--py-spy", type=Path, help="record the worker with py-spy (raw)")
    parser.add_argument("--keep", action="store_true")
    args = parser.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="review-loop-bench-drain-"))
    data_dir = work / "data"
    try:
        # The database inherits the pinning of the process that starts it: core 0, with the
        # worker, as in the intake bench; this script then runs on core 1.
        os.sched_setaffinity(0, {int(SERVER_CORE)})
        url = embedded_url(data_dir)
        os.sched_setaffinity(0, {CLIENT_CORE})
        asyncio.run(fill(url, args.deliveries, args.batch, decide=not args.no_decide))
        db = ProcessCpu.of_postgres(data_dir)
        env = bot_env(data_dir, free_port())
        env["REVIEW_LOOP_REDELIVER_INTERVAL_S"] = "0"
        env["REVIEW_LOOP_SWEEP_INTERVAL_S"] = "0"
        cmd = ["taskset", "-c", SERVER_CORE, str(ROOT / ".venv/bin/review-loop"), "worker"]
        with started(cmd, env, work / "worker.log") as worker:
            total = left = remaining(url)
            deadline = time.monotonic() + 60
            while left == total and time.monotonic() < deadline:  # start-up is not draining
                time.sleep(0.05)
                left = remaining(url)
            spy = None
            if args.py_spy:  # attached now: the worker re-execs itself once at start-up
                spy = subprocess.Popen(
                    [str(ROOT / ".venv/bin/py-spy"), "record", "--format", "raw", "-r", "250",
                     "-p", str(worker.pid), "-o", str(args.py_spy)],
                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                )  # fmt: skip
            start, first = time.monotonic(), left
            cpu0, db0 = tree_cpu_s(worker.pid), db.cpu_s()
            last_change = start
            while left and time.monotonic() - start < args.timeout_s:
                time.sleep(0.2)
                now_left = remaining(url)
                if now_left != left:
                    last_change = time.monotonic()
                left = now_left
            elapsed = (last_change if left == 0 else time.monotonic()) - start
            worker_cpu, db_cpu = tree_cpu_s(worker.pid) - cpu0, db.cpu_s() - db0
            ran = jobs(url)
            if spy is not None:
                spy.send_signal(signal.SIGINT)
                spy.wait(60)
        done = first - left
        per = 1000 / max(done, 1)
        share = total / args.deliveries  # of the mix, what the intake left to the worker
        print(
            f"one worker dispatched {done} of the {total} deliveries queued for it (of "
            f"{args.deliveries} stored) in {elapsed:.1f} s: {done / elapsed:.0f} deliveries/s "
            f"(CPU per delivery: worker {worker_cpu * per:.2f} ms + db {db_cpu * per:.2f} ms); "
            f"keeps up with an intake of {done / elapsed / share:.0f} deliveries/s of this mix"
        )
        print(f"jobs: {ran}")
        return 0 if left == 0 else 1
    finally:
        stop_embedded(data_dir)
        if args.keep:
            print(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
