"""The scripted model: rules decide the reviewer, fixer and verifier; the rest is refused."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.sandbox.models import Call, Edit, Rule, Say, Scenario
from bot.sandbox.models.asks import Ask, Message
from bot.sandbox.models.scenario import refusal_object

RULE = Rule(
    "negative-count",
    r"def \w+\(.*\bcount\b",
    unless="count < 0",
    title="count unchecked",
    fixes=(Edit("def f(count):\n", "def f(count):\n    if count < 0: raise ValueError\n"),),
)
REVIEW = """Review one file.

File: app.py

## Changed code
```
     1   import os
     2 + def f(count):
     3 +     return count
     4   def g(count):
```
"""
SCHEMA = {"type": "object", "properties": {}, "required": []}


def ask(brief: str, schema_name: str | None, *, assistant_turns: int = 0, **kw: Any) -> Ask:
    messages = [Message("user", brief)]
    for _ in range(assistant_turns):
        messages += [Message("assistant", "{}"), Message("user", "try again")]
    return Ask(
        route="openai.chat",
        model="m",
        system="",
        messages=tuple(messages),
        schema_name=schema_name,
        schema=SCHEMA if schema_name else None,
        schema_via="content" if schema_name else None,
        **kw,
    )


def reply(scenario: Scenario, request: Ask, fault: str | None = None) -> Any:
    return json.loads(scenario.answer(request, fault=fault).text)


def test_the_reviewer_flags_changed_lines_that_match_a_rule() -> None:
    """Line 2 matches and is changed; line 4 matches but is context: one finding."""
    (finding,) = reply(Scenario([RULE]), ask(REVIEW, "review_findings"))["findings"]
    assert (finding["path"], finding["start_line"], finding["end_line"]) == ("app.py", 2, 2)
    assert finding["title"] == "count unchecked"
    assert finding["rationale"].startswith("Scripted reviewer (scripted-m)")


def test_unless_silences_a_rule_where_the_code_handles_it() -> None:
    """The same line, followed by the check the rule asks for, is not flagged."""
    handled = REVIEW.replace("+     return count", "+     if count < 0: raise ValueError")
    assert reply(Scenario([RULE]), ask(handled, "review_findings"))["findings"] == []


@pytest.mark.parametrize(
    ("attempt", "search"),
    [
        pytest.param(0, "first", id="first-attempt"),
        pytest.param(1, "second", id="repair"),
        pytest.param(5, "second", id="last-repeats"),
    ],
)
def test_the_fixer_answers_each_attempt_with_its_scripted_edit(attempt: int, search: str) -> None:
    """The n-th assistant turn already in the request picks the n-th scripted edit."""
    rule = Rule("r", r"\bcount\b", fixes=(Edit("first", "x"), Edit("second", "y")))
    brief = "File: app.py\n\n## Flagged code\n```\ndef f(count):\n```\n"
    edits = reply(Scenario([rule]), ask(brief, "fix_edits", assistant_turns=attempt))["edits"]
    assert edits == [{"path": "app.py", "search": search, "replace": edits[0]["replace"]}]


def test_one_long_session_is_answered_for_its_latest_brief() -> None:
    """A conversation with a brief per task (one session fixing finding after finding): the
    fixer answers the last brief, at its first attempt."""
    rule = Rule("r", r"\bcount\b", fixes=(Edit("first", "x"), Edit("second", "y")))
    one = "File: a.py\n\n## Flagged code\n```\ndef f(count):\n```\n"
    two = one.replace("a.py", "b.py")
    messages = (Message("user", one), Message("assistant", "{}"), Message("user", two))
    request = Ask(**{**ask(one, "fix_edits").__dict__, "messages": messages})
    assert (request.brief, request.assistant_turns) == (two, 0)
    (edit,) = reply(Scenario([rule]), request)["edits"]
    assert (edit["path"], edit["search"]) == ("b.py", "first")


@pytest.mark.parametrize(
    ("after", "resolved"),
    [
        pytest.param("def f(count):\n    if count < 0: raise ValueError", True, id="fixed"),
        pytest.param("def f(count):\n    return count", False, id="not-fixed"),
    ],
)
def test_the_verifier_resolves_when_the_pattern_is_gone(after: str, resolved: bool) -> None:
    """Resolved exactly when the rule would no longer flag the code after the fix."""
    brief = (
        "File: app.py\n\n## Flagged code (before the fix)\n```\ndef f(count):\n```\n\n"
        f"## Code after the fix\n```\n{after}\n```\n"
    )
    assert reply(Scenario([RULE]), ask(brief, "verify_fix"))["resolved"] is resolved


@pytest.mark.parametrize("schema_name", ["fix_edits", "verify_fix", "something_else"])
def test_anything_unscripted_gets_a_scripted_refusal(schema_name: str) -> None:
    """No matching rule: a reply valid for the schema that says it is scripted."""
    schema = {
        "type": "object",
        "properties": {
            "ok": {"type": "boolean"},
            "why": {"type": "string"},
            "items": {"type": "array"},
            "maybe": {"anyOf": [{"type": "string"}, {"type": "null"}]},
        },
        "required": ["ok", "why", "items", "maybe"],
    }
    request = ask("File: app.py\n", schema_name)
    request = Ask(**{**request.__dict__, "schema": schema})
    assert reply(Scenario([RULE]), request) == {
        "ok": False,
        "why": f"Scripted model scripted-m: there is no script for a {schema_name} request; "
        "nothing was done.",
        "items": [],
        "maybe": None,
    }


def test_a_refusal_follows_references_and_enums() -> None:
    """$ref, enum and const are honoured, so the refusal validates."""
    schema = {
        "type": "object",
        "properties": {"k": {"$ref": "#/$defs/K"}, "c": {"const": 3}},
        "required": ["k", "c"],
        "$defs": {"K": {"enum": ["low", "high"]}},
    }
    assert refusal_object(schema, "no") == {"k": "low", "c": 3}


def test_agent_turns_are_picked_by_counting_tool_results() -> None:
    """Turn n answers a request with n tool results; past the script the agent says done."""
    scenario = Scenario(turns=[Call("Edit", {"a": 1}), Say("finished")])
    first = scenario.answer(ask("go", None, tools=("Edit",), tool_results=0))
    assert first.tool is not None and json.loads(first.tool.arguments) == {"a": 1}
    assert scenario.answer(ask("go", None, tools=("Edit",), tool_results=1)).text == "finished"
    assert "no more scripted turns" in scenario.answer(ask("go", None, tools=("Edit",),
                                                           tool_results=2)).text  # fmt: skip


@pytest.mark.parametrize(
    ("system", "brief"),
    [
        pytest.param("CWD: /w/t\nDate: today", "Fix it.\n\nFile: src/a.py\n", id="claude-code"),
        pytest.param(
            "",
            "<environment_context><cwd>/w/t</cwd></environment_context>\n"
            "1. ruff F401 in `src/a.py`, line 3: unused",
            id="codex-agent-brief",
        ),
    ],
)
def test_a_scripted_call_gets_the_agents_directory_and_file(system: str, brief: str) -> None:
    """`{cwd}` and `{file}` in a call's arguments become the directory the agent's prompt
    states and the file its brief names (Claude Code's Edit wants absolute paths)."""
    scenario = Scenario(turns=[Call("Edit", {"file_path": "{cwd}/{file}", "n": ["{file}"]})])
    question = Ask(
        route="anthropic.messages",
        model="m",
        system=system,
        messages=(Message("user", brief),),
        tools=("Edit",),
    )
    answer = scenario.answer(question)
    assert answer.tool is not None
    assert json.loads(answer.tool.arguments) == {"file_path": "/w/t/src/a.py", "n": ["src/a.py"]}


def test_a_turn_calling_a_tool_not_offered_is_refused() -> None:
    """The script cannot call a tool the client did not declare."""
    scenario = Scenario(turns=[Call("Bash", {"cmd": "rm -rf /"})])
    answer = scenario.answer(ask("go", None, tools=("Edit",)))
    assert answer.tool is None and "not offered" in answer.text


@pytest.mark.parametrize("fault", ["malformed_json", "schema_violation"])
def test_content_faults_break_the_reply(fault: str) -> None:
    """malformed_json is not JSON; schema_violation is JSON without the schema's fields."""
    text = Scenario([RULE]).answer(ask(REVIEW, "review_findings"), fault=fault).text
    if fault == "malformed_json":
        with pytest.raises(json.JSONDecodeError):
            json.loads(text)
    else:
        assert "findings" not in json.loads(text)


def test_a_scenario_reads_from_json() -> None:
    """The CLI and the admin route take scenarios as JSON."""
    scenario = Scenario.from_json(
        {
            "rules": [{"name": "r", "pattern": "x", "fixes": [{"search": "a", "replace": "b"}]}],
            "turns": [{"say": "hi"}, {"call": "Edit", "arguments": {"a": 1}}],
        }
    )
    assert scenario.rules[0].fixes == (Edit("a", "b"),)
    assert scenario.turns == [Say("hi"), Call("Edit", {"a": 1})]


def test_each_model_name_plays_its_own_agent_turns() -> None:
    """One sandbox drives several CLIs: `agents` picks turns by the model the request names;
    other models get the shared `turns`."""
    scenario = Scenario.from_json(
        {
            "turns": [{"say": "shared"}],
            "agents": {"gem": [{"call": "replace", "arguments": {"file_path": "{cwd}/a.py"}}]},
        }
    )
    gemini_context = "<session_context>\n- **Workspace Directories:**\n  - /w/repo\n"
    gem = Ask("gemini.generate", "gem", "", (Message("user", gemini_context),), tools=("replace",))
    answer = scenario.answer(gem)
    assert answer.tool is not None
    assert json.loads(answer.tool.arguments) == {"file_path": "/w/repo/a.py"}
    assert scenario.answer(ask("go", None, tools=("replace",))).text == "shared"


def test_a_tool_less_agent_counts_its_answers_from_the_brief_not_from_example_turns() -> None:
    """aider opens with example user/assistant turns; its first real answer is turn 0."""
    examples = [Message("user", "Change get_factorial()"), Message("assistant", "example")]
    brief = Message("user", "Fix 1 finding in the repository checked out in the current dir.")
    scenario = Scenario(turns=[Say("first"), Say("second")])
    first = Ask("openai.chat", "m", "", (*examples, brief))
    assert scenario.answer(first).text == "first"
    retry = Ask("openai.chat", "m", "", (*examples, brief, Message("assistant", "first"),
                                         Message("user", "the SEARCH block failed")))  # fmt: skip
    assert scenario.answer(retry).text == "second"
