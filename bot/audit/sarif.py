"""SARIF 2.1.0 logs, from any analyzer, turned into findings.

Read as the standard says: every run of a log; rules by `ruleIndex` or `rule.index` into
the tool component `rule.toolComponent` names (the driver or an extension), by `rule.guid`
or by `ruleId`, with their help text, help URI, default level and tags; result `level`;
regions with `endLine` and columns (`columnKind`); `uriBaseId` resolved through
`originalUriBaseIds`; `partialFingerprints` preferred for the fingerprint; `suppressions`
(all of them accepted) and `baselineState: absent` honoured; results outside the repository
dropped and counted. A result's first `fix` becomes the finding's `edits`, exactly its
replacements.
"""

from __future__ import annotations

import functools
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from fnmatch import fnmatchcase
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import unquote, urljoin, urlparse

from bot.audit.findings import Edit, Finding, end_line_of, number_occurrences, split_lines

__all__ = [
    "LEVELS",
    "SarifError",
    "SarifRead",
    "SourceCache",
    "parse_sarif",
    "read_sarif",
    "repo_path",
    "validate_sarif",
]

# Categories by rule: analyzers that report syntax errors use these rule ids.
_SYNTAX_RULES = frozenset({"invalid-syntax", "E999", "syntax-error"})
LEVELS = ("none", "note", "warning", "error")  # SARIF result levels, lowest first
# Result kinds that are not problems (SARIF 3.27.9): a pass, a rule that did not apply.
_NOT_PROBLEMS = frozenset({"pass", "notApplicable", "informational"})
# A rule marks its fixes safe with this tag (in `properties.tags`) or property set to true.
SAFE_FIX_MARK = "safe-fix"
SCHEMA_FILE = Path(__file__).with_name("schemas") / "sarif-schema-2.1.0.json"
MAX_EXPLANATION = 1000
_LINE_BREAK = re.compile(r"\r\n|\r|\n")


class SarifError(ValueError):
    """A SARIF document this module cannot read; the message says what is wrong."""


@dataclass(frozen=True)
class SarifRead:
    """What a SARIF log held: the findings, and how many results were dropped and why."""

    findings: list[Finding]
    outside: int = 0  # results on files outside the repository (or with no file at all)
    suppressed: int = 0  # results the log says are suppressed, or absent from the code


@functools.lru_cache(maxsize=1)
def _validator() -> Any:
    import jsonschema  # type: ignore[import-untyped]  # on first use: only SARIF auditors need it

    schema = json.loads(SCHEMA_FILE.read_text())
    return jsonschema.Draft4Validator(schema)


def validate_sarif(doc: object, analyzer: str) -> None:
    """SarifError naming the first problem when `doc` does not validate against the SARIF
    2.1.0 schema (vendored: bot/audit/schemas)."""
    import jsonschema

    error = jsonschema.exceptions.best_match(_validator().iter_errors(doc))
    if error is not None:
        where = "/".join(str(part) for part in error.absolute_path) or "(the log)"
        raise SarifError(
            f"{analyzer} wrote a log that is not valid SARIF 2.1.0: at {where}: {error.message}"
        )


def parse_sarif(doc: Mapping[str, Any], analyzer: str, root: Path) -> list[Finding]:
    """The findings of `read_sarif`."""
    return read_sarif(doc, analyzer, root).findings


def read_sarif(
    doc: Mapping[str, Any],
    analyzer: str,
    root: Path,
    *,
    safe_rules: Sequence[str] = (),
    fix_lines: bool = False,
) -> SarifRead:
    """Findings from a SARIF log, with paths relative to `root` and snippets read under it.

    Results outside `root` or without a location are dropped (and counted): the loop can
    only act on files in the worktree. A fix is "safe" when its rule marks it so (tag or
    property `safe-fix`) or its rule id matches one of the operator's `safe_rules` globs.
    With `fix_lines` a replacement's insertedContent stands for the whole lines its
    deletedRegion is on (semgrep writes its fixes so: the match's columns, the lines' text).
    """
    runs = doc.get("runs") if isinstance(doc, Mapping) else None
    if not isinstance(runs, list):
        raise SarifError(f"{analyzer}: SARIF document has no 'runs' list")
    root = root.resolve()
    sources = SourceCache(root)
    findings: list[Finding] = []
    outside = suppressed = 0
    for run in runs:
        if not isinstance(run, Mapping):
            raise SarifError(f"{analyzer}: SARIF run is not an object")
        context = _Run(run, root, analyzer, sources, tuple(safe_rules), fix_lines)
        for result in run.get("results") or []:
            if not isinstance(result, Mapping):
                continue
            if _suppressed(result):
                suppressed += 1
                continue
            if result.get("kind") in _NOT_PROBLEMS:
                continue
            finding = context.finding(result)
            if finding is None:
                outside += 1
            else:
                findings.append(finding)
    return SarifRead(number_occurrences(findings), outside, suppressed)


