"""The REST plumbing every endpoint shares: authentication, faults, rate-limit headers,
error shapes and pagination. Handlers are `async def handler(call: Call) -> Response`."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Literal
from urllib.parse import urlencode

import jwt
from starlette.requests import ClientDisconnect, Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox.errors import ApiError
from bot.sandbox.faults import SECONDARY_LIMIT_DOCS, SECONDARY_LIMIT_MESSAGE, AfterFault, Plan
from bot.sandbox.hub import Hub, Principal
from bot.sandbox.state import Account, Repo

Auth = Literal["app", "token", "none"]
DRIVER_HEADER = "x-sandbox-driver"  # the driver plays humans: faults are for the bot
RATE_LIMIT = 5000
RATE_WINDOW_S = 3600
API_PREFIX = "/api/v3"
SLOW_STEP_S = 0.05


@dataclass
class Call:
    """One API request, already authenticated."""

    request: Request
    hub: Hub
    principal: Principal | None

    @property
    def who(self) -> Principal:
        assert self.principal is not None
        return self.principal

    @property
    def sender(self) -> Account:
        return self.who.account

    def param(self, name: str) -> str:
        return str(self.request.path_params[name])

    def int_param(self, name: str) -> int:
        try:
            return int(self.request.path_params[name])
        except ValueError:
            raise ApiError.not_found() from None

    def query(self, name: str, default: str | None = None) -> str | None:
        return self.request.query_params.get(name, default)

    def repo(self, need: str = "read") -> Repo:
        return self.hub.repo(self.param("owner"), self.param("repo"), self.principal, need)

    async def json_any(self) -> Any:
        raw = await self.request.body()
        if not raw.strip():
            return {}
        try:
            return json.loads(raw)
        except json.JSONDecodeError:
            raise ApiError(400, "Problems parsing JSON") from None

    async def body(self) -> dict[str, Any]:
        data = await self.json_any()
        if not isinstance(data, dict):
            raise ApiError(400, "Problems parsing JSON")
        return data


Handler = Callable[[Call], Awaitable[Response]]


def json_response(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> Response:
    return JSONResponse(data, status_code=status, headers=headers)


def authenticate(hub: Hub, request: Request) -> Principal | None:
    header = request.headers.get("authorization", "")
    scheme, _, credential = header.partition(" ")
    credential = credential.strip()
    if not credential:
        return None
    scheme = scheme.lower()
    if scheme == "basic":
        credential = base64.b64decode(credential).decode().partition(":")[2]
    elif scheme not in ("token", "bearer"):
        raise ApiError.bad_credentials()
    if credential.count(".") == 2:
        return _app_principal(hub, credential)
    return principal_for_token(hub, credential)


def principal_for_token(hub: Hub, credential: str) -> Principal:
    store = hub.store
    token = store.tokens.get(credential)
    if token is not None:
        if token.expires_at <= store.now():
            raise ApiError.bad_credentials()
        return Principal("installation", store.bot(), f"token:{credential}", token)
    user = store.account_by_token(credential)
    if user is None:
        raise ApiError.bad_credentials()
    return Principal("user", user, f"user:{user.id}")


def _app_principal(hub: Hub, encoded: str) -> Principal:
    app = hub.store.app
    assert app is not None
    try:
        claims = jwt.decode(
            encoded,
            app.public_key_pem,
            algorithms=["RS256"],
            options={"require": ["iat", "exp", "iss"], "verify_iat": False},
            leeway=60,
        )
    except jwt.PyJWTError as exc:
        raise ApiError(401, f"A JSON web token could not be decoded: {exc}") from None
    if str(claims["iss"]) not in (str(app.id), f"Iv1.sandbox{app.id}"):
        raise ApiError(401, "'Issuer' claim ('iss') must be an Integer")
    if claims["exp"] - claims["iat"] > 660:
        raise ApiError(401, "'Expiration time' claim ('exp') is too far in the future")
    return Principal("app", hub.store.bot(), f"app:{app.id}")


class RateLimits:
    """Primary rate-limit bookkeeping per principal, for the `x-ratelimit-*` headers. A 304
    is given back (`refund`): GitHub does not count it against the rate limit."""

    def __init__(self) -> None:
        self._windows: dict[str, tuple[float, int]] = {}

    def headers(self, key: str, now: float) -> dict[str, str]:
        start, used = self._windows.get(key, (now, 0))
        if now - start >= RATE_WINDOW_S:
            start, used = now, 0
        self._windows[key] = (start, used + 1)
        return self.current(key, now)

    def refund(self, key: str, now: float) -> dict[str, str]:
        """Give back the request just counted (a 304); the headers as they then are."""
        start, used = self._windows[key]
        self._windows[key] = (start, max(used - 1, 0))
        return self.current(key, now)

    def current(self, key: str, now: float) -> dict[str, str]:
        start, used = self._windows.get(key, (now, 0))
        limit = 60 if key == "anonymous" else RATE_LIMIT
        reset = math.ceil(time.time() + RATE_WINDOW_S - (now - start))
        return {
            "x-ratelimit-limit": str(limit),
            "x-ratelimit-remaining": str(max(limit - used, 0)),
            "x-ratelimit-reset": str(reset),
            "x-ratelimit-used": str(used),
            "x-ratelimit-resource": "core",
        }


def _conditional(request: Request, response: Response) -> Response:
    """As GitHub does: an `ETag` on every 200 to a GET, and 304 Not Modified (no body) when
    the request's `If-None-Match` names the answer's current ETag."""
    body = getattr(response, "body", None)  # a streamed answer has none to tag
    if body is None:
        return response
    digest = hashlib.sha256(bytes(body)).hexdigest()[:32]
    etag = f'W/"{digest}"'
    response.headers["etag"] = etag
    asked = {t.strip() for t in request.headers.get("if-none-match", "").split(",")}
    if etag not in asked and etag.removeprefix("W/") not in asked:
        return response
    kept = {k: v for k, v in response.headers.items() if k.lower() not in _BODY_HEADERS}
    return Response(status_code=304, headers=kept)


_BODY_HEADERS = frozenset({"content-length", "content-type"})


def secondary_limit(retry_after_s: int) -> ApiError:
    return ApiError(
        403,
        SECONDARY_LIMIT_MESSAGE,
        headers={"retry-after": str(retry_after_s)},
        documentation_url=SECONDARY_LIMIT_DOCS,
    )


def endpoint(
    hub: Hub, limits: RateLimits, handler: Handler, auth: Auth, creates: bool
) -> Callable[[Request], Awaitable[Response]]:
    async def run(request: Request) -> Response:
        hub.faults.count_request()
        exempt = request.headers.get(DRIVER_HEADER) is not None
        headers: dict[str, str] = {}
        plan = Plan()
        principal: Principal | None = None
        key = "anonymous"
        try:
            principal = authenticate(hub, request)
            key = "anonymous" if principal is None else principal.key
            headers = limits.headers(key, hub.store.clock.monotonic())
            if not exempt:
                plan = await _inject_faults(hub, request, principal, creates)
            _check_auth(principal, auth)
            response = await handler(Call(request, hub, principal))
        except ApiError as error:
            response = json_response(error.body(), error.status, error.headers)
        except ClientDisconnect:
            # The client gave up (timeout, shutdown) mid-request; nothing was changed.
            return Response(status_code=499)
        response.headers.update(headers)
        if request.method == "GET" and response.status_code == 200:
            response = _conditional(request, response)
            if response.status_code == 304:
                response.headers.update(limits.refund(key, hub.store.clock.monotonic()))
        if not exempt:
            route = request.scope.get("route")
            hub.faults.record(
                request.method,
                getattr(route, "path", request.url.path).removeprefix(API_PREFIX),
                response.status_code,
                None if principal is None else principal.kind,
                request.url.path.removeprefix(API_PREFIX),
            )
        if plan.after is not None:
            return await _lose_answer(hub, request, plan.after, response)
        return response

    return run


async def _inject_faults(
    hub: Hub, request: Request, principal: Principal | None, creates: bool
) -> Plan:
    """Raise the fault that comes before handling; return the plan (what comes after)."""
    latency = hub.faults.latency()
    if latency:
        await asyncio.sleep(latency)
    retry_after = hub.faults.settings.retry_after_s
    plan = hub.faults.plan(request.method, request.url.path.removeprefix(API_PREFIX))
    if plan.before == "server_error":
        raise ApiError(502, "Server Error")
    if plan.before == "secondary_rate_limit":
        raise secondary_limit(retry_after)
    if creates and principal is not None:
        if not hub.faults.admit_creation(principal.key, hub.store.clock.monotonic()):
            raise secondary_limit(retry_after)
    return plan


class ConnectionReset(Exception):
    """Raised mid-answer on purpose: the server drops the connection (see `quiet_resets`)."""


class _ResetResponse(Response):
    """Starts an answer, then drops the connection: the client sees the peer go away."""

    def __init__(self) -> None:
        super().__init__(status_code=200)

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        headers = [(b"content-type", b"application/json"), (b"content-length", b"1024")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"{", "more_body": True})
        raise ConnectionReset


async def _lose_answer(hub: Hub, request: Request, fault: AfterFault, answer: Response) -> Response:
    """The request was handled (its change is made); the client does not get the answer."""
    if fault == "lost_answer":
        return json_response(ApiError(502, "Server Error").body(), 502, {})
    if fault == "reset":
        return _ResetResponse()
    # "slow": hold the answer past the client's timeout, or until the client gives up.
    waited = 0.0
    while waited < hub.faults.settings.slow_s and not await request.is_disconnected():
        await asyncio.sleep(SLOW_STEP_S)
        waited += SLOW_STEP_S
    return answer


class _DropResets(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return not (record.exc_info and isinstance(record.exc_info[1], ConnectionReset))


def quiet_resets() -> None:
    """Keep uvicorn from logging the connections the sandbox drops on purpose."""
    logger = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _DropResets) for f in logger.filters):
        logger.addFilter(_DropResets())


def _check_auth(principal: Principal | None, auth: Auth) -> None:
    if auth == "none":
        return
    if principal is None:
        raise ApiError.unauthenticated()
    if auth == "app" and principal.kind != "app":
        raise ApiError(
            401,
            "A JSON web token could not be decoded",
            documentation_url="https://docs.github.com/rest",
        )
    if auth == "token" and principal.kind == "app":
        raise ApiError(
            403,
            "Resource not accessible by integration",
            documentation_url="https://docs.github.com/rest",
        )


class Routes:
    """Collects a module's routes: `routes.get("/path", handler, auth=...)`."""

    def __init__(self, hub: Hub, limits: RateLimits) -> None:
        self.hub = hub
        self.limits = limits
        self.routes: list[Route] = []

    def add(
        self, method: str, path: str, handler: Handler, auth: Auth = "token", creates: bool = False
    ) -> None:
        run = endpoint(self.hub, self.limits, handler, auth, creates)
        self.routes.append(Route(path, run, methods=[method]))


