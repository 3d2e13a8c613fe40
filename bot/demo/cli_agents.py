"""`review-loop demo --scenario cli-agents`: the loop with four real coding-agent CLIs.

The sample PR adds four modules, each with an unused import (ruff F401). The repository's
routes send each module's finding to another catalog entry, one per preset: Claude Code,
Codex, aider and the Gemini CLI, each the real pinned CLI installed by `make agents`. The
models behind them are the **scripted** model sandbox (`bot/sandbox/models`): each CLI's
scripted model answers with that CLI's own way of editing (Claude Code: Read, then Edit;
Codex: apply_patch; aider: a SEARCH/REPLACE block; Gemini: replace). ruff verifies each fix
before it lands. The same catalog entries without `base_url` run the real services.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bot.agents.cli.locate import executable_path, locate
from bot.agents.cli.registry import PRESETS
from bot.demo.run import AUTHOR, BASE_FILES, REPO, Progress, _git, collect_result, print_summary
from bot.demo.stack import local_stack, wait_settled
from bot.loop.model_store import ModelStore
from bot.sandbox.models import Call, ModelSandbox, Say, Scenario

KEY_VAR = "DEMO_MODEL_API_KEY"
DEMO_KEY = "sk-demo-scripted-model-sandbox"  # the sandbox takes any key; the CLIs want one
OLD, NEW = "import json\nimport os\n", "import json\n"


def module(doc: str, name: str) -> str:
    return (
        f'"""{doc}"""\n\nimport json\nimport os\n\n\n'
        f"def {name}(levels: dict[str, int]) -> str:\n    return json.dumps(levels)\n"
    )


# preset -> (catalog entry, file it fixes, scripted model name)
AGENTS = {
    "claude-code": ("claude-fix", "inventory/orders.py", "demo-claude"),
    "codex": ("codex-fix", "inventory/prices.py", "demo-codex"),
    "aider": ("aider-fix", "inventory/labels.py", "demo-aider"),
    "gemini-cli": ("gemini-fix", "inventory/suppliers.py", "demo-gemini"),
}
PR_FILES = {
    "inventory/orders.py": module("Orders.", "orders"),
    "inventory/prices.py": module("Prices.", "prices"),
    "inventory/labels.py": module("Labels.", "labels"),
    "inventory/suppliers.py": module("Suppliers.", "suppliers"),
}
SCRIPTED_NOTE = (
    "Coding agents: the real Claude Code, Codex, aider and Gemini CLI, each on the local model "
    "sandbox at {url}. The models are SCRIPTED, not real LLMs: each answers with its CLI's "
    "own edit (Read+Edit, apply_patch, a SEARCH/REPLACE block, replace)."
)


def turns(preset: str, path: str) -> list[Say | Call]:
    """What the scripted model behind `preset` answers: remove the unused import of `path`."""
    said = f"Removed the unused import of os from {path}."
    if preset == "claude-code":
        absolute = "{cwd}/" + path
        return [
            Call("Read", {"file_path": absolute}),
            Call(
                "Edit",
                {"file_path": absolute, "old_string": OLD, "new_string": NEW, "replace_all": False},
            ),
            Say(said),
        ]
    if preset == "codex":
        patch = f"*** Begin Patch\n*** Update File: {path}\n@@\n import json\n-import os\n"
        command = f"apply_patch <<'EOF'\n{patch}*** End Patch\nEOF\n"
        return [Call("exec_command", {"cmd": command}), Say(said)]
    if preset == "aider":
        block = f"{path}\n```python\n<<<<<<< SEARCH\n{OLD}=======\n{NEW}>>>>>>> REPLACE\n```\n"
        return [Say(f"{said}\n\n{block}")]
    replace = {
        "file_path": "{cwd}/" + path,
        "old_string": OLD,
        "new_string": NEW,
        "instruction": "Remove the unused import of os.",
        "allow_multiple": False,
    }
    return [Call("replace", replace), Say(said)]


def scenario() -> Scenario:
    return Scenario(agents={model: turns(p, path) for p, (_, path, model) in AGENTS.items()})


def config() -> str:
    routes = "".join(
        f"  - rule: F401\n    path: {path}\n    agent: {name}\n"
        for name, path, _ in AGENTS.values()
    )
    return f"auditors: [ruff]\nroutes:\n{routes}"


def write_catalog(workdir: Path, models: ModelSandbox) -> Path:
    """The operator's catalog: one entry per preset, each on the model sandbox."""
    bases = {
        "claude-code": models.anthropic_base_url,
        "codex": models.openai_base_url,
        "aider": models.openai_base_url,
        "gemini-cli": models.gemini_base_url,
    }
    entries = []
    for preset, (name, _, model) in AGENTS.items():
        entries.append(
            f'[agents.{name}]\npreset = "{preset}"\nmodel = "{model}"\n'
            f'base_url = "{bases[preset]}"\napi_key_env = "{KEY_VAR}"\ntimeout_s = 120\n'
        )
    path = workdir / "agents.toml"
    path.write_text("\n".join(entries))
    return path


def missing_clis(agents_dir: Path) -> list[str]:
    """The presets whose CLI is neither installed by `make agents` nor on PATH."""
    return [
        name
        for name in AGENTS
        if locate(name, PRESETS[name].install, agents_dir, os.environ.get("PATH")) is None
    ]


