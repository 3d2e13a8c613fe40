"""A fix task's pushes and installation tokens that expire or are refused while it works:
each push asks for the token then, and one GitHub refuses is replaced once."""

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.git.cmd import GitError, auth_env, git
from bot.git.worktrees import Mirrors, Worktree
from bot.github.tokens import GitToken, Tokens
from bot.loop.fix.branch import TaskBranch, commit_fix
from bot.loop.fix.job import BotIdentity
from tests.sandbox.conftest import REPO, World, app_client

BOT = BotIdentity("rl[bot]", "7+rl[bot]@users.noreply.github.com")


class Clock:
    def __init__(self) -> None:
        self.at = datetime.now(UTC)

    def __call__(self) -> datetime:
        return self.at


def minting(world: World) -> Tokens:
    """The bot's token cache, minting tokens of `world`'s installation scoped to one repo."""
    clock = Clock()

    async def mint(installation_id: int, repository: str | None) -> tuple[str, datetime]:
        assert repository is not None
        github = app_client(world.sandbox)
        made = await github.rest.apps.async_create_installation_access_token(
            installation_id, data={"repositories": [repository.split("/", 1)[1]]}
        )
        return made.parsed_data.token, datetime.fromisoformat(made.parsed_data.expires_at)

    tokens = Tokens(mint, now=clock)
    tokens.clock = clock  # type: ignore[attr-defined]
    return tokens


async def checked_out(world: World, tmp_path: Path, token: GitToken) -> tuple[str, Worktree]:
    url = f"{world.sandbox.url}/{REPO}.git"
    mirrors = Mirrors(tmp_path / "git")
    mirror = await mirrors.ensure(REPO, url, await token.get())
    head = (await git("rev-parse", "refs/remotes/origin/main", cwd=mirror)).strip()
    path = mirrors.worktree_path(REPO, "task-1")
    return url, await mirrors.add_worktree(mirror, path, "review-loop/pr-1/1", head)


async def lease_held() -> None:
    return None


async def on_github(url: str, token: GitToken, branch: str) -> str:
    env = auth_env(await token.get(), url)
    out = await git("ls-remote", url, f"refs/heads/{branch}", cwd=Path.cwd(), env=env)
    return out.split()[0]


async def test_a_push_after_the_token_expired_carries_a_new_one(
    world: World, tmp_path: Path
) -> None:
    """An agent that works past the start token's life: the push mints and uses another."""
    tokens = minting(world)
    token = GitToken(tokens, world.installation_id, REPO)
    url, wt = await checked_out(world, tmp_path, token)
    branch = TaskBranch(wt.branch, url, token, None, lease_held, existed=False)
    (wt.path / "a.py").write_text("a = 1\n")
    await commit_fix(wt, 1, "a finding", BOT)
    await branch.push(wt)  # a checkpoint early in the task

    world.driver.advance_clock(3600 + 60)  # GitHub's hour is over: that token is refused now
    tokens.clock.at += timedelta(hours=1)  # type: ignore[attr-defined]
    (wt.path / "b.py").write_text("b = 1\n")
    sha = await commit_fix(wt, 2, "another finding", BOT)
    await branch.push(wt)

    assert tokens.minted == 2
    assert await on_github(url, token, wt.branch) == sha


async def test_a_push_whose_token_github_refuses_is_sent_once_more_with_a_new_one(
    world: World, tmp_path: Path
) -> None:
    """GitHub's clock runs ahead of the bot's: the token the bot holds as valid is refused
    (401), dropped, and the push goes again with a fresh one."""
    tokens = minting(world)
    token = GitToken(tokens, world.installation_id, REPO)
    url, wt = await checked_out(world, tmp_path, token)
    branch = TaskBranch(wt.branch, url, token, None, lease_held, existed=False)
    (wt.path / "a.py").write_text("a = 1\n")
    sha = await commit_fix(wt, 1, "a finding", BOT)

    world.driver.advance_clock(3600 + 60)  # only GitHub's clock moves
    await branch.push(wt)

    assert tokens.minted == 2
    assert await on_github(url, token, wt.branch) == sha


async def test_a_refusal_that_is_not_about_the_token_is_not_retried(
    world: World, tmp_path: Path
) -> None:
    """A push refused for another reason (the branch moved meanwhile) fails as before,
    without minting a token."""
    tokens = minting(world)
    token = GitToken(tokens, world.installation_id, REPO)
    url, wt = await checked_out(world, tmp_path, token)
    world.driver.push(REPO, wt.branch, {"other.py": "x = 1\n"}, as_user="alice")
    branch = TaskBranch(wt.branch, url, token, None, lease_held, existed=False)
    (wt.path / "a.py").write_text("a = 1\n")
    await commit_fix(wt, 1, "a finding", BOT)

    with pytest.raises(GitError) as refused:
        await branch.push(wt)
    assert not refused.value.auth_refused
    assert tokens.minted == 1
