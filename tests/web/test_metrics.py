"""GET /metrics, through prometheus-client: the fleet's counts from the shared database, and
this process's histograms, which move when webhooks, jobs, GitHub calls and agents run."""

import sys
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from pydantic import SecretStr

from bot.agents.catalog import AgentSpec
from bot.agents.runner import AgentTask, run_agent
from bot.meters import route_family
from bot.runtime import Runtime, open_runtime
from bot.web.app import create_app
from bot.webhooks.context import Context
from bot.webhooks.routing import Router
from bot.worker import drain, wire
from tests.conftest import make_settings
from tests.fakes.github import BASE_URL, FakeGitHub
from tests.support import load_event, post_event, serve_asgi

HISTOGRAMS = (
    "review_loop_intake_seconds",
    "review_loop_job_seconds",
    "review_loop_github_request_seconds",
    "review_loop_write_throttle_wait_seconds",
    "review_loop_agent_run_seconds",
)


def parse(text: str) -> dict[str, float]:
    """`name{k="v",...}` (labels sorted) -> value, every sample of the page, parsed by
    prometheus-client's own parser (which refuses a malformed page)."""
    out = {}
    for family in text_string_to_metric_families(text):
        for s in family.samples:
            labels = ",".join(f'{k}="{v}"' for k, v in sorted(s.labels.items()))
            out[f"{s.name}{{{labels}}}" if labels else s.name] = s.value
    return out


def types(text: str) -> dict[str, str]:
    return {f.name: f.type for f in text_string_to_metric_families(text)}


def moved(before: dict[str, float], after: dict[str, float], prefix: str) -> dict[str, float]:
    """The `_count` samples starting with `prefix` that grew, by how much."""
    return {
        k: v - before.get(k, 0.0)
        for k, v in after.items()
        if k.startswith(prefix) and v > before.get(k, 0.0)
    }


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
    queued = parse(before.text)
    assert queued['review_loop_deliveries{status="queued"}'] == 1
    assert queued['review_loop_jobs{status="todo",task="dispatch_deliveries"}'] == 1
    assert queued["review_loop_oldest_waiting_job_seconds"] >= 0
    assert queued["review_loop_live_leases"] == 0
    done = parse(after.text)
    assert done['review_loop_deliveries{status="ignored"}'] == 1  # no handler for it here
    assert 'review_loop_deliveries{status="queued"}' not in done
    assert done['review_loop_jobs{status="succeeded",task="dispatch_deliveries"}'] == 1
    assert types(after.text)["review_loop_jobs"] == "gauge"


@pytest.fixture
async def labelling(tmp_path: Path, db_url: str, private_key: str) -> AsyncIterator[Runtime]:
    """A worker whose one handler reads and writes on the fake GitHub for `issues.labeled`."""
    fake = FakeGitHub("Codertocat/Hello-World", app_id=7, bot="rl[bot]")
    settings = make_settings(
        tmp_path,
        db_url,
        app_id=7,
        private_key=SecretStr(private_key),
        github_url=BASE_URL,
        write_interval_s=0,
    )
    router = Router()

    @router.register("issues", action="labeled")
    async def label_back(ctx: Context) -> None:
        owner, name = ctx.repo.split("/")
        async with ctx.github() as gh:
            await gh.rest.repos.async_get(owner, name)
            await gh.rest.issues.async_create_label(owner, name, name="seen", color="ededed")

    transport = httpx.MockTransport(fake.handle)
    async with open_runtime(settings, github_transport=transport) as runtime:
        wire(runtime, router)
        yield runtime


async def test_histograms_move_with_webhooks_jobs_github_calls_and_agents(
    labelling: Runtime, tmp_path: Path
) -> None:
    """After a webhook, its dispatch (a handler that reads and writes on GitHub) and an agent
    run, each histogram has counted them, under the labels that say what they were."""
    runtime = labelling
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        first = await client.get(base + "/metrics")
        payload = load_event("issues.labeled") | {"installation": {"id": 42}}
        resp = await post_event(client, base + "/webhook", "issues", payload, delivery="h-1")
        assert resp.status_code == 202
        await drain(runtime)
        agent = AgentSpec(name="noop", kind="command", argv=[sys.executable, "-c", "pass"])
        result = await run_agent(agent, tmp_path, "brief", task=AgentTask())
        assert result.ok, result.error
        second = await client.get(base + "/metrics")

    kinds = types(second.text)
    assert all(kinds[name] == "histogram" for name in HISTOGRAMS), kinds
    before, after = parse(first.text), parse(second.text)
    assert moved(before, after, "review_loop_intake_seconds_count") == {
        'review_loop_intake_seconds_count{status="202"}': 1
    }
    assert moved(before, after, "review_loop_job_seconds_count") == {
        'review_loop_job_seconds_count{outcome="succeeded",task="dispatch_deliveries"}': 1
    }
    assert moved(before, after, "review_loop_github_request_seconds_count") == {
        'review_loop_github_request_seconds_count{method="POST",route="app",status="201"}': 1,
        'review_loop_github_request_seconds_count{method="GET",route="repo",status="200"}': 1,
        'review_loop_github_request_seconds_count{method="POST",route="labels",status="201"}': 1,
    }
    assert moved(before, after, "review_loop_write_throttle_wait_seconds_count") == {
        'review_loop_write_throttle_wait_seconds_count{throttle="shared"}': 1
    }
    assert moved(before, after, "review_loop_agent_run_seconds_count") == {
        'review_loop_agent_run_seconds_count{agent="noop",outcome="ok"}': 1
    }


@pytest.mark.parametrize(
    ("path", "base", "family"),
    [
        ("/repos/o/r/issues/3/comments", "/", "issues"),
        ("/repos/o/r", "/", "repo"),
        ("/repos/o/r/check-runs/9", "/", "check-runs"),
        ("/repos/o/r/some/new/thing", "/", "other"),
        ("/app/installations/1/access_tokens", "/", "app"),
        ("/api/v3/repos/o/r/pulls/1/merge", "/api/v3/", "pulls"),
        ("/graphql", "/", "graphql"),
        ("/whatever/else", "/", "other"),
    ],
    ids=["issues", "repo", "check-runs", "unknown-repo-route", "app", "enterprise-prefix",
         "graphql", "unknown-top"],
)  # fmt: skip
def test_route_family_names_a_bounded_family(path: str, base: str, family: str) -> None:
    """A request's path maps to a family from a fixed set, so labels cannot grow per repo."""
    assert route_family(path, base) == family


async def test_metrics_can_be_turned_off(runtime: Runtime) -> None:
    """REVIEW_LOOP_METRICS=false: 404 with how to turn them on."""
    runtime.settings = runtime.settings.model_copy(update={"metrics": False})
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        resp = await client.get(base + "/metrics")
    assert resp.status_code == 404
    assert "REVIEW_LOOP_METRICS=true" in resp.text
