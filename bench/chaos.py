"""`make chaos`: seeded fault trials against the bot run as an operator runs it.

Each trial starts, on a fresh database, the GitHub sandbox, one `review-loop web` and one
`review-loop worker` as separate processes, opens one PR with FINDINGS unused imports, and
breaks something while the loop runs:

  kill-worker  kill -9 the worker at random moments (restarted, as a supervisor would)
  kill-web     kill -9 the web process at random moments (restarted; webhooks meanwhile fail)
  faults       12 % 5xx, 8 % secondary limits, 20 % dropped webhooks, 25 % lost answers on writes
  storm        every webhook delivered twice, and each delivery redelivered 3 times at once
  intake       hostile requests on /webhook while the loop runs (and a NUL in the PR body)

Then it waits for the loop to come to rest and checks GitHub's state: converged (the PR ready,
every finding filed once and closed, every fix PR closed, no job pending), duplicates (issues,
fix PRs, comments and check runs by marker), lost (findings never filed or left open, fix PRs
left open, a stuck PR) and 5xx answers (to the sandbox's deliveries and to the intake abuse).
It prints a table and exits 1 on any duplicate, loss, stuck PR or 5xx at the intake.

    python -m bench.chaos --trials 20 --kinds kill-worker,faults --seed 7

A trial's seed decides its faults and its kill times: `--kinds K --seed S --trials 1` with
the seed the table shows replays it. The database is REVIEW_LOOP_TEST_DATABASE_URL's server
when set, else the embedded wheel.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import hashlib
import hmac
import json
import os
import random
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import jwt
import psycopg

from bench.fanout import database_server, fresh_database
from bench.intake import free_port, wait_http
from bot.github.markers import parse_marker
from bot.sandbox.driver import Driver

ROOT = Path(__file__).parents[1]
KINDS = ("kill-worker", "kill-web", "faults", "storm", "intake")
REPO = "acme/shop"
AUTHOR = "alice"
FINDINGS = 2
SECRET = secrets.token_hex(16)
TRIAL_TIMEOUT_S = 300.0
PYPROJECT = '[project]\nname = "shop"\nversion = "0"\n\n[tool.ruff]\nline-length = 100\n'
MODULE = '"""Module {k}."""\n\nimport os\n\n\ndef value() -> int:\n    return {k}\n'
# The issue's fault mix; lost answers on writes only.
FAULT_MIX = {
    "server_error_rate": 0.12,
    "secondary_rate_limit_rate": 0.08,
    "drop_webhook_rate": 0.20,
    "rules": [{"fault": "lost_answer", "rate": 0.25, "writes": True}],
}
# Fast recovery paths: a killed worker's jobs are retried after 6 s, failed deliveries are
# redelivered within 3 s once 2 s old (local deliveries arrive in milliseconds), a PR not at
# rest is resynced after 10 s quiet, the sweep runs every 20 s. Production's values are minutes; the mechanisms are the same.
BOT_SETTINGS = {
    "HEARTBEAT_S": "1",
    "STALLED_AFTER_S": "6",
    "REAPER_INTERVAL_S": "2",
    "JOB_POLL_INTERVAL_S": "0.5",
    "REDELIVER_INTERVAL_S": "3",
    "REDELIVER_GRACE_S": "2",
    "RESYNC_INTERVAL_S": "3",
    "RESYNC_QUIET_S": "10",
    "SWEEP_INTERVAL_S": "20",
    "WRITE_INTERVAL_S": "0.05",
    "WRITES_PER_MINUTE": "100000",
    "WRITES_PER_HOUR": "1000000",
    "WORKER_CONCURRENCY": "4",
    "LOG_LEVEL": "WARNING",
}


@dataclass
class Trial:
    kind: str
    seed: int
    converged: bool = False
    duplicates: Counter[str] = field(default_factory=Counter)
    lost: Counter[str] = field(default_factory=Counter)
    fivexx: int = 0  # 5xx answers the bot gave (deliveries and intake abuse)
    intake_5xx: int = 0
    kills: int = 0
    redelivered: int = 0  # the storm's redeliveries GitHub accepted
    injected: dict[str, int] = field(default_factory=dict)
    seconds: float = 0.0
    note: str = ""

    @property
    def failed(self) -> bool:
        return bool(
            not self.converged or sum(self.duplicates.values()) or sum(self.lost.values())
        ) or bool(self.intake_5xx)


# -- processes ---------------------------------------------------------------------------


@dataclass
class Proc:
    """One production process, restartable: its command, environment and log."""

    name: str
    argv: list[str]
    env: dict[str, str]
    log: Path
    proc: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.argv, env=self.env, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
            )

    def kill9(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        self.proc.send_signal(signal.SIGTERM)
        try:
            self.proc.wait(20)
        except subprocess.TimeoutExpired:
            self.kill9()


def base_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}


@dataclass
class SandboxInfo:
    url: str
    api_url: str
    app_id: int
    key_path: Path
    token: str


def start_sandbox(proc: Proc, timeout_s: float = 60) -> SandboxInfo:
    """Start `review-loop sandbox` and read how to use it from what it prints."""
    proc.start()
    assert proc.proc is not None
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        text = proc.log.read_text(errors="replace") if proc.log.exists() else ""
        if "Press Ctrl-C" in text:
            api = re.search(r"REVIEW_LOOP_GITHUB_URL=(\S+)", text)
            app = re.search(r"REVIEW_LOOP_APP_ID=(\d+)", text)
            key = re.search(r"REVIEW_LOOP_PRIVATE_KEY_PATH=(\S+)", text)
            token = re.search(r"Operator token \(admin everywhere\): (\S+)", text)
            assert api and app and key and token, text
            return SandboxInfo(
                api.group(1).removesuffix("/api/v3"),
                api.group(1),
                int(app.group(1)),
                Path(key.group(1)),
                token.group(1),
            )
        if proc.proc.poll() is not None:
            raise RuntimeError(f"the sandbox exited: {text[-2000:]}")
        time.sleep(0.1)
    raise RuntimeError("the sandbox did not start")


def migrate(db: str, log: Path) -> None:
    env = base_env() | {"REVIEW_LOOP_DATABASE_URL": db}
    with log.open("ab") as out:
        subprocess.run(
            [sys.executable, "-m", "bot.cli", "migrate"],
            env=env,
            cwd=ROOT,
            stdout=out,
            stderr=subprocess.STDOUT,
            check=True,
            timeout=120,
        )


# -- the scenario ------------------------------------------------------------------------


def open_scenario(driver: Driver, body: str) -> int:
    """The repository, the App installed, and one PR adding FINDINGS unused imports."""
    driver.create_user(AUTHOR)
    driver.create_org("acme")
    files = {"pyproject.toml": PYPROJECT, "shop/__init__.py": '"""Shop."""\n'}
    driver.create_repo(REPO, files, author=AUTHOR)
    driver.set_permission(REPO, AUTHOR, "write")
    driver.install_app("acme", sender=AUTHOR)
    modules = {f"shop/m{k}.py": MODULE.format(k=k) for k in range(FINDINGS)}
    driver.push(REPO, "change", dict(modules), as_user=AUTHOR, message="A change")
    pr = driver.open_pr(REPO, "change", as_user=AUTHOR, title="A change", body=body)
    return int(pr["number"])


def loop_state(db: str, number: int) -> tuple[str | None, bool, int]:
    """The PR's loop state, whether it handled its last generation, and the jobs pending."""
    with psycopg.connect(db) as conn:
        row = conn.execute(
            "SELECT state, handled >= generation FROM review_loop_prs "
            "WHERE repo = %s AND number = %s",
            (REPO, number),
        ).fetchone()
        pending = conn.execute(
            "SELECT count(*) FROM procrastinate_jobs WHERE status IN ('todo', 'doing')"
        ).fetchone()
    state, handled = (row[0], bool(row[1])) if row else (None, False)
    return state, handled, int(pending[0]) if pending else 0


