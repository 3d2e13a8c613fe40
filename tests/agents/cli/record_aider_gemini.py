"""Record what aider and the Gemini CLI print, for their judges' tests:
`python -m tests.agents.cli.record_aider_gemini` (after `make agents`).

Each case runs the pinned CLI, prepared by its preset, in a throwaway git repository holding
`cart.py`, with the bot's brief for one finding on stdin, against the model sandbox; it keeps
the exit code, stdout and stderr as tests/fixtures/cli/<preset>/<case>.json (the format of
record.py; the temporary directory reads /tmp/RUN, the sandbox http://127.0.0.1:PORT).
Re-run after bumping a pin in bot/agents/cli/pins.py.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

from bot.agents.briefs import BriefFinding, BriefTask, build_brief
from bot.agents.cli.base import RunSettings
from bot.agents.cli.registry import PRESETS
from bot.sandbox.models import Call, ModelFault, ModelSandbox, Say, Scenario
from tests.cli_agents import ROOT, cli_environ, cli_path
from tests.modelsandbox import API_KEY

FIXTURES = ROOT / "tests" / "fixtures" / "cli"
CART = "def total(prices, count):\n    return sum(prices[:count])\n"
OLD = "    return sum(prices[:count])\n"
NEW = '    if count < 0:\n        raise ValueError("count must not be negative")\n' + OLD
FINDING = BriefFinding(
    "negative-count", "cart.py", 1, 1, "count is never checked for negative values",
    CART.splitlines()[0], "review",
)  # fmt: skip
BLOCK = f"cart.py\n```python\n<<<<<<< SEARCH\n{OLD}=======\n{NEW}>>>>>>> REPLACE\n```\n"
TURNS: dict[str, list[Say | Call]] = {
    "gemini-fix": [
        Call(
            "replace",
            {
                "file_path": "{cwd}/cart.py",
                "old_string": OLD,
                "new_string": NEW,
                "instruction": "Reject negative counts.",
                "allow_multiple": False,
            },
        ),
        Say("Fixed cart.py: a negative count now raises ValueError."),
    ],
    "aider-fix": [Say("Add the check.\n\n" + BLOCK)],
    "aider-nomatch": [
        Say(
            "cart.py\n```python\n<<<<<<< SEARCH\n    return nothing\n=======\n    return 0\n"
            ">>>>>>> REPLACE\n```\n"
        )
    ],
}


@dataclass
class Case:
    name: str
    model: str
    key: str = API_KEY
    max_turns: int | None = None
    faults: list[ModelFault] = field(default_factory=list)


CASES = {
    "gemini-cli": [
        Case("success", "gemini-fix", max_turns=10),
        Case("unauthorized", "gemini-fix", key="wrong-key"),
        Case("max_turns", "gemini-fix", max_turns=1),
        Case("server_error", "gemini-fix", faults=[ModelFault("server_error")]),
    ],
    "aider": [
        Case("success", "aider-fix"),
        Case("unauthorized", "aider-fix", key="wrong-key"),
        Case("no_match", "aider-nomatch"),
    ],
}


def record(sandbox: ModelSandbox, preset_name: str, case: Case) -> dict[str, object]:
    preset = PRESETS[preset_name]
    executable = cli_path(preset_name)
    assert executable, f"{preset_name} is not installed: run make agents"
    sandbox.set_faults(*case.faults)
    base = sandbox.openai_base_url if preset_name == "aider" else sandbox.gemini_base_url
    settings = RunSettings(case.model, base, case.key, case.max_turns, None, 60.0)
    with tempfile.TemporaryDirectory() as tmp:
        repo, home, scratch = Path(tmp) / "repo", Path(tmp) / "home", Path(tmp) / "scratch"
        for path in (repo, home, scratch):
            path.mkdir()
        (repo / "cart.py").write_text(CART)
        subprocess.run(["git", "init", "-q"], cwd=repo, check=True)
        subprocess.run(["git", "add", "."], cwd=repo, check=True)
        subprocess.run(["git", "-c", "user.name=a", "-c", "user.email=a@example.com", "commit",
                        "-qm", "init"], cwd=repo, check=True)  # fmt: skip
        brief = build_brief(BriefTask([FINDING]))
        inv = preset.prepare(executable, settings, worktree=repo, home=home, scratch=scratch,
                             brief=brief, files=["cart.py"])  # fmt: skip
        for path, text in inv.files.items():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(text)
        env = {"PATH": cli_environ()["PATH"], "LANG": "C.UTF-8", "HOME": str(home),
               "TMPDIR": str(home), **inv.env}  # fmt: skip
        done = subprocess.run(inv.argv, cwd=repo, env=env, input=inv.stdin, capture_output=True,
                              timeout=120, check=False)  # fmt: skip

        def clean(data: bytes) -> str:
            text = data.decode(errors="replace").replace(tmp, "/tmp/RUN")
            return text.replace(sandbox.url, "http://127.0.0.1:PORT")

        return {
            "cli": f"{preset.install.package} {preset.install.version}",
            "exit_code": done.returncode,
            "stdout": clean(done.stdout),
            "stderr": clean(done.stderr)[-2000:],
            "last_message": None,
        }


def main() -> None:
    with ModelSandbox.start(Scenario(agents=TURNS), api_key=API_KEY) as sandbox:
        for preset_name, cases in CASES.items():
            (FIXTURES / preset_name).mkdir(parents=True, exist_ok=True)
            for case in cases:
                data = record(sandbox, preset_name, case)
                out = FIXTURES / preset_name / f"{case.name}.json"
                out.write_text(json.dumps(data, indent=1) + "\n")
                print(out.relative_to(ROOT), data["exit_code"])


if __name__ == "__main__":
    main()
