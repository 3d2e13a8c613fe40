"""Codex headless: `codex exec --json --ephemeral -o LAST_MESSAGE -`, the brief on stdin.

Its settings live in `$CODEX_HOME/config.toml`, written fresh for each run: a provider of
our own (the base URL, the key's variable, the Responses wire -- Codex speaks nothing else)
with its retries off, no approvals, writes confined to the worktree. Traps (checked with the
real CLI): an unknown model name emits an `error` item even when the run succeeds, so only
`turn.failed` (or no `turn.completed`) fails a run; Codex reports tokens, never a cost, and
has no turn limit.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.agents.cli.base import Install, Invocation, RunSettings, Verdict
from bot.agents.cli.outputs import MESSAGE_CHARS, as_int, json_lines, tail_text
from bot.agents.cli.pins import CODEX

OPENAI_URL = "https://api.openai.com/v1"
KEY_VARIABLE = "OPENAI_API_KEY"  # the variable Codex reads the key from (env_key below)
PROVIDER = "review-loop"
LAST_MESSAGE = "last-message.txt"


@dataclass
class Codex:
    name: str = "codex"
    install: Install = CODEX
    has_budget_flag: bool = False
    has_turn_limit: bool = False

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
        codex_home = home / ".codex"
        argv = [executable, "exec", "--json", "--ephemeral", "--skip-git-repo-check",
                "-o", str(scratch / LAST_MESSAGE), *settings.extra_args, "-"]  # fmt: skip
        env = {"CODEX_HOME": str(codex_home)}
        if settings.api_key:
            env[KEY_VARIABLE] = settings.api_key
        config = codex_home / "config.toml"
        return Invocation(argv, env, brief.encode(), {config: config_toml(settings)})

    def judge(self, exit_code: int | None, stdout: bytes, stderr: bytes, scratch: Path) -> Verdict:
        events = json_lines(stdout)
        completed = [e for e in events if e.get("type") == "turn.completed"]
        failed = [e for e in events if e.get("type") == "turn.failed"]
        messages = [
            str(e["item"].get("text") or "")
            for e in events
            if e.get("type") == "item.completed"
            and isinstance(e.get("item"), dict)
            and e["item"].get("type") == "agent_message"
        ]
        try:
            final = (scratch / LAST_MESSAGE).read_text(errors="replace")
        except OSError:
            final = messages[-1] if messages else ""
        input_tokens = output_tokens = None
        for event in completed:
            usage = event.get("usage")
            if isinstance(usage, dict):
                input_tokens = (input_tokens or 0) + (as_int(usage.get("input_tokens")) or 0)
                output_tokens = (output_tokens or 0) + (as_int(usage.get("output_tokens")) or 0)
        verdict = Verdict(
            ok=True,
            input_tokens=input_tokens,
            output_tokens=output_tokens,
            turns=len(completed) or None,
            final_message=final.strip()[:MESSAGE_CHARS],
        )
        if failed:
            return _failed(verdict, _failure_text(failed[-1]))
        if not completed:
            detail = _last_error(events) or tail_text(stderr) or f"exit code {exit_code}"
            return _failed(verdict, f"the turn never completed: {detail}")
        if exit_code != 0:
            return _failed(verdict, f"exit code {exit_code}: {tail_text(stderr)}")
        return verdict


def config_toml(settings: RunSettings) -> str:
    """Codex's config.toml for one run."""
    lines = [
        *([f"model = {json.dumps(settings.model)}"] if settings.model else []),
        f'model_provider = "{PROVIDER}"',
        'approval_policy = "never"',
        'sandbox_mode = "workspace-write"',
        "check_for_update_on_startup = false",
        "",
        "[analytics]",
        "enabled = false",
        "",
        f"[model_providers.{PROVIDER}]",
        f'name = "{PROVIDER}"',
        f"base_url = {json.dumps(settings.base_url or OPENAI_URL)}",
        f'env_key = "{KEY_VARIABLE}"',
        'wire_api = "responses"',
        "request_max_retries = 0",
        "stream_max_retries = 0",
    ]
    return "\n".join(lines) + "\n"


def _failed(verdict: Verdict, why: str) -> Verdict:
    return replace(verdict, ok=False, error=why)


def _failure_text(event: dict[str, object]) -> str:
    error = event.get("error")
    message = error.get("message") if isinstance(error, dict) else error
    return str(message or "turn.failed")[:500]


def _last_error(events: list[dict[str, object]]) -> str | None:
    for event in reversed(events):
        if event.get("type") == "error":
            return str(event.get("message") or "error")[:500]
    return None


PRESET = Codex()
