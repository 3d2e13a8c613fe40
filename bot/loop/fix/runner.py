"""One fix task: lease, worktree at the PR head, agent, verification, commit, push, fix PR, land.

A task fixes one issue, or a batch of them inline: one worktree, one branch, one PR, one
commit per issue, pushed as it is made so a crashed worker's successor resumes from it. The
agent never commits or pushes; the bot does, after verifying that the finding is gone and
nothing new appeared. A single-issue task whose agent fails keeps the partial work on its
branch; in a batch, a failed issue's leftovers are undone so the next issue starts clean.
"""

import asyncio
import contextlib
import logging
import os
import socket
import time
import uuid
from dataclasses import dataclass, replace
from pathlib import Path

from bot.agents.briefs import BriefFinding, BriefTask, build_brief, redact_secrets
from bot.agents.catalog import AgentSpec
from bot.agents.diffcheck import check_change, git_tampering
from bot.agents.routing import DEFAULT_AGENTS
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.audit.commits import audit_commit
from bot.audit.diffs import changed_lines, filter_ignored, filter_to_changed
from bot.audit.findings import Finding
from bot.audit.runners import audit
from bot.engine.leases import Lease
from bot.git.cmd import GitError, git
from bot.git.worktrees import Worktree, changed_files, commit_all, push
from bot.github.markers import parse_marker
from bot.github.records import PullInfo
from bot.github.repo_api import RepoAPI
from bot.labels import PARTIAL_LABEL
from bot.loop.checks import fix_pr_verdict, upsert_loop_check
from bot.loop.fix.verify import targets_of, verify
from bot.loop.fleet import Fleet
from bot.loop.repo_commands import RepoCommandFailed, run_repo_command
from bot.loop.store import REJECTED_ERROR, LoopStore, TaskRow
from bot.repo_config import RepoConfig, load_repo_config

log = logging.getLogger(__name__)

LEASE_TTL_S = 120.0
MERGE_ATTEMPTS = 4
MERGE_RETRY_S = 1.0
AGENT_ANALYZERS = {agent: [analyzer] for analyzer, agent in DEFAULT_AGENTS.items()}


class TaskFailed(Exception):
    """The task (or one issue of it) cannot produce a fix; `status` says how it ended."""

    def __init__(self, status: str, reason: str, *, tampered: bool = False) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.tampered = tampered  # the agent touched git's config or hooks


@dataclass(frozen=True)
class BotIdentity:
    name: str
    email: str


