"""Code run for a repository cannot read the worker's secrets: not in the worker's
/proc/<pid>/environ or cmdline, not in any ancestor's, not in any process it can see."""

import json
import sys
import textwrap
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from tests.e2e.scenario import REPO, write_catalog
from tests.e2e.worker_processes import open_prs, recording_agent, worker_processes

pytestmark = [pytest.mark.slow]

# What a hostile `setup` would try: its ancestors' environ and cmdline, the worker's by pid
# (written in by the test), and every process it can see.
SNOOP = """
import json, os, pathlib, sys

def read(path):
    try:
        return pathlib.Path(path).read_bytes().decode(errors="replace")
    except OSError as exc:
        return f"<{type(exc).__name__}>"

seen = {"ppid": os.getppid(), "files": {}}
pid = os.getpid()
while pid > 1:
    for name in ("environ", "cmdline"):
        seen["files"][f"/proc/{pid}/{name}"] = read(f"/proc/{pid}/{name}")
    status = read(f"/proc/{pid}/status")
    pid = next((int(l.split()[1]) for l in status.splitlines() if l.startswith("PPid:")), 0)
for worker in sys.argv[2:]:
    for name in ("environ", "cmdline"):
        seen["files"][f"/proc/{worker}/{name}"] = read(f"/proc/{worker}/{name}")
for proc in pathlib.Path("/proc").glob("[0-9]*"):
    for name in ("environ", "cmdline"):
        seen["files"][f"{proc}/{name}"] = read(f"{proc}/{name}")
with open(sys.argv[1], "a") as out:
    out.write(json.dumps(seen) + "\\n")
"""


async def test_repository_setup_finds_no_secret_of_the_worker_in_proc(
    workdir: Path, e2e_db: str
) -> None:
    """A `setup` command that reads /proc/$PPID/environ, every ancestor's and the worker's
    environ and cmdline, and those of every process it can see, finds neither the webhook
    secret, nor the database URL, nor the private key's path or contents."""
    log = workdir / "agent-runs.jsonl"
    dump = workdir / "snooped.jsonl"
    snoop = workdir / "snoop.py"
    snoop.write_text(textwrap.dedent(SNOOP))
    catalog = write_catalog(workdir, {"recorder": recording_agent(workdir, log, 0)})
    async with local_stack(workdir, database_url=e2e_db, workers=0, agents_file=catalog) as stack:
        with worker_processes(stack, workdir, e2e_db, 1) as workers:
            worker_pid = workers[0].pid
            config = (
                "group_threshold: 100\nroutes:\n  - rule: F401\n    agent: recorder\n"
                f"setup: {sys.executable} {snoop} {dump} {worker_pid}\n"
            )
            (number,) = await open_prs(stack, 1, config)
            row = await wait_settled(stack, REPO, number, timeout=300)
            # What the test (root, outside any namespace) sees of the worker itself.
            worker_environ = Path(f"/proc/{worker_pid}/environ").read_bytes().decode()
            worker_cmdline = Path(f"/proc/{worker_pid}/cmdline").read_bytes().decode()
        settings = stack.settings
        assert settings.webhook_secret is not None and settings.private_key_path is not None
        secrets = {
            "webhook secret": settings.webhook_secret.get_secret_value(),
            "database URL": e2e_db,
            "private key path": str(settings.private_key_path),
            "private key": settings.private_key_path.read_text().splitlines()[1],
        }

    assert row.state == "ready"
    runs = [json.loads(line) for line in dump.read_text().splitlines()]
    assert runs, "the setup command ran"
    for run in runs:
        for path, content in run["files"].items():
            found = [what for what, value in secrets.items() if value in content]
            assert not found, f"setup read the {', '.join(found)} in {path}"
    for where, content in (("environ", worker_environ), ("cmdline", worker_cmdline)):
        found = [what for what, value in secrets.items() if value in content]
        assert not found, f"/proc/<worker>/{where} holds the {', '.join(found)}"
