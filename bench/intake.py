"""`make bench-intake`: how many signed deliveries per second the bot's intake stores durably,
next to a no-storage baseline (HMAC + `json.loads` + 202) on the same uvicorn, in one run.

Both servers run pinned to core 0 (`taskset`), the bot with its embedded PostgreSQL, which
inherits the pinning; `wrk` and this script run on core 1. Runs alternate baseline / bot so
that whatever else loads the machine weighs on both alike: the ratio is the figure to trust.
Every request carries a delivery id never used before (run prefix + wrk thread + counter);
after each bot run every 2xx the client saw must be a row in `review_loop_deliveries` with
its dispatch job queued, or stored ignored by the intake (no handler wants it). Then one
`review-loop worker` drains what the runs stored, and
`review-loop serve` is started on an empty data directory to read its idle memory.
"""

import argparse
import contextlib
import json
import os
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import psycopg

from bench.proc import ProcessCpu, rss_mb, tree_cpu_s
from bot.engine.database import embedded_url, stop_embedded
from bot.web import signing

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "fixtures" / "webhooks"
LUA = Path(__file__).resolve().parent / "intake.lua"
SECRET = "bench-intake-secret"  # noqa: S105 (a bench of its own, on 127.0.0.1)
SERVER_CORE = "0"
CLIENT_CORE = 1


@dataclass
class Run:
    """One wrk run against one server."""

    target: str
    connections: int
    requests: int
    duration_s: float
    p50_ms: float
    p99_ms: float
    statuses: dict[int, int]
    socket_errors: int
    server_cpu_s: float
    db_cpu_s: float
    stored: int = 0
    queued: int = 0  # with their job, or stored ignored (they need none)
    batches: int = 0
    ignored: int = 0  # stored ignored by the intake: no handler wants them

    @property
    def rate(self) -> float:
        return self.requests / self.duration_s

    @property
    def accepted(self) -> int:
        return sum(n for status, n in self.statuses.items() if 200 <= status < 300)

    @property
    def non_2xx(self) -> int:
        return sum(n for status, n in self.statuses.items() if not 200 <= status < 300)

    @property
    def lost(self) -> int:
        """Accepted deliveries missing from the table or without their job."""
        if self.target != "bot":
            return 0
        return max(0, self.accepted - self.stored) + max(0, self.stored - self.queued)


@dataclass
class Results:
    runs: list[Run] = field(default_factory=list)

    def of(self, target: str, connections: int) -> list[Run]:
        return [r for r in self.runs if r.target == target and r.connections == connections]


# The event mix, per ten deliveries: most of what an installation sends is answered in a
# moment (a comment with no command, a label no agent wants, a PR the loop does not track);
# opened/synchronize each queue a reconcile.
MIX = {
    "issue_comment.created": 3,
    "issues.labeled": 3,
    "pull_request.closed": 2,
    "pull_request.opened": 1,
    "pull_request.synchronize": 1,
}


def write_manifest(work: Path) -> Path:
    """The real payloads of MIX, compacted as GitHub sends them, each with its signature,
    listed as often as MIX says (in turn, so the mix holds over any stretch of a run)."""
    entries: dict[str, str] = {}
    for name in MIX:
        body = json.dumps(
            json.loads((FIXTURES / f"{name}.json").read_text()), separators=(",", ":")
        ).encode()
        out = work / "bodies" / f"{name}.json"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_bytes(body)
        entries[name] = f"{name.split('.')[0]}\t{signing.sign(SECRET, body)}\t{out}"
    lines = []
    for turn in range(max(MIX.values())):
        lines += [entries[name] for name, weight in MIX.items() if turn < weight]
    manifest = work / "manifest.tsv"
    manifest.write_text("\n".join(lines) + "\n")
    return manifest


