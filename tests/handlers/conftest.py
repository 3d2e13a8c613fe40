"""The handlers' bench: real payloads through the real intake and dispatch, on the real
runtime, with GitHub played by the one fake (`tests/fakes/github.py`).

A delivery is stored the way `POST /webhook` stores it and dispatched to the enabled
handlers (`handlers.enabled_router()`); what a test then reads is what a user would see:
the PR's row and the jobs queued in the database, the comments and labels on the fake.
"""

import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from pydantic import SecretStr

from bot.github.markers import parse_marker
from bot.loop.fleet import Fleet
from bot.loop.store import LoopStore, PrRow, TaskRow
from bot.runtime import open_runtime
from bot.webhooks.deliveries import Delivery as StoredDelivery
from bot.webhooks.deliveries import store_deliveries
from bot.webhooks.dispatch import Dispatcher, dispatch
from bot.worker import wire
from handlers import enabled_router
from tests.conftest import make_settings
from tests.fakes.github import BASE_URL, FakeComment, FakeGitHub
from tests.gitrepos import Remote
from tests.support import load_event

Json = dict[str, Any]

REPO = "Codertocat/Hello-World"  # the repository of most fixture payloads
INSTALLATION = 4242
APP_ID = 7
BOT = "review-loop-test[bot]"  # the bot login of make_settings' app_slug


@dataclass(frozen=True)
class Delivery:
    """How dispatch left a delivery: its status and each handler's outcome."""

    status: str
    outcome: Json


@dataclass
class Bench:
    """One worker's fleet over the fake GitHub, and what a test reads back."""

    fleet: Fleet
    fake: FakeGitHub

    @property
    def store(self) -> LoopStore:
        return LoopStore(self.fleet.runtime.pool)

    def event(self, name: str) -> Json:
        """The real payload `name` ("issues.labeled"), about the fake's repository and sent
        to this App's installation (GitHub puts `installation` on every App delivery)."""
        payload = load_event(name)
        if "repository" in payload:
            payload["repository"]["full_name"] = self.fake.full_name
        payload["installation"] = {**payload.get("installation", {}), "id": INSTALLATION}
        return payload

    async def deliver(
        self,
        name: str,
        payload: Json,
        *,
        delivery_id: str | None = None,
        final_attempt: bool = True,
    ) -> Delivery:
        """Store `payload` as intake does (event `name` up to its dot) and dispatch it to the
        enabled handlers."""
        delivery_id = delivery_id or str(uuid.uuid4())
        body = json.dumps(payload).encode()
        event = name.split(".")[0]
        stored = StoredDelivery.of(delivery_id, event, body, payload)
        async with self.fleet.runtime.pool.connection() as conn:
            assert await store_deliveries(conn, [stored]) == [True]
        return await self.dispatch(delivery_id, final_attempt=final_attempt)

    async def dispatch(self, delivery_id: str, *, final_attempt: bool = True) -> Delivery:
        """Dispatch a stored delivery (again, as the dispatch job's retry does)."""
        dispatcher = Dispatcher(self.fleet, enabled_router())
        await dispatch(dispatcher, delivery_id, final_attempt=final_attempt)
        return await self.delivery(delivery_id)

    async def delivery(self, delivery_id: str) -> Delivery:
        async with self.fleet.runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT status, outcome FROM review_loop_deliveries WHERE id = %s",
                (delivery_id,),
            )
            row = await cur.fetchone()
        assert row is not None
        return Delivery(row["status"], row["outcome"] or {})

    async def pr(self, number: int) -> PrRow | None:
        return await self.store.get(self.fake.full_name, number)

    async def reconciles(self) -> list[int]:
        """The PR numbers of the queued `reconcile_pr` jobs, oldest first."""
        return [int(args["number"]) for args in await self.jobs("reconcile_pr")]

    async def fix_jobs(self) -> list[int]:
        """The task ids of the queued `run_fix_task` jobs, oldest first."""
        return [int(args["task_id"]) for args in await self.jobs("run_fix_task")]

    async def jobs(self, task_name: str) -> list[Json]:
        """The arguments of the queued jobs named `task_name`, oldest first."""
        async with self.fleet.runtime.pool.connection() as conn:
            cur = await conn.execute(
                "SELECT args FROM procrastinate_jobs WHERE task_name = %s ORDER BY id",
                (task_name,),
            )
            return [row["args"] for row in await cur.fetchall()]

    async def tasks(self) -> list[TaskRow]:
        async with self.fleet.runtime.pool.connection() as conn:
            cur = await conn.execute("SELECT id FROM review_loop_tasks ORDER BY id")
            ids = [int(row["id"]) for row in await cur.fetchall()]
        found = [await self.store.task(i) for i in ids]
        return [t for t in found if t is not None]

    def comments_on(self, number: int) -> list[FakeComment]:
        return [c for c in self.fake.comments.values() if c.issue == number]

    def replies(self, number: int, kind: str) -> list[str]:
        """The bodies of the bot's comments on `number` whose hidden marker is of `kind`."""
        return [
            c.body
            for c in self.comments_on(number)
            if c.user == BOT and (parse_marker(c.body) or {}).get("kind") == kind
        ]


def finding_body(pr: int, fp: str = "ruff:F401:app.py") -> str:
    """An issue body as the bot files a finding of `pr`: text after its hidden marker."""
    marker = json.dumps({"fp": fp, "pr": pr, "sha": "c" * 40})
    return f"<!-- review-loop {marker} -->\n`F401` unused import in `app.py`."


@pytest.fixture
def fake() -> FakeGitHub:
    """The fake GitHub, holding the fixtures' repository; this App's bot writes on it."""
    return FakeGitHub(REPO, app_id=APP_ID, bot=BOT)


@pytest.fixture
def cloneable(fake: FakeGitHub, remote: Remote) -> Remote:
    """The fake's repository clones from a local bare repository (one commit on main)."""
    # A host in the URL, as on GitHub: the bot scopes its token header to the URL's host.
    fake.clone_url = remote.url.replace("file://", "file://localhost", 1)
    return remote


@pytest.fixture
async def bench(
    tmp_path: Path, db_url: str, private_key: str, fake: FakeGitHub
) -> AsyncIterator[Bench]:
    settings = make_settings(
        tmp_path,
        db_url,
        app_id=APP_ID,
        private_key=SecretStr(private_key),
        github_url=BASE_URL,
        write_interval_s=0,
    )
    transport = httpx.MockTransport(fake.handle)
    async with open_runtime(settings, github_transport=transport) as runtime:
        yield Bench(wire(runtime, enabled_router()), fake)
