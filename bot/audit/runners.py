"""The built-in auditors: `ruff check` and `ruff format --diff`, run in a worktree."""

from __future__ import annotations

import contextlib
import dataclasses
import json
import os
import re
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, Sequence
from pathlib import Path, PurePosixPath

from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from bot.audit.external import AuditorError, AuditorSpec, run_sarif_auditor
from bot.audit.findings import Finding, number_occurrences
from bot.audit.ruff_json import parse_ruff_json
from bot.git.worktrees import snapshot, snapshot_changes
from bot.process import CannotStart, Completed, run

__all__ = [
    "AUDITORS",
    "AuditError",
    "AuditReport",
    "Auditor",
    "analyzers",
    "audit",
    "audit_report",
    "parse_format_diff",
    "read_only",
    "ruff_reads",
    "run_ruff",
    "run_ruff_format",
    "run_tool",
]

DEFAULT_TIMEOUT_S = 120.0
NOTEBOOK_SUFFIX = ".ipynb"
# What ruff reads by default (its `include`): a file outside it, given by name, would be read
# as Python anyway, so the built-ins are never given one.
RUFF_SUFFIXES = (".py", ".pyi", NOTEBOOK_SUFFIX)
FORMAT_HELP_URI = "https://docs.astral.sh/ruff/formatter/"
FORMAT_EXPLANATION = (
    "The repository's code is formatted with `ruff format`; code formatted another way makes "
    "every later diff noisier."
)
FORMAT_MESSAGE = "Not formatted the way `ruff format` formats it ({removed} -> {added} lines)."

Auditor = Callable[[Path, Sequence[str] | None], Awaitable[list[Finding]]]

_RULE_CODE = re.compile(r"[A-Z]+[0-9]+")
_HUNK_HEADER = re.compile(r"^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@")
# `ruff format --diff` exits 2 when some file does not parse; the others are still diffed,
# and `ruff check` reports the syntax error itself.
_PARSE_FAILURE = re.compile(r"^error: Failed to parse ")


class AuditError(RuntimeError):
    """An auditor could not run or its output could not be read; the message says why."""


async def run_tool(
    args: Sequence[str], cwd: Path, timeout_s: float, env: Mapping[str, str]
) -> Completed:
    """Run an analyzer (or git) for an audit, without stdin; AuditError if it cannot start
    or overruns. Its exit code is the caller's to judge."""
    name = " ".join(args[:2])
    try:
        result = await run(args, cwd=cwd, env=env, timeout_s=timeout_s, kill_grace_s=0)
    except CannotStart as exc:
        raise AuditError(f"cannot start {name} in {cwd}: {exc.__cause__}") from exc
    if result.timed_out:
        raise AuditError(f"{name} did not finish within {timeout_s:g} s in {cwd}")
    return result


