"""Git over smart HTTP: `git http-backend` as a CGI subprocess, token-authenticated.

Fetches stream both ways. A push's (small) answer is held back until the branch heads have
been compared, so when `git push` returns, pull requests are updated and webhooks queued.
A push to a protected branch is refused by a pre-receive hook, as GitHub refuses it (GH006).
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import json
import logging
import os
import sys
from collections.abc import AsyncIterator
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse
from starlette.routing import Route

from bot.sandbox import gitops, pushes
from bot.sandbox.api import principal_for_token
from bot.sandbox.errors import ApiError
from bot.sandbox.hub import Hub, Principal
from bot.sandbox.rest_pulls import PASSED, required_check_message, required_reviews_message
from bot.sandbox.state import Repo

log = logging.getLogger(__name__)

CHALLENGE = {"WWW-Authenticate": 'Basic realm="GitHub"'}

# The pre-receive hook: refuses an update of a branch named in $SANDBOX_PROTECTED (JSON:
# branch -> GitHub's reason lines, the commits its required checks passed on, whether a
# review is required); a push of a commit whose required checks all passed goes through
# when no review is required. git
# prints "(pre-receive hook declined)" where GitHub's git says "(protected branch hook
# declined)"; the "remote: error: GH006" lines are GitHub's.
PRE_RECEIVE = """\
import json, os, sys
protected = json.loads(os.environ.get("SANDBOX_PROTECTED") or "{}")
refused = False
for line in sys.stdin:
    old, new, ref = line.split()
    rule = protected.get(ref.removeprefix("refs/heads/")) if ref.startswith("refs/heads/") else None
    if rule is None or (new in rule["passed"] and not rule["reviews"]):
        continue
    refused = True
    print(f"error: GH006: Protected branch update failed for {ref}.", file=sys.stderr)
    for reason in rule["reasons"]:
        print(f"error: {reason}", file=sys.stderr)
