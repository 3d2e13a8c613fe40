"""Issue events: `agent:<name>` or `review-loop:fix` asks for a fix; a person closing a
finding waives it."""

from collections.abc import Mapping
from typing import Any

from bot.github.markers import parse_marker
from bot.github.records import can_write
from bot.labels import FINDING_LABEL, fix_branch, labelled_agent, wants_fix
from bot.loop.repo_cache import repo_cache
from bot.loop.store import LoopStore
from bot.loop.tasks import queue_fix, request_reconcile
from bot.webhooks.context import Context
from bot.webhooks.routing import Router

router = Router()

LABEL_REFUSED = (
    "@{user}: the `{label}` label asks review-loop to run an agent, which only people with "
    "write access to this repository can do. A maintainer can add the label instead."
)
NO_AGENT = (
    "review-loop can't fix this issue yet: label it `agent:<name>` with an agent from the "
    "server's catalog ({agents})."
)


def asks_no_fix(payload: Mapping[str, Any]) -> str | None:
    """A label that asks for no fix, or a label on a pull request: `fix_requested` would
    return at once."""
    issue, label = payload.get("issue"), payload.get("label")
    name = label.get("name") if isinstance(label, Mapping) else None
    if not isinstance(issue, Mapping) or not isinstance(issue.get("number"), int):
        return None
    if not isinstance(name, str):
        return None
    if isinstance(issue.get("pull_request"), Mapping):
        return "a label on a pull request (its pull_request event is the one handled)"
    if not wants_fix(name):
        return f"the label {name[:100]!r} asks for no fix"
    return None


@router.register("issues", action="labeled", skips=asks_no_fix)
async def fix_requested(ctx: Context) -> None:
    issue = ctx.envelope.issue
    label = ctx.envelope.label
    if issue is None or label is None or issue.is_pull_request or not wants_fix(label.name):
        return
    sender = ctx.envelope.sender
    async with ctx.github() as gh:
        api = await ctx.runtime.github.repo_api(gh, ctx.repo)
        # Agents spend the operator's API keys: labelling asks for a run only from writers.
        if sender is None or not can_write(await api.permission(sender.login)):
            who = sender.login if sender else "someone"
            await api.upsert_comment(
                ctx.number,
                {"kind": "label-refused", "issue": ctx.number},
                LABEL_REFUSED.format(user=who, label=label.name),
            )
            return
    marker = parse_marker(issue.body) or {}
    pr = marker.get("pr")
    if isinstance(pr, int):  # a finding of a PR: that PR's loop routes and fixes it
        await request_reconcile(ctx.runtime, ctx.repo, pr, ctx.installation_id)
        return
    await fix_filed_issue(ctx, [lbl.name for lbl in issue.labels])


async def fix_filed_issue(ctx: Context, labels: list[str]) -> None:
    """A person's issue: one task against the default branch; its PR then runs the loop."""
    fleet = ctx.fleet
    agent = labelled_agent(labels, fleet.catalog.keys())
    async with ctx.github() as gh:
        api = await ctx.runtime.github.repo_api(gh, ctx.repo)
        if agent is None:
            await api.upsert_comment(
                ctx.number,
                {"kind": "no-agent", "issue": ctx.number},
                NO_AGENT.format(agents=", ".join(f"`{a}`" for a in sorted(fleet.catalog))),
            )
            return
        repo = await repo_cache(ctx.runtime, api).repo()
    head = await fleet.branch_head(
        ctx.repo, repo.clone_url, ctx.installation_id, repo.default_branch
    )
    # The task and its job in one transaction: a task without a job would wait for nothing.
    async with ctx.runtime.pool.connection() as conn, conn.transaction():
        row = await LoopStore(ctx.runtime.pool).add_task(
            repo=ctx.repo,
            pr_number=None,
            issue_number=ctx.number,
            installation_id=ctx.installation_id,
            agent=agent,
            round=1,
            base_ref=repo.default_branch,
            base_sha=head,
            branch=fix_branch(None, ctx.number),
            conn=conn,
        )
        if row is not None:
            await queue_fix(ctx.runtime, row.id, conn)


@router.register("issues", action="closed")
@router.register("issues", action="reopened")
async def finding_closed_or_reopened(ctx: Context) -> None:
    """A person closing (waiving) or reopening a finding changes what the PR waits for."""
    issue = ctx.envelope.issue
    if issue is None or FINDING_LABEL not in {lbl.name for lbl in issue.labels}:
        return
    pr = (parse_marker(issue.body) or {}).get("pr")
    if isinstance(pr, int):
        await request_reconcile(ctx.runtime, ctx.repo, pr, ctx.installation_id)
