"""The per-PR reconciler: re-read the PR, audit its head, file, route, fix, report.

Level-triggered: every run reads the current state from GitHub and the database and makes
the world match it. Every write is idempotent (markers, fingerprints, unique task keys),
so a redelivered event or a retried job changes nothing.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

from bot.agents.routing import route
from bot.audit.commits import audit_commit
from bot.audit.findings import Finding
from bot.audit.groups import group_findings
from bot.audit.runners import AuditError
from bot.engine.leases import Lease
from bot.github.markers import parse_marker
from bot.github.records import IssueInfo, PullInfo
from bot.github.repo_api import RepoAPI
from bot.labels import (
    AGENT_LABEL_PREFIX,
    FINDING_LABEL,
    LABELS,
    LOOP_LABEL,
    NEEDS_HUMAN_LABEL,
    READY_LABEL,
    fix_branch,
    is_own_fix_pr,
)
from bot.loop import report
from bot.loop.checks import fix_pr_verdict, upsert_loop_check
from bot.loop.fleet import Fleet
from bot.loop.reconcile.fanout import Costs, plan_fanout, split
from bot.loop.reconcile.issue_text import draft_issue
from bot.loop.reconcile.ledger import ExistingIssue, LedgerPlan, plan_ledger
from bot.loop.store import ACTIVE_TASK_STATES, LoopStore, PrRow, TaskRow
from bot.repo_config import RepoConfig, RepoConfigError, load_repo_config

log = logging.getLogger(__name__)

MAX_FAILED_TASKS = 2  # per issue, before it is handed to a human
# Queues the fix task with this id (the job layer above hands it in).
StartFix = Callable[[int], Awaitable[None]]


@dataclass
class Outcome:
    state: str
    reason: str
    round: int


class PrReconciler:
    def __init__(
        self, fleet: Fleet, api: RepoAPI, row: PrRow, lease: Lease, *, start_fix: StartFix
    ) -> None:
        self.fleet = fleet
        self.start_fix = start_fix
        self.api = api
        self.row = row
        self.lease = lease
        self.store = LoopStore(fleet.runtime.pool)
        self.repo = row.repo
        self.number = row.number

    async def run(self) -> None:
        # Tasks first, then the head: a task seen finished here has already merged into the
        # head read next, so the audit never shows findings a finished task has just fixed
        # (a new round would fix them a second time).
        tasks = await self.store.tasks_for_pr(self.repo, self.number)
        pr = await self.api.get_pull(self.number)
        if pr.state != "open":
            await self._save(report.AUDITED, "the pull request is closed", pr.head_sha)
            return
        repo_info = await self.api.get_repo()
        try:
            config = await load_repo_config(self.api, repo_info.default_branch)
        except RepoConfigError as exc:
            await self._report(
                pr,
                Outcome(report.NEEDS_HUMAN, f"`.github/review-loop.yml`: {exc}", self.row.round),
                [],
                [],
                RepoConfig(),
            )
            return
        opted_in = config.enabled or LOOP_LABEL in pr.labels or self.row.force_audit
        if not opted_in:
            log.info("%s#%d: the loop is not enabled here; nothing to do", self.repo, self.number)
            await self._save(
                report.AUDITED, "the loop is not enabled on this repository", pr.head_sha
            )
            return
        if pr.draft and not config.drafts and not self.row.force_audit:
            log.info("%s#%d is a draft; skipped", self.repo, self.number)
            await self._save(report.AUDITED, "draft pull request: skipped", pr.head_sha)
            return
        if self.row.stopped:
            await self._report(pr, Outcome(report.STOPPED, "", self.row.round), [], [], config)
            return
        await self.api.ensure_labels(LABELS)
        is_fork = pr.head_repo != self.repo  # None: the fork was deleted
        own_fix_pr = is_own_fix_pr(
            self.repo, pr.head_repo, pr.head_ref, pr.base_ref, repo_info.default_branch
        )
        if own_fix_pr and config.max_depth == 0:
            await self._save(report.AUDITED, "fix PRs are not audited (max_depth: 0)", pr.head_sha)
            return

        try:
            findings = await self._audit(pr, config, repo_info.clone_url, fork=is_fork)
        except AuditError as exc:
            outcome = Outcome(report.NEEDS_HUMAN, f"the audit could not run: {exc}", self.row.round)
            await self._report(pr, outcome, [], [], config)
            return
        if own_fix_pr:
            # The fleet's own work is audited too, but one level deep only: no issues, no fixes.
            await self._check_run(pr, *fix_pr_verdict(findings), findings)
            return
        issues = await self._ledger(pr, findings, config)
        outcome = await self._decide(pr, config, issues, tasks, fork=is_fork)
        tasks = await self.store.tasks_for_pr(self.repo, self.number)
        await self._report(pr, outcome, issues.lines, tasks, config, findings)

    # -- audit and ledger --------------------------------------------------------------------

    async def _audit(
        self, pr: PullInfo, config: RepoConfig, clone_url: str, *, fork: bool
    ) -> list[Finding]:
        mirror = await self.fleet.mirror(self.repo, clone_url, self.row.installation_id)
        if fork:  # a fork's commits reach the base repository as refs/pull/<n>/head
            await self.fleet.fetch_pull(
                mirror, self.row.installation_id, self.repo, clone_url, pr.number
            )
        auditing = audit_commit(
            self.fleet.mirrors, mirror, self.repo, pr.head_sha, config, base_sha=pr.base_sha
        )
        no_fixes_ahead = config.max_rounds == 0 or self.row.round >= config.max_rounds
        if fork or not self.fleet.runtime.settings.prewarm or self.row.stopped or no_fixes_ahead:
            return await auditing
        # While the auditor runs, prepare a worktree at the head for the fixer likely to follow.
        # It goes on in the background: the reconcile does not wait for it, the task does.
        self.fleet.spawn(self._prewarm(mirror, pr, config))
        return await auditing

    async def _prewarm(self, mirror: Path, pr: PullInfo, config: RepoConfig) -> None:
        try:
            await self.fleet.warm.prepare(self.repo, mirror, pr.head_sha, config.setup)
        except Exception:
            log.warning(
                "could not pre-warm a worktree for %s#%d", self.repo, self.number, exc_info=True
            )

    async def _ledger(self, pr: PullInfo, findings: list[Finding], config: RepoConfig) -> "Ledger":
        known = self.fleet.catalog.keys()
        groups = group_findings(findings, config.group_threshold)
        existing_issues = [
            i
            for i in await self.api.list_issues([FINDING_LABEL], state="all")
            if (parse_marker(i.body) or {}).get("pr") == self.number
        ]
        fixed_by_bot = await self.store.fixed_issue_numbers(self.repo, self.number)
        existing = [
            ExistingIssue(
                number=i.number,
                state="open" if i.state == "open" else "closed",
                state_reason=i.state_reason,
                labels=i.labels,
                marker=parse_marker(i.body),
                closed_by_bot=i.number in fixed_by_bot,
                title=i.title,
                body=i.body or "",
            )
            for i in existing_issues
        ]
        drafts = []
        agents: dict[str, str | None] = {}
        current_labels = {i.number: i.labels for i in existing_issues}
        by_fp = {e.fingerprint: e.number for e in existing if e.fingerprint}
        for group in groups:
            labels = current_labels.get(by_fp.get(group.fingerprint, -1), ())
            agent = route(group.first, labels, config, known)
            agents[group.fingerprint] = agent
            drafts.append(draft_issue(group, self.number, pr.html_url, pr.head_sha, agent))
        plan = plan_ledger(drafts, existing, pr.head_sha)
        issue_for, created = await self._apply(plan, pr.head_sha)
        return Ledger(
            plan, issue_for, agents, existing_issues + created, {g.fingerprint for g in groups}
        )

    async def _apply(
        self, plan: LedgerPlan, head_sha: str
    ) -> tuple[dict[str, int], list[IssueInfo]]:
        issue_for = dict(plan.issue_for)
        created: list[IssueInfo] = []
        for draft in plan.create:
            await self.fleet.runtime.leases.check(self.lease)
            made = await self.api.create_issue(draft.title, draft.body, list(draft.labels))
            issue_for[draft.fingerprint] = made.number
            created.append(made)
        for upd in plan.update:
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.update_issue(upd.number, title=upd.title, body=upd.body)
        for close in plan.close:
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.comment(close.number, close.comment)
            issue = await self.api.update_issue(
                close.number, state="closed", state_reason=close.state_reason
            )
            fp = (parse_marker(issue.body) or {}).get("fp")
            if close.state_reason == "completed" and isinstance(fp, str):
                await self.store.record_fixed(self.repo, self.number, fp, close.number, head_sha)
        for reopen in plan.reopen:
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.update_issue(
                reopen.number, state="open", title=reopen.title, body=reopen.body
            )
            await self.api.comment(reopen.number, reopen.comment)
            await self.api.add_labels(reopen.number, [NEEDS_HUMAN_LABEL])
        return issue_for, created

    # -- deciding what happens next ------------------------------------------------------------

    async def _decide(
        self,
        pr: PullInfo,
        config: RepoConfig,
        ledger: "Ledger",
        tasks: list[TaskRow],
        *,
        fork: bool,
    ) -> Outcome:
        round_ = self.row.round
        open_fps = ledger.open_fingerprints()
        if config.merge_fixes == "manual":
            tasks = await self._settle_proposed(tasks)
        active = [t for t in tasks if t.status in ACTIVE_TASK_STATES]
        if ledger.plan.oscillations:
            names = ", ".join(f"#{o.number}" for o in ledger.plan.oscillations)
            return Outcome(
                report.NEEDS_HUMAN, f"finding {names} came back after it had been fixed", round_
            )
        if not open_fps and not active:
            return Outcome(report.READY, "no open findings", round_)
        if active:
            proposed = [t.fix_pr for t in active if t.status == "pushed" and t.fix_pr]
            if config.merge_fixes == "manual" and len(proposed) == len(active):
                listed = ", ".join(f"#{n}" for n in sorted(proposed))
                return Outcome(
                    report.WAITING,
                    f"fix PRs {listed} wait for a person to merge them (merge_fixes: manual)",
                    round_,
                )
            return Outcome(report.FIXING, f"{len(active)} fixes running", round_)
        if fork:
            # Fix branches would have to live in the base repository and be merged into the
            # fork's branch, which the App cannot push to: fork PRs are audit only.
            return Outcome(
                report.NEEDS_HUMAN,
                f"{len(open_fps)} open findings on a pull request from a fork; review-loop "
                "audits forks but does not fix them",
                round_,
            )
        failures: dict[int, int] = {}
        conflicts: set[int] = set()
        rejected: set[int] = set()
        for t in tasks:
            if t.status == "conflict":
                # A conflict survived a rebase and a fresh run on the new head: a person's call.
                conflicts.update(t.issues)
            if t.status == "rejected":  # a person closed the fix PR: not proposed again
                rejected.update(t.issues)
            for number in set(t.failed_issues):
                failures[number] = failures.get(number, 0) + 1
        fixable: list[tuple[int, str]] = []
        stuck: dict[int, str] = {}
        for fp in open_fps:
            number = ledger.issue_for[fp]
            agent = ledger.agents.get(fp)
            if agent is None:
                stuck[number] = "no agent is routed to it"
            elif number in conflicts:
                stuck[number] = "its fix conflicts with the branch"
            elif number in rejected:
                stuck[number] = "a person closed its fix PR"
            elif failures.get(number, 0) >= MAX_FAILED_TASKS:
                stuck[number] = "failed twice"
            else:
                fixable.append((number, agent))
        labelled = {i.number for i in ledger.issues if NEEDS_HUMAN_LABEL in i.labels}
        for number in stuck:
            if number not in labelled:
                await self.api.add_labels(number, [NEEDS_HUMAN_LABEL])
        if not fixable:
            listed = ", ".join(f"#{n} ({why})" for n, why in sorted(stuck.items()))
            return Outcome(report.NEEDS_HUMAN, f"no agent could fix {listed}", round_)
        if round_ >= config.max_rounds:
            return Outcome(
                report.NEEDS_HUMAN,
                f"{len(open_fps)} findings still open after {round_} rounds "
                f"(max_rounds: {config.max_rounds})",
                round_,
            )
        round_ += 1
        queued = 0
        by_agent: dict[str, list[int]] = {}
        for number, agent in fixable:
            by_agent.setdefault(agent, []).append(number)
        settings = self.fleet.runtime.settings
        for agent, numbers in sorted(by_agent.items()):
            measured = await self.store.costs(self.repo, agent)
            costs = (
                Costs(*measured)
                if measured
                else Costs(settings.prior_spawn_s, settings.prior_run_s)
            )
            decision = plan_fanout(
                agent,
                len(numbers),
                costs,
                max_parallel=config.max_parallel,
                concurrency=settings.worker_concurrency,
                mode=settings.fanout,
            )
            await self.store.record_plan(
                self.repo,
                self.number,
                round_,
                agent,
                decision.n,
                decision.t,
                decision.s,
                decision.width,
                decision.explain(),
            )
            for batch in split(sorted(numbers), decision.width):
                await self.fleet.runtime.leases.check(self.lease)
                row = await self.store.add_task(
                    repo=self.repo,
                    pr_number=self.number,
                    issue_number=batch[0],
                    installation_id=self.row.installation_id,
                    agent=agent,
                    round=round_,
                    base_ref=pr.head_ref,
                    base_sha=pr.head_sha,
                    branch=fix_branch(self.number, batch[0]),
                    batch=batch if len(batch) > 1 else None,
                )
                if row is not None:
                    await self.start_fix(row.id)
                    queued += 1
        if queued == 0:  # this round's tasks exist already and ended: nothing will move
            return Outcome(report.NEEDS_HUMAN, f"round {round_}'s fixes all ended unfixed", round_)
        return Outcome(report.FIXING, f"round {round_}: {queued} fixes queued", round_)

    async def _settle_proposed(self, tasks: list[TaskRow]) -> list[TaskRow]:
        """Fix PRs waiting for a person: look at each again, so a merge or close whose webhook
        never arrived is seen anyway (the `closed` handler does the same on the event)."""
        changed = False
        for t in tasks:
            if t.status != "pushed" or t.fix_pr is None:
                continue
            pull = await self.api.get_pull(t.fix_pr)
            if pull.state != "open":
                await self.store.fix_pr_closed(t.id, merged=pull.merged)
                changed = True
        return await self.store.tasks_for_pr(self.repo, self.number) if changed else tasks

    # -- telling people ------------------------------------------------------------------------

    async def _report(
        self,
        pr: PullInfo,
        outcome: Outcome,
        lines: Sequence[report.IssueLine],
        tasks: Sequence[TaskRow],
        config: RepoConfig,
        findings: Sequence[Finding] = (),
    ) -> None:
        summary = report.Summary(
            state=outcome.state,
            reason=outcome.reason,
            round=outcome.round,
            max_rounds=config.max_rounds,
            head_sha=pr.head_sha,
            issues=lines,
            tasks=tasks,
            fanout=await self.store.plans(self.repo, self.number),
        )
        await self.fleet.runtime.leases.check(self.lease)
        await self.api.upsert_comment(
            self.number, {"kind": "summary", "pr": self.number}, report.render_summary(summary)
        )
        await self._check_run(pr, outcome.state, outcome.reason, findings)
        if outcome.state == report.READY:
            await self.api.add_labels(self.number, [READY_LABEL])
            await self.api.remove_label(self.number, NEEDS_HUMAN_LABEL)
            await self.api.request_reviewers(self.number, config.reviewers, config.team_reviewers)
        elif outcome.state == report.NEEDS_HUMAN:
            await self.api.add_labels(self.number, [NEEDS_HUMAN_LABEL])
            await self.api.remove_label(self.number, READY_LABEL)
        elif READY_LABEL in pr.labels:
            await self.api.remove_label(self.number, READY_LABEL)
        await self._save(
            outcome.state,
            outcome.reason,
            pr.head_sha,
            outcome.round,
            {"issues": [line.__dict__ for line in lines]},
        )

    async def _check_run(
        self, pr: PullInfo, state: str, reason: str, findings: Sequence[Finding]
    ) -> None:
        await self.fleet.runtime.leases.check(self.lease)
        await upsert_loop_check(self.api, pr.head_sha, state, reason, findings)

    async def _save(
        self,
        state: str,
        reason: str,
        sha: str,
        round_: int | None = None,
        summary: dict[str, object] | None = None,
    ) -> None:
        await self.store.save_state(
            self.repo,
            self.number,
            state=state,
            reason=reason,
            round=self.row.round if round_ is None else round_,
            audited_sha=sha,
            summary=summary or {},
        )


@dataclass
class Ledger:
    plan: LedgerPlan
    issue_for: dict[str, int]  # fingerprint -> issue, for every finding present now
    agents: dict[str, str | None]
    issues: list[IssueInfo]  # the PR's finding issues, including those just created
    present: set[str]  # fingerprints the audit found now

    def open_fingerprints(self) -> list[str]:
        """Findings present now whose issue is open (not waived, not closed by a person)."""
        waived = set(self.plan.waived)
        return [fp for fp, n in self.issue_for.items() if fp in self.present and n not in waived]

    @property
    def lines(self) -> list[report.IssueLine]:
        present = set(self.open_fingerprints())
        out = []
        for issue in sorted(self.issues, key=lambda i: i.number):
            fp = str((parse_marker(issue.body) or {}).get("fp"))
            if fp in present:
                state = "open"
            elif issue.number in self.plan.waived or issue.state_reason == "not_planned":
                state = "waived"
            else:
                state = "fixed"
            agent = self.agents.get(fp) or next(
                (
                    lbl.removeprefix(AGENT_LABEL_PREFIX)
                    for lbl in issue.labels
                    if lbl.startswith(AGENT_LABEL_PREFIX)
                ),
                None,
            )
            out.append(report.IssueLine(issue.number, issue.title, state, agent))
        return out
