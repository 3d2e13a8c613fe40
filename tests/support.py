"""Helpers shared by the tests: fixture payloads, signed posts, a live uvicorn server, a CLI
process stopped with Ctrl-C."""

import asyncio
import contextlib
import json
import signal
import socket
import subprocess
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import uvicorn

from bot.web import signing

FIXTURES = Path(__file__).parent / "fixtures"
SECRET = "test-webhook-secret"


def load_event(name: str) -> dict[str, Any]:
    """A real GitHub payload by name, e.g. `load_event("pull_request.opened")`."""
    data: dict[str, Any] = json.loads((FIXTURES / "webhooks" / f"{name}.json").read_text())
    return data


def fixture_names() -> list[str]:
    return sorted(p.stem for p in (FIXTURES / "webhooks").glob("*.json"))


def signed_headers(
    event: str, body: bytes, *, delivery: str | None = None, secret: str = SECRET
) -> dict[str, str]:
    return {
        "Content-Type": "application/json",
        "X-GitHub-Event": event,
        "X-GitHub-Delivery": delivery or str(uuid.uuid4()),
        "X-Hub-Signature-256": signing.sign(secret, body),
    }


def interrupt(process: subprocess.Popen[str], sig: int = signal.SIGINT) -> None:
    """Ctrl-C `process` (or send it `sig`) and check it stops cleanly; never leave it running
    after the test. A stop that hangs fails with what the process was doing: its signal
    masks, and, where it is Python with faulthandler on (`PYTHONFAULTHANDLER`, set for the
    test run in conftest), every thread's stack on its stderr after a SIGABRT."""
    process.send_signal(sig)
    try:
        process.wait(timeout=60)  # a hang guard: a stop takes well under 1 s
    except subprocess.TimeoutExpired:
        masks = _signal_masks(process.pid)
        process.send_signal(signal.SIGABRT)
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=10)
        raise AssertionError(
            f"pid {process.pid} still running 60 s after {sig!r}: {masks}"
        ) from None
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        if process.stdout:
            process.stdout.close()
    assert process.returncode == 0


def _signal_masks(pid: int) -> str:
    """The signal lines of /proc/<pid>/status of each thread: pending, blocked, ignored."""
    lines = []
    with contextlib.suppress(OSError):  # it may end while it is read
        for task in sorted(Path(f"/proc/{pid}/task").iterdir()):
            status = (task / "status").read_text().splitlines()
            lines.append(
                task.name + " " + " ".join(s for s in status if s.startswith(("Sig", "ShdPnd")))
            )
    return "; ".join(lines) or "(gone)"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class _QuietServer(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self):  # type: ignore[no-untyped-def]
        yield


@contextlib.asynccontextmanager
async def serve_asgi(app: Any) -> AsyncIterator[str]:
    """Serve `app` over real HTTP on 127.0.0.1; yields its base URL."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = _QuietServer(config)
    task = asyncio.create_task(server.serve(sockets=[sock]))
    while not server.started:
        if task.done():
            task.result()
        await asyncio.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def post_event(
    client: httpx.AsyncClient, url: str, event: str, payload: dict[str, Any], **kw: Any
) -> httpx.Response:
    body = json.dumps(payload).encode()
    return await client.post(url, content=body, headers=signed_headers(event, body, **kw))
