"""The one fake GitHub for unit tests: githubkit's real client over `httpx.MockTransport`.

A small in-memory store of one repository's issues, pulls, comments, labels, check runs,
files and collaborators (and the App's installation tokens) answers with JSON that githubkit's
models parse: every field a model requires is present (placeholders from `skeleton`), the ones
the bot reads carry real values. Every request is recorded; a request no route matches raises.
"""

import base64
import functools
import hashlib
import json
import re
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import Any, Literal, Union, get_args, get_origin
from urllib.parse import unquote

import httpx
from githubkit import GitHub
from githubkit_schemas.latest import models
from pydantic import BaseModel

BASE_URL = "https://api.github.test/"
Json = dict[str, Any]
Handler = Callable[[re.Match[str], httpx.Request], httpx.Response]
MAX_BODY = 65_536  # GitHub's 422 past this many characters of an issue, comment or PR body
MAX_CHECK_TEXT = 65_535  # a check run's output.summary and output.text
CONTENTS_LIMIT = 1024 * 1024  # past 1 MB the contents API sends `encoding: "none"`
# GitHub's 405 for a merge method the repository does not allow.
NOT_ALLOWED = {
    "merge": "Merge commits are not allowed on this repository.",
    "squash": "Squash merges are not allowed on this repository.",
    "rebase": "Rebase merges are not allowed on this repository.",
}


def _placeholder(tp: Any) -> Any:
    origin, args = get_origin(tp), get_args(tp)
    if tp is None or tp is type(None) or tp is Any:
        return None
    if origin is typing.Annotated:
        return _placeholder(args[0])
    if origin in (Union, types.UnionType):
        if type(None) in args:
            return None
        return _placeholder(next(a for a in args if get_origin(a) is not Literal))
    if origin is Literal:
        return args[0]
    if origin in (list, set, tuple):
        return []
    if origin is dict or tp is dict:
        return {}
    if isinstance(tp, type) and issubclass(tp, BaseModel):
        return skeleton(tp)
    simple = {str: "x", int: 1, float: 0.0, bool: False}
    if tp in simple:
        return simple[tp]
    if tp is datetime:
        return "2024-01-01T00:00:00Z"
    if tp is date:
        return "2024-01-01"
    raise TypeError(f"no placeholder for {tp!r}")


@functools.cache
def _skeleton(model: type[BaseModel]) -> str:
    fields = {
        info.alias or name: _placeholder(info.annotation)
        for name, info in model.model_fields.items()
        if info.is_required()
    }
    return json.dumps(fields)


def skeleton(model: type[BaseModel]) -> Json:
    """The fields `model` requires, filled with placeholders (a fresh copy each call)."""
    data: Json = json.loads(_skeleton(model))
    return data


def user(login: str, type_: str = "User") -> Json:
    return {**skeleton(models.SimpleUser), "login": login, "type": type_}


@dataclass
class FakePull:
    head_ref: str
    head_sha: str
    base_ref: str = "main"
    base_sha: str = "b" * 40
    merged: bool = False
    merge_commit_sha: str | None = None
    mergeable: bool = True
    draft: bool = False
    reviewers: list[str] = field(default_factory=list)
    fork: str | None = None  # the head lives in this fork (full name), not the repository


@dataclass
class FakeIssue:
    number: int
    title: str
    body: str
    user: str = "octocat"
    state: str = "open"
    state_reason: str | None = None
    labels: list[str] = field(default_factory=list)
    closed_by: str | None = None
    pull: FakePull | None = None


@dataclass
class FakeComment:
    id: int
    issue: int
    body: str
    user: str


@dataclass
class FakeCheckRun:
    id: int
    name: str
    head_sha: str
    app_id: int
    status: str = "queued"
    conclusion: str | None = None
    title: str | None = None
    summary: str | None = None
    annotations: list[Json] = field(default_factory=list)
    actions: list[Json] = field(default_factory=list)