def bot_env(data_dir: Path, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}
    env.update(
        REVIEW_LOOP_DATA_DIR=str(data_dir),
        REVIEW_LOOP_WEBHOOK_SECRET=SECRET,
        REVIEW_LOOP_HOST="127.0.0.1",
        REVIEW_LOOP_PORT=str(port),
        REVIEW_LOOP_LOG_LEVEL="WARNING",
        # Nothing answers there: handlers that would call GitHub fail fast.
        REVIEW_LOOP_GITHUB_URL="http://127.0.0.1:9",
        REVIEW_LOOP_RESYNC_INTERVAL_S="0",
    )
    return env


@contextlib.contextmanager
def started(cmd: list[str], env: dict[str, str], log: Path) -> Iterator[subprocess.Popen[bytes]]:
    with log.open("ab") as out:
        proc = subprocess.Popen(cmd, env=env, stdout=out, stderr=subprocess.STDOUT, cwd=ROOT)
    try:
        yield proc
    except BaseException:
        print(f"--- {log.name} (last lines)", file=sys.stderr)
        print("\n".join(log.read_text(errors="replace").splitlines()[-15:]), file=sys.stderr)
        raise
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(30)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()


def wait_http(url: str, proc: subprocess.Popen[bytes], timeout_s: float = 60) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args} exited with {proc.returncode} before answering")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url, timeout=1).status_code == 200:
                return
        time.sleep(0.2)
    raise RuntimeError(f"{url} did not answer within {timeout_s} s")


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def wrk(
    url: str, connections: int, seconds: float, prefix: str, manifest: Path
) -> dict[str, object]:
    duration = f"-d{max(1, round(seconds))}s"
    cmd = [
        "taskset", "-c", str(CLIENT_CORE), "wrk", "-t1", f"-c{connections}", duration,
        "--timeout", "10s", "-s", str(LUA), url + "/webhook", "--", prefix, str(manifest),
    ]  # fmt: skip
    out = subprocess.run(cmd, capture_output=True, text=True, check=True).stdout
    line = next(x for x in out.splitlines() if x.startswith("BENCH "))
    data: dict[str, object] = json.loads(line.removeprefix("BENCH "))
    return data


def count_stored(db_url: str, prefix: str) -> tuple[int, int, int, int]:
    """Deliveries stored under `prefix`, how many of them have their dispatch job or were
    stored ignored by the intake (no handler wants them: they need no job), how many jobs
    (one per batch the intake committed) hold them, and how many were stored ignored."""
    with psycopg.connect(db_url) as conn:  # one snapshot for all counts
        conn.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
        stored = conn.execute(
            """SELECT count(*), count(*) FILTER (WHERE status = 'ignored')
                 FROM review_loop_deliveries WHERE id LIKE %s""",
            (prefix + "-%",),
        ).fetchone()
        queued = conn.execute(
            """SELECT count(DISTINCT d.id), count(DISTINCT j.id)
                 FROM procrastinate_jobs j,
                      jsonb_array_elements_text(j.args->'delivery_ids') AS d(id)
                WHERE j.task_name = 'dispatch_deliveries' AND d.id LIKE %s""",
            (prefix + "-%",),
        ).fetchone()
    assert stored is not None and queued is not None
    ignored = int(stored[1])  # no worker runs during the intake runs: only the intake's
    return int(stored[0]), int(queued[0]) + ignored, int(queued[1]), ignored


