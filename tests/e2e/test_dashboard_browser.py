"""The dashboard in a real browser: headless Chromium (Debian's package, driven by Selenium)
reads every page after the demo's loop ran on the local stack, and the figures it shows are
the database's; without the token it is shown nothing."""

import asyncio
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from selenium import webdriver
from selenium.common.exceptions import WebDriverException
from selenium.webdriver.chrome.service import Service
from selenium.webdriver.common.by import By
from selenium.webdriver.support import expected_conditions
from selenium.webdriver.support.wait import WebDriverWait

from bot.demo.run import AUTHOR, BASE_FILES, PR_FILES, REPO
from bot.demo.stack import LocalStack, local_stack, wait_settled

pytestmark = pytest.mark.slow

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
TOKEN = "browser-test-dashboard-token"


def _browser_tools() -> str | None:
    """Install Debian's chromium and chromium-driver when missing (as `make browser-tools`
    does); None when they are there, else why they are not."""

    def present() -> bool:
        return Path(CHROMIUM).exists() and Path(CHROMEDRIVER).exists()

    if present():
        return None
    if shutil.which("apt-get") is None:
        return "chromium and chromium-driver are missing and there is no apt-get to install them"
    install = ["apt-get", "install", "-y", "chromium", "chromium-driver"]
    done = subprocess.run(install, capture_output=True, text=True, check=False, timeout=900)
    if not present():  # a stale package list: refresh it once
        subprocess.run(["apt-get", "update"], capture_output=True, check=False, timeout=900)
        done = subprocess.run(install, capture_output=True, text=True, check=False, timeout=900)
    if present():
        return None
    return f"apt-get could not install chromium and chromium-driver: {done.stderr[-300:]}"


@pytest.fixture
def browser(tmp_path: Path) -> Iterator[webdriver.Chrome]:
    """Headless Chromium from /usr/bin, no browser download (Selenium Manager is not asked:
    both the binary and the driver are named)."""
    reason = _browser_tools()
    if reason is not None:
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in (
        "--headless=new",
        "--no-sandbox",  # root in a container has no user namespace for Chromium's sandbox
        "--disable-dev-shm-usage",
        "--window-size=1280,1100",
        f"--user-data-dir={tmp_path / 'chromium-profile'}",
    ):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    try:
        yield driver
    finally:
        driver.quit()


async def demo_pr(stack: LocalStack) -> int:
    """The demo's scenario: a PR with lint and format problems, on the sandbox GitHub."""
    driver = stack.sandbox.driver

    def setup() -> int:
        driver.create_user(AUTHOR)
        driver.create_org("acme")
        driver.create_repo(REPO, dict(BASE_FILES), author=AUTHOR)
        driver.set_permission(REPO, AUTHOR, "write")
        driver.install_app("acme", sender=AUTHOR)
        driver.push(REPO, "add-report", dict(PR_FILES), as_user=AUTHOR, message="Add report")
        pr = driver.open_pr(REPO, "add-report", as_user=AUTHOR, title="Add a stock report")
        return int(pr["number"])

    return await asyncio.to_thread(setup)


async def fetch(stack: LocalStack, sql: str, *args: Any) -> list[dict[str, Any]]:
    async with stack.runtime.pool.connection() as conn:
        cur = await conn.execute(sql, args)
        return list(await cur.fetchall())


def sign_in(browser: webdriver.Chrome, token: str) -> None:
    """Type `token` into the login form and submit it, returning once the answer's page has
    replaced the form (a click does not wait for the navigation it starts)."""
    field = browser.find_element(By.ID, "token")
    field.send_keys(token)
    follow(browser, browser.find_element(By.ID, "sign-in"))


def follow(browser: webdriver.Chrome, element: Any) -> None:
    """Click `element` and wait until the page it leads to has replaced this one. Asked
    about an element in the middle of the navigation, chromedriver may answer "Node with
    given id does not belong to the document" (a plain WebDriverException, not a stale
    element): that is looked at again, as the next poll finds the element stale."""
    element.click()
    WebDriverWait(browser, 60, ignored_exceptions=(WebDriverException,)).until(
        expected_conditions.staleness_of(element)
    )


def text(browser: webdriver.Chrome, css: str) -> str:
    return str(browser.find_element(By.CSS_SELECTOR, css).text).strip()


