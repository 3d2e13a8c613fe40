"""The Gemini CLI preset: `gemini -p ... --output-format json --approval-mode auto_edit`.

The brief goes on stdin (the CLI appends its `-p` prompt to it). Its private configuration is
`$HOME/.gemini/settings.json`: the API-key auth type (without it the CLI exits 41), folder
trust off (an untrusted folder silently drops auto_edit; `--skip-trust` too), telemetry,
usage statistics and auto-update off, one attempt per model request (its own retries of a 500
take > 45 s; the loop retries the task instead), and `model.maxSessionTurns` from max_turns.

Its exit code is the failure's HTTP status modulo 256 (401 -> 145, 500 -> 244), 41 for an
auth setup error and 53 for the turn limit; the JSON it prints on success goes to stdout, a
failure's JSON object (`{"error": {"type", "message", "code"}}`) to stderr. Tokens come from
`stats.models.*.tokens`; the CLI reports no cost.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from bot.agents.cli import pins
from bot.agents.cli.base import Invocation, RunSettings, Verdict
from bot.agents.cli.outputs import MESSAGE_CHARS

PROMPT = "Follow the instructions on stdin."

EXIT_AUTH_SETUP = 41
EXIT_TURN_LIMIT = 53
EXIT_UNAUTHORIZED = 401 % 256  # 145: the CLI exits with the HTTP status, truncated to a byte


class GeminiCli:
    name = "gemini-cli"
    install = pins.GEMINI_CLI
    has_budget_flag = False

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
        argv = [executable, "-p", PROMPT, "--skip-trust", "--output-format", "json"]
        if not _sets_approval(settings.extra_args):  # the CLI refuses the option given twice
            argv += ["--approval-mode", "auto_edit"]
        if settings.model:
            argv += ["-m", settings.model]
        argv += list(settings.extra_args)
        env = {"NO_COLOR": "1"}
        if settings.api_key:
            env["GEMINI_API_KEY"] = settings.api_key
        if settings.base_url:
            env["GOOGLE_GEMINI_BASE_URL"] = settings.base_url.rstrip("/")
        return Invocation(
            argv=argv,
            env=env,
            stdin=brief.encode(),
            files={home / ".gemini" / "settings.json": json.dumps(settings_json(settings))},
        )

    def judge(self, exit_code: int | None, stdout: bytes, stderr: bytes, scratch: Path) -> Verdict:
        document = _json_object(stdout.decode(errors="replace"))
        if document is None or "error" in document or exit_code != 0:
            problem = _json_object(stderr.decode(errors="replace"), last=True)
            if problem is not None and "error" in problem:
                document = {**(document or {}), "error": problem["error"]}
        tokens_in, tokens_out, requests = _stats(document or {})
        message = str((document or {}).get("response") or "")[:MESSAGE_CHARS]
        error = _error(exit_code, document)
        return Verdict(
            ok=error is None,
            error=error,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            turns=requests,
            final_message=message,
        )


def _sets_approval(args: Sequence[str]) -> bool:
    return any(a in ("--yolo", "-y") or a.startswith("--approval-mode") for a in args)


def settings_json(settings: RunSettings) -> dict[str, Any]:
    """The run's `~/.gemini/settings.json`."""
    model: dict[str, Any] = {}
    if settings.max_turns is not None:
        model["maxSessionTurns"] = settings.max_turns
    return {
        "security": {"auth": {"selectedType": "gemini-api-key"}, "folderTrust": {"enabled": False}},
        "telemetry": {"enabled": False},
        "privacy": {"usageStatisticsEnabled": False},
        "general": {
            "maxAttempts": 1,
            "retryFetchErrors": False,
            "enableAutoUpdate": False,
            "enableAutoUpdateNotification": False,
        },
        "model": model,
    }


def _error(exit_code: int | None, document: dict[str, Any] | None) -> str | None:
    failure = (document or {}).get("error")
    detail = ""
    code: object = None
    if isinstance(failure, dict):
        detail = _service_message(str(failure.get("message") or ""))
        code = failure.get("code")
    elif failure:
        detail = str(failure)
    if exit_code == EXIT_TURN_LIMIT or code == EXIT_TURN_LIMIT:
        return "turn limit reached (model.maxSessionTurns)" + (f": {detail}" if detail else "")
    if exit_code == EXIT_AUTH_SETUP or code == EXIT_AUTH_SETUP:
        return f"authentication is not set up (exit 41){': ' + detail if detail else ''}"
    if code == 401 or (exit_code == EXIT_UNAUTHORIZED and failure is None):
        return "401 from the model service: the API key was refused" + (
            f" ({detail})" if detail else ""
        )
    if failure:
        status = f"{code} from the model service" if isinstance(code, int) else "error"
        return f"{status}: {detail}"[:500]
    if exit_code is None:
        return "the CLI did not exit"
    if exit_code != 0:
        return f"exit code {exit_code} without a JSON report"
    if document is None:
        return "printed no JSON result"
    if "response" not in document:
        return "the JSON result has no response"
    return None


def _service_message(message: str) -> str:
    """The model service's own message when the CLI wraps its JSON error body."""
    try:
        body = json.loads(message)
    except ValueError:
        return message[:500]
    inner = body.get("error") if isinstance(body, dict) else None
    if isinstance(inner, dict) and inner.get("message"):
        return str(inner["message"])[:500]
    return message[:500]


def _stats(document: dict[str, Any]) -> tuple[int | None, int | None, int | None]:
    models = (document.get("stats") or {}).get("models")
    if not isinstance(models, dict) or not models:
        return None, None, None
    tokens_in = tokens_out = requests = 0
    for entry in models.values():
        tokens = entry.get("tokens") or {}
        tokens_in += int(tokens.get("prompt") or tokens.get("input") or 0)
        tokens_out += int(tokens.get("candidates") or 0) + int(tokens.get("thoughts") or 0)
        requests += int((entry.get("api") or {}).get("totalRequests") or 0)
    return tokens_in, tokens_out, requests


def _json_object(text: str, *, last: bool = False) -> dict[str, Any] | None:
    """The first (or last) top-level JSON object in `text` that starts a line (the CLI
    prefixes some with `[ERROR] `)."""
    decoder = json.JSONDecoder()
    found: dict[str, Any] | None = None
    position = 0
    while position < len(text):
        newline = text.find("\n", position)
        line_end = len(text) if newline < 0 else newline
        start = position
        while start < line_end and text[start] in " \t":
            start += 1
        if text.startswith("[ERROR] ", start):
            start += len("[ERROR] ")
        position = line_end + 1
        if not text.startswith("{", start):
            continue
        try:
            value, end = decoder.raw_decode(text, start)
        except ValueError:
            continue
        if isinstance(value, dict):
            found = value
            if not last:
                return found
            position = end
    return found


PRESET = GeminiCli()
