"""Missed deliveries are found in GitHub's delivery log and redelivered, once."""

import asyncio
from datetime import timedelta
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.webhooks.redeliver import redeliver_missed
from tests.e2e.scenario import REPO, open_pr

pytestmark = pytest.mark.slow

MODULE = (
    '"""Pricing."""\n\nimport json\nimport os\n\n\n'
    'def price() -> str:\n    return json.dumps("ok")\n'
)


async def test_dropped_deliveries_are_redelivered_and_the_loop_catches_up(
    workdir: Path, e2e_db: str
) -> None:
    """Webhooks lost while the PR was opened are redelivered from the App's delivery log;
    a second pass finds nothing left to redeliver."""
    async with local_stack(workdir, database_url=e2e_db, redeliver_interval_s=0) as stack:
        driver = stack.sandbox.driver
        await asyncio.to_thread(driver.set_faults, drop_webhook_rate=1.0)
        number = await open_pr(stack, pr_files={"shop/pricing.py": MODULE})
        await asyncio.to_thread(stack.sandbox.wait_for_deliveries, 30)
        async with stack.runtime.pool.connection() as conn:
            cur = await conn.execute("SELECT count(*) AS n FROM review_loop_deliveries")
            row = await cur.fetchone()
        assert row is not None and row["n"] == 0  # nothing reached the bot
        await asyncio.to_thread(driver.set_faults, drop_webhook_rate=0.0)

        # Their failure is recorded (every delivery settled): no grace needed to know it.
        again = await redeliver_missed(stack.runtime, grace=timedelta(0))
        assert len(again) >= 2  # at least installation.created and pull_request.opened
        row = await wait_settled(stack, REPO, number)
        assert row.state == "ready"
        await asyncio.to_thread(stack.sandbox.wait_for_deliveries, 30)
        assert await redeliver_missed(stack.runtime, grace=timedelta(0)) == []
