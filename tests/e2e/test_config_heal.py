"""A broken `.github/review-loop.yml` mended on the default branch heals the PRs it left in
needs-human, without a new comment to their authors; other pushes there change nothing."""

import asyncio
from pathlib import Path

from bot.demo.stack import local_stack, wait_settled
from bot.loop.store import LoopStore
from tests.e2e.scenario import AUTHOR, REPO, open_pr

CLEAN = '"""Pricing."""\n\n\ndef price() -> str:\n    return "ok"\n'
BROKEN = "max_rouds: 0\n"  # misspelt: the PR cannot be judged until a person mends it
MENDED = "max_rounds: 0\n"


async def test_mending_the_config_on_the_default_branch_heals_the_pr(
    workdir: Path, e2e_db: str
) -> None:
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        store = LoopStore(stack.runtime.pool)
        number = await open_pr(stack, pr_files={"shop/pricing.py": CLEAN}, config=BROKEN)
        broken = await wait_settled(stack, REPO, number, timeout=120)
        assert broken.state == "needs-human"
        assert "max_rouds" in (broken.reason or "")
        comments_before = len(await asyncio.to_thread(driver.comments, REPO, number))

        # A push to the default branch that leaves the config alone does not reconcile.
        await asyncio.to_thread(driver.push, REPO, "main", {"NOTES.md": "notes\n"}, as_user=AUTHOR)
        await asyncio.to_thread(stack.sandbox.hub.webhooks.wait_idle, 30)
        unmoved = await store.get(REPO, number)
        assert unmoved is not None and unmoved.generation == broken.generation

        await asyncio.to_thread(
            driver.push,
            REPO,
            "main",
            {".github/review-loop.yml": MENDED},
            as_user=AUTHOR,
            message="Mend the review-loop config",
        )

        await asyncio.to_thread(stack.sandbox.hub.webhooks.wait_idle, 30)  # the push is in
        healed = await wait_settled(stack, REPO, number, timeout=120)
        assert healed.state == "ready", healed.reason
        assert healed.generation > broken.generation
        comments = await asyncio.to_thread(driver.comments, REPO, number)
        assert len(comments) == comments_before  # the summary was edited, nothing new posted
        pull = await asyncio.to_thread(driver.pull, REPO, number)
        labels = {label["name"] for label in pull["labels"]}
        assert "review-loop:needs-human" not in labels