async def test_every_dashboard_page_shows_the_databases_figures(
    workdir: Path, e2e_db: str, browser: webdriver.Chrome, tmp_path: Path
) -> None:
    """After the demo's loop: the login form lets the token in, the fleet, PR and queue pages
    show what the tables hold, each page is saved as a screenshot, and without the token (or
    after signing out) nothing is shown."""
    shots = tmp_path / "screenshots"
    shots.mkdir()
    async with local_stack(workdir, database_url=e2e_db, dashboard_token=TOKEN) as stack:
        number = await demo_pr(stack)
        await wait_settled(stack, REPO, number, timeout=300)
        base = stack.webhook_url.removesuffix("/webhook")

        async def browse(url: str) -> None:
            await asyncio.to_thread(browser.get, url)

        async def shot(name: str) -> None:
            await asyncio.to_thread(browser.save_screenshot, str(shots / f"{name}.png"))

        # No token: the pages refuse (401), and the browser is sent to the login form.
        async with httpx.AsyncClient(base_url=base) as client:
            for path in ("/ui", "/ui/queue", f"/ui/pr/{REPO}/{number}"):
                refused = await client.get(path)
                assert refused.status_code == 401, path
                assert REPO not in refused.text
        await browse(base + f"/ui/pr/{REPO}/{number}")
        assert browser.current_url == base + "/ui/login"
        assert REPO not in browser.page_source
        await asyncio.to_thread(sign_in, browser, "not-the-token")
        assert "not the dashboard's token" in text(browser, "#login-failed")
        await shot("login-refused")
        await asyncio.to_thread(sign_in, browser, TOKEN)
        assert browser.current_url == base + "/ui"

        # The fleet page.
        (pr,) = await fetch(
            stack, "SELECT state, round, summary FROM review_loop_prs WHERE repo = %s", REPO
        )
        tasks = await fetch(
            stack,
            "SELECT id, status, fix_pr FROM review_loop_tasks WHERE repo = %s AND pr_number = %s",
            REPO,
            number,
        )
        findings = pr["summary"].get("issues", [])
        open_findings = sum(1 for f in findings if f["state"] in ("open", "needs-human"))
        row = f'tr[data-pr="{REPO}#{number}"]'
        await shot("fleet")
        assert text(browser, "#pr-total") == "1"
        assert text(browser, f'{row} [data-figure="state"]') == pr["state"] == "ready"
        assert text(browser, f'{row} [data-figure="round"]') == str(pr["round"])
        assert text(browser, f'{row} [data-figure="open-findings"]') == str(open_findings)
        running = sum(1 for t in tasks if t["status"] == "running")
        assert text(browser, f'{row} [data-figure="running-tasks"]') == str(running)

        # One PR's page, reached by its link.
        await asyncio.to_thread(follow, browser, browser.find_element(By.CSS_SELECTOR, f"{row} a"))
        assert browser.current_url == base + f"/ui/pr/{REPO}/{number}"
        await shot("pull-request")
        assert len(findings) >= 2  # the demo files a finding per problem
        assert text(browser, "#pr-round") == str(pr["round"])
        assert text(browser, "#pr-open-findings") == str(open_findings)
        assert text(browser, "#pr-tasks") == str(len(tasks)) != "0"
        fix_prs = [t["fix_pr"] for t in tasks if t["fix_pr"] is not None]
        assert text(browser, "#pr-fix-prs") == str(len(fix_prs))
        for t in tasks:
            shown = f'tr[data-task="{t["id"]}"]'
            assert text(browser, f'{shown} [data-figure="status"]') == t["status"]
            fix_pr = "–" if t["fix_pr"] is None else f"#{t['fix_pr']}"  # noqa: RUF001
            assert text(browser, f'{shown} [data-figure="fix-pr"]') == fix_pr
        for f in findings:
            assert f["title"] in text(browser, f'#findings tr[data-issue="{f["number"]}"]')

        # The queue page.
        await browse(base + "/ui/queue")
        await shot("queue")
        jobs = await fetch(
            stack,
            """SELECT regexp_replace(task_name, '^.*[.:]', '') AS task, status::text AS status,
                      count(*) AS n FROM procrastinate_jobs GROUP BY 1, 2""",
        )
        assert {j["task"] for j in jobs} >= {"dispatch_deliveries", "reconcile_pr", "run_fix_task"}
        for j in jobs:
            shown = f'tr[data-job="{j["task"]}/{j["status"]}"] [data-figure="jobs"]'
            assert text(browser, shown) == str(j["n"])
        (alive,) = await fetch(
            stack,
            """SELECT count(*) AS n FROM procrastinate_workers
                WHERE last_heartbeat > now() - make_interval(secs => %s)""",
            stack.settings.stalled_after_s,
        )
        assert text(browser, "#workers-alive") == str(alive["n"]) == "1"

        # Signing out drops the cookie: the pages send the browser to the login form again.
        await asyncio.to_thread(
            follow, browser, browser.find_element(By.CSS_SELECTOR, "header form button")
        )
        await browse(base + "/ui")
        assert browser.current_url == base + "/ui/login"
        assert not re.search(re.escape(REPO), browser.page_source)

    saved = sorted(p.name for p in shots.iterdir())
    assert saved == ["fleet.png", "login-refused.png", "pull-request.png", "queue.png"]
    assert all((shots / name).stat().st_size > 1000 for name in saved)
