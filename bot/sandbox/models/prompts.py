"""Reading the bot's model briefs the way the scripted model needs to.

The bot and the sandbox share these conventions (and nothing else; the sandbox imports no
bot code): every file a brief contains is named on a line `File: <path>`; the parts of a
brief are Markdown sections `## <title>`; code sits in backtick fences; the review brief
numbers its lines as `<number> <mark> <code>`, where the mark `+` means "changed by the PR";
a coding agent's brief opens a line with `Fix <N> finding(s) in the repository`.
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
# How coding-agent CLIs tell their model where they run: Claude Code's "CWD: /path", Gemini
# CLI's "- **Workspace Directories:**" list (the first one) and Codex's "<cwd>/path</cwd>".
_CWD = re.compile(
    r"^\s*(?:CWD|Primary working directory|[Ww]orking directory)\s*:\s*(/\S+)\s*$"
    r"|<cwd>(/[^<]+)</cwd>"
    r"|Workspace Directories:\**\s*\n\s*- (/\S+)",
    re.MULTILINE,
)
AGENT_BRIEF = re.compile(r"(?m)^Fix \d+ findings? in the repository")
_SECTION = re.compile(r"^## (.+?)\s*$", re.MULTILINE)
_NUMBERED = re.compile(r"^\s*(\d+) ([+ ]) ?(.*)$")
_FENCE = re.compile(r"^\s*(`{3,})(\S*)\s*$")


def file_paths(text: str) -> list[str]:
    """The paths named on `File:` lines, in order, without repeats."""
    return list(dict.fromkeys(match.strip("`") for match in _FILE.findall(text)))


# The coding-agent brief names each finding's file as "<analyzer> <rule> in `<path>`, line N".
_FINDING_FILE = re.compile(r" in `([^`]+)`, line \d+")


def agent_files(text: str) -> list[str]:
    """The files a brief names: its `File:` lines, else its findings' "in `path`, line N"."""
    return file_paths(text) or list(dict.fromkeys(_FINDING_FILE.findall(text)))


def working_dir(text: str) -> str | None:
    """The absolute working directory a coding agent's prompt states, or None."""
    match = _CWD.search(text)
    return None if match is None else (match[1] or match[2] or match[3]).strip()


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
