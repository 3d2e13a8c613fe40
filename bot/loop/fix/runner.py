"""One fix task: lease, worktree at the PR head, agent, verification, commit, push, fix PR, land.

A task fixes one issue, or a batch of them inline: one worktree, one branch, one PR, one
commit per issue, pushed as it is made so a crashed worker's successor resumes from it. The
agent never commits or pushes; the bot does, after verifying that the finding is gone and
nothing new appeared. A single-issue task whose agent fails keeps the partial work on its
branch; in a batch, a failed issue's leftovers are undone so the next issue starts clean.

Here is the task's flow; `verify` checks the work, `branch` commits and pushes it, `land`
opens the fix PR and merges it.
"""

import os
import socket
import time
import uuid

from bot.agents.briefs import BriefFinding, BriefTask, build_brief, redact_secrets
from bot.agents.catalog import MODEL_KINDS, PAID_KINDS, AgentSpec
from bot.agents.contained import AgentResult
from bot.agents.models import ModelCall
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.audit.commits import audit_commit
from bot.audit.findings import Finding
from bot.engine.leases import Lease
from bot.git.worktrees import Worktree, record_setup_output, snapshot
from bot.github.markers import parse_marker
from bot.github.records import IssueInfo, RepoInfo, default_merge_method
from bot.github.repo_api import RepoAPI
from bot.labels import FINDING_LABEL
from bot.loop import report, round_view
from bot.loop.budget import Caps, first_run_estimate, over_budget, over_cap, spent_out
from bot.loop.fix.branch import (
    TaskBranch,
    branch_sha,
    check_not_rewritten,
    commit_fix,
    descends,
    keep_partial_work,
    reset_worktree,
)
from bot.loop.fix.job import FixJob, TaskFailed
from bot.loop.fix.land import fix_pr_text, history_kept, land, open_fix_pr
from bot.loop.fix.model_fix import (
    fix_with_model,
    model_findings,
    record_verifier_calls,
    verified_by_reviewer,
)
from bot.loop.fix.verify import (
    audit_fix_pr,
    audit_worktree,
    audit_worktree_report,
    check_agent_change,
    fixed_earlier,
    judged_paths,
    judges_of,
    run_tests,
    targets_of,
    verify,
    verify_against,
    verify_fix,
)
from bot.loop.fleet import Fleet
from bot.loop.model_store import ModelStore
from bot.loop.repo_cache import repo_cache
from bot.loop.repo_commands import RepoCommandFailed, run_repo_command
from bot.loop.store import HELD, REJECTED_ERROR, LoopStore, TaskRow, failures_text
from bot.repo_config import RepoConfig

LEASE_TTL_S = 120.0
ERROR_CHARS = 2000  # of a task's `error`
OUTPUT_LINES = 40  # of an agent's output, quoted on an issue whose fix failed
OUTPUT_CHARS = 4000
FIX_FAILED_COMMENT = "fix-failed"
FIX_COST_COMMENT = "fix-cost"
CLI_PURPOSE = "cli-fix"  # a coding-agent CLI's whole run, in the model-call ledger
# How a fix ends that its issues are told about ("rejected": a person closed the fix PR,
# and knows; "stale" and "obsolete": nothing failed).
TOLD_STATUSES = ("failed", "refused", "conflict")


# Task ends after which the task's fix PR has nothing left to do: it is closed, whichever run
# of the task opened it (a killed run's PR too), and its branch deleted. Other ends leave
# both for a person (who may reopen a fix PR they closed).
ENDS_ITS_FIX_PR = frozenset({"obsolete", "stale"})


async def run_fix(fleet: Fleet, api: RepoAPI, task: TaskRow, lease: Lease) -> None:
    """Run fix task `task` to its end, holding `lease`; TaskFailed says how it ended badly.
    A fix that failed or was refused is told on each of its issues, once; an end that leaves
    the task's fix PR with nothing to do closes it, saying why, and deletes its branch."""
    try:
        await _run_fix(fleet, api, task, lease)
    except TaskFailed as exc:
        if not exc.told and exc.status in TOLD_STATUSES:
            cost = (await ModelStore(fleet.runtime.pool).task_cost(task.id)).line()
            await fleet.runtime.leases.check(lease)
            for number in task.issues:
                await tell_failure(api, number, task.agent, exc, cost)
        if exc.status in ENDS_ITS_FIX_PR:
            await _close_fix_pr_and_branch(fleet, api, task.id, lease, exc)
        raise


