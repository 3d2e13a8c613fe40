"""The GitHub App manifest flow: the web page that takes a manifest, and the API call that
turns its one-time code into the App's credentials. The sandbox has one App, so "creating"
an App re-points that App's webhook and hands out its key."""

from __future__ import annotations

import json
import secrets
from datetime import timedelta
from typing import Any
from urllib.parse import parse_qs, urlencode

from starlette.requests import Request
from starlette.responses import PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.sandbox.api import Call, Routes, json_response
from bot.sandbox.errors import ApiError
from bot.sandbox.hub import Hub
from bot.sandbox.render import Json, iso, node_id
from bot.sandbox.state import APP_EVENTS, APP_PERMISSIONS, PRIVATE_KEY_FILE, PendingManifest

CODE_LIFETIME = timedelta(hours=1)  # GitHub: "The code is only valid for 1 hour"


def _bad_manifest(message: str) -> Response:
    return PlainTextResponse(f"Invalid GitHub App manifest: {message}", status_code=422)


async def _new_app(hub: Hub, request: Request) -> Response:
    """POST /settings/apps/new (or /organizations/{org}/...): GitHub shows a confirmation page;
    the sandbox acts as if the user pressed "Create GitHub App" and redirects at once."""
    form = parse_qs((await request.body()).decode(errors="replace"))
    raw = (form.get("manifest") or [""])[0]
    try:
        manifest = json.loads(raw)
    except json.JSONDecodeError:
        return _bad_manifest("the `manifest` form field is not JSON")
    if not isinstance(manifest, dict):
        return _bad_manifest("the manifest is not a JSON object")
    redirect = manifest.get("redirect_url")
    if not isinstance(redirect, str) or not redirect:
        return _bad_manifest("redirect_url is required")
    app = hub.store.app
    assert app is not None
    owner_id = app.owner_id
    org = request.path_params.get("org")
    if org is not None:
        account = hub.store.account_by_login(org)
        if account is None or account.type != "Organization":
            return PlainTextResponse("Not Found", status_code=404)
        owner_id = account.id
    hook = manifest.get("hook_attributes")
    if isinstance(hook, dict) and isinstance(hook.get("url"), str):
        app.webhook_url = hook["url"]
    code = secrets.token_hex(10)
    expires = hub.store.now() + CODE_LIFETIME
    hub.store.manifest_codes[code] = PendingManifest(manifest, owner_id, expires)
    query = {"code": code}
    state = request.query_params.get("state")
    if state is not None:
        query["state"] = state
    separator = "&" if "?" in redirect else "?"
    return RedirectResponse(f"{redirect}{separator}{urlencode(query)}", status_code=302)


async def convert(call: Call) -> Response:
    """POST /app-manifests/{code}/conversions: once per code, within the hour, no auth."""
    store = call.hub.store
    pending = store.manifest_codes.pop(call.param("code"), None)
    if pending is None or pending.expires_at <= store.now():
        raise ApiError.not_found()
    app = store.app
    assert app is not None
    if not app.webhook_secret:
        app.webhook_secret = secrets.token_hex(20)  # GitHub makes one for every new App
    manifest: dict[str, Any] = pending.manifest
    render = call.hub.render
    permissions = manifest.get("default_permissions")
    events = manifest.get("default_events")
    data: Json = {
        "id": app.id,
        "slug": app.slug,
        "node_id": node_id("A", app.id),
        "client_id": f"Iv1.sandbox{app.id}",
        "owner": render.user_id(pending.owner_id),
        "name": str(manifest.get("name") or app.name),
        "description": manifest.get("description"),
        "external_url": str(manifest.get("url") or render.web),
        "html_url": f"{render.web}/apps/{app.slug}",
        "created_at": iso(app.created_at),
        "updated_at": iso(store.now()),
        "permissions": permissions if isinstance(permissions, dict) else dict(APP_PERMISSIONS),
        "events": events if isinstance(events, list) else list(APP_EVENTS),
        "client_secret": secrets.token_hex(20),
        "webhook_secret": app.webhook_secret,
        "pem": (store.data_dir / PRIVATE_KEY_FILE).read_text(),
    }
    return json_response(data, status=201)


def routes(hub: Hub) -> list[Route]:
    async def new_app(request: Request) -> Response:
        return await _new_app(hub, request)

    return [
        Route("/settings/apps/new", new_app, methods=["POST"]),
        Route("/organizations/{org}/settings/apps/new", new_app, methods=["POST"]),
    ]


def add_routes(routes: Routes) -> None:
    routes.add("POST", "/app-manifests/{code}/conversions", convert, auth="none")
