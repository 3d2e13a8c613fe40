"""Databases for the tests: the embedded wheel and the PostgreSQL server, a fresh one each."""

import asyncio
import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import psycopg
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from psycopg.rows import dict_row

from bot.config import Settings
from bot.engine import migrations
from bot.engine.database import Pool, open_pool, stop_embedded
from bot.git.cmd import git
from bot.git.worktrees import Mirrors, Worktree
from bot.github.repo_api import RepoAPI
from bot.loop.fleet import Fleet
from bot.runtime import Runtime, open_runtime
from bot.webhooks.routing import Router
from bot.worker import wire
from tests.fakes.github import FakeGitHub
from tests.gitrepos import INITIAL_FILES, GitRepo, Remote
from tests.modelsandbox import model_server, models  # noqa: F401 - shared fixtures
from tests.support import SECRET

SERVER_URL_VAR = "REVIEW_LOOP_TEST_DATABASE_URL"

# A Python process a test starts prints every thread's stack if it dies of SIGABRT (which
# `tests.support.interrupt` sends a process that does not stop) or of a crash.
os.environ.setdefault("PYTHONFAULTHANDLER", "1")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The end-to-end tests first: under pytest-xdist the longest start early and the short
    ones fill in around them, instead of one long test ending the run alone."""
    items.sort(key=lambda item: not item.nodeid.startswith("tests/e2e/"))


def with_database(url: str, name: str) -> str:
    info = psycopg.conninfo.conninfo_to_dict(url)
    info["dbname"] = name
    return psycopg.conninfo.make_conninfo(**info)


@contextlib.contextmanager
def fresh_database(admin_url: str, *, template: str | None = None) -> Iterator[str]:
    """CREATE a database of its own for one test on the server at `admin_url` (a copy of
    `template` when given, empty otherwise); DROP it after."""
    name = f"rl_test_{uuid.uuid4().hex[:12]}"
    copy = f' TEMPLATE "{template}"' if template else ""
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"{copy}')
    try:
        yield with_database(admin_url, name)
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


async def _migrate(url: str) -> None:
    async with await psycopg.AsyncConnection.connect(url, row_factory=dict_row) as conn:
        await migrations.migrate(conn)
        # Applied an hour ago, as in production, where pull requests are opened long after a
        # migration: the intents' horizon (`bot.github.intents`) is migration 14's time, and
        # a pull request GitHub dates to the second it was migrated in counts as older (its
        # check run and summary are looked up first, the safe side), which made counts of
        # requests depend on the second a test ran in.
        await conn.execute(
            "UPDATE review_loop_migrations SET applied_at = applied_at - interval '1 hour'"
        )
        await conn.commit()


@contextlib.contextmanager
def migrated_template(admin_url: str) -> Iterator[str]:
    """A database with every migration applied, for `fresh_database` to copy: CREATE DATABASE
    ... TEMPLATE copies its files, far cheaper than applying the migrations per test. It is
    built by this session from the code under test, so it is never stale."""
    name = f"rl_template_{uuid.uuid4().hex[:12]}"
    with psycopg.connect(admin_url, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        asyncio.run(_migrate(with_database(admin_url, name)))
        yield name
    finally:
        with psycopg.connect(admin_url, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def server_url() -> str:
    url = os.environ.get(SERVER_URL_VAR)
    if not url:
        pytest.skip(f"{SERVER_URL_VAR} is unset: no PostgreSQL server to test against")
    return url


def database_kind() -> str:
    """The kind a database test runs on unless it is about a kind: the server when one is
    named (as CI runs), the embedded wheel otherwise (a fresh machine)."""
    return "server" if os.environ.get(SERVER_URL_VAR) else "embedded"


@pytest.fixture(scope="session")
def embedded_admin_url() -> Iterator[str]:
    """One embedded PostgreSQL (the wheel) for the whole session.

    Its data lives outside pytest's basetemp: a concurrent pytest run prunes old basetemp
    folders, and PostgreSQL shuts down when its data directory disappears.
    """
    from bot.engine.database import embedded_url

    root = Path(tempfile.mkdtemp(prefix="review-loop-embedded-"))
    try:
        url = embedded_url(root)
        # Thrown away after the session, so nothing it writes need survive an OS crash: no
        # fsync, no full pages after checkpoints. Commits stay synchronous (a crash of the
        # server itself loses nothing); both settings take effect on reload.
        with psycopg.connect(url, autocommit=True) as conn:
            conn.execute("ALTER SYSTEM SET fsync = off")
            conn.execute("ALTER SYSTEM SET full_page_writes = off")
            conn.execute("SELECT pg_reload_conf()")
        yield url
    finally:
        stop_embedded(root)
        shutil.rmtree(root, ignore_errors=True)


def admin_url(request: pytest.FixtureRequest, kind: str) -> str:
    if kind == "embedded":
        return str(request.getfixturevalue("embedded_admin_url"))
    return server_url()


@pytest.fixture(scope="session")
def embedded_template(embedded_admin_url: str) -> Iterator[str]:
    """The migrated template on the embedded wheel, built once per session."""
    with migrated_template(embedded_admin_url) as name:
        yield name


@pytest.fixture(scope="session")
def server_template() -> Iterator[str]:
    """The migrated template on the PostgreSQL server, built once per session."""
    with migrated_template(server_url()) as name:
        yield name


def migrated_copy(request: pytest.FixtureRequest, kind: str) -> Iterator[str]:
    """A fresh copy of the migrated template of `kind`, dropped after the test."""
    template = str(request.getfixturevalue(f"{kind}_template"))
    with fresh_database(admin_url(request, kind), template=template) as url:
        yield url


@pytest.fixture
def db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh database with every migration applied, on one kind (`database_kind`)."""
    yield from migrated_copy(request, database_kind())