async def tell_failure(
    api: RepoAPI, number: int, agent: str, failure: TaskFailed, cost: str = ""
) -> None:
    """The one comment on issue `number` that says why its latest fix did not land (and what
    the task's model calls cost)."""
    body = report.render_fix_failure(
        agent, failure.status, failure.reason, failure.output, failure.said
    )
    if cost:
        body += f"\n\n{cost}"
    await api.upsert_comment(number, {"kind": FIX_FAILED_COMMENT, "issue": number}, body)
    failure.told = True


async def _close_fix_pr_and_branch(
    fleet: Fleet, api: RepoAPI, task_id: int, lease: Lease, why: TaskFailed
) -> None:
    """Close the task's fix PR (opened by this run or an earlier one) if it is still open,
    then delete the task's branch if it is still where the task last pushed it and the bot
    closed its fix PR now (or never opened one). Closed first: GitHub would close the PR of
    a deleted head branch without a word of why."""
    row = await LoopStore(fleet.runtime.pool).task(task_id)
    if row is None:
        return
    closed = row.fix_pr is not None and await api.close_open_pull(
        row.fix_pr,
        {"kind": "obsolete", "pr": row.fix_pr},
        f"Closed: {why.reason}.",
        lambda: fleet.runtime.leases.check(lease),
    )
    # A fix PR found closed already was closed by a person (who may reopen it): its branch
    # stays. (Or by an earlier run of this task that died before deleting: left, logged by
    # nobody; rare.)
    if row.fix_pr is None or closed:
        await fleet.delete_task_branch(api, row, lambda: fleet.runtime.leases.check(lease))


async def _run_fix(fleet: Fleet, api: RepoAPI, task: TaskRow, lease: Lease) -> None:
    store = LoopStore(fleet.runtime.pool)
    # The PR and the issues as the round's reconcile saw them, when nothing happened to the
    # PR since (`round_view`); read from GitHub otherwise. The generation first: an event
    # after it (a push, a close) moves it, which the merge looks at (`land`).
    generation = await round_view.generation(fleet.runtime, task)
    view = await round_view.fresh(fleet.runtime, task, generation)
    if view is None:
        head_sha: str | None = None
        if task.pr_number is not None:
            pr = await api.get_pull(task.pr_number)
            if pr.state != "open":
                raise TaskFailed("obsolete", "the pull request was closed")
            head_sha = pr.head_sha
        view = round_view.StartView(head_sha, {}, generation)
    cached = repo_cache(fleet.runtime, api)
    repo_info = await cached.repo()
    config = await cached.config()
    if task.fix_pr is not None and await _fix_pr_settled(api, store, task, config):
        return
    spec = fleet.catalog.get(task.agent)
    if spec is None:
        raise TaskFailed("failed", f"no agent {task.agent!r} in the server's catalog")
    models = ModelStore(fleet.runtime.pool)
    reservation: int | None = None
    if spec.kind in PAID_KINDS:
        # Checked again as the run starts: tasks of the round that ran meanwhile have spent.
        # Expected per issue: a batch reserves for each of its issues.
        recorded = await models.expected_cost(task.repo, task.agent)
        per_issue = first_run_estimate(spec.price) if recorded is None else recorded
        expected = per_issue * len(task.issues)
        if config.budget is not None and task.pr_number is not None:
            spend = await models.spend(task.repo, task.pr_number, task.round)
            held = over_budget(config.budget, spend, expected, expected)
            if held is not None:
                raise TaskFailed(HELD, held)
        settings = fleet.runtime.settings
        caps = Caps(settings.installation_daily_usd, settings.installation_monthly_usd)
        if caps.any:
            reservation, held = await models.reserve(
                task.installation_id, caps, expected, f"fix task {task.id} ({task.agent})"
            )
            if held is not None:
                raise TaskFailed(HELD, held)
    try:
        await _run_admitted(fleet, api, store, lease, task, config, spec, repo_info, view)
    finally:
        if reservation is not None:  # the run's calls are in the ledger by now
            await models.release(reservation)


