"""`review-loop setup`: register the App through GitHub's manifest flow, then write its key and
an env file. https://docs.github.com/en/apps/sharing-github-apps/registering-a-github-app-from-a-manifest

It runs before any credentials exist, so it never builds `Settings`."""

from __future__ import annotations

import hmac
import html
import http.server
import json
import os
import re
import secrets
import time
import webbrowser
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlencode, urlsplit

import httpx
import yaml
from githubkit import GitHub, UnauthAuthStrategy
from githubkit.exception import RequestFailed

DEFAULT_WEB = "https://github.com"
DEFAULT_API = "https://api.github.com"
MANIFEST_RESOURCE = "app_manifest.yml"  # a copy of the top-level app.yml, shipped in the package

OPEN_BROWSER = "Open {url} in a browser to register the App on {web}."
WAITING = "Waiting up to {timeout:g} s for GitHub to send the browser back (Ctrl-C to stop)."
EXISTS = "{path} already exists; pass --force to overwrite it, or choose another {option}."
KEY_EXISTS_AFTER = (
    "The App was created ({html_url}) but {path} already exists, so its key was not saved. "
    "Generate a new private key on the App's page, or delete the App and run setup again."
)
TIMED_OUT = (
    "No answer from GitHub after {timeout:g} s. Run `review-loop setup` again and open the "
    "printed address in a browser on this machine (raise --timeout if you need longer)."
)
BAD_STATE = "This answer does not belong to this setup run. Start again from {url}"
EXCHANGE_FAILED = (
    "GitHub did not turn the one-time code into credentials ({reason}). Codes work once and for "
    "one hour: run `review-loop setup` again."
)
DONE_PAGE = "review-loop is registered as {slug}. Install it: {install}. You can close this tab."

_SAFE_ENV_VALUE = re.compile(r"^[A-Za-z0-9_./:@+,=-]*$")


class SetupError(Exception):
    """Setup cannot go on; the message says what to do. `exit_code` is the CLI's status."""

    def __init__(self, message: str, exit_code: int = 1) -> None:
        super().__init__(message)
        self.exit_code = exit_code


@dataclass(frozen=True)
class SetupOptions:
    webhook_url: str
    org: str | None = None
    name: str | None = None
    github_web: str = DEFAULT_WEB
    github_api: str = DEFAULT_API
    port: int = 0
    env_file: Path = Path(".env")
    key_dir: Path | None = None  # default: the env file's directory
    force: bool = False
    timeout: float = 600.0
    open_browser: bool = True


@dataclass(frozen=True)
class Credentials:
    """What the manifest conversion returns that review-loop keeps."""

    id: int
    slug: str
    pem: str
    webhook_secret: str | None
    html_url: str


# pure parts


def load_manifest() -> dict[str, Any]:
    text = resources.files("bot").joinpath(MANIFEST_RESOURCE).read_text()
    manifest: dict[str, Any] = yaml.safe_load(text)
    return manifest


def build_manifest(
    base: dict[str, Any], *, webhook_url: str, redirect_url: str, name: str | None = None
) -> dict[str, Any]:
    """`base` with this run's webhook URL, local callback and (optionally) name."""
    manifest = {**base, "redirect_url": redirect_url}
    manifest["hook_attributes"] = {**base.get("hook_attributes", {}), "url": webhook_url}
    if name:
        manifest["name"] = name
    return manifest


def new_app_url(github_web: str, org: str | None, state: str) -> str:
    web = github_web.rstrip("/")
    where = f"/organizations/{org}" if org else ""
    return f"{web}{where}/settings/apps/new?{urlencode({'state': state})}"


def form_page(action: str, manifest: dict[str, Any]) -> str:
    """The local page: a form that posts the manifest to GitHub, submitted by itself."""
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8"><title>Register review-loop</title>'
        "</head><body>\n"
        f'<form id="register" method="post" action="{html.escape(action)}">\n'
        f'<input type="hidden" name="manifest" value="{html.escape(json.dumps(manifest))}">\n'
        "<p>Sending the App manifest to GitHub… "
        '<button type="submit">Continue to GitHub</button></p>\n'
        "</form>\n"
        '<script>document.getElementById("register").submit()</script>\n'
        "</body></html>\n"
    )


def key_file(key_dir: Path, slug: str) -> Path:
    return key_dir / f"{slug}.private-key.pem"


def install_url(github_web: str, slug: str) -> str:
    return f"{github_web.rstrip('/')}/apps/{slug}/installations/new"


def slug_for(name: str) -> str:
    """GitHub's slug for an App name, as far as predicting the key file's name needs."""
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")


def _env_value(value: str) -> str:
    if _SAFE_ENV_VALUE.match(value):
        return value
    if "'" in value or "\n" in value:
        raise SetupError(f"cannot write {value!r} to an env file; choose another path", 2)
    return f"'{value}'"  # single quotes: python-dotenv takes the value literally


def render_env(app: Credentials, key_path: Path, github_api: str) -> str:
    lines = [
        "# Written by `review-loop setup`. Keep this file private.",
        f"REVIEW_LOOP_APP_ID={app.id}",
        f"REVIEW_LOOP_APP_SLUG={_env_value(app.slug)}",
        f"REVIEW_LOOP_PRIVATE_KEY_PATH={_env_value(str(key_path))}",
    ]
    if app.webhook_secret:
        lines.append(f"REVIEW_LOOP_WEBHOOK_SECRET={_env_value(app.webhook_secret)}")
    api = github_api.rstrip("/")
    if api != DEFAULT_API:
        lines.append(f"REVIEW_LOOP_GITHUB_URL={_env_value(api)}")
    return "\n".join(lines) + "\n"


