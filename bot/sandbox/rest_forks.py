"""REST: forks — fork a repository into another account, list forks, delete a repository.

A fork is a bare clone of its parent's branches under the new owner. GitHub's forks share one
object store; here the commits a fork's pull request needs are copied into the base repository
(as `refs/pull/<n>/head`) when the pull request is opened or its branch moves.
"""

from __future__ import annotations

import shutil

from starlette.responses import Response

from bot.sandbox import gitops
from bot.sandbox.api import Call, Routes, flag, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.state import Account, Repo

NOT_FOR_APPS = "Resource not accessible by integration"


def _destination(call: Call, organization: object) -> Account:
    if organization is None:
        return call.sender
    account = call.hub.store.account_by_login(str(organization))
    if account is None or account.type != "Organization":
        raise ApiError.invalid("Fork", "organization")
    return account


def _free_name(call: Call, owner: Account, wanted: object, default: str) -> str:
    """The fork's name: the one asked for, else the parent's, suffixed `-1`, `-2`… if taken."""
    store = call.hub.store
    if wanted is not None:
        if store.repo_by_name(owner.login, str(wanted)) is not None:
            raise ApiError.invalid("Repository", "name", "already_exists")
        return str(wanted)
    name, n = default, 0
    while store.repo_by_name(owner.login, name) is not None:
        n += 1
        name = f"{default}-{n}"
    return name


async def create_fork(call: Call) -> Response:
    """Fork into the caller's account (or `organization`); an existing fork is returned as is."""
    if call.who.kind != "user":
        raise ApiError(403, NOT_FOR_APPS)
    parent = call.repo()
    body = await call.body()
    store = call.hub.store
    owner = _destination(call, body.get("organization"))
    if owner.id == parent.owner_id:
        raise ApiError.invalid(
            "Fork", "owner", "custom", "A repository cannot be forked into its own account."
        )
    network = store.source(parent).id
    existing = next(
        (
            r
            for r in store.repos.values()
            if r.owner_id == owner.id and r.parent_id is not None and store.source(r).id == network
        ),
        None,
    )
    if existing is not None:
        return json_response(call.hub.render.full_repository(existing), status=202)
    now = store.now()
    name = _free_name(call, owner, body.get("name"), parent.name)
    fork = Repo(
        id=store.new_id(),
        owner_id=owner.id,
        name=name,
        path=store.repos_dir / owner.login / f"{name}.git",
        default_branch=parent.default_branch,
        private=parent.private,
        description=parent.description,
        created_at=now,
        pushed_at=parent.pushed_at,
        parent_id=parent.id,
    )
    only = parent.default_branch if flag(body.get("default_branch_only")) else None
    gitops.clone_bare(parent.path, fork.path, only)
    store.repos[fork.id] = fork
    return json_response(call.hub.render.full_repository(fork), status=202)


async def list_forks(call: Call) -> Response:
    repo = call.repo()
    forks = [f for f in call.hub.store.forks_of(repo) if call.hub.can(call.who, f, "read")]
    forks.sort(key=lambda f: f.id, reverse=call.query("sort", "newest") == "newest")
    page, links = paginate(call, [call.hub.render.repository(f) for f in forks])
    return json_response(page, headers=links)


async def delete_repo(call: Call) -> Response:
    """Delete a repository (admins only; the App has no `administration` permission).

    Pull requests it heads elsewhere stay open with `head.repo: null`, their commits kept in
    the base repository's `refs/pull/<n>/head`; its forks move up to its parent."""
    repo = call.repo("admin")
    store = call.hub.store
    del store.repos[repo.id]
    for other in store.repos.values():
        if other.parent_id == repo.id:
            other.parent_id = repo.parent_id
        for issue in other.issues.values():
            if issue.pull is not None and issue.pull.head_repo_id == repo.id:
                issue.pull.head_repo_id = None
    shutil.rmtree(repo.path, ignore_errors=True)
    return Response(status_code=204)


def add_routes(routes: Routes) -> None:
    routes.add("POST", "/repos/{owner}/{repo}/forks", create_fork, creates=True)
    routes.add("GET", "/repos/{owner}/{repo}/forks", list_forks)
    routes.add("DELETE", "/repos/{owner}/{repo}", delete_repo)