async def _run_admitted(
    fleet: Fleet,
    api: RepoAPI,
    store: LoopStore,
    lease: Lease,
    task: TaskRow,
    config: RepoConfig,
    spec: AgentSpec,
    repo_info: RepoInfo,
    start: round_view.StartView,
) -> None:
    """The task's run, once its budgets let it start from `start`."""
    started = time.monotonic()
    head_sha = start.head_sha
    git_token = fleet.git_token(task.installation_id, task.repo)
    mirror = await fleet.mirrors.ensure(
        task.repo,
        repo_info.clone_url,
        await git_token.get(),
        want=_wanted(task, head_sha),
        fresh_since=_fresh_since(task),
    )
    if head_sha is not None:
        await check_not_rewritten(mirror, head_sha, task.base_sha)
    method = default_merge_method(config.merge_method, repo_info.merge_methods)
    job = FixJob(
        fleet,
        api,
        store,
        lease,
        task,
        config,
        spec,
        mirror,
        repo_info.clone_url,
        method,
        generation=start.generation,
    )
    job.issues_listed.update(start.issues)
    remote_sha = await branch_sha(mirror, task.branch)
    branch = TaskBranch(
        task.branch,
        repo_info.clone_url,
        git_token,
        remote_sha,
        job.check_lease,
        remote_sha is not None,
        lambda sha: store.update_task(task.id, pushed_sha=sha),
    )
    wt, warm, resumed = await _spawn_worktree(job, remote_sha)
    try:
        if config.setup and not warm:
            try:
                await run_repo_command(wt.path, config.setup)
            except RepoCommandFailed as exc:
                raise TaskFailed("failed", f"the repository's {exc}") from exc
            await record_setup_output(wt.path)  # kept across the batch, never committed
        spawn_s = time.monotonic() - started
        await store.update_task(task.id, spawn_s=spawn_s, warm=warm)
        await _fix_batch(job, branch, wt, resumed, spawn_s=spawn_s, warm=warm)
    finally:
        await fleet.mirrors.remove_worktree(wt)


def _wanted(task: TaskRow, head_sha: str | None) -> list[str]:
    """The commits the task's spawn needs in the mirror: its base and the PR's head."""
    return list(dict.fromkeys([task.base_sha] + ([head_sha] if head_sha is not None else [])))


def _fresh_since(task: TaskRow) -> float:
    """How recent the mirror's last fetch must be for the task to skip its own: since the
    task was planned. Its branch (and its fix PR's) can then only have been moved by the
    task itself, so the mirror's view of it holds, and the first task of a PR head to spawn
    fetches for all the others. A retry fetches, since its earlier run may have pushed."""
    if task.created_at is None or task.attempts > 1:
        return time.time()
    return task.created_at.timestamp()


async def _spawn_worktree(
    job: FixJob, remote_sha: str | None
) -> tuple[Worktree, bool, list[Finding] | None]:
    """The task's worktree: on the work an earlier run left on the task branch (resumed), or
    a warm one prepared at the base commit, or a new one there. With it, whether it was warm,
    and for resumed work the base commit's findings (it is judged like new work)."""
    fleet, task = job.fleet, job.task
    path = fleet.mirrors.worktree_path(task.repo, f"task-{task.id}")
    if remote_sha is not None and await descends(job.mirror, remote_sha, task.base_sha):
        resumed = await audit_commit(
            fleet.mirrors,
            job.mirror,
            task.repo,
            task.base_sha,
            job.config,
            base_sha=None,
            catalog=fleet.auditors,
        )
        wt = await fleet.mirrors.add_worktree(job.mirror, path, task.branch, remote_sha)
        return wt, False, resumed
    warm = await fleet.warm.claim(task.repo, job.mirror, task.base_sha, path, task.branch)
    if warm is not None:
        return warm, True, None
    wt = await fleet.mirrors.add_worktree(job.mirror, path, task.branch, task.base_sha)
    return wt, False, None


async def _fix_pr_settled(
    api: RepoAPI, store: LoopStore, task: TaskRow, config: RepoConfig
) -> bool:
    """For a retried task that had opened its fix PR: True when nothing is left to do,
    because the PR was merged (the worker died before recording it) or waits for a person
    to merge it; a PR a person closed ends the task."""
    assert task.fix_pr is not None
    pull = await api.get_pull(task.fix_pr)
    if pull.merged:
        await store.update_task(task.id, status="merged")
        return True
    if pull.state != "open":
        raise TaskFailed("rejected", REJECTED_ERROR)
    if config.merge_fixes != "auto" or task.pr_number is None:
        await store.update_task(task.id, status="pushed")
        return True
    return False