@dataclass
class Snapshot:
    """What GitHub holds once the loop rests."""

    findings: list[dict[str, Any]]
    fix_pulls: list[dict[str, Any]]
    comment_markers: Counter[str]
    check_markers: Counter[str]
    pr_state: str
    deliveries_5xx: int
    pending_deliveries: int


def snapshot(driver: Driver, number: int) -> Snapshot:
    issues = driver.issues(REPO)
    findings = [
        i
        for i in issues
        if "pull_request" not in i and (parse_marker(i.get("body")) or {}).get("fp")
    ]
    pulls = driver.pulls(REPO)
    fix_pulls = [p for p in pulls if p["head"]["ref"].startswith("review-loop/")]
    comment_markers: Counter[str] = Counter()
    # The issues API lists PRs too: each thread once.
    for thread in sorted({i["number"] for i in issues} | {p["number"] for p in pulls}):
        for comment in driver.comments(REPO, thread):
            marker = parse_marker(comment.get("body"))
            if marker is not None:
                comment_markers[f"#{thread} {json.dumps(marker, sort_keys=True)}"] += 1
    check_markers: Counter[str] = Counter()
    heads = {driver.pull(REPO, number)["head"]["sha"]} | {p["head"]["sha"] for p in fix_pulls}
    for sha in heads:
        for run in driver.check_runs(REPO, sha):
            check_markers[f"{sha[:8]} {run['name']} {run.get('external_id') or ''}"] += 1
    deliveries = driver.deliveries()
    return Snapshot(
        findings=findings,
        fix_pulls=fix_pulls,
        comment_markers=comment_markers,
        check_markers=check_markers,
        pr_state=driver.pull(REPO, number)["state"],
        deliveries_5xx=sum(1 for d in deliveries if int(d["status_code"] or 0) >= 500),
        pending_deliveries=sum(1 for d in deliveries if d["status"] == "pending"),
    )


