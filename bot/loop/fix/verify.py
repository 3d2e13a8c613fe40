"""What counts as fixed, and the checks a change passes before it is committed or landed.

The pure part: the findings an issue names, and whether a change removed them and added
nothing (line numbers never count, since fixes move lines). Then the steps that run it: the
agent's change checked, the judging analyzers run after the fix, a branch judged as a whole
against a base, the repository's `test` command, and the audit of the bot's own fix PR.
"""

from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence

from bot.agents.diffcheck import check_change
from bot.agents.routing import DEFAULT_AGENTS
from bot.audit.commits import at_level, audit_commit_report
from bot.audit.diffs import changed_lines, filter_ignored, filter_to_changed
from bot.audit.external import AuditorSpec
from bot.audit.findings import Finding, normalise_code
from bot.audit.groups import FindingGroup
from bot.audit.runners import (
    AUDITORS,
    NO_AUDITORS,
    AuditError,
    AuditReport,
    audit,
    audit_report,
    ruff_reads,
)
from bot.git.worktrees import Worktree, snapshot, snapshot_changes
from bot.github.markers import parse_marker
from bot.loop.checks import fix_pr_verdict, upsert_loop_check
from bot.loop.fix.branch import head_of, reset_worktree
from bot.loop.fix.job import FixJob, TaskFailed
from bot.loop.repo_commands import RepoCommandFailed, run_repo_command

AGENT_ANALYZERS = {agent: [analyzer] for analyzer, agent in DEFAULT_AGENTS.items()}
MAX_JUDGED_PATHS = 1000  # past this many files, a verification audits the whole tree


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


def targets_of(findings: list[Finding], marker: dict[str, object]) -> list[Finding]:
    """The findings an issue's marker names: one finding, or a same-rule group (in one file,
    or in every file of the PR)."""
    fp = marker.get("fp")
    if not isinstance(fp, str):
        return []
    singles = [f for f in findings if f.fingerprint == fp]
    if singles:
        return singles
    by_rule: dict[tuple[str, str], list[Finding]] = {}
    by_file: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        by_rule.setdefault((f.analyzer, f.rule), []).append(f)
        by_file.setdefault((f.analyzer, f.rule, f.path), []).append(f)
    for same in (*by_rule.values(), *by_file.values()):
        if len(same) > 1 and FindingGroup(tuple(same)).fingerprint == fp:
            return same
    return []


def judged_paths(changed: Iterable[str], targets: Iterable[Finding]) -> list[str] | None:
    """The files a fix's verification audits: those the fix touched and its findings' own.
    The built-ins are per-file linters, and so are SARIF auditors with `changed_files`: a
    change elsewhere cannot move their findings in these files. A SARIF auditor without
    `changed_files` audits the whole tree all the same (a whole-program analyzer may find
    something new in a file the fix never touched). None (the whole tree) when a finding is
    in a file ruff reads only through the repository's own `include` setting."""
    targets = list(targets)
    if any(t.analyzer in AUDITORS and not ruff_reads(t.path) for t in targets):
        return None
    paths = sorted({*changed, *(t.path for t in targets)})
    return paths if len(paths) <= MAX_JUDGED_PATHS else None  # a command line has limits


def judges_of(targets: Sequence[Finding], agent: str, auditors: Sequence[str]) -> list[str]:
    """The analyzers that judge a fix (DESIGN 1.6): those that produced its findings; for a
    person's issue, which has none, the agent's own analyzer, or all of them."""
    return sorted({f.analyzer for f in targets}) or AGENT_ANALYZERS.get(agent, list(auditors))


def fixed_earlier(
    base_findings: list[Finding], marker: dict[str, object], now: list[Finding], ignore: list[str]
) -> bool:
    """For a task resumed from its branch, whose finding is gone from the worktree: True when
    the branch's earlier commits removed it without adding any, False when it was already
    gone at the base commit. Raises TaskFailed when the earlier commits fail verification."""
    base_targets = targets_of(base_findings, marker)
    if not base_targets:
        return False
    judges = {f.analyzer for f in base_targets}
    now = filter_ignored(now, ignore)  # as the base's audit was
    why = verify(
        [f for f in base_findings if f.analyzer in judges],
        [f for f in now if f.analyzer in judges],
        base_targets,
    )
    if why:
        raise TaskFailed("refused", f"the work resumed from the branch fails: {why}")
    return True


async def check_agent_change(
    wt: Worktree, agent: str, since: str, allowed: Collection[str] | None
) -> list[str]:
    """The paths the agent changed since snapshot `since` (taken just before it ran).
    Refuse a change that touches what no agent may touch, files outside `allowed` (None:
    any file), or that changes nothing. Only the agent's change is judged and committed:
    what `setup` left in the worktree is not the agent's."""
    problems = await check_change(wt.path, since)
    if problems:
        tampered = any("git" in p and ("config" in p or "hook" in p) for p in problems)
        raise TaskFailed("refused", "; ".join(problems), tampered=tampered)
    changed = await snapshot_changes(wt.path, since, await snapshot(wt.path))
    if not changed:
        raise TaskFailed("failed", f"agent {agent} changed nothing")
    outside = [path for path in changed if allowed is not None and path not in allowed]
    if outside:
        listed = ", ".join(outside[:10]) + (" and more" if outside[10:] else "")
        raise TaskFailed("refused", f"agent {agent} changed files it was not given: {listed}")
    return changed


