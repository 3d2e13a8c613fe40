"""`/_sandbox/*`: what GitHub does in its web UI, for the driver — accounts, repositories
from a directory, permissions, installing the App, check-run buttons, faults and the clock."""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from bot.sandbox import events, gitops
from bot.sandbox.errors import ApiError
from bot.sandbox.faults import FaultSettings
from bot.sandbox.hub import Hub
from bot.sandbox.state import PERMISSION_RANK, Account, Installation, Protection, Repo

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]*$")

AdminHandler = Callable[[Hub, Request, dict[str, Any]], Awaitable[Any]]


def _account(hub: Hub, login: object) -> Account:
    account = hub.store.account_by_login(str(login))
    if account is None:
        raise ApiError(404, f"no account {login!r}")
    return account


def _repo(hub: Hub, request: Request) -> Repo:
    repo = hub.store.repo_by_name(request.path_params["owner"], request.path_params["repo"])
    if repo is None:
        raise ApiError.not_found()
    return repo


async def create_account(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    login, kind = str(body.get("login", "")), body.get("type", "User")
    if not NAME.match(login) or kind not in ("User", "Organization"):
        raise ApiError.invalid("User", "login")
    if hub.store.account_by_login(login) is not None:
        raise ApiError.invalid("User", "login", "already_exists")
    account = hub.store.add_account(login, kind)
    return {**hub.render.user(account), "token": account.token}


async def create_repo(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    owner = _account(hub, body.get("owner"))
    name = str(body.get("name", ""))
    if not NAME.match(name) or hub.store.repo_by_name(owner.login, name) is not None:
        raise ApiError.invalid("Repository", "name")
    branch = str(body.get("default_branch") or "main")
    now = hub.store.now()
    repo = Repo(
        id=hub.store.new_id(),
        owner_id=owner.id,
        name=name,
        path=hub.store.repos_dir / owner.login / f"{name}.git",
        default_branch=branch,
        private=bool(body.get("private", False)),
        description=body.get("description"),
        created_at=now,
        pushed_at=now,
    )
    gitops.init_bare(repo.path, branch)
    source = body.get("source_dir")
    if source:
        author = _account(hub, body.get("author") or owner.login)
        email = f"{author.id}+{author.login}@users.noreply.github.com"
        gitops.commit_directory(
            repo.path, Path(source), branch, "Initial commit", (author.login, email)
        )
    hub.store.repos[repo.id] = repo
    return hub.render.repository(repo)


async def set_permission(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    repo = _repo(hub, request)
    user = _account(hub, request.path_params["user"])
    permission = body.get("permission")
    if permission not in PERMISSION_RANK:
        raise ApiError.invalid("Collaborator", "permission")
    repo.permissions[user.id] = str(permission)
    return {"permission": permission}


async def merge_settings(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    """The repository's merge button settings, as its Settings page sets them."""
    repo = _repo(hub, request)
    names = {"allow_merge_commit": "merge", "allow_squash_merge": "squash"}
    names["allow_rebase_merge"] = "rebase"
    allowed = {m for key, m in names.items() if body.get(key, m in repo.merge_methods)}
    if not allowed:
        raise ApiError.invalid("Repository", "merge_methods", "custom", "allow one merge method")
    repo.merge_methods = allowed
    return {key: m in allowed for key, m in names.items()}


async def protect_branch(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    """A branch protection rule (required check runs and approving reviews), or none."""
    repo = _repo(hub, request)
    branch = str(request.path_params["branch"])
    if request.method == "DELETE":
        repo.protection.pop(branch, None)
        return {}
    checks = body.get("required_checks") or []
    approvals = body.get("required_approvals", 0)
    if not isinstance(checks, list) or not isinstance(approvals, int) or approvals < 0:
        raise ApiError.invalid("Protection", "required_checks")
    repo.protection[branch] = Protection([str(c) for c in checks], approvals)
    return {"required_checks": checks, "required_approvals": approvals}


async def install(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    owner = _account(hub, body.get("owner"))
    sender = _account(hub, body.get("sender") or owner.login)
    installation = hub.store.installation_for(owner.id)
    if installation is None:
        installation = Installation(
            id=hub.store.new_id(), account_id=owner.id, created_at=hub.store.now()
        )
        hub.store.installations[installation.id] = installation
        events.installation_created(hub, installation, sender)
    return hub.render.installation(installation)


async def request_check_action(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    repo = _repo(hub, request)
    run = repo.check_runs.get(int(request.path_params["check_run_id"]))
    if run is None:
        raise ApiError.not_found()
    identifier = str(body.get("identifier", ""))
    if identifier not in {a.get("identifier") for a in run.actions}:
        raise ApiError.invalid("CheckRun", "identifier")
    user = _account(hub, body.get("user"))
    events.check_run_changed(hub, repo, run, "requested_action", user, identifier)
    return {}


async def faults(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    if request.method == "POST":
        try:
            hub.faults.configure(FaultSettings.from_json(body))
        except (TypeError, ValueError) as exc:
            raise ApiError(422, str(exc)) from None
    return hub.faults.snapshot()


async def clock(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    hub.store.clock.advance(float(body.get("advance_s", 0)))
    return {"now": hub.store.now().isoformat()}


async def app_settings(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    app = hub.store.app
    assert app is not None
    if "webhook_url" in body:
        app.webhook_url = body["webhook_url"]
    if "webhook_secret" in body:
        app.webhook_secret = body["webhook_secret"]
    return {"webhook_url": app.webhook_url, "app_id": app.id, "slug": app.slug}


async def deliveries(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    with hub.store.lock:
        log = list(hub.webhooks.log)
    return [
        {
            "id": d.id,
            "guid": d.guid,
            "event": d.event,
            "action": d.action,
            "status": d.status,
            "status_code": d.status_code,
            "redelivery": d.redelivery,
        }
        for d in log
    ]


async def requests(hub: Hub, request: Request, body: dict[str, Any]) -> Any:
    """The bot's requests so far (method, route template, status, principal kind);
    `?since=N` skips the first N."""
    since = int(request.query_params.get("since", "0"))
    return hub.faults.requests_since(since)


def routes(hub: Hub) -> list[Route]:
    def wrap(handler: AdminHandler) -> Callable[[Request], Awaitable[Response]]:
        async def run(request: Request) -> Response:
            try:
                raw = await request.body()
                body = json.loads(raw) if raw.strip() else {}
                return JSONResponse(await handler(hub, request, body))
            except ApiError as error:
                return JSONResponse(error.body(), error.status)

        return run

    repo = "/_sandbox/repos/{owner}/{repo}"
    return [
        Route("/_sandbox/accounts", wrap(create_account), methods=["POST"]),
        Route("/_sandbox/repos", wrap(create_repo), methods=["POST"]),
        Route(repo + "/permissions/{user}", wrap(set_permission), methods=["PUT"]),
        Route(repo + "/merge-settings", wrap(merge_settings), methods=["PATCH"]),
        Route(
            repo + "/branches/{branch:path}/protection",
            wrap(protect_branch),
            methods=["PUT", "DELETE"],
        ),
        Route(
            repo + "/check-runs/{check_run_id}/requested-action",
            wrap(request_check_action),
            methods=["POST"],
        ),
        Route("/_sandbox/installations", wrap(install), methods=["POST"]),
        Route("/_sandbox/faults", wrap(faults), methods=["GET", "POST"]),
        Route("/_sandbox/requests", wrap(requests), methods=["GET"]),
        Route("/_sandbox/clock", wrap(clock), methods=["POST"]),
        Route("/_sandbox/app", wrap(app_settings), methods=["GET", "POST"]),
        Route("/_sandbox/deliveries", wrap(deliveries), methods=["GET"]),
    ]