sys.exit(1 if refused else 0)
"""


def _principal(hub: Hub, request: Request) -> Principal | None:
    scheme, _, encoded = request.headers.get("authorization", "").partition(" ")
    if scheme.lower() != "basic":
        return None
    try:
        _, _, secret = base64.b64decode(encoded).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        return None
    try:
        return principal_for_token(hub, secret)
    except ApiError:
        return None


def routes(hub: Hub) -> list[Route]:
    async def serve(request: Request) -> Response:
        return await _serve(hub, request)

    return [Route("/{owner}/{repo}.git/{rest:path}", serve, methods=["GET", "POST"])]


async def _serve(hub: Hub, request: Request) -> Response:
    owner, name = request.path_params["owner"], request.path_params["repo"]
    rest = request.path_params["rest"]
    pushing = "git-receive-pack" in (rest, request.query_params.get("service"))
    who = _principal(hub, request)
    if who is None:
        return Response("Authentication required\n", 401, headers=CHALLENGE)
    try:
        repo = hub.repo(owner, name, who, "write" if pushing else "read")
    except ApiError as error:
        if error.status == 403:
            return Response("Write access to repository not granted.\n", 403)
        return Response("Repository not found.\n", 404)
    # A branch protection rule binds everyone but the repository's admins, unless it says
    # "Do not allow bypassing the above settings" (docs.github.com, "About protected
    # branches"); the sandbox's rules leave that off. An App's token is never an admin.
    guarded = pushing and (
        who.token is not None or hub.store.permission(repo, who.account) != "admin"
    )
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "GIT_PROJECT_ROOT": str(hub.store.repos_dir),
        "GIT_HTTP_EXPORT_ALL": "1",
        "PATH_INFO": f"/{hub.store.full_name(repo)}.git/{rest}",
        "REQUEST_METHOD": request.method,
        "QUERY_STRING": request.url.query,
        "CONTENT_TYPE": request.headers.get("content-type", ""),
        "REMOTE_USER": who.account.login,
        "REMOTE_ADDR": request.client.host if request.client else "127.0.0.1",
        "GIT_CONFIG_COUNT": "3",
        "GIT_CONFIG_KEY_0": "http.receivepack",
        "GIT_CONFIG_VALUE_0": "true",
        # As on GitHub, `refs/pull/*` can be fetched but not pushed: GitHub keeps them.
        "GIT_CONFIG_KEY_1": "receive.hideRefs",
        "GIT_CONFIG_VALUE_1": "refs/pull",
        "GIT_CONFIG_KEY_2": "core.hooksPath",
        "GIT_CONFIG_VALUE_2": str(_hooks_dir(hub)),
        "SANDBOX_PROTECTED": json.dumps(protected_branches(repo)) if guarded else "{}",
    }
    for header in ("content-encoding", "git-protocol", "content-length"):
        if value := request.headers.get(header):
            key = (
                "CONTENT_LENGTH"
                if header == "content-length"
                else "HTTP_" + header.upper().replace("-", "_")
            )
            env[key] = value
    before = gitops.branch_heads(repo.path) if pushing else {}
    process = await asyncio.create_subprocess_exec(
        "git",
        "http-backend",
        stdin=asyncio.subprocess.PIPE,
        stdout=asyncio.subprocess.PIPE,
        stderr=asyncio.subprocess.PIPE,
        env=env,
    )
    assert process.stdin and process.stdout and process.stderr
    feeder = asyncio.create_task(_feed(request, process.stdin))
    errors = asyncio.create_task(process.stderr.read())
    status, headers = await _cgi_headers(process.stdout)
    if pushing and request.method == "POST":
        answer = await process.stdout.read()
        await _finish(process, feeder, errors)
        after = gitops.branch_heads(repo.path)
        pushes.branches_moved(hub, repo, before, after, who.account)
        return Response(answer, status, headers=headers)

    async def body() -> AsyncIterator[bytes]:
        assert process.stdout
        try:
            while chunk := await process.stdout.read(65536):
                yield chunk
        finally:
            if not process.stdout.at_eof():  # the client went away mid-stream
                process.kill()
            await _finish(process, feeder, errors)

    return StreamingResponse(body(), status, headers=headers)


def protected_branches(repo: Repo) -> dict[str, dict[str, object]]:
    """For the pre-receive hook: each branch whose protection refuses direct pushes (it
    requires checks or reviews), with GitHub's reasons and the commits on which every
    required check passed (a push of one of those is let through when no review is
    required, as GitHub lets a tested commit through)."""
    rules: dict[str, dict[str, object]] = {}
    for branch, rule in repo.protection.items():
        if not rule.required_checks and not rule.required_approvals:
            continue
        reasons = [required_check_message(name) for name in rule.required_checks]
        if rule.required_approvals:
            reasons.append(required_reviews_message(rule.required_approvals))
        passed_by_sha: dict[str, set[str]] = {}
        for run in repo.check_runs.values():
            if run.conclusion in PASSED:
                passed_by_sha.setdefault(run.head_sha, set()).add(run.name)
        passed = [sha for sha, names in passed_by_sha.items() if names >= set(rule.required_checks)]
        rules[branch] = {
            "reasons": reasons,
            "passed": passed if rule.required_checks else [],
            "reviews": rule.required_approvals > 0,
        }
    return rules


def _hooks_dir(hub: Hub) -> Path:
    """The sandbox's git hooks (written on first use): the protected-branch pre-receive."""
    hooks = hub.store.data_dir / "git-hooks"
    hook = hooks / "pre-receive"
    if not hook.exists():
        hooks.mkdir(parents=True, exist_ok=True)
        partial = hooks / "pre-receive.partial"
        partial.write_text(f"#!{sys.executable}\n{PRE_RECEIVE}")
        partial.chmod(0o755)
        partial.rename(hook)  # whole or absent, for a push running at the same moment
    return hooks


async def _feed(request: Request, stdin: asyncio.StreamWriter) -> None:
    # git may stop reading early (upload-pack has all it needs); under uvloop, writing to the
    # closed pipe raises RuntimeError instead of BrokenPipeError.
    try:
        async for chunk in request.stream():
            if stdin.is_closing():
                break
            stdin.write(chunk)
            await stdin.drain()
    except (BrokenPipeError, ConnectionResetError, RuntimeError):
        pass
    finally:
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            stdin.close()


async def _cgi_headers(stdout: asyncio.StreamReader) -> tuple[int, dict[str, str]]:
    status, headers = 200, {}
    while line := (await stdout.readline()).rstrip(b"\r\n"):
        key, _, value = line.decode("latin-1").partition(":")
        if key.lower() == "status":
            status = int(value.strip().split()[0])
        else:
            headers[key.strip()] = value.strip()
    return status, headers


async def _finish(
    process: asyncio.subprocess.Process, feeder: asyncio.Task[None], errors: asyncio.Task[bytes]
) -> None:
    await feeder
    stderr = await errors
    code = await process.wait()
    if code != 0 or stderr.strip():
        log.warning("git http-backend exited %s: %s", code, stderr.decode(errors="replace").strip())
