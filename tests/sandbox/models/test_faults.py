"""Model sandbox faults: per route, by probability or count, repeatable by seed, counted."""

from __future__ import annotations

from bot.sandbox.models import ModelFault
from bot.sandbox.models.faults import ModelFaults

ALL = frozenset({"server_error", "rate_limited", "malformed_json"})


def draws(faults: ModelFaults, route: str, count: int) -> list[str | None]:
    return [(f.kind if (f := faults.draw(route, ALL)) else None) for _ in range(count)]


def test_a_seed_makes_the_draws_repeatable() -> None:
    """Two runs with one seed fail the same requests; another seed fails others."""
    runs = []
    for seed in (7, 7, 8):
        faults = ModelFaults()
        faults.configure([ModelFault("server_error", rate=0.5)], seed=seed)
        runs.append(draws(faults, "openai.chat", 40))
    assert runs[0] == runs[1] != runs[2]
    assert 5 < runs[0].count("server_error") < 35


def test_times_caps_how_often_a_fault_fires() -> None:
    """`times=2`: the first two requests fail, then the fault is spent."""
    faults = ModelFaults()
    faults.configure([ModelFault("rate_limited", times=2)])
    assert draws(faults, "anthropic.messages", 4) == ["rate_limited", "rate_limited", None, None]
    assert faults.injected == {"rate_limited": 2}


def test_a_fault_applies_only_to_its_routes() -> None:
    """A route glob picks the wires a fault breaks."""
    faults = ModelFaults()
    faults.configure([ModelFault("server_error", route="anthropic.*")])
    assert draws(faults, "openai.chat", 2) == [None, None]
    assert draws(faults, "anthropic.messages", 1) == ["server_error"]


def test_a_fault_that_does_not_apply_to_the_request_is_skipped() -> None:
    """Content faults skip requests that want no JSON; the next armed fault is drawn."""
    faults = ModelFaults()
    faults.configure([ModelFault("malformed_json"), ModelFault("server_error")])
    drawn = faults.draw("openai.chat", frozenset({"server_error"}))
    assert drawn is not None and drawn.kind == "server_error"


def test_configuring_again_switches_the_old_faults_off() -> None:
    """An empty list disarms everything."""
    faults = ModelFaults()
    faults.configure([ModelFault("server_error")])
    faults.configure([])
    assert draws(faults, "openai.chat", 3) == [None, None, None]
