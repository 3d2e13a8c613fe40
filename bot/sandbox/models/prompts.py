"""Reading the bot's model briefs the way the scripted model needs to.

The bot and the sandbox share these conventions (and nothing else; the sandbox imports no
bot code): every file a brief contains is named on a line `File: <path>`; the parts of a
brief are Markdown sections `## <title>`; code sits in backtick fences; the review brief
numbers its lines as `<number> <mark> <code>`, where the mark `+` means "changed by the PR";
a coding agent's brief opens a line with `Fix <N> finding(s) in the repository`.

`workspace` reads the directory a coding-agent CLI says it works in from the context it sends
(the Gemini CLI lists its "Workspace Directories"), so a script can name absolute paths.
"""

from __future__ import annotations

import re

REVIEW_SCHEMA = "review_findings"
FIX_SCHEMA = "fix_edits"
VERIFY_SCHEMA = "verify_fix"

CHANGED_CODE = "Changed code"
FLAGGED_CODE = "Flagged code"
CODE_AFTER_FIX = "Code after the fix"
UNTRUSTED = "untrusted"

_FILE = re.compile(r"^File: (.+?)\s*$", re.MULTILINE)
_SECTION = re.compile(r"^## (.+?)\s*$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*(\d+) ([+ ]) ?(.*)$")
_FENCE = re.compile(r"^\s*(`{3,})(\S*)\s*$")
AGENT_BRIEF = re.compile(r"(?m)^Fix \d+ findings? in the repository")
_WORKSPACE = (
    re.compile(r"Workspace Directories:\**\s*\n\s*- (/\S*)"),  # Gemini CLI
    re.compile(r"(?m)^\s*(?:Primary working directory|Working directory): (/\S*)"),  # Claude Code
    re.compile(r"<cwd>(/[^<]*)</cwd>"),  # Codex
)


def file_paths(text: str) -> list[str]:
    """The paths named on `File:` lines, in order, without repeats."""
    return list(dict.fromkeys(match.strip("`") for match in _FILE.findall(text)))


def workspace(text: str) -> str | None:
    """The absolute directory a coding-agent CLI says it works in, or None."""
    for pattern in _WORKSPACE:
        match = pattern.search(text)
        if match:
            return match[1].rstrip("/")
    return None


def section(text: str, title: str) -> str | None:
    """The body of the first `## <title...>` section (titles match by prefix), or None."""
    matches = list(_SECTION.finditer(text))
    for number, match in enumerate(matches):
        if match[1].startswith(title):
            end = matches[number + 1].start() if number + 1 < len(matches) else len(text)
            return text[match.end() : end]
    return None


def fenced(text: str) -> list[str]:
    """The lines inside the first backtick fence of `text` (all of `text` if there is none)."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        opening = _FENCE.match(line)
        if opening:
            fence = opening[1]
            for end in range(start + 1, len(lines)):
                if lines[end].strip() == fence:
                    return lines[start + 1 : end]
            return lines[start + 1 :]
    return lines


def numbered_lines(text: str) -> list[tuple[int, bool, str]]:
    """(line number, changed?, code) for each numbered line in the fence of `text`."""
    rows = []
    for line in fenced(text):
        match = _NUMBERED.match(line)
        if match:
            rows.append((int(match[1]), match[2] == "+", match[3]))
    return rows


def untrusted_text(text: str) -> str:
    """What the brief quoted as untrusted data (the fence labelled `untrusted`), or ''."""
    lines = text.splitlines()
    for start, line in enumerate(lines):
        opening = _FENCE.match(line)
        if opening and opening[2] == UNTRUSTED:
            body = []
            for inner in lines[start + 1 :]:
                if inner.strip() == opening[1]:
                    break
                body.append(inner)
            return "\n".join(body)
    return ""
