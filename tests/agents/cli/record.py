"""Record what the real CLIs print, for the judges' tests: `python -m tests.agents.cli.record`.

Each case runs the pinned CLI (after `make agents`) in a throwaway git repository against the
model sandbox and keeps its exit code, stdout, stderr and last-message file as
tests/fixtures/cli/<preset>/<case>.json. Re-run after bumping a pin in bot/agents/cli/pins.py.
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot import process
from bot.agents.cli.base import RunSettings
from bot.agents.cli.codex import LAST_MESSAGE
from bot.agents.cli.registry import PRESETS
from bot.sandbox.models import ModelFault, ModelSandbox, Scenario
from tests.cli_agents import EDIT, ROOT, cli_environ, cli_path
from tests.modelsandbox import API_KEY

FIXTURES = ROOT / "tests" / "fixtures" / "cli"
BRIEF = "Make main return 1.\n\nFile: app.py\n"


@dataclass
class Case:
    name: str
    key: str = API_KEY
    max_turns: int | None = None
    max_budget_usd: float | None = None
    faults: list[ModelFault] = field(default_factory=list)


CASES = {
    "claude-code": [
        Case("success"),
        Case("unauthorized", key="sk-wrong"),
        Case("max_turns", max_turns=1),
        Case("max_budget", max_budget_usd=0.0001),
    ],
    "codex": [
        Case("success"),  # carries an `error` item: the model name is unknown to Codex
        Case("unauthorized", key="sk-wrong"),
        Case("server_error", faults=[ModelFault("server_error", route="openai.*")]),
    ],
}


async def record(sandbox: ModelSandbox, preset_name: str, case: Case) -> dict[str, object]:
    preset = PRESETS[preset_name]
    executable = cli_path(preset_name)
    assert executable, f"{preset_name} is not installed: run make agents"
    sandbox.scenario = Scenario(turns=EDIT[preset_name]("    return 0", "    return 1", "Done."))
    sandbox.set_faults(*case.faults)
    base = sandbox.openai_base_url if preset_name == "codex" else sandbox.anthropic_base_url
    settings = RunSettings(f"{preset_name}-scripted", base, case.key, case.max_turns,
                           case.max_budget_usd, 60.0)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        repo, home, scratch = Path(tmp) / "repo", Path(tmp) / "home", Path(tmp) / "scratch"
        for path in (repo, home, scratch):
            path.mkdir()
        (repo / "app.py").write_text("def main() -> int:\n    return 0\n")
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        inv = preset.prepare(executable, settings, worktree=repo, home=home, scratch=scratch,
                             brief=BRIEF, files=["app.py"])  # fmt: skip
        for path, text in inv.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = {"PATH": cli_environ()["PATH"], "HOME": str(home), **inv.env}
        done = await process.run(inv.argv, cwd=repo, env=env, timeout_s=60, stdin=inv.stdin)
        last = scratch / LAST_MESSAGE
        return {
            "cli": f"{preset.install.package} {preset.install.version}",
            "exit_code": done.returncode,
            "stdout": done.stdout.decode(),
            "stderr": done.stderr.decode()[-2000:],
            "last_message": last.read_text() if last.exists() else None,
        }


async def main() -> None:
    with ModelSandbox.start(api_key=API_KEY) as sandbox:
        for preset_name, cases in CASES.items():
            (FIXTURES / preset_name).mkdir(parents=True, exist_ok=True)
            for case in cases:
                data = await record(sandbox, preset_name, case)
                out = FIXTURES / preset_name / f"{case.name}.json"
                out.write_text(json.dumps(data, indent=1) + "\n")
                print(out.relative_to(ROOT), data["exit_code"])


if __name__ == "__main__":
    asyncio.run(main())