@pytest.fixture
async def pool(db_url: str) -> AsyncIterator[Pool]:
    """A small open connection pool on a fresh migrated database (`db_url`), without the
    rest of a runtime."""
    opened = open_pool(db_url, max_size=2)
    await opened.open(wait=True)
    yield opened
    await opened.close()


@pytest.fixture(params=["embedded", pytest.param("server", marks=pytest.mark.server_db)])
def empty_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, empty database on each kind, for the tests about migrating one."""
    with fresh_database(admin_url(request, request.param)) as url:
        yield url


@pytest.fixture
def server_db_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A fresh, migrated database on the PostgreSQL server (the distributed mode)."""
    yield from migrated_copy(request, "server")


@pytest.fixture
def workdir() -> Iterator[Path]:
    """A scratch folder outside pytest's basetemp, which a concurrent pytest run may prune
    under a running server (PostgreSQL stops when its data directory disappears)."""
    path = Path(tempfile.mkdtemp(prefix="review-loop-test-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


def make_settings(tmp_path: Path, db: str, **overrides: object) -> Settings:
    values: dict[str, object] = {
        "database_url": db,
        "webhook_secret": SECRET,
        "data_dir": tmp_path / "data",
        "app_slug": "review-loop-test",
        "worker_concurrency": 2,
    }
    values.update(overrides)
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


@pytest.fixture
def settings(tmp_path: Path, db_url: str) -> Settings:
    return make_settings(tmp_path, db_url)


@pytest.fixture
def router() -> Router:
    """An empty router; tests register what they need on it."""
    return Router()


@pytest.fixture
async def fleet(settings: Settings, router: Router) -> AsyncIterator[Fleet]:
    """A worker's wiring over an opened runtime: its queue runs the bot's jobs, dispatching
    deliveries to `router`."""
    async with open_runtime(settings) as rt:
        yield wire(rt, router)


@pytest.fixture
def runtime(fleet: Fleet) -> Runtime:
    return fleet.runtime


# Real git repositories (tests/gitrepos.py) and the fake GitHub (tests/fakes/github.py).


@pytest.fixture
def repo(tmp_path: Path) -> GitRepo:
    """An empty git repository in a temporary directory."""
    return GitRepo(tmp_path / "repo")


@pytest.fixture
async def remote(tmp_path: Path) -> Remote:
    """A remote with one commit on main."""
    bare, work = tmp_path / "remote.git", tmp_path / "human"
    await git("init", "--quiet", "--bare", "-b", "main", str(bare), cwd=tmp_path)
    await git("clone", "--quiet", bare.as_uri(), str(work), cwd=tmp_path)
    made = Remote(bare, work)
    await made.commit(dict(INITIAL_FILES), "initial")
    return made


@pytest.fixture
def mirrors(tmp_path: Path) -> Mirrors:
    return Mirrors(tmp_path / "data")


@pytest.fixture
async def worktree(tmp_path: Path, mirrors: Mirrors, remote: Remote) -> Worktree:
    """A task worktree at the remote's main, on branch `review-loop/pr-1/1`."""
    mirror = await mirrors.ensure("acme/demo", remote.url, None)
    path = mirrors.worktree_path("acme/demo", "task-1")
    return await mirrors.add_worktree(mirror, path, "review-loop/pr-1/1", await remote.sha())


@pytest.fixture(scope="session")
def private_key() -> str:
    """The App's private key: githubkit signs a real JWT for every installation token."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode()


@pytest.fixture
def fake() -> FakeGitHub:
    return FakeGitHub()


@pytest.fixture
async def api(fake: FakeGitHub) -> AsyncIterator[RepoAPI]:
    async with fake.client() as gh:
        yield RepoAPI(gh, fake.full_name, app_id=fake.app_id, bot_login=fake.bot)
