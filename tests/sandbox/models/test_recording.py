"""The model sandbox records every request, checks the key, and takes settings over HTTP."""

from __future__ import annotations

import httpx

from bot.sandbox.models import ModelSandbox, count_tokens
from tests.sandbox.models.sdk import post

BRIEF = "Fix one finding.\n\nFile: src/app.py\n\n## Flagged code\n```\nx = 1\n```\n"


def test_a_request_is_recorded_with_its_files_tokens_and_body(models: ModelSandbox) -> None:
    """Route, model, prompt size, the File: paths of the brief and the raw body are kept."""
    body = {
        "model": "gpt-x",
        "messages": [
            {"role": "system", "content": "Be exact."},
            {"role": "user", "content": BRIEF},
        ],
    }
    post(models, "/v1/chat/completions", body)
    (request,) = models.requests
    assert (request.route, request.path, request.model) == (
        "openai.chat",
        "/v1/chat/completions",
        "gpt-x",
    )
    assert request.files == ("src/app.py",)
    assert request.prompt_tokens == count_tokens("Be exact.\n" + BRIEF)
    assert '"gpt-x"' in request.body and request.authorized and request.fault is None
    assert "authorization" in request.header_names


def test_tokens_are_words_and_punctuation_marks() -> None:
    """The sandbox's token count: every word and every punctuation mark counts one."""
    assert count_tokens("def f(count): return -1") == 9


def test_a_wrong_key_is_answered_401_in_each_wire(models: ModelSandbox) -> None:
    """Every route refuses a key other than the sandbox's, in its own error format."""
    bad = {"authorization": "Bearer nope", "x-api-key": "nope", "x-goog-api-key": "nope"}
    for path, field in [
        ("/v1/chat/completions", "error"),
        ("/v1/responses", "error"),
        ("/v1/messages", "error"),
        ("/v1beta/models/g:generateContent", "error"),
    ]:
        response = httpx.post(models.url + path, json={"model": "m"}, headers=bad)
        assert response.status_code == 401 and field in response.json(), path
    assert [r.authorized for r in models.requests] == [False] * 4


def test_faults_requests_and_scenarios_are_set_over_http(models: ModelSandbox) -> None:
    """A CLI under test is driven from outside: /_sandbox/faults, /requests, /scenario."""
    armed = httpx.post(
        models.url + "/_sandbox/faults",
        json={"seed": 3, "faults": [{"kind": "server_error", "times": 1}]},
    )
    assert armed.json()["armed"][0]["kind"] == "server_error"
    assert post(models, "/v1/messages", {"model": "m", "messages": []}).status_code == 500
    scenario = {"turns": [{"say": "scripted hello"}]}
    assert httpx.post(models.url + "/_sandbox/scenario", json=scenario).status_code == 204
    answer = post(
        models, "/v1/messages", {"model": "m", "messages": [{"role": "user", "content": "hi"}]}
    )
    assert answer.json()["content"][0]["text"] == "scripted hello"
    recorded = httpx.get(models.url + "/_sandbox/requests").json()
    assert [r["fault"] for r in recorded] == ["server_error", None]
    assert httpx.get(models.url + "/_sandbox/faults").json()["injected"] == {"server_error": 1}
    assert httpx.delete(models.url + "/_sandbox/requests").status_code == 204
    assert models.requests == []


def test_a_body_that_is_not_json_is_a_400(models: ModelSandbox) -> None:
    """Garbage in: the wire's 400, not a crash."""
    response = httpx.post(
        models.url + "/v1/chat/completions", content=b"{nope", headers={"authorization": "Bearer x"}
    )
    assert response.status_code == 400
