"""End-to-end tests: the sandbox GitHub and the unchanged bot, over real HTTP and real git;
some with real `review-loop worker` processes."""

from collections.abc import Iterator

import pytest

from tests.conftest import admin_url, database_kind, fresh_database, server_url


@pytest.fixture
def e2e_db(request: pytest.FixtureRequest, templates: dict[str, str]) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server when there is one, else the
    embedded wheel."""
    kind = database_kind()
    with fresh_database(admin_url(request, kind), template=templates[kind]) as url:
        yield url


@pytest.fixture
def scale_db(templates: dict[str, str]) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server that every process shares."""
    with fresh_database(server_url(), template=templates["server"]) as url:
        yield url
