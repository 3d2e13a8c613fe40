"""The fake GitHub and a RepoAPI on it."""

from collections.abc import AsyncIterator

import pytest

from bot.github.repo_api import RepoAPI
from tests.github.fakegithub import FakeGitHub


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
async def api(fake: FakeGitHub) -> AsyncIterator[RepoAPI]:
    async with fake.client() as gh:
        yield RepoAPI(gh, fake.full_name, app_id=fake.app_id, bot_login=fake.bot)
