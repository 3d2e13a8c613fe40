"""End-to-end tests: the sandbox GitHub and the unchanged bot, over real HTTP and real git."""

import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import SERVER_URL_VAR, fresh_database


@pytest.fixture
def e2e_db(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database on the PostgreSQL server when there is one, else the embedded wheel."""
    admin = os.environ.get(SERVER_URL_VAR) or request.getfixturevalue("embedded_admin_url")
    with fresh_database(admin) as url:
        yield url


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Outside pytest's basetemp, which a concurrent pytest run may prune mid-test.
    path = Path(tempfile.mkdtemp(prefix="review-loop-e2e-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