class Bench:
    def __init__(self, args: argparse.Namespace, work: Path) -> None:
        self.args = args
        self.work = work
        self.manifest = write_manifest(work)
        self.data_dir = work / "data"
        self.results = Results()

    def measure(
        self,
        target: str,
        url: str,
        server: subprocess.Popen[bytes],
        connections: int,
        seconds: float,
        db: ProcessCpu | None,
        db_url: str | None,
    ) -> Run:
        prefix = f"bench-{uuid.uuid4().hex[:12]}"
        server_before = tree_cpu_s(server.pid)
        db_before = db.cpu_s() if db else 0.0
        data = wrk(url, connections, seconds, prefix, self.manifest)
        server_cpu = tree_cpu_s(server.pid) - server_before
        db_cpu = (db.cpu_s() - db_before) if db else 0.0
        statuses = {int(k): int(v) for k, v in dict(data["statuses"]).items()}  # type: ignore[call-overload]
        run = Run(
            target=target,
            connections=connections,
            requests=int(data["requests"]),  # type: ignore[call-overload]
            duration_s=int(data["duration_us"]) / 1e6,  # type: ignore[call-overload]
            p50_ms=int(data["p50_us"]) / 1000,  # type: ignore[call-overload]
            p99_ms=int(data["p99_us"]) / 1000,  # type: ignore[call-overload]
            statuses=statuses,
            socket_errors=sum(
                int(data[k])  # type: ignore[call-overload]
                for k in ("connect_errors", "read_errors", "write_errors", "timeouts")
            ),
            server_cpu_s=server_cpu,
            db_cpu_s=db_cpu,
        )
        if db_url is not None:
            run.stored, run.queued, run.batches, run.ignored = count_stored(db_url, prefix)
        return run

    def idle_memory(self) -> tuple[float, float]:
        """RSS of an idle `review-loop serve` (web + worker) and of its PostgreSQL, in MB."""
        data_dir = self.work / "idle"
        port = free_port()
        env = bot_env(data_dir, port)
        cmd = ["taskset", "-c", SERVER_CORE, str(ROOT / ".venv/bin/review-loop"), "serve"]
        with started(cmd, env, self.work / "serve.log") as proc:
            wait_http(f"http://127.0.0.1:{port}/healthz", proc)
            time.sleep(self.args.idle_s)
            serve_mb = rss_mb(proc.pid)
            db_mb = ProcessCpu.of_postgres(data_dir).rss_mb()
        return serve_mb, db_mb

    def intake(self) -> None:
        args = self.args
        bot_port, base_port, fast_port = free_port(), free_port(), free_port()
        bot_cmd = ["taskset", "-c", SERVER_CORE, str(ROOT / ".venv/bin/review-loop"), "web"]

        def baseline_cmd(port: int, kind: str) -> list[str]:
            return [
                "taskset", "-c", SERVER_CORE, sys.executable, "-m", "bench.intake_baseline",
                "--port", str(port), "--secret", SECRET, "--kind", kind,
            ]  # fmt: skip

        env = bot_env(self.data_dir, bot_port)
        with (
            started(bot_cmd, env, self.work / "web.log") as bot,
            started(baseline_cmd(base_port, "starlette"), env, self.work / "base.log") as base,
            started(baseline_cmd(fast_port, "asgi"), env, self.work / "asgi.log") as fast,
        ):
            bot_url = f"http://127.0.0.1:{bot_port}"
            base_url, fast_url = f"http://127.0.0.1:{base_port}", f"http://127.0.0.1:{fast_port}"
            wait_http(bot_url + "/readyz", bot)
            self._wait_baseline(base_url, base)
            self._wait_baseline(fast_url, fast)
            db_url = embedded_url(self.data_dir)  # joins the bot's server
            db = ProcessCpu.of_postgres(self.data_dir)
            targets = {
                "baseline": (base_url, base, None, None),
                "asgi": (fast_url, fast, None, None),
                "bot": (bot_url, bot, db, db_url),
            }
            for connections in args.connections:
                for url, *_ in targets.values():  # warm-up, not counted
                    wrk(url, connections, args.warmup_s, f"warm-{uuid.uuid4().hex[:8]}",
                        self.manifest)  # fmt: skip
                for round_ in range(args.rounds):
                    order = ["baseline", "bot", "asgi"]
                    order = order if round_ % 2 == 0 else order[::-1]
                    for name in order:
                        url, proc, cpu, dsn = targets[name]
                        run = self.measure(name, url, proc, connections, args.seconds, cpu, dsn)
                        self.results.runs.append(run)
                        print(describe(run), flush=True)
            self.db_url = db_url

    def _wait_baseline(self, url: str, proc: subprocess.Popen[bytes]) -> None:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError("the baseline server exited")
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(url + "/webhook", content=b"{}", timeout=1)
                return
            time.sleep(0.1)
        raise RuntimeError("the baseline server did not answer")

    def drain(self) -> tuple[int, float, float, float]:
        """One worker drains what the runs queued: deliveries dispatched, seconds, CPU."""
        port = free_port()
        env = bot_env(self.data_dir, port)
        env["REVIEW_LOOP_REDELIVER_INTERVAL_S"] = "0"
        env["REVIEW_LOOP_SWEEP_INTERVAL_S"] = "0"
        cmd = ["taskset", "-c", SERVER_CORE, str(ROOT / ".venv/bin/review-loop"), "worker"]
        db = ProcessCpu.of_postgres(self.data_dir)

        def dispatched() -> int:
            with psycopg.connect(self.db_url, autocommit=True) as conn:
                row = conn.execute(
                    "SELECT count(*) FROM review_loop_deliveries WHERE status <> 'queued'"
                ).fetchone()
            assert row is not None
            return int(row[0])

        with started(cmd, env, self.work / "worker.log") as worker:
            time.sleep(self.args.worker_start_s)  # start-up is not draining
            first, db_before, cpu_before = dispatched(), db.cpu_s(), tree_cpu_s(worker.pid)
            start = time.monotonic()
            time.sleep(self.args.drain_s)
            last = dispatched()
            elapsed = time.monotonic() - start
            worker_cpu = tree_cpu_s(worker.pid) - cpu_before
            db_cpu = db.cpu_s() - db_before
        return last - first, elapsed, worker_cpu, db_cpu


