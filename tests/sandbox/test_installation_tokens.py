"""Installation tokens: one per installation (and repository scope) per process, shared by
every client, minted again shortly before it expires or once GitHub refuses it."""

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bot.github.client import GitHubApp
from bot.github.tokens import REFRESH_BEFORE, Tokens
from tests.conftest import make_settings
from tests.sandbox.conftest import REPO, World

OWNER, NAME = REPO.split("/")


def github_app(world: World, tmp_path: Path) -> GitHubApp:
    sandbox = world.sandbox
    settings = make_settings(
        tmp_path,
        "postgresql://unused/unused",
        app_id=sandbox.app_id,
        private_key_path=sandbox.private_key_path,
        github_url=sandbox.api_url,
    )
    return GitHubApp(settings)


def mints(world: World) -> list[str]:
    """The paths of the token requests the sandbox answered so far."""
    return [
        r["path"]
        for r in world.driver.requests()
        if r["method"] == "POST" and r["path"].endswith("/access_tokens")
    ]


async def read_repo(app: GitHubApp, installation_id: int) -> int:
    async with app.installation_client(installation_id) as gh:
        return (await gh.rest.repos.async_get(OWNER, NAME)).status_code


async def test_two_clients_of_one_installation_mint_one_token(world: World, tmp_path: Path) -> None:
    """Two clients of the installation starting at once, then a third, mint one token; git's
    token for one repository is minted once too, however often it is asked for."""
    app = github_app(world, tmp_path)

    first = await asyncio.gather(*(read_repo(app, world.installation_id) for _ in range(2)))
    third = await read_repo(app, world.installation_id)
    for_git = {await app.installation_token(world.installation_id, REPO) for _ in range(3)}

    assert [*first, third] == [200, 200, 200]
    assert len(for_git) == 1
    assert len(await asyncio.to_thread(mints, world)) == 2  # the installation's, and git's
    assert app.tokens.minted == 2


async def test_a_refused_token_is_dropped_and_the_request_sent_again(
    world: World, tmp_path: Path
) -> None:
    """When GitHub answers 401 (the token expired by GitHub's clock, ahead of ours), the
    request is sent once more with a fresh token, which later clients share."""
    app = github_app(world, tmp_path)
    assert await read_repo(app, world.installation_id) == 200
    await asyncio.to_thread(world.driver.advance_clock, 3600)

    assert await read_repo(app, world.installation_id) == 200
    assert await read_repo(app, world.installation_id) == 200

    statuses = [r["status"] for r in await asyncio.to_thread(world.driver.requests)]
    # The read sent again keeps its condition: unchanged, it is answered 304.
    assert statuses == [201, 200, 401, 201, 304, 304]


async def test_a_token_is_minted_again_shortly_before_it_expires() -> None:
    """A held token is used until `REFRESH_BEFORE` its expiry, then replaced."""
    clock = datetime(2026, 1, 1, tzinfo=UTC)
    expiry = clock + timedelta(hours=1)
    minted: list[str] = []

    async def mint(installation_id: int, repository: str | None) -> tuple[str, datetime]:
        minted.append(f"t{len(minted)}")
        return minted[-1], expiry

    tokens = Tokens(mint, now=lambda: clock)
    assert await tokens.get(1) == "t0"
    clock = expiry - REFRESH_BEFORE - timedelta(seconds=1)
    assert await tokens.get(1) == "t0"
    clock = expiry - REFRESH_BEFORE
    assert await tokens.get(1) == "t1"
    assert await tokens.get(2) == "t2"  # another installation has its own
    tokens.drop("t1")
    assert await tokens.get(1) == "t3"