async def audit_worktree_report(
    wt: Worktree, auditors: Sequence[str], catalog: Mapping[str, AuditorSpec]
) -> AuditReport:
    """`audit_report` for a fix task: a built-in that cannot run, or an audit that changed
    the worktree, fails the issue; a SARIF auditor that failed is in `failed`."""
    try:
        return await audit_report(wt.path, auditors, catalog=catalog)
    except AuditError as exc:
        raise TaskFailed("failed", f"the audit could not run: {exc}") from exc


async def audit_worktree(
    wt: Worktree,
    auditors: Sequence[str],
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
    paths: Sequence[str] | None = None,
) -> list[Finding]:
    """`audit` for a fix task (of the files `paths`, or all): an audit that cannot run, or
    that changed the worktree, fails the issue (nothing is committed)."""
    try:
        return await audit(wt.path, auditors, paths, catalog=catalog)
    except AuditError as exc:
        raise TaskFailed("failed", f"the audit could not run: {exc}") from exc


async def verify_fix(
    wt: Worktree,
    before: list[Finding],
    targets: list[Finding],
    judges: list[str],
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
    *,
    changed: Sequence[str] | None = None,
) -> None:
    """Run the judges on the fixed worktree (on the files it `changed` and the targets'
    files, see `judged_paths`; None: the whole tree); refuse the fix unless its targets are
    gone and nothing new appeared."""
    paths = None if changed is None else judged_paths(changed, targets)
    after = await audit_worktree(wt, judges, catalog, paths)
    why = verify([f for f in before if f.analyzer in judges], after, targets)
    if why:
        raise TaskFailed("refused", f"verification failed: {why}")


async def run_tests(wt: Worktree, command: str, *, undo: bool) -> None:
    """The repository's `test` command on the committed change (DESIGN 1.6). Whatever the
    tests leave in the worktree is discarded; on failure, with `undo`, so is the commit."""
    try:
        await run_repo_command(wt.path, command, what="test")
    except RepoCommandFailed as exc:
        await reset_worktree(wt, "HEAD~1" if undo else "HEAD")
        raise TaskFailed("refused", f"the repository's tests fail with this change: {exc}") from exc
    await reset_worktree(wt)


async def verify_against(job: FixJob, wt: Worktree, base: str, fixed: list[int]) -> str | None:
    """Why the worktree's change on top of `base` must not land, or None: judged like a new
    fix (the findings of the `fixed` issues gone, nothing new, the repository's tests pass)."""
    config = job.config
    report = await audit_commit_report(
        job.fleet.mirrors,
        job.mirror,
        job.task.repo,
        base,
        config,
        base_sha=None,
        catalog=job.fleet.auditors,
    )
    before = report.findings
    targets: list[Finding] = []
    for number in fixed:
        # The marker (what the finding is) is the bot's and does not change: as read before.
        issue = job.issues_read.get(number) or await job.api.get_issue(number)
        targets += targets_of(before, parse_marker(issue.body) or {})
    if not targets and report.failed:  # the fixed findings may be those of a failed auditor
        return f"the audit could not run: {'; '.join(report.failed.values())}"
    # A SARIF auditor that failed on the base judges nothing: the judges are the targets'.
    judges = sorted({f.analyzer for f in targets}) or job.analyzers
    committed = await changed_lines(job.mirror, base, await head_of(wt))  # the branch's work
    paths = judged_paths(committed, targets)
    after = await audit(wt.path, judges, paths, catalog=job.fleet.auditors)
    after = filter_ignored(at_level(after, config.min_level), config.ignore)  # as `before` is
    why = verify([f for f in before if f.analyzer in judges], after, targets)
    if why is None and config.test:
        try:
            await run_tests(wt, config.test, undo=False)
        except TaskFailed as exc:
            why = exc.reason
    return why


async def audit_fix_pr(job: FixJob, wt: Worktree) -> bool:
    """The fleet audits its own work (one level deep, unless `max_depth: 0`): every auditor
    on the lines the fix changed since the task's base, shown as the fix PR's check run on
    the worktree's HEAD, never filed. False when no check run is the fix PR's to have."""
    task, config = job.task, job.config
    if task.pr_number is None or config.max_depth < 1:
        return False  # a person's issue: its fix PR runs the whole loop as a PR of its own
    head = await head_of(wt)
    # A SARIF auditor that fails here is reported on the PR's own check run; the fix PR's
    # shows what the others found.
    changed = None
    if config.changed_lines_only:  # then the files without a changed line are not audited
        changed = await changed_lines(job.mirror, task.base_sha, head)
    paths = None if changed is None else sorted(changed)
    report = await audit_report(wt.path, job.analyzers, paths, catalog=job.fleet.auditors)
    findings = at_level(report.findings, config.min_level)
    if changed is not None:
        findings = filter_to_changed(findings, changed)
    findings = filter_ignored(findings, config.ignore)
    await job.check_lease()
    await upsert_loop_check(job.api, head, *fix_pr_verdict(findings), findings, noun="finding")
    return True
