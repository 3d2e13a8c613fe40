"""Signed webhook deliveries, sent in order by one background worker, with a delivery log."""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import json
import logging
import threading
import time
import uuid
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

import httpx

from bot.sandbox.faults import Faults
from bot.sandbox.state import Store

log = logging.getLogger(__name__)


def _signature(secret: str, body: bytes) -> str:
    """`X-Hub-Signature-256` as GitHub computes it (the sandbox signs on its own; the bot's
    verification is what is under test)."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


HOOK_ID = 1
DELIVERY_TIMEOUT_S = 10.0
USER_AGENT = "GitHub-Hookshot/sandbox"


@dataclass
class Delivery:
    id: int
    guid: str
    event: str
    action: str | None
    installation_id: int | None
    repository_id: int | None
    body: bytes
    redelivery: bool = False
    delivered_at: datetime | None = None
    status: str = "pending"
    status_code: int = 0
    duration: float = 0.0
    request_headers: dict[str, str] = field(default_factory=dict)
    response_headers: dict[str, str] = field(default_factory=dict)
    response_body: str = ""

    @property
    def ok(self) -> bool:
        return 200 <= self.status_code < 300


class Webhooks:
    """Queue, sign, send and log webhook deliveries to the App's webhook URL."""

    def __init__(self, store: Store, faults: Faults) -> None:
        self.store = store
        self.faults = faults
        self.log: list[Delivery] = []
        self._queue: asyncio.Queue[Delivery] | None = None
        self._idle = threading.Condition()
        self._pending = 0

    # producing

    def emit(self, event: str, payload: dict[str, Any]) -> Delivery:
        installation = payload.get("installation") or {}
        repository = payload.get("repository") or {}
        delivery = Delivery(
            id=self.store.new_id(),
            guid=str(uuid.uuid4()),
            event=event,
            action=payload.get("action"),
            installation_id=installation.get("id"),
            repository_id=repository.get("id"),
            body=json.dumps(payload, separators=(",", ":")).encode(),
        )
        self._enqueue(delivery)
        return delivery

    def redeliver(self, delivery_id: int) -> Delivery | None:
        original = self.find(delivery_id)
        if original is None:
            return None
        again = replace(
            original,
            id=self.store.new_id(),
            redelivery=True,
            delivered_at=None,
            status="pending",
            status_code=0,
            request_headers={},
            response_headers={},
            response_body="",
        )
        self._enqueue(again)
        return again

    def find(self, delivery_id: int) -> Delivery | None:
        with self.store.lock:
            return next((d for d in self.log if d.id == delivery_id), None)

    def _enqueue(self, delivery: Delivery) -> None:
        assert self._queue is not None, "the delivery worker is not running"
        with self.store.lock:
            self.log.append(delivery)
        with self._idle:
            self._pending += 1
        self._queue.put_nowait(delivery)

    # waiting (any thread)

    def wait_idle(self, timeout: float) -> bool:
        """Block until every queued delivery has been attempted; False on timeout."""
        with self._idle:
            return self._idle.wait_for(lambda: self._pending == 0, timeout=timeout)

    # the worker (server event loop)

    def open(self) -> None:
        """Create the queue on the server's event loop, before any request can emit."""
        self._queue = asyncio.Queue()

    async def run(self) -> None:
        assert self._queue is not None, "call open() first"
        async with httpx.AsyncClient(timeout=DELIVERY_TIMEOUT_S) as client:
            while True:
                delivery = await self._queue.get()
                try:
                    await self._deliver(client, delivery)
                except Exception:  # a delivery must never stop the worker
                    log.exception("webhook delivery %s failed unexpectedly", delivery.guid)
                finally:
                    with self._idle:
                        self._pending -= 1
                        self._idle.notify_all()

    async def _deliver(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        fault = self.faults.webhook_fault()
        if fault == "drop":
            self._record_failure(delivery, "dropped by the sandbox's fault injection")
            return
        await self._send(client, delivery)
        if fault == "duplicate":
            twin = replace(delivery, id=self.store.new_id())
            with self.store.lock:
                self.log.append(twin)
            await self._send(client, twin)

    def _headers(self, delivery: Delivery) -> dict[str, str]:
        app = self.store.app
        assert app is not None
        headers = {
            "Accept": "*/*",
            "Content-Type": "application/json",
            "User-Agent": USER_AGENT,
            "X-GitHub-Delivery": delivery.guid,
            "X-GitHub-Event": delivery.event,
            "X-GitHub-Hook-ID": str(HOOK_ID),
            "X-GitHub-Hook-Installation-Target-ID": str(app.id),
            "X-GitHub-Hook-Installation-Target-Type": "integration",
        }
        if app.webhook_secret:
            headers["X-Hub-Signature-256"] = _signature(app.webhook_secret, delivery.body)
        return headers

    async def _send(self, client: httpx.AsyncClient, delivery: Delivery) -> None:
        app = self.store.app
        assert app is not None
        if not app.webhook_url:
            self._record_failure(delivery, "no webhook URL is configured")
            return
        headers = self._headers(delivery)
        started = time.monotonic()
        try:
            response = await client.post(app.webhook_url, content=delivery.body, headers=headers)
        except httpx.HTTPError as exc:
            self._record_failure(delivery, f"failed to connect to host: {exc}", headers, started)
            log.warning("webhook %s %s: %s", delivery.event, delivery.guid, exc)
            return
        with self.store.lock:
            delivery.request_headers = headers
            delivery.delivered_at = self.store.now()
            delivery.duration = time.monotonic() - started
            delivery.status_code = response.status_code
            delivery.status = (
                "OK" if delivery.ok else f"Invalid HTTP Response: {response.status_code}"
            )
            delivery.response_headers = dict(response.headers)
            delivery.response_body = response.text
        if not delivery.ok:
            log.warning(
                "webhook %s %s: HTTP %s", delivery.event, delivery.guid, response.status_code
            )

    def _record_failure(
        self,
        delivery: Delivery,
        status: str,
        headers: dict[str, str] | None = None,
        started: float | None = None,
    ) -> None:
        with self.store.lock:
            delivery.request_headers = headers or self._headers(delivery)
            delivery.delivered_at = self.store.now()
            delivery.duration = 0.0 if started is None else time.monotonic() - started
            delivery.status_code = 0
            delivery.status = status
