"""REST: the App itself — JWT endpoints, installations, access tokens, hook deliveries."""

from __future__ import annotations

from starlette.responses import Response

from bot.sandbox.api import Call, Routes, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.render import Json, iso
from bot.sandbox.state import APP_PERMISSIONS, Installation
from bot.sandbox.webhooks import HOOK_ID, Delivery


async def get_app(call: Call) -> Response:
    return json_response(call.hub.render.app())


async def list_installations(call: Call) -> Response:
    installs = sorted(call.hub.store.installations.values(), key=lambda i: i.id)
    page, links = paginate(call, [call.hub.render.installation(i) for i in installs])
    return json_response(page, headers=links)


def _installation(call: Call) -> Installation:
    installation = call.hub.store.installations.get(call.int_param("installation_id"))
    if installation is None:
        raise ApiError.not_found()
    return installation


async def get_installation(call: Call) -> Response:
    return json_response(call.hub.render.installation(_installation(call)))


async def get_repo_installation(call: Call) -> Response:
    repo = call.hub.store.repo_by_name(call.param("owner"), call.param("repo"))
    installation = None if repo is None else call.hub.store.installation_for(repo.owner_id)
    if installation is None:
        raise ApiError.not_found()
    return json_response(call.hub.render.installation(installation))


async def create_access_token(call: Call) -> Response:
    store = call.hub.store
    installation = _installation(call)
    body = await call.body()
    names = body.get("repositories")
    ids = body.get("repository_ids")
    scoped: set[int] | None = None
    if names is not None or ids is not None:
        owned = {
            r.name.lower(): r for r in store.repos.values() if r.owner_id == installation.account_id
        }
        scoped = set()
        for name in names or []:
            repo = owned.get(str(name).lower())
            if repo is None:
                raise ApiError.invalid("Installation", "repositories", message=f"{name} not found")
            scoped.add(repo.id)
        for id_ in ids or []:
            if not any(r.id == id_ for r in owned.values()):
                raise ApiError.invalid("Installation", "repository_ids")
            scoped.add(int(id_))
    token = store.issue_token(installation, None if scoped is None else frozenset(scoped))
    data: Json = {
        "token": token.token,
        "expires_at": iso(token.expires_at),
        "permissions": dict(APP_PERMISSIONS),
        "repository_selection": "all" if scoped is None else "selected",
    }
    if scoped is not None:
        repos = [store.repos[i] for i in sorted(scoped)]
        data["repositories"] = [call.hub.render.repository(r) for r in repos]
    return json_response(data, status=201)


async def installation_repositories(call: Call) -> Response:
    token = call.who.token
    if token is None:
        raise ApiError(403, "This endpoint requires an installation token")
    store = call.hub.store
    repos = [r for r in store.repos.values() if call.hub.can(call.who, r, "read")]
    page, links = paginate(call, [call.hub.render.repository(r) for r in repos])
    body = {"total_count": len(repos), "repository_selection": "all", "repositories": page}
    return json_response(body, headers=links)


def delivery_item(call: Call, delivery: Delivery) -> Json:
    return {
        "id": delivery.id,
        "guid": delivery.guid,
        "delivered_at": iso(delivery.delivered_at or call.hub.store.now()),
        "redelivery": delivery.redelivery,
        "duration": round(delivery.duration, 3),
        "status": delivery.status,
        "status_code": delivery.status_code,
        "event": delivery.event,
        "action": delivery.action,
        "installation_id": delivery.installation_id,
        "repository_id": delivery.repository_id,
        "throttled_at": None,
    }


async def list_deliveries(call: Call) -> Response:
    with call.hub.store.lock:
        log = list(reversed(call.hub.webhooks.log))
    if call.query("status") == "failure":
        log = [d for d in log if not d.ok and d.status != "pending"]
    cursor = call.query("cursor")
    if cursor:
        log = [d for d in log if d.id < int(cursor)]
    per_page = min(max(int(call.query("per_page") or 30), 1), 100)
    page = log[:per_page]
    headers = {}
    if len(log) > per_page:
        url = call.request.url.include_query_params(cursor=page[-1].id, per_page=per_page)
        headers["link"] = f'<{url}>; rel="next"'
    return json_response([delivery_item(call, d) for d in page], headers=headers)


async def get_delivery(call: Call) -> Response:
    delivery = call.hub.webhooks.find(call.int_param("delivery_id"))
    if delivery is None:
        raise ApiError.not_found()
    import json

    data = delivery_item(call, delivery)
    data["url"] = f"{call.hub.render.api}/app/hook/deliveries/{delivery.id}"
    data["request"] = {"headers": delivery.request_headers, "payload": json.loads(delivery.body)}
    data["response"] = {"headers": delivery.response_headers, "payload": delivery.response_body}
    return json_response(data)


async def redeliver(call: Call) -> Response:
    if call.hub.webhooks.redeliver(call.int_param("delivery_id")) is None:
        raise ApiError.not_found()
    return json_response({}, status=202)


async def get_hook_config(call: Call) -> Response:
    app = call.hub.store.app
    assert app is not None
    return json_response(
        {
            "content_type": "json",
            "secret": "********" if app.webhook_secret else None,
            "url": app.webhook_url,
            "insecure_ssl": "0",
            "id": HOOK_ID,
        }
    )


def add_routes(routes: Routes) -> None:
    routes.add("GET", "/app", get_app, auth="app")
    routes.add("GET", "/app/installations", list_installations, auth="app")
    routes.add("GET", "/app/installations/{installation_id}", get_installation, auth="app")
    routes.add("GET", "/repos/{owner}/{repo}/installation", get_repo_installation, auth="app")
    routes.add(
        "POST",
        "/app/installations/{installation_id}/access_tokens",
        create_access_token,
        auth="app",
    )
    routes.add("GET", "/installation/repositories", installation_repositories)
    routes.add("GET", "/app/hook/config", get_hook_config, auth="app")
    routes.add("GET", "/app/hook/deliveries", list_deliveries, auth="app")
    routes.add("GET", "/app/hook/deliveries/{delivery_id}", get_delivery, auth="app")
    routes.add("POST", "/app/hook/deliveries/{delivery_id}/attempts", redeliver, auth="app")
