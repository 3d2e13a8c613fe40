"""End-to-end tests: the sandbox GitHub and the unchanged bot, over real HTTP and real git;
some with real `review-loop worker` processes."""

from collections.abc import Iterator

import pytest

from tests.conftest import database_kind, migrated_copy


@pytest.fixture
def e2e_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server when there is one, else the
    embedded wheel."""
    yield from migrated_copy(request, database_kind())


@pytest.fixture
def scale_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server that every process shares."""
    yield from migrated_copy(request, "server")