async def run_cli_demo(
    workdir: Path,
    out: Callable[[str], None],
    agents_dir: Path,
    timeout: float = 400,
    *,
    database_url: str | None = None,
) -> dict[str, Any]:
    started = time.monotonic()
    os.environ.setdefault(KEY_VAR, DEMO_KEY)  # the bot hands the key to allow-listed agents
    where = "embedded PostgreSQL" if database_url is None else "PostgreSQL server"
    models = await asyncio.to_thread(ModelSandbox.start, scenario())
    try:
        out(
            f"Starting the local GitHub sandbox, the scripted model sandbox and the bot "
            f"({where})..."
        )
        out(SCRIPTED_NOTE.format(url=models.url))
        catalog = write_catalog(workdir, models)
        async with local_stack(
            workdir, database_url=database_url, agents_file=catalog, agents_dir=agents_dir
        ) as stack:
            driver = stack.sandbox.driver

            def setup() -> tuple[str, int]:
                files = dict(BASE_FILES) | {".github/review-loop.yml": config()}
                driver.create_user(AUTHOR)
                driver.create_org("acme")
                driver.create_repo(REPO, files, author=AUTHOR)
                driver.set_permission(REPO, AUTHOR, "write")
                driver.install_app("acme", sender=AUTHOR)
                base = driver.repo(REPO)["default_branch"]
                base_sha = _git(Path.cwd(), "ls-remote", driver.remote_url(REPO, AUTHOR), base)
                driver.push(REPO, "add-modules", PR_FILES, as_user=AUTHOR, message="Add modules")
                pr = driver.open_pr(
                    REPO,
                    "add-modules",
                    as_user=AUTHOR,
                    title="Add orders, prices, labels and suppliers",
                    body="Four new modules.",
                )
                return base_sha.split()[0], int(pr["number"])

            base_sha, number = await asyncio.to_thread(setup)
            out(
                f"Opened {REPO}#{number}: four modules with an unused import each, routed to "
                "four different coding-agent CLIs."
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
            async with stack.runtime.pool.connection() as conn:
                cur = await conn.execute(
                    "SELECT agent, status FROM review_loop_tasks WHERE repo = %s ORDER BY id",
                    (REPO,),
                )
                tasks = list(await cur.fetchall())
    finally:
        await asyncio.to_thread(models.stop)
    fixed_by: dict[str, dict[str, Any]] = {}
    for preset, (name, path, _) in AGENTS.items():
        runs = [c for c in calls if c.agent == name]
        fixed_by[path] = {
            "agent": name,
            "preset": preset,
            "version": PRESETS[preset].install.version,
            "merged": any(t["agent"] == name and t["status"] == "merged" for t in tasks),
            "runs": len(runs),
            "run_s": round(sum(c.duration_s for c in runs), 1),
            "tokens_in": sum(c.tokens_in for c in runs),
            "tokens_out": sum(c.tokens_out for c in runs),
            "cost_usd": None if any(c.cost_usd is None for c in runs) else
            round(sum(c.cost_usd or 0.0 for c in runs), 6),
        }  # fmt: skip
    result |= {
        "scripted_models": True,
        "fixed_by": fixed_by,
        "clis_fixed": sorted(v["preset"] for v in fixed_by.values() if v["merged"]),
        "wall_s": round(time.monotonic() - started, 1),
    }
    return result


def print_cli_summary(result: dict[str, Any], out: Callable[[str], None]) -> None:
    for path, run in result["fixed_by"].items():
        cost = "" if run["cost_usd"] is None else f", ${run['cost_usd']:.4f} reported"
        verb = "fixed" if run["merged"] else "did NOT fix"
        out(
            f"   {run['preset']} {run['version']} ({run['agent']}) {verb} {path}: "
            f"{run['runs']} run(s), {run['run_s']} s, {run['tokens_in']} tokens in, "
            f"{run['tokens_out']} out (scripted model){cost}"
        )


def main(*, as_json: bool, agents_dir: Path, keep: bool = False) -> int:
    def out(line: str) -> None:
        print(line, file=sys.stderr if as_json else sys.stdout, flush=True)

    missing = missing_clis(agents_dir)
    if missing:
        first = executable_path(missing[0], PRESETS[missing[0]].install, agents_dir)
        out(
            f"demo --scenario cli-agents needs the four coding-agent CLIs; not installed: "
            f"{', '.join(missing)}. Run `make agents` (it installs the pinned versions into "
            f"{agents_dir}, e.g. {first}), or set REVIEW_LOOP_AGENTS_DIR to where they are."
        )
        return 2
    workdir = Path(tempfile.mkdtemp(prefix="review-loop-demo-cli-"))
    try:
        result = asyncio.run(run_cli_demo(workdir, out, agents_dir))
    finally:
        if not keep:
            shutil.rmtree(workdir, ignore_errors=True)
    print_summary(result, out)
    print_cli_summary(result, out)
    if as_json:
        print(json.dumps(result), flush=True)
    ok = result["converged"] and result["pr_branch_clean"] and result["base_untouched"]
    return 0 if ok and len(result["clis_fixed"]) == len(AGENTS) else 1
