"""Scale tests: the sandbox and web in the test process, real `review-loop worker` processes."""

import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.conftest import fresh_database, server_url


@pytest.fixture
def scale_db() -> Iterator[str]:
    """A fresh database on the PostgreSQL server that every process shares."""
    with fresh_database(server_url()) as url:
        yield url


@pytest.fixture
def workdir() -> Iterator[Path]:
    # Outside pytest's basetemp, which a concurrent pytest run may prune mid-test.
    path = Path(tempfile.mkdtemp(prefix="review-loop-scale-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)