async def _fix_batch(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    resumed: list[Finding] | None,
    *,
    spawn_s: float,
    warm: bool,
) -> None:
    """Fix each issue of the task in turn, then propose what was fixed. `resumed` holds the
    base commit's findings when the worktree starts from work an earlier run left."""
    t = job.task
    fixed: list[int] = []
    failed: list[tuple[int, TaskFailed]] = []
    held: list[tuple[int, str]] = []  # left for later: the budget was reached meanwhile
    run_started = time.monotonic()
    unread = [n for n in t.issues if n not in job.issues_listed]
    if len(unread) > 1:
        job.issues_listed.update(await job.api.issues_among(unread, [FINDING_LABEL]))
    for index, number in enumerate(t.issues):
        if index and job.spec.kind in PAID_KINDS:
            # A batch's model calls spend as it goes: past a budget no further issue starts.
            why = await _budget_reached(job)
            if why is not None:
                held = [(n, why) for n in t.issues[index:]]
                break
        try:
            if await fix_issue(job, branch, wt, number, resumed=resumed, keep_partial=not t.batch):
                fixed.append(number)
        except TaskFailed as exc:
            if exc.tampered:
                raise  # the worktree is not to be trusted, not even to reset it
            failed.append((number, exc))
            if exc.status in TOLD_STATUSES:
                cost = (await ModelStore(job.fleet.runtime.pool).task_cost(t.id)).line()
                await job.check_lease()
                await tell_failure(job.api, number, t.agent, exc, cost)
            # Undo this issue's leftovers so the next one starts from the last good commit.
            await reset_worktree(wt)
        await job.store.update_task(
            t.id,
            fixed=fixed,
            failed=[n for n, _ in failed],
            run_s=time.monotonic() - run_started,
            error=failures_text([(n, e.status, e.reason) for n, e in failed])[:ERROR_CHARS] or None,
        )
    worked = len(fixed) + len(failed)
    run_s = time.monotonic() - run_started  # agents, verification, commits, pushes
    if not fixed:
        if held and not failed:
            raise TaskFailed(HELD, held[0][1])
        if not failed:
            raise TaskFailed("obsolete", "every finding of the task was already gone")
        if len(failed) == 1:
            raise failed[0][1]  # told already
        status = failed[0][1].status
        text = failures_text([(n, e.status, e.reason) for n, e in failed])
        raise TaskFailed(status, text, told=True)
    if resumed is not None:
        # Resumed from the branch: it may hold a failed run's partial work, committed
        # unverified. The whole branch is judged against the base, like one new fix.
        why = await verify_against(job, wt, t.base_sha, fixed)
        if why:
            raise TaskFailed("refused", f"the work resumed from the branch fails: {why}")
    landing = time.monotonic()
    try:
        await _propose(job, branch, wt, fixed, [(n, e.reason) for n, e in failed] + held)
    finally:
        land_s = time.monotonic() - landing
        # s is what one more agent costs: a cold spawn plus its own fix PR and merge;
        # t is one issue's work: agent, verification, commit, push. A warm claim teaches
        # only t.
        await job.store.record_costs(
            t.repo,
            t.agent,
            None if warm else spawn_s + land_s,
            run_s / worked,
            prior_spawn_s=job.fleet.runtime.settings.prior_spawn_s,
        )


async def _budget_reached(job: FixJob) -> str | None:
    """The budget the task's PR or installation has used up by now (spent >= cap), or None."""
    t, models = job.task, ModelStore(job.fleet.runtime.pool)
    if job.config.budget is not None and t.pr_number is not None:
        why = spent_out(job.config.budget, await models.spend(t.repo, t.pr_number, t.round))
        if why is not None:
            return why
    settings = job.fleet.runtime.settings
    caps = Caps(settings.installation_daily_usd, settings.installation_monthly_usd)
    if not caps.any:
        return None
    return over_cap(caps, await models.installation_spend(t.installation_id), 0.0, strict=False)