def _suppressed(result: Mapping[str, Any]) -> bool:
    if result.get("baselineState") == "absent":
        return True
    suppressions = [s for s in _list(result.get("suppressions")) if isinstance(s, Mapping)]
    # Suppressed when every request to suppress stands (SARIF 3.35.3): one that was rejected
    # or still waits for review keeps the result, as the SARIF SDK's `IsSuppressed` and the
    # SARIF tutorials' "Determining suppression status" decide.
    return bool(suppressions) and all(
        s.get("status", "accepted") == "accepted" for s in suppressions
    )


class _Run:
    """One run of a log: its rules, base URIs and column kind."""

    def __init__(
        self,
        run: Mapping[str, Any],
        root: Path,
        analyzer: str,
        sources: SourceCache,
        safe_rules: tuple[str, ...],
        fix_lines: bool = False,
    ) -> None:
        self.root = root
        self.fix_lines = fix_lines
        self.analyzer = analyzer
        self.sources = sources
        self.safe_rules = safe_rules
        tool = _mapping(run.get("tool"))
        self.components = [_mapping(tool.get("driver"))] + [
            _mapping(e) for e in _list(tool.get("extensions"))
        ]
        self.rules_by_id: dict[str, Mapping[str, Any]] = {}
        self.rules_by_guid: dict[str, Mapping[str, Any]] = {}
        for component in reversed(self.components):  # the driver's win over extensions'
            for rule in _list(component.get("rules")):
                if isinstance(rule, Mapping) and isinstance(rule.get("id"), str):
                    self.rules_by_id[rule["id"]] = rule
                if isinstance(rule, Mapping) and isinstance(rule.get("guid"), str):
                    self.rules_by_guid[rule["guid"].lower()] = rule
        self.bases = _mapping(run.get("originalUriBaseIds"))
        self.artifacts = _list(run.get("artifacts"))
        self.utf16 = run.get("columnKind", "utf16CodeUnits") != "unicodeCodePoints"

    # -- rules ---------------------------------------------------------------------------

    def rule_for(self, result: Mapping[str, Any]) -> Mapping[str, Any]:
        """The rule metadata of a result (SARIF 3.27.5-3.27.7, 3.52): by index into the rules
        of the tool component its `rule.toolComponent` names (by index, guid or name; the
        driver when none), else by guid, else by id, a hierarchical id by its leading part.
        An index whose rule has another id than the result's `ruleId` yields to the rule of
        that id when there is one, so the id and the help filed together agree."""
        reference = _mapping(result.get("rule"))
        rules = _list(self._component(reference.get("toolComponent")).get("rules"))
        rule_id = result.get("ruleId") or reference.get("id")
        rule_id = rule_id if isinstance(rule_id, str) else None
        indexed: Mapping[str, Any] | None = None
        for index in (reference.get("index"), result.get("ruleIndex")):
            if (
                isinstance(index, int)
                and 0 <= index < len(rules)
                and isinstance(rules[index], Mapping)
            ):
                indexed = rules[index]
                break
        if indexed is not None and (rule_id is None or indexed.get("id") == rule_id):
            return indexed
        guid = reference.get("guid")
        if isinstance(guid, str) and guid.lower() in self.rules_by_guid:
            return self.rules_by_guid[guid.lower()]
        if rule_id is not None:
            parts = rule_id.split("/")
            for end in range(len(parts), 0, -1):
                named = self.rules_by_id.get("/".join(parts[:end]))
                if named is not None:
                    return named
        return indexed or {}

    def _component(self, reference: object) -> Mapping[str, Any]:
        """The tool component a toolComponentReference names; the driver when it names none."""
        reference = _mapping(reference)
        index, guid, name = reference.get("index"), reference.get("guid"), reference.get("name")
        extensions = self.components[1:]
        if isinstance(index, int) and 0 <= index < len(extensions):
            return extensions[index]
        for component in self.components:
            if isinstance(guid, str) and str(component.get("guid", "")).lower() == guid.lower():
                return component
            if isinstance(name, str) and guid is None and component.get("name") == name:
                return component
        return self.components[0]

    # -- locations -----------------------------------------------------------------------

    def path_of(self, artifact_location: object) -> str | None:
        """The repo-relative path of an artifactLocation; None outside the repository."""
        location = _mapping(artifact_location)
        uri, base_id = location.get("uri"), location.get("uriBaseId")
        index = location.get("index")
        if uri is None and isinstance(index, int) and 0 <= index < len(self.artifacts):
            listed = _mapping(_mapping(self.artifacts[index]).get("location"))
            uri, base_id = listed.get("uri"), base_id or listed.get("uriBaseId")
        if not isinstance(uri, str) or not uri:
            return None
        return repo_path(urljoin(self._base(base_id, 0), uri), self.root)

    def _base(self, base_id: object, depth: int) -> str:
        """The absolute URI (ending in "/") a base id stands for; unknown ids (such as
        `%SRCROOT%` without `originalUriBaseIds`) and none at all: the repository root."""
        fallback = self.root.as_uri() + "/"
        entry = self.bases.get(base_id) if isinstance(base_id, str) else None
        if not isinstance(entry, Mapping) or depth > 10:
            return fallback
        parent = self._base(entry.get("uriBaseId"), depth + 1)
        uri = entry.get("uri")
        if not isinstance(uri, str):
            return parent
        joined = urljoin(parent, uri)
        return joined if joined.endswith("/") else joined + "/"

    # -- the finding ---------------------------------------------------------------------

    def finding(self, result: Mapping[str, Any]) -> Finding | None:
        location = _first_physical_location(result)
        if location is None:
            return None
        path = self.path_of(location.get("artifactLocation"))
        if path is None:
            return None
        lines = self._lines(path, _mapping(location.get("region")))
        if lines is None:
            return None
        start, end = lines
        rule_meta = self.rule_for(result)
        rule = str(result.get("ruleId") or rule_meta.get("id") or "unknown")
        message = _text(result.get("message")) or _text(rule_meta.get("shortDescription")) or rule
        help_uri = rule_meta.get("helpUri")
        tags = [str(t) for t in _list(_mapping(rule_meta.get("properties")).get("tags"))]
        edits = self._edits(result)
        fix = None
        if edits:
            fix = "safe" if self._safe(rule, rule_meta, tags) else "unsafe"
        if rule in _SYNTAX_RULES:
            category = "syntax"
        elif any(tag.lower() == "security" for tag in tags):
            category = "security"
        else:
            category = "lint"
        return Finding(
            analyzer=self.analyzer,
            rule=rule,
            category=category,
            path=path,
            start_line=start,
            end_line=end,
            message=message,
            snippet=self.sources.lines(path, start, end),
            help_uri=help_uri if isinstance(help_uri, str) else None,
            fix=fix,
            explanation=_explanation(rule_meta),
            edits=edits,
            level=_level(result, rule_meta),
            partial_fingerprint=_partial_fingerprint(result),
        )

    def _lines(self, path: str, region: Mapping[str, Any]) -> tuple[int, int] | None:
        start = region.get("startLine")
        if isinstance(start, int) and start >= 1:
            end = region.get("endLine")
            return start, end_line_of(
                start, end if isinstance(end, int) else None, region.get("endColumn")
            )
        offset = region.get("charOffset")
        if isinstance(offset, int) and offset >= 0:  # a region given by characters only
            text = self.sources.text(path)
            first = text.count("\n", 0, offset) + 1
            length = region.get("charLength")
            last_char = offset + max((length if isinstance(length, int) else 0) - 1, 0)
            return first, max(first, text.count("\n", 0, last_char) + 1)
        return (1, 1) if not region else None

    def _safe(self, rule: str, meta: Mapping[str, Any], tags: Sequence[str]) -> bool:
        marked = _mapping(meta.get("properties")).get(SAFE_FIX_MARK) is True
        return marked or SAFE_FIX_MARK in tags or any(fnmatchcase(rule, g) for g in self.safe_rules)

    def _edits(self, result: Mapping[str, Any]) -> tuple[Edit, ...]:
        """The first fix of a result as edits; none when any part of it cannot be placed
        (outside the repository, beyond the end of the file): half a fix is no fix."""
        fixes = _list(result.get("fixes"))
        if not fixes:
            return ()
        edits: list[Edit] = []
        for change in _list(_mapping(fixes[0]).get("artifactChanges")):
            change = _mapping(change)
            path = self.path_of(change.get("artifactLocation"))
            if path is None:
                return ()
            for replacement in _list(change.get("replacements")):
                replacement = _mapping(replacement)
                span = self._span(path, _mapping(replacement.get("deletedRegion")))
                if span is None:
                    return ()
                offset, length = span
                text = self.sources.text(path)
                inserted = _mapping(replacement.get("insertedContent")).get("text", "")
                if not isinstance(inserted, str):
                    return ()
                edits.append(Edit(path, offset, length, text[offset : offset + length], inserted))
        return tuple(edits)

    def _span(self, path: str, region: Mapping[str, Any]) -> tuple[int, int] | None:
        """(offset, length) in the file's characters of a deleted region; None if it does
        not fit the file."""
        text = self.sources.text(path)
        offset = region.get("charOffset")
        if isinstance(offset, int) and "startLine" not in region:
            length = region.get("charLength", 0)
            if not isinstance(length, int) or offset < 0 or offset + length > len(text):
                return None
            return offset, length
        starts = _line_starts(text)
        start_line = region.get("startLine")
        if not isinstance(start_line, int) or not 1 <= start_line <= len(starts):
            return None
        end_line = region.get("endLine", start_line)
        if not isinstance(end_line, int) or not start_line <= end_line <= len(starts):
            return None
        begin = self._offset(text, starts, start_line, region.get("startColumn", 1))
        end_column = region.get("endColumn")
        if self.fix_lines:
            begin, end_column = starts[start_line - 1], None
        finish: int | None
        if end_column is None:  # to the end of the line, its line break excluded
            finish = starts[end_line - 1] + len(_line_text(text, starts, end_line))
        else:
            finish = self._offset(text, starts, end_line, end_column)
        if begin is None or finish is None or finish < begin:
            return None
        return begin, finish - begin

    def _offset(self, text: str, starts: list[int], line: int, column: object) -> int | None:
        """The character offset of a 1-based column on a line (UTF-16 code units unless the
        run counts code points); a column just past the line's end is allowed."""
        if not isinstance(column, int) or column < 1:
            return None
        content = _line_text(text, starts, line)
        units = column - 1
        index = 0
        while units > 0 and index < len(content):
            units -= 2 if self.utf16 and ord(content[index]) > 0xFFFF else 1
            index += 1
        if units > 0:
            if units == 1 or index < len(content):
                return None
            # Past the end of the line: the line break itself may be deleted.
            rest = text[starts[line - 1] + index :]
            brk = _LINE_BREAK.match(rest)
            if brk is None or units > len(brk.group()):
                return None
            index += units
        return starts[line - 1] + index


