"""One fix task: lease, worktree at the PR head, agent, verification, commit, push, fix PR, land.

The agent never commits or pushes; the bot does, after verifying that the finding is gone
and nothing new appeared. A failed or refused run keeps its partial work on its own branch.
"""

import logging
import os
import socket
import time
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from bot.agents.briefs import BriefFinding, BriefTask, build_brief
from bot.agents.diffcheck import check_change
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.audit import audit
from bot.audit.findings import Finding, normalise_code
from bot.engine.leases import Lease
from bot.ghapi import RepoAPI
from bot.ghmodels import IssueInfo
from bot.ledger import FindingGroup, parse_marker, render_marker
from bot.loop.config import load_repo_config
from bot.loop.fleetctx import Fleet
from bot.loop.reconcile import PARTIAL_LABEL
from bot.loop.store import LoopStore, TaskRow
from bot.router import DEFAULT_AGENTS
from bot.worktrees import Worktree, changed_files, commit_all, push

log = logging.getLogger(__name__)

LEASE_TTL_S = 120.0
AGENT_ANALYZERS = {agent: [analyzer] for analyzer, agent in DEFAULT_AGENTS.items()}


class TaskFailed(Exception):
    """The task cannot produce a fix; `status` says how it ended."""

    def __init__(self, status: str, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


@dataclass(frozen=True)
class BotIdentity:
    name: str
    email: str


def _key(f: Finding) -> tuple[str, str, str, str]:
    return (f.analyzer, f.rule, f.path, normalise_code(f.snippet) or f.message)


def verify(
    before: Iterable[Finding], after: Iterable[Finding], targets: Iterable[Finding]
) -> str | None:
    """Why the change must not be proposed, or None when it fixed its targets and added
    nothing. Compared as counts of (analyzer, rule, path, code): line numbers move."""
    b, a = Counter(map(_key, before)), Counter(map(_key, after))
    for t in targets:
        if a[_key(t)] >= b[_key(t)]:
            return f"the finding is still there: {t.rule} in {t.path}:{t.start_line}"
    grown = [k for k in a if a[k] > b[k]]
    if grown:
        analyzer, rule, path, _ = grown[0]
        return f"the change adds a new finding: {analyzer} {rule} in {path}"
    return None


class FixRunner:
    def __init__(self, fleet: Fleet, api: RepoAPI, task: TaskRow, lease: Lease) -> None:
        self.fleet = fleet
        self.api = api
        self.task = task
        self.lease = lease
        self.store = LoopStore(fleet.runtime.pool)

    async def run(self) -> None:
        t = self.task
        issue = await self.api.get_issue(t.issue_number)
        if issue.state != "open":
            raise TaskFailed("obsolete", "the issue was closed before the fix ran")
        if t.pr_number is not None:
            pr = await self.api.get_pull(t.pr_number)
            if pr.state != "open":
                raise TaskFailed("obsolete", "the pull request was closed")
            if pr.head_sha != t.base_sha:
                raise TaskFailed("stale", "the pull request moved on; the next round re-plans")
        repo_info = await self.api.get_repo()
        config = await load_repo_config(self.api, repo_info)
        spec = self.fleet.catalog.get(t.agent)
        if spec is None:
            raise TaskFailed("failed", f"no agent {t.agent!r} in the server's catalog")
        started = time.monotonic()
        token = await self.fleet.token(t.installation_id, t.repo)
        mirror = await self.fleet.mirrors.ensure(t.repo, repo_info.clone_url, token)
        path = self.fleet.mirrors.worktree_path(t.repo, f"task-{t.id}")
        wt = await self.fleet.mirrors.add_worktree(mirror, path, t.branch, t.base_sha)
        spawn_s = time.monotonic() - started
        try:
            await self._fix_in(
                wt,
                issue,
                config.auditors,
                spawn_s,
                repo_info.clone_url,
                token,
                merge=config.merge_fixes == "auto" and t.pr_number is not None,
            )
        finally:
            await self.fleet.mirrors.remove_worktree(wt)

    async def _fix_in(
        self,
        wt: Worktree,
        issue: IssueInfo,
        auditors: list[str],
        spawn_s: float,
        clone_url: str,
        token: str,
        *,
        merge: bool,
    ) -> None:
        t = self.task
        marker = parse_marker(issue.body) or {}
        before = await audit(wt.path, auditors)
        targets = self._targets(before, marker)
        if marker.get("fp") and not targets:
            raise TaskFailed("obsolete", "the finding is already gone at this commit")
        brief = build_brief(
            BriefTask(
                findings=[
                    BriefFinding(
                        f.rule, f.path, f.start_line, f.end_line, f.message, f.snippet, f.analyzer
                    )
                    for f in targets
                ],
                untrusted_text=f"{issue.title}\n\n{issue.body or ''}",
            )
        )
        agent_targets = [FixTarget(f.rule, f.path) for f in targets] or [
            FixTarget(f.rule, f.path) for f in before if f.analyzer in ("ruff", "ruff-format")
        ]
        spec = self.fleet.catalog[t.agent]
        ran = time.monotonic()
        result = await run_agent(
            spec, wt.path, brief, task=AgentTask(targets=agent_targets, task_id=str(t.id))
        )
        run_s = time.monotonic() - ran
        await self.store.update_task(t.id, spawn_s=spawn_s, run_s=run_s)
        identity = await self._identity()
        if not result.ok:
            await self._keep_partial(wt, clone_url, token, identity)
            raise TaskFailed("failed", f"agent {t.agent} failed: {result.error}")
        problems = await check_change(wt.path, t.base_sha)
        if problems:
            raise TaskFailed("refused", "; ".join(problems))
        touched = await changed_files(wt, t.base_sha)
        if not touched:
            raise TaskFailed("failed", f"agent {t.agent} changed nothing")
        # The analyzer that produced the finding judges the fix (DESIGN 1.6).
        # A person's issue has no finding: the agent's own analyzer judges, or all of them.
        judges = sorted({f.analyzer for f in targets}) or AGENT_ANALYZERS.get(t.agent, auditors)
        before = [f for f in before if f.analyzer in judges]
        after = await audit(wt.path, judges)
        if targets:
            why = verify(before, after, targets)
        else:  # a person's issue: no finding to remove, but nothing new may appear
            why = verify(before, after, [])
        if why:
            raise TaskFailed("refused", f"verification failed: {why}")
        title = f"Fix #{t.issue_number}: {issue.title}"[:200]
        sha = await commit_all(
            wt, f"{title}\n\nFixes #{t.issue_number}\n", identity.name, identity.email
        )
        assert sha is not None
        await self.fleet.runtime.leases.check(self.lease)
        # The issue's lease makes this task the branch's only writer; the lease on the ref
        # still refuses a push if the branch moved after we looked (e.g. a person pushed).
        remote = await self._remote_branch_sha(wt, clone_url, token)
        await push(wt, clone_url, token, t.branch, remote)
        body = (
            f"Fixes #{t.issue_number}\n\nAgent `{t.agent}` fixed the finding; the "
            f"analyzer was re-run on the result and found nothing new.\n"
        )
        fix_pr = await self.api.create_pull(
            title,
            body,
            head=t.branch,
            base=t.base_ref,
            marker={"kind": "fix", "issue": t.issue_number, "task": t.id},
        )
        await self.store.update_task(t.id, status="pushed", fix_pr=fix_pr.number)
        if not merge:
            return
        await self.fleet.runtime.leases.check(self.lease)
        merged = await self.api.merge_pull(
            fix_pr.number, sha, title=f"Merge fix for #{t.issue_number}"
        )
        if merged.merged:
            await self.store.update_task(t.id, status="merged")
        elif merged.conflict:
            raise TaskFailed("conflict", f"fix PR #{fix_pr.number} conflicts: {merged.message}")
        else:
            raise TaskFailed("failed", f"fix PR #{fix_pr.number} not merged: {merged.message}")

    def _targets(self, findings: list[Finding], marker: dict[str, object]) -> list[Finding]:
        """The findings the issue's marker names: one finding, or a same-rule group in a file."""
        fp = marker.get("fp")
        if not isinstance(fp, str):
            return []
        singles = [f for f in findings if f.fingerprint == fp]
        if singles:
            return singles
        buckets: dict[tuple[str, str, str], list[Finding]] = {}
        for f in findings:
            buckets.setdefault((f.analyzer, f.rule, f.path), []).append(f)
        for same in buckets.values():
            if len(same) > 1 and FindingGroup(tuple(same)).fingerprint == fp:
                return same
        return []

    async def _identity(self) -> BotIdentity:
        ident = await self.fleet.runtime.github.identity()
        return BotIdentity(
            ident.bot_login, f"{ident.id}+{ident.bot_login}@users.noreply.github.com"
        )

    async def _keep_partial(
        self, wt: Worktree, clone_url: str, token: str, identity: BotIdentity
    ) -> None:
        """Commit whatever the agent left and push it to the task branch; label the issue."""
        t = self.task
        sha = await commit_all(
            wt,
            f"Partial work for #{t.issue_number} (agent {t.agent})\n",
            identity.name,
            identity.email,
        )
        if sha is None:
            return
        await self.fleet.runtime.leases.check(self.lease)
        await push(
            wt, clone_url, token, t.branch, await self._remote_branch_sha(wt, clone_url, token)
        )
        await self.api.add_labels(t.issue_number, [PARTIAL_LABEL])

    async def _remote_branch_sha(self, wt: Worktree, clone_url: str, token: str) -> str | None:
        from bot.gitcmd import auth_env, git

        out = await git(
            "ls-remote",
            clone_url,
            f"refs/heads/{self.task.branch}",
            cwd=wt.path,
            env=auth_env(token),
        )
        return out.split()[0] if out.strip() else None


def holder_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


__all__ = ["FixRunner", "TaskFailed", "holder_name", "render_marker", "verify"]