# effects


def exchange_code(github_api: str, code: str) -> Credentials:
    """POST /app-manifests/{code}/conversions (no authentication)."""
    try:
        with GitHub(UnauthAuthStrategy(), base_url=github_api, timeout=30) as github:
            app = github.rest.apps.create_from_manifest(code).parsed_data
    except RequestFailed as failed:
        reason = f"HTTP {failed.response.status_code}"
        raise SetupError(EXCHANGE_FAILED.format(reason=reason)) from None
    except httpx.HTTPError as exc:
        reason = f"{github_api} unreachable: {exc}"
        raise SetupError(EXCHANGE_FAILED.format(reason=reason)) from None
    slug = app.slug if isinstance(app.slug, str) else slug_for(app.name)
    return Credentials(app.id, slug, app.pem, app.webhook_secret, app.html_url)


def write_private(path: Path, text: str, *, force: bool) -> None:
    """Write `text` readable by the owner only; never replace a file unless `force`."""
    path.parent.mkdir(parents=True, exist_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | (os.O_TRUNC if force else os.O_EXCL)
    fd = os.open(path, flags, 0o600)
    with os.fdopen(fd, "w") as out:
        os.fchmod(out.fileno(), 0o600)  # an existing file keeps its mode otherwise
        out.write(text)


def save(app: Credentials, options: SetupOptions) -> tuple[Path, Path]:
    key_dir = options.key_dir or options.env_file.parent
    key_path = key_file(key_dir, app.slug).resolve()
    env_text = render_env(app, key_path, options.github_api)
    try:
        write_private(key_path, app.pem, force=options.force)
    except FileExistsError:
        raise SetupError(KEY_EXISTS_AFTER.format(html_url=app.html_url, path=key_path), 2) from None
    write_private(options.env_file, env_text, force=options.force)
    return key_path, options.env_file


def refuse_overwrite(options: SetupOptions, slug: str) -> None:
    if options.force:
        return
    key_dir = options.key_dir or options.env_file.parent
    for path, option in ((options.env_file, "--env-file"), (key_file(key_dir, slug), "--key-dir")):
        if path.exists():
            raise SetupError(EXISTS.format(path=path, option=option), 2)


class _Flow(http.server.HTTPServer):
    """The local server: `/` sends the manifest, `/callback` takes GitHub's answer."""

    def __init__(self, options: SetupOptions) -> None:
        super().__init__(("127.0.0.1", options.port), _Handler)
        self.options = options
        self.state = secrets.token_urlsafe(24)
        self.url = f"http://127.0.0.1:{self.server_address[1]}/"
        self.page = form_page(
            new_app_url(options.github_web, options.org, self.state),
            build_manifest(
                load_manifest(),
                webhook_url=options.webhook_url,
                redirect_url=f"{self.url}callback",
                name=options.name,
            ),
        )
        self.result: tuple[Credentials, Path, Path] | None = None
        self.error: SetupError | None = None

    def callback(self, query: dict[str, list[str]]) -> tuple[int, str]:
        state = (query.get("state") or [""])[0]
        code = (query.get("code") or [""])[0]
        if not code or not hmac.compare_digest(state.encode(), self.state.encode()):
            return 400, BAD_STATE.format(url=self.url)
        try:
            app = exchange_code(self.options.github_api, code)
            key_path, env_path = save(app, self.options)
        except SetupError as error:
            self.error = error
            return 502, str(error)
        self.result = (app, key_path, env_path)
        return 200, DONE_PAGE.format(
            slug=app.slug, install=install_url(self.options.github_web, app.slug)
        )


class _Handler(http.server.BaseHTTPRequestHandler):
    server: _Flow

    def do_GET(self) -> None:
        where = urlsplit(self.path)
        if where.path == "/":
            self._answer(200, self.server.page, "text/html")
        elif where.path == "/callback":
            status, text = self.server.callback(parse_qs(where.query))
            self._answer(status, text, "text/plain")
        else:
            self._answer(404, "Not Found", "text/plain")

    def _answer(self, status: int, text: str, content_type: str) -> None:
        body = text.encode()
        self.send_response(status)
        self.send_header("Content-Type", f"{content_type}; charset=utf-8")
        self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format: str, *args: Any) -> None:
        """Silent: the request line carries the one-time code."""


def run_setup(options: SetupOptions) -> int:
    """The whole flow; prints progress, never a secret. Raises `SetupError`."""
    refuse_overwrite(options, slug_for(options.name or str(load_manifest()["name"])))
    with _Flow(options) as flow:
        print(OPEN_BROWSER.format(url=flow.url, web=options.github_web), flush=True)
        if options.open_browser:
            webbrowser.open(flow.url)
        print(WAITING.format(timeout=options.timeout), flush=True)
        deadline = time.monotonic() + options.timeout
        while flow.result is None and flow.error is None:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise SetupError(TIMED_OUT.format(timeout=options.timeout))
            flow.timeout = min(remaining, 0.5)
            flow.handle_request()
    if flow.error is not None:
        raise flow.error
    assert flow.result is not None
    app, key_path, env_path = flow.result
    print(
        f"Registered GitHub App {app.slug} (id {app.id}): {app.html_url}\n"
        f"Private key: {key_path}\n"
        f"Settings: {env_path} (REVIEW_LOOP_* variables; `review-loop serve` reads ./.env)\n"
        f"Now install it on your organisation or repositories: "
        f"{install_url(options.github_web, app.slug)}",
        flush=True,
    )
    return 0