async def run_ruff(
    worktree: Path, paths: Sequence[str] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[Finding]:
    """Lint findings from `ruff check`, honouring the repository's own ruff configuration."""
    targets = _existing(worktree, paths)
    if targets == []:
        return []
    # --no-fix: a repository's `fix = true` would otherwise make the audit rewrite the files
    # it reports on (and then not report what it fixed). JSON rather than SARIF: it says
    # whether each finding has a safe fix, which routing needs.
    args = [
        "check", "--no-fix", "--output-format", "json", "--exit-zero", "--no-cache",
        "--force-exclude",
    ]  # fmt: skip
    result = await _run_ruff(worktree, [*args, "--", *(targets or ["."])], timeout_s)
    if result.returncode != 0:
        raise AuditError(_failure("ruff check", result))
    try:
        findings = parse_ruff_json(json.loads(result.stdout_text), worktree)
    except (ValueError, TypeError) as exc:
        raise AuditError(f"ruff check wrote output that is not readable JSON: {exc}") from exc
    # Ruff numbers notebook lines per cell, which no link or snippet of the file can show.
    findings = [finding for finding in findings if not finding.path.endswith(NOTEBOOK_SUFFIX)]
    explained = {rule: await rule_explanation(rule) for rule in {f.rule for f in findings}}
    return [dataclasses.replace(f, explanation=explained[f.rule]) for f in findings]


# Rule documentation, as this process's ruff has it: read once per rule.
_EXPLANATIONS: dict[str, str | None] = {}
_WHY_HEADING = "## Why is this bad?"


async def rule_explanation(rule: str) -> str | None:
    """The first paragraph of "Why is this bad?" in `ruff rule <rule>`; None if ruff has no
    such rule or section (syntax errors, say)."""
    if rule not in _EXPLANATIONS:
        _EXPLANATIONS[rule] = None
        if _RULE_CODE.fullmatch(rule):
            args = [str(find_ruff_bin()), "rule", "--output-format", "json", rule]
            env = {key: os.environ[key] for key in ("PATH", "LANG") if key in os.environ}
            result = await run_tool(args, Path.cwd(), DEFAULT_TIMEOUT_S, env)
            if result.returncode == 0:
                _EXPLANATIONS[rule] = _why_section(result.stdout_text)
    return _EXPLANATIONS[rule]


def _why_section(doc_json: str) -> str | None:
    try:
        doc = json.loads(doc_json)
    except ValueError:
        return None
    text = doc.get("explanation") if isinstance(doc, Mapping) else None
    if not isinstance(text, str) or _WHY_HEADING not in text:
        return None
    section = text.split(_WHY_HEADING, 1)[1].strip()
    paragraph = section.split("\n\n", 1)[0]
    if paragraph.startswith("#"):
        return None
    return " ".join(paragraph.split())[:1000] or None


async def run_ruff_format(
    worktree: Path, paths: Sequence[str] | None = None, *, timeout_s: float = DEFAULT_TIMEOUT_S
) -> list[Finding]:
    """Format findings from `ruff format --diff`: one finding per hunk of the diff."""
    targets = _existing(worktree, paths)
    if targets == []:
        return []
    args = ["format", "--diff", "--no-cache", "--force-exclude", "--", *(targets or ["."])]
    result = await _run_ruff(worktree, args, timeout_s)
    errors = [line for line in result.stderr_text.splitlines() if line.startswith("error:")]
    tolerated = result.returncode in (0, 1) or (
        result.returncode == 2 and errors and all(_PARSE_FAILURE.match(e) for e in errors)
    )
    if not tolerated:
        raise AuditError(_failure("ruff format --diff", result))
    return parse_format_diff(result.stdout_text, worktree)


def parse_format_diff(diff: str, root: Path) -> list[Finding]:
    """Findings from a unified diff of the formatter: lines and snippet are the original ones.

    A hunk's finding spans its changed original lines, from the first to the last line
    removed; lines inserted without removing any count as a change to the line above.
    """
    findings: list[Finding] = []
    path: str | None = None
    hunk: _Hunk | None = None
    for line in diff.splitlines():
        if hunk is not None and not hunk.complete:
            hunk.feed(line)
            continue
        if hunk is not None and path is not None:
            findings.extend(hunk.findings(path))
        hunk = None
        header = _HUNK_HEADER.match(line)
        if line.startswith("+++ "):
            path = _diff_path(line[4:], root)
            if NOTEBOOK_SUFFIX + ":cell " in path:  # lines per cell: see run_ruff
                path = None
        elif header and path is not None:
            hunk = _Hunk(
                old_start=int(header[1]),
                old_count=int(header[2] if header[2] is not None else 1),
                new_count=int(header[4] if header[4] is not None else 1),
            )
    if hunk is not None and path is not None:
        findings.extend(hunk.findings(path))
    return number_occurrences(findings)


class _Hunk:
    """One hunk of a unified diff, fed line by line until its counts are used up."""

    def __init__(self, old_start: int, old_count: int, new_count: int) -> None:
        self.old_left = old_count
        self.new_left = new_count
        self.old_line = old_start if old_count else old_start + 1
        self.original: dict[int, str] = {}
        self.touched: list[int] = []
        self.removed = 0
        self.added = 0
        self.previous = " "

    @property
    def complete(self) -> bool:
        return self.old_left <= 0 and self.new_left <= 0

    def feed(self, line: str) -> None:
        if line.startswith("\\"):  # "\ No newline at end of file"
            return
        marker, text = (line[:1], line[1:]) if line else (" ", "")
        if marker == "+":
            if self.previous not in "+-":
                self.touched.append(max(1, self.old_line - 1))
            self.added += 1
            self.new_left -= 1
        elif marker == "-":
            self.original[self.old_line] = text
            self.touched.append(self.old_line)
            self.removed += 1
            self.old_line += 1
            self.old_left -= 1
        else:
            self.original[self.old_line] = text
            self.old_line += 1
            self.old_left -= 1
            self.new_left -= 1
        self.previous = marker

    def findings(self, path: str) -> list[Finding]:
        if not self.touched:
            return []
        start, end = min(self.touched), max(self.touched)
        snippet = "\n".join(self.original.get(n, "") for n in range(start, end + 1))
        return [
            Finding(
                analyzer="ruff-format",
                rule="format",
                category="format",
                path=path,
                start_line=start,
                end_line=end,
                message=FORMAT_MESSAGE.format(removed=self.removed, added=self.added),
                snippet=snippet,
                help_uri=FORMAT_HELP_URI,
                fix="safe",  # what `ruff format` does is the fix
                explanation=FORMAT_EXPLANATION,
            )
        ]


def _diff_path(raw: str, root: Path) -> str:
    raw = raw.split("\t", 1)[0].strip()
    path = Path(raw)
    if path.is_absolute():
        try:
            path = path.resolve().relative_to(root.resolve())
        except ValueError:
            return PurePosixPath(raw).as_posix()
    return PurePosixPath(*path.parts).as_posix()


AUDITORS: dict[str, Auditor] = {"ruff": run_ruff, "ruff-format": run_ruff_format}
NO_AUDITORS: Mapping[str, AuditorSpec] = {}


@dataclasses.dataclass(frozen=True)
class AuditReport:
    """An audit's findings, and the catalog auditors that failed (name -> why): their
    findings are missing, the others' count."""

    findings: list[Finding]
    failed: dict[str, str] = dataclasses.field(default_factory=dict)


def analyzers(names: Sequence[str], catalog: Mapping[str, AuditorSpec] = NO_AUDITORS) -> list[str]:
    """The auditors among `names` that are analyzers the bot runs (built-ins and the
    catalog's SARIF auditors), in order; the rest are model reviewers."""
    return [name for name in dict.fromkeys(names) if name in AUDITORS or name in catalog]


async def audit(
    worktree: Path,
    auditor_names: Sequence[str],
    paths: Sequence[str] | None = None,
    *,
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
) -> list[Finding]:
    """Run the named auditors one after the other in `worktree`; all findings, sorted.
    Any auditor that fails fails the audit (AuditError): for judging a fix."""
    report = await audit_report(worktree, auditor_names, paths, catalog=catalog)
    if report.failed:
        raise AuditError("; ".join(report.failed.values()))
    return report.findings


async def audit_report(
    worktree: Path,
    auditor_names: Sequence[str],
    paths: Sequence[str] | None = None,
    *,
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
    changed: Sequence[str] | None = None,
) -> AuditReport:
    """`audit`, where a catalog auditor that crashes, overruns or writes no valid SARIF is
    reported in `failed` and the other auditors' findings still count. A built-in that
    fails, or an audit that changed the worktree, still raises AuditError. `changed`: the
    files a pull request changed, given to catalog auditors with `changed_files` when no
    `paths` are."""
    unknown = [name for name in auditor_names if name not in AUDITORS and name not in catalog]
    if unknown:
        raise AuditError(
            f"unknown auditor(s) {', '.join(unknown)}; built-in auditors are "
            f"{', '.join(sorted(AUDITORS))}"
            + (f", the server's catalog has {', '.join(sorted(catalog))}" if catalog else "")
        )
    findings: list[Finding] = []
    failed: dict[str, str] = {}
    async with read_only(worktree):
        for name in dict.fromkeys(auditor_names):
            if name in AUDITORS:
                findings.extend(await AUDITORS[name](worktree, paths))
                continue
            try:
                given = paths if paths is not None else changed
                findings.extend(await run_sarif_auditor(catalog[name], worktree, given))
            except AuditorError as exc:
                failed[name] = str(exc)
    return AuditReport(
        sorted(findings, key=lambda f: (f.path, f.start_line, f.analyzer, f.rule)), failed
    )


@contextlib.asynccontextmanager
async def read_only(worktree: Path) -> AsyncIterator[None]:
    """Raise AuditError when what runs inside changed any file of the git checkout at
    `worktree` (ignored files aside). An audit must only read: findings, line numbers and
    links describe the tree as it was, and a fix commits only what its agent changed.
    A directory that is not a git checkout is not checked."""
    if not (worktree / ".git").exists():
        yield
        return
    before = await snapshot(worktree)
    yield
    changed = await snapshot_changes(worktree, before, await snapshot(worktree))
    if changed:
        listed = ", ".join(changed[:10]) + (
            f" and {len(changed) - 10} more" if changed[10:] else ""
        )
        raise AuditError(
            f"the audit changed {len(changed)} file(s) in the worktree ({listed}); analyzers "
            "must only read, so nothing of this audit is used or committed"
        )


def ruff_reads(path: str) -> bool:
    """Whether ruff reads `path` when it walks a tree with its default `include`."""
    return path.endswith(RUFF_SUFFIXES) or PurePosixPath(path).name == "pyproject.toml"


def _existing(worktree: Path, paths: Sequence[str] | None) -> list[str] | None:
    """The given paths that still exist (a PR may delete files) and that ruff reads; None
    means "everything"."""
    if paths is None:
        return None
    return [p for p in dict.fromkeys(paths) if ruff_reads(p) and (worktree / p).exists()]


async def _run_ruff(worktree: Path, args: Sequence[str], timeout_s: float) -> Completed:
    # Only PATH and locale: the audit depends on the repository's config, not on the
    # environment of whoever runs the bot (no RUFF_* variables, no user-level config).
    env = {key: os.environ[key] for key in ("PATH", "LANG", "LC_ALL") if key in os.environ}
    env["NO_COLOR"] = "1"
    if _outer_ruff_config(worktree) is not None:
        # Ruff looks for configuration above the worktree too; a checkout without its own
        # root config must not be judged by whatever project the data directory sits in.
        args = [*args[:1], "--isolated", *args[1:]]
    return await run_tool([str(find_ruff_bin()), *args], worktree, timeout_s, env)


def _has_ruff_config(directory: Path) -> bool:
    if (directory / "ruff.toml").is_file() or (directory / ".ruff.toml").is_file():
        return True
    pyproject = directory / "pyproject.toml"
    try:
        return pyproject.is_file() and "[tool.ruff" in pyproject.read_text(errors="replace")
    except OSError:
        return False


def _outer_ruff_config(worktree: Path) -> Path | None:
    """A ruff config above a worktree that has none at its root (which ruff would use)."""
    root = worktree.resolve()
    if _has_ruff_config(root):
        return None
    return next((parent for parent in root.parents if _has_ruff_config(parent)), None)


def _failure(command: str, result: Completed) -> str:
    detail = result.stderr_text.strip() or result.stdout_text.strip()[:2000] or "no output"
    return (
        f"{command} failed with exit code {result.returncode}. Check the repository's ruff "
        f"configuration (pyproject.toml / ruff.toml). ruff said:\n{detail}"
    )