async def fix_issue(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    number: int,
    *,
    resumed: list[Finding] | None,
    keep_partial: bool,
) -> bool:
    """Fix issue `number` in the worktree, commit and push it; False if there was nothing to
    fix. `resumed`: the base's findings, when the worktree holds an earlier run's work;
    `keep_partial`: push what a failing agent leaves, for a person to pick up."""
    t, config = job.task, job.config
    # Read as the task starts, not trusted from the plan: a person may have closed (waived)
    # the finding since it was planned, and this read is what keeps the fix from landing then.
    issue = job.issues_listed.pop(number, None) or await job.api.get_issue(number)
    job.issues_read[number] = issue
    if issue.state != "open":
        return False
    if job.spec.kind in MODEL_KINDS:
        return await fix_with_model(
            job, branch, wt, issue, resumed=resumed is not None, keep_partial=keep_partial
        )
    marker = parse_marker(issue.body) or {}
    report = await audit_worktree_report(wt, job.analyzers, job.fleet.auditors)
    before = report.findings
    targets = targets_of(before, marker)
    from_model = False
    if marker.get("fp") and not targets and job.spec.kind in ("command", "cli"):
        # A model reviewer's finding: found again in the file, verified by that reviewer.
        targets = await model_findings(job, wt, marker)
        from_model = bool(targets)
    if marker.get("fp") and not targets:
        if report.failed:  # not found is not fixed when an auditor did not run
            raise TaskFailed(
                "failed", f"the audit could not run: {'; '.join(report.failed.values())}"
            )
        return resumed is not None and fixed_earlier(resumed, marker, before, config.ignore)
    agent_targets = [FixTarget(f.rule, f.path, f.edits) for f in targets] or [
        FixTarget(f.rule, f.path) for f in before if f.analyzer in ("ruff", "ruff-format")
    ]
    # What the worktree holds before the agent runs (setup output, say) is not the agent's:
    # only what changes after this snapshot is judged and committed.
    since = await snapshot(wt.path)
    result = await run_agent(
        job.spec,
        wt.path,
        _brief(issue, targets),
        task=AgentTask(targets=agent_targets, task_id=str(t.id)),
        agents_dir=job.fleet.runtime.settings.installed_agents_dir,
    )
    if job.spec.kind == "cli":
        await _record_cli_run(job, result)
        job.agent_notes[number] = result.final_message
    try:
        identity = await job.identity()
        if not result.ok:
            if keep_partial:
                await keep_partial_work(
                    job.api, branch, wt, number, agent=t.agent, identity=identity, since=since
                )
            error = redact_secrets(result.error or "")
            raise TaskFailed("failed", f"agent {t.agent} failed: {error}")
        # A built-in fixer is given files; a change elsewhere is not what it was asked for.
        allowed = None
        if job.spec.kind == "builtin":  # the files of the findings, and those their fixes edit
            allowed = {f.path for f in agent_targets} | {
                e.path for f in agent_targets for e in f.edits
            }
        changed = await check_agent_change(wt, t.agent, since, allowed)
        if from_model:
            await _verify_model_fix(job, wt, issue, before, targets, changed)
        else:
            judges = judges_of(targets, t.agent, job.analyzers)
            await verify_fix(wt, before, targets, judges, job.fleet.auditors, changed=changed)
        await job.api.note_new_commit(
            await commit_fix(wt, number, issue.title, identity, paths=changed)
        )
        if config.test:
            await run_tests(wt, config.test, undo=True)
        await branch.push(wt)  # a checkpoint a successor can resume from
    except TaskFailed as exc:
        exc.output = exc.output or _output_excerpt(result.stderr_tail, result.stdout_tail)
        exc.said = exc.said or result.final_message
        raise
    return True


async def _verify_model_fix(
    job: FixJob,
    wt: Worktree,
    issue: IssueInfo,
    before: list[Finding],
    targets: list[Finding],
    changed: list[str],
) -> None:
    """A model finding fixed by a command or CLI agent: the built-in analyzers report nothing
    new in the files it `changed` (and the targets'), and the reviewer that found it says
    it is resolved (its calls go to the ledger)."""
    paths = judged_paths(changed, targets)
    after = await audit_worktree(wt, job.analyzers, job.fleet.auditors, paths)
    why = verify(before, after, [])
    if why:
        raise TaskFailed("refused", f"verification failed: {why}")
    context = f"{issue.title}\n\n{issue.body or ''}"
    calls: list[ModelCall] = []
    try:
        for target in targets:
            await verified_by_reviewer(job, wt, target, context, calls)
    finally:
        await record_verifier_calls(job, calls, f"fix task {job.task.id} (#{issue.number})")


