"""The presets the catalog knows: `preset = "<name>"` -> the module's `PRESET`.

Adding a preset: a module `bot/agents/cli/<name>.py` exposing `PRESET` (see `base.Preset`),
its pin in `pins.py`, and one line here.
"""

from __future__ import annotations

from bot.agents.cli import aider, claude_code, codex, gemini_cli
from bot.agents.cli.base import Preset

PRESETS: dict[str, Preset] = {
    "claude-code": claude_code.PRESET,
    "codex": codex.PRESET,
    "aider": aider.PRESET,
    "gemini-cli": gemini_cli.PRESET,
}
