"""Scale tests: the sandbox and web in the test process, real `review-loop worker` processes."""

from collections.abc import Iterator

import pytest

from tests.conftest import fresh_database, server_url


@pytest.fixture
def scale_db() -> Iterator[str]:
    """A fresh database on the PostgreSQL server that every process shares."""
    with fresh_database(server_url()) as url:
        yield url
