"""GET /ui: the dashboard shows the loop's tables to whoever has the token, escaped."""

import json
import re
from collections.abc import AsyncIterator

import httpx
import pytest
from pydantic import SecretStr

from bot.runtime import Runtime
from bot.web.app import create_app
from bot.web.dashboard import auth
from tests.support import load_event, post_event, serve_asgi

TOKEN = "dashboard-token-for-tests"
SCRIPT = "<script>alert('x')</script>"
IMG = '<img src=x onerror="alert(1)">'
HTML = {"accept": "text/html"}
BEARER = {"authorization": f"Bearer {TOKEN}"}


async def seed(runtime: Runtime) -> None:
    """One PR in round 2 with three findings (two open), a plan and three tasks."""
    issues = [
        {"number": 11, "title": f"F401 {SCRIPT}", "state": "open", "agent": "ruff-fix"},
        {"number": 12, "title": "E501 long line", "state": "needs-human", "agent": None},
        {"number": 13, "title": "W291", "state": "fixed", "agent": "ruff-fix"},
    ]
    async with runtime.pool.connection() as conn:
        await conn.execute(
            """INSERT INTO review_loop_prs (repo, number, installation_id, state, reason, round,
                                            summary)
               VALUES ('acme/demo', 7, 1, 'fixing', %s, 2, %s::jsonb),
                      ('acme/other', 3, 1, 'ready', 'nothing open', 1, '{}')""",
            (f"because {IMG}", json.dumps({"issues": issues})),
        )
        await conn.execute(
            """INSERT INTO review_loop_plans (repo, pr_number, round, agent, n, t, s, width,
                                              explain)
               VALUES ('acme/demo', 7, 2, 'ruff-fix', 2, 10, 5, 2, '(2-1)·10 > 5: parallel')"""
        )
        await conn.execute(
            """INSERT INTO review_loop_tasks (repo, pr_number, issue_number, installation_id,
                   agent, round, base_ref, base_sha, status, branch, fix_pr, error, run_s)
               VALUES ('acme/demo', 7, 11, 1, 'ruff-fix', 2, 'feat', 'a', 'running', 'b1',
                       NULL, NULL, NULL),
                      ('acme/demo', 7, 13, 1, 'ruff-fix', 2, 'feat', 'a', 'merged', 'b2',
                       21, NULL, 3.5),
                      ('acme/demo', 7, 12, 1, 'ruff-fix', 1, 'feat', 'z', 'failed', 'b3',
                       NULL, %s, 1.0)""",
            (f"agent said {SCRIPT}",),
        )


@pytest.fixture
async def ui(runtime: Runtime) -> AsyncIterator[tuple[str, httpx.AsyncClient]]:
    runtime.settings = runtime.settings.model_copy(update={"dashboard_token": SecretStr(TOKEN)})
    await seed(runtime)
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient(base_url=base) as c:
        yield base, c


def figure(html: str, row: str, name: str) -> str:
    """The text of `data-figure="name"` in the table row marked `row` (e.g. data-pr=...)."""
    match = re.search(rf'{row}.*?data-figure="{name}">([^<]*)<', html, re.S)
    assert match, (row, name)
    return match.group(1)


async def test_dashboard_is_off_without_a_token(runtime: Runtime) -> None:
    """No REVIEW_LOOP_DASHBOARD_TOKEN: every /ui page is 404 and says how to turn it on."""
    async with serve_asgi(create_app(runtime)) as base, httpx.AsyncClient() as client:
        for path in ("/ui", "/ui/queue", "/ui/login", "/ui/pr/acme/demo/7"):
            resp = await client.get(base + path, headers=BEARER)
            assert resp.status_code == 404, path
            assert "REVIEW_LOOP_DASHBOARD_TOKEN" in resp.text


@pytest.mark.parametrize(
    ("headers", "status"),
    [
        ({}, 401),
        ({"authorization": "Bearer wrong-token"}, 401),
        ({"authorization": f"Basic {TOKEN}"}, 401),
        ({"cookie": f"{auth.COOKIE}=9999999999.{'0' * 64}"}, 401),
        ({"cookie": f"{auth.COOKIE}=\u00b2.\u00e9".encode("latin-1")}, 401),
        (HTML, 303),
    ],
    ids=["nothing", "wrong-bearer", "not-bearer", "forged-cookie", "non-ascii-cookie",
         "browser-to-login"],
)  # fmt: skip
async def test_pages_refuse_requests_without_the_token(
    ui: tuple[str, httpx.AsyncClient], headers: dict[str, str | bytes], status: int
) -> None:
    """Without the token: 401 (a browser is sent to the login form instead), nothing shown."""
    _, client = ui
    for path in ("/ui", "/ui/queue", "/ui/pr/acme/demo/7"):
        resp = await client.get(path, headers=headers)
        assert resp.status_code == status, path
        assert "acme/demo" not in resp.text
        if status == 303:
            assert resp.headers["location"] == "/ui/login"


