"""The scripted model: a scenario's rules decide every answer; nothing is random or guessed.

A `Rule` is one thing the scripted reviewer looks for (a regex over one changed line, unless
another regex shows the code already handles it); the same rule scripts the fixer's edits for
its findings and lets the verifier judge a fix (resolved when the pattern is gone from the
code it is shown). Coding-agent CLIs get `turns`, picked by counting the tool results (or,
without tools, the assistant turns) already in the request; `agents` gives a model name
its own turns, so one sandbox drives several CLIs at once. Anything without a script gets a
*scripted refusal*: a valid reply that says it is scripted and has no script for this.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from bot.sandbox.models import prompts
from bot.sandbox.models.asks import Answer, Ask, ToolCall

SCRIPTED = "scripted"


@dataclass(frozen=True)
class Edit:
    """One search/replace edit; `path` None means the file the brief names."""

    search: str
    replace: str
    path: str | None = None


@dataclass(frozen=True)
class Rule:
    """What the scripted reviewer flags, how the scripted fixer fixes it, and how to verify."""

    name: str
    pattern: str  # searched in each changed line
    unless: str | None = None  # no finding when this is in the matching line or just after
    lookahead: int = 3  # how many lines after the matching one `unless` looks at
    category: str = "bug"
    severity: str = "medium"
    title: str = ""
    rationale: str = ""
    suggested_fix: str | None = None
    span: int = 1  # lines flagged from the matching one on
    changed_only: bool = True  # False: a sloppy reviewer that also flags context lines
    line_offset: int = 0  # a reviewer that miscounts: reports lines shifted by this much
    fixes: tuple[Edit, ...] = ()  # the fixer's edit on its 1st, 2nd... attempt (last repeats)

    def fires_on(self, code: Sequence[str]) -> bool:
        """Whether the rule would flag some line of `code` (all of it treated as changed)."""
        return bool(self.hits([(n, True, line) for n, line in enumerate(code, start=1)]))

    def hits(self, rows: Sequence[tuple[int, bool, str]]) -> list[int]:
        """The line numbers the rule flags among the numbered `rows` it is shown."""
        flagged = []
        for index, (number, changed, code) in enumerate(rows):
            if not (changed or not self.changed_only) or not re.search(self.pattern, code):
                continue
            nearby = "\n".join(row[2] for row in rows[index : index + 1 + self.lookahead])
            if self.unless and re.search(self.unless, nearby):
                continue
            flagged.append(number + self.line_offset)
        return flagged


@dataclass(frozen=True)
class Say:
    """A coding agent's turn that only talks (also the last turn of a finished run)."""

    text: str


@dataclass(frozen=True)
class Call:
    """A coding agent's turn that calls a tool. In its string arguments `{cwd}` stands for
    the agent's working directory (as its system prompt states it) and `{file}` for the
    first file the brief names (`prompts.agent_files`): Claude Code's Read and Edit want
    absolute paths."""

    name: str
    arguments: Mapping[str, Any]

    def filled(self, ask: Ask) -> dict[str, Any]:
        """The arguments with `{cwd}` and `{file}` filled in from `ask`."""
        cwd = prompts.working_dir(ask.system) or prompts.working_dir(ask.prompt) or "."
        files = prompts.agent_files(ask.brief) or prompts.agent_files(ask.prompt)
        values = {"{cwd}": cwd, "{file}": files[0] if files else ""}

        def fill(value: Any) -> Any:
            if isinstance(value, str):
                for token, text in values.items():
                    value = value.replace(token, text)
                return value
            if isinstance(value, list):
                return [fill(item) for item in value]
            if isinstance(value, dict):
                return {key: fill(item) for key, item in value.items()}
            return value

        return {key: fill(value) for key, value in self.arguments.items()}


