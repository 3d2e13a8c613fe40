"""Start the sandbox: an App with a fresh key pair, the HTTP server in a background thread."""

from __future__ import annotations

import asyncio
import contextlib
import secrets
import socket
import threading
import time
from collections.abc import AsyncIterator
from pathlib import Path
from types import TracebackType

import uvicorn
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.routing import Mount

from bot.sandbox import (
    git_http,
    manifests,
    rest_admin,
    rest_app,
    rest_checks,
    rest_forks,
    rest_issues,
    rest_pulls,
    rest_repos,
)
from bot.sandbox.api import RateLimits, Routes, finish, quiet_resets
from bot.sandbox.driver import Driver
from bot.sandbox.faults import Faults
from bot.sandbox.hub import Hub
from bot.sandbox.render import Renderer
from bot.sandbox.state import PRIVATE_KEY_FILE, App, Store
from bot.sandbox.stopping import stop_signals_held

START_TIMEOUT_S = 10.0


def build_app(hub: Hub) -> Starlette:
    quiet_resets()
    routes = Routes(hub, RateLimits())
    for module in (
        rest_app,
        manifests,
        rest_repos,
        rest_forks,
        rest_issues,
        rest_pulls,
        rest_checks,
    ):
        module.add_routes(routes)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        hub.webhooks.open()
        worker = asyncio.create_task(hub.webhooks.run())
        try:
            yield
        finally:
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

    return Starlette(
        routes=[
            Mount("/api/v3", routes=finish(routes)),
            *rest_admin.routes(hub),
            *manifests.routes(hub),
            *git_http.routes(hub),
        ],
        lifespan=lifespan,
    )


def _new_app(store: Store, data_dir: Path, slug: str, secret: str | None, url: str | None) -> Path:
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.TraditionalOpenSSL,
        serialization.NoEncryption(),
    )
    key_path = data_dir / PRIVATE_KEY_FILE
    key_path.touch(mode=0o600)
    key_path.write_bytes(pem)
    public = key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    operator = store.add_account("sandbox-admin", "User")
    operator.site_admin = True
    bot = store.add_account(f"{slug}[bot]", "Bot")
    store.app = App(
        # A fresh id per sandbox: clients (githubkit) cache JWTs and tokens by App id.
        id=100_000 + secrets.randbelow(900_000),
        slug=slug,
        name=slug,
        owner_id=operator.id,
        bot_id=bot.id,
        public_key_pem=public,
        webhook_secret=secret,
        webhook_url=url,
        created_at=store.now(),
    )
    return key_path


class Sandbox:
    """A running local GitHub. `with Sandbox.start(data_dir) as sb: ...`"""

    def __init__(self, hub: Hub, server: uvicorn.Server, thread: threading.Thread) -> None:
        self.hub = hub
        self._server = server
        self._thread = thread
        app = hub.store.app
        assert app is not None
        self.app_id = app.id
        self.app_slug = app.slug
        self.url = hub.render.web
        self.api_url = hub.render.api + "/"
        self.private_key_path = hub.store.data_dir / PRIVATE_KEY_FILE
        operator = hub.store.accounts[app.owner_id]
        assert operator.token is not None
        self.driver = Driver(self.url, hub.store.data_dir / "driver", operator.token)

    @classmethod
    def start(
        cls,
        data_dir: Path,
        *,
        webhook_url: str | None = None,
        webhook_secret: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        app_slug: str = "review-loop",
    ) -> Sandbox:
        data_dir = data_dir.resolve()
        data_dir.mkdir(parents=True, exist_ok=True)
        sock = socket.create_server((host, port))
        bound = sock.getsockname()[1]
        store = Store(data_dir)
        web = f"http://{host}:{bound}"
        hub = Hub(store, Renderer(store, web, web + "/api/v3"), Faults())
        _new_app(store, data_dir, app_slug, webhook_secret, webhook_url)
        config = uvicorn.Config(build_app(hub), log_level="warning", lifespan="on")
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox-github", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the sandbox GitHub server did not start")
            time.sleep(0.01)
        sock.close()
        return cls(hub, server, thread)

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        """Point deliveries at `url` (the bot usually starts after the sandbox)."""
        self.driver.set_webhook(url, secret)

    def wait_for_deliveries(self, timeout: float = 10.0) -> None:
        """Return once every queued webhook delivery has been attempted."""
        if not self.hub.webhooks.wait_idle(timeout):
            raise TimeoutError(f"webhook deliveries still queued after {timeout} s")

    def stop(self) -> None:
        self.driver.close()
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)

    def __enter__(self) -> Sandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_sandbox(
    *,
    host: str,
    port: int,
    data_dir: Path,
    webhook_url: str | None,
    webhook_secret: str | None,
) -> None:
    """`review-loop sandbox`: serve a local GitHub until Ctrl-C (or SIGTERM), after saying how
    to use it."""
    with (
        stop_signals_held() as wait_for_stop,
        Sandbox.start(
            data_dir, webhook_url=webhook_url, webhook_secret=webhook_secret, host=host, port=port
        ) as sandbox,
    ):
        operator = sandbox.driver.operator_token
        print(
            "Local GitHub sandbox running. Configure the bot with:\n"
            f"  REVIEW_LOOP_GITHUB_URL={sandbox.hub.render.api}\n"
            f"  REVIEW_LOOP_APP_ID={sandbox.app_id}\n"
            f"  REVIEW_LOOP_PRIVATE_KEY_PATH={sandbox.private_key_path}\n"
            f"  REVIEW_LOOP_WEBHOOK_SECRET={webhook_secret or '(none set: deliveries unsigned)'}\n"
            f"Webhooks go to: {webhook_url or '(not set: POST /_sandbox/app to set one)'}\n"
            f"Operator token (admin everywhere): {operator}\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_stop()
