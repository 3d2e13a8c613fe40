"""Fixtures for the sandbox GitHub: a running sandbox, a webhook receiver, a small world in it,
and githubkit clients for the App, its installation and a human."""

import json
import os
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import uvicorn
from githubkit import AppAuthStrategy, AppInstallationAuthStrategy, GitHub, TokenAuthStrategy
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from bot.sandbox import Driver, Sandbox
from bot.web import signing

SECRET = "sandbox-webhook-secret"
SCHEMA_PATH = Path(__file__).parents[1] / "fixtures" / "webhook-schema.json"
REPO = "acme/widgets"
FILES = {
    "README.md": "# widgets\n",
    "widgets/__init__.py": "VERSION = 1\n",
    ".github/review-loop.yml": "max_rounds: 3\n",
}


@dataclass
class Received:
    event: str
    action: str | None
    guid: str
    headers: dict[str, str]
    body: bytes
    payload: dict[str, Any]


@dataclass
class Receiver:
    """A webhook endpoint on 127.0.0.1 that records what it receives."""

    url: str = ""
    status_code: int = 202
    received: list[Received] = field(default_factory=list)
    server: uvicorn.Server | None = None

    def stop_soon(self) -> None:
        """Start shutting down, without waiting (the fixture's teardown waits)."""
        if self.server is not None:
            self.server.should_exit = True

    def of(self, event: str, action: str | None = None) -> list[Received]:
        return [r for r in self.received if r.event == event and action in (None, r.action)]

    def one(self, event: str, action: str) -> dict[str, Any]:
        matches = self.of(event, action)
        assert len(matches) == 1, f"{event}.{action}: {len(matches)} deliveries"
        return matches[0].payload


def _serve_in_thread(app: Starlette) -> tuple[str, uvicorn.Server, threading.Thread]:
    sock = socket.create_server(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="off"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        assert time.monotonic() < deadline, "receiver did not start"
        time.sleep(0.01)
    return f"http://127.0.0.1:{sock.getsockname()[1]}/webhook", server, thread


@pytest.fixture(scope="session")
def webhook_schema() -> dict[str, Any]:
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text())
    return schema


def validate_payload(schema: dict[str, Any], event: str, payload: dict[str, Any]) -> None:
    """Raise unless `payload` matches GitHub's schema for its `event$action`."""
    # GitHub's schema names an event without actions `<event>$event` (`push$event`).
    name = f"{event}${payload['action']}" if "action" in payload else f"{event}$event"
    if name not in schema["definitions"]:
        name = event
    assert name in schema["definitions"], f"no schema for {name}"
    document = {"$ref": f"#/definitions/{name}", "definitions": schema["definitions"]}
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft7Validator(document).iter_errors(payload)
    )
    if error is not None:
        where = "/".join(str(p) for p in error.absolute_path)
        raise AssertionError(f"{name} does not match GitHub's schema at {where}: {error.message}")


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    state = Receiver()

    async def webhook(request: Request) -> Response:
        body = await request.body()
        headers = dict(request.headers)
        assert signing.verify(SECRET, body, headers.get("x-hub-signature-256"))
        payload = json.loads(body)
        event = headers["x-github-event"]
        guid = headers["x-github-delivery"]
        state.received.append(Received(event, payload.get("action"), guid, headers, body, payload))
        return Response(status_code=state.status_code)

    app = Starlette(routes=[Route("/webhook", webhook, methods=["POST"])])
    state.url, state.server, thread = _serve_in_thread(app)
    yield state
    state.stop_soon()
    thread.join(timeout=10)


@pytest.fixture
def sandbox(
    tmp_path: Path, receiver: Receiver, webhook_schema: dict[str, Any]
) -> Iterator[Sandbox]:
    """A running sandbox sending webhooks to `receiver`; every payload it emitted is checked
    against GitHub's webhook schema when the test ends."""
    with Sandbox.start(tmp_path / "github", webhook_url=receiver.url, webhook_secret=SECRET) as sb:
        yield sb
        sb.wait_for_deliveries(timeout=10)
        # Nothing more is delivered: the receiver shuts down while the sandbox does (each
        # uvicorn takes 0.1-0.2 s), not after it.
        receiver.stop_soon()
        for delivery in sb.hub.webhooks.log:
            validate_payload(webhook_schema, delivery.event, json.loads(delivery.body))


@dataclass
class World:
    """alice (write) and bob (read) around the org repository acme/widgets with the App on it."""

    sandbox: Sandbox
    installation_id: int
    repo: str = REPO

    @property
    def driver(self) -> Driver:
        return self.sandbox.driver


@pytest.fixture
def world(sandbox: Sandbox) -> World:
    driver = sandbox.driver
    driver.create_user("alice")
    driver.create_user("bob")
    driver.create_org("acme")
    driver.create_repo(REPO, FILES, author="alice")
    driver.set_permission(REPO, "alice", "write")
    driver.set_permission(REPO, "bob", "read")
    installation_id = driver.install_app("acme", sender="alice")
    return World(sandbox, installation_id)


def app_client(sandbox: Sandbox, **options: Any) -> GitHub[Any]:
    auth = AppAuthStrategy(sandbox.app_id, sandbox.private_key_path.read_text())
    return GitHub(auth, base_url=sandbox.api_url, timeout=10, **options)


def bot_client(world: World, **options: Any) -> GitHub[Any]:
    """The App acting on its installation, as the bot does."""
    sandbox = world.sandbox
    key = sandbox.private_key_path.read_text()
    auth = AppInstallationAuthStrategy(sandbox.app_id, key, world.installation_id)
    return GitHub(auth, base_url=sandbox.api_url, **{"timeout": 10, **options})


def human_client(world: World, login: str, **options: Any) -> GitHub[Any]:
    token = world.driver.token(login)
    return GitHub(TokenAuthStrategy(token), base_url=world.sandbox.api_url, timeout=10, **options)


@pytest.fixture
def bot(world: World) -> GitHub[Any]:
    return bot_client(world, auto_retry=False)


@pytest.fixture
def alice(world: World) -> GitHub[Any]:
    return human_client(world, "alice", auto_retry=False)


def git(
    cwd: Path, *args: str, check: bool = True, trace: bool = False, date: str | None = None
) -> subprocess.CompletedProcess[str]:
    """git as a client of the sandbox: no prompts, no credential helper, a fixed identity;
    `trace` logs curl's traffic to stderr, `date` sets both commit dates."""
    env = {**os.environ, "GIT_TERMINAL_PROMPT": "0"}
    for role in ("AUTHOR", "COMMITTER"):
        env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = "bot", "bot@example.com"
        if date:
            env[f"GIT_{role}_DATE"] = date
    if trace:
        env["GIT_TRACE_CURL"] = "1"
        env["GIT_TRACE_CURL_NO_DATA"] = "1"
    return subprocess.run(
        ["git", "-c", "credential.helper=", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        check=check,
    )


def installation_token(world: World) -> str:
    """A token of the App's installation on acme, as the bot gets one."""
    github = app_client(world.sandbox)
    return github.rest.apps.create_installation_access_token(
        world.installation_id
    ).parsed_data.token


def installation_remote(world: World, full_name: str) -> str:
    """`full_name`'s git URL with an installation token, as the bot clones it."""
    host = world.sandbox.url.removeprefix("http://")
    return f"http://x-access-token:{installation_token(world)}@{host}/{full_name}.git"
