"""`review-loop demo --scenario llm`: the loop with model agents, on both local sandboxes;
`--scenario budget`: the same PR under a per-PR budget the model fixer's run would pass.

The sample PR has lint and formatting problems and a logic bug no linter reports (a count
parameter never checked for negative values). Beside ruff, a model reviewer audits each
changed file, a model fixer fixes its finding with search/replace edits, and the reviewer's
model verifies the fix before it lands. Both models are the **scripted** model sandbox
(`bot/sandbox/models`): rules, not a real LLM, and everything it says says so. The same
catalog entries pointed at a real endpoint (OpenAI, Anthropic, Ollama, vLLM) run the same
code path.
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

from bot.agents.models import total_cost
from bot.demo.run import (
    AUTHOR,
    BASE_FILES,
    PR_FILES,
    REPO,
    Progress,
    _git,
    collect_result,
    print_summary,
)
from bot.demo.stack import local_stack, wait_settled
from bot.loop.model_store import ModelStore
from bot.sandbox.models import Edit, ModelSandbox, Rule, Scenario

REVIEWER = "scripted-review"
FIXER = "scripted-fix"
SCRIPTED_NOTE = (
    "Model agents: {reviewer} (OpenAI chat completions wire) and {fixer} (Anthropic Messages "
    "wire) on the local model sandbox at {url}. It is SCRIPTED, not a real LLM: its findings, "
    "edits and verdicts come from the demo's rules."
)

ORDERS = (
    '"""Orders taken from stock."""\n\n\n'
    "def take(levels: dict[str, int], item: str, count: int) -> int:\n"
    "    levels[item] = levels.get(item, 0) - count\n"
    "    return levels[item]\n"
)
CHECKED = (
    "    if count < 0:\n"
    '        raise ValueError("count must not be negative")\n'
    "    levels[item] = levels.get(item, 0) - count"
)
NEGATIVE_COUNT = Rule(
    "negative-count",
    pattern=r"def \w+\(.*\bcount: int",
    unless=r"count < 0",
    category="correctness",
    severity="high",
    title="count is never checked for negative values (scripted reviewer)",
    rationale="a negative count silently adds stock instead of taking it.",
    suggested_fix="Raise ValueError when count < 0.",
    fixes=(Edit(search="    levels[item] = levels.get(item, 0) - count", replace=CHECKED),),
)
CONFIG = f"""\
auditors: [ruff, ruff-format, {REVIEWER}]
routes:
  - analyzer: {REVIEWER}
    agent: {FIXER}
"""
GUIDELINES = "Look for quantities that are never checked for negative values.\n"
# `--scenario budget`: room for the model reviewer's audits (a few tenths of a cent at the
# demo's prices), none for the model fixer's first run (expected at its price for a typical
# run, $0.027): the ruff fixes land, the model finding waits for a person.
BUDGET_USD = 0.02
BUDGET_NOTE = (
    "Budget: `budget: {{per_pr_usd: {usd}}}` in the repository's config; the model fixer's "
    "run is expected to cost more than is left, so it is held while ruff's fixes (cost 0) go on."
)


def write_catalog(workdir: Path, models: ModelSandbox) -> Path:
    """The operator's catalog: two model entries on the sandbox (no key needed there)."""
    path = workdir / "agents.toml"
    path.write_text(
        f"""[agents.{REVIEWER}]
kind = "openai"
model = "scripted-review-model"
base_url = "{models.openai_base_url}"
timeout_s = 30
price = {{ input_per_mtok = 2.0, output_per_mtok = 8.0 }}

[agents.{FIXER}]
kind = "anthropic"
model = "scripted-fix-model"
base_url = "{models.anthropic_base_url}"
timeout_s = 30
price = {{ input_per_mtok = 3.0, output_per_mtok = 15.0 }}
"""
    )
    return path