async def test_login_form_sets_a_signed_cookie_that_opens_the_pages(
    ui: tuple[str, httpx.AsyncClient],
) -> None:
    """A wrong token is refused; the right one sets an HttpOnly cookie that lets the pages
    through, and signing out drops it."""
    _, client = ui
    wrong = await client.post("/ui/login", data={"token": "nope"})
    assert wrong.status_code == 401
    assert auth.COOKIE not in client.cookies
    right = await client.post("/ui/login", data={"token": TOKEN})
    assert right.status_code == 303
    assert right.headers["location"] == "/ui"
    set_cookie = right.headers["set-cookie"].lower()
    assert "httponly" in set_cookie
    assert "samesite=strict" in set_cookie
    assert TOKEN not in right.headers["set-cookie"]
    page = await client.get("/ui")
    assert page.status_code == 200
    assert "acme/demo#7" in page.text
    out = await client.post("/ui/logout")
    assert out.status_code == 303
    assert (await client.get("/ui")).status_code == 401


async def test_fleet_page_shows_each_pr_with_round_findings_and_tasks(
    ui: tuple[str, httpx.AsyncClient],
) -> None:
    """The fleet: each PR's state, round, open findings (open and needs-human) and tasks."""
    _, client = ui
    html = (await client.get("/ui", headers=BEARER)).text
    row = 'data-pr="acme/demo#7"'
    assert figure(html, row, "state") == "fixing"
    assert figure(html, row, "round") == "2"
    assert figure(html, row, "open-findings") == "2"
    assert figure(html, row, "running-tasks") == "1"
    assert figure(html, row, "active-tasks") == "1"
    assert figure(html, 'data-pr="acme/other#3"', "open-findings") == "0"
    assert 'id="pr-total">2<' in html


async def test_pr_page_shows_rounds_tasks_plans_and_fix_prs(
    ui: tuple[str, httpx.AsyncClient],
) -> None:
    """One PR's page: each round with its fan-out decision and tasks, and its fix PRs."""
    _, client = ui
    resp = await client.get("/ui/pr/acme/demo/7", headers=BEARER)
    assert resp.status_code == 200
    html = resp.text
    assert 'id="pr-open-findings">2<' in html
    assert 'id="pr-tasks">3<' in html
    assert 'id="pr-fix-prs">1<' in html
    assert html.index('data-round="1"') < html.index('data-round="2"')
    assert "(2-1)·10 &gt; 5: parallel" in html
    assert "#21: task" in html
    missing = await client.get("/ui/pr/acme/demo/8", headers=BEARER)
    assert missing.status_code == 404


async def test_queue_page_shows_jobs_by_state_and_the_oldest_waiting(
    ui: tuple[str, httpx.AsyncClient], runtime: Runtime
) -> None:
    """A stored webhook's dispatch job shows as todo, and as the oldest waiting job."""
    base, client = ui
    resp = await post_event(client, base + "/webhook", "issues", load_event("issues.labeled"))
    assert resp.status_code == 202
    html = (await client.get("/ui/queue", headers=BEARER)).text
    assert figure(html, 'data-job="dispatch_deliveries/todo"', "jobs") == "1"
    assert re.search(r'id="waiting">.*?dispatch_deliveries', html, re.S)
    assert 'id="workers-alive">0<' in html


async def test_everything_shown_is_escaped(ui: tuple[str, httpx.AsyncClient]) -> None:
    """A finding's title, a PR's reason and a task's error holding HTML come out as text."""
    _, client = ui
    for path in ("/ui", "/ui/pr/acme/demo/7"):
        html = (await client.get(path, headers=BEARER)).text
        assert "<script>" not in html
        assert "<img" not in html
        assert "onerror=&#34;alert(1)&#34;" in html or "because &lt;img" in html
    pr_html = (await client.get("/ui/pr/acme/demo/7", headers=BEARER)).text
    assert "F401 &lt;script&gt;alert(&#39;x&#39;)&lt;/script&gt;" in pr_html
    assert "agent said &lt;script&gt;" in pr_html


def test_login_cookie_expires_and_is_bound_to_the_token() -> None:
    """The cookie opens the pages until its expiry, and only while the token is unchanged."""
    cookie = {auth.COOKIE: auth.make_cookie(TOKEN, now=1000.0)}
    last = 1000.0 + auth.COOKIE_TTL_S
    assert auth.allowed(TOKEN, {}, cookie, clock=lambda: last)
    assert not auth.allowed(TOKEN, {}, cookie, clock=lambda: last + 1)
    assert not auth.allowed("a-new-token", {}, cookie, clock=lambda: 1000.0)
    expires, _, mac = cookie[auth.COOKIE].partition(".")
    later = {auth.COOKIE: f"{int(expires) + 3600}.{mac}"}  # the expiry pushed back
    assert not auth.allowed(TOKEN, {}, later, clock=lambda: 1000.0)
