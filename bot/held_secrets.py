"""Secrets out of the process environment: `serve`, `web` and `worker` re-exec themselves once
with every secret moved from the environment into an inherited pipe.

A program the worker runs (a repository's `setup` and `test`, an agent) could otherwise read
them from `/proc/<worker pid>/environ`, which always shows the environment the process was
*exec'd* with: removing a name from `os.environ` later changes nothing there. So the first
process reads the secrets, writes them to a pipe, and execs the same command line again with
an environment that holds only the pipe's file descriptor number; the new process (same pid)
reads the pipe, closes it and keeps the secrets in memory. It then makes itself non-dumpable,
so processes of the same user cannot read its `/proc/<pid>/environ`, `mem` or `fd` either.
"""

from __future__ import annotations

import contextlib
import ctypes
import json
import os
import sys
from collections.abc import Iterable, Mapping

from bot.config import PREFIX, ConfigError

__all__ = [
    "SECRETS_FD_ENV",
    "SECRET_SETTINGS",
    "environ_with_secrets",
    "held",
    "make_undumpable",
    "reexec_without_secrets",
    "take_secrets",
]

SECRETS_FD_ENV = "REVIEW_LOOP_SECRETS_FD"
# Settings whose values are secrets (or lead to one: the key file's path).
SECRET_SETTINGS = ("WEBHOOK_SECRET", "DATABASE_URL", "PRIVATE_KEY", "PRIVATE_KEY_PATH",
                   "DASHBOARD_TOKEN")  # fmt: skip
# A pipe takes 64 KiB before a write blocks; the secrets are written before anyone reads.
MAX_PAYLOAD_BYTES = 60_000
_PR_SET_DUMPABLE = 4
_PR_GET_DUMPABLE = 3

_held: dict[str, str] = {}


def secret_names(environ: Mapping[str, str], extra: Iterable[str] = ()) -> list[str]:
    """The names in `environ` that hold secrets: the secret settings and `extra` (the agents'
    API key variables and allow-listed variables)."""
    wanted = {PREFIX + name for name in SECRET_SETTINGS} | set(extra)
    return sorted(name for name in environ if name.upper() in wanted or name in wanted)


def reexec_without_secrets(names: Iterable[str]) -> None:
    """Exec this command line again with the variables `names` moved from the environment to
    a pipe; returns (does nothing) when the environment holds none of them."""
    moved = {name: os.environ[name] for name in names if name in os.environ}
    if not moved:
        return
    payload = json.dumps(moved).encode()
    if len(payload) > MAX_PAYLOAD_BYTES:
        raise ConfigError(
            f"the secrets in the environment ({', '.join(sorted(moved))}) take more than "
            f"{MAX_PAYLOAD_BYTES} bytes: pass the private key by REVIEW_LOOP_PRIVATE_KEY_PATH"
        )
    read_end, write_end = os.pipe()
    os.write(write_end, payload)
    os.close(write_end)
    os.set_inheritable(read_end, True)
    env = {k: v for k, v in os.environ.items() if k not in moved}
    env[SECRETS_FD_ENV] = str(read_end)
    sys.stdout.flush()
    sys.stderr.flush()
    os.execve(sys.executable, [sys.executable, *sys.orig_argv[1:]], env)  # noqa: S606 - ourselves


def take_secrets() -> dict[str, str]:
    """The secrets the previous exec left in the pipe named by `REVIEW_LOOP_SECRETS_FD`, read
    once (the pipe is closed); also held for `environ_with_secrets`. Empty when there is none."""
    fd_text = os.environ.pop(SECRETS_FD_ENV, None)
    if fd_text is None:
        return {}
    try:
        fd = int(fd_text)
        chunks = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
        os.close(fd)
        secrets = json.loads(b"".join(chunks))
    except (ValueError, OSError) as exc:
        raise ConfigError(f"{SECRETS_FD_ENV}={fd_text} is not a readable pipe: {exc}") from exc
    if not isinstance(secrets, dict):
        raise ConfigError(f"{SECRETS_FD_ENV}={fd_text} did not hold the secrets")
    _held.update({str(k): str(v) for k, v in secrets.items()})
    return dict(_held)


def held() -> dict[str, str]:
    """The secrets taken at start-up (name -> value), as they were in the environment."""
    return dict(_held)


def settings_overrides(secrets: Mapping[str, str]) -> dict[str, str]:
    """The `Settings` keyword arguments for the secret settings among `secrets`."""
    return {
        name.upper().removeprefix(PREFIX).lower(): value
        for name, value in secrets.items()
        if name.upper().startswith(PREFIX)
    }


def environ_with_secrets() -> dict[str, str]:
    """The process environment with the held secrets back in: where agents take their
    allow-listed variables and API keys from. Never passed whole to a program."""
    return {**os.environ, **_held}


def make_undumpable() -> bool:
    """prctl(PR_SET_DUMPABLE, 0): other processes of the same user (not root) can no longer
    read this process's /proc files (environ, mem, fd) nor ptrace it. False where the OS has
    no prctl."""
    if not sys.platform.startswith("linux"):
        return False
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL(None, use_errno=True)
        return bool(libc.prctl(_PR_SET_DUMPABLE, 0, 0, 0, 0) == 0)
    return False


def is_dumpable() -> bool:
    """prctl(PR_GET_DUMPABLE) of this process (True where the OS has no prctl)."""
    if not sys.platform.startswith("linux"):
        return True
    libc = ctypes.CDLL(None, use_errno=True)
    return bool(libc.prctl(_PR_GET_DUMPABLE, 0, 0, 0, 0))