def judge(trial: Trial, snap: Snapshot, state: str | None, handled: bool, pending: int) -> None:
    fps = Counter((parse_marker(i["body"]) or {}).get("fp") for i in snap.findings)
    trial.duplicates["issues"] = sum(n - 1 for n in fps.values())
    merged_fix = [p for p in snap.fix_pulls if p.get("merged_at")]
    fixed_by = Counter(
        n for p in merged_fix for n in (parse_marker(p.get("body")) or {}).get("issues", [])
    )
    trial.duplicates["fix PRs"] = sum(n - 1 for n in fixed_by.values())
    trial.duplicates["comments"] = sum(n - 1 for n in snap.comment_markers.values())
    twice = [k for k, n in (snap.comment_markers + snap.check_markers).items() if n > 1]
    trial.note = "; ".join(f"twice: {k}" for k in twice)
    trial.duplicates["check runs"] = sum(n - 1 for n in snap.check_markers.values())
    trial.lost["findings never filed"] = max(0, FINDINGS - len(fps))
    trial.lost["findings left open"] = sum(1 for i in snap.findings if i["state"] != "closed")
    trial.lost["fix PRs left open"] = sum(1 for p in snap.fix_pulls if p["state"] == "open")
    stuck = state != "ready" or not handled or pending > 0
    trial.lost["PRs stuck"] = int(stuck)
    trial.fivexx += snap.deliveries_5xx
    trial.converged = not stuck and not any(trial.lost.values()) and not snap.pending_deliveries
    if stuck:
        trial.note += f"state {state}, handled {handled}, {pending} jobs pending"


# -- faults ------------------------------------------------------------------------------


def killer(
    rng: random.Random, proc: Proc, stop: threading.Event, trial: Trial, window_s: float
) -> None:
    """kill -9 `proc` at 1-3 random moments in the first `window_s`, restarting it 0-3 s
    later each time."""
    moments = sorted(rng.uniform(1.0, window_s) for _ in range(rng.randint(1, 3)))
    started = time.monotonic()
    for moment in moments:
        if stop.wait(max(0.0, started + moment - time.monotonic())):
            return
        proc.kill9()
        trial.kills += 1
        if stop.wait(rng.uniform(0.0, 3.0)):
            proc.start()
            return
        proc.start()


def app_jwt(info: SandboxInfo) -> str:
    now = int(time.time())
    payload = {"iat": now - 30, "exp": now + 500, "iss": str(info.app_id)}
    return jwt.encode(payload, info.key_path.read_text(), algorithm="RS256")


