"""`review-loop demo`: the whole loop against the local GitHub on the embedded database.

A sample Python repository gets a pull request with lint and formatting problems on its
changed lines; the bot audits it, files issues, fixes them in worktrees of their own, merges
the fixes into the PR branch and audits again until only a human approval is left.
"""

import asyncio
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from bot.demo.stack import LocalStack, local_stack, wait_settled
from bot.github.markers import parse_marker
from bot.labels import FINDING_LABEL

REPO = "acme/inventory"
AUTHOR = "alice"

BASE_FILES = {
    "README.md": "# inventory\n\nA tiny sample project for the review-loop demo.\n",
    "pyproject.toml": (
        '[project]\nname = "inventory"\nversion = "0.1.0"\n\n'
        '[tool.ruff]\nline-length = 100\n\n[tool.ruff.lint]\nselect = ["E", "F", "I"]\n'
    ),
    "inventory/__init__.py": '"""Stock keeping."""\n',
    "inventory/stock.py": (
        '"""Stock levels."""\n\n\ndef restock(levels: dict[str, int], item: str, count: int)'
        " -> int:\n    levels[item] = levels.get(item, 0) + count\n    return levels[item]\n"
    ),
}

# The pull request: unused imports (ruff F401) and code ruff format would rewrite.
PR_FILES = {
    "inventory/report.py": (
        '"""Reports on stock levels."""\n\nimport json\nimport os\nimport sys\n\n\n'
        "def total(levels: dict[str, int]) -> int:\n    return sum(levels.values())\n\n\n"
        "def low_stock(levels: dict[str, int], threshold: int = 5) -> list[str]:\n"
        "    return sorted(item for item, count in levels.items() if count < threshold)\n\n\n"
        "def render(levels: dict[str, int]) -> str:\n"
        "    report = {'total' : total(levels), 'low': low_stock(levels)}\n"
        "    return json.dumps(report,indent = 2)\n"
    ),
}