def describe(run: Run) -> str:
    per = 1000 / max(run.requests, 1)
    text = (
        f"{run.target:8} c={run.connections:<3} {run.rate:8.0f} req/s  p50 {run.p50_ms:6.2f} ms"
        f"  p99 {run.p99_ms:7.2f} ms  cpu/req server {run.server_cpu_s * per:.3f} ms"
        f" db {run.db_cpu_s * per:.3f} ms  non-2xx {run.non_2xx} socket errors {run.socket_errors}"
    )
    if run.target == "bot":
        text += f"  accepted {run.accepted} stored {run.stored} queued {run.queued} lost {run.lost}"
        text += f"  ignored at intake {run.ignored}"
        text += f"  deliveries per job {(run.stored - run.ignored) / max(run.batches, 1):.1f}"
    return text


def summary(results: Results, connections: list[int]) -> tuple[list[str], dict[int, float]]:
    lines = [
        "| connections | baseline req/s | bot req/s | bot / baseline | baseline p50 / p99 (ms)"
        " | bot p50 / p99 (ms) | CPU/req baseline; bot server + db (ms) | non-2xx | lost"
        " | ASGI+orjson req/s (bot / it) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    ratios: dict[int, float] = {}
    for c in connections:
        base, bot = results.of("baseline", c), results.of("bot", c)
        b_rate = statistics.median(r.rate for r in base)
        o_rate = statistics.median(r.rate for r in bot)
        ratios[c] = o_rate / b_rate
        server = sum(r.server_cpu_s for r in bot) / sum(r.requests for r in bot) * 1000
        dbcpu = sum(r.db_cpu_s for r in bot) / sum(r.requests for r in bot) * 1000
        b_cpu = sum(r.server_cpu_s for r in base) / sum(r.requests for r in base) * 1000
        fast = results.of("asgi", c)
        f_rate = statistics.median(r.rate for r in fast) if fast else float("nan")
        lines.append(
            f"| {c} | {b_rate:.0f} | {o_rate:.0f} | {ratios[c]:.2f} "
            f"| {statistics.median(r.p50_ms for r in base):.2f} / "
            f"{statistics.median(r.p99_ms for r in base):.2f} "
            f"| {statistics.median(r.p50_ms for r in bot):.2f} / "
            f"{statistics.median(r.p99_ms for r in bot):.2f} "
            f"| {b_cpu:.3f}; {server:.3f} + {dbcpu:.3f} "
            f"| {sum(r.non_2xx for r in base + bot + fast)} | {sum(r.lost for r in bot)} "
            f"| {f_rate:.0f} ({o_rate / f_rate:.2f}) |"
        )
    return lines, ratios


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="bench.intake", description=__doc__)
    parser.add_argument("--seconds", type=float, default=10.0, help="per measured run (10)")
    parser.add_argument("--rounds", type=int, default=3, help="runs per server and point (3)")
    parser.add_argument("--warmup-s", type=float, default=3.0)
    parser.add_argument(
        "--connections", type=lambda s: [int(x) for x in s.split(",")], default=[2, 16]
    )
    parser.add_argument("--drain-s", type=float, default=15.0, help="worker drain window (15)")
    parser.add_argument("--worker-start-s", type=float, default=3.0)
    parser.add_argument("--idle-s", type=float, default=5.0, help="idle time before RSS (5)")
    parser.add_argument("--quick", action="store_true", help="1 round of 5 s")
    parser.add_argument("--keep", action="store_true", help="keep the working folder")
    args = parser.parse_args(argv)
    if args.quick:
        args.seconds, args.rounds, args.warmup_s, args.drain_s = 5.0, 1, 2.0, 10.0
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if shutil.which("wrk") is None:
        print("bench-intake needs wrk (Debian package `wrk`)", file=sys.stderr)
        return 2
    os.sched_setaffinity(0, {CLIENT_CORE})
    work = Path(tempfile.mkdtemp(prefix="review-loop-bench-intake-"))
    bench = Bench(args, work)
    try:
        load = os.getloadavg()
        print(f"load average before: {load[0]:.2f} {load[1]:.2f} {load[2]:.2f}", flush=True)
        serve_mb, serve_db_mb = bench.idle_memory()
        print(f"idle `review-loop serve`: {serve_mb:.0f} MB RSS (PostgreSQL: {serve_db_mb:.0f} MB)")
        bench.intake()
        drained, elapsed, worker_cpu, db_cpu = bench.drain()
    finally:
        stop_embedded(bench.data_dir)
        stop_embedded(work / "idle")
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
        else:
            print(f"kept {work}")
    lines, ratios = summary(bench.results, args.connections)
    print()
    print("\n".join(lines))
    rate = drained / elapsed
    per = (worker_cpu + db_cpu) / max(drained, 1) * 1000
    print(
        f"\none worker drained {drained} deliveries in {elapsed:.1f} s: {rate:.0f} deliveries/s"
        f" (CPU per delivery: worker {worker_cpu / max(drained, 1) * 1000:.2f} ms"
        f" + db {db_cpu / max(drained, 1) * 1000:.2f} ms = {per:.2f} ms)"
    )
    bot_runs = [r for r in bench.results.runs if r.target == "bot"]
    share = 1 - sum(r.ignored for r in bot_runs) / max(sum(r.stored for r in bot_runs), 1)
    top_rate = statistics.median(r.rate for r in bench.results.of("bot", max(args.connections)))
    print(
        f"the intake stored {1 - share:.0%} of the deliveries ignored (no handler wants them);"
        f" the workers must drain the other {share:.0%}: {top_rate * share:.0f} deliveries/s"
        f" at {max(args.connections)} connections, against one worker's {rate:.0f}"
    )
    print(
        f"idle serve RSS: {serve_mb:.0f} MB (goal <= 150 MB); its PostgreSQL {serve_db_mb:.0f} MB"
    )
    lost = sum(r.lost for r in bench.results.runs)
    print(f"lost deliveries: {lost}")
    top = max(args.connections)
    print(f"bot_over_baseline_at_{top}={ratios[top]:.3f}")
    return 1 if lost else 0


if __name__ == "__main__":
    sys.exit(main())
