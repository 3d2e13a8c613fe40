"""JSON Schema for structured output, in the strict form OpenAI's strict mode accepts.

Strict mode wants every object closed (`additionalProperties: false`) with every property
listed in `required`; an optional field is expressed as "may be null". References are
inlined, so the same schema also serves as an Anthropic tool's `input_schema`.
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

# Keywords strict mode rejects or ignores; they say nothing a validator needs here.
_DROPPED = frozenset({"default", "title", "examples"})


def strict_schema(model: type[BaseModel]) -> dict[str, Any]:
    """`model`'s JSON Schema, closed, all-required and without `$ref`s."""
    raw = model.model_json_schema()
    definitions: dict[str, Any] = raw.pop("$defs", {})
    strict = _strict(raw, definitions, ())
    assert isinstance(strict, dict)
    return strict


def _strict(node: Any, definitions: dict[str, Any], seen: tuple[str, ...]) -> Any:
    if isinstance(node, list):
        return [_strict(item, definitions, seen) for item in node]
    if not isinstance(node, dict):
        return node
    if "$ref" in node:
        name = str(node["$ref"]).rsplit("/", 1)[-1]
        if name in seen:
            raise ValueError(f"schema {name} refers to itself; structured output needs a tree")
        return _strict(definitions[name], definitions, (*seen, name))
    out = {
        key: _strict(value, definitions, seen)
        for key, value in node.items()
        if key not in _DROPPED and key != "properties"
    }
    if "properties" in node:  # keys here are field names, not keywords: keep them all
        out["properties"] = {
            name: _strict(value, definitions, seen) for name, value in node["properties"].items()
        }
    if out.get("type") == "object" or "properties" in out:
        out["additionalProperties"] = False
        out["required"] = list(out.get("properties", {}))
    return out