@dataclass
class Progress:
    """What the demo has seen so far, printed as it changes."""

    out: Callable[[str], None]
    seen_issues: set[int] = field(default_factory=set)
    closed_issues: set[int] = field(default_factory=set)
    seen_prs: dict[int, str] = field(default_factory=dict)
    last_state: str = ""
    running: str = ""

    async def poll(self, stack: LocalStack, pr_number: int) -> None:
        driver = stack.sandbox.driver
        issues = await asyncio.to_thread(driver.issues, REPO, "all")
        for issue in sorted(issues, key=lambda i: i["number"]):
            if "pull_request" in issue:
                continue
            n = issue["number"]
            if n not in self.seen_issues:
                self.seen_issues.add(n)
                self.out(f"  filed   #{n} {issue['title']}")
            if issue["state"] == "closed" and n not in self.closed_issues:
                self.closed_issues.add(n)
                self.out(f"  closed  #{n} (fixed)")
        pulls = await asyncio.to_thread(driver.pulls, REPO, "all")
        for pull in sorted(pulls, key=lambda p: p["number"]):
            if pull["number"] == pr_number:
                continue
            state = "merged" if pull.get("merged_at") else pull["state"]
            if self.seen_prs.get(pull["number"]) != state:
                self.seen_prs[pull["number"]] = state
                verb = {"open": "opened", "merged": "merged", "closed": "closed"}[state]
                self.out(f"  fix PR  #{pull['number']} {verb}: {pull['title']}")
        async with stack.runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT state, round, reason FROM review_loop_prs WHERE repo = %s AND number = %s",
                (REPO, pr_number),
            )
            row = await cur.fetchone()
            cur = await conn.execute(
                """SELECT agent, count(*) AS n FROM review_loop_tasks
                    WHERE repo = %s AND status = 'running' GROUP BY agent ORDER BY agent""",
                (REPO,),
            )
            running = ", ".join(f"{r['agent']} x{r['n']}" for r in await cur.fetchall())
        if row is not None:
            state = f"round {row['round']}: {row['state']}"
            if state != self.last_state:
                self.last_state = state
                reason = f" ({row['reason']})" if row["reason"] else ""
                self.out(f"  loop    {state}{reason}")
        if running and running != self.running:
            self.out(f"  agents  running: {running}")
        self.running = running


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(
        ["git", *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


def check_branch(stack: LocalStack, branch: str, workdir: Path) -> dict[str, bool]:
    """Clone `branch` as a human would and run ruff on it."""
    clone = workdir / f"check-{branch.replace('/', '-')}"
    url = stack.sandbox.driver.remote_url(REPO, AUTHOR)
    subprocess.run(
        ["git", "clone", "--quiet", "--branch", branch, url, str(clone)],
        check=True,
        capture_output=True,
    )
    ruff = find_ruff_bin()
    lint = subprocess.run([ruff, "check", "--no-cache", "."], cwd=clone, capture_output=True)
    fmt = subprocess.run(
        [ruff, "format", "--check", "--no-cache", "."], cwd=clone, capture_output=True
    )
    return {"ruff_check": lint.returncode == 0, "ruff_format": fmt.returncode == 0}


async def run_demo(
    workdir: Path,
    out: Callable[[str], None],
    timeout: float = 300,
    *,
    database_url: str | None = None,
    faults: dict[str, Any] | None = None,
    requests: bool = False,
) -> dict[str, Any]:
    """Play the demo scenario; `faults` are sandbox fault switches (tests use them); with
    `requests`, the result carries the bot's API requests under "requests"."""
    started = time.monotonic()
    where = "embedded PostgreSQL" if database_url is None else "PostgreSQL server"
    out(f"Starting the local GitHub sandbox and the bot ({where})...")
    async with local_stack(workdir, database_url=database_url) as stack:
        driver = stack.sandbox.driver
        if faults:
            await asyncio.to_thread(driver.set_faults, **faults)

        def setup() -> tuple[str, int]:
            driver.create_user(AUTHOR)
            driver.create_org("acme")
            driver.create_repo(REPO, dict(BASE_FILES), author=AUTHOR)
            driver.set_permission(REPO, AUTHOR, "write")
            driver.install_app("acme", sender=AUTHOR)
            base = driver.repo(REPO)["default_branch"]
            base_sha = _remote_head(driver, base)
            driver.push(
                REPO, "add-report", dict(PR_FILES), as_user=AUTHOR, message="Add stock report"
            )
            pr = driver.open_pr(
                REPO,
                "add-report",
                as_user=AUTHOR,
                title="Add a stock report",
                body="Adds inventory/report.py.",
            )
            return base_sha, int(pr["number"])

        def _remote_head(drv: Any, branch: str) -> str:
            refs = _git(Path.cwd(), "ls-remote", drv.remote_url(REPO, AUTHOR), branch)
            return refs.split()[0]

        base_sha, number = await asyncio.to_thread(setup)
        out(f"Opened {REPO}#{number}: a new module with unused imports and unformatted code.")
        progress = Progress(out)
        row = await wait_settled(
            stack, REPO, number, timeout=timeout, on_progress=lambda: progress.poll(stack, number)
        )
        await progress.poll(stack, number)
        result = await asyncio.to_thread(
            collect_result, stack, number, base_sha, workdir, row.state, row.round
        )
        if requests:
            result["requests"] = await asyncio.to_thread(driver.requests)
    result["wall_s"] = round(time.monotonic() - started, 1)
    return result


def collect_result(
    stack: LocalStack, number: int, base_sha: str, workdir: Path, state: str, rounds: int
) -> dict[str, Any]:
    """The outcome, read from the sandbox (what a person on GitHub would see)."""
    driver = stack.sandbox.driver
    issues = [i for i in driver.issues(REPO, "all") if "pull_request" not in i]
    findings = [i for i in issues if FINDING_LABEL in {lbl["name"] for lbl in i["labels"]}]
    fps = Counter((parse_marker(i.get("body")) or {}).get("fp") for i in findings)
    pulls = [p for p in driver.pulls(REPO, "all") if p["number"] != number]
    fix_prs = [p for p in pulls if p["head"]["ref"].startswith("review-loop/")]
    pr = driver.pull(REPO, number)
    agents = sorted(
        {
            lbl["name"].split(":", 1)[1]
            for i in findings
            for lbl in i["labels"]
            if lbl["name"].startswith("agent:")
        }
    )
    reviews = driver._api("GET", f"/repos/{REPO}/pulls/{number}/reviews")
    bot_approvals = [
        r for r in reviews if r["user"]["login"].endswith("[bot]") and r["state"] == "APPROVED"
    ]
    checks = check_branch(stack, pr["head"]["ref"], workdir)
    comments = driver.comments(REPO, number)
    summaries = [c for c in comments if (parse_marker(c["body"]) or {}).get("kind") == "summary"]
    runs = [r for r in driver.check_runs(REPO, pr["head"]["sha"]) if r["name"] == "review-loop"]
    # Closed by a merged fix PR of the bot ("Fixes #n" in its body), or by the bot's close
    # comment (its marker first, then "Fixed in <sha>") when the finding went otherwise.
    fixed_by_pr = {
        int(n)
        for p in fix_prs
        if p.get("merged_at")
        for n in re.findall(r"Fixes #(\d+)", p.get("body") or "")
    }
    closed_by_fix = [
        i
        for i in findings
        if i["state"] == "closed"
        and (
            i["number"] in fixed_by_pr
            or any(
                c["body"].split("\n", 1)[-1].startswith("Fixed in")
                for c in driver.comments(REPO, i["number"])
            )
        )
    ]
    base_now = _git(
        workdir, "ls-remote", driver.remote_url(REPO, AUTHOR), f"refs/heads/{pr['base']['ref']}"
    ).split()[0]
    return {
        "converged": state == "ready",
        "state": state,
        "rounds": rounds,
        "pr": number,
        "findings_filed": len(findings),
        "issues_closed": sum(1 for i in findings if i["state"] == "closed"),
        "issues_closed_by_fix": len(closed_by_fix),
        "summary_comments": len(summaries),
        "check_runs_at_head": len(runs),
        "webhooks_duplicated": driver.fault_stats()["injected"].get("webhook_duplicate", 0),
        "fix_prs_opened": len(fix_prs),
        "fix_prs_merged": sum(1 for p in fix_prs if p.get("merged_at")),
        "agents_used": agents,
        "duplicate_issues": sorted(fp for fp, n in fps.items() if fp and n > 1),
        "pr_branch_clean": checks["ruff_check"] and checks["ruff_format"],
        "base_untouched": base_now == base_sha,
        "bot_approvals": len(bot_approvals),
    }


def print_summary(result: dict[str, Any], out: Callable[[str], None]) -> None:
    mark = "✅" if result["converged"] else "🛑"
    out("")
    out(
        f"{mark} {REPO}#{result['pr']} is {result['state']} after {result['rounds']} round(s) "
        f"in {result['wall_s']} s"
    )
    out(
        f"   {result['findings_filed']} findings filed as issues, {result['issues_closed']} "
        f"closed by their fixes"
    )
    out(
        f"   {result['fix_prs_opened']} fix PRs opened, {result['fix_prs_merged']} merged into "
        f"the PR branch by agents: {', '.join(result['agents_used']) or 'none'}"
    )
    out(
        f"   PR branch passes ruff check and ruff format --check: "
        f"{'yes' if result['pr_branch_clean'] else 'NO'}; base branch untouched: "
        f"{'yes' if result['base_untouched'] else 'NO'}; approvals by the bot: "
        f"{result['bot_approvals']}"
    )


def main(*, as_json: bool, keep: bool = False) -> int:
    workdir = Path(tempfile.mkdtemp(prefix="review-loop-demo-"))
    lines: list[str] = []

    def out(line: str) -> None:
        lines.append(line)
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    try:
        result = asyncio.run(run_demo(workdir, out))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result, out)
    if as_json:
        print(json.dumps(result), flush=True)
    ok = result["converged"] and result["pr_branch_clean"] and result["base_untouched"]
    return 0 if ok else 1
