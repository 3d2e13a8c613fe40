"""The per-PR reconciler: re-read the PR, audit its head, file, route, fix, report.

Level-triggered: every run reads the current state from GitHub and the database and makes
the world match it. Every write is idempotent (markers, fingerprints, unique task keys),
so a redelivered event or a retried job changes nothing.
"""

import logging
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

from bot.agents.catalog import PAID_KINDS
from bot.agents.models import PullRequestText
from bot.agents.routing import explain_route
from bot.audit.commits import audit_commit_report
from bot.audit.findings import Finding
from bot.audit.groups import group_findings
from bot.audit.runners import AuditError, AuditReport
from bot.engine.database import Conn
from bot.engine.leases import Lease
from bot.github.markers import parse_marker
from bot.github.records import IssueInfo, PullInfo
from bot.github.repo_api import RepoAPI
from bot.github.throttle import FIRST_CHECK, write_priority
from bot.labels import (
    AGENT_LABEL_PREFIX,
    FINDING_LABEL,
    LOOP_LABEL,
    NEEDS_HUMAN_LABEL,
    PEOPLE_LABELS,
    READY_LABEL,
    is_own_fix_pr,
    label_specs,
)
from bot.loop import report, round_view
from bot.loop.budget import Caps, InstallationSpend, first_run_estimate, spent_out
from bot.loop.checks import count, upsert_loop_check
from bot.loop.fleet import Fleet
from bot.loop.model_audit import GUIDELINES_PATH, log_calls, review_changes
from bot.loop.model_store import ModelStore
from bot.loop.reconcile.decide import (
    Audit,
    Decision,
    Facts,
    Issues,
    Loop,
    Planner,
    Pull,
    Task,
    after_audit,
    before_audit,
    caught_up,
    decide,
    fixed_issues,
    opted_in_by_command,
)
from bot.loop.reconcile.fanout import Costs
from bot.loop.reconcile.issue_text import draft_issue, issue_analyzer
from bot.loop.reconcile.ledger import DUPLICATE_OF, ExistingIssue, LedgerPlan, plan_ledger
from bot.loop.repo_cache import repo_cache
from bot.loop.store import FIX_PR_LEFT_OPEN, LoopStore, PrRow, TaskRow
from bot.repo_config import RepoConfig, RepoConfigError

log = logging.getLogger(__name__)

NEEDS_HUMAN_COMMENT = "needs-human"
NEEDS_HUMAN_TEXT = "review-loop hands this finding to a person: {why}."

# Queues the fix task with this id inside the transaction of `conn`, the one that created
# the task (the job layer above hands it in).
StartFix = Callable[[int, Conn], Awaitable[None]]


class FeedbackFirst(Exception):
    """The check run of a head's first reconcile is posted and other new PRs wait for their
    first: the job is queued again (behind them) to file the issues. Re-running is safe:
    the run is remembered, so the next reconcile goes straight on to the issues."""