async def _not_found(call: Call) -> Response:
    raise ApiError.not_found()


def finish(routes: Routes) -> list[Route]:
    """The collected routes, then GitHub's JSON 404 for every path nobody claimed."""
    run = endpoint(routes.hub, routes.limits, _not_found, "none", False)
    methods = ["GET", "POST", "PUT", "PATCH", "DELETE"]
    return [*routes.routes, Route("/{path:path}", run, methods=methods)]


def paginate(call: Call, items: list[Any]) -> tuple[list[Any], dict[str, str]]:
    """One page of `items` (`per_page`, `page`) and GitHub's `Link` header for the others."""
    try:
        per_page = min(max(int(call.query("per_page") or 30), 1), 100)
        page = max(int(call.query("page") or 1), 1)
    except ValueError:
        raise ApiError(400, "Invalid pagination parameters") from None
    last = max(math.ceil(len(items) / per_page), 1)
    chunk = items[(page - 1) * per_page : page * per_page]
    base = str(call.request.url.remove_query_params(["page", "per_page"]))

    def link(number: int, rel: str) -> str:
        params = {"per_page": per_page, "page": number}
        separator = "&" if "?" in base else "?"
        return f'<{base}{separator}{urlencode(params)}>; rel="{rel}"'

    links = []
    if page < last:
        links += [link(page + 1, "next"), link(last, "last")]
    if page > 1:
        links += [link(1, "first"), link(page - 1, "prev")]
    return chunk, ({"link": ", ".join(links)} if links else {})


def flag(value: Any) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")