def storm(info: SandboxInfo, driver: Driver, stop: threading.Event, trial: Trial) -> None:
    """Every delivery in the App's log, redelivered 3 times at once, as they come."""
    seen: set[int] = set()
    headers = {"Authorization": f"Bearer {app_jwt(info)}", "Accept": "application/json"}
    with httpx.Client(base_url=info.api_url, headers=headers, timeout=30) as client:
        while not stop.wait(1.0):
            fresh = [d["id"] for d in driver.deliveries() if not d["redelivery"]]
            for delivery in [d for d in fresh if d not in seen]:
                seen.add(delivery)
                path = f"/app/hook/deliveries/{delivery}/attempts"
                with concurrent.futures.ThreadPoolExecutor(3) as pool:
                    answers = list(pool.map(client.post, [path] * 3))
                trial.redelivered += sum(1 for a in answers if a.status_code == 202)


def sign(body: bytes, secret: str = SECRET) -> str:
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def abuse_cases() -> list[tuple[str, dict[str, str], bytes]]:
    """(name, headers, body) of the hostile requests; headers without the signature get it
    added by `abuse` unless the case is about the signature."""
    ping = json.dumps({"zen": "Keep it logically awesome.", "hook_id": 1}).encode()
    deep = b"[" * 100_000 + b"]" * 100_000
    big = b'{"a": "' + b"x" * (26 * 1024 * 1024) + b'"}'
    nul = json.dumps({"zen": "a\u0000b", "hook_id": 1}).encode()
    return [
        ("forged signature", {"X-Hub-Signature-256": sign(ping, "wrong")}, ping),
        ("missing signature", {"X-Hub-Signature-256": ""}, ping),
        (
            "sha1 signature",
            {"X-Hub-Signature-256": "", "X-Hub-Signature": "sha1=" + "0" * 40},
            ping,
        ),
        ("malformed", {}, b'{"zen": '),
        ("not an object", {}, b"[1, 2, 3]"),
        ("empty", {}, b""),
        ("26 MB", {}, big),
        ("deep nesting", {}, deep),
        ("NUL", {}, nul),
        ("lone surrogate", {}, b'{"zen": "\\ud800", "hook_id": 1}'),
        ("NaN", {}, b'{"zen": NaN, "hook_id": 1}'),
        ("BOM", {}, b"\xef\xbb\xbf" + ping),
        ("UTF-16", {}, json.dumps({"zen": "x", "hook_id": 1}).encode("utf-16")),
        ("huge headers", {"X-Padding": "p" * 60_000}, ping),
        ("huge delivery id", {"X-GitHub-Delivery": "d" * 10_000}, ping),
    ]


def abuse(url: str, trial: Trial, answers: Counter[str]) -> None:
    """Every abuse case once; a 5xx or a dropped connection counts as an intake 500."""
    with httpx.Client(timeout=60) as client:
        for name, extra, body in abuse_cases():
            headers = {
                "X-GitHub-Event": "ping",
                "X-GitHub-Delivery": f"chaos-{uuid.uuid4()}",
                "Content-Type": "application/json",
                "X-Hub-Signature-256": sign(body),
            }
            headers.update(extra)
            headers = {k: v for k, v in headers.items() if v}
            try:
                status = client.post(url, content=body, headers=headers).status_code
            except httpx.HTTPError as exc:
                answers[f"{name}: {type(exc).__name__}"] += 1
                trial.intake_5xx += 1
                continue
            answers[f"{name}: {status}"] += 1
            if status >= 500:
                trial.intake_5xx += 1


# -- one trial ---------------------------------------------------------------------------


