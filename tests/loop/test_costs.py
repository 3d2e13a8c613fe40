"""Measured costs: moving averages per repository and agent; a warm start teaches only t."""

import pytest

from bot.loop.store import LoopStore
from bot.runtime import Runtime


async def test_cold_spawns_teach_s_and_warm_starts_only_t(runtime: Runtime) -> None:
    """s moves only with cold spawns; t moves with every task; the first sample stands alone."""
    store = LoopStore(runtime.pool)
    await store.record_costs("o/r", "fix", None, 4.0, prior_spawn_s=5.0)
    assert await store.costs("o/r", "fix") == (5.0, 4.0, 1)
    await store.record_costs("o/r", "fix", 10.0, 2.0)
    spawn, run, samples = await store.costs("o/r", "fix") or (0, 0, 0)
    assert spawn == pytest.approx(0.7 * 5.0 + 0.3 * 10.0)
    assert run == pytest.approx(0.7 * 4.0 + 0.3 * 2.0)
    assert samples == 2
    await store.record_costs("o/r", "fix", None, 2.0)
    spawn_after, _, _ = await store.costs("o/r", "fix") or (0, 0, 0)
    assert spawn_after == pytest.approx(spawn)
    assert await store.costs("o/r", "other") is None