async def run_llm_demo(
    workdir: Path,
    out: Callable[[str], None],
    timeout: float = 300,
    *,
    database_url: str | None = None,
    budget_usd: float | None = None,
) -> dict[str, Any]:
    """Run the demo; with `budget_usd`, under that per-PR budget."""
    started = time.monotonic()
    config = CONFIG if budget_usd is None else f"{CONFIG}budget:\n  per_pr_usd: {budget_usd}\n"
    where = "embedded PostgreSQL" if database_url is None else "PostgreSQL server"
    models = await asyncio.to_thread(ModelSandbox.start, Scenario([NEGATIVE_COUNT]))
    try:
        out(
            f"Starting the local GitHub sandbox, the scripted model sandbox and the bot "
            f"({where})..."
        )
        out(SCRIPTED_NOTE.format(reviewer=REVIEWER, fixer=FIXER, url=models.url))
        if budget_usd is not None:
            out(BUDGET_NOTE.format(usd=budget_usd))
        agents = write_catalog(workdir, models)
        async with local_stack(workdir, database_url=database_url, agents_file=agents) as stack:
            driver = stack.sandbox.driver

            def setup() -> tuple[str, int]:
                files = dict(BASE_FILES)
                files[".github/review-loop.yml"] = config
                files[".github/review-loop/review.md"] = GUIDELINES
                driver.create_user(AUTHOR)
                driver.create_org("acme")
                driver.create_repo(REPO, files, author=AUTHOR)
                driver.set_permission(REPO, AUTHOR, "write")
                driver.install_app("acme", sender=AUTHOR)
                base = driver.repo(REPO)["default_branch"]
                base_sha = _git(Path.cwd(), "ls-remote", driver.remote_url(REPO, AUTHOR), base)
                pr_files = dict(PR_FILES)
                pr_files["inventory/orders.py"] = ORDERS
                driver.push(
                    REPO, "add-report", pr_files, as_user=AUTHOR, message="Add report and orders"
                )
                pr = driver.open_pr(
                    REPO,
                    "add-report",
                    as_user=AUTHOR,
                    title="Add a stock report and orders",
                    body="Adds inventory/report.py and inventory/orders.py.",
                )
                return base_sha.split()[0], int(pr["number"])

            base_sha, number = await asyncio.to_thread(setup)
            out(
                f"Opened {REPO}#{number}: unused imports, unformatted code, and a count that "
                "is never checked for negative values (no linter reports that)."
            )
            progress = Progress(out)
            row = await wait_settled(
                stack,
                REPO,
                number,
                timeout=timeout,
                on_progress=lambda: progress.poll(stack, number),
            )
            await progress.poll(stack, number)
            result = await asyncio.to_thread(
                collect_result, stack, number, base_sha, workdir, row.state, row.round
            )
            calls = await ModelStore(stack.runtime.pool).calls(REPO, number)
            reason = row.reason or ""
            issues = await asyncio.to_thread(driver.issues, REPO, "all")
    finally:
        await asyncio.to_thread(models.stop)
    llm = [i for i in issues if "pull_request" not in i and f"({REVIEWER}, " in (i["body"] or "")]
    cost = total_cost(calls)
    result |= {
        "scripted_models": True,
        "llm_findings": len(llm),
        "llm_findings_fixed": sum(1 for i in llm if i["state"] == "closed"),
        "models_used": sorted({c.model for c in calls}),
        "model_calls": len(calls),
        "model_calls_by_purpose": {
            p: sum(1 for c in calls if c.purpose == p) for p in sorted({c.purpose for c in calls})
        },
        "tokens_by_purpose": {
            p: [
                sum(c.tokens_in for c in calls if c.purpose == p),
                sum(c.tokens_out for c in calls if c.purpose == p),
            ]
            for p in sorted({c.purpose for c in calls})
        },
        "tokens_in": sum(c.tokens_in for c in calls),
        "tokens_out": sum(c.tokens_out for c in calls),
        "cost_usd": None if cost is None else round(cost, 6),
        "reason": reason,
        "budget_usd": budget_usd,
        "stopped_by_budget": result["state"] == "needs-human" and "budget `" in reason,
        "wall_s": round(time.monotonic() - started, 1),
    }
    return result


def print_llm_summary(result: dict[str, Any], out: Callable[[str], None]) -> None:
    out(
        f"   {result['llm_findings']} finding(s) by the scripted model reviewer, "
        f"{result['llm_findings_fixed']} fixed by the scripted model fixer and verified"
    )
    cost = "unpriced" if result["cost_usd"] is None else f"${result['cost_usd']:.4f}"
    out(
        f"   {result['model_calls']} scripted model calls "
        f"({', '.join(f'{n} {p}' for p, n in result['model_calls_by_purpose'].items())}): "
        f"{result['tokens_in']} tokens in, {result['tokens_out']} out, {cost} at the demo's "
        "made-up prices (the models are scripted; nothing was spent)"
    )


def main(*, as_json: bool, keep: bool = False, scenario: str = "llm") -> int:
    """`demo --scenario llm` (ends ready) or `--scenario budget` (ends needs-human, held by
    the budget)."""
    budget = BUDGET_USD if scenario == "budget" else None
    workdir = Path(tempfile.mkdtemp(prefix=f"review-loop-demo-{scenario}-"))

    def out(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    try:
        result = asyncio.run(run_llm_demo(workdir, out, budget_usd=budget))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result, out)
    print_llm_summary(result, out)
    if budget is not None:
        out(f"   Stopped by the budget: {result['reason']}")
    if as_json:
        print(json.dumps(result), flush=True)
    if budget is not None:
        return 0 if result["stopped_by_budget"] and result["base_untouched"] else 1
    ok = result["converged"] and result["pr_branch_clean"] and result["base_untouched"]
    return 0 if ok and result["llm_findings_fixed"] >= 1 else 1
