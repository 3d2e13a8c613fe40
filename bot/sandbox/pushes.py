"""What a branch moving means: a push event, open PRs on that branch synchronize; a PR whose
head the pushed base now contains is merged; merges close issues; a deleted branch retargets
the open PRs based on it."""

from __future__ import annotations

import asyncio
import re

from bot.sandbox import events, gitops
from bot.sandbox.hub import Hub
from bot.sandbox.state import Account, Issue, Repo

# GitHub's closing keywords: "Fixes #12", "closes: #3", "Resolved #7".
CLOSING = re.compile(r"\b(?:close[sd]?|fix(?:e[sd])?|resolve[sd]?):?\s+#(\d+)\b", re.IGNORECASE)


def branches_moved(
    hub: Hub, repo: Repo, before: dict[str, str], after: dict[str, str], sender: Account
) -> None:
    """Update open pull requests whose head branch moved and send `synchronize` for each;
    a branch gone from `after` was deleted (`branch_deleted`).

    The pull requests may live in another repository: a push to a fork's branch moves the PRs
    it heads in the fork's parent (their `refs/pull/<n>/head` there) and synchronizes them.
    """
    for branch in [b for b in before if b not in after]:  # `git push origin :branch`
        branch_deleted(hub, repo, branch, before[branch], sender)
    moved = {b: sha for b, sha in after.items() if before.get(b) != sha}
    if not moved:
        return
    repo.pushed_at = hub.store.now()
    for branch, sha in moved.items():
        events.pushed(hub, repo, branch, before.get(branch, gitops.ZERO_SHA), sha, sender)
    for base in list(hub.store.repos.values()):
        for issue in list(base.issues.values()):
            pull = issue.pull
            if (
                pull is None
                or issue.state != "open"
                or pull.head_repo_id != repo.id
                or pull.head_ref not in moved
            ):
                continue
            old, new = pull.head_sha, moved[pull.head_ref]
            if old == new:
                continue
            gitops.fetch_commit(base.path, repo.path, new)
            gitops.set_pull_head(base.path, issue.number, new)
            pull.head_sha = new
            issue.updated_at = hub.store.now()
            events.pull_request_changed(
                hub, base, issue, "synchronize", sender, before=old, after=new
            )
    for branch, sha in moved.items():
        merged_by_push(hub, repo, branch, sha, sender)


def merged_by_push(hub: Hub, repo: Repo, branch: str, sha: str, sender: Account) -> None:
    """Mark merged each open pull request based on `branch` whose head commit the branch, now
    at `sha`, contains: GitHub does so for a pull request merged on the command line and
    pushed (the merge's "Merging via command line" instructions; `closed` with `merged:
    true`, the pusher as `merged_by`, no REST request). A merge into the default branch
    closes the issues its title or body names with a closing keyword. With the fault
    `merge_by_push_delay_s`, that long after the push, against the branch as it is then,
    as GitHub marks it in the background."""
    delay = hub.faults.merge_by_push_delay()
    if delay <= 0:
        _mark_merged(hub, repo, branch, sha, sender)
        return

    def later() -> None:
        head = gitops.branch_heads(repo.path).get(branch)
        if head is not None:
            _mark_merged(hub, repo, branch, head, sender)

    asyncio.get_running_loop().call_later(delay, later)


def _mark_merged(hub: Hub, repo: Repo, branch: str, sha: str, sender: Account) -> None:
    for issue in list(repo.issues.values()):
        pull = issue.pull
        if pull is None or issue.state != "open" or pull.base_ref != branch:
            continue
        if pull.head_sha != sha and not gitops.is_ancestor(repo.path, pull.head_sha, sha):
            continue
        record_merge(hub, repo, issue, sha, sender)


def record_merge(hub: Hub, repo: Repo, pull_request: Issue, sha: str, sender: Account) -> None:
    """`pull_request` merged by `sender` at `sha` (the merge API's commit, or the pushed
    head): marked merged and closed, and each issue it closes (`closed_by_merge`) closed as
    completed, each with its `closed` event."""
    pull = pull_request.pull
    assert pull is not None
    now = hub.store.now()
    pull.merged_at, pull.merged_by_id, pull.merge_commit_sha = now, sender.id, sha
    for closing in [pull_request, *closed_by_merge(repo, pull_request)]:
        closing.state, closing.closed_at, closing.updated_at = "closed", now, now
        closing.state_reason = None if closing.pull else "completed"
        events.issue_changed(hub, repo, closing, "closed", sender)


def closed_by_merge(repo: Repo, pull_request: Issue) -> list[Issue]:
    """Open issues a merged pull request closes: only when it merged into the default branch."""
    pull = pull_request.pull
    if pull is None or pull.base_ref != repo.default_branch:
        return []
    text = f"{pull_request.title}\n{pull_request.body or ''}"
    numbers = dict.fromkeys(int(n) for n in CLOSING.findall(text))
    return [
        issue
        for n in numbers
        if (issue := repo.issues.get(n)) is not None
        and issue.pull is None
        and issue.state == "open"
    ]


def branch_deleted(hub: Hub, repo: Repo, branch: str, sha: str, sender: Account) -> None:
    """`branch` (at `sha`) is gone: a `push` with `deleted: true`, and each open pull request
    based on it is retargeted to the base of the merged pull request it was the head of, as
    GitHub does ("If you delete a head branch after its pull request has been merged, GitHub
    checks for any open pull requests in the same repository that specify the deleted branch
    as their base branch. GitHub automatically updates any such pull requests, changing their
    base branch to the merged pull request's base branch": docs.github.com, "Merging a pull
    request"), each with `pull_request.edited` and `changes.base`. An open pull request
    whose head it was is closed, as GitHub closes one whose head branch is deleted."""
    repo.pushed_at = hub.store.now()
    events.pushed(hub, repo, branch, sha, gitops.ZERO_SHA, sender)
    for issue in list(repo.issues.values()):
        # An open pull request whose head branch is deleted is closed; it can be reopened
        # only once the branch is restored (github.com/orgs/community/discussions/22449).
        pull = issue.pull
        if (
            pull
            and issue.state == "open"
            and pull.head_repo_id == repo.id
            and pull.head_ref == branch
        ):
            issue.state, issue.closed_at = "closed", hub.store.now()
            issue.updated_at = issue.closed_at
            events.issue_changed(hub, repo, issue, "closed", sender)
    merged = [
        i.pull
        for i in repo.issues.values()
        if i.pull is not None
        and i.pull.merged_at is not None
        and i.pull.head_repo_id == repo.id
        and i.pull.head_ref == branch
    ]
    if not merged:
        return
    new_base = merged[-1].base_ref
    for issue in list(repo.issues.values()):
        pull = issue.pull
        if pull is None or issue.state != "open" or pull.base_ref != branch:
            continue
        pull.base_ref = new_base
        issue.updated_at = hub.store.now()
        changes = {"base": {"ref": {"from": branch}, "sha": {"from": sha}}}
        events.pull_request_changed(hub, repo, issue, "edited", sender, changes=changes)
