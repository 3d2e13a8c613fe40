"""Plays the humans: accounts, repositories and forks, pushes over real git, PRs, comments, labels,
approvals. Human actions go through the same REST endpoints the bot uses, with the user's
personal token; what GitHub does in its web UI goes through `/_sandbox/*`."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit, urlunsplit

import httpx

from bot.sandbox.api import DRIVER_HEADER

Json = dict[str, Any]
OPERATOR = "sandbox-admin"


class DriverError(Exception):
    """The sandbox refused a driver action; the message carries its answer."""


class Driver:
    def __init__(self, url: str, work_dir: Path, operator_token: str) -> None:
        self.url = url
        self.work_dir = work_dir
        self.operator_token = operator_token
        self.tokens: dict[str, str] = {OPERATOR: operator_token}
        self._http = httpx.Client(base_url=url, timeout=30, headers={DRIVER_HEADER: "humans"})

    def close(self) -> None:
        self._http.close()

    # plumbing

    def _call(self, method: str, path: str, as_user: str | None = None, **kwargs: Any) -> Any:
        headers = {"Accept": "application/vnd.github+json"}
        if as_user is not None:
            headers["Authorization"] = f"token {self.token(as_user)}"
        response = self._http.request(method, path, headers=headers, **kwargs)
        if response.status_code >= 400:
            raise DriverError(f"{method} {path} -> {response.status_code}: {response.text}")
        return response.json() if response.content else None

    def _api(self, method: str, path: str, as_user: str | None = None, **kwargs: Any) -> Any:
        return self._call(method, "/api/v3" + path, as_user or OPERATOR, **kwargs)

    def token(self, login: str) -> str:
        try:
            return self.tokens[login]
        except KeyError:
            raise DriverError(f"{login} is not a user this driver created") from None

    # accounts, repositories, the App

    def create_user(self, login: str) -> Json:
        user: Json = self._call("POST", "/_sandbox/accounts", json={"login": login})
        self.tokens[login] = user["token"]
        return user

    def create_org(self, login: str) -> Json:
        body = {"login": login, "type": "Organization"}
        org: Json = self._call("POST", "/_sandbox/accounts", json=body)
        return org

    def create_repo(
        self,
        full_name: str,
        source: Path | dict[str, str] | None = None,
        *,
        private: bool = False,
        author: str | None = None,
        default_branch: str = "main",
    ) -> Json:
        """A repository whose first commit on the default branch holds `source`'s files."""
        owner, name = full_name.split("/", 1)
        with tempfile.TemporaryDirectory() as scratch:
            source_dir = source if isinstance(source, Path) else Path(scratch)
            if isinstance(source, dict):
                _write_files(source_dir, source)
            body = {
                "owner": owner,
                "name": name,
                "private": private,
                "author": author,
                "default_branch": default_branch,
                "source_dir": str(source_dir.resolve()) if source is not None else None,
            }
            repo: Json = self._call("POST", "/_sandbox/repos", json=body)
        return repo

    def fork(self, full_name: str, *, as_user: str, organization: str | None = None) -> Json:
        """Fork `full_name` into `as_user`'s account (or `organization`), as `POST .../forks`
        does; push to the fork with `push(fork["full_name"], ..., as_user=...)` and open its
        pull request in the parent with `open_pr(full_name, "<owner>:<branch>", ...)`."""
        body = {} if organization is None else {"organization": organization}
        fork: Json = self._api("POST", f"/repos/{full_name}/forks", as_user, json=body)
        return fork

    def delete_repo(self, full_name: str, *, as_user: str) -> None:
        self._api("DELETE", f"/repos/{full_name}", as_user)

    def set_permission(self, full_name: str, login: str, permission: str) -> None:
        """Make `login` a collaborator with admin, write or read permission (or none)."""
        path = f"/_sandbox/repos/{full_name}/permissions/{login}"
        self._call("PUT", path, json={"permission": permission})

    def set_merge_methods(self, full_name: str, *methods: str) -> None:
        """Allow only `methods` ("merge", "squash", "rebase") on the merge button."""
        keys = {"merge": "allow_merge_commit", "squash": "allow_squash_merge"}
        keys["rebase"] = "allow_rebase_merge"
        body = {key: method in methods for method, key in keys.items()}
        self._call("PATCH", f"/_sandbox/repos/{full_name}/merge-settings", json=body)

    def protect_branch(
        self,
        full_name: str,
        branch: str,
        *,
        required_checks: Sequence[str] = (),
        required_approvals: int = 0,
    ) -> None:
        """Protect `branch`: pull requests into it merge only once the named check runs
        passed on their head and they have `required_approvals` approving reviews."""
        body = {"required_checks": list(required_checks), "required_approvals": required_approvals}
        self._call("PUT", f"/_sandbox/repos/{full_name}/branches/{branch}/protection", json=body)

    def unprotect_branch(self, full_name: str, branch: str) -> None:
        self._call("DELETE", f"/_sandbox/repos/{full_name}/branches/{branch}/protection")

    def install_app(self, owner: str, sender: str | None = None) -> int:
        """Install the App on `owner` (sends `installation.created`); the installation id."""
        body = {"owner": owner, "sender": sender}
        installation: Json = self._call("POST", "/_sandbox/installations", json=body)
        return int(installation["id"])

    def set_webhook(self, url: str | None, secret: str | None = None) -> None:
        body: Json = {"webhook_url": url}
        if secret is not None:
            body["webhook_secret"] = secret
        self._call("POST", "/_sandbox/app", json=body)

    # git

    def push(
        self,
        full_name: str,
        branch: str,
        files: Mapping[str, str | None],
        *,
        as_user: str,
        message: str = "Update files",
        base: str | None = None,
        force: bool = False,
    ) -> str:
        """Commit `files` (None deletes) on `branch` (new branches start at `base` or the
        default branch) and push it over smart HTTP as `as_user`; the new head sha."""
        clone = self._clone(full_name, as_user)
        self._git(clone, "fetch", "--quiet", "--prune", "origin")
        remote = self._git(clone, "branch", "--remotes", "--list", f"origin/{branch}").strip()
        start = (
            f"origin/{branch}"
            if remote and not force
            else f"origin/{base or self._default(full_name)}"
        )
        self._git(clone, "checkout", "--quiet", "-B", branch, start)
        _write_files(clone, files)
        self._git(clone, "add", "--all")
        self._git(clone, "commit", "--quiet", "--allow-empty", "-m", message, user=as_user)
        args = ["push", "--quiet", "origin", f"HEAD:refs/heads/{branch}"]
        self._git(clone, *args, *(["--force"] if force else []))
        return self._git(clone, "rev-parse", "HEAD").strip()

    def _default(self, full_name: str) -> str:
        return str(self.repo(full_name)["default_branch"])

    def remote_url(self, full_name: str, as_user: str) -> str:
        parts = urlsplit(self.url)
        netloc = f"{quote(as_user)}:{self.token(as_user)}@{parts.netloc}"
        return urlunsplit((parts.scheme, netloc, f"/{full_name}.git", "", ""))

    def _clone(self, full_name: str, as_user: str) -> Path:
        clone = self.work_dir / as_user / full_name
        if not (clone / ".git").exists():
            shutil.rmtree(clone, ignore_errors=True)
            clone.parent.mkdir(parents=True, exist_ok=True)
            url = self.remote_url(full_name, as_user)
            self._git(clone.parent, "clone", "--quiet", url, clone.name)
        return clone

    def _git(self, cwd: Path, *args: str, user: str | None = None) -> str:
        env = {**os.environ, "GIT_TERMINAL_PROMPT": "0", "GIT_CONFIG_NOSYSTEM": "1"}
        login = user or "sandbox-driver"
        email = f"{login}@users.noreply.sandbox"
        for role in ("AUTHOR", "COMMITTER"):
            env[f"GIT_{role}_NAME"], env[f"GIT_{role}_EMAIL"] = login, email
        result = subprocess.run(
            ["git", "-c", "credential.helper=", "-c", "init.defaultBranch=main", *args],
            cwd=cwd,
            env=env,
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise DriverError(f"git {args[0]} failed: {result.stderr.strip()}")
        return result.stdout

    # human actions through the REST API

    def open_pr(
        self,
        full_name: str,
        head: str,
        *,
        as_user: str,
        title: str = "A change",
        body: str = "",
        base: str | None = None,
        draft: bool = False,
    ) -> Json:
        payload: Json = {"title": title, "head": head, "base": base or self._default(full_name)}
        payload |= {"body": body, "draft": draft}
        pull: Json = self._api("POST", f"/repos/{full_name}/pulls", as_user, json=payload)
        return pull

    def comment(self, full_name: str, number: int, body: str, *, as_user: str) -> Json:
        path = f"/repos/{full_name}/issues/{number}/comments"
        comment: Json = self._api("POST", path, as_user, json={"body": body})
        return comment

    def add_label(self, full_name: str, number: int, label: str, *, as_user: str) -> None:
        path = f"/repos/{full_name}/issues/{number}/labels"
        self._api("POST", path, as_user, json={"labels": [label]})

    def remove_label(self, full_name: str, number: int, label: str, *, as_user: str) -> None:
        path = f"/repos/{full_name}/issues/{number}/labels/{quote(label)}"
        self._api("DELETE", path, as_user)

    def file_issue(
        self,
        full_name: str,
        title: str,
        body: str = "",
        *,
        as_user: str,
        labels: list[str] | None = None,
    ) -> Json:
        payload: Json = {"title": title, "body": body, "labels": labels or []}
        issue: Json = self._api("POST", f"/repos/{full_name}/issues", as_user, json=payload)
        return issue

    def set_issue_state(
        self, full_name: str, number: int, state: str, *, as_user: str, reason: str | None = None
    ) -> Json:
        payload: Json = {"state": state}
        if reason:
            payload["state_reason"] = reason
        issue: Json = self._api(
            "PATCH", f"/repos/{full_name}/issues/{number}", as_user, json=payload
        )
        return issue

    def edit_issue(self, full_name: str, number: int, *, as_user: str, **fields: Any) -> Json:
        """Change an issue's `title`, `body`, `labels`, `state` or `state_reason`."""
        path = f"/repos/{full_name}/issues/{number}"
        issue: Json = self._api("PATCH", path, as_user, json=fields)
        return issue

    def mark_ready(self, full_name: str, number: int, *, as_user: str) -> None:
        self._api("PATCH", f"/repos/{full_name}/pulls/{number}", as_user, json={"draft": False})

    def approve(self, full_name: str, number: int, *, as_user: str, body: str = "") -> Json:
        path = f"/repos/{full_name}/pulls/{number}/reviews"
        review: Json = self._api("POST", path, as_user, json={"event": "APPROVE", "body": body})
        return review

    def merge(self, full_name: str, number: int, *, as_user: str, method: str = "merge") -> str:
        path = f"/repos/{full_name}/pulls/{number}/merge"
        result = self._api("PUT", path, as_user, json={"merge_method": method})
        return str(result["sha"])

    def delete_branch(self, full_name: str, branch: str, *, as_user: str) -> None:
        """What GitHub's "Delete branch" button does after a merge (`DELETE .../git/refs`)."""
        self._api("DELETE", f"/repos/{full_name}/git/refs/heads/{branch}", as_user)

    def rerequest_check_run(self, full_name: str, check_run_id: int, *, as_user: str) -> None:
        self._api("POST", f"/repos/{full_name}/check-runs/{check_run_id}/rerequest", as_user)

    def press_check_action(
        self, full_name: str, check_run_id: int, identifier: str, *, as_user: str
    ) -> None:
        """Click a check run's action button (sends `check_run.requested_action`)."""
        path = f"/_sandbox/repos/{full_name}/check-runs/{check_run_id}/requested-action"
        self._call("POST", path, json={"identifier": identifier, "user": as_user})

    # reading state (as the sandbox operator, who can read everything)

    def repo(self, full_name: str) -> Json:
        repo: Json = self._api("GET", f"/repos/{full_name}")
        return repo

    def issues(self, full_name: str, state: str = "all", **filters: str) -> list[Json]:
        params = {"state": state, "per_page": "100", **filters}
        return self._all(f"/repos/{full_name}/issues", params)

    def issue(self, full_name: str, number: int) -> Json:
        issue: Json = self._api("GET", f"/repos/{full_name}/issues/{number}")
        return issue

    def pulls(self, full_name: str, state: str = "all") -> list[Json]:
        return self._all(f"/repos/{full_name}/pulls", {"state": state, "per_page": "100"})

    def pull(self, full_name: str, number: int) -> Json:
        pull: Json = self._api("GET", f"/repos/{full_name}/pulls/{number}")
        return pull

    def comments(self, full_name: str, number: int) -> list[Json]:
        return self._all(f"/repos/{full_name}/issues/{number}/comments", {"per_page": "100"})

    def check_runs(self, full_name: str, ref: str) -> list[Json]:
        data = self._api("GET", f"/repos/{full_name}/commits/{ref}/check-runs")
        return list(data["check_runs"])

    def annotations(self, full_name: str, check_run_id: int) -> list[Json]:
        return self._all(
            f"/repos/{full_name}/check-runs/{check_run_id}/annotations", {"per_page": "100"}
        )

    def requests(self, since: int = 0) -> list[Json]:
        """The bot's API requests so far: method, route template, status, principal kind."""
        return list(self._call("GET", f"/_sandbox/requests?since={since}"))

    def deliveries(self) -> list[Json]:
        return list(self._call("GET", "/_sandbox/deliveries"))

    def _all(self, path: str, params: dict[str, str]) -> list[Json]:
        items: list[Json] = []
        page = 1
        while True:
            chunk = self._api("GET", path, params={**params, "page": str(page)})
            items.extend(chunk)
            if len(chunk) < int(params.get("per_page", "30")):
                return items
            page += 1

    # faults and time

    def set_faults(self, **settings: Any) -> Json:
        """Replace the fault settings (see `FaultSettings`); returns settings and counters."""
        result: Json = self._call("POST", "/_sandbox/faults", json=settings)
        return result

    def fault_stats(self) -> Json:
        result: Json = self._call("GET", "/_sandbox/faults")
        return result

    def advance_clock(self, seconds: float) -> None:
        self._call("POST", "/_sandbox/clock", json={"advance_s": seconds})


def _write_files(root: Path, files: Mapping[str, str | None]) -> None:
    for relative, content in files.items():
        target = root / relative
        if content is None:
            target.unlink(missing_ok=True)
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(content)
