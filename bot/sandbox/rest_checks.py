"""REST: check runs — create, update (annotations accumulate), list for a ref, rerequest."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from starlette.responses import Response

from bot.sandbox import events, gitops
from bot.sandbox.api import Call, Routes, json_response, paginate
from bot.sandbox.errors import ApiError
from bot.sandbox.render_pulls import annotation_list, check_run
from bot.sandbox.state import CheckRun, Repo

MAX_ANNOTATIONS = 50
MAX_ACTIONS = 3
MAX_ACTION_LABEL = 20
MAX_OUTPUT_TEXT = 65_535  # output.summary and output.text
STATUSES = ("queued", "in_progress", "completed", "waiting", "requested", "pending")
CONCLUSIONS = (
    "action_required",
    "cancelled",
    "failure",
    "neutral",
    "success",
    "skipped",
    "stale",
    "timed_out",
)


def _only_apps(call: Call) -> None:
    if call.who.kind != "installation":
        raise ApiError(403, "You must authenticate via a GitHub App.")


def _time(value: Any, fallback: datetime) -> datetime:
    if not value:
        return fallback
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        raise ApiError.invalid("CheckRun", "started_at") from None


def _apply(call: Call, run: CheckRun, body: dict[str, Any]) -> None:
    """Validate and apply the writable fields of a create or update request."""
    output = body.get("output") or {}
    for field in ("summary", "text"):
        if len(str(output.get(field) or "")) > MAX_OUTPUT_TEXT:
            message = f"Only {MAX_OUTPUT_TEXT} characters are allowed in output.{field}"
            raise ApiError.invalid("CheckRun", f"output.{field}", "custom", message)
    new_annotations = output.get("annotations") or []
    if len(new_annotations) > MAX_ANNOTATIONS:
        raise ApiError.invalid(
            "CheckRun",
            "output.annotations",
            "custom",
            f"Only {MAX_ANNOTATIONS} annotations are allowed per request",
        )
    actions = body.get("actions")
    if actions is not None:
        if len(actions) > MAX_ACTIONS:
            raise ApiError.invalid(
                "CheckRun", "actions", "custom", f"Only {MAX_ACTIONS} actions are allowed"
            )
        for action in actions:
            if len(str(action.get("label", ""))) > MAX_ACTION_LABEL:
                raise ApiError.invalid("CheckRun", "actions.label", "too_long")
        run.actions = [dict(a) for a in actions]
    for field in ("name", "external_id", "details_url"):
        if body.get(field) is not None:
            setattr(run, field, str(body[field]))
    now = call.hub.store.now()
    if "started_at" in body:
        run.started_at = _time(body["started_at"], now)
    status = body.get("status")
    if status is not None and status not in STATUSES:
        raise ApiError.invalid("CheckRun", "status")
    conclusion = body.get("conclusion")
    if conclusion is not None:
        if conclusion not in CONCLUSIONS:
            raise ApiError.invalid("CheckRun", "conclusion")
        run.conclusion, run.status = conclusion, "completed"
        run.completed_at = _time(body.get("completed_at"), now)
    elif status is not None:
        if status == "completed":
            raise ApiError.invalid("CheckRun", "conclusion", "missing_field")
        run.status = status
    if output:
        for field in ("title", "summary", "text"):
            if field in output:
                setattr(run, field, output[field])
        run.annotations.extend(dict(a) for a in new_annotations)


def _find(call: Call, repo: Repo) -> CheckRun:
    run = repo.check_runs.get(call.int_param("check_run_id"))
    if run is None:
        raise ApiError.not_found()
    return run


async def create_check_run(call: Call) -> Response:
    _only_apps(call)
    repo = call.repo("write")
    body = await call.body()
    name, head_sha = body.get("name"), body.get("head_sha")
    if not isinstance(name, str) or not name:
        raise ApiError.invalid("CheckRun", "name", "missing_field")
    sha = gitops.resolve(repo.path, str(head_sha or ""))
    if sha is None or sha != head_sha:
        raise ApiError.invalid("CheckRun", "head_sha", "custom", "No commit found for SHA")
    now = call.hub.store.now()
    run = CheckRun(
        id=call.hub.store.new_id(),
        suite_id=call.hub.store.new_id(),
        name=name,
        head_sha=sha,
        status="queued",
        conclusion=None,
        started_at=now,
        completed_at=None,
        external_id=None,
        details_url=None,
    )
    _apply(call, run, body)
    repo.check_runs[run.id] = run
    return json_response(check_run(call.hub.render, run, repo), status=201)


async def update_check_run(call: Call) -> Response:
    _only_apps(call)
    repo = call.repo("write")
    run = _find(call, repo)
    _apply(call, run, await call.body())
    return json_response(check_run(call.hub.render, run, repo))


async def get_check_run(call: Call) -> Response:
    repo = call.repo()
    return json_response(check_run(call.hub.render, _find(call, repo), repo))


async def list_annotations(call: Call) -> Response:
    repo = call.repo()
    page, links = paginate(call, annotation_list(_find(call, repo)))
    return json_response(page, headers=links)


async def list_for_ref(call: Call) -> Response:
    repo = call.repo()
    sha = gitops.resolve(repo.path, call.param("ref"))
    if sha is None:
        raise ApiError(422, f"No commit found for SHA: {call.param('ref')}")
    runs = [r for r in repo.check_runs.values() if r.head_sha == sha]
    if name := call.query("check_name"):
        runs = [r for r in runs if r.name == name]
    if status := call.query("status"):
        runs = [r for r in runs if r.status == status]
    runs.sort(key=lambda r: r.id, reverse=True)
    page, links = paginate(call, runs)
    data = {
        "total_count": len(runs),
        "check_runs": [check_run(call.hub.render, r, repo) for r in page],
    }
    return json_response(data, headers=links)


async def rerequest(call: Call) -> Response:
    """Ask the App to run the check again: GitHub sends `check_run.rerequested`."""
    repo = call.repo("write")
    run = _find(call, repo)
    if run.status != "completed":
        raise ApiError(403, "This check run is not rerequestable")
    events.check_run_changed(call.hub, repo, run, "rerequested", call.sender)
    return json_response({}, status=201)


def add_routes(routes: Routes) -> None:
    runs = "/repos/{owner}/{repo}/check-runs"
    routes.add("POST", runs, create_check_run, creates=True)
    routes.add("GET", runs + "/{check_run_id}", get_check_run)
    routes.add("PATCH", runs + "/{check_run_id}", update_check_run)
    routes.add("GET", runs + "/{check_run_id}/annotations", list_annotations)
    routes.add("POST", runs + "/{check_run_id}/rerequest", rerequest)
    routes.add("GET", "/repos/{owner}/{repo}/commits/{ref:path}/check-runs", list_for_ref)
