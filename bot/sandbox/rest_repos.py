"""REST: repositories, file contents, collaborator permissions and repository labels."""

from __future__ import annotations

import base64
import re

from starlette.responses import Response

from bot.sandbox import gitops, pushes
from bot.sandbox.api import Call, Routes, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.render import Json
from bot.sandbox.state import LEGACY_PERMISSION, PERMISSION_RANK, Label, Repo

COLOR = re.compile(r"^[0-9a-fA-F]{6}$")
CONTENTS_LIMIT = 1024 * 1024  # past 1 MB the contents API sends no content ("none")
SHA = re.compile(r"^[0-9a-f]{40}$")


async def get_repo(call: Call) -> Response:
    repo = call.repo()
    data = call.hub.render.full_repository(repo)
    data["permissions"] = _permissions(call, repo)
    return json_response(data)


def _permissions(call: Call, repo: Repo) -> dict[str, bool]:
    if call.who.kind == "user":
        level = call.hub.store.permission(repo, call.who.account)
    else:
        level = "write"
    return _permissions_of_level(level)


def _content_item(call: Call, repo: Repo, path: str, ref: str, entry: gitops.TreeEntry) -> Json:
    name = call.hub.store.full_name(repo)
    kind = {"blob": "file", "tree": "dir", "commit": "submodule"}.get(entry.type, "file")
    url = f"{call.hub.render.api}/repos/{name}/contents/{path}?ref={ref}"
    git_url = f"{call.hub.render.api}/repos/{name}/git/{entry.type}s/{entry.sha}"
    html = f"{call.hub.render.web}/{name}/{'blob' if kind == 'file' else 'tree'}/{ref}/{path}"
    raw = f"{call.hub.render.web}/{name}/raw/{ref}/{path}" if kind == "file" else None
    return {
        "type": kind,
        "size": entry.size,
        "name": path.rsplit("/", 1)[-1],
        "path": path,
        "sha": entry.sha,
        "url": url,
        "git_url": git_url,
        "html_url": html,
        "download_url": raw,
        "_links": {"self": url, "git": git_url, "html": html},
    }


async def get_contents(call: Call) -> Response:
    repo = call.repo()
    path = str(call.request.path_params.get("path", "")).strip("/")
    ref = call.query("ref") or repo.default_branch
    commit = gitops.resolve(repo.path, ref)
    if commit is None:
        raise ApiError(404, f"No commit found for the ref {ref}")
    spec = f"{commit}:{path}"
    kind = gitops.object_type(repo.path, spec)
    if kind is None:
        raise ApiError.not_found()
    if kind == "tree":
        prefix = f"{path}/" if path else ""
        entries = gitops.list_tree(repo.path, spec)
        items = [_content_item(call, repo, prefix + e.name, ref, e) for e in entries]
        return json_response(items)
    blob = gitops.read_blob(repo.path, spec)
    sha = gitops.object_sha(repo.path, spec)
    entry = gitops.TreeEntry("100644", "blob", sha, len(blob), path)
    data = _content_item(call, repo, path, ref, entry)
    if len(blob) > CONTENTS_LIMIT:
        data.update({"encoding": "none", "content": ""})
    else:
        data.update({"encoding": "base64", "content": base64.encodebytes(blob).decode()})
    return json_response(data)


async def get_blob(call: Call) -> Response:
    """`GET /repos/{owner}/{repo}/git/blobs/{sha}`: any blob, base64, however large."""
    repo = call.repo()
    sha = str(call.request.path_params["sha"])
    if not SHA.match(sha) or gitops.object_type(repo.path, sha) != "blob":
        raise ApiError.not_found()
    blob = gitops.read_blob(repo.path, sha)
    return json_response(
        {
            "sha": sha,
            "node_id": f"B_{sha[:16]}",
            "size": len(blob),
            "url": f"{call.hub.render.api}/repos/{call.hub.store.full_name(repo)}/git/blobs/{sha}",
            "content": base64.encodebytes(blob).decode(),
            "encoding": "base64",
        }
    )