def _line_starts(text: str) -> list[int]:
    """Offsets where each line starts; one more at the end when the text ends in a break."""
    return [0, *(m.end() for m in _LINE_BREAK.finditer(text))]


def _line_text(text: str, starts: list[int], line: int) -> str:
    begin = starts[line - 1]
    end = starts[line] if line < len(starts) else len(text)
    return _LINE_BREAK.sub("", text[begin:end], count=1)


def _level(result: Mapping[str, Any], rule: Mapping[str, Any]) -> str:
    """The result's level (SARIF 3.27.10): its own, else its rule's default, else warning."""
    level = result.get("level")
    if level not in LEVELS:
        level = _mapping(rule.get("defaultConfiguration")).get("level")
    return level if isinstance(level, str) and level in LEVELS else "warning"


def _explanation(rule: Mapping[str, Any]) -> str | None:
    for key in ("help", "fullDescription", "shortDescription"):
        text = _text(rule.get(key))
        if text:
            return " ".join(text.split())[:MAX_EXPLANATION]
    return None


def _partial_fingerprint(result: Mapping[str, Any]) -> str | None:
    # Only partialFingerprints: some analyzers fill `fingerprints` with placeholders
    # (semgrep without a login writes "requires login" for every result).
    prints = result.get("partialFingerprints")
    if isinstance(prints, Mapping) and prints:
        return json.dumps(dict(sorted(prints.items())), sort_keys=True)
    return None


