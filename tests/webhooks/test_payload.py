"""The intake's check (`check_payload`, simdjson) accepts exactly the bodies the worker's
parse (`parse_payload`, orjson) accepts, and its view reads the same values."""

import json
import random
from collections.abc import Mapping, Sequence
from typing import Any

import pytest

from bot.webhooks.payload import InvalidPayload, check_payload, parse_payload
from tests.support import fixture_names, load_event

REAL = fixture_names()


def _compact(name: str) -> bytes:
    return json.dumps(load_event(name), separators=(",", ":")).encode()


def _verdict(check: Any, body: bytes) -> bool:
    try:
        check(body)
    except InvalidPayload:
        return False
    return True


def _plain(value: Any) -> Any:
    """The view as plain Python values, to compare with orjson's."""
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, Sequence) and not isinstance(value, str):
        return [_plain(v) for v in value]
    return value


def _first_wins(body: bytes) -> Any:
    """The object of `body` where a key given twice keeps its first value: what the view
    reads (orjson keeps the last; payload.py says why the difference stays). The mutations
    that copy a stretch of a payload make such keys."""

    def first(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in pairs:
            out.setdefault(key, value)
        return out

    return json.loads(body, object_pairs_hook=first)


EDGES = [
    pytest.param(b'{"a":18446744073709551616}', id="integer-beyond-64-bits"),
    pytest.param(b'{"a":-9223372036854775809}', id="integer-below-int64"),
    pytest.param(b'{"a":' * 1024 + b"1" + b"}" * 1024, id="objects-1024-deep"),
    pytest.param(b"[" * 1025 + b"]" * 1025, id="arrays-1025-deep"),
    pytest.param(b'\xef\xbb\xbf{"a":1}', id="byte-order-mark"),
    pytest.param(b'{"a":"\\ud800"}', id="lone-surrogate"),
    pytest.param(b'{"a":"\\ud83d\\ude00"}', id="surrogate-pair"),
    pytest.param(b'{"a":1e400}', id="beyond-double"),
    pytest.param(b'{"a":1e-400}', id="below-double"),
    pytest.param(b'{"a":"\\u0000"}', id="escaped-nul"),
    pytest.param(b'{"a":"\x00"}', id="raw-nul"),
    pytest.param(b'{"a":1}\x0c', id="form-feed-after"),
    pytest.param(b'{"a":1} \n\t\r', id="json-whitespace-after"),
    pytest.param(b"1", id="a-number"),
    pytest.param(b"[]", id="an-array"),
    pytest.param(b'"x"', id="a-string"),
    pytest.param(b"{}", id="empty-object"),
]


@pytest.mark.parametrize("body", EDGES)
def test_the_intake_and_the_worker_agree_on_the_edges(body: bytes) -> None:
    """Each body where simdjson and orjson could part: the intake's verdict is orjson's
    (a byte order mark and the beyond-limits cases fail without the fallbacks)."""
    assert _verdict(check_payload, body) == _verdict(parse_payload, body)


def test_the_intake_and_the_worker_agree_on_mutated_real_payloads() -> None:
    """Thousands of real payloads with a byte changed, cut or doubled: the same verdict,
    and where both accept, the same object."""
    rng = random.Random(20261207)
    bodies = [_compact(name) for name in REAL]
    alphabet = b'{}[]":,\\0123456789.eE+-tfnu \x00\x7f\xc3\xff\xed\xa0\xef\xbb\xbf'
    disagreements: list[bytes] = []
    accepted = 0
    for _ in range(3000):
        body = bytearray(rng.choice(bodies))
        at = rng.randrange(len(body))
        kind = rng.randrange(4)
        if kind == 0:
            body[at] = rng.choice(alphabet)
        elif kind == 1:
            del body[at:]
        elif kind == 2:
            body[at:at] = bytes([rng.choice(alphabet)])
        else:
            body[at:at] = body[at : at + rng.randrange(1, 50)]
        sample = bytes(body)
        ours, theirs = _verdict(check_payload, sample), _verdict(parse_payload, sample)
        if ours != theirs:
            disagreements.append(sample[:80])
        elif ours:
            accepted += 1
            assert _plain(check_payload(sample)) == _first_wins(sample)
    assert disagreements == []
    assert accepted > 100  # the mutations left enough valid bodies to compare values


@pytest.mark.parametrize("name", REAL)
def test_the_view_reads_what_orjson_reads(name: str) -> None:
    body = _compact(name)
    view = check_payload(body)
    assert _plain(view) == parse_payload(body)
    assert isinstance(view, Mapping)
    assert view.get("no such key") is None


def test_the_view_reads_nested_values_and_refuses_what_is_not_there() -> None:
    view = check_payload(b'{"issue":{"number":7,"labels":[{"name":"x"},2]},"n":null}')
    issue = view["issue"]
    assert isinstance(issue, Mapping)
    labels = issue["labels"]
    assert isinstance(labels, Sequence)
    assert (issue["number"], len(labels), labels[0]["name"], labels[-1]) == (7, 2, "x", 2)
    assert list(labels[1:]) == [2]
    assert view["n"] is None and "n" in view and len(view) == 2
    with pytest.raises(KeyError):
        view["missing"]
    with pytest.raises(IndexError):
        labels[5]
