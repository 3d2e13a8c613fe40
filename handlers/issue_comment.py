"""`@review-loop <verb>` in a PR comment: only people with write access may command."""

from collections.abc import Mapping
from typing import Any

from bot.github.markers import parse_marker
from bot.github.records import IssueInfo
from bot.github.repo_api import RepoAPI, can_write
from bot.labels import NEEDS_HUMAN_LABEL, WAIVED_LABEL, fix_branch, labelled_agent
from bot.loop.budget import Caps, over_cap, spent_out
from bot.loop.commands import (
    HELP,
    BadCommand,
    Command,
    fix_one_refusal,
    parse_command,
    retry_reset,
)
from bot.loop.model_store import ModelStore
from bot.loop.repo_cache import repo_cache
from bot.loop.store import LoopStore, TaskRow
from bot.loop.tasks import queue_fix, request_reconcile
from bot.repo_config import RepoConfigError
from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()

REFUSAL = (
    "Sorry @{user}, only people with write access to this repository can command "
    "review-loop. A maintainer can run the command for you."
)
NOT_A_PR = "review-loop commands work on pull requests; label an issue `agent:<name>` instead."
NOT_TRACKED = "#{n} is not a finding of this pull request, so review-loop leaves it alone."
WAIVED = "Waived by @{user}: {reason}\n\nreview-loop will not raise this finding again on this PR."
RETRYING = "Retrying #{n}: its earlier failures no longer count, and the loop fixes it again."
FIXING_ONE = "Fixing #{n} now with agent `{agent}`; the other findings are left as they are."
ALREADY_TRIED = (
    "#{n} was already tried at this commit in this round: `@review-loop retry #{n}` lets the "
    "loop try again."
)
FORK = "This pull request is from a fork: review-loop audits forks but does not fix them."


def no_command(payload: Mapping[str, Any]) -> str | None:
    """A comment whose text holds no `@review-loop` line: `command` would return at once."""
    comment = payload.get("comment")
    body = comment.get("body") if isinstance(comment, Mapping) else None
    if isinstance(body, str) and parse_command(body) is None:
        return "the comment holds no @review-loop command"
    return None


@router.register("issue_comment", action="created", skips=no_command)
async def command(ctx: Context) -> None:
    comment = ctx.envelope.comment
    issue = ctx.envelope.issue
    if comment is None or issue is None or ctx.envelope.sender is None:
        return
    parsed = parse_command(comment.body)
    if parsed is None:
        return
    user = ctx.envelope.sender.login
    reply_marker = {"kind": "reply", "comment": comment.id}
    async with ctx.github() as gh:
        api = await ctx.runtime.github.repo_api(gh, ctx.repo)
        if not can_write(await api.permission(user)):
            await api.upsert_comment(issue.number, reply_marker, REFUSAL.format(user=user))
            return
        if isinstance(parsed, BadCommand):
            await api.upsert_comment(issue.number, reply_marker, parsed.message)
            return
        if not issue.is_pull_request:
            await api.upsert_comment(issue.number, reply_marker, NOT_A_PR)
            return
        reply = await act(ctx, api, parsed, user)
        if reply:
            await api.upsert_comment(issue.number, reply_marker, reply)


async def forgive(store: LoopStore, task: TaskRow, issue: int) -> None:
    """Apply `retry #issue` to one task, compare-and-set: a concurrent retry of another issue
    of the same batch is re-read and kept, not overwritten."""
    seen: TaskRow | None = task
    for _ in range(5):
        if seen is None or (reset := retry_reset(seen, issue)) is None:
            return
        if await store.update_task_if(seen, **reset):
            return
        seen = await store.task(task.id)
    raise RuntimeError(f"task {task.id} kept changing while retry #{issue} was applied")


