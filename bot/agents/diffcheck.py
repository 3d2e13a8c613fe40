"""Check an agent's change before the bot commits it: forbidden paths, size, secrets."""

from __future__ import annotations

import os
import re
from pathlib import Path, PurePosixPath

from bot.agents.briefs import find_secrets
from bot.git.cmd import git
from bot.git.worktrees import whole_tree_index

DEFAULT_MAX_BYTES = 200_000
AGENT_CONFIG_DIRS = frozenset({".claude", ".codex", ".gemini", ".goose", ".cursor"})
AGENT_CONFIG_FILES = frozenset({"agents.md", "claude.md", "gemini.md", ".cursorrules"})


# Keys the bot's own mirrors and worktrees carry in their local git configuration. An agent
# runs as the bot's user and could add others (core.fsmonitor, filter.*.clean, core.hooksPath,
# include.path, ...) that make the bot's next git command run its code.
ALLOWED_LOCAL_CONFIG = re.compile(
    r"core\.(repositoryformatversion|filemode|bare|logallrefupdates|ignorecase"
    r"|precomposeunicode|symlinks)"
    r"|remote\.origin\.(url|fetch)|gc\.autodetach|extensions\.worktreeconfig"
    r"|branch\.[^\n]+\.(remote|merge|rebase)"
)


def refused_path(path: str) -> str | None:
    """Why an agent may not change `path`, or None when it may."""
    parts = [part.lower() for part in PurePosixPath(path).parts]
    if parts[:2] == [".github", "workflows"]:
        return "workflow files under .github/workflows/ are not changed by agents"
    if parts == [".github", "copilot-instructions.md"]:
        return "agent configuration files are not changed by agents"
    for part in parts[:-1]:
        if part in AGENT_CONFIG_DIRS:
            return f"agent configuration ({part}/) is not changed by agents"
    if parts and (parts[-1] in AGENT_CONFIG_FILES or parts[-1].startswith(".aider")):
        return f"agent configuration ({parts[-1]}) is not changed by agents"
    if any(part.startswith(".aider") for part in parts):
        return "agent configuration (.aider*) is not changed by agents"
    return None


async def check_change(wt: Path, base_sha: str, *, max_bytes: int = DEFAULT_MAX_BYTES) -> list[str]:
    """Problems with the working tree of `wt` compared with `base_sha` (empty: acceptable).

    Untracked files count as part of the change; files ignored by .gitignore do not, nor
    does what the repository's `setup` left (`record_setup_output`).
    """
    tampering = await git_tampering(wt)
    if tampering:  # running more git here could run the agent's code: stop now
        return tampering
    async with whole_tree_index(wt, "review-loop-diff-") as env:
        names = await git(
            "diff", "--cached", "--name-only", "--no-renames", "-z", base_sha, cwd=wt, env=env
        )
        paths = [p for p in names.split("\0") if p]
        problems = [f"{p}: {why}" for p in paths if (why := refused_path(p))]
        on_disk = sum(_size(wt / p) for p in paths)
        if on_disk > 4 * max_bytes:
            problems.append(f"the change is too large: {on_disk} bytes of changed files")
            return problems
        patch = await git(
            "diff", "--cached", "--binary", "--no-color", "--no-ext-diff", "--no-textconv",
            "--no-renames", "--unified=0", base_sha, cwd=wt, env=env,
        )  # fmt: skip
    if len(patch.encode()) > max_bytes:
        problems.append(f"the diff is {len(patch.encode())} bytes, over the {max_bytes} cap")
    for path, added in _added_text(patch).items():
        for kind in find_secrets(added):
            problems.append(f"{path}: an added line looks like a {kind}")
    return problems


async def git_tampering(wt: Path) -> list[str]:
    """Changes to the worktree's git machinery (config keys, hooks) that no agent should make.

    Only reads files and runs `git config --list`, which executes nothing.
    """
    dot_git = wt / ".git"
    if dot_git.is_symlink() or not dot_git.is_file():
        return [".git: no longer the worktree's link file; the checkout was tampered with"]
    listing = await git("config", "--list", "--show-scope", "-z", cwd=wt)
    problems = []
    fields = listing.split("\0")
    for scope, entry in zip(fields[::2], fields[1::2], strict=False):  # scope, "key\nvalue"
        key = entry.partition("\n")[0]
        if scope in {"local", "worktree"} and not ALLOWED_LOCAL_CONFIG.fullmatch(key):
            problems.append(f"git config {key}: set by the agent; the bot will not run git here")
    common = Path((await git("rev-parse", "--git-common-dir", cwd=wt)).strip())
    hooks = (common if common.is_absolute() else wt / common) / "hooks"
    if hooks.is_dir():
        for hook in sorted(hooks.iterdir()):
            if not hook.name.endswith(".sample"):
                problems.append(f"git hook {hook.name}: installed by the agent")
    return problems


def _added_text(patch: str) -> dict[str, str]:
    """The added lines of a unified diff, joined per file."""
    added: dict[str, list[str]] = {}
    current, in_header = "", False
    for line in patch.splitlines():
        if line.startswith("diff --git "):
            in_header = True
        elif in_header and line.startswith("+++ "):
            current = line[4:].strip('"').removeprefix("b/")
        elif line.startswith("@@"):
            in_header = False
        elif line.startswith("+") and not in_header and current:
            added.setdefault(current, []).append(line[1:])
    return {path: "\n".join(lines) for path, lines in added.items()}


def _size(path: Path) -> int:
    try:
        return os.lstat(path).st_size
    except OSError:  # deleted by the change
        return 0
