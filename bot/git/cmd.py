"""Run git as a subprocess: its own process group, a timeout, tokens kept off the command line."""

from __future__ import annotations

import base64
import contextlib
import os
import re
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from urllib.parse import urlsplit

from bot.process import run

DEFAULT_TIMEOUT_S = 300.0
AUTH_USER = "x-access-token"
_HEADER_PREFIX = "Authorization: Basic "
_URL_USERINFO = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://)[^/@\s]+@")
_STDERR_LIMIT = 4000
# What git says when the server refused its credentials (a 401): GitHub answers "Invalid
# username or password" and git "Authentication failed"; a server that only challenges
# makes git ask for a username, which GIT_TERMINAL_PROMPT=0 turns into an error.
_AUTH_REFUSED = re.compile(
    r"Authentication failed|Invalid username or password|could not read Username"
    r"|returned error: 401"
)
# A leased push whose ref moved meanwhile ("! [rejected] ... (stale info)"), or an unleased
# one that is not a fast-forward ("(fetch first)", "(non-fast-forward)").
_REF_MOVED = re.compile(r"\(stale info\)|\(fetch first\)|\(non-fast-forward\)")
# The server's own refusal of a ref update: a pre-receive hook (GitHub's branch protection,
# "GH006", and rulesets, "GH013", say "(protected branch hook declined)").
_REMOTE_REJECTED = re.compile(r"\[remote rejected\]")


class GitError(Exception):
    """A git command failed; the message names the command, exit code and git's own words."""

    def __init__(self, args: Sequence[str], returncode: int, stderr: str) -> None:
        self.git_args = list(args)
        self.returncode = returncode
        self.stderr = stderr
        detail = stderr.strip()
        if len(detail) > _STDERR_LIMIT:
            detail = "..." + detail[-_STDERR_LIMIT:]
        command = " ".join(["git", *self.git_args])
        super().__init__(
            f"`{command}` failed with exit code {returncode}: {detail or '(no output)'}"
        )

    @property
    def auth_refused(self) -> bool:
        """Whether the server refused the credentials (an expired or revoked token)."""
        return bool(_AUTH_REFUSED.search(self.stderr))

    @property
    def ref_moved(self) -> bool:
        """Whether a push was refused because the remote branch is no longer where we said."""
        return bool(_REF_MOVED.search(self.stderr))

    @property
    def remote_rejected(self) -> bool:
        """Whether the server refused a push's ref update (branch protection, a ruleset)."""
        return bool(_REMOTE_REJECTED.search(self.stderr))


class GitTimeout(GitError):
    """A git command ran past its timeout; its whole process group was killed."""


def auth_env(token: str, url: str) -> dict[str, str]:
    """Environment that makes git authenticate to the host of `url` with `token` over HTTPS.

    The token travels as an `http.<scheme://host/>.extraHeader` set through `GIT_CONFIG_*`
    variables, so it is neither on the command line (visible in `ps`) nor in any config or
    remote URL on disk, and git sends it to that host only: a remote rewritten elsewhere
    (`url.<other>.insteadOf` planted in a config) never receives it.
    """
    parts = urlsplit(url)
    if not parts.scheme or not parts.netloc:
        raise ValueError(f"not a remote URL: {url!r}")
    scope = f"{parts.scheme}://{parts.netloc.rpartition('@')[2]}/"
    basic = base64.b64encode(f"{AUTH_USER}:{token}".encode()).decode()
    return {
        "GIT_CONFIG_COUNT": "1",
        "GIT_CONFIG_KEY_0": f"http.{scope}.extraHeader",
        "GIT_CONFIG_VALUE_0": _HEADER_PREFIX + basic,
        "GIT_TERMINAL_PROMPT": "0",
    }


def secrets_in_env(env: Mapping[str, str] | None) -> list[str]:
    """The secret values an `auth_env` mapping carries: header, base64 form and raw token."""
    found: list[str] = []
    for key, value in (env or {}).items():
        if not key.startswith("GIT_CONFIG_VALUE_") or not value.startswith(_HEADER_PREFIX):
            continue
        basic = value.removeprefix(_HEADER_PREFIX).strip()
        found.append(basic)
        with contextlib.suppress(ValueError):
            decoded = base64.b64decode(basic, validate=True).decode()
            found.append(decoded.partition(":")[2])
    return [s for s in found if s]


def redact(text: str, secrets: Iterable[str]) -> str:
    """`text` with every secret value and every `scheme://user:password@` userinfo removed."""
    for secret in sorted(set(secrets), key=len, reverse=True):
        if len(secret) >= 4:
            text = text.replace(secret, "***")
    return _URL_USERINFO.sub(r"\g<scheme>***@", text)


async def git(
    *args: str,
    cwd: Path,
    env: Mapping[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT_S,
    input: bytes | None = None,
) -> str:
    """Run `git *args` in `cwd` and return its stdout; raise `GitError` on failure.

    `env` is added to the server's environment. The process runs in its own process group,
    which is killed as a whole on timeout or cancellation (see `bot.process.run`).
    """
    full_env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", **(env or {})}
    done = await run(["git", *args], cwd=cwd, env=full_env, timeout_s=timeout, stdin=input)
    if done.timed_out or done.returncode != 0:
        secrets = secrets_in_env(env)
        redacted = [redact(a, secrets) for a in args]
        if done.timed_out:
            raise GitTimeout(redacted, -9, f"timed out after {timeout:g} s")
        raise GitError(redacted, done.returncode, redact(done.stderr_text, secrets))
    return done.stdout_text
