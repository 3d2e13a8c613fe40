"""The bot's GitHub operations on one repository; every create of a thing the bot owns is
preceded by a lookup (hidden marker, head branch, check-run name), so repeating one is safe,
unless the thing cannot exist yet: a check run, or a marked comment, that the bot never began
to make (`bot.github.intents`) on a pull request made since it records what it begins.

A create that fails without an answer GitHub gave (a 5xx, a timeout, a dropped connection)
may still have been made: it is retried, through tenacity, only after the same lookup found
nothing. So a create is retryable by construction and never makes a duplicate.
"""

import asyncio
import base64
import hashlib
import json
import logging
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from datetime import datetime
from typing import Any, TypeVar
from urllib.parse import quote

from githubkit import GitHub
from githubkit.exception import RequestFailed
from githubkit.rest import Paginator
from githubkit.utils import UNSET
from githubkit_schemas.latest.models import (
    CheckRun,
    ContentFile,
    Issue,
    IssueComment,
    Label,
    PullRequestSimple,
)
from tenacity import (
    AsyncRetrying,
    RetryCallState,
    before_sleep_log,
    retry_if_exception,
    stop_after_attempt,
    wait_chain,
    wait_exponential_jitter,
    wait_none,
)
from tenacity.wait import wait_base

from bot.github.intents import Intents
from bot.github.markers import parse_marker, with_marker
from bot.github.memo import Memo
from bot.github.records import (
    CheckConclusion,
    CheckStatus,
    CommentInfo,
    IssueInfo,
    IssueState,
    ListState,
    MergeMethod,
    MergeResult,
    PullInfo,
    RepoInfo,
    StateReason,
    can_write,
    cap_text,
    check_actions,
    check_run_bodies,
    comment_info,
    issue_info,
    merge_refusal,
    pull_info,
    repo_info,
)
from bot.github.retry import transient

__all__ = ["RepoAPI", "can_write", "transient"]

log = logging.getLogger(__name__)

PER_PAGE = 100
PERMISSIONS = ("admin", "maintain", "write", "triage", "read")
CREATE_ATTEMPTS = 5
# The first retry comes at once (after a lost answer the lookup finds the object), then back off.
CREATE_WAIT: wait_base = wait_chain(wait_none(), wait_exponential_jitter(multiplier=1, max=8))
Sleep = Callable[[float], Awaitable[None]]
T = TypeVar("T")


def _status(exc: RequestFailed) -> int:
    return exc.response.status_code


def _error(exc: RequestFailed) -> dict[str, Any]:
    """GitHub's error document: {"message": ..., "errors": [...]}."""
    try:
        data = exc.response.raw_response.json()
    except ValueError:
        return {"message": exc.response.raw_response.text}
    return data if isinstance(data, dict) else {"message": str(data)}


def _message(exc: RequestFailed) -> str:
    return str(_error(exc).get("message", ""))


def _already_exists(exc: RequestFailed) -> bool:
    errors = _error(exc).get("errors") or []
    return any(isinstance(e, dict) and e.get("code") == "already_exists" for e in errors)


