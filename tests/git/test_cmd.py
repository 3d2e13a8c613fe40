"""The git subprocess wrapper: authentication through the environment, errors, timeouts."""

from __future__ import annotations

import base64
from pathlib import Path

import pytest

from bot.git.cmd import GitError, GitTimeout, auth_env, git, redact
from tests.gitrepos import process_alive

TOKEN = "ghs_16C7e42F292c6912E7710c838347Ae178B4a"
URL = "https://github.example/acme/shop.git"


async def test_auth_env_sends_the_basic_auth_header_to_the_remotes_host_only(
    tmp_path: Path,
) -> None:
    """The token reaches git as an http.extraHeader through GIT_CONFIG_* variables, scoped to
    the remote's scheme and host: a URL on another host (where an `insteadOf` planted in a
    config would send the request) gets no header."""
    env = auth_env(TOKEN, URL)

    async def header_for(url: str) -> str:
        try:
            out = await git(
                "config", "--get-urlmatch", "http.extraheader", url, cwd=tmp_path, env=env
            )
        except GitError:  # exit 1: nothing applies to this URL
            return ""
        return out.strip()

    expected = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert await header_for("https://github.example/acme/other.git") == (
        f"Authorization: Basic {expected}"
    )
    assert await header_for("https://evil.example/acme/shop.git") == ""
    assert await header_for("http://github.example/acme/shop.git") == ""


def test_auth_env_never_asks_for_a_password_and_keeps_the_token_off_argv() -> None:
    """Terminal prompts are off, and the raw token is not a value git could print as an arg."""
    env = auth_env(TOKEN, URL)
    assert env["GIT_TERMINAL_PROMPT"] == "0"
    assert all(TOKEN not in value for value in env.values())


async def test_git_error_names_the_command_and_never_the_token(tmp_path: Path) -> None:
    """A failing command's message says what failed; the token is redacted everywhere."""
    await git("init", "--quiet", cwd=tmp_path)
    with pytest.raises(GitError) as caught:
        await git("rev-parse", "--verify", TOKEN, cwd=tmp_path, env=auth_env(TOKEN, URL))

    error = caught.value
    basic = base64.b64encode(f"x-access-token:{TOKEN}".encode()).decode()
    assert error.returncode != 0
    assert "git rev-parse --verify" in str(error)
    for text in (str(error), error.stderr, " ".join(error.git_args)):
        assert TOKEN not in text and basic not in text


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        pytest.param("https://x-access-token:s3cret@github.com/a/b", "https://***@github.com/a/b",
                     id="url-userinfo"),
        pytest.param(f"token {TOKEN} here", "token *** here", id="known-secret"),
        pytest.param("nothing to hide", "nothing to hide", id="clean"),
    ],
)  # fmt: skip
def test_redact_removes_known_secrets_and_url_credentials(text: str, expected: str) -> None:
    """Known secret values and userinfo in URLs never survive into messages."""
    assert redact(text, [TOKEN]) == expected


async def test_git_timeout_kills_the_whole_process_group(tmp_path: Path) -> None:
    """A git command past its timeout is killed along with what it started."""
    pid_file = tmp_path / "child.pid"
    alias = f"!sleep 30 & echo $! > {pid_file}; wait"
    with pytest.raises(GitTimeout, match="timed out"):
        await git("-c", f"alias.hang={alias}", "hang", cwd=tmp_path, timeout=0.5)

    assert not process_alive(int(pid_file.read_text()))