# Task states whose fix PR may stay open for a person: waiting for a merge, or ended so.
LEFT_FOR_A_PERSON = frozenset({"pushed", *FIX_PR_LEFT_OPEN})


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
        self.model_store = ModelStore(fleet.runtime.pool)
        self._mirror: Path | None = None
        # Issues a merged fix PR of the bot fixed: that PR ("Fixes #n") is on the issue's
        # timeline already, so closing them needs no comment.
        self._fixed_by_fix_pr: frozenset[int] = frozenset()
        self._default_branch: str | None = None

    async def run(self) -> None:
        # Tasks first, then the head: a task seen finished here has already merged into the
        # head read next, so the audit never shows findings a finished task has just fixed
        # (a new round would fix them a second time). One that finishes meanwhile is caught
        # up with by the ledger, when the audit shows its fixes (`caught_up`).
        tasks = await self.store.tasks_for_pr(self.repo, self.number)
        pr = await self.api.get_pull(self.number)
        facts, clone_url = await self._facts(pr)
        decision = before_audit(facts)
        if decision is not None:
            if not facts.pull.open:
                await self._close_fix_prs(pr, tasks)
            await self._report(pr, decision, facts.config)
            return
        await self._first_use(PEOPLE_LABELS)
        if opted_in_by_command(facts):
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.add_labels(self.number, [LOOP_LABEL])  # made by `_first_use` above
        try:
            found = await self._audit(pr, facts.config, clone_url, fork=facts.pull.fork)
        except AuditError as exc:
            audit = Audit(error=str(exc))
        else:
            audit = await self._model_audit(pr, facts, found.findings)
            # A SARIF auditor that failed: the others' findings count, the audit is incomplete.
            audit = replace(audit, incomplete={**found.failed, **audit.incomplete})
        decision = after_audit(facts, audit)
        if decision is not None:  # a fix PR's findings are shown, never filed
            await self._report(pr, decision, facts.config, findings=audit.findings, noun="finding")
            return
        first_check = (
            bool(audit.findings)
            and self.row.audited_sha != pr.head_sha
            and not await self.api.knows_check_run(report.CHECK_NAME, pr.head_sha)
        )
        # What the reviewers just spent counts before any fix starts (checked after each run).
        spend = await self.model_store.spend(self.repo, self.number, facts.loop.round)
        facts = replace(facts, spend=spend, installation=await self._installation_spend())
        # Issues of a SARIF auditor that failed are left as they are: not found is not fixed.
        silent = frozenset(name for name in audit.incomplete if name in self.fleet.auditors)
        ledger, tasks = await self._ledger(
            pr, audit.findings, facts.config, tasks, silent, first_check=first_check
        )
        # Fix PRs a person merges (manual, or GitHub refused the bot's merge): a merge or close
        # whose webhook never arrived is seen here.
        if facts.config.merge_fixes == "manual" or any(
            t.status == "pushed" and t.error for t in tasks
        ):
            tasks = await self._settle_proposed(tasks)
        issues = ledger.view()
        planner = await self._planner(issues)
        decision = decide(facts, audit, issues, [Task.of(t) for t in tasks], planner)
        if decision.tasks:
            await self._keep_view(pr, ledger, {n for t in decision.tasks for n in t.issues})
        await self.apply(decision)
        tasks = await self.store.tasks_for_pr(self.repo, self.number)
        open_findings = ledger.open_findings()  # waived findings are neither counted nor shown
        held = [d.title for d in ledger.plan.held]
        await self._report(
            pr, decision, facts.config, ledger.lines, tasks, open_findings, held=held
        )

    async def _keep_view(self, pr: PullInfo, ledger: "Ledger", numbers: set[int]) -> None:
        """Keep the PR's head and the issues `numbers` as this reconcile leaves them for the
        fix tasks it queues (`round_view`): those it edited, closed or reopened are left out
        (their copy here is older than GitHub's)."""
        plan = ledger.plan
        changed = (
            {u.number for u in plan.update}
            | {c.number for c in plan.close}
            | {r.number for r in plan.reopen}
        )
        issues = [
            i
            for i in ledger.issues
            if i.number in numbers and i.number not in changed and i.state == "open"
        ]
        await round_view.keep(
            self.fleet.runtime, self.repo, self.number, self.row.generation, pr.head_sha, issues
        )

    # -- reading -------------------------------------------------------------------------------

    async def _facts(self, pr: PullInfo) -> tuple[Facts, str]:
        """What the first rules look at, and the clone URL; of a closed PR nothing more is read
        (the first rule settles it)."""
        loop = Loop(
            round=self.row.round, stopped=self.row.stopped, force_audit=self.row.force_audit
        )
        pull = Pull(
            number=pr.number,
            head_sha=pr.head_sha,
            head_ref=pr.head_ref,
            open=pr.state == "open",
            draft=pr.draft,
            fork=pr.head_repo != self.repo,  # None: the fork was deleted
            labels=frozenset(pr.labels),
        )
        if not pull.open:
            return Facts(pull, loop), ""
        cached = repo_cache(self.fleet.runtime, self.api)
        repo_info = await cached.repo()
        own = is_own_fix_pr(
            self.repo, pr.head_repo, pr.head_ref, pr.base_ref, repo_info.default_branch
        )
        pull = replace(pull, own_fix_pr=own)
        self._default_branch = repo_info.default_branch
        try:
            config = await cached.config()
        except RepoConfigError as exc:
            return Facts(pull, loop, config_error=str(exc)), repo_info.clone_url
        spend = await self.model_store.spend(self.repo, self.number, loop.round)
        facts = Facts(pull, loop, config, spend=spend, caps=self._caps())
        return replace(facts, installation=await self._installation_spend()), repo_info.clone_url

    def _caps(self) -> Caps:
        settings = self.fleet.runtime.settings
        return Caps(settings.installation_daily_usd, settings.installation_monthly_usd)

    async def _installation_spend(self) -> InstallationSpend:
        if not self._caps().any:
            return InstallationSpend()
        return await self.model_store.installation_spend(self.row.installation_id)

    async def _planner(self, issues: Issues) -> Planner:
        """The fan-out planner's inputs: the costs measured for the agents routed here."""
        settings = self.fleet.runtime.settings
        measured: dict[str, Costs] = {}
        paid: set[str] = set()
        expected: dict[str, float] = {}
        for agent in sorted({a for a in issues.agents.values() if a is not None}):
            costs = await self.store.costs(self.repo, agent)
            if costs is not None:
                measured[agent] = Costs(*costs)
            spec = self.fleet.catalog.get(agent)
            if spec is not None and spec.kind in PAID_KINDS:
                paid.add(agent)
                expected[agent] = await self._expected_cost(agent)
        return Planner(
            prior=Costs(settings.prior_spawn_s, settings.prior_run_s),
            concurrency=settings.worker_concurrency,
            mode=settings.fanout,
            measured=measured,
            paid=frozenset(paid),
            expected_usd=expected,
        )

    async def _expected_cost(self, agent: str) -> float:
        """What `agent` is expected to cost per issue (a review call: per call): the mean of
        its latest runs, or before its first its model's price for a typical run."""
        recorded = await self.model_store.expected_cost(self.repo, agent)
        if recorded is not None:
            return recorded
        spec = self.fleet.catalog.get(agent)
        return first_run_estimate(spec.price if spec is not None else None)

    # -- audit and ledger --------------------------------------------------------------------

    async def _model_audit(self, pr: PullInfo, facts: Facts, found: list[Finding]) -> Audit:
        """The model reviewers' part of the audit (not on the bot's own fix PRs, which the
        built-in analyzers judge): their findings join the analyzers'; a reviewer that
        failed keeps the findings it reported before and leaves the audit incomplete."""
        config = facts.config
        reviewers = [name for name in config.model_auditors if name not in self.fleet.auditors]
        if not reviewers or facts.pull.own_fix_pr or self._mirror is None:
            return Audit(found)
        capped = spent_out(config.budget, facts.spend)
        reservation: int | None = None
        if capped is None and facts.caps.any:
            expected = sum([await self._expected_cost(name) for name in reviewers])
            reservation, capped = await self.model_store.reserve(
                self.row.installation_id, facts.caps, expected, f"audit of PR {self.number}"
            )
        if capped is not None:
            # At the cap no reviewer is asked: what each reported before still stands.
            kept = list(found)
            for name in reviewers:
                kept += await self.model_store.findings(self.repo, self.number, name)
            return Audit(kept, incomplete=dict.fromkeys(reviewers, capped))
        try:
            return await self._review(pr, config, found)
        finally:
            if reservation is not None:  # the audit's calls are in the ledger by now
                await self.model_store.release(reservation)

    async def _review(self, pr: PullInfo, config: RepoConfig, found: list[Finding]) -> Audit:
        assert self._mirror is not None
        guidelines = await self.api.read_file(GUIDELINES_PATH, ref=self._default_branch)
        try:
            models = await review_changes(
                self.fleet.catalog,
                config,
                self._mirror,
                pr.head_sha,
                pr.base_sha,
                pr=PullRequestText(pr.title, pr.body or ""),
                guidelines=guidelines or "",
                cache=self.fleet.review_cache,
                analyzers=self.fleet.auditors,
            )
        except AuditError as exc:
            return Audit(error=str(exc))
        log_calls(models.calls, f"audit of {self.repo}#{self.number}")
        await self.model_store.record_calls(
            models.calls,
            repo=self.repo,
            pr_number=self.number,
            round=self.row.round,
            installation_id=self.row.installation_id,
        )
        kept = list(models.findings)
        for name, findings in models.by_auditor.items():
            await self.model_store.replace_findings(
                self.repo, self.number, name, findings, pr.head_sha
            )
        for name in models.failed:
            kept += await self.model_store.findings(self.repo, self.number, name)
        return Audit([*found, *kept], incomplete=models.failed)

    async def _audit(
        self, pr: PullInfo, config: RepoConfig, clone_url: str, *, fork: bool
    ) -> AuditReport:
        mirror = await self.fleet.mirror(self.repo, clone_url, self.row.installation_id)
        self._mirror = mirror
        if fork:  # a fork's commits reach the base repository as refs/pull/<n>/head
            await self.fleet.fetch_pull(
                mirror, self.row.installation_id, self.repo, clone_url, pr.number
            )
        auditing = audit_commit_report(
            self.fleet.mirrors,
            mirror,
            self.repo,
            pr.head_sha,
            config,
            base_sha=pr.base_sha,
            catalog=self.fleet.auditors,
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

    async def _ledger(
        self,
        pr: PullInfo,
        findings: Sequence[Finding],
        config: RepoConfig,
        tasks: list[TaskRow],
        silent: frozenset[str] = frozenset(),
        *,
        first_check: bool = False,
    ) -> tuple["Ledger", list[TaskRow]]:
        """The issues made to match `findings`, and `tasks` caught up with: a fix task that
        merged while the head was audited counts as merged when the audit shows its fixes,
        so its issues close as its fix PR's did (no comment) and this reconcile tells the
        state the next one would (which then changes nothing). With `first_check`, the head's
        check run is posted once the plan is known and before any issue is written."""
        known = self.fleet.catalog.keys()
        groups = group_findings(
            findings,
            config.group_threshold,
            route=lambda f: explain_route(f, (), config, known).agent,
        )
        existing_issues = [
            i
            for i in await self.api.list_issues([FINDING_LABEL], state="all")
            if (parse_marker(i.body) or {}).get("pr") == self.number
            and not (i.state == "open" and issue_analyzer(i.body or "") in silent)
        ]
        fixed_by_bot = await self.store.fixed_issue_numbers(self.repo, self.number)
        existing = [
            ExistingIssue(
                number=i.number,
                state="open" if i.state == "open" else "closed",
                state_reason=i.state_reason,
                labels=i.labels,
                marker=(marker := parse_marker(i.body)),
                # Closed as fixed (recorded), or as a duplicate (its marker says of which).
                closed_by_bot=i.number in fixed_by_bot
                or isinstance((marker or {}).get(DUPLICATE_OF), int),
                title=i.title,
                body=i.body or "",
            )
            for i in existing_issues
        ]
        drafts = []
        agents: dict[str, str | None] = {}
        why_no_agent: dict[str, str] = {}
        current_labels = {i.number: i.labels for i in existing_issues}
        by_fp = {e.fingerprint: e.number for e in existing if e.fingerprint}
        for group in groups:
            labels = current_labels.get(by_fp.get(group.fingerprint, -1), ())
            # A group goes to a fixer only if the fixer can fix all of it.
            routing = explain_route(replace(group.first, fix=group.fix), labels, config, known)
            agents[group.fingerprint] = routing.agent
            draft = draft_issue(
                group, self.number, pr.html_url, pr.head_sha, routing.agent, routing.why
            )
            if draft.why_no_agent is not None:
                why_no_agent[group.fingerprint] = draft.why_no_agent
            drafts.append(draft)
        plan = plan_ledger(drafts, existing, pr.head_sha, config.max_open_issues)
        # Ahead of the issues it files, when it files any: with nothing to file, the report
        # follows at once and posts the run complete (one POST, not a POST and a PATCH).
        # Waived findings are neither counted nor annotated, as in the report.
        if first_check and plan.create:
            waived = set(plan.waived)
            shown = [
                f
                for g in groups
                if plan.issue_for.get(g.fingerprint) not in waived
                for f in g.findings
            ]
            if shown:
                await self._first_check(pr, shown)
        # An open issue with a fixed record that stays open: the close after the record never
        # happened, or the issue was reopened. The record no longer holds (a person closing it
        # later waives it).
        closing = {c.number for c in plan.close}
        stale = {e.number for e in existing if e.state == "open" and e.closed_by_bot} - closing
        if stale:
            await self.fleet.runtime.leases.check(self.lease)
            await self.store.forget_fixed(self.repo, self.number, stale)
        tasks = caught_up(tasks, await self.store.tasks_for_pr(self.repo, self.number), plan.open)
        self._fixed_by_fix_pr = frozenset(
            n for t in tasks if t.status == "merged" for n in fixed_issues(t)
        )
        issue_for, created = await self._apply_ledger(plan, pr.head_sha)
        ledger = Ledger(
            plan,
            issue_for,
            agents,
            existing_issues + created,
            {g.fingerprint for g in groups},
            why_no_agent,
            {g.fingerprint: g.findings for g in groups},
        )
        return ledger, tasks

    async def _apply_ledger(
        self, plan: LedgerPlan, head_sha: str
    ) -> tuple[dict[str, int], list[IssueInfo]]:
        issue_for = dict(plan.issue_for)
        created: list[IssueInfo] = []
        for draft in plan.create:
            await self.fleet.runtime.leases.check(self.lease)
            await self._first_use(draft.labels)
            made = await self.api.create_issue(draft.title, draft.body, list(draft.labels))
            issue_for[draft.fingerprint] = made.number
            created.append(made)
            if draft.why_no_agent is not None:  # filed for a person: say why, once
                await self._tell_needs_human(made.number, draft.why_no_agent)
        for upd in plan.update:
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.update_issue(upd.number, title=upd.title, body=upd.body)
        for close in plan.close:
            await self.fleet.runtime.leases.check(self.lease)
            # Marked per head: a retry after a failure (or a lost answer) edits the one
            # comment instead of posting it again.
            if close.state_reason != "completed" or close.number not in self._fixed_by_fix_pr:
                await self.api.upsert_comment(
                    close.number, {"kind": "close", "sha": head_sha}, close.comment
                )
            # Recorded before the close: a crash between the two leaves an open issue with a
            # record (the next reconcile closes it, or forgets the record), never an issue the
            # bot closed that reads as closed by a person (waived).
            if close.state_reason == "completed" and close.fingerprint:
                await self.store.record_fixed(
                    self.repo, self.number, close.fingerprint, close.number, head_sha
                )
            await self.api.update_issue(
                close.number, body=close.body, state="closed", state_reason=close.state_reason
            )
        for reopen in plan.reopen:
            await self.fleet.runtime.leases.check(self.lease)
            await self.api.update_issue(
                reopen.number, state="open", title=reopen.title, body=reopen.body
            )
            await self.api.upsert_comment(
                reopen.number, {"kind": "reopen", "sha": head_sha}, reopen.comment
            )
            await self._first_use([NEEDS_HUMAN_LABEL])
            await self.api.add_labels(reopen.number, [NEEDS_HUMAN_LABEL])
        return issue_for, created

    # -- acting on the decision ----------------------------------------------------------------

    async def apply(self, decision: Decision) -> None:
        """Do what the decision says. Each effect is idempotent: a label already there, a plan
        or a task already recorded change nothing, and only a task just created is queued."""
        for number, why in sorted(decision.needs_human.items()):
            await self.fleet.runtime.leases.check(self.lease)
            await self._first_use([NEEDS_HUMAN_LABEL])
            await self.api.add_labels(number, [NEEDS_HUMAN_LABEL])
            await self._tell_needs_human(number, why)
        for plan in decision.plans:
            await self.store.record_plan(
                self.repo,
                self.number,
                decision.round,
                plan.agent,
                plan.n,
                plan.t,
                plan.s,
                plan.width,
                plan.explain(),
            )
        for task in decision.tasks:
            await self.fleet.runtime.leases.check(self.lease)
            # The task and its job in one transaction: a task without a job would wait,
            # `queued`, for nothing.
            async with self.fleet.runtime.pool.connection() as conn, conn.transaction():
                row = await self.store.add_task(
                    repo=self.repo,
                    pr_number=self.number,
                    issue_number=task.issues[0],
                    installation_id=self.row.installation_id,
                    agent=task.agent,
                    round=decision.round,
                    base_ref=task.base_ref,
                    base_sha=task.base_sha,
                    branch=task.branch,
                    batch=list(task.issues) if len(task.issues) > 1 else None,
                    conn=conn,
                )
                if row is not None:
                    await self.start_fix(row.id, conn)

    async def _relabel(self, pr: PullInfo, add: str | None = None, remove: str = "") -> None:
        if add is not None and add not in pr.labels:
            await self._first_use([add])
            await self.api.add_labels(self.number, [add])
        if remove in pr.labels:
            await self.api.remove_label(self.number, remove)

    async def _first_use(self, names: Sequence[str]) -> None:
        """Make the bot's labels among `names` on the repository before they are first
        given (each once per repository, through the shared cache), in their colours."""
        await repo_cache(self.fleet.runtime, self.api).ensure_labels(label_specs(names))

    async def _tell_needs_human(self, number: int, why: str) -> None:
        """The one comment on an issue that says why the loop hands it to a person (edited
        in place when the reason changes)."""
        await self.api.upsert_comment(
            number,
            {"kind": NEEDS_HUMAN_COMMENT, "issue": number},
            NEEDS_HUMAN_TEXT.format(why=why),
        )

    async def _close_fix_prs(self, pr: PullInfo, tasks: Sequence[TaskRow]) -> None:
        """The PR is closed (or merged): its fix PRs left open for a person (`pushed`, or
        ended `conflict` or `failed` with their PR open) have nothing left to fix. Each is
        closed with a comment, its branch deleted if it is still where its task pushed it
        (a person's later push keeps it), and a `pushed` task ends `obsolete`. Left open,
        they would wait for ever, and once the PR's branch is deleted GitHub retargets them
        to the default branch, where a person might merge them. A running task is left to
        its own checks (it refuses a fix PR GitHub moved onto another base) and its own end
        (which deletes its branch)."""
        left = [t for t in tasks if t.fix_pr is not None and t.status in LEFT_FOR_A_PERSON]
        if not left:
            return  # the usual case: every fix merged (nothing read)
        why = f"#{self.number} was {'merged' if pr.merged else 'closed'}"
        # A task is `pushed` from its fix PR's opening on, also while it still works (a
        # rebase, the agent's rerun): those whose job is queued or running are left alone.
        running = set(await self.store.fixes_under_way(self.repo, self.number))
        for t in left:
            if t.fix_pr is None or t.id in running:
                continue
            closed = await self.api.close_open_pull(
                t.fix_pr,
                {"kind": "obsolete", "pr": t.fix_pr},
                f"Closed: {why}, so this fix for it is no longer needed.",
                lambda: self.fleet.runtime.leases.check(self.lease),
            )
            if closed:  # not one a person closed: they may reopen it
                await self.fleet.delete_task_branch(
                    self.api, t, lambda: self.fleet.runtime.leases.check(self.lease)
                )
            if t.status == "pushed":
                await self.store.update_task(
                    t.id, status="obsolete", error=f"the pull request was closed: {why}"
                )

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
        decision: Decision,
        config: RepoConfig,
        lines: Sequence[report.IssueLine] = (),
        tasks: Sequence[TaskRow] = (),
        findings: Sequence[Finding] = (),
        noun: str = "open finding",
        held: Sequence[str] = (),
    ) -> None:
        """Tell the decision as far as it says: the PR's row, the check run, or everyone.
        `findings` are those the check run annotates and counts (as `noun`s)."""
        if decision.tell == "row":
            log.info("%s#%d: %s", self.repo, self.number, decision.reason)
            await self._save(decision, pr.head_sha, {})
            return
        if decision.tell == "check":
            await self._check_run(pr, decision, findings, noun)
            return
        summary = report.Summary(
            state=decision.state,
            reason=decision.reason,
            round=decision.round,
            max_rounds=config.max_rounds,
            head_sha=pr.head_sha,
            issues=lines,
            tasks=tasks,
            fanout=await self.store.plans(self.repo, self.number),
            spend=await self.model_store.spend(self.repo, self.number, decision.round),
            held=held,
            max_open_issues=config.max_open_issues,
        )
        await self.fleet.runtime.leases.check(self.lease)
        await self.api.upsert_comment(
            self.number,
            {"kind": "summary", "pr": self.number},
            report.render_summary(summary),
            born=pr.created_at,
        )
        await self._check_run(pr, decision, findings, noun)
        # Against the labels the PR had when this reconcile read it: only a change is a write.
        if decision.state == report.READY:
            await self._relabel(pr, add=READY_LABEL, remove=NEEDS_HUMAN_LABEL)
            await self.api.request_reviewers(self.number, config.reviewers, config.team_reviewers)
        elif decision.state == report.NEEDS_HUMAN:
            await self._relabel(pr, add=NEEDS_HUMAN_LABEL, remove=READY_LABEL)
        else:
            await self._relabel(pr, remove=READY_LABEL)
        await self._save(decision, pr.head_sha, {"issues": [line.__dict__ for line in lines]})

    async def _first_check(self, pr: PullInfo, findings: Sequence[Finding]) -> None:
        """A head's first reconcile tells the PR's author the audit's result before it files
        anything: the check run, in progress with the findings annotated, goes ahead of the
        issues and the summary comment, and ahead of other writes waiting in the throttle.
        The report at the end edits it with the loop's state."""
        await self.fleet.runtime.leases.check(self.lease)
        found = count(len(findings), "finding")
        with write_priority(FIRST_CHECK):
            await upsert_loop_check(
                self.api,
                pr.head_sha,
                report.FIXING,
                f"The audit found {found} (annotated). Their issues are being filed; this "
                "check run is updated with the loop's state when that is done.",
                findings,
                title=f"Audited: {found}; filing issues",
                born=pr.created_at,
            )
        # Other new PRs of the installation wait for a worker: their check runs go before
        # this one's issues. The job gives its worker back and comes again after them (only
        # with the memo, which tells the next run that this one is posted).
        if self.api.memo is not None and await self.store.first_feedback_waiting(
            self.row.installation_id, self.repo, self.number
        ):
            raise FeedbackFirst(f"{self.repo}#{self.number}: check run posted, issues later")

    async def _check_run(
        self, pr: PullInfo, decision: Decision, findings: Sequence[Finding], noun: str
    ) -> None:
        await self.fleet.runtime.leases.check(self.lease)
        await upsert_loop_check(
            self.api,
            pr.head_sha,
            decision.state,
            decision.reason,
            findings,
            title=decision.check_title,
            noun=noun,
            born=pr.created_at,
        )

    async def _save(self, decision: Decision, sha: str, summary: dict[str, object]) -> None:
        await self.store.save_state(
            self.repo,
            self.number,
            state=decision.state,
            reason=decision.reason,
            round=decision.round,
            audited_sha=sha,
            summary=summary,
        )


@dataclass
class Ledger:
    plan: LedgerPlan
    issue_for: dict[str, int]  # fingerprint -> issue, for every finding present now
    agents: dict[str, str | None]
    issues: list[IssueInfo]  # the PR's finding issues, including those just created
    present: set[str]  # fingerprints the audit found now
    why_no_agent: dict[str, str]  # fingerprint -> why no agent fixes it
    members: dict[str, tuple[Finding, ...]]  # fingerprint -> the findings of its group

    def open_findings(self) -> list[Finding]:
        """The findings whose issue is open: what the check run annotates and counts."""
        found = [f for fp in self.open_fingerprints() for f in self.members.get(fp, ())]
        return sorted(found, key=lambda f: (f.path, f.start_line, f.analyzer, f.rule))

    def view(self) -> Issues:
        """The ledger as the rules look at it."""
        return Issues(
            open={fp: self.issue_for[fp] for fp in self.open_fingerprints()},
            agents=self.agents,
            why_no_agent=self.why_no_agent,
            came_back=[o.number for o in self.plan.oscillations],
            needs_human=frozenset(i.number for i in self.issues if NEEDS_HUMAN_LABEL in i.labels),
        )

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
