"""Claude Code headless: `claude -p --bare --output-format json`, the brief on stdin.

Traps (checked with the real CLI): a 401 exits 1 with `subtype: "success"` and `is_error:
true`, so `is_error` decides, not `subtype`; the turn limit ends with `error_max_turns`; its
own retries of a 401/500 take minutes unless CLAUDE_CODE_MAX_RETRIES=0; the server it talks
to must answer `HEAD /` with 200 before the first `POST /v1/messages`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.agents.cli.base import Install, Invocation, RunSettings, Verdict
from bot.agents.cli.outputs import MESSAGE_CHARS, as_float, as_int, last_json_object, tail_text
from bot.agents.cli.pins import CLAUDE_CODE

# No Bash: the bot runs the repository's commands. 2.1.x in --bare mode offers only Read and
# Edit of these (Edit with an empty old_string creates a file); the others are for older ones.
TOOLS = "Read,Edit,Write,Glob,Grep"
DEFAULT_MAX_TURNS = 30
ENV = {
    "CLAUDE_CODE_MAX_RETRIES": "0",
    "CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC": "1",
    "DISABLE_AUTOUPDATER": "1",
    "DISABLE_TELEMETRY": "1",
    "DISABLE_ERROR_REPORTING": "1",
}
ENDS = {
    "error_max_turns": "turn limit reached",
    "error_max_budget_usd": "budget limit reached",
    "error_during_execution": "failed while running",
}


@dataclass
class ClaudeCode:
    name: str = "claude-code"
    install: Install = CLAUDE_CODE
    has_budget_flag: bool = True

    def prepare(
        self,
        executable: str,
        settings: RunSettings,
        *,
        worktree: Path,
        home: Path,
        scratch: Path,
        brief: str,
        files: Sequence[str],
    ) -> Invocation:
        argv = [executable, "-p", "--bare", "--output-format", "json",
                "--permission-mode", "acceptEdits", "--tools", TOOLS,
                "--max-turns", str(settings.max_turns or DEFAULT_MAX_TURNS)]  # fmt: skip
        if settings.max_budget_usd is not None:
            argv += ["--max-budget-usd", f"{settings.max_budget_usd:g}"]
        if settings.model:
            argv += ["--model", settings.model]
        env = dict(ENV)
        if settings.base_url:
            env["ANTHROPIC_BASE_URL"] = settings.base_url
        if settings.api_key:
            env["ANTHROPIC_API_KEY"] = settings.api_key
        return Invocation([*argv, *settings.extra_args], env, brief.encode())

    def judge(self, exit_code: int | None, stdout: bytes, stderr: bytes, scratch: Path) -> Verdict:
        out = last_json_object(stdout)
        if out is None or out.get("type") != "result":
            detail = tail_text(stderr) or tail_text(stdout) or "nothing"
            return Verdict(False, f"printed no result JSON (exit {exit_code}): {detail}")
        usage = out.get("usage") if isinstance(out.get("usage"), dict) else {}
        assert isinstance(usage, dict)
        message = str(out.get("result") or "")
        verdict = Verdict(
            ok=True,
            cost_usd=as_float(out.get("total_cost_usd")),
            input_tokens=_input_tokens(usage),
            output_tokens=as_int(usage.get("output_tokens")),
            turns=as_int(out.get("num_turns")),
            final_message=message[:MESSAGE_CHARS],
        )
        subtype = str(out.get("subtype") or "")
        status = as_int(out.get("api_error_status"))
        if out.get("is_error") is True or subtype != "success" or exit_code != 0:
            if status is not None:
                why = f"{status} from the model service: {message[:300]}"
            elif subtype in ENDS:
                why = f"{ENDS[subtype]} ({verdict.turns} turns)"
            else:
                why = message[:300] or subtype or f"exit code {exit_code}"
            return replace(verdict, ok=False, error=why)
        return verdict


def _input_tokens(usage: dict[str, object]) -> int | None:
    names = ("input_tokens", "cache_creation_input_tokens", "cache_read_input_tokens")
    parts = [as_int(usage.get(name)) for name in names]
    if parts[0] is None:
        return None
    return sum(p or 0 for p in parts)


PRESET = ClaudeCode()
