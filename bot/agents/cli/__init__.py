"""Coding-agent CLI presets: how to run Claude Code, Codex, aider and Gemini CLI headless.

Each preset is one module exposing a `PRESET` object that satisfies `base.Preset`; `PRESETS`
maps the catalog's `preset = "..."` names to them. The runner (bot.agents.runner) contains the
process; a preset only says what to run and how to read what it printed.
"""
