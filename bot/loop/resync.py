"""Periodic resync: webhooks are hints, and a hint can be lost for good (a reconcile that
exhausted its retries, an event GitHub never sent or sent while the bot was down for longer
than its delivery log reaches back). Two passes, both level-triggered: they only ask for a
fresh reconcile, which looks again.

- `resync_once`: PRs the loop knows, not at rest, that have not moved for a while.
- `sweep_open_prs`: every open PR of every installation whose head the loop has not seen.
"""

import logging
import os
import socket

from bot.engine.database import try_advisory_lock
from bot.engine.leases import Lease
from bot.labels import is_own_fix_pr
from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.runtime import Runtime

log = logging.getLogger(__name__)

_LOCK = 0x72737963  # "rsyc": one resync pass at a time across workers
AT_REST = ("ready", "needs-human", "stopped", "audited", "waiting")


async def resync_once(runtime: Runtime, *, quiet_for_s: float) -> list[tuple[str, int]]:
    """Reconcile again every PR not at rest whose row has not changed for `quiet_for_s`
    and that has no reconcile queued or running."""
    async with runtime.pool.connection() as conn, conn.transaction():
        if not await try_advisory_lock(conn, _LOCK):
            return []
        cur = await conn.execute(
            """SELECT p.repo, p.number, p.installation_id FROM review_loop_prs p
                WHERE p.state <> ALL(%s)
                  AND p.updated_at < now() - make_interval(secs => %s)
                  AND NOT EXISTS (
                      SELECT 1 FROM procrastinate_jobs j
                       WHERE j.task_name LIKE '%%reconcile_pr'
                         AND j.status IN ('todo', 'doing')
                         AND j.args->>'repo' = p.repo
                         AND (j.args->>'number')::int = p.number)""",
            (list(AT_REST), quiet_for_s),
        )
        stale = await cur.fetchall()
    for pr in stale:
        log.warning("resync: %s#%s has not moved; reconciling it again", pr["repo"], pr["number"])
        await request_reconcile(runtime, pr["repo"], pr["number"], pr["installation_id"])
    return [(pr["repo"], pr["number"]) for pr in stale]


SWEEP_LEASE = "sweep"
SWEEP_LEASE_TTL_S = 120.0


async def sweep_open_prs(runtime: Runtime) -> list[tuple[str, int]]:
    """Ask for a reconcile of every open PR, in every repository of every installation, whose
    head the loop has not audited and for which none is pending; [] when another worker's
    sweep is running. The bot's own fix PRs into a PR branch are left out (their fixer audits
    them). Costs one list request per repository, reads only."""
    holder = f"{socket.gethostname()}:{os.getpid()}"
    asked: list[tuple[str, int]] = []
    async with runtime.leases.hold(SWEEP_LEASE, holder, SWEEP_LEASE_TTL_S) as lease:
        if lease is None:
            return []
        async with runtime.github.app_client() as app:
            installations = [
                i.id
                async for i in app.rest.paginate(app.rest.apps.async_list_installations)
                if i.suspended_at is None
            ]
        for installation_id in installations:
            asked += await _sweep_installation(runtime, lease, installation_id)
    if asked:
        log.warning("sweep: %d open PRs had heads the loop had not seen", len(asked))
    return asked


async def _sweep_installation(
    runtime: Runtime, lease: Lease, installation_id: int
) -> list[tuple[str, int]]:
    store = LoopStore(runtime.pool)
    asked = []
    async with runtime.github.installation_client(installation_id) as gh:
        repos = gh.rest.paginate(
            gh.rest.apps.async_list_repos_accessible_to_installation,
            map_func=lambda r: r.parsed_data.repositories,
            per_page=100,
        )
        async for repo in repos:
            if repo.archived:
                continue
            owner, name = repo.full_name.split("/")
            pulls = gh.rest.paginate(
                gh.rest.pulls.async_list, owner=owner, repo=name, state="open", per_page=100
            )
            async for pr in pulls:
                head_repo = pr.head.repo.full_name if pr.head.repo is not None else None
                if is_own_fix_pr(
                    repo.full_name, head_repo, pr.head.ref, pr.base.ref, repo.default_branch
                ):
                    continue
                row = await store.get(repo.full_name, pr.number)
                if row is not None and (
                    row.audited_sha == pr.head.sha or row.handled < row.generation
                ):
                    continue  # audited at this head, or a reconcile is pending
                await runtime.leases.check(lease)
                await request_reconcile(runtime, repo.full_name, pr.number, installation_id)
                asked.append((repo.full_name, pr.number))
    return asked