class FixRunner:
    def __init__(self, fleet: Fleet, api: RepoAPI, task: TaskRow, lease: Lease) -> None:
        self.fleet = fleet
        self.api = api
        self.task = task
        self.lease = lease
        self.store = LoopStore(fleet.runtime.pool)
        self.remote_sha: str | None = None  # the task branch on GitHub, as last seen/pushed
        self.base_findings: list[Finding] | None = None  # set when resuming earlier work
        self.mirror: Path | None = None  # the repository's mirror, once fetched
        self.ignore: list[str] = []  # the repository's `ignore` globs
        self.rerunning = False  # the agent works again on a new head, for an open fix PR

    async def run(self) -> None:
        t = self.task
        if t.pr_number is not None:
            pr = await self.api.get_pull(t.pr_number)
            if pr.state != "open":
                raise TaskFailed("obsolete", "the pull request was closed")
        repo_info = await self.api.get_repo()
        config = await load_repo_config(self.api, repo_info.default_branch)
        self.ignore = list(config.ignore)
        if t.fix_pr is not None and await self._fix_pr_settled(t.fix_pr, config):
            return
        spec = self.fleet.catalog.get(t.agent)
        if spec is None:
            raise TaskFailed("failed", f"no agent {t.agent!r} in the server's catalog")
        started = time.monotonic()
        token = await self.fleet.token(t.installation_id, t.repo)
        mirror = self.mirror = await self.fleet.mirrors.ensure(t.repo, repo_info.clone_url, token)
        if t.pr_number is not None and pr.head_sha != t.base_sha:
            # Sibling fixes merged meanwhile: fine, the fix merges on top. A rewritten branch
            # (force-push) is not: the next round plans again from the new head.
            if not await _descends(mirror, pr.head_sha, t.base_sha):
                raise TaskFailed("stale", "the pull request was rewritten; the next round re-plans")
        self.remote_sha = await _branch_sha(mirror, t.branch)
        path = self.fleet.mirrors.worktree_path(t.repo, f"task-{t.id}")
        resume = self.remote_sha is not None and await _descends(
            mirror, self.remote_sha, t.base_sha
        )
        wt: Worktree | None = None
        if not resume:
            wt = await self.fleet.warm.claim(t.repo, mirror, t.base_sha, path, t.branch)
        warm = wt is not None
        if resume:
            # Work left by an earlier run is judged like new work: against the base commit.
            self.base_findings = await audit_commit(
                self.fleet.mirrors, mirror, t.repo, t.base_sha, config, base_sha=None
            )
        if wt is None:
            start = self.remote_sha if resume and self.remote_sha else t.base_sha
            wt = await self.fleet.mirrors.add_worktree(mirror, path, t.branch, start)
        try:
            if config.setup and not warm:
                try:
                    await run_repo_command(wt.path, config.setup)
                except RepoCommandFailed as exc:
                    raise TaskFailed("failed", f"the repository's {exc}") from exc
            spawn_s = time.monotonic() - started
            await self.store.update_task(t.id, spawn_s=spawn_s, warm=warm)
            await self._fix_batch(wt, spec, config, repo_info.clone_url, token, spawn_s, warm)
        finally:
            await self.fleet.mirrors.remove_worktree(wt)

    async def _fix_batch(
        self,
        wt: Worktree,
        spec: AgentSpec,
        config: RepoConfig,
        clone_url: str,
        token: str,
        spawn_s: float,
        warm: bool,
    ) -> None:
        t = self.task
        fixed: list[int] = []
        failed: list[tuple[int, TaskFailed]] = []
        run_started = time.monotonic()
        for number in t.issues:
            try:
                if await self._fix_issue(wt, number, spec, config, clone_url, token):
                    fixed.append(number)
            except TaskFailed as exc:
                if exc.tampered:
                    raise  # the worktree is not to be trusted, not even to reset it
                failed.append((number, exc))
                # Undo this issue's leftovers so the next one starts from the last good commit.
                await git("reset", "--hard", "--quiet", cwd=wt.path)
                await git("clean", "-fdq", cwd=wt.path)
            await self.store.update_task(
                t.id,
                fixed=fixed,
                failed=[n for n, _ in failed],
                run_s=time.monotonic() - run_started,
            )
        worked = len(fixed) + len(failed)
        run_s = time.monotonic() - run_started  # agents, verification, commits, pushes
        if not fixed:
            number, first = failed[0] if failed else (t.issue_number, None)
            if first is None:
                raise TaskFailed("obsolete", "every finding of the task was already gone")
            if len(failed) == 1:
                raise first
            raise TaskFailed(first.status, "; ".join(f"#{n}: {e.reason}" for n, e in failed))
        if self.base_findings is not None:
            # Resumed from the branch: it may hold a failed run's partial work, committed
            # unverified. The whole branch is judged against the base, like one new fix.
            why = await self._verify_against(wt, t.base_sha, fixed, config)
            if why:
                raise TaskFailed("refused", f"the work resumed from the branch fails: {why}")
        landing = time.monotonic()
        try:
            await self._propose(wt, spec, fixed, failed, config, clone_url, token)
        finally:
            land_s = time.monotonic() - landing
            # s is what one more agent costs: a cold spawn plus its own fix PR and merge;
            # t is one issue's work: agent, verification, commit, push. A warm claim teaches
            # only t.
            await self.store.record_costs(
                t.repo,
                t.agent,
                None if warm else spawn_s + land_s,
                run_s / worked,
                prior_spawn_s=self.fleet.runtime.settings.prior_spawn_s,
            )

    async def _fix_issue(
        self,
        wt: Worktree,
        number: int,
        spec: AgentSpec,
        config: RepoConfig,
        clone_url: str,
        token: str,
    ) -> bool:
        """Fix one issue in the worktree and commit it; False if there was nothing to fix."""
        t = self.task
        auditors = config.auditors
        issue = await self.api.get_issue(number)
        if issue.state != "open":
            return False
        marker = parse_marker(issue.body) or {}
        before = await audit(wt.path, auditors)
        targets = targets_of(before, marker)
        if marker.get("fp") and not targets:
            return self._fixed_earlier(marker, before)
        brief = build_brief(BriefTask(
            findings=[BriefFinding(f.rule, f.path, f.start_line, f.end_line, f.message,
                                   f.snippet, f.analyzer) for f in targets],
            untrusted_text=f"{issue.title}\n\n{issue.body or ''}",
        ))  # fmt: skip
        agent_targets = [FixTarget(f.rule, f.path) for f in targets] or [
            FixTarget(f.rule, f.path) for f in before if f.analyzer in ("ruff", "ruff-format")
        ]
        result = await run_agent(
            spec, wt.path, brief, task=AgentTask(targets=agent_targets, task_id=str(t.id))
        )
        identity = await self._identity()
        if not result.ok:
            if not t.batch and not self.rerunning:  # a rerun's fix PR is open: keep it clean
                await self._keep_partial(wt, number, clone_url, token, identity)
            raise TaskFailed(
                "failed", f"agent {t.agent} failed: {redact_secrets(result.error or '')}"
            )
        problems = await check_change(wt.path, "HEAD")
        if problems:
            tampered = any("git" in p and ("config" in p or "hook" in p) for p in problems)
            raise TaskFailed("refused", "; ".join(problems), tampered=tampered)
        if not await changed_files(wt, "HEAD"):
            raise TaskFailed("failed", f"agent {t.agent} changed nothing")
        # The analyzer that produced the finding judges the fix (DESIGN 1.6); a person's
        # issue has no finding, so the agent's own analyzer judges, or all of them.
        judges = sorted({f.analyzer for f in targets}) or AGENT_ANALYZERS.get(t.agent, auditors)
        after = await audit(wt.path, judges)
        why = verify([f for f in before if f.analyzer in judges], after, targets)
        if why:
            raise TaskFailed("refused", f"verification failed: {why}")
        title = f"Fix #{number}: {issue.title}"[:200]
        sha = await commit_all(wt, f"{title}\n\nFixes #{number}\n", identity.name, identity.email)
        assert sha is not None
        if config.test:
            await self._run_tests(wt, config.test, undo=True)
        await self._push(wt, clone_url, token)  # a checkpoint a successor can resume from
        return True

    async def _run_tests(self, wt: Worktree, command: str, *, undo: bool) -> None:
        """The repository's `test` command on the committed change (DESIGN 1.6). Whatever the
        tests leave in the worktree is discarded; on failure, with `undo`, so is the commit."""
        try:
            await run_repo_command(wt.path, command, what="test")
        except RepoCommandFailed as exc:
            await git("reset", "--hard", "--quiet", "HEAD~1" if undo else "HEAD", cwd=wt.path)
            await git("clean", "-fdq", cwd=wt.path)
            raise TaskFailed(
                "refused", f"the repository's tests fail with this change: {exc}"
            ) from exc
        await git("reset", "--hard", "--quiet", cwd=wt.path)
        await git("clean", "-fdq", cwd=wt.path)

    def _fixed_earlier(self, marker: dict[str, object], now: list[Finding]) -> bool:
        """True when the branch's earlier commits (a resumed task) removed the finding without
        adding any; False when it was already gone at the base commit."""
        if self.base_findings is None:
            return False
        base_targets = targets_of(self.base_findings, marker)
        if not base_targets:
            return False
        judges = {f.analyzer for f in base_targets}
        now = filter_ignored(now, self.ignore)  # as the base's audit was
        why = verify(
            [f for f in self.base_findings if f.analyzer in judges],
            [f for f in now if f.analyzer in judges],
            base_targets,
        )
        if why:
            raise TaskFailed("refused", f"the work resumed from the branch fails: {why}")
        return True

    async def _propose(
        self,
        wt: Worktree,
        spec: AgentSpec,
        fixed: list[int],
        failed: list[tuple[int, TaskFailed]],
        config: RepoConfig,
        clone_url: str,
        token: str,
    ) -> None:
        """Open (or find) the fix PR for the task's branch and, for a PR's findings, merge it."""
        t = self.task
        closes = "\n".join(f"Fixes #{n}" for n in fixed)
        title = (
            f"Fix #{fixed[0]}"
            if len(fixed) == 1
            else f"Fix {len(fixed)} findings: " + ", ".join(f"#{n}" for n in fixed)
        )
        issue = await self.api.get_issue(fixed[0]) if len(fixed) == 1 else None
        if issue is not None:
            title = f"Fix #{fixed[0]}: {issue.title}"[:200]
        body = (
            f"{closes}\n\nAgent `{t.agent}` made one commit per finding; each was "
            "re-checked by the analyzer that reported it and nothing new was found.\n"
        )
        if failed:
            body += "\nNot fixed here: " + ", ".join(f"#{n} ({e.reason})" for n, e in failed)
        fix_pr = await self.api.create_pull(
            title,
            body,
            head=t.branch,
            base=t.base_ref,
            marker={"kind": "fix", "issues": fixed, "task": t.id},
        )
        await self.store.update_task(t.id, status="pushed", fix_pr=fix_pr.number)
        await self._audit_fix_pr(wt, config)
        if config.merge_fixes != "auto" or t.pr_number is None:
            return  # a person's issue: its PR targets the default branch, which we never merge
        merge_title = f"Merge {title}"[:200]
        if await self._merge(fix_pr, wt, merge_title):
            return
        # A conflict (DESIGN 1.7): rebase once onto the branch's new head; if that conflicts
        # too, the agent works again on the new head; a fix that still conflicts goes to a
        # person, with its PR left open.
        if await self._rebase_onto_head(wt, fixed, config, clone_url, token, fix_pr):
            await self._audit_fix_pr(wt, config)
            if await self._merge(fix_pr, wt, merge_title):
                return
        await self._rerun_on_head(wt, spec, fixed, config, clone_url, token, fix_pr)
        await self._audit_fix_pr(wt, config)
        if await self._merge(fix_pr, wt, merge_title):
            return
        raise TaskFailed(
            "conflict",
            f"fix PR #{fix_pr.number} conflicts with `{t.base_ref}`, also after a rebase and "
            "after the agent ran again on its new head; a person has to resolve it",
        )

    async def _merge(self, fix_pr: PullInfo, wt: Worktree, title: str) -> bool:
        """Merge the fix PR at the worktree's HEAD; False on a merge conflict."""
        head = (await git("rev-parse", "HEAD", cwd=wt.path)).strip()
        for attempt in range(1, MERGE_ATTEMPTS + 1):
            await self.fleet.runtime.leases.check(self.lease)
            merged = await self.api.merge_pull(fix_pr.number, head, title=title)
            if merged.merged:
                await self.store.update_task(self.task.id, status="merged")
                return True
            if merged.conflict:
                log.info("fix PR #%d conflicts: %s", fix_pr.number, merged.message)
                return False
            if merged.closed:
                raise TaskFailed("rejected", REJECTED_ERROR)
            if not merged.head_moved or attempt == MERGE_ATTEMPTS:
                break
            # GitHub moves a PR's head a moment after the push: give it that moment.
            await asyncio.sleep(MERGE_RETRY_S * attempt)
        raise TaskFailed("failed", f"fix PR #{fix_pr.number} not merged: {merged.message}")

    async def _fix_pr_settled(self, number: int, config: RepoConfig) -> bool:
        """For a retried task that had opened its fix PR: True when nothing is left to do,
        because the PR was merged (the worker died before recording it) or waits for a person
        to merge it; a PR a person closed ends the task."""
        pull = await self.api.get_pull(number)
        if pull.merged:
            await self.store.update_task(self.task.id, status="merged")
            return True
        if pull.state != "open":
            raise TaskFailed("rejected", REJECTED_ERROR)
        if config.merge_fixes != "auto" or self.task.pr_number is None:
            await self.store.update_task(self.task.id, status="pushed")
            return True
        return False

    async def _audit_fix_pr(self, wt: Worktree, config: RepoConfig) -> None:
        """The fleet audits its own work (one level deep, unless `max_depth: 0`): every auditor
        on the lines the fix changed, shown as the fix PR's check run, never filed."""
        if self.task.pr_number is None or config.max_depth < 1:
            return  # a person's issue: its fix PR runs the whole loop as a PR of its own
        assert self.mirror is not None
        head = (await git("rev-parse", "HEAD", cwd=wt.path)).strip()
        findings = await audit(wt.path, config.auditors)
        if config.changed_lines_only:
            changed = await changed_lines(self.mirror, self.task.base_sha, head)
            findings = filter_to_changed(findings, changed)
        findings = filter_ignored(findings, config.ignore)
        await self.fleet.runtime.leases.check(self.lease)
        await upsert_loop_check(self.api, head, *fix_pr_verdict(findings), findings)

    async def _new_base(self, clone_url: str) -> str:
        """Move the task onto the PR branch's current head (fetched now); return it."""
        t = self.task
        head = await self.fleet.branch_head(t.repo, clone_url, t.installation_id, t.base_ref)
        assert self.mirror is not None
        if head != t.base_sha and not await _descends(self.mirror, head, t.base_sha):
            raise TaskFailed("stale", "the pull request was rewritten; the next round re-plans")
        await self.fleet.runtime.leases.check(self.lease)
        self.task = replace(t, base_sha=head)
        await self.store.update_task(t.id, base_sha=head)
        return head

    async def _rebase_onto_head(
        self,
        wt: Worktree,
        fixed: list[int],
        config: RepoConfig,
        clone_url: str,
        token: str,
        fix_pr: PullInfo,
    ) -> bool:
        """Rebase the task's commits onto the PR branch's new head, verify the result as a new
        fix, push it. False when the rebase conflicts or the rebased change fails verification."""
        old_base = self.task.base_sha
        new_base = await self._new_base(clone_url)
        identity = await self._identity()
        env = {"GIT_COMMITTER_NAME": identity.name, "GIT_COMMITTER_EMAIL": identity.email}
        try:
            await git(
                "-c", "commit.gpgSign=false", "rebase", "--no-verify", "--quiet",
                "--onto", new_base, old_base, cwd=wt.path, env=env,
            )  # fmt: skip
        except GitError as exc:
            log.info("task %s: the rebase onto %s conflicts: %s", self.task.id, new_base[:8], exc)
            with contextlib.suppress(GitError):
                await git("rebase", "--abort", cwd=wt.path)
            return False
        if (await git("rev-parse", "HEAD", cwd=wt.path)).strip() == new_base:
            await self._close_obsolete(fix_pr, new_base)  # every commit was already there
        why = await self._verify_against(wt, new_base, fixed, config)
        if why:
            log.info("task %s: the rebased fix is refused: %s", self.task.id, why)
            return False
        await self._push(wt, clone_url, token)
        return True

    async def _verify_against(
        self, wt: Worktree, base: str, fixed: list[int], config: RepoConfig
    ) -> str | None:
        """Why the worktree's change on top of `base` must not land, or None: judged like a new
        fix (its findings gone, nothing new, the repository's tests pass)."""
        assert self.mirror is not None
        before = await audit_commit(
            self.fleet.mirrors, self.mirror, self.task.repo, base, config, base_sha=None
        )
        targets: list[Finding] = []
        for number in fixed:
            issue = await self.api.get_issue(number)
            targets += targets_of(before, parse_marker(issue.body) or {})
        judges = sorted({f.analyzer for f in targets}) or config.auditors
        after = filter_ignored(await audit(wt.path, judges), config.ignore)  # as `before` is
        why = verify([f for f in before if f.analyzer in judges], after, targets)
        if why is None and config.test:
            try:
                await self._run_tests(wt, config.test, undo=False)
            except TaskFailed as exc:
                why = exc.reason
        return why

    async def _rerun_on_head(
        self,
        wt: Worktree,
        spec: AgentSpec,
        fixed: list[int],
        config: RepoConfig,
        clone_url: str,
        token: str,
        fix_pr: PullInfo,
    ) -> None:
        """Start over from the PR branch's new head: the agent fixes the same issues again
        and the fix PR's branch is replaced by the new commits."""
        new_base = await self._new_base(clone_url)
        await git("reset", "--hard", "--quiet", new_base, cwd=wt.path)
        await git("clean", "-fdq", cwd=wt.path)
        self.base_findings = None
        self.rerunning = True
        refixed = []
        for number in fixed:
            try:
                if await self._fix_issue(wt, number, spec, config, clone_url, token):
                    refixed.append(number)
            except TaskFailed as exc:
                raise TaskFailed(
                    exc.status, f"run again on the new head: {exc.reason}", tampered=exc.tampered
                ) from exc
        if not refixed:
            await self._close_obsolete(fix_pr, new_base)

    async def _close_obsolete(self, fix_pr: PullInfo, base: str) -> None:
        """The PR branch's new head no longer has what the fix PR fixed: close it, say why."""
        await self.fleet.runtime.leases.check(self.lease)
        await self.api.upsert_comment(
            fix_pr.number,
            {"kind": "obsolete", "pr": fix_pr.number},
            f"Closed: `{self.task.base_ref}` at {base[:10]} no longer has the findings this "
            "pull request fixed.",
        )
        await self.api.close_pull(fix_pr.number)
        raise TaskFailed("obsolete", "the pull request's new head no longer has the findings")

    async def _push(self, wt: Worktree, clone_url: str, token: str) -> None:
        # The issue's lease makes this task the branch's only writer; the ref lease still
        # refuses the push if the branch moved after we looked (e.g. a person pushed).
        await self.fleet.runtime.leases.check(self.lease)
        # The push carries the token: the repository's setup and test commands ran the
        # agent's code since the last check, and must not have rewired git.
        tampering = await git_tampering(wt.path)
        if tampering:
            raise TaskFailed("refused", "; ".join(tampering), tampered=True)
        await push(wt, clone_url, token, self.task.branch, self.remote_sha)
        self.remote_sha = (await git("rev-parse", "HEAD", cwd=wt.path)).strip()

    async def _identity(self) -> BotIdentity:
        ident = await self.fleet.runtime.github.identity()
        return BotIdentity(
            ident.bot_login, f"{ident.id}+{ident.bot_login}@users.noreply.github.com"
        )

    async def _keep_partial(
        self, wt: Worktree, number: int, clone_url: str, token: str, identity: BotIdentity
    ) -> None:
        """Commit whatever the agent left and push it to the task branch; label the issue."""
        t = self.task
        problems = await check_change(wt.path, "HEAD")
        if problems:  # never commit (let alone push) a change that fails the checks
            log.warning("partial work of task %s not kept: %s", t.id, "; ".join(problems))
            return
        message = f"Partial work for #{number} (agent {t.agent})\n"
        if await commit_all(wt, message, identity.name, identity.email) is None:
            return
        await self._push(wt, clone_url, token)
        await self.api.add_labels(number, [PARTIAL_LABEL])


async def _branch_sha(mirror: Path, branch: str) -> str | None:
    try:
        out = await git(
            "rev-parse", "--verify", "--quiet", f"refs/remotes/origin/{branch}", cwd=mirror
        )
    except Exception:
        return None
    return out.strip() or None


async def _descends(mirror: Path, sha: str, base: str) -> bool:
    """True when `sha` is `base` plus commits (work a crashed task left on its branch)."""
    if sha == base:
        return False
    try:
        await git("merge-base", "--is-ancestor", base, sha, cwd=mirror)
    except Exception:
        return False
    return True


def holder_name() -> str:
    """Who holds a lease: this host and process, and this job (several run in one process,
    and each must be refused a key another of them holds)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
