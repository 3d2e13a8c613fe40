"""The dashboard's routes under /ui: fleet, one PR, queue, login. Off (404) unless
REVIEW_LOOP_DASHBOARD_TOKEN is set; without the token a browser is sent to the login form,
anything else gets 401."""

import time
import urllib.parse
from pathlib import Path
from typing import Any

from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Route

from bot.runtime import Runtime
from bot.web.dashboard import auth, queries

NONE = "\u2013"  # an en dash: no value
OFF = "the dashboard is off: set REVIEW_LOOP_DASHBOARD_TOKEN to serve it"
MAX_FORM_BYTES = 4096

_templates = Environment(
    loader=FileSystemLoader(Path(__file__).parent / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
)


def _seconds(value: object) -> str:
    """A duration for people: 0.4 s, 12 s, 3 min, 2 h."""
    if value is None:
        return NONE
    s = float(str(value))
    if s < 10:
        return f"{s:.1f} s"
    if s < 120:
        return f"{s:.0f} s"
    if s < 7200:
        return f"{s / 60:.0f} min"
    return f"{s / 3600:.0f} h"


def _when(value: Any) -> str:
    return NONE if value is None else value.strftime("%Y-%m-%d %H:%M:%S")


_templates.filters["seconds"] = _seconds
_templates.filters["when"] = _when


def _token(request: Request) -> str | None:
    runtime: Runtime = request.app.state.runtime
    secret = runtime.settings.dashboard_token
    return secret.get_secret_value() if secret is not None else None


def _render(name: str, **context: Any) -> HTMLResponse:
    return HTMLResponse(_templates.get_template(name).render(**context))


def _refused(request: Request) -> Response:
    if "text/html" in request.headers.get("accept", ""):
        return RedirectResponse("/ui/login", status_code=303)
    return PlainTextResponse(
        "the dashboard needs REVIEW_LOOP_DASHBOARD_TOKEN as a bearer token",
        status_code=401,
        headers={"www-authenticate": 'Bearer realm="review-loop"'},
    )


def _guard(request: Request) -> Response | None:
    """None when the request may see the dashboard, else the answer that refuses it."""
    token = _token(request)
    if token is None:
        return PlainTextResponse(OFF, status_code=404)
    if not auth.allowed(token, request.headers, request.cookies):
        return _refused(request)
    return None


async def fleet_page(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    return _render("fleet.html", page="fleet", **await queries.fleet(runtime.pool))


async def pr_page(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    p = request.path_params
    repo = f"{p['owner']}/{p['name']}"
    data = await queries.pull_request(runtime.pool, repo, int(p["number"]))
    if data is None:
        return PlainTextResponse(f"{repo}#{p['number']} is not in the loop", status_code=404)
    return _render("pr.html", page="pr", **data)


async def queue_page(request: Request) -> Response:
    if (refused := _guard(request)) is not None:
        return refused
    runtime: Runtime = request.app.state.runtime
    data = await queries.queue(runtime.pool, alive_within_s=runtime.settings.stalled_after_s)
    return _render("queue.html", page="queue", **data)


async def login_page(request: Request) -> Response:
    token = _token(request)
    if token is None:
        return PlainTextResponse(OFF, status_code=404)
    if request.method == "GET":
        return _render("login.html", page="login", failed=False)
    body = await request.body()
    offered = ""
    if len(body) <= MAX_FORM_BYTES:
        form = urllib.parse.parse_qs(body.decode("utf-8", "replace"))
        offered = (form.get("token") or [""])[0]
    if not offered or not auth.token_matches(token, offered):
        refused = _render("login.html", page="login", failed=True)
        refused.status_code = 401
        return refused
    response = RedirectResponse("/ui", status_code=303)
    response.set_cookie(
        auth.COOKIE,
        auth.make_cookie(token, now=time.time()),
        max_age=auth.COOKIE_TTL_S,
        path="/ui",
        httponly=True,
        samesite="strict",
        secure=request.url.scheme == "https",
    )
    return response


async def logout(request: Request) -> Response:
    response = RedirectResponse("/ui/login", status_code=303)
    response.delete_cookie(auth.COOKIE, path="/ui")
    return response


ROUTES = [
    Route("/ui", fleet_page),
    Route("/ui/queue", queue_page),
    Route("/ui/pr/{owner}/{name}/{number:int}", pr_page),
    Route("/ui/login", login_page, methods=["GET", "POST"]),
    Route("/ui/logout", logout, methods=["POST"]),
]
