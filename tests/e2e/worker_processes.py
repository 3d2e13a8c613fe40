"""Building blocks for scale scenarios: worker processes, a recording agent, many PRs."""

import asyncio
import contextlib
import json
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from bot.demo.stack import LocalStack
from tests.e2e.scenario import AUTHOR, PYPROJECT, REPO, write_agent

ROOT = Path(__file__).parents[2]
FILES_PER_PR = 5
# Removing `import os` and the blank line after it leaves the module formatted.
MODULE = '"""Module {name}."""\n\nimport os\n\n\ndef value() -> int:\n    return {k}\n'


def module_path(pr_index: int, k: int) -> str:
    return f"shop/pr{pr_index}_m{k}.py"


@dataclass(frozen=True)
class Worker:
    proc: "subprocess.Popen[bytes]"
    data_dir: Path
    log: Path  # the worker's stdout and stderr

    def output(self, limit: int = 20_000) -> str:
        """The end of what the worker wrote (its log lines, a traceback it died with)."""
        text = self.log.read_text(errors="replace") if self.log.exists() else ""
        return text[-limit:]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def ran(self, run: "AgentRun") -> bool:
        """Whether this worker started `run`: its worktree lies in the worker's data directory.
        (The run's parent pid is no proof: an agent whose worker was killed before it logged
        its start reports init as its parent, and an agent in its own PID namespace sees 0.)"""
        return run.cwd.startswith(f"{self.data_dir.resolve()}{os.sep}")


@contextlib.contextmanager
def worker_processes(
    stack: LocalStack, workdir: Path, database_url: str, count: int, **settings: object
) -> Iterator[list[Worker]]:
    """`count` real `review-loop worker` processes, each with its own data directory;
    stopped (TERM, then KILL) at the end."""
    base = {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}
    s = stack.settings
    assert s.webhook_secret is not None
    common = {
        "DATABASE_URL": database_url,
        "GITHUB_URL": s.github_url,
        "APP_ID": str(s.app_id),
        "PRIVATE_KEY_PATH": str(s.private_key_path),
        "WEBHOOK_SECRET": s.webhook_secret.get_secret_value(),
        "AGENTS_FILE": str(s.agents_file),
        "LOG_LEVEL": "WARNING",
        "WRITE_INTERVAL_S": "0.05",
        "WRITES_PER_MINUTE": "100000",
        "WRITES_PER_HOUR": "1000000",
        "JOB_POLL_INTERVAL_S": str(s.job_poll_interval_s),
        **{name.upper(): str(value) for name, value in settings.items()},
    }
    workers: list[Worker] = []
    try:
        for i in range(count):
            data_dir = workdir / f"worker-{i}"
            data_dir.mkdir()
            env = base | {f"REVIEW_LOOP_{k}": v for k, v in common.items()}
            env["REVIEW_LOOP_DATA_DIR"] = str(data_dir)
            log = (workdir / f"worker-{i}.log").open("wb")
            proc = subprocess.Popen(
                [sys.executable, "-m", "bot.cli", "worker"],
                cwd=ROOT,
                env=env,
                stdout=log,
                stderr=subprocess.STDOUT,
            )
            log.close()
            workers.append(Worker(proc, data_dir, workdir / f"worker-{i}.log"))
        yield workers
    except BaseException:
        for w in workers:
            print(f"--- worker {w.pid} (exit {w.proc.poll()}), {w.log}:\n{w.output()}")
        raise
    finally:
        for w in workers:
            if w.proc.poll() is None:
                w.proc.send_signal(signal.SIGTERM)
        for w in workers:
            try:
                w.proc.wait(15)
            except subprocess.TimeoutExpired:
                w.proc.kill()
                w.proc.wait()


def recording_agent(workdir: Path, log: Path, sleep_s: float) -> list[str]:
    """A command agent that logs who ran it, where and for which files, waits `sleep_s`,
    then removes the unused `import os` from every file its brief lists."""
    return write_agent(
        workdir,
        "recorder",
        f"""
        import json, re, uuid
        run = uuid.uuid4().hex  # in its own PID namespace, every agent is pid 1
        brief = sys.stdin.read()
        paths = re.findall(r"^\\d+\\. ruff F401 in `([^`]+)`", brief, re.M)

        def record(event):
            line = json.dumps({{"event": event, "run": run, "pid": os.getpid(),
                                "ppid": os.getppid(), "cwd": os.getcwd(), "paths": paths,
                                "t": time.time()}})
            with open({str(log)!r}, "a") as f:
                f.write(line + "\\n")

        record("start")
        time.sleep({sleep_s})
        for p in paths:
            f = pathlib.Path(p)
            f.write_text(f.read_text().replace("import os\\n\\n", ""))
        record("end")
    """,
    )


@dataclass(frozen=True)
class AgentRun:
    pid: int
    worker_pid: int
    cwd: str
    paths: tuple[str, ...]
    started: float
    ended: float | None  # None: the run never finished (its worker was killed)

    def overlaps(self, other: "AgentRun") -> bool:
        end, other_end = self.ended or float("inf"), other.ended or float("inf")
        return self.started < other_end and other.started < end


def agent_runs(log: Path) -> list[AgentRun]:
    if not log.exists():
        return []
    events = [json.loads(line) for line in log.read_text().splitlines() if line]
    ends = {e["run"]: e["t"] for e in events if e["event"] == "end"}
    return [
        AgentRun(e["pid"], e["ppid"], e["cwd"], tuple(e["paths"]), e["t"], ends.get(e["run"]))
        for e in events
        if e["event"] == "start"
    ]


async def open_prs(stack: LocalStack, count: int, config: str) -> list[int]:
    """One repository (with `config`) and `count` PRs, each adding FILES_PER_PR modules with
    one unused import apiece; returns the PR numbers in order."""
    driver = stack.sandbox.driver

    def setup() -> list[int]:
        driver.create_user(AUTHOR)
        driver.create_org("acme")
        files = {
            "pyproject.toml": PYPROJECT,
            "shop/__init__.py": '"""Shop."""\n',
            ".github/review-loop.yml": config,
        }
        driver.create_repo(REPO, files, author=AUTHOR)
        driver.set_permission(REPO, AUTHOR, "write")
        driver.install_app("acme", sender=AUTHOR)
        numbers = []
        for i in range(count):
            modules = {
                module_path(i, k): MODULE.format(name=f"{i}.{k}", k=k) for k in range(FILES_PER_PR)
            }
            driver.push(REPO, f"change-{i}", dict(modules), as_user=AUTHOR, message=f"Change {i}")
            pr = driver.open_pr(REPO, f"change-{i}", as_user=AUTHOR, title=f"Change {i}")
            numbers.append(int(pr["number"]))
        return numbers

    return await asyncio.to_thread(setup)


def bare_git(stack: LocalStack, *args: str) -> str:
    """Run git in the sandbox's bare copy of the repository."""
    bare = stack.sandbox.hub.store.repos_dir / f"{REPO}.git"
    out = subprocess.run(["git", *args], cwd=bare, capture_output=True, text=True, check=True)
    return out.stdout


def fix_commits(stack: LocalStack, ref: str) -> list[tuple[int, list[str]]]:
    """The fix commits (`Fix #N: ...`) reachable from `ref`: their issue and changed files."""
    out = bare_git(stack, "log", "--no-merges", "--name-only", "--format=%x00%s", ref)
    commits = []
    for entry in out.split("\0")[1:]:
        subject, *files = entry.strip().splitlines()
        if subject.startswith("Fix #"):
            number = int(subject.split()[1].rstrip(":").lstrip("#"))
            commits.append((number, [f for f in files if f]))
    return commits
