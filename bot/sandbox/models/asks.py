"""What a model was asked and what it answers, apart from any one vendor's wire format."""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from bot.sandbox.models.prompts import AGENT_BRIEF

# The prompt size the sandbox reports and records: words and punctuation marks, a rough
# stand-in for a tokenizer that needs no vocabulary and counts the same on every machine.
_TOKEN = re.compile(r"\w+|[^\w\s]")
_FILE_LINE = re.compile(r"(?m)^File: ")


def count_tokens(text: str) -> int:
    """Words plus punctuation marks in `text` (the sandbox's notion of a token)."""
    return len(_TOKEN.findall(text))


@dataclass(frozen=True)
class Message:
    """One message of the conversation, flattened to text."""

    role: Literal["user", "assistant", "tool"]
    text: str


@dataclass(frozen=True)
class Ask:
    """One request to a model, in the terms every wire format shares.

    `schema_name`/`schema` are set when the request wants one JSON object: through the
    reply's content (`schema_via="content"`: OpenAI `response_format`, Responses
    `text.format`, Gemini `responseJsonSchema`) or through a tool the model is forced to
    call (`schema_via="tool"`: Anthropic `tool_choice`). `tool_results` counts the results of
    earlier tool calls in the conversation, which picks a coding agent's next scripted turn.
    """

    route: str
    model: str
    system: str
    messages: tuple[Message, ...]
    stream: bool = False
    tools: tuple[str, ...] = ()
    tool_results: int = 0
    schema_name: str | None = None
    schema: Mapping[str, Any] | None = None
    schema_via: Literal["content", "tool"] | None = None
    options: Mapping[str, Any] = field(default_factory=dict)

    @property
    def structured(self) -> bool:
        return self.schema is not None

    @property
    def brief(self) -> str:
        """The latest brief: the bot puts its whole brief in one user message, which names
        its files on `File:` lines (a coding agent's brief opens with `Fix N finding(s)`). A
        repair request names none, so it is the first user message of a short conversation;
        one long session holds a brief per task. A CLI that opens with example turns (aider)
        has them before the brief, so they are not counted as answers."""
        return self.messages[self._brief_at].text if self.messages else ""

    @property
    def assistant_turns(self) -> int:
        """The answers given since the latest brief (the attempt a repair is)."""
        return sum(1 for m in self.messages[self._brief_at :] if m.role == "assistant")

    @property
    def _brief_at(self) -> int:
        users = [i for i, m in enumerate(self.messages) if m.role == "user"]
        if not users:
            return 0
        named = [
            i
            for i in users
            if _FILE_LINE.search(self.messages[i].text) or AGENT_BRIEF.search(self.messages[i].text)
        ]
        return named[-1] if named else users[0]

    @property
    def prompt(self) -> str:
        return "\n".join([self.system, *(m.text for m in self.messages)])

    @property
    def prompt_tokens(self) -> int:
        return count_tokens(self.prompt)


@dataclass(frozen=True)
class ToolCall:
    """A call the model makes: a tool name and its arguments as JSON text (maybe broken)."""

    name: str
    arguments: str


@dataclass(frozen=True)
class Answer:
    """What the model says: text, a tool call, or both (text first)."""

    text: str = ""
    tool: ToolCall | None = None

    @property
    def tokens(self) -> int:
        return count_tokens(self.text + (self.tool.arguments if self.tool else ""))


@dataclass(frozen=True)
class Usage:
    prompt_tokens: int
    completion_tokens: int

    @property
    def total_tokens(self) -> int:
        return self.prompt_tokens + self.completion_tokens


def text_of(content: Any) -> str:
    """The text of a message's content: a string, or a list of parts with `text` fields."""
    if isinstance(content, str):
        return content
    if isinstance(content, Sequence):
        parts = []
        for part in content:
            if isinstance(part, str):
                parts.append(part)
            elif isinstance(part, Mapping) and isinstance(part.get("text"), str):
                parts.append(part["text"])
        return "\n".join(parts)
    return ""


def pieces(text: str, count: int = 3) -> list[str]:
    """`text` cut into about `count` pieces, the way a streamed reply arrives."""
    if not text:
        return []
    size = max(1, -(-len(text) // count))
    return [text[i : i + size] for i in range(0, len(text), size)]
