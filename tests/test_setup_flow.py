"""`review-loop setup` registers the App through the manifest flow against the sandbox GitHub,
with the test playing the browser."""

import html
import os
import re
import stat
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from dotenv import dotenv_values
from githubkit import AppAuthStrategy, GitHub

from bot.sandbox import Sandbox
from bot.setup_flow import Credentials, build_manifest, load_manifest, render_env
from tests.support import free_port

CLI = [sys.executable, "-m", "bot.cli"]
ROOT = Path(__file__).parents[1]
WEBHOOK_URL = "http://127.0.0.1:9/webhook"


@pytest.fixture
def sandbox(workdir: Path) -> Iterator[Sandbox]:
    with Sandbox.start(workdir / "github") as sb:
        yield sb


def setup_command(sandbox: Sandbox, workdir: Path, port: int, *extra: str) -> list[str]:
    return [
        *CLI,
        "setup",
        "--webhook-url",
        WEBHOOK_URL,
        "--github-web",
        sandbox.url,
        "--github-api",
        sandbox.api_url,
        "--port",
        str(port),
        "--env-file",
        str(workdir / "review-loop.env"),
        "--key-dir",
        str(workdir / "keys"),
        "--timeout",
        "30",
        "--no-browser",
        *extra,
    ]


def clean_env() -> dict[str, str]:
    return {k: v for k, v in os.environ.items() if not k.startswith("REVIEW_LOOP_")}


def open_local_page(port: int, proc: "subprocess.Popen[str]") -> str:
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"setup exited early: {proc.communicate()}")
        try:
            return httpx.get(f"http://127.0.0.1:{port}/", timeout=1).text
        except httpx.HTTPError:
            time.sleep(0.05)
    raise AssertionError("setup's local page did not come up")


def field(page: str, pattern: str) -> str:
    found = re.search(pattern, page)
    assert found is not None, f"{pattern} not in {page}"
    return html.unescape(found.group(1))


def run_setup_once(sandbox: Sandbox, workdir: Path) -> "subprocess.CompletedProcess[str]":
    return subprocess.run(
        setup_command(sandbox, workdir, free_port()),
        cwd=workdir,
        env=clean_env(),
        capture_output=True,
        text=True,
        check=False,
        timeout=30,
    )


def mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_setup_registers_the_app_and_writes_working_credentials(
    sandbox: Sandbox, workdir: Path
) -> None:
    """The browser round trip ends with a 0600 key and env file whose values authenticate as
    the App; a forged callback is refused; nothing secret is printed; a second run without
    --force refuses and leaves both files alone."""
    port = free_port()
    proc = subprocess.Popen(
        setup_command(sandbox, workdir, port),
        cwd=workdir,
        env=clean_env(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        page = open_local_page(port, proc)
        action = field(page, r'<form[^>]* action="([^"]+)"')
        manifest = field(page, r'name="manifest" value="([^"]*)"')
        assert action.startswith(f"{sandbox.url}/settings/apps/new?state=")

        forged = httpx.get(f"http://127.0.0.1:{port}/callback", params={"code": "x", "state": "y"})
        assert forged.status_code == 400

        created = httpx.post(action, data={"manifest": manifest}, follow_redirects=False)
        assert created.status_code == 302
        location = created.headers["location"]
        assert location.startswith(f"http://127.0.0.1:{port}/callback?")
        assert httpx.get(location).status_code == 200
        stdout, stderr = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.communicate()
    assert proc.returncode == 0, stdout + stderr

    env_path = workdir / "review-loop.env"
    key_path = workdir / "keys" / f"{sandbox.app_slug}.private-key.pem"
    assert mode(env_path) == 0o600
    assert mode(key_path) == 0o600
    values = dotenv_values(env_path)
    assert values["REVIEW_LOOP_PRIVATE_KEY_PATH"] == str(key_path)
    assert values["REVIEW_LOOP_APP_SLUG"] == sandbox.app_slug
    assert values["REVIEW_LOOP_GITHUB_URL"] == sandbox.api_url.rstrip("/")
    app = sandbox.hub.store.app
    assert app is not None
    assert values["REVIEW_LOOP_WEBHOOK_SECRET"] == app.webhook_secret
    assert app.webhook_url == WEBHOOK_URL

    auth = AppAuthStrategy(int(values["REVIEW_LOOP_APP_ID"] or 0), key_path.read_text())
    with GitHub(auth, base_url=values["REVIEW_LOOP_GITHUB_URL"], timeout=10) as github:
        assert github.rest.apps.get_authenticated().parsed_data.slug == sandbox.app_slug

    printed = stdout + stderr
    assert f"{sandbox.url}/apps/{sandbox.app_slug}/installations/new" in stdout
    assert str(app.webhook_secret) not in printed
    assert "PRIVATE KEY" not in printed

    written = {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in (env_path, key_path)}
    again = run_setup_once(sandbox, workdir)
    assert again.returncode == 2, again.stdout + again.stderr
    assert "--force" in again.stderr
    assert {p: (p.read_bytes(), p.stat().st_mtime_ns) for p in written} == written


def test_setup_refuses_to_overwrite_an_existing_key(sandbox: Sandbox, workdir: Path) -> None:
    """A key file already at the App's key path stops setup before anything else happens."""
    key_path = workdir / "keys" / f"{sandbox.app_slug}.private-key.pem"
    key_path.parent.mkdir()
    key_path.write_text("old key\n")
    result = run_setup_once(sandbox, workdir)
    assert result.returncode == 2, result.stdout + result.stderr
    assert "--force" in result.stderr
    assert key_path.read_text() == "old key\n"
    assert not (workdir / "review-loop.env").exists()


def test_setup_gives_up_after_its_timeout(sandbox: Sandbox, workdir: Path) -> None:
    """Nobody opening the page ends setup with status 1 and advice."""
    command = setup_command(sandbox, workdir, free_port())
    command[command.index("--timeout") + 1] = "0.5"
    result = subprocess.run(
        command, cwd=workdir, env=clean_env(), capture_output=True, text=True, check=False
    )
    assert result.returncode == 1
    assert "No answer from GitHub after 0.5 s" in result.stderr
    assert "`review-loop setup` again" in result.stderr
    assert not (workdir / "review-loop.env").exists()


def test_top_level_app_yml_is_the_packaged_manifest() -> None:
    """app.yml (what people read) and bot/app_manifest.yml (what setup reads) are one file."""
    assert (ROOT / "app.yml").read_bytes() == (ROOT / "bot" / "app_manifest.yml").read_bytes()


def test_build_manifest_sets_this_runs_urls_and_keeps_the_rest() -> None:
    """Only the webhook URL, the callback and (if asked) the name change."""
    base = load_manifest()
    manifest = build_manifest(
        base, webhook_url=WEBHOOK_URL, redirect_url="http://127.0.0.1:1/callback", name="rl"
    )
    assert manifest["hook_attributes"] == {**base["hook_attributes"], "url": WEBHOOK_URL}
    assert manifest["redirect_url"] == "http://127.0.0.1:1/callback"
    assert manifest["name"] == "rl"
    assert manifest["default_permissions"] == base["default_permissions"]
    assert base["hook_attributes"]["url"] != WEBHOOK_URL  # the base is not modified


APP = Credentials(7, "rl", "PEM", "s3cret", "https://github.com/apps/rl")


@pytest.mark.parametrize(
    ("api", "key", "expected"),
    [
        pytest.param(
            "https://api.github.com",
            "/k/rl.pem",
            {
                "REVIEW_LOOP_APP_ID": "7",
                "REVIEW_LOOP_APP_SLUG": "rl",
                "REVIEW_LOOP_PRIVATE_KEY_PATH": "/k/rl.pem",
                "REVIEW_LOOP_WEBHOOK_SECRET": "s3cret",
            },
            id="github.com",
        ),
        pytest.param(
            "https://ghe.example/api/v3/",
            "/my keys/rl.pem",
            {
                "REVIEW_LOOP_APP_ID": "7",
                "REVIEW_LOOP_APP_SLUG": "rl",
                "REVIEW_LOOP_PRIVATE_KEY_PATH": "/my keys/rl.pem",
                "REVIEW_LOOP_WEBHOOK_SECRET": "s3cret",
                "REVIEW_LOOP_GITHUB_URL": "https://ghe.example/api/v3",
            },
            id="enterprise-and-a-space",
        ),
    ],
)
def test_render_env(tmp_path: Path, api: str, key: str, expected: dict[str, Any]) -> None:
    """The env file reads back, through python-dotenv, as exactly these variables."""
    path = tmp_path / ".env"
    path.write_text(render_env(APP, Path(key), api))
    assert dotenv_values(path) == expected


def test_the_manifest_subscribes_to_every_event_a_handler_takes() -> None:
    """An App receives only the events it subscribes to (and `installation`, always): a
    handler for an event missing from app.yml would never run."""
    from handlers import enabled_router

    subscribed = set(load_manifest()["default_events"])
    always = {"installation", "installation_repositories"}
    assert enabled_router().events() - always <= subscribed
