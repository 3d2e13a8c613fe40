"""End-to-end tests: the sandbox GitHub and the unchanged bot, over real HTTP and real git;
some with real `review-loop worker` processes."""

import os
from collections.abc import Iterator

import pytest

from tests.conftest import SERVER_URL_VAR, fresh_database, server_url


@pytest.fixture
def e2e_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the PostgreSQL server when there is one, else the embedded wheel."""
    admin = os.environ.get(SERVER_URL_VAR) or request.getfixturevalue("embedded_admin_url")
    with fresh_database(admin) as url:
        yield url


@pytest.fixture
def scale_db() -> Iterator[str]:
    """A fresh database on the PostgreSQL server that every process shares."""
    with fresh_database(server_url()) as url:
        yield url
