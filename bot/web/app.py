"""The web app: POST /webhook, /healthz, /readyz, /metrics, /status, /ui (the dashboard)."""

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from bot.engine import database, migrations
from bot.runtime import Runtime
from bot.web import metrics
from bot.web.dashboard import pages as dashboard
from bot.web.intake import Intake
from bot.web.status import collect_status
from bot.webhooks.deliveries import DeliveryWriter
from bot.webhooks.routing import Router


async def healthz(request: Request) -> PlainTextResponse:
    return PlainTextResponse("ok")


async def readyz(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    if not await database.reachable(runtime.pool):
        return JSONResponse({"ready": False, "reason": "database unreachable"}, status_code=503)
    async with runtime.pool.connection() as conn:
        current = await migrations.is_current(conn)
    if not current:
        return JSONResponse(
            {"ready": False, "reason": "migrations pending: run `review-loop migrate`"},
            status_code=503,
        )
    return JSONResponse({"ready": True})


async def metrics_page(request: Request) -> Response:
    runtime: Runtime = request.app.state.runtime
    if not runtime.settings.metrics:
        return PlainTextResponse("metrics are off: set REVIEW_LOOP_METRICS=true", status_code=404)
    body = await metrics.exposition(runtime.pool)
    return Response(body, headers={"content-type": metrics.CONTENT_TYPE})


async def status(request: Request) -> JSONResponse:
    runtime: Runtime = request.app.state.runtime
    if not runtime.settings.status_page:
        return JSONResponse(
            {"error": "the status page is off: set REVIEW_LOOP_STATUS_PAGE=true to serve it"},
            status_code=404,
        )
    return JSONResponse(await collect_status(runtime.pool))


class WebApp:
    """POST /webhook straight to the intake; every other request through Starlette.

    The intake is the one path that must keep up with GitHub: Starlette's error and
    exception middleware and its router cost it about a tenth of its time. The intake
    answers its own errors and needs none of them; Starlette still routes /webhook (a GET
    there is its 405)."""

    def __init__(self, intake: ASGIApp, starlette: Starlette) -> None:
        self._intake = intake
        self.starlette = starlette
        self.state = starlette.state

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST" and scope["path"] == "/webhook":
            await self._intake(scope, receive, send)
        else:
            await self.starlette(scope, receive, send)


def create_app(runtime: Runtime, router: Router | None = None) -> WebApp:
    """The ASGI app over an opened runtime. Refuses to build without a webhook secret.

    With the handlers' `router` (what the workers run), deliveries no handler wants are
    stored as ignored at the intake, with no dispatch job; without it, all are queued."""
    secret = runtime.settings.require_webhook_secret()
    intake = metrics.TimedIntake(Intake(secret, DeliveryWriter(runtime.pool), router))
    app = Starlette(
        routes=[
            Route("/webhook", intake, methods=["POST"]),
            Route("/healthz", healthz),
            Route("/readyz", readyz),
            Route("/metrics", metrics_page),
            Route("/status", status),
            *dashboard.ROUTES,
        ]
    )
    app.state.runtime = runtime
    app.state.webhook_secret = secret
    return WebApp(intake, app)