async def still_over_budget(ctx: Context, api: RepoAPI, store: LoopStore) -> str:
    """For `resume` on a PR the budget stopped: what to do when the config on the default
    branch still holds it (the reconcile would stop again at once); '' otherwise."""
    row = await store.get(ctx.repo, ctx.number)
    if row is None or "budget `" not in (row.reason or ""):
        return ""
    try:
        config = await repo_cache(ctx.runtime, api).config()
    except RepoConfigError:
        return ""  # the reconcile says what is wrong with the file
    models = ModelStore(ctx.runtime.pool)
    spend = await models.spend(ctx.repo, ctx.number, row.round)
    held = spent_out(config.budget, spend)
    settings = ctx.runtime.settings
    caps = Caps(settings.installation_daily_usd, settings.installation_monthly_usd)
    if held is None and caps.any:
        spent = await models.installation_spend(ctx.installation_id)
        held = over_cap(caps, spent, 0.0, strict=False)
    return f" But the budget is still reached, so no model run will start: {held}" if held else ""


async def act(ctx: Context, api: RepoAPI, cmd: Command, user: str) -> str | None:
    """Carry out a writer's command on this PR; the reply to post, if any."""
    store = LoopStore(ctx.runtime.pool)
    repo, number, iid = ctx.repo, ctx.number, ctx.installation_id
    if cmd.verb == "help":
        return HELP
    if cmd.verb == "status":
        row = await store.get(repo, number)
        if row is None:
            return "review-loop has not looked at this pull request yet: `@review-loop audit`."
        return f"State: **{row.state}** (round {row.round}). {row.reason or ''}".strip()
    if cmd.verb == "stop":
        await request_reconcile(ctx.runtime, repo, number, iid, stopped=True)
        return "Stopped. No new fixes will start here until `@review-loop resume`."
    if cmd.verb == "resume":
        await request_reconcile(ctx.runtime, repo, number, iid, stopped=False, force_audit=True)
        return "Resumed." + await still_over_budget(ctx, api, store)
    if cmd.verb == "audit":
        await request_reconcile(ctx.runtime, repo, number, iid, force_audit=True)
        return None
    if cmd.issue is not None:
        finding = await api.find_issue(cmd.issue)
        if finding is None or (parse_marker(finding.body) or {}).get("pr") != number:
            return NOT_TRACKED.format(n=cmd.issue)
        if cmd.verb == "waive":
            # One note per finding, edited: a retried delivery does not post it twice.
            marker = {"kind": "waived", "issue": cmd.issue}
            await api.add_labels(cmd.issue, [WAIVED_LABEL])
            await api.upsert_comment(cmd.issue, marker, WAIVED.format(user=user, reason=cmd.reason))
            if NEEDS_HUMAN_LABEL in finding.labels:
                await api.remove_label(cmd.issue, NEEDS_HUMAN_LABEL)
            await api.update_issue(cmd.issue, state="closed", state_reason="not_planned")
            await request_reconcile(ctx.runtime, repo, number, iid)
            return None
        if cmd.verb == "fix":
            return await fix_one(ctx, api, finding)
        if cmd.verb == "retry":
            for t in await store.tasks_for_issue(repo, cmd.issue):
                await forgive(store, t, cmd.issue)
    await request_reconcile(ctx.runtime, repo, number, iid, force_audit=True)
    return RETRYING.format(n=cmd.issue) if cmd.verb == "retry" else None


async def fix_one(ctx: Context, api: RepoAPI, finding: IssueInfo) -> str:
    """`fix #issue`: one fix task for that finding alone, at the PR's head, now."""
    store = LoopStore(ctx.runtime.pool)
    agent = labelled_agent(finding.labels, ctx.fleet.catalog.keys())
    tasks = await store.tasks_for_issue(ctx.repo, finding.number)
    refusal = fix_one_refusal(finding.state, agent, tasks, finding.number)
    if refusal is not None:
        return refusal
    assert agent is not None
    pull = await api.get_pull(ctx.number)
    if pull.head_repo != ctx.repo:
        return FORK
    row = await store.get(ctx.repo, ctx.number)
    task = await store.add_task(
        repo=ctx.repo,
        pr_number=ctx.number,
        issue_number=finding.number,
        installation_id=ctx.installation_id,
        agent=agent,
        round=max(row.round if row else 0, 1),
        base_ref=pull.head_ref,
        base_sha=pull.head_sha,
        branch=fix_branch(ctx.number, finding.number),
    )
    if task is None:
        return ALREADY_TRIED.format(n=finding.number)
    await queue_fix(ctx.runtime, task.id)
    return FIXING_ONE.format(n=finding.number, agent=agent)