class RepoAPI:
    """GitHub operations for the repository `full_name` ("owner/name").

    `app_id` (when known) narrows check-run lookups to this App's runs; `bot_login` narrows
    marker lookups on comments to the bot's own comments, so a pasted marker cannot take over.
    """

    def __init__(
        self,
        gh: GitHub[Any],
        full_name: str,
        *,
        app_id: int | None = None,
        bot_login: str | None = None,
        sleep: Sleep = asyncio.sleep,
        create_wait: wait_base = CREATE_WAIT,
        memo: Memo | None = None,
        intents: Intents | None = None,
    ) -> None:
        owner, sep, name = full_name.partition("/")
        if not sep or not owner or not name or "/" in name:
            raise ValueError(f"expected 'owner/name', got {full_name!r}")
        self.gh = gh
        self.full_name = full_name
        self.owner = owner
        self.name = name
        self.app_id = app_id
        self.bot_login = bot_login
        self.sleep = sleep
        self.create_wait = create_wait
        self.memo = memo  # where the ids of the bot's marked comments are kept
        self.intents = intents  # the creates of its check runs and marked comments begun

    async def _claim(self, key: str, born: datetime | None) -> tuple[bool, int | None]:
        """Whether the bot's object `key` may exist already (look it up before making it),
        and its id when a create of it was answered. Records the intent to make it first,
        committed before any POST. A new intent on a subject `born` (made on GitHub) after
        the intents' horizon: no create was ever begun, so the object cannot exist."""
        if self.intents is None:
            return True, None
        claim = await self.intents.claim(key)
        if not claim.fresh:
            return True, claim.object_id
        return born is None or born <= await self.intents.horizon(), None

    async def _made(self, key: str, object_id: int) -> None:
        """Remember that the bot's object `key` is `object_id` (made, or found)."""
        if self.intents is not None:
            await self.intents.made(key, object_id)

    async def _create(
        self, what: str, create: Callable[[], Awaitable[T]], find: Callable[[], Awaitable[T | None]]
    ) -> T:
        """`create()`; after a transient failure, what `find()` finds, else `create()` again."""

        async def attempt_once(state: RetryCallState) -> T:
            if state.attempt_number > 1:
                found = await find()
                if found is not None:
                    log.info("%s: %s was made, its answer lost", self.full_name, what)
                    return found
            return await create()

        retrying = AsyncRetrying(
            stop=stop_after_attempt(CREATE_ATTEMPTS),
            retry=retry_if_exception(transient),
            wait=self.create_wait,
            sleep=self.sleep,
            before_sleep=before_sleep_log(log, logging.WARNING),
            reraise=True,
        )
        async for attempt in retrying:
            with attempt:
                return await attempt_once(attempt.retry_state)
        raise AssertionError("unreachable: tenacity stops by raising")

    async def _repeat(self, what: str, call: Callable[[], Awaitable[T]]) -> T:
        """`call()`, retried after transient failures: for writes that are safe to repeat."""
        return await self._create(what, call, _nothing)

    # repository

    async def get_repo(self) -> RepoInfo:
        resp = await self.gh.rest.repos.async_get(self.owner, self.name)
        return repo_info(resp.parsed_data)

    async def permission(self, user: str) -> str:
        """The user's role on the repository; "none" for a stranger."""
        try:
            resp = await self.gh.rest.repos.async_get_collaborator_permission_level(
                self.owner, self.name, user
            )
        except RequestFailed as exc:
            if _status(exc) == 404:
                return "none"
            raise
        data = resp.parsed_data
        # role_name knows maintain/triage; the legacy `permission` folds them into write/read.
        return data.role_name if data.role_name in PERMISSIONS else data.permission

    async def read_file(self, path: str, ref: str | None = None) -> str | None:
        """The text of a file, or None when it (or the ref) does not exist or is no file."""
        try:
            resp = await self.gh.rest.repos.async_get_content(
                self.owner, self.name, quote(path.lstrip("/")), ref=ref if ref else UNSET
            )
        except RequestFailed as exc:
            if _status(exc) == 404:
                return None
            raise
        content = resp.parsed_data
        if not isinstance(content, ContentFile):
            return None  # a directory, symlink or submodule
        encoding, data = content.encoding, content.content
        if encoding == "none":
            # Over 1 MB the contents API sends no content: the blob API has it (to 100 MB).
            blob = await self.gh.rest.git.async_get_blob(self.owner, self.name, content.sha)
            encoding, data = blob.parsed_data.encoding, blob.parsed_data.content
        if encoding == "utf-8":
            return data
        if encoding != "base64":
            raise ValueError(f"{path}: unsupported content encoding {encoding!r}")
        return base64.b64decode(data).decode("utf-8", errors="replace")

    async def read_org_file(self, path: str) -> str | None:
        """The text of `path` in the owner's `.github` repository, at its default branch, as
        GitHub reads community files; None when that repository or file does not exist or is
        not visible to the installation."""
        if self.name == ".github":
            return None
        org = RepoAPI(
            self.gh,
            f"{self.owner}/.github",
            app_id=self.app_id,
            bot_login=self.bot_login,
            sleep=self.sleep,
            create_wait=self.create_wait,
        )
        try:
            return await org.read_file(path)  # no ref: the contents API reads the default branch
        except RequestFailed as exc:
            if _status(exc) not in (403, 404):
                raise
            return None

    # pull requests

    async def get_pull(self, number: int) -> PullInfo:
        resp = await self.gh.rest.pulls.async_get(self.owner, self.name, number)
        return pull_info(resp.parsed_data, resp.json())

    async def list_pulls(
        self, state: ListState = "open", head: str | None = None, base: str | None = None
    ) -> list[PullInfo]:
        """All pull requests in `state`; `head` as "owner:branch"."""
        pages: Paginator[PullRequestSimple] = self.gh.rest.paginate(
            self.gh.rest.pulls.async_list,
            owner=self.owner,
            repo=self.name,
            state=state,
            head=head or UNSET,
            base=base or UNSET,
            per_page=PER_PAGE,
        )
        return [pull_info(pull) async for pull in pages]

    async def create_pull(
        self,
        title: str,
        body: str,
        head: str,
        base: str,
        marker: Mapping[str, Any],
        *,
        look_first: bool = True,
    ) -> PullInfo:
        """The open PR from branch `head` (updated to `title`/`body`), or a new one.
        `look_first=False` when the caller made `head` itself: GitHub refuses a second open
        PR from one head (422), which is then looked up, so the lookup can wait for that."""
        full_body = cap_text(with_marker(marker, body))
        existing = await self._open_pull_from(head) if look_first else None
        if existing is None:

            async def create() -> PullInfo:
                resp = await self.gh.rest.pulls.async_create(
                    self.owner, self.name, title=title, body=full_body, head=head, base=base
                )
                return pull_info(resp.parsed_data, resp.json())

            try:
                return await self._create(
                    f"pull request from {head}", create, lambda: self._open_pull_from(head)
                )
            except RequestFailed as exc:
                # 422 "A pull request already exists": a concurrent run won the race.
                existing = await self._open_pull_from(head) if _status(exc) == 422 else None
                if existing is None:
                    raise
        if existing.title == title and existing.body == full_body:
            return existing
        resp2 = await self.gh.rest.pulls.async_update(
            self.owner, self.name, existing.number, title=title, body=full_body
        )
        return pull_info(resp2.parsed_data, resp2.json())

    async def _open_pull_from(self, head: str) -> PullInfo | None:
        qualified = head if ":" in head else f"{self.owner}:{head}"
        pulls = await self.list_pulls(state="open", head=qualified)
        return pulls[0] if pulls else None

    async def merge_pull(
        self,
        number: int,
        sha: str | None,
        method: MergeMethod = "merge",
        title: str | None = None,
    ) -> MergeResult:
        """Merge, expecting head `sha`. Refusals are results (a 405 says why in `refusal`);
        an already merged PR is merged."""
        try:
            resp = await self.gh.rest.pulls.async_merge(
                self.owner,
                self.name,
                number,
                sha=sha or UNSET,
                merge_method=method,
                commit_title=title or UNSET,
            )
        except RequestFailed as exc:
            status = _status(exc)
            if status == 409:  # the head moved since `sha`, or GitHub has not caught up yet
                return MergeResult(False, None, False, _message(exc), head_moved=True)
            if status != 405:
                raise
            message = _message(exc)
            refusal = merge_refusal(message)
            if refusal == "checks":
                # GitHub weighs required checks only on an open, unmerged pull request (a
                # merged or closed one is "not mergeable"): no read needed to tell.
                return MergeResult(False, None, False, message, refusal=refusal)
            pull = await self.get_pull(number)
            if pull.merged:
                return MergeResult(True, pull.merge_commit_sha, False, "already merged")
            if pull.state != "open":
                return MergeResult(False, None, False, "the pull request is closed", closed=True)
            return MergeResult(False, None, refusal == "conflict", message, refusal=refusal)
        result = resp.parsed_data
        return MergeResult(result.merged, result.sha, conflict=False, message=result.message)

    async def close_pull(self, number: int) -> None:
        """Close a pull request without merging it (closing a closed one changes nothing)."""
        await self.gh.rest.pulls.async_update(self.owner, self.name, number, state="closed")

    async def close_open_pull(
        self,
        number: int,
        marker: Mapping[str, Any],
        why: str,
        before_writes: Callable[[], Awaitable[None]],
    ) -> bool:
        """Close pull request `number` if it is still open, after the bot's one comment
        carrying `marker` says `why`; `before_writes` (a lease check) runs first. True when
        it was open (and is closed now)."""
        if (await self.get_pull(number)).state != "open":
            return False
        await before_writes()
        await self.upsert_comment(number, marker, why)
        await self.close_pull(number)
        return True

    async def request_reviewers(
        self, number: int, reviewers: Sequence[str], team_reviewers: Sequence[str] = ()
    ) -> None:
        if not reviewers and not team_reviewers:
            return
        try:
            await self.gh.rest.pulls.async_request_reviewers(
                self.owner,
                self.name,
                number,
                reviewers=list(reviewers),
                team_reviewers=list(team_reviewers),
            )
        except RequestFailed as exc:
            if _status(exc) != 422:
                raise
            # e.g. the PR's author cannot review their own PR: nothing to retry.
            log.warning("%s#%d: reviewers not requested: %s", self.full_name, number, _message(exc))

    # issues

    async def get_issue(self, number: int) -> IssueInfo:
        resp = await self.gh.rest.issues.async_get(self.owner, self.name, number)
        return issue_info(resp.parsed_data)

    async def find_issue(self, number: int) -> IssueInfo | None:
        """The issue (or pull request) `number`; None when there is none (404) or it was
        deleted (410)."""
        try:
            return await self.get_issue(number)
        except RequestFailed as exc:
            if _status(exc) in (404, 410):
                return None
            raise

    async def list_issues(
        self, labels: Sequence[str] = (), state: ListState = "all"
    ) -> list[IssueInfo]:
        """All issues carrying every label in `labels`, in `state`; pull requests left out."""
        return [issue async for issue in self._iter_issues(labels, state)]

    async def _iter_issues(
        self, labels: Sequence[str], state: ListState
    ) -> AsyncIterator[IssueInfo]:
        pages: Paginator[Issue] = self.gh.rest.paginate(
            self.gh.rest.issues.async_list_for_repo,
            owner=self.owner,
            repo=self.name,
            labels=",".join(labels) or UNSET,
            state=state,
            per_page=PER_PAGE,
        )
        async for raw in pages:
            issue = issue_info(raw)
            if not issue.is_pull:
                yield issue

    async def issues_among(
        self, numbers: Sequence[int], labels: Sequence[str] = ()
    ) -> dict[int, IssueInfo]:
        """Those of issues `numbers` the first page of the `labels` listing (any state, newest
        first) holds: one request for a batch of recent issues, however many; the reconcile
        lists the same, so an unchanged listing is a 304."""
        wanted, found = set(numbers), {}
        seen = 0
        async for issue in self._iter_issues(labels, "all"):
            if issue.number in wanted:
                found[issue.number] = issue
            seen += 1
            if len(found) == len(wanted) or seen >= PER_PAGE:
                break
        return found

    async def find_issue_by_marker(
        self, labels: Sequence[str], key: str, value: object
    ) -> IssueInfo | None:
        """The first issue (any state) whose hidden marker has `marker[key] == value`."""
        async for issue in self._iter_issues(labels, "all"):
            marker = parse_marker(issue.body)
            if marker is not None and key in marker and marker[key] == value:
                return issue
        return None

    async def create_issue(self, title: str, body: str, labels: Sequence[str]) -> IssueInfo:
        """A new issue: look for it (`find_issue_by_marker`) before. When `body` carries a
        marker, a create whose answer was lost is looked up by it before it is sent again;
        without one, it is not sent again."""
        body = cap_text(body)
        marker = parse_marker(body)

        async def create() -> IssueInfo:
            resp = await self.gh.rest.issues.async_create(
                self.owner, self.name, title=title, body=body, labels=[*labels]
            )
            return issue_info(resp.parsed_data)

        if marker is None:
            return await self._no_comments_yet(await create())

        async def find() -> IssueInfo | None:
            async for issue in self._iter_issues(labels, "all"):
                if parse_marker(issue.body) == marker:
                    return issue
            return None

        return await self._no_comments_yet(await self._create(f"issue {title!r}", create, find))

    async def _no_comments_yet(self, issue: IssueInfo) -> IssueInfo:
        """A new issue has none of the bot's comments yet (a create whose answer was lost is
        found at once, before the bot could comment): its first marked one needs no lookup."""
        await self._remember_listing(issue.number, {})
        return issue

    async def update_issue(
        self,
        number: int,
        *,
        title: str | None = None,
        body: str | None = None,
        state: IssueState | None = None,
        state_reason: StateReason | None = None,
        labels: Sequence[str] | None = None,
    ) -> IssueInfo:
        """Change only the fields given."""
        resp = await self.gh.rest.issues.async_update(
            self.owner,
            self.name,
            number,
            title=UNSET if title is None else title,
            body=UNSET if body is None else cap_text(body),
            state=UNSET if state is None else state,
            state_reason=UNSET if state_reason is None else state_reason,
            labels=UNSET if labels is None else [*labels],
        )
        return issue_info(resp.parsed_data)

    # comments

    async def comment(self, number: int, body: str) -> int:
        """A new comment. When `body` carries a marker, a create whose answer was lost is
        looked up by it (among the bot's comments) before it is sent again; without one, it
        is not sent again. Look for a marked comment first: `upsert_comment`."""
        body = cap_text(body)
        marker = parse_marker(body)

        async def create() -> int:
            resp = await self.gh.rest.issues.async_create_comment(
                self.owner, self.name, number, body=body
            )
            return resp.parsed_data.id

        if marker is None:
            return await create()

        async def find() -> int | None:
            found = await self._find_comment(number, marker)
            return None if found is None else found.id

        return await self._create(f"comment on #{number}", create, find)

    async def _find_comment(self, number: int, marker: Mapping[str, Any]) -> CommentInfo | None:
        """The bot's comment on `number` whose marker is exactly `marker`."""
        for existing in await self.list_comments(number):
            if self.bot_login and existing.user_login != self.bot_login:
                continue
            if parse_marker(existing.body) == dict(marker):
                return existing
        return None

    async def list_comments(self, number: int) -> list[CommentInfo]:
        pages: Paginator[IssueComment] = self.gh.rest.paginate(
            self.gh.rest.issues.async_list_comments,
            owner=self.owner,
            repo=self.name,
            issue_number=number,
            per_page=PER_PAGE,
        )
        return [comment_info(c) async for c in pages]

    async def upsert_comment(
        self,
        number: int,
        marker: Mapping[str, Any],
        body_without_marker: str,
        *,
        born: datetime | None = None,
    ) -> int:
        """The bot's one comment carrying exactly `marker`: created once, edited when its text
        changes (replies to different comments carry different markers). `born`: when issue
        `number` was made on GitHub; on one made since the bot records what it begins, a
        marker it never began to post is posted without listing the comments first."""
        body = cap_text(with_marker(marker, body_without_marker))
        key = f"comment:{self.full_name}#{number}:{json.dumps(marker, sort_keys=True)}"
        digest = hashlib.sha256(body.encode()).hexdigest()
        kept = await self.memo.get(key) if self.memo is not None else None
        gone = None
        if kept is not None:
            # Known from an earlier upsert: unchanged costs no request, a change one PATCH.
            if kept["digest"] == digest:
                return int(kept["id"])
            if await self._edit_comment(int(kept["id"]), body):
                await self._remember_comment(key, int(kept["id"]), digest)
                return int(kept["id"])
            gone = int(kept["id"])  # deleted by a person
        may_exist, known = await self._claim(key, born)
        if known is not None and known != gone and await self._edit_comment(known, body):
            await self._remember_comment(key, known, digest)
            return known
        # One the intents know but that is gone is looked up too: a crash may have come
        # between the post that made it again and its record.
        found = await self._find_comment_once(number, marker) if may_exist else None
        if found is not None:
            comment_id, found_digest = found
            if found_digest == digest or await self._edit_comment(comment_id, body):
                await self._remember_comment(key, comment_id, digest)
                await self._made(key, comment_id)
                return comment_id
        # The remembered listing is dropped while the comment is posted: a crash before it is
        # listed again with the new comment leaves no listing that says "not there".
        listing = f"comments-listed:{self.full_name}#{number}"
        listed = await self.memo.take(listing) if self.memo is not None else None
        comment_id = await self.comment(number, body)
        await self._made(key, comment_id)
        await self._remember_comment(key, comment_id, digest)
        if listed is not None:
            markers = {m: (int(v[0]), str(v[1])) for m, v in listed["markers"].items()}
            markers[json.dumps(dict(marker), sort_keys=True)] = (comment_id, digest)
            await self._remember_listing(number, markers)
        return comment_id

    async def _find_comment_once(
        self, number: int, marker: Mapping[str, Any]
    ) -> tuple[int, str] | None:
        """The id and text digest of the bot's comment on `number` carrying `marker`. The
        comments are listed once: the listing (every marked comment of the bot's, in one row)
        is remembered, so another marker's lookup on the same issue needs no request; the
        comments the bot makes later are remembered as they are made, for longer than it."""
        want = json.dumps(dict(marker), sort_keys=True)
        if self.memo is not None:
            listed = await self.memo.get(f"comments-listed:{self.full_name}#{number}")
            if listed is not None:
                kept = listed["markers"].get(want)
                return None if kept is None else (int(kept[0]), str(kept[1]))
        markers: dict[str, tuple[int, str]] = {}
        for existing in await self.list_comments(number):
            if self.bot_login and existing.user_login != self.bot_login:
                continue
            theirs = parse_marker(existing.body)
            if theirs is not None:
                digest = hashlib.sha256(existing.body.encode()).hexdigest()
                markers.setdefault(json.dumps(theirs, sort_keys=True), (existing.id, digest))
        await self._remember_listing(number, markers)
        return markers.get(want)

    async def _remember_listing(self, number: int, markers: dict[str, tuple[int, str]]) -> None:
        if self.memo is not None:
            key = f"comments-listed:{self.full_name}#{number}"
            await self.memo.put(key, {"markers": {m: list(v) for m, v in markers.items()}})

    async def _edit_comment(self, comment_id: int, body: str) -> bool:
        """Edit the bot's comment; False when it is gone (deleted by a person)."""
        try:
            await self.gh.rest.issues.async_update_comment(
                self.owner, self.name, comment_id, body=body
            )
        except RequestFailed as exc:
            if _status(exc) != 404:
                raise
            return False
        return True

    async def _remember_comment(self, key: str, comment_id: int, digest: str) -> None:
        if self.memo is not None:
            await self.memo.put(key, {"id": comment_id, "digest": digest})

    # labels

    async def add_labels(self, number: int, labels: Sequence[str]) -> None:
        """Add `labels` (adding one that is there changes nothing, so this is retried)."""
        if labels:

            async def add() -> None:
                await self.gh.rest.issues.async_add_labels(
                    self.owner, self.name, number, labels=[*labels]
                )

            await self._repeat(f"labels on #{number}", add)

    async def remove_label(self, number: int, label: str) -> None:
        """Remove `label`; one that is already gone is fine."""
        try:
            await self.gh.rest.issues.async_remove_label(
                self.owner, self.name, number, quote(label, safe="")
            )
        except RequestFailed as exc:
            if _status(exc) != 404:
                raise

    async def ensure_labels(self, specs: Mapping[str, tuple[str, str]]) -> set[str]:
        """Create the labels of `specs` (name -> (color hex, description)) that are missing;
        the repository's label names (lower case) from before."""
        pages: Paginator[Label] = self.gh.rest.paginate(
            self.gh.rest.issues.async_list_labels_for_repo,
            owner=self.owner,
            repo=self.name,
            per_page=PER_PAGE,
        )
        existing = {label.name.lower() async for label in pages}
        await self.create_labels({n: s for n, s in specs.items() if n.lower() not in existing})
        return existing

    async def create_labels(self, specs: Mapping[str, tuple[str, str]]) -> None:
        """Create the labels of `specs` without looking first (one there already is fine)."""
        for name, (color, description) in specs.items():
            await self._repeat(f"label {name}", self._label_creator(name, color, description))

    def _label_creator(
        self, name: str, color: str, description: str
    ) -> Callable[[], Awaitable[None]]:
        async def create() -> None:
            """Create the label; 422 "already_exists" (a lost answer, a race) is success."""
            try:
                await self.gh.rest.issues.async_create_label(
                    self.owner,
                    self.name,
                    name=name,
                    color=color.lstrip("#"),
                    description=description,
                )
            except RequestFailed as exc:
                if not (_status(exc) == 422 and _already_exists(exc)):
                    raise

        return create

    # check runs

    async def upsert_check_run(
        self,
        name: str,
        head_sha: str,
        *,
        status: CheckStatus,
        conclusion: CheckConclusion | None = None,
        title: str,
        summary: str,
        text: str | None = None,
        annotations: Sequence[Mapping[str, Any]] = (),
        actions: Sequence[Mapping[str, Any]] = (),
        external_id: str | None = None,
        born: datetime | None = None,
    ) -> int:
        """This App's check run `name` on `head_sha`, updated or created; returns its id.
        `born`: when the pull request whose head this is was made on GitHub (see `_claim`).

        Annotations go 50 per request (GitHub's limit), the rest in further updates that
        GitHub appends; actions past GitHub's limits raise ValueError before anything is sent.
        GitHub appends the annotations of every update to those the run has, so only those
        it does not have yet are sent: each annotation once per check run. A run known from
        an earlier upsert that already says all this (and has every annotation) is not sent
        again: only this App edits its runs.
        """
        check_actions(actions)  # refused before anything is sent
        base = f"/repos/{self.owner}/{self.name}/check-runs"
        key = self._check_run_key(name, head_sha)
        # Taken, not read: the run's annotations may take several requests, and a crash or a
        # deferred write between them must leave no record claiming what was not all sent (the
        # next upsert then lists the run's annotations instead).
        kept = await self.memo.take(key) if self.memo is not None else None
        sent: set[tuple[object, ...]] = set()
        if kept is not None:
            # Known from an earlier upsert (only this App makes its runs): no lookup needed.
            run_id: int | None = int(kept["id"])
            sent = {tuple(a) for a in kept["sent"]}
        else:
            run_id, sent = await self._known_run(name, head_sha, bool(annotations), born)
        annotations = [a for a in annotations if _annotation_key(a) not in sent]
        first, *more = check_run_bodies(
            name,
            status=status,
            conclusion=conclusion,
            title=title,
            summary=summary,
            text=text,
            annotations=annotations,
            actions=actions,
            external_id=external_id,
        )
        output = {k: v for k, v in first["output"].items() if k != "annotations"}
        digest = hashlib.sha256(
            json.dumps({**first, "output": output}, sort_keys=True).encode()
        ).hexdigest()
        if kept is not None and kept.get("digest") == digest and not annotations:
            if self.memo is not None:
                await self.memo.put(key, kept)  # taken above: put back as it was
            return int(kept["id"])
        if run_id is None:
            body = {**first, "head_sha": head_sha}

            async def create() -> int:
                created = await self.gh.arequest("POST", base, json=body, response_model=CheckRun)
                return created.parsed_data.id

            async def find() -> int | None:
                return (await self._find_check_run(name, head_sha))[0]

            run_id = await self._create(f"check run {name}", create, find)
            await self._made(key, run_id)
        else:
            await self.gh.arequest("PATCH", f"{base}/{run_id}", json=first, response_model=CheckRun)
        for body in more:
            await self.gh.arequest("PATCH", f"{base}/{run_id}", json=body, response_model=CheckRun)
        if self.memo is not None:
            sent |= {_annotation_key(a) for a in annotations}
            sent_now = sorted(map(list, sent), key=repr)
            await self.memo.put(key, {"id": run_id, "sent": sent_now, "digest": digest})
        return run_id

    async def _known_run(
        self, name: str, head_sha: str, annotating: bool, born: datetime | None
    ) -> tuple[int | None, set[tuple[object, ...]]]:
        """The id of this App's run `name` on `head_sha` (None: there is none) and the keys of
        its annotations (listed only when `annotating`), asking GitHub only what the intents
        and the memo's new commits do not tell."""
        key = self._check_run_key(name, head_sha)
        may_exist, run_id = await self._claim(key, born)
        new = await self._new_commit(head_sha)
        if run_id is not None:
            # Made by an earlier upsert: only this App edits its runs, and GitHub's REST API
            # has no request that deletes one (https://docs.github.com/en/rest/checks/runs:
            # create, update, get, list, rerequest), so it is still there.
            listed = await self._check_run_annotations(run_id) if annotating else []
            return run_id, {_annotation_key(a) for a in listed}
        if new or not may_exist:
            return None, set()
        run_id, annotated = await self._find_check_run(name, head_sha)
        if run_id is None:
            return None, set()
        await self._made(key, run_id)
        if not (annotated and annotating):
            return run_id, set()
        return run_id, {_annotation_key(a) for a in await self._check_run_annotations(run_id)}

    async def knows_check_run(self, name: str, head_sha: str) -> bool:
        """Whether an earlier upsert of this App's run `name` on `head_sha` is remembered
        (within the memo's time; without a memo, never). Asks GitHub nothing."""
        if self.memo is None:
            return False
        return await self.memo.get(self._check_run_key(name, head_sha)) is not None

    def _check_run_key(self, name: str, head_sha: str) -> str:
        """The memo's key of this App's check run `name` on commit `head_sha`."""
        return f"check-run:{self.full_name}:{head_sha}:{name}"

    async def note_new_commit(self, sha: str) -> None:
        """`sha` is a commit the bot just made and has not pushed yet: it has no check run,
        so the first `upsert_check_run` on it needs no lookup. (Not for a commit GitHub
        made: a reconcile may put a run on it before the bot hears its sha.)"""
        if self.memo is not None:
            await self.memo.put(f"new-commit:{self.full_name}:{sha}", {"runs": []})

    async def _new_commit(self, sha: str) -> bool:
        """Whether `sha` is a commit the bot made (`note_new_commit`) and no upsert has asked
        yet. Asked once: after the first upsert (even one whose create lost its answer) the
        run is looked up as usual."""
        if self.memo is None:
            return False
        return await self.memo.take(f"new-commit:{self.full_name}:{sha}") is not None

    async def _check_run_annotations(self, run_id: int) -> list[dict[str, Any]]:
        pages = self.gh.rest.paginate(
            self.gh.rest.checks.async_list_annotations,
            owner=self.owner,
            repo=self.name,
            check_run_id=run_id,
            per_page=PER_PAGE,
        )
        return [a.model_dump() async for a in pages]

    async def _find_check_run(self, name: str, head_sha: str) -> tuple[int | None, int]:
        """The id of this App's latest check run `name` on `head_sha` (None: there is none),
        and how many annotations it has."""
        resp = await self.gh.rest.checks.async_list_for_ref(
            self.owner,
            self.name,
            head_sha,
            check_name=name,
            app_id=self.app_id if self.app_id is not None else UNSET,
            per_page=PER_PAGE,
        )
        runs = [run for run in resp.parsed_data.check_runs if run.name == name]
        if self.app_id is not None:
            runs = [run for run in runs if run.app is None or run.app.id == self.app_id]
        if not runs:
            return None, 0
        latest = max(runs, key=lambda run: run.id)
        return latest.id, latest.output.annotations_count


def _annotation_key(annotation: Mapping[str, Any]) -> tuple[object, ...]:
    """What tells one annotation from another, as sent and as GitHub lists it."""
    return tuple(
        annotation.get(key)
        for key in ("path", "start_line", "end_line", "annotation_level", "title", "message")
    )


async def _nothing() -> None:
    return None
