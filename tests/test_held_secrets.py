"""Secrets leave the environment block by a re-exec, the worker is non-dumpable, and
repository code runs where it sees no process of the bot's."""

import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from bot import process
from bot.held_secrets import SECRETS_FD_ENV, secret_names, settings_overrides

ROOT = Path(__file__).parents[1]
SECRET = "s3cr3t-value-for-the-test"

# The start of `serve`/`worker`: take the secrets, or re-exec without them; then report what
# /proc shows of this very process.
PROGRAM = textwrap.dedent(
    """
    import json, os, pathlib, sys
    from bot import held_secrets
    secrets = held_secrets.take_secrets()
    if not secrets:
        held_secrets.reexec_without_secrets(held_secrets.secret_names(os.environ, ["AN_API_KEY"]))
    held_secrets.make_undumpable()
    print(json.dumps({
        "pid": os.getpid(),
        "environ": pathlib.Path("/proc/self/environ").read_bytes().decode(),
        "os_environ": sorted(os.environ),
        "held": secrets,
        "agents_see": held_secrets.environ_with_secrets().get("AN_API_KEY"),
        "dumpable": held_secrets.is_dumpable(),
        "argv": sys.argv[1:],
    }))
    """
)


def run_program(env: dict[str, str], *args: str) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        [sys.executable, "-c", PROGRAM, *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    )


def test_the_reexec_leaves_no_secret_in_the_environment_block() -> None:
    """After the re-exec (same pid), /proc/self/environ and os.environ hold no secret; the
    process holds them, the settings get them, agents still get their API key."""
    base = {"PATH": os.environ["PATH"]}
    env = base | {
        "REVIEW_LOOP_WEBHOOK_SECRET": SECRET,
        "REVIEW_LOOP_DATABASE_URL": f"postgresql://u:{SECRET}@db/x",
        "AN_API_KEY": f"key-{SECRET}",
        "REVIEW_LOOP_LOG_LEVEL": "INFO",
    }
    with subprocess.Popen(
        [sys.executable, "-c", PROGRAM, "an-argument"],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    ) as proc:
        out, _ = proc.communicate(timeout=60)
    seen = json.loads(out)

    assert proc.returncode == 0
    assert seen["pid"] == proc.pid, "the re-exec keeps the pid"
    assert seen["argv"] == ["an-argument"], "and the command line"
    assert SECRET not in seen["environ"]
    assert "REVIEW_LOOP_LOG_LEVEL=INFO" in seen["environ"], "other settings stay"
    assert not {"REVIEW_LOOP_WEBHOOK_SECRET", "AN_API_KEY", SECRETS_FD_ENV} & set(
        seen["os_environ"]
    )
    assert seen["held"]["REVIEW_LOOP_WEBHOOK_SECRET"] == SECRET
    assert seen["agents_see"] == f"key-{SECRET}"
    assert seen["dumpable"] is False
    assert settings_overrides(seen["held"]) == {
        "webhook_secret": SECRET,
        "database_url": f"postgresql://u:{SECRET}@db/x",
    }


def test_without_secrets_in_the_environment_nothing_is_reexecuted() -> None:
    """No secret in the environment (say, all in .env): no re-exec, nothing held."""
    seen = json.loads(run_program({"PATH": os.environ["PATH"]}).stdout)
    assert seen["held"] == {}
    assert seen["dumpable"] is False


@pytest.mark.parametrize(
    ("name", "secret"),
    [
        ("REVIEW_LOOP_WEBHOOK_SECRET", True),
        ("review_loop_database_url", True),  # settings are read case-insensitively
        ("REVIEW_LOOP_PRIVATE_KEY_PATH", True),
        ("REVIEW_LOOP_DASHBOARD_TOKEN", True),
        ("REVIEW_LOOP_LOG_LEVEL", False),
        ("OPENAI_API_KEY", True),  # named by the agent catalog
        ("HOME", False),
    ],
)
def test_secret_names(name: str, secret: bool) -> None:
    """The secret settings and the catalog's variables are secrets; nothing else is."""
    assert (secret_names({name: "x"}, ["OPENAI_API_KEY"]) == [name]) is secret


@pytest.mark.skipif(
    os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root and setpriv"
)
def test_a_non_dumpable_process_hides_its_environ_from_its_own_user(tmp_path: Path) -> None:
    """Two processes of one (non-root) user: the second cannot read the first's
    /proc/<pid>/environ once the first made itself non-dumpable."""
    as_nobody = ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups"]
    holder = subprocess.Popen(
        [*as_nobody, sys.executable, "-c",
         "import sys, time; from bot.held_secrets import make_undumpable; "
         "make_undumpable(); print('ready', flush=True); time.sleep(60)"],
        cwd=ROOT,
        env={"PATH": os.environ["PATH"], "HELD": SECRET, "PYTHONPATH": str(ROOT)},
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline() == "ready\n"
        reader = subprocess.run(
            [*as_nobody, "cat", f"/proc/{holder.pid}/environ"],
            capture_output=True,
            timeout=30,
        )
        assert reader.returncode != 0
        assert SECRET.encode() not in reader.stdout
    finally:
        holder.kill()
        holder.communicate()


async def test_confined_code_sees_no_process_of_the_caller(tmp_path: Path) -> None:
    """A confined program's /proc lists only its own namespace: not this process, not its
    parent's environ (where the OS allows a PID namespace; else the test says why it skips)."""
    if not await process.confinement():
        pytest.skip("unshare --pid is missing or refused here: repository code is unconfined")
    script = "import os, json; print(json.dumps([os.getppid(), sorted(os.listdir('/proc'))]))"
    done = await process.run(
        [sys.executable, "-c", script],
        cwd=tmp_path,
        env={"PATH": os.environ["PATH"]},
        timeout_s=30,
        confined=True,
    )
    ppid, entries = json.loads(done.stdout)
    pids = sorted(int(e) for e in entries if e.isdigit())
    assert ppid == 0, "its parent is outside its namespace"
    assert pids == [1], "it sees itself alone"


async def test_a_confined_program_that_does_not_exist_cannot_start(tmp_path: Path) -> None:
    """Confined or not, a missing program is CannotStart, not exit 127."""
    with pytest.raises(process.CannotStart):
        await process.run(
            ["no-such-program-here"],
            cwd=tmp_path,
            env={"PATH": os.environ["PATH"]},
            timeout_s=30,
            confined=True,
        )
