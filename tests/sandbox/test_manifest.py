"""The manifest flow on the sandbox: the web form redirects with a one-time code, and the API
turns that code into the App's credentials exactly once."""

import json
from typing import Any
from urllib.parse import parse_qs, urlsplit

import httpx
from githubkit import GitHub, UnauthAuthStrategy
from githubkit.exception import RequestFailed

from bot.sandbox import Sandbox

CALLBACK = "http://127.0.0.1:9/callback"
MANIFEST = {
    "name": "review-loop-test",
    "url": "https://example.com/review-loop",
    "hook_attributes": {"url": "http://127.0.0.1:9/webhook", "active": True},
    "redirect_url": CALLBACK,
    "public": False,
    "default_permissions": {"contents": "write", "metadata": "read"},
    "default_events": ["pull_request"],
}


def post_manifest(sandbox: Sandbox, path: str = "/settings/apps/new", state: str = "s1") -> str:
    """Submit the manifest as the browser would; return the one-time code."""
    response = httpx.post(
        f"{sandbox.url}{path}",
        params={"state": state},
        data={"manifest": json.dumps(MANIFEST)},
        follow_redirects=False,
    )
    assert response.status_code == 302, response.text
    location = urlsplit(response.headers["location"])
    assert f"{location.scheme}://{location.netloc}{location.path}" == CALLBACK
    query = parse_qs(location.query)
    assert query["state"] == [state]
    return query["code"][0]


def unauthenticated(sandbox: Sandbox) -> GitHub[Any]:
    return GitHub(UnauthAuthStrategy(), base_url=sandbox.api_url, timeout=10, auto_retry=False)


def test_manifest_post_redirects_with_code_and_state(sandbox: Sandbox) -> None:
    """Posting a manifest redirects to its redirect_url with a code and the caller's state,
    and points the App's webhook at the manifest's hook URL."""
    code = post_manifest(sandbox, state="abc123")
    assert code
    assert sandbox.hub.store.app is not None
    assert sandbox.hub.store.app.webhook_url == "http://127.0.0.1:9/webhook"


def test_conversion_returns_the_apps_credentials(sandbox: Sandbox) -> None:
    """The conversion parses with githubkit's model and hands out the App's id, slug and key."""
    code = post_manifest(sandbox)
    github = unauthenticated(sandbox)
    app = github.rest.apps.create_from_manifest(code).parsed_data
    assert (app.id, app.slug) == (sandbox.app_id, sandbox.app_slug)
    assert app.pem == sandbox.private_key_path.read_text()
    assert app.webhook_secret
    assert app.name == MANIFEST["name"]
    assert app.events == MANIFEST["default_events"]
    assert app.html_url == f"{sandbox.url}/apps/{sandbox.app_slug}"


def test_a_code_converts_only_once(sandbox: Sandbox) -> None:
    """A second conversion of the same code, like an unknown code, is 404."""
    code = post_manifest(sandbox)
    github = unauthenticated(sandbox)
    github.rest.apps.create_from_manifest(code)
    for again in (code, "no-such-code"):
        try:
            github.rest.apps.create_from_manifest(again)
        except RequestFailed as failed:
            assert failed.response.status_code == 404
        else:
            raise AssertionError(f"converting {again!r} did not fail")


def test_organization_flow_needs_an_existing_organization(sandbox: Sandbox) -> None:
    """The organisation variant works for an organisation and is 404 for an unknown one."""
    sandbox.driver.create_org("acme")
    code = post_manifest(sandbox, "/organizations/acme/settings/apps/new")
    github = unauthenticated(sandbox)
    app = github.rest.apps.create_from_manifest(code).parsed_data
    assert app.owner is not None and getattr(app.owner, "login", None) == "acme"
    response = httpx.post(
        f"{sandbox.url}/organizations/nobody/settings/apps/new",
        data={"manifest": json.dumps(MANIFEST)},
    )
    assert response.status_code == 404
