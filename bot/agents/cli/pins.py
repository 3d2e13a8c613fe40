"""The pinned version of each coding-agent CLI: the one place `make agents` and the presets
read them from. Bump a pin here, run `make agents`, and re-record the judges' fixtures."""

from __future__ import annotations

from bot.agents.cli.base import Install

CLAUDE_CODE = Install("npm", "@anthropic-ai/claude-code", "2.1.332", "claude")
CODEX = Install("npm", "@openai/codex", "0.171.0", "codex")
GEMINI_CLI = Install("npm", "@google/gemini-cli", "0.61.0", "gemini")
AIDER = Install("pypi", "aider-chat", "0.86.2", "aider")

# preset name -> what to install; `make agents` installs every one of them.
PINS: dict[str, Install] = {
    "claude-code": CLAUDE_CODE,
    "codex": CODEX,
    "gemini-cli": GEMINI_CLI,
    "aider": AIDER,
}
