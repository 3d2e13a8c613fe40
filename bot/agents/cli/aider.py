"""The aider preset: `aider --message-file /dev/stdin ... FILES` on an OpenAI-compatible API.

aider has no tools: the model answers with SEARCH/REPLACE blocks and aider applies them to
the files named in argv. Everything that would write into the repository is off (auto and
dirty commits, `.gitignore` edits, the `.aider*` history files: they go to the run's scratch
directory), so are linting and tests after an edit, update checks, analytics and URL
fetching. The key is handed over in `OPENAI_API_KEY`, never in argv. The run's HOME gets a
git identity: without one aider writes a placeholder into the repository's `.git/config`.

aider exits 0 after a refused key or a dead server: success is judged from what it printed.
Each model reply prints `Tokens: N sent, M received.` (with `k` for thousands), and
`Cost: $X message, $Y session.` when the model has a price; each applied edit prints
`Applied edit to PATH`; a model-service failure prints a `litellm.<Kind>Error: ...` line.
aider retries a 5xx itself for about a minute (not configurable): the run's timeout bounds it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from pathlib import Path

from bot.agents.cli import pins
from bot.agents.cli.base import Invocation, RunSettings, Verdict
from bot.agents.cli.outputs import MESSAGE_CHARS

DEFAULT_MODEL = "gpt-4.1"
FLAGS = (
    "--message-file", "/dev/stdin",
    "--yes-always",
    "--no-auto-commits", "--no-dirty-commits", "--no-gitignore",
    "--no-auto-lint", "--no-auto-test",
    "--no-check-update", "--no-show-release-notes", "--no-show-model-warnings",
    "--analytics-disable",
    "--no-pretty", "--no-fancy-input", "--no-stream",
    "--no-suggest-shell-commands", "--no-detect-urls", "--no-restore-chat-history",
    "--map-tokens", "0",
    "--edit-format", "diff",
    "--encoding", "utf-8",
)  # fmt: skip
GIT_IDENTITY = "[user]\n\tname = review-loop agent\n\temail = agent@review-loop.invalid\n"
_APPLIED = re.compile(r"(?m)^Applied edit to (.+?)\s*$")
_TOKENS = re.compile(r"(?m)^Tokens: ([\d.]+)([kM]?) sent,.*?([\d.]+)([kM]?) received\.")
_COST = re.compile(r"Cost: \$([\d.]+) message, \$([\d.]+) session\.")
_SERVICE_ERROR = re.compile(r"(?m)^litellm\.(\w+):\s*(.*(?:\n(?!\n|litellm\.)\S.*)*)")
_BANNER = re.compile(r"(?m)^(Added .+ to the chat\.|Repo-map: .*|https://aider\.chat/\S*)$")
_NOT_APPLIED = (
    "The LLM did not conform to the edit format.",
    "Only 3 reflections allowed, stopping.",
)


class Aider:
    name = "aider"
    install = pins.AIDER
    has_budget_flag = False
    has_turn_limit = False  # one request, plus up to 3 reflections on a malformed edit

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
        model = settings.model or DEFAULT_MODEL
        if "/" not in model:
            model = f"openai/{model}"  # the OpenAI-compatible provider; aider strips it again
        argv = [executable, "--model", model]
        if settings.base_url:
            argv += ["--openai-api-base", settings.base_url.rstrip("/")]
        argv += list(FLAGS)
        argv += ["--timeout", f"{settings.timeout_s:g}"]
        argv += [
            "--chat-history-file", str(scratch / "aider.chat.history.md"),
            "--input-history-file", str(scratch / "aider.input.history"),
            "--llm-history-file", str(scratch / "aider.llm.history"),
        ]  # fmt: skip
        argv += list(settings.extra_args)
        argv += ["--", *files]
        env = {"LITELLM_LOCAL_MODEL_COST_MAP": "True", "NO_COLOR": "1"}
        if settings.api_key:
            env["OPENAI_API_KEY"] = settings.api_key
        # aider writes a placeholder identity into the repository's .git/config when git has
        # none; the run's own HOME gives it one, so .git stays untouched.
        return Invocation(
            argv=argv, env=env, stdin=brief.encode(), files={home / ".gitconfig": GIT_IDENTITY}
        )

    def judge(self, exit_code: int | None, stdout: bytes, stderr: bytes, scratch: Path) -> Verdict:
        text = stdout.decode(errors="replace")
        applied = _APPLIED.findall(text)
        tokens_in = tokens_out = None
        for sent, sent_unit, received, received_unit in _TOKENS.findall(text):
            tokens_in = (tokens_in or 0) + _count(sent, sent_unit)
            tokens_out = (tokens_out or 0) + _count(received, received_unit)
        costs = _COST.findall(text)
        cost = float(costs[-1][1]) if costs else None
        turns = len(_TOKENS.findall(text)) or None
        verdict = Verdict(
            ok=True,
            cost_usd=cost,
            input_tokens=tokens_in,
            output_tokens=tokens_out,
            turns=turns,
            final_message=final_message(text),
        )
        error = _error(exit_code, text, stderr.decode(errors="replace"), applied)
        if error is not None:
            return Verdict(**{**verdict.__dict__, "ok": False, "error": error})
        return verdict


def _error(exit_code: int | None, text: str, stderr: str, applied: list[str]) -> str | None:
    service = _SERVICE_ERROR.search(text)
    if service:
        kind, detail = service[1], " ".join(service[2].split())
        if kind == "AuthenticationError" or "API key" in detail or " 401" in detail:
            return f"401 from the model service: the API key was refused ({detail[:300]})"
        return f"model service error ({kind}): {detail[:300]}"
    if exit_code is None:
        return "the CLI did not exit"
    if exit_code != 0:
        last = (stderr.strip() or text.strip()).splitlines()[-1:] or [""]
        return f"exit code {exit_code}: {last[0][:300]}"
    if not applied:
        reason = next((line for line in _NOT_APPLIED if line in text), None)
        if reason:
            return f"aider applied no edit: {reason}"
        return "aider applied no edit (its reply had no SEARCH/REPLACE block)"
    return None


def final_message(text: str) -> str:
    """What aider printed after its start-up banner, without the usage lines."""
    banner = list(_BANNER.finditer(text))
    body = text[banner[-1].end() :] if banner else text
    lines = [line for line in body.splitlines() if not line.startswith(("Tokens: ", "Cost: "))]
    return "\n".join(lines).strip()[:MESSAGE_CHARS]


def _count(number: str, unit: str) -> int:
    return round(float(number) * {"": 1, "k": 1_000, "M": 1_000_000}[unit])


PRESET = Aider()
