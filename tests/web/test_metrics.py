"""GET /metrics: the fleet's counts in Prometheus' text format, from the shared database."""

import httpx

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.web.metrics import Metric, render
from bot.worker import drain
from tests.support import load_event, post_event, serve_asgi


def samples(text: str) -> dict[str, float]:
    """`name{labels}` -> value, from the exposition text (comments left out)."""
    out = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            key, _, value = line.rpartition(" ")
            out[key] = float(value)
    return out


def test_render_writes_help_type_and_escaped_sorted_labels() -> None:
    """Labels are sorted and escaped; a metric without labels is a bare name."""
    text = render(
        [
            Metric("m_jobs", "Jobs.", [({"task": "t", "status": 'a"b\\c'}, 3.0)]),
            Metric("m_live", "Live.", [({}, 0.0)]),
        ]
    )
    assert text == (
        "# HELP m_jobs Jobs.\n# TYPE m_jobs gauge\n"
        'm_jobs{status="a\\"b\\\\c",task="t"} 3\n'
        "# HELP m_live Live.\n# TYPE m_live gauge\nm_live 0\n"
    )


async def test_metrics_count_deliveries_and_jobs_as_they_move(runtime: Runtime) -> None:
    """A stored delivery shows as queued with its dispatch job to do; once dispatched (no
    handler is registered for it here), as ignored with the job succeeded."""
    app = create_app(runtime)
    async with serve_asgi(app) as base, httpx.AsyncClient() as client:
        payload = load_event("issues.labeled")
        resp = await post_event(client, base + "/webhook", "issues", payload, delivery="m-1")
        assert resp.status_code == 202
        before = await client.get(base + "/metrics")
        await drain(runtime)
        after = await client.get(base + "/metrics")

    assert before.status_code == 200
    assert before.headers["content-type"].startswith("text/plain; version=0.0.4")
    queued = samples(before.text)
    assert queued['review_loop_deliveries{status="queued"}'] == 1
    assert queued['review_loop_jobs{status="todo",task="dispatch_deliveries"}'] == 1
    assert queued["review_loop_oldest_waiting_job_seconds"] >= 0
    assert queued["review_loop_live_leases"] == 0
    done = samples(after.text)
    assert done['review_loop_deliveries{status="ignored"}'] == 1  # no handler for it here
    assert 'review_loop_deliveries{status="queued"}' not in done
    assert done['review_loop_jobs{status="succeeded",task="dispatch_deliveries"}'] == 1


async def test_metrics_can_be_turned_off(runtime: Runtime) -> None:
    """REVIEW_LOOP_METRICS=false: 404 with how to turn them on."""
    runtime.settings = runtime.settings.model_copy(update={"metrics": False})
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await client.get(base + "/metrics")
    assert resp.status_code == 404
    assert "REVIEW_LOOP_METRICS=true" in resp.text
