"""A fix by a model agent (catalog kind `openai` or `anthropic`): one finding per call.

The model answers with search/replace edits that the bot applies (`apply_edits`: only the
finding's file, never workflows or agent configuration); then the diff guard checks the
change as for any agent. A model finding is then verified by the check that found it: the
reviewer's own model is asked whether the finding is resolved in the code after the fix, and
the fix is kept only when it says so **and** the built-in analyzers report nothing new
**and** the repository's `test` passes. A ruff finding routed to a model fixer is judged by
ruff, as always. A model finding routed to a coding-agent CLI or a command agent is verified
the same way (`model_findings`, `verified_by_reviewer`, `record_verifier_calls`).
"""

import dataclasses
import logging

from bot.agents.catalog import MODEL_KINDS
from bot.agents.models import ModelCall, ModelError, fix_finding, open_model_client
from bot.agents.models import verify_fix as ask_verifier
from bot.audit.findings import Finding, normalise_code, split_lines
from bot.git.worktrees import Worktree, snapshot
from bot.github.markers import parse_marker
from bot.github.records import IssueInfo
from bot.loop.fix.branch import TaskBranch, commit_fix, keep_partial_work
from bot.loop.fix.job import FixJob, TaskFailed
from bot.loop.fix.verify import (
    audit_worktree,
    check_agent_change,
    judged_paths,
    run_tests,
    targets_of,
    verify,
)
from bot.loop.model_audit import log_calls
from bot.loop.model_store import ModelStore

log = logging.getLogger(__name__)


async def fix_with_model(
    job: FixJob,
    branch: TaskBranch,
    wt: Worktree,
    issue: IssueInfo,
    *,
    resumed: bool,
    keep_partial: bool,
) -> bool:
    """Fix `issue` with the task's model agent, verify, commit and push; False when its
    finding is gone (and no earlier run on this branch removed it)."""
    t, config = job.task, job.config
    marker = parse_marker(issue.body) or {}
    before = await audit_worktree(wt, job.analyzers, job.fleet.auditors)
    targets = targets_of(before, marker)
    from_model = False
    if not targets:
        if not marker.get("fp"):
            raise TaskFailed(
                "failed", f"agent {t.agent} is a model fixer: it fixes findings, and "
                f"issue #{issue.number} names none"
            )  # fmt: skip
        targets = await model_findings(job, wt, marker)
        if not targets:
            return resumed  # gone: removed by the branch's earlier commits, or already
        from_model = True
    context = f"{issue.title}\n\n{issue.body or ''}"
    since = await snapshot(wt.path)  # the model's change is what differs from this
    calls: list[ModelCall] = []
    try:
        try:
            async with open_model_client(job.spec) as client:
                for target in targets:  # one finding per call, in one worktree
                    result = await fix_finding(
                        client, wt.path, target, allowed_paths=[target.path], untrusted_text=context
                    )
                    calls += result.calls
        except ModelError as error:
            calls += error.calls
            if keep_partial:
                identity = await job.identity()
                await keep_partial_work(
                    job.api, branch, wt, issue.number, agent=t.agent, identity=identity, since=since
                )
            raise TaskFailed("failed", f"agent {t.agent} failed: {error}") from None
        allowed = {target.path for target in targets}
        changed = await check_agent_change(wt, t.agent, since, allowed)
        paths = judged_paths(changed, targets)
        after = await audit_worktree(wt, job.analyzers, job.fleet.auditors, paths)
        why = verify(before, after, [] if from_model else targets)
        if why:
            raise TaskFailed("refused", f"verification failed: {why}")
        if from_model:
            for target in targets:
                await verified_by_reviewer(job, wt, target, context, calls)
    finally:
        log_calls(calls, f"fix task {t.id} (#{issue.number})")
        await ModelStore(job.fleet.runtime.pool).record_calls(
            calls,
            repo=t.repo,
            pr_number=t.pr_number,
            task_id=t.id,
            round=t.round,
            installation_id=t.installation_id,
        )
    identity = await job.identity()
    await job.api.note_new_commit(
        await commit_fix(wt, issue.number, issue.title, identity, paths=changed)
    )
    if config.test:
        await run_tests(wt, config.test, undo=True)
    await branch.push(wt)
    return True


async def model_findings(job: FixJob, wt: Worktree, marker: dict[str, object]) -> list[Finding]:
    """The model findings the issue names (one, or a group of one category in one file), as
    the reviewer reported them, found again in the worktree's file (lines move); those whose
    code is gone are left out."""
    t = job.task
    if t.pr_number is None:
        return []
    stored = await ModelStore(job.fleet.runtime.pool).findings(t.repo, t.pr_number)
    named = targets_of(stored, marker)
    found = []
    for finding in named:
        try:
            text = (wt.path / finding.path).read_text(encoding="utf-8")
        except (OSError, UnicodeDecodeError):
            continue
        moved = relocate(finding, text)
        if moved is not None:
            found.append(moved)
    return found


async def record_verifier_calls(job: FixJob, calls: list[ModelCall], what: str) -> None:
    """Log the verifier's calls for a non-model fixer's task and keep them in the ledger."""
    t = job.task
    log_calls(calls, what)
    await ModelStore(job.fleet.runtime.pool).record_calls(
        calls,
        repo=t.repo,
        pr_number=t.pr_number,
        task_id=t.id,
        round=t.round,
        installation_id=t.installation_id,
    )


def relocate(finding: Finding, text: str) -> Finding | None:
    """`finding` at the lines of `text` where its flagged code is now (the nearest copy to
    where it was), or None when the code is gone."""
    lines = split_lines(text)
    want = normalise_code(finding.snippet)
    span = finding.end_line - finding.start_line + 1
    starts = [
        start
        for start in range(1, len(lines) - span + 2)
        if normalise_code("\n".join(lines[start - 1 : start - 1 + span])) == want
    ]
    if not want or not starts:
        return None
    start = min(starts, key=lambda s: abs(s - finding.start_line))
    snippet = "\n".join(lines[start - 1 : start - 1 + span])
    return dataclasses.replace(
        finding, start_line=start, end_line=start + span - 1, snippet=snippet
    )


async def verified_by_reviewer(
    job: FixJob, wt: Worktree, finding: Finding, context: str, calls: list[ModelCall]
) -> None:
    """Ask the model that found `finding` whether the fix resolved it; refuse the fix when
    it says no, or cannot be asked. The calls it takes are added to `calls`."""
    spec = job.fleet.catalog.get(finding.analyzer)
    if spec is None or spec.kind not in MODEL_KINDS:
        raise TaskFailed(
            "refused", f"no model reviewer {finding.analyzer!r} in the catalog to verify the fix"
        )
    after = (wt.path / finding.path).read_text(encoding="utf-8", errors="replace")
    try:
        async with open_model_client(spec) as client:
            verdict = await ask_verifier(client, finding, after, untrusted_text=context)
    except ModelError as error:
        calls += error.calls
        raise TaskFailed(
            "refused", f"the verifier {finding.analyzer} could not judge the fix: {error}"
        ) from None
    calls += verdict.calls
    if not verdict.resolved:
        raise TaskFailed(
            "refused",
            f"the verifier {finding.analyzer} says the finding is not resolved: {verdict.reason}",
        )
