"""The strict JSON Schema sent for structured output."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from bot.agents.models.fix import FixReply
from bot.agents.models.review import ReviewReply
from bot.agents.models.schema import strict_schema
from bot.agents.models.verify import VerifyReply


def objects(node: Any) -> list[dict[str, Any]]:
    found = []
    if isinstance(node, dict):
        if node.get("type") == "object":
            found.append(node)
        for value in node.values():
            found += objects(value)
    elif isinstance(node, list):
        for value in node:
            found += objects(value)
    return found


def test_every_object_is_closed_and_lists_every_property_as_required() -> None:
    """OpenAI's strict mode: additionalProperties false, all properties required, no $ref."""
    for model in (ReviewReply, FixReply, VerifyReply):
        schema = strict_schema(model)
        assert "$ref" not in str(schema) and "$defs" not in schema
        for node in objects(schema):
            assert node["additionalProperties"] is False
            assert node["required"] == list(node["properties"])


def test_an_optional_field_becomes_a_required_nullable_one() -> None:
    """`suggested_fix: str | None = None` must be present, and may be null."""
    finding = strict_schema(ReviewReply)["properties"]["findings"]["items"]
    assert "suggested_fix" in finding["required"]
    assert {"type": "null"} in finding["properties"]["suggested_fix"]["anyOf"]
    assert "default" not in str(finding)


def test_fields_named_like_keywords_are_kept() -> None:
    """A field called `title` is a property, not the schema's title keyword."""

    class Named(BaseModel):
        title: str
        default: int

    schema = strict_schema(Named)
    assert list(schema["properties"]) == ["title", "default"]
    assert "title" not in {k for k in schema if k != "properties"}