async def collaborator_permission(call: Call) -> Response:
    repo = call.repo()
    user = call.hub.store.account_by_login(call.param("username"))
    if user is None:
        raise ApiError(404, "Not Found")
    role = call.hub.store.permission(repo, user)
    rendered = call.hub.render.user(user)
    rendered["role_name"] = role
    rendered["permissions"] = _permissions_of_level(role)
    legacy = LEGACY_PERMISSION.get(role, role)
    return json_response({"permission": legacy, "role_name": role, "user": rendered})


def _permissions_of_level(role: str) -> dict[str, bool]:
    rank = PERMISSION_RANK[role]
    return {
        "admin": rank >= PERMISSION_RANK["admin"],
        "maintain": rank >= PERMISSION_RANK["maintain"],
        "push": rank >= PERMISSION_RANK["write"],
        "triage": rank >= PERMISSION_RANK["triage"],
        "pull": rank >= PERMISSION_RANK["read"],
    }


async def list_labels(call: Call) -> Response:
    repo = call.repo()
    labels = [call.hub.render.label(label, repo) for label in repo.labels.values()]
    page, links = paginate(call, labels)
    return json_response(page, headers=links)


async def get_label(call: Call) -> Response:
    repo = call.repo()
    label = repo.labels.get(call.param("name").lower())
    if label is None:
        raise ApiError.not_found()
    return json_response(call.hub.render.label(label, repo))


async def create_label(call: Call) -> Response:
    repo = call.repo("write")
    body = await call.body()
    name = body.get("name")
    if not isinstance(name, str) or not name.strip():
        raise ApiError.invalid("Label", "name", "missing_field")
    color = str(body.get("color") or "ededed").lstrip("#")
    if not COLOR.match(color):
        raise ApiError.invalid("Label", "color")
    if name.lower() in repo.labels:
        raise ApiError.invalid("Label", "name", "already_exists")
    label = ensure_label(call, repo, name, color, body.get("description"))
    return json_response(call.hub.render.label(label, repo), status=201)


def ensure_label(
    call: Call, repo: Repo, name: str, color: str = "ededed", description: object = None
) -> Label:
    """The repository's label `name`, created when missing (adding a label to an issue does)."""
    label = repo.labels.get(name.lower())
    if label is None:
        label = Label(
            id=call.hub.store.new_id(),
            name=name,
            color=color.lower(),
            description=None if description is None else str(description),
        )
        repo.labels[name.lower()] = label
    return label


async def delete_ref(call: Call) -> Response:
    """`DELETE /repos/{owner}/{repo}/git/refs/{ref}`: 204; 422 "Reference does not exist".
    Only branches (`heads/<name>`) are modelled; the default branch cannot be deleted."""
    repo = call.repo("write")
    ref = call.param("ref")
    branch = ref.removeprefix("heads/")
    sha = gitops.resolve(repo.path, f"refs/heads/{branch}") if ref.startswith("heads/") else None
    if sha is None:
        raise ApiError(422, "Reference does not exist")
    if branch == repo.default_branch:
        raise ApiError(422, "Cannot delete the default branch")
    gitops.git(repo.path, "update-ref", "-d", f"refs/heads/{branch}")
    pushes.branch_deleted(call.hub, repo, branch, sha, call.sender)
    return Response(status_code=204)


def add_routes(routes: Routes) -> None:
    routes.add("GET", "/repos/{owner}/{repo}", get_repo)
    routes.add("GET", "/repos/{owner}/{repo}/contents", get_contents)
    routes.add("GET", "/repos/{owner}/{repo}/contents/{path:path}", get_contents)
    routes.add("GET", "/repos/{owner}/{repo}/git/blobs/{sha}", get_blob)
    routes.add("DELETE", "/repos/{owner}/{repo}/git/refs/{ref:path}", delete_ref)
    routes.add(
        "GET",
        "/repos/{owner}/{repo}/collaborators/{username}/permission",
        collaborator_permission,
    )
    routes.add("GET", "/repos/{owner}/{repo}/labels", list_labels)
    routes.add("GET", "/repos/{owner}/{repo}/labels/{name:path}", get_label)
    routes.add("POST", "/repos/{owner}/{repo}/labels", create_label, creates=True)