def _text(message: object) -> str:
    value = _mapping(message).get("text")
    return value if isinstance(value, str) else ""


def _mapping(value: object) -> Mapping[str, Any]:
    return value if isinstance(value, Mapping) else {}


def _list(value: object) -> list[Any]:
    return value if isinstance(value, list) else []


def _first_physical_location(result: Mapping[str, Any]) -> Mapping[str, Any] | None:
    for location in _list(result.get("locations")):
        physical = location.get("physicalLocation") if isinstance(location, Mapping) else None
        if isinstance(physical, Mapping):
            return physical
    return None


def repo_path(uri: str, root: Path) -> str | None:
    """A repo-relative posix path for a `file://` URI or a relative URI; None if outside root."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        absolute = Path(unquote(parsed.path))
    elif parsed.scheme == "":
        absolute = root / unquote(uri)
    else:
        return None
    try:
        relative = absolute.resolve().relative_to(root)
    except ValueError:
        return None
    if not relative.parts:
        return None
    return PurePosixPath(*relative.parts).as_posix()


class SourceCache:
    """Reads each flagged file once, with its own line endings."""

    def __init__(self, root: Path) -> None:
        self._root = root
        self._texts: dict[str, str] = {}
        self._files: dict[str, list[str]] = {}

    def text(self, path: str) -> str:
        if path not in self._texts:
            try:
                with (self._root / path).open(encoding="utf-8", errors="replace", newline="") as f:
                    self._texts[path] = f.read()
            except OSError:
                self._texts[path] = ""
        return self._texts[path]

    def lines(self, path: str, start: int, end: int) -> str:
        if path not in self._files:
            self._files[path] = split_lines(self.text(path))
        return "\n".join(self._files[path][start - 1 : end])
