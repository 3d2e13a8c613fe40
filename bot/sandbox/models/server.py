"""Start the model sandbox: the HTTP app in a background thread, on a port of its own."""

from __future__ import annotations

import json
import logging
import socket
import threading
import time
from pathlib import Path
from types import TracebackType

import uvicorn

from bot.sandbox.models.app import ModelHub, RecordedRequest, build_app
from bot.sandbox.models.faults import ModelFault
from bot.sandbox.models.scenario import Scenario
from bot.sandbox.stopping import stop_signals_held

START_TIMEOUT_S = 10.0
# The `truncated` fault drops a response halfway on purpose; uvicorn reports each one.
_CUT_SHORT_MESSAGE = "ASGI callable returned without completing response."


class _QuietCutShort(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _CUT_SHORT_MESSAGE


class ModelSandbox:
    """A running scripted model server. `with ModelSandbox.start(scenario) as models: ...`

    Point an OpenAI client at `openai_base_url`, an Anthropic client (or Claude Code) at
    `anthropic_base_url`, Codex at `openai_base_url` (Responses) and the Gemini CLI at
    `gemini_base_url`.
    """

    def __init__(self, hub: ModelHub, server: uvicorn.Server, thread: threading.Thread, url: str):
        self.hub = hub
        self._server = server
        self._thread = thread
        self.url = url
        self.openai_base_url = url + "/v1"
        self.anthropic_base_url = url
        self.gemini_base_url = url

    @classmethod
    def start(
        cls,
        scenario: Scenario | None = None,
        *,
        api_key: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
    ) -> ModelSandbox:
        """Serve `scenario`; with `api_key` set, any other key is answered 401."""
        hub = ModelHub(scenario, api_key)
        error_log = logging.getLogger("uvicorn.error")
        if not any(isinstance(f, _QuietCutShort) for f in error_log.filters):
            error_log.addFilter(_QuietCutShort())
        sock = socket.create_server((host, port))
        bound = sock.getsockname()[1]
        config = uvicorn.Config(
            build_app(hub), log_level="warning", lifespan="off", timeout_graceful_shutdown=2
        )
        server = uvicorn.Server(config)
        thread = threading.Thread(
            target=server.run, kwargs={"sockets": [sock]}, name="sandbox-models", daemon=True
        )
        thread.start()
        deadline = time.monotonic() + START_TIMEOUT_S
        while not server.started:
            if not thread.is_alive() or time.monotonic() > deadline:
                raise RuntimeError("the model sandbox did not start")
            time.sleep(0.01)
        sock.close()
        return cls(hub, server, thread, f"http://{host}:{bound}")

    @property
    def scenario(self) -> Scenario:
        return self.hub.scenario

    @scenario.setter
    def scenario(self, scenario: Scenario) -> None:
        self.hub.scenario = scenario

    @property
    def requests(self) -> list[RecordedRequest]:
        return self.hub.requests

    def set_faults(self, *faults: ModelFault, seed: int = 0) -> None:
        """Arm `faults` (replacing the ones armed before); no arguments switch them off."""
        self.hub.faults.configure(list(faults), seed=seed)

    @property
    def injected(self) -> dict[str, int]:
        return dict(self.hub.faults.injected)

    def stop(self) -> None:
        self.hub.closing.set()
        self._server.should_exit = True
        self._thread.join(timeout=START_TIMEOUT_S)

    def __enter__(self) -> ModelSandbox:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.stop()


def run_model_sandbox(
    *, host: str, port: int, scenario_file: Path | None = None, api_key: str | None = None
) -> None:
    """`review-loop model-sandbox`: serve until Ctrl-C (or SIGTERM), after printing the base
    URLs to use."""
    scenario = Scenario.from_json(json.loads(scenario_file.read_text())) if scenario_file else None
    with (
        stop_signals_held() as wait_for_stop,
        ModelSandbox.start(scenario, api_key=api_key, host=host, port=port) as sandbox,
    ):
        print(
            "Scripted model sandbox running (every reply is scripted, not a real model).\n"
            f"  OpenAI chat completions / Responses base_url: {sandbox.openai_base_url}\n"
            f"  Anthropic Messages base_url (ANTHROPIC_BASE_URL): {sandbox.anthropic_base_url}\n"
            f"  Gemini base URL (GOOGLE_GEMINI_BASE_URL): {sandbox.gemini_base_url}\n"
            f"  API key: {'the one given with --api-key' if api_key else 'any'}\n"
            f"  Recorded requests: GET {sandbox.url}/_sandbox/requests; "
            f"faults: POST {sandbox.url}/_sandbox/faults\n"
            "Press Ctrl-C to stop.",
            flush=True,
        )
        wait_for_stop()