@dataclass
class Scenario:
    """The scripts the sandbox plays: reviewer rules and a coding agent's turns."""

    rules: list[Rule] = field(default_factory=list)
    turns: list[Say | Call] = field(default_factory=list)
    agents: dict[str, list[Say | Call]] = field(default_factory=dict)  # model name -> turns

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> Scenario:
        """A scenario from JSON: `{"rules": [{...Rule, "fixes": [{...Edit}]}], "turns":
        [{"say": text} | {"call": name, "arguments": {...}}], "agents": {model: [turns]}}`."""
        rules = [
            Rule(**{**rule, "fixes": tuple(Edit(**edit) for edit in rule.get("fixes", ()))})
            for rule in data.get("rules", ())
        ]
        agents = {str(model): _turns(turns) for model, turns in (data.get("agents") or {}).items()}
        return cls(rules, _turns(data.get("turns", ())), agents)

    def answer(self, ask: Ask, *, fault: str | None = None) -> Answer:
        """The scripted answer to `ask`, bent by a content `fault` if one was drawn."""
        if ask.schema is not None:
            reply = self._structured(ask, fault)
            payload = json.dumps(reply, ensure_ascii=False)
            if fault == "malformed_json":
                payload = payload[: max(1, len(payload) // 2)]
            elif fault == "schema_violation":
                payload = json.dumps({SCRIPTED: "this reply breaks the schema on purpose"})
            if ask.schema_via == "tool" and ask.schema_name:
                return Answer(tool=ToolCall(ask.schema_name, payload))
            return Answer(text=payload)
        return self._turn(ask)

    def _structured(self, ask: Ask, fault: str | None) -> Any:
        assert ask.schema is not None
        model = scripted_name(ask.model)
        brief = ask.brief
        if ask.schema_name == prompts.REVIEW_SCHEMA:
            reply = self._review(brief, model, fault)
        elif ask.schema_name == prompts.FIX_SCHEMA:
            reply = self._fix(brief, ask.assistant_turns, model, fault)
        elif ask.schema_name == prompts.VERIFY_SCHEMA:
            reply = self._verify(brief, model)
        else:
            reply = None
        if reply is None:
            return refusal_object(ask.schema, refusal_text(model, ask.schema_name))
        return reply

    def _review(self, brief: str, model: str, fault: str | None) -> dict[str, Any] | None:
        paths = prompts.file_paths(brief)
        code = prompts.section(brief, prompts.CHANGED_CODE)
        rows = prompts.numbered_lines(code) if code is not None else []
        if not paths or not rows:
            return None
        path, last = paths[0], rows[-1][0]
        findings = []
        for rule in self.rules:
            for line in rule.hits(rows):
                findings.append(
                    {
                        "path": path,
                        "start_line": line,
                        "end_line": max(line, min(line + rule.span - 1, last)),
                        "category": rule.category,
                        "severity": rule.severity,
                        "title": rule.title or rule.name,
                        "rationale": f"Scripted reviewer ({model}), rule {rule.name!r}: "
                        + (rule.rationale or f"the code matches {rule.pattern!r}."),
                        "suggested_fix": rule.suggested_fix,
                    }
                )
        if fault == "edit_workflow":
            findings.append(_finding(".github/workflows/ci.yml", 1, "Scripted injection"))
        elif fault == "exfiltrate":
            leak = prompts.untrusted_text(brief) or brief
            line = next((number for number, changed, _ in rows if changed), rows[0][0])
            findings.append(_finding(path, line, leak, category="security"))
        count = len(findings)
        return {"findings": findings, "notes": f"Scripted reviewer ({model}): {count} finding(s)."}

    def _fix(
        self, brief: str, attempt: int, model: str, fault: str | None
    ) -> dict[str, Any] | None:
        paths = prompts.file_paths(brief)
        flagged = prompts.section(brief, prompts.FLAGGED_CODE)
        rule = self._rule_for(flagged)
        if not paths or rule is None or not rule.fixes:
            return None
        edit = rule.fixes[min(attempt, len(rule.fixes) - 1)]
        edits = [{"path": edit.path or paths[0], "search": edit.search, "replace": edit.replace}]
        if fault == "edit_workflow":
            edits.append(
                {
                    "path": ".github/workflows/ci.yml",
                    "search": "on:",
                    "replace": "on: pull_request_target\n# scripted injection\nx:",
                }
            )
        elif fault == "exfiltrate":
            edits.append({"path": "../../leaked.txt", "search": "", "replace": brief})
        return {"edits": edits, "explanation": f"Scripted fixer ({model}), rule {rule.name!r}."}

    def _verify(self, brief: str, model: str) -> dict[str, Any] | None:
        rule = self._rule_for(prompts.section(brief, prompts.FLAGGED_CODE))
        after = prompts.section(brief, prompts.CODE_AFTER_FIX)
        if rule is None or after is None:
            return None
        still = rule.fires_on(prompts.fenced(after))
        reason = "the flagged pattern is still there" if still else "the flagged pattern is gone"
        return {
            "resolved": not still,
            "reason": f"Scripted verifier ({model}), rule {rule.name!r}: {reason}.",
        }

    def _rule_for(self, flagged: str | None) -> Rule | None:
        if flagged is None:
            return None
        code = prompts.fenced(flagged)
        return next((rule for rule in self.rules if rule.fires_on(code)), None)

    def _turn(self, ask: Ask) -> Answer:
        model = scripted_name(ask.model)
        turns = self.agents.get(ask.model, self.turns)
        index = ask.tool_results if ask.tools else ask.assistant_turns
        if index >= len(turns):
            if turns:
                return Answer(text=f"Scripted agent ({model}): done, no more scripted turns.")
            return Answer(text=refusal_text(model, None))
        turn = turns[index]
        if isinstance(turn, Say):
            return Answer(text=turn.text)
        if turn.name not in ask.tools:
            return Answer(text=f"{refusal_text(model, None)} (tool {turn.name!r} not offered)")
        return Answer(tool=ToolCall(turn.name, json.dumps(turn.filled(ask))))


def _turns(data: Sequence[Mapping[str, Any]]) -> list[Say | Call]:
    return [
        Say(turn["say"]) if "say" in turn else Call(turn["call"], turn.get("arguments", {}))
        for turn in data
    ]


def scripted_name(model: str) -> str:
    """The model name replies carry: always visibly scripted."""
    return model if model.startswith(f"{SCRIPTED}-") else f"{SCRIPTED}-{model or 'model'}"


def refusal_text(model: str, schema_name: str | None) -> str:
    what = f"a {schema_name} request" if schema_name else "this request"
    return f"Scripted model {model}: there is no script for {what}; nothing was done."


def refusal_object(schema: Mapping[str, Any], message: str) -> Any:
    """The smallest value valid against `schema`, every string saying `message`."""
    return _minimal(schema, message, schema.get("$defs", {}))


def _minimal(node: Mapping[str, Any], message: str, definitions: Mapping[str, Any]) -> Any:
    if "$ref" in node:
        return _minimal(definitions[str(node["$ref"]).rsplit("/", 1)[-1]], message, definitions)
    if "const" in node:
        return node["const"]
    if "enum" in node:
        return node["enum"][0]
    for key in ("anyOf", "oneOf"):
        if key in node:
            options = node[key]
            if any(option.get("type") == "null" for option in options):
                return None
            return _minimal(options[0], message, definitions)
    kind = node.get("type")
    if isinstance(kind, list):
        kind = "null" if "null" in kind else kind[0]
    if kind == "object" or "properties" in node:
        return {
            name: _minimal(sub, message, definitions)
            for name, sub in node.get("properties", {}).items()
            if name in node.get("required", node.get("properties", {}))
        }
    return {
        "array": [],
        "string": message,
        "boolean": False,
        "integer": 0,
        "number": 0,
        "null": None,
    }.get(str(kind), message)


def _finding(path: str, line: int, rationale: str, *, category: str = "bug") -> dict[str, Any]:
    return {
        "path": path,
        "start_line": line,
        "end_line": line,
        "category": category,
        "severity": "critical",
        "title": "Scripted injection: a finding the PR text asked for",
        "rationale": rationale,
        "suggested_fix": None,
    }