async def _record_cli_run(job: FixJob, result: AgentResult) -> None:
    """Keep what a coding-agent CLI's run cost, as one call in the model-call ledger the
    budgets read: the cost it reported, else its tokens at the catalog's price (None: unknown)."""
    spec, t = job.spec, job.task
    tokens_in, tokens_out = result.input_tokens or 0, result.output_tokens or 0
    cost = result.cost_usd
    if cost is None and spec.price is not None and result.input_tokens is not None:
        price = spec.price
        cost = (tokens_in * price.input_per_mtok + tokens_out * price.output_per_mtok) / 1e6
    call = ModelCall(
        agent=t.agent,
        model=spec.model or f"{spec.preset} default",
        purpose=CLI_PURPOSE,
        tokens_in=tokens_in,
        tokens_out=tokens_out,
        cost_usd=cost,
        duration_s=result.duration_s,
        attempts=1,
        error=result.error,
    )
    await ModelStore(job.fleet.runtime.pool).record_calls(
        [call],
        repo=t.repo,
        pr_number=t.pr_number,
        task_id=t.id,
        round=t.round,
        installation_id=t.installation_id,
    )


def _output_excerpt(*parts: str) -> str:
    """The last lines of what the agent printed, for a person reading why a fix failed."""
    lines = "\n".join(part.rstrip() for part in parts if part.strip()).splitlines()
    return "\n".join(lines[-OUTPUT_LINES:])[-OUTPUT_CHARS:]


async def refix_issue(job: FixJob, branch: TaskBranch, wt: Worktree, number: int) -> bool:
    """`fix_issue` for the agent's rerun on a new head: the worktree holds no earlier run's
    work, and the fix PR is open, so a failing agent's leftovers are not pushed to it."""
    return await fix_issue(job, branch, wt, number, resumed=None, keep_partial=False)


def _brief(issue: IssueInfo, targets: list[Finding]) -> str:
    return build_brief(BriefTask(
        findings=[BriefFinding(f.rule, f.path, f.start_line, f.end_line, f.message,
                               f.snippet, f.analyzer) for f in targets],
        untrusted_text=f"{issue.title}\n\n{issue.body or ''}",
    ))  # fmt: skip


async def _propose(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    fixed: list[int],
    not_fixed: list[tuple[int, str]],
) -> None:
    """Open (or find) the fix PR for the task's branch and, for a PR's findings, land it;
    `not_fixed` are the batch's other issues, with why."""
    job = await history_kept(job)  # no fix PR for a PR closed or rewritten meanwhile
    t = job.task
    issue_title = None
    if len(fixed) == 1:
        issue = job.issues_read.get(fixed[0]) or await job.api.get_issue(fixed[0])
        issue_title = issue.title
    cost = (await ModelStore(job.fleet.runtime.pool).task_cost(t.id)).line()
    title, body = fix_pr_text(t.agent, fixed, not_fixed, issue_title, cost, job.agent_notes)
    fix_pr = await open_fix_pr(job, title, body, fixed, new_branch=not branch.existed)
    # GitHub's answer says the fix PR's base: the first merge, a moment from now, need not
    # read it again (`land.merge_fix_pr`).
    base_seen_at = time.monotonic() if fix_pr.base_ref == t.base_ref else None
    if cost:  # each issue is told what its fix cost, once per fix PR
        await job.check_lease()
        for number in fixed:
            await job.api.upsert_comment(
                number,
                {"kind": FIX_COST_COMMENT, "issue": number, "pr": fix_pr.number},
                f"Fix proposed in #{fix_pr.number} by agent `{t.agent}`. {cost}",
            )
    if job.config.merge_fixes != "auto" or t.pr_number is None:
        # Left for a person, who sees its check run. (A person's issue: its PR targets
        # the default branch, which we never merge, and runs the whole loop like any PR.)
        await audit_fix_pr(job, wt)
        return
    # It posts the fix PR's check run where it is needed.
    await land(job, branch, wt, fix_pr, fixed, title, refix_issue, base_seen_at=base_seen_at)


def holder_name() -> str:
    """Who holds a lease: this host and process, and this job (several run in one process,
    and each must be refused a key another of them holds)."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:12]}"
