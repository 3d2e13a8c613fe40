"""What counts as a webhook payload: one JSON object, RFC 8259 text in UTF-8, as GitHub sends.

The intake refuses anything else with 400 and stores the accepted body as it came (bytes):
PostgreSQL's jsonb refuses some valid JSON (`\\u0000` in a PR body), so the stored body is
the signed bytes, and dispatch parses them again here, with the same parser, to the same
object the intake accepted.

orjson is that parser: it accepts exactly RFC 8259 in UTF-8, where `json.loads` also takes
UTF-16/32 bodies, `NaN`/`Infinity`, a byte order mark and lone surrogates (`"\\ud800"`, which
no UTF-8 text can hold), and recurses into 100,000 nested arrays until RecursionError. It is
also three times faster on real payloads (60 against 180 microseconds for 23 KB).

The intake needs less than that object: whether the body is one, and a few of its fields
(the installation, the action, a comment's text). `check_payload` validates the body with
simdjson, which builds no Python objects (9 against orjson's 37 microseconds on the bench's
mix of real payloads), and answers a view that reads fields on demand. It accepts exactly
what `parse_payload` accepts: where simdjson refuses a body (an integer beyond 64 bits, an
object nested deeper than its limit) orjson decides, and a byte order mark, which simdjson
skips, is left to orjson too (tests/webhooks/test_payload.py compares the two on mutated
real payloads). One difference stays: of a key given twice, the view reads the first value
and orjson the last. GitHub sends no such object, and only the holder of the webhook secret
can sign one; at worst such a delivery is read differently by the intake's `Router.ignored`
than by its handler.
"""

from collections.abc import Iterator, Mapping, Sequence
from typing import Any, overload

import lz4.frame
import orjson
import simdjson

MAX_DEPTH = 1024  # orjson's own limit on nested arrays and objects
NOT_AN_OBJECT = "body is JSON but not an object: a webhook payload is an object"
BOM = b"\xef\xbb\xbf"


class InvalidPayload(ValueError):
    """The body is not a webhook payload; the message says why, without quoting it."""


def parse_payload(body: bytes) -> dict[str, Any]:
    """The JSON object in `body`, or InvalidPayload."""
    try:
        payload = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise InvalidPayload(
            f"body is not valid JSON (RFC 8259 text in UTF-8, nested at most {MAX_DEPTH} "
            f"deep, as GitHub sends): {exc}"
        ) from None
    if not isinstance(payload, dict):
        raise InvalidPayload(NOT_AN_OBJECT)
    return payload


def check_payload(body: bytes) -> Mapping[str, Any]:
    """The JSON object in `body` as a read-only view (`PayloadView`), or InvalidPayload:
    the same bodies `parse_payload` accepts, at a quarter of its cost."""
    if body.startswith(BOM):
        return parse_payload(body)  # simdjson skips a byte order mark; RFC 8259 text has none
    try:
        document = simdjson.Parser().parse(body)  # a parser per body: no view outlives it
    except (ValueError, RuntimeError):  # UnicodeDecodeError is a ValueError
        return parse_payload(body)  # orjson's verdict, and its message
    if not isinstance(document, simdjson.Object):
        raise InvalidPayload(NOT_AN_OBJECT)
    return PayloadView(document)


def _view(value: Any) -> Any:
    if isinstance(value, simdjson.Object):
        return PayloadView(value)
    if isinstance(value, simdjson.Array):
        return ArrayView(value)
    return value


class PayloadView(Mapping[str, Any]):
    """A JSON object of a checked body: strings, numbers, booleans and null as Python values;
    objects and arrays as views, read when asked for."""

    __slots__ = ("_object",)

    def __init__(self, obj: simdjson.Object) -> None:
        self._object = obj

    def __getitem__(self, key: str) -> Any:
        return _view(self._object[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._object.keys())

    def __len__(self) -> int:
        return len(self._object)


class ArrayView(Sequence[Any]):
    """A JSON array of a checked body, read when asked for."""

    __slots__ = ("_array",)

    def __init__(self, array: simdjson.Array) -> None:
        self._array = array

    @overload
    def __getitem__(self, index: int) -> Any: ...
    @overload
    def __getitem__(self, index: slice) -> Sequence[Any]: ...
    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(len(self))[index]]
        return _view(self._array[index])

    def __len__(self) -> int:
        return len(self._array)


# Stored bodies are lz4 frames: PostgreSQL spends about 230 microseconds of CPU moving a
# 23 KB value into TOAST chunks, and about 20 to keep the 3 KB frame lz4 makes of it (in
# 20 microseconds) inline. A frame announces itself: JSON text never starts with its magic.
LZ4_MAGIC = b"\x04\x22\x4d\x18"


def pack_body(body: bytes) -> bytes:
    """The body as stored: an lz4 frame that gives back exactly these bytes."""
    stored: bytes = lz4.frame.compress(body, store_size=True)
    return stored


def unpack_body(stored: bytes) -> bytes:
    """The signed body from what `pack_body` stored (or a body stored as it came)."""
    if stored.startswith(LZ4_MAGIC):
        body: bytes = lz4.frame.decompress(stored)
        return body
    return stored
