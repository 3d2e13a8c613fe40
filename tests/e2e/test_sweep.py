"""The sweep: open PRs whose webhooks never arrived are found by listing them."""

import asyncio
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.loop.resync import sweep_open_prs
from bot.loop.store import LoopStore
from tests.e2e.scenario import AUTHOR, REPO, open_pr

pytestmark = pytest.mark.slow

MODULE = '"""Pricing."""\n\nimport os\n\n\ndef price() -> str:\n    return "ok"\n'
QUIET = {"redeliver_interval_s": 0, "resync_interval_s": 0, "sweep_interval_s": 0}


async def test_a_pr_whose_webhooks_were_all_lost_is_found_and_looked_after(
    workdir: Path, e2e_db: str
) -> None:
    """Every webhook dropped: the PR, and later a push to it, reach the loop through the
    sweep alone; a sweep with nothing new asks for nothing."""
    async with local_stack(workdir, database_url=e2e_db, **QUIET) as stack:
        driver, store = stack.sandbox.driver, LoopStore(stack.runtime.pool)
        await asyncio.to_thread(driver.set_faults, drop_webhook_rate=1.0)
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE}, config="")
        await asyncio.to_thread(stack.sandbox.wait_for_deliveries)
        unseen = await store.get(REPO, number)

        first = await sweep_open_prs(stack.runtime)
        row = await wait_settled(stack, REPO, number)
        idle = await sweep_open_prs(stack.runtime)

        pushed = await asyncio.to_thread(
            driver.push, REPO, "change", {"shop/tax.py": "import sys\n"}, as_user=AUTHOR
        )
        await asyncio.to_thread(stack.sandbox.wait_for_deliveries)
        after_push = await sweep_open_prs(stack.runtime)
        again = await wait_settled(stack, REPO, number)
        stats = await asyncio.to_thread(driver.fault_stats)

    assert unseen is None, "no webhook reached the bot"
    assert stats["injected"].get("webhook_drop", 0) > 0
    assert first == [(REPO, number)]
    assert row.state == "ready"
    assert idle == []
    assert after_push == [(REPO, number)]
    assert again.state == "ready"
    assert again.audited_sha != pushed  # the loop fixed tax.py on top of the person's push