def run_trial(kind: str, seed: int, admin_url: str, root: Path) -> Trial:
    trial = Trial(kind, seed)
    rng = random.Random(seed)  # noqa: S311 - repeatable trials
    tdir = root / f"{kind}-{seed}"
    tdir.mkdir(parents=True)
    started = time.monotonic()
    stop = threading.Event()
    threads: list[threading.Thread] = []
    procs: list[Proc] = []
    try:
        with contextlib.ExitStack() as closing, fresh_database(admin_url) as db:
            migrate(db, tdir / "migrate.log")
            web_port = free_port()
            sandbox = Proc(
                "sandbox",
                [sys.executable, "-m", "bot.cli", "sandbox", "--port", "0",
                 "--webhook-url", f"http://127.0.0.1:{web_port}/webhook"],
                base_env() | {"REVIEW_LOOP_WEBHOOK_SECRET": SECRET,
                              "REVIEW_LOOP_DATA_DIR": str(tdir / "github")},
                tdir / "sandbox.log",
            )  # fmt: skip
            procs.append(sandbox)
            info = start_sandbox(sandbox)
            env = base_env() | {f"REVIEW_LOOP_{k}": v for k, v in BOT_SETTINGS.items()}
            env |= {
                "REVIEW_LOOP_DATABASE_URL": db,
                "REVIEW_LOOP_GITHUB_URL": info.api_url,
                "REVIEW_LOOP_APP_ID": str(info.app_id),
                "REVIEW_LOOP_PRIVATE_KEY_PATH": str(info.key_path),
                "REVIEW_LOOP_WEBHOOK_SECRET": SECRET,
                "REVIEW_LOOP_HOST": "127.0.0.1",
                "REVIEW_LOOP_PORT": str(web_port),
            }
            web = Proc(
                "web",
                [sys.executable, "-m", "bot.cli", "web"],
                env | {"REVIEW_LOOP_DATA_DIR": str(tdir / "web")},
                tdir / "web.log",
            )
            worker = Proc(
                "worker",
                [sys.executable, "-m", "bot.cli", "worker"],
                env | {"REVIEW_LOOP_DATA_DIR": str(tdir / "worker")},
                tdir / "worker.log",
            )
            procs += [web, worker]
            web.start()
            worker.start()
            assert web.proc is not None
            wait_http(f"http://127.0.0.1:{web_port}/healthz", web.proc)
            driver = Driver(info.url, tdir / "driver", info.token)
            closing.callback(driver.close)
            body = "A change.\u0000 (a NUL, as a real PR body had)" if kind == "intake" else ""
            number = open_scenario(driver, body)

            def spawn(target: Callable[..., None], *args: Any) -> None:
                thread = threading.Thread(
                    target=target, args=args, daemon=True, name=target.__name__
                )
                thread.start()
                threads.append(thread)

            answers: Counter[str] = Counter()
            if kind == "kill-worker":
                spawn(killer, rng, worker, stop, trial, 20.0)
            elif kind == "kill-web":
                spawn(killer, rng, web, stop, trial, 20.0)
            elif kind == "faults":
                driver.set_faults(seed=seed, **FAULT_MIX)
            elif kind == "storm":
                driver.set_faults(seed=seed, duplicate_webhook_rate=1.0)
                spawn(storm, info, driver, stop, trial)
            elif kind == "intake":
                spawn(abuse, f"http://127.0.0.1:{web_port}/webhook", trial, answers)

            deadline = started + TRIAL_TIMEOUT_S
            # Faults stay on for the first 30 s (the storm 20 s), kills come in the first 20 s;
            # then the loop must recover by itself (redelivery, resync, sweep, the reaper).
            faults_until = started + (20.0 if kind == "storm" else 30.0)
            faults_on = kind in ("faults", "storm")
            state, handled, pending = None, False, 0
            while time.monotonic() < deadline:
                if faults_on and time.monotonic() > faults_until:
                    trial.injected = driver.fault_stats().get("injected", {})
                    driver.set_faults(seed=seed)
                    faults_on = False
                time.sleep(2.0)
                if faults_on or any(t.is_alive() for t in threads if t.name != "storm"):
                    continue
                with contextlib.suppress(psycopg.Error):
                    state, handled, pending = loop_state(db, number)
                if state == "ready" and handled and pending == 0:
                    snap = snapshot(driver, number)
                    if not snap.pending_deliveries and all(
                        i["state"] == "closed" for i in snap.findings
                    ):
                        break
            stop.set()
            for thread in threads:
                thread.join(30)
            if faults_on:
                trial.injected = driver.fault_stats().get("injected", {})
                driver.set_faults(seed=seed)
            time.sleep(1.0)  # the last webhooks of the end state
            state, handled, pending = loop_state(db, number)
            judge(trial, snapshot(driver, number), state, handled, pending)
            if answers:
                trial.injected |= {k: v for k, v in answers.items()}
            for proc in reversed(procs):
                proc.stop()
    except Exception as exc:  # a trial that broke is a failed trial, with its reason
        trial.note = f"{type(exc).__name__}: {exc}"[:300]
        trial.lost["trial broke"] = 1
    finally:
        stop.set()
        for proc in reversed(procs):
            proc.stop()
    trial.seconds = time.monotonic() - started
    return trial