@dataclass
class Injection:
    method: str
    path: re.Pattern[str]
    status: int
    body: Json
    headers: dict[str, str]
    side_effect: Callable[[], object] | None


class FakeGitHub:
    """One repository on a fake GitHub. `client()` gives a githubkit client that talks to it."""

    def __init__(self, full_name: str = "octo/demo", *, app_id: int = 7, bot: str = "rl[bot]"):
        self.full_name = full_name
        self.owner = full_name.split("/")[0]
        self.app_id = app_id
        self.bot = bot
        self.requests: list[httpx.Request] = []
        self.issues: dict[int, FakeIssue] = {}
        self.comments: dict[int, FakeComment] = {}
        self.labels: dict[str, tuple[str, str]] = {}
        self.check_runs: dict[int, FakeCheckRun] = {}
        self.files: dict[str, str] = {}
        self.roles: dict[str, str] = {}
        self.injections: list[Injection] = []
        # Where `GET /repos/{repo}` says the repository is cloned from (a test points it at a
        # local bare repository to let the bot fetch from it).
        self.clone_url = f"https://github.test/{full_name}.git"
        self.installation_tokens: list[int] = []  # the installations a token was made for
        # The repository's merge button settings (`allow_merge_commit`, ...).
        self.merge_methods: set[str] = {"merge", "squash", "rebase"}
        self._ids = 1000
        repo = "/repos/" + re.escape(full_name)
        self.routes: list[tuple[str, re.Pattern[str], Handler]] = [
            (method, re.compile(repo + pattern + "$"), handler)
            for method, pattern, handler in [
                ("GET", "", self._get_repo),
                ("GET", "/issues", self._list_issues),
                ("POST", "/issues", self._create_issue),
                ("GET", r"/issues/(\d+)", self._get_issue),
                ("PATCH", r"/issues/(\d+)", self._update_issue),
                ("GET", r"/issues/(\d+)/comments", self._list_comments),
                ("POST", r"/issues/(\d+)/comments", self._create_comment),
                ("PATCH", r"/issues/comments/(\d+)", self._update_comment),
                ("POST", r"/issues/(\d+)/labels", self._add_labels),
                ("DELETE", r"/issues/(\d+)/labels/(.+)", self._remove_label),
                ("GET", "/labels", self._list_labels),
                ("POST", "/labels", self._create_label),
                ("GET", "/contents/(.+)", self._get_content),
                ("GET", "/git/blobs/([0-9a-f]{40})", self._get_blob),
                ("GET", "/pulls", self._list_pulls),
                ("POST", "/pulls", self._create_pull),
                ("GET", r"/pulls/(\d+)", self._get_pull),
                ("PATCH", r"/pulls/(\d+)", self._update_pull),
                ("PUT", r"/pulls/(\d+)/merge", self._merge),
                ("POST", r"/pulls/(\d+)/requested_reviewers", self._request_reviewers),
                ("GET", r"/commits/([^/]+)/check-runs", self._list_check_runs),
                ("POST", "/check-runs", self._create_check_run),
                ("PATCH", r"/check-runs/(\d+)", self._update_check_run),
                ("GET", r"/check-runs/(\d+)/annotations", self._list_annotations),
                ("GET", r"/collaborators/([^/]+)/permission", self._permission),
            ]
        ]
        self.routes.append(
            (
                "POST",
                re.compile(r"/app/installations/(\d+)/access_tokens$"),
                self._installation_token,
            )
        )
        # The owner's `.github` repository, where an organisation's config is inherited from:
        # none here, as for most owners (GitHub answers 404).
        owner = re.escape(full_name.split("/")[0])
        self.routes.append(
            ("GET", re.compile(f"/repos/{owner}/\\.github(/.*)?$"), self._no_such_repository)
        )

    # the seam

    def client(self) -> GitHub[Any]:
        return GitHub(
            "token",
            base_url=BASE_URL,
            async_transport=httpx.MockTransport(self.handle),
            auto_retry=False,
        )

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        path = unquote(request.url.raw_path.decode().split("?")[0])
        for injection in self.injections:
            if injection.method == request.method and injection.path.search(path):
                self.injections.remove(injection)
                if injection.side_effect:
                    injection.side_effect()
                return httpx.Response(
                    injection.status, json=injection.body, headers=injection.headers
                )
        if (too_long := self._too_long(request)) is not None:
            return too_long
        for method, pattern, handler in self.routes:
            match = pattern.match(path)
            if match and method == request.method:
                return handler(match, request)
        raise AssertionError(f"fake GitHub has no route for {request.method} {request.url}")

    @staticmethod
    def _too_long(request: httpx.Request) -> httpx.Response | None:
        """GitHub's 422 for a body, or check-run text, over its limit."""
        if request.method not in ("POST", "PATCH") or not request.content:
            return None
        data = json.loads(request.content)
        if not isinstance(data, dict):
            return None
        output = data.get("output") if isinstance(data.get("output"), dict) else {}
        limits = [("body", data.get("body"), MAX_BODY)] + [
            (f"output.{f}", output.get(f), MAX_CHECK_TEXT) for f in ("summary", "text")
        ]
        for name, text, limit in limits:
            if isinstance(text, str) and len(text) > limit:
                message = f"{name} is too long (maximum is {limit} characters)"
                errors = [{"field": name, "code": "custom", "message": message}]
                return httpx.Response(422, json={"message": "Validation Failed", "errors": errors})
        return None

    # for tests

    def calls(self, method: str, path_pattern: str) -> list[httpx.Request]:
        """The recorded requests of `method` whose path ends with `path_pattern` (a regex)."""
        regex = re.compile(path_pattern + "$")
        return [r for r in self.requests if r.method == method and regex.search(r.url.path)]

    def inject(
        self,
        method: str,
        path_pattern: str,
        status: int,
        body: Json | None = None,
        *,
        headers: dict[str, str] | None = None,
        side_effect: Callable[[], object] | None = None,
    ) -> None:
        """Answer the next matching request with this response (once), running `side_effect`."""
        self.injections.append(
            Injection(
                method,
                re.compile(path_pattern + "$"),
                status,
                body or {},
                headers or {},
                side_effect,
            )
        )

    def add_issue(self, title: str, body: str = "", **fields: Any) -> FakeIssue:
        issue = FakeIssue(len(self.issues) + 1, title, body, **fields)
        self.issues[issue.number] = issue
        return issue

    def add_pull(self, head_ref: str, head_sha: str = "a" * 40, **fields: Any) -> FakeIssue:
        pull_fields = {k: fields.pop(k) for k in list(fields) if k in FakePull.__annotations__}
        return self.add_issue(
            f"PR from {head_ref}", pull=FakePull(head_ref, head_sha, **pull_fields), **fields
        )

    def _next_id(self) -> int:
        self._ids += 1
        return self._ids

    # rendering

    def _label(self, name: str) -> Json:
        color, description = self.labels.get(name, ("ededed", ""))
        return {
            **skeleton(models.Label),
            "name": name,
            "color": color,
            "description": description,
        }

    def _issue(self, issue: FakeIssue) -> Json:
        data = {
            **skeleton(models.Issue),
            "number": issue.number,
            "title": issue.title,
            "body": issue.body,
            "state": issue.state,
            "state_reason": issue.state_reason,
            "labels": [self._label(n) for n in issue.labels],
            "user": user(issue.user),
            "html_url": f"https://github.test/{self.full_name}/issues/{issue.number}",
            "closed_by": user(issue.closed_by) if issue.closed_by else None,
        }
        if issue.pull:
            data["pull_request"] = skeleton(models.IssuePropPullRequest)
        return data

    def _pull(self, issue: FakeIssue) -> Json:
        pull = issue.pull
        assert pull is not None
        repo = {**skeleton(models.Repository), "full_name": self.full_name}

        def ref(model: type[BaseModel], name: str, sha: str, fork: str | None = None) -> Json:
            where = repo if fork is None else {**repo, "full_name": fork, "fork": True}
            login = self.owner if fork is None else fork.split("/")[0]
            label = f"{login}:{name}"
            fields = {"ref": name, "sha": sha, "repo": where, "user": user(login), "label": label}
            return {**skeleton(model), **fields}

        return {
            **skeleton(models.PullRequest),
            "number": issue.number,
            "state": issue.state,
            "title": issue.title,
            "body": issue.body,
            "labels": [self._label(n) for n in issue.labels],
            "user": user(issue.user),
            "html_url": f"https://github.test/{self.full_name}/pull/{issue.number}",
            "draft": pull.draft,
            "merged": pull.merged,
            "merged_at": "2024-01-02T00:00:00Z" if pull.merged else None,
            "merge_commit_sha": pull.merge_commit_sha,
            "mergeable": pull.mergeable,
            "head": ref(models.PullRequestPropHead, pull.head_ref, pull.head_sha, pull.fork),
            "base": ref(models.PullRequestPropBase, pull.base_ref, pull.base_sha),
        }

    def _comment(self, comment: FakeComment) -> Json:
        return {
            **skeleton(models.IssueComment),
            "id": comment.id,
            "body": comment.body,
            "user": user(comment.user, "Bot" if comment.user.endswith("[bot]") else "User"),
        }

    def _check_run(self, run: FakeCheckRun) -> Json:
        app = {**skeleton(models.Integration), "id": run.app_id}
        output = {
            **skeleton(models.CheckRunPropOutput),
            "title": run.title,
            "summary": run.summary,
            "annotations_count": len(run.annotations),
        }
        return {
            **skeleton(models.CheckRun),
            "id": run.id,
            "name": run.name,
            "head_sha": run.head_sha,
            "status": run.status,
            "conclusion": run.conclusion,
            "app": app,
            "output": output,
        }

    # routes

    @staticmethod
    def _ok(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> httpx.Response:
        return httpx.Response(status, json=data, headers=headers)

    @staticmethod
    def _error(status: int, message: str, **extra: Any) -> httpx.Response:
        return httpx.Response(status, json={"message": message, **extra})

    def _page(self, request: httpx.Request, items: list[Json]) -> httpx.Response:
        per_page = min(int(request.url.params.get("per_page", 30)), 100)
        page = int(request.url.params.get("page", 1))
        chunk = items[(page - 1) * per_page : page * per_page]
        headers = {}
        if page * per_page < len(items):
            following = request.url.copy_merge_params({"page": page + 1, "per_page": per_page})
            headers["link"] = f'<{following}>; rel="next"'
        return self._ok(chunk, headers=headers)

    def _issue_or_404(self, match: re.Match[str]) -> FakeIssue:
        issue = self.issues.get(int(match.group(1)))
        if issue is None:
            raise AssertionError(f"test asked for unknown issue {match.group(1)}")
        return issue

    def _no_such_repository(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        return self._error(404, "Not Found")

    def _get_repo(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        owner_type = "Organization" if self.owner.startswith("org") else "User"
        return self._ok(
            {
                **skeleton(models.FullRepository),
                "full_name": self.full_name,
                "default_branch": "main",
                "clone_url": self.clone_url,
                "private": True,
                "owner": user(self.owner, owner_type),
                "allow_merge_commit": "merge" in self.merge_methods,
                "allow_squash_merge": "squash" in self.merge_methods,
                "allow_rebase_merge": "rebase" in self.merge_methods,
            }
        )

    def _list_issues(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        state = request.url.params.get("state", "open")
        wanted = [n for n in request.url.params.get("labels", "").split(",") if n]
        found = [
            self._issue(i)
            for i in self.issues.values()
            if state in ("all", i.state) and all(n in i.labels for n in wanted)
        ]
        return self._page(request, found)

    def _create_issue(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)
        issue = self.add_issue(data["title"], data.get("body", ""), labels=data.get("labels", []))
        return self._ok(self._issue(issue), 201)

    def _get_issue(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        return self._ok(self._issue(self._issue_or_404(match)))

    def _update_issue(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        for key, value in json.loads(request.content).items():
            setattr(issue, key, value)
        if issue.state == "closed":
            issue.closed_by = self.bot
        return self._ok(self._issue(issue))

    def _list_comments(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        number = int(match.group(1))
        found = [self._comment(c) for c in self.comments.values() if c.issue == number]
        return self._page(request, found)

    def _create_comment(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)["body"]
        comment = FakeComment(self._next_id(), int(match.group(1)), body, self.bot)
        self.comments[comment.id] = comment
        return self._ok(self._comment(comment), 201)

    def _update_comment(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        comment = self.comments.get(int(match.group(1)))
        if comment is None:
            return self._error(404, "Not Found")
        comment.body = json.loads(request.content)["body"]
        return self._ok(self._comment(comment))

    def _add_labels(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        for name in json.loads(request.content)["labels"]:
            if name not in issue.labels:
                issue.labels.append(name)
        return self._ok([self._label(n) for n in issue.labels])

    def _remove_label(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        if match.group(2) not in issue.labels:
            return self._error(404, "Label does not exist")
        issue.labels.remove(match.group(2))
        return self._ok([self._label(n) for n in issue.labels])

    def _list_labels(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        return self._page(request, [self._label(n) for n in self.labels])

    def _create_label(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)
        if data["name"].lower() in {n.lower() for n in self.labels}:
            errors = [{"resource": "Label", "code": "already_exists", "field": "name"}]
            return self._error(422, "Validation Failed", errors=errors)
        self.labels[data["name"]] = (data.get("color", "ededed"), data.get("description", ""))
        return self._ok(self._label(data["name"]), 201)

    def _get_content(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        path = match.group(1)
        if path not in self.files:
            return self._error(404, "Not Found")
        text = self.files[path].encode()
        large = len(text) > CONTENTS_LIMIT
        return self._ok(
            {
                **skeleton(models.ContentFile),
                "type": "file",
                "encoding": "none" if large else "base64",
                "path": path,
                "sha": self._blob_sha(path),
                "size": len(text),
                # GitHub wraps the base64 text at 60 characters.
                "content": "" if large else self._base64(text),
            }
        )

    @staticmethod
    def _base64(data: bytes) -> str:
        return "\n".join(re.findall(".{1,60}", base64.b64encode(data).decode()))

    @staticmethod
    def _blob_sha(path: str) -> str:
        return hashlib.sha1(path.encode()).hexdigest()  # noqa: S324 - a name, not security

    def _get_blob(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        found = [p for p in self.files if self._blob_sha(p) == match.group(1)]
        if not found:
            return self._error(404, "Not Found")
        text = self.files[found[0]].encode()
        return self._ok(
            {
                **skeleton(models.Blob),
                "sha": match.group(1),
                "size": len(text),
                "encoding": "base64",
                "content": self._base64(text),
            }
        )

    def _list_pulls(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        params = request.url.params
        state, head = params.get("state", "open"), params.get("head")
        found = [
            self._pull(i)
            for i in self.issues.values()
            if i.pull
            and state in ("all", i.state)
            and (head is None or head == f"{self.owner}:{i.pull.head_ref}")
        ]
        return self._page(request, found)

    def _create_pull(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)
        for issue in self.issues.values():
            if issue.pull and issue.state == "open" and issue.pull.head_ref == data["head"]:
                return self._error(422, "A pull request already exists for " + data["head"])
        issue = self.add_pull(data["head"], base_ref=data["base"], user=self.bot)
        issue.title, issue.body = data["title"], data.get("body", "")
        return self._ok(self._pull(issue), 201)

    def _get_pull(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        return self._ok(self._pull(self._issue_or_404(match)))

    def _update_pull(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        for key, value in json.loads(request.content).items():
            setattr(issue, key, value)
        return self._ok(self._pull(issue))

    def _merge(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        pull = issue.pull
        assert pull is not None
        data = json.loads(request.content or b"{}")
        if pull.merged or not pull.mergeable or issue.state != "open":
            return self._error(405, "Pull Request is not mergeable")
        if data.get("sha") not in (None, pull.head_sha):
            return self._error(409, "Head branch was modified. Review and try the merge again.")
        method = data.get("merge_method", "merge")
        if method not in self.merge_methods:
            return self._error(405, NOT_ALLOWED[method])
        pull.merged, pull.merge_commit_sha, issue.state = True, "m" * 40, "closed"
        return self._ok({"sha": pull.merge_commit_sha, "merged": True, "message": "merged"})

    def _request_reviewers(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        issue = self._issue_or_404(match)
        assert issue.pull is not None
        reviewers = json.loads(request.content).get("reviewers", [])
        if issue.user in reviewers:
            return self._error(422, "Review cannot be requested from pull request author.")
        issue.pull.reviewers.extend(reviewers)
        return self._ok(self._pull(issue), 201)

    def _list_check_runs(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        name, app_id = request.url.params.get("check_name"), request.url.params.get("app_id")
        runs = [
            self._check_run(run)
            for run in self.check_runs.values()
            if run.head_sha == match.group(1)
            and name in (None, run.name)
            and app_id in (None, str(run.app_id))
        ]
        return self._ok({"total_count": len(runs), "check_runs": runs})

    def _create_check_run(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        data = json.loads(request.content)
        run = FakeCheckRun(self._next_id(), data["name"], data["head_sha"], self.app_id)
        self.check_runs[run.id] = run
        self._apply_check_run(run, data)
        return self._ok(self._check_run(run), 201)

    def _update_check_run(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        run = self.check_runs[int(match.group(1))]
        self._apply_check_run(run, json.loads(request.content))
        return self._ok(self._check_run(run))

    def _list_annotations(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        run = self.check_runs[int(match.group(1))]
        page = int(request.url.params.get("page", "1"))
        per_page = int(request.url.params.get("per_page", "30"))
        listed = [
            {
                **skeleton(models.CheckAnnotation),
                "title": None,
                "raw_details": None,
                "start_column": None,
                "end_column": None,
                "blob_href": "",
                **a,
            }
            for a in run.annotations
        ]
        return self._ok(listed[(page - 1) * per_page : page * per_page])

    @staticmethod
    def _apply_check_run(run: FakeCheckRun, data: Json) -> None:
        annotations = data.get("output", {}).get("annotations", [])
        assert len(annotations) <= 50, "GitHub takes at most 50 annotations per request"
        assert len(data.get("actions", [])) <= 3, "GitHub takes at most 3 actions"
        run.status = data.get("status", run.status)
        run.conclusion = data.get("conclusion", run.conclusion)
        if "output" in data:
            run.title, run.summary = data["output"]["title"], data["output"]["summary"]
            run.annotations.extend(annotations)  # GitHub appends annotations
        run.actions = data.get("actions", run.actions)

    def _permission(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        role = self.roles.get(match.group(1))
        if role is None:
            return self._error(404, f"{match.group(1)} is not a user")
        legacy = {"maintain": "write", "triage": "read"}.get(role, role)
        return self._ok(
            {
                "permission": legacy,
                "role_name": role,
                "user": {**skeleton(models.Collaborator), "login": match.group(1)},
            }
        )

    def _installation_token(self, match: re.Match[str], request: httpx.Request) -> httpx.Response:
        if not request.headers.get("authorization", "").startswith("Bearer "):
            return self._error(401, "A JSON web token could not be decoded")
        installation = int(match.group(1))
        self.installation_tokens.append(installation)
        return self._ok(
            {
                **skeleton(models.InstallationToken),
                "token": f"ghs_fake{installation}",
                "expires_at": "2999-01-01T00:00:00Z",
                "permissions": {},
                "repository_selection": "selected",
            },
            201,
        )
