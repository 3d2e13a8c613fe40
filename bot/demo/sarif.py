"""`review-loop demo --scenario sarif`: SARIF analyzers from the operator's catalog audit a
small mixed-language repository (Python and JavaScript) beside ruff.

semgrep (a local rules file, offline) finds a `print` in Python and a `console.log` in JavaScript;
its own fixes, marked safe by the operator, are applied exactly by `sarif-fix` and
verified. bandit runs too, with the repository's `min_level` dropping its notes. Needs
bandit[sarif] and semgrep (`pip install -e '.[analyzers]'`, part of the test extras).
"""

import asyncio
import json
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.demo.run import AUTHOR, BASE_FILES, REPO, Progress, _git, collect_result, print_summary
from bot.demo.stack import local_stack, wait_settled

AUDITORS = ["ruff", "ruff-format", "bandit", "semgrep"]
RULES = """\
rules:
  - id: no-print
    languages: [python]
    severity: WARNING
    message: Use logging, not print, in library code.
    pattern: print($X)
    fix: logging.info($X)
  - id: no-console-log
    languages: [javascript]
    severity: WARNING
    message: Log with console.info, which the app's log shipper keeps.
    pattern: console.log($X)
    fix: console.info($X)
"""
CONFIG = f"auditors: [{', '.join(AUDITORS)}]\nmin_level: {{bandit: warning}}\n"
PR_FILES = {
    "inventory/sync.py": (
        '"""Sync stock from the warehouse."""\n\nimport logging\nimport subprocess\n\n'
        "log = logging.getLogger(__name__)\n\n\n"
        "def sync(levels: dict[str, int]) -> int:\n"
        "    print(levels)\n"
        '    return subprocess.run(["true"], check=False).returncode\n'
    ),
    "web/stock.js": (
        "const threshold = 5;\nconsole.log(threshold);\n"
        "export function low(count) {\n  return count < threshold;\n}\n"
    ),
}


def tools() -> dict[str, str]:
    """bandit and semgrep beside this Python (its venv), or an empty dict."""
    found = {name: Path(sys.executable).parent / name for name in ("bandit", "semgrep")}
    return (
        {n: str(p) for n, p in found.items() if p.exists()}
        if all(p.exists() for p in found.values())
        else {}
    )


def write_catalog(workdir: Path, found: dict[str, str]) -> Path:
    rules = workdir / "semgrep-rules.yml"
    rules.write_text(RULES)
    path = workdir / "agents.toml"
    path.write_text(
        f"""[auditors.bandit]
kind = "sarif"
argv = ["{found["bandit"]}", "-q", "-f", "sarif", "-o", "{{sarif}}"]
sarif = "file"
changed_files = true
paths = ["*.py"]

[auditors.semgrep]
kind = "sarif"
argv = ["{found["semgrep"]}", "scan", "--metrics=off", "--disable-version-check", "--quiet",
        "--config", "{rules}", "--no-rewrite-rule-ids", "--sarif", "--autofix", "--dryrun"]
paths = ["*.py", "*.js"]
safe_fixes = ["*"]
fix_lines = true
"""
    )
    return path


async def run_sarif_demo(
    workdir: Path, out: Callable[[str], None], timeout: float = 300, *,
    database_url: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    started = time.monotonic()
    found = tools()
    if not found:
        raise RuntimeError("the sarif demo needs bandit and semgrep: pip install -e '.[test]'")
    agents = write_catalog(workdir, found)
    out("Starting the local GitHub sandbox and the bot, with bandit and semgrep as auditors...")
    async with local_stack(workdir, database_url=database_url, agents_file=agents) as stack:
        driver = stack.sandbox.driver

        def setup() -> tuple[str, int]:
            files = dict(BASE_FILES)
            files[".github/review-loop.yml"] = CONFIG
            driver.create_user(AUTHOR)
            driver.create_org("acme")
            driver.create_repo(REPO, files, author=AUTHOR)
            driver.set_permission(REPO, AUTHOR, "write")
            driver.install_app("acme", sender=AUTHOR)
            base = driver.repo(REPO)["default_branch"]
            base_sha = _git(Path.cwd(), "ls-remote", driver.remote_url(REPO, AUTHOR), base)
            driver.push(REPO, "add-sync", dict(PR_FILES), as_user=AUTHOR, message="Add sync")
            pr = driver.open_pr(REPO, "add-sync", as_user=AUTHOR, title="Sync and a web view")
            return base_sha.split()[0], int(pr["number"])

        base_sha, number = await asyncio.to_thread(setup)
        out(f"Opened {REPO}#{number}: a Python module and a JavaScript file.")
        progress = Progress(out)
        row = await wait_settled(
            stack, REPO, number, timeout=timeout, on_progress=lambda: progress.poll(stack, number)
        )
        await progress.poll(stack, number)
        result = await asyncio.to_thread(
            collect_result, stack, number, base_sha, workdir, row.state, row.round
        )
    result["auditors_used"] = AUDITORS
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def main(*, as_json: bool, keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="review-loop-demo-sarif-"))

    def out(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    try:
        result = asyncio.run(run_sarif_demo(workdir, out))
    except RuntimeError as exc:
        print(f"review-loop demo: {exc}", file=sys.stderr)
        return 2
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result, out)
    out(f"   auditors: {', '.join(result['auditors_used'])}")
    if as_json:
        print(json.dumps(result), flush=True)
    ok = result["converged"] and result["pr_branch_clean"] and result["base_untouched"]
    return 0 if ok else 1
