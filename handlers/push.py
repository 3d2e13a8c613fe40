"""A change to `.github/review-loop.yml` on a default branch heals the PRs it governs.

The config is read from the default branch only, so a push there is the one moment it can
change. The repository's own file governs its PRs; the organisation's `.github` repository's
file governs every repository of the organisation that inherits it. Each open PR the loop
knows there is reconciled again: a PR left in needs-human by a broken file comes back once
the file is mended, and every PR is audited by the rules now in force.
"""

from bot.loop.repo_cache import forget_repo
from bot.loop.store import LoopStore
from bot.loop.tasks import request_reconcile
from bot.repo_config import CONFIG_PATH, ORG_CONFIG_REPO
from bot.webhooks.context import Context
from bot.webhooks.events import Envelope
from bot.webhooks.routing import Router

router = Router()


def touches_config(envelope: Envelope) -> bool:
    """Whether the push changed the config file; a forced push, whose commits GitHub does not
    list as a diff of the old head, counts as a change."""
    if envelope.forced:
        return True
    return any(
        CONFIG_PATH in (*commit.added, *commit.modified, *commit.removed)
        for commit in envelope.commits
    )


@router.register("push")
async def config_pushed(ctx: Context) -> None:
    repository = ctx.envelope.repository
    if repository is None or ctx.envelope.ref != f"refs/heads/{repository.default_branch}":
        return
    if not touches_config(ctx.envelope):
        return
    await forget_repo(ctx.runtime.pool, ctx.repo)  # the next job reads the file in force
    owner, name = ctx.repo.split("/", 1)
    store = LoopStore(ctx.runtime.pool)
    repos = await store.repos_of_owner(owner) if name == ORG_CONFIG_REPO else [ctx.repo]
    asked = 0
    async with ctx.github() as gh:
        for repo in repos:
            api = await ctx.runtime.github.repo_api(gh, repo)
            for pull in await api.list_pulls("open"):
                if await store.get(repo, pull.number) is not None:
                    await request_reconcile(ctx.runtime, repo, pull.number, ctx.installation_id)
                    asked += 1
    ctx.log.info("%s changed on %s: %d open PRs reconciled again", CONFIG_PATH, ctx.repo, asked)