# -- the report --------------------------------------------------------------------------


def table(trials: Sequence[Trial]) -> str:
    lines = [
        "| kind | trials | converged | duplicates | lost | orphan fix PRs | stuck PRs "
        "| 5xx answers | intake 5xx | kills | s / trial |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for kind in dict.fromkeys(t.kind for t in trials):
        mine = [t for t in trials if t.kind == kind]
        dup = sum(sum(t.duplicates.values()) for t in mine)
        lost = sum(
            sum(n for k, n in t.lost.items() if k not in ("fix PRs left open", "PRs stuck"))
            for t in mine
        )
        orphans = sum(t.lost["fix PRs left open"] for t in mine)
        stuck = sum(t.lost["PRs stuck"] for t in mine)
        lines.append(
            f"| {kind} | {len(mine)} | {sum(t.converged for t in mine)} | {dup} | {lost} "
            f"| {orphans} | {stuck} | {sum(t.fivexx for t in mine)} "
            f"| {sum(t.intake_5xx for t in mine)} | {sum(t.kills for t in mine)} "
            f"| {sum(t.seconds for t in mine) / len(mine):.0f} |"
        )
    return "\n".join(lines)


def describe(trial: Trial) -> str:
    bad = {k: v for k, v in (trial.duplicates + trial.lost).items() if v}
    faults = ", ".join(f"{k} {v}" for k, v in sorted(trial.injected.items()))
    verdict = "FAILED" if trial.failed else "ok"
    return (
        f"{trial.kind} seed {trial.seed}: {verdict} in {trial.seconds:.0f} s"
        f"{'; ' + str(bad) if bad else ''}{'; ' + trial.note if trial.note else ''}"
        f"{'; kills ' + str(trial.kills) if trial.kills else ''}"
        f"{'; redelivered ' + str(trial.redelivered) if trial.redelivered else ''}"
        f"{'; injected: ' + faults if faults else ''}"
    )


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench.chaos", description=__doc__)
    parser.add_argument("--trials", type=int, default=20, help="trials per kind (20)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="comma-separated kinds")
    parser.add_argument("--seed", type=int, default=1, help="the first trial's seed (1)")
    parser.add_argument("--keep", action="store_true", help="keep the trials' folders")
    args = parser.parse_args(argv)
    args.kinds = [k for k in args.kinds.split(",") if k]
    unknown = set(args.kinds) - set(KINDS)
    if unknown:
        parser.error(f"unknown kinds {sorted(unknown)}; choose from {', '.join(KINDS)}")
    return args


@contextlib.contextmanager
def workspace(keep: bool) -> Iterator[Path]:
    path = Path(tempfile.mkdtemp(prefix="review-loop-chaos-"))
    try:
        yield path
    finally:
        if keep:
            print(f"trials kept in {path}", file=sys.stderr)
        else:
            import shutil

            shutil.rmtree(path, ignore_errors=True)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    trials: list[Trial] = []
    with workspace(args.keep) as root, database_server(root) as admin_url:
        for kind in args.kinds:
            for i in range(args.trials):
                trial = run_trial(kind, args.seed + i, admin_url, root)
                trials.append(trial)
                print(describe(trial), file=sys.stderr, flush=True)
    print(table(trials))
    failed = [t for t in trials if t.failed]
    if failed:
        print(f"{len(failed)} of {len(trials)} trials failed", file=sys.stderr)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
