"""Auditors from the operator's catalog: any analyzer that writes SARIF 2.1.0.

The operator defines them (the `auditors` table of the agents catalog); a repository only
picks them by name. Each runs in the worktree contained like an agent (`bot.process`: its
own process group, killed as a whole on timeout), with only PATH, the locale and the
variables its entry allow-lists, and a HOME of its own.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections import OrderedDict
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.audit.sarif import SarifError, read_sarif, validate_sarif
from bot.git.cmd import GitError, git
from bot.process import CannotStart, run

__all__ = ["SARIF_PLACEHOLDER", "AuditorSpec", "run_sarif_auditor"]

log = logging.getLogger(__name__)

SARIF_PLACEHOLDER = "{sarif}"
SAFE_ENV = ("PATH", "LANG", "LC_ALL", "LC_CTYPE", "TZ")
MAX_SARIF_BYTES = 64_000_000
STDERR_BYTES = 8_000
_NAME = re.compile(r"^[a-z0-9][a-z0-9._-]*$")
_ENV_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
# Never handed to an analyzer: the App's own settings and secrets, and git's.
FORBIDDEN_ENV_PREFIXES = ("REVIEW_LOOP_", "GITHUB_", "GH_", "GIT_")
# A fix task audits the commit the pull request's audit has just read: the same analyzer, argv
# and clean checkout of a commit give the same SARIF, so a recent run's findings are reused,
# not run again. Keyed by the commit, not its tree: an analyzer may read history (gitleaks
# scans every commit), and two commits with one tree have different histories.
MEMO_SIZE = 64
MEMO_BYTES = 8_000_000  # about: the remembered findings' text, all runs together
MEMO_TTL_S = 900.0


class AuditorError(RuntimeError):
    """A catalog auditor did not run, or wrote no readable SARIF; the message says why."""


class AuditorSpec(BaseModel):
    """One analyzer of the operator's catalog (`[auditors.<name>]`, `kind = "sarif"`).

    `argv` runs in the worktree. Its SARIF goes to stdout, or, with `sarif = "file"`, to a
    file whose path replaces `{sarif}` in `argv`. Exit code 0 and `found_exit_codes` mean
    "ran" (with or without findings); any other is a failure. With `changed_files`, the
    files to audit (those the pull request changed, when known; else every tracked file)
    that match `paths` are appended to `argv`; an auditor given no file is not run.
    `safe_fixes`: rule id globs whose SARIF fixes the operator trusts `sarif-fix` to apply.
    `fix_lines`: the analyzer writes a fix's insertedContent as the whole lines of its
    deletedRegion (semgrep does; set it for semgrep).
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    kind: Literal["sarif"]
    argv: list[str] = Field(min_length=1)
    sarif: Literal["stdout", "file"] = "stdout"
    found_exit_codes: list[int] = Field(default_factory=lambda: [1])
    timeout_s: float = Field(default=300.0, gt=0)
    env: list[str] = Field(default_factory=list)
    paths: list[str] = Field(default_factory=list)
    changed_files: bool = False
    safe_fixes: list[str] = Field(default_factory=list)
    fix_lines: bool = False
    description: str = ""

    @field_validator("name")
    @classmethod
    def _name_is_simple(cls, value: str) -> str:
        if not _NAME.match(value):
            raise ValueError("use lower-case letters, digits, '.', '_' and '-' (e.g. 'bandit')")
        return value

    @field_validator("env")
    @classmethod
    def _env_names_are_allowed(cls, names: list[str]) -> list[str]:
        for name in names:
            if not _ENV_NAME.match(name):
                raise ValueError(f"{name!r} is not an environment variable name")
            if name.upper().startswith(FORBIDDEN_ENV_PREFIXES):
                raise ValueError(
                    f"{name!r} cannot be passed to an auditor: variables starting with "
                    f"{', '.join(FORBIDDEN_ENV_PREFIXES)} belong to the bot and its git access"
                )
        return names

    @model_validator(mode="after")
    def _sarif_destination(self) -> AuditorSpec:
        placed = any(SARIF_PLACEHOLDER in arg for arg in self.argv)
        if self.sarif == "file" and not placed:
            raise ValueError(f'sarif = "file" needs {SARIF_PLACEHOLDER} in argv')
        if self.sarif == "stdout" and placed:
            raise ValueError(f'{SARIF_PLACEHOLDER} in argv needs sarif = "file"')
        if 0 in self.found_exit_codes:
            raise ValueError("found_exit_codes: 0 always means the analyzer ran")
        return self

    def applies_to(self, path: str) -> bool:
        return not self.paths or any(path_matches(path, glob) for glob in self.paths)


async def run_sarif_auditor(
    spec: AuditorSpec,
    worktree: Path,
    paths: Sequence[str] | None = None,
    *,
    environ: dict[str, str] | None = None,
) -> list[Finding]:
    """The findings of `spec` on `worktree` (of the files `paths`, or all). AuditorError when
    it cannot start, overruns, exits with a code that means failure, or writes no SARIF
    2.1.0 log; the message is for the check run."""
    args = list(spec.argv)
    if spec.changed_files or spec.paths:
        targets = await _targets(spec, worktree, paths)
        if not targets:
            return []
        if spec.changed_files:
            args += targets
    source = os.environ if environ is None else environ
    head = await _clean_head(worktree)
    key = (spec.model_dump_json(), tuple(args), tuple((k, source.get(k)) for k in spec.env), head)
    if head is not None and (memo := _MEMO.recall(key)) is not None:
        return memo
    findings = await _run(spec, worktree, args, source)
    if head is not None:
        _MEMO.keep(key, findings)
    return list(findings)


async def _run(
    spec: AuditorSpec, worktree: Path, args: list[str], source: Mapping[str, str]
) -> list[Finding]:
    with tempfile.TemporaryDirectory(prefix="review-loop-auditor-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        out = Path(scratch) / "out.sarif"
        args = [arg.replace(SARIF_PLACEHOLDER, str(out)) for arg in args]
        env = {key: source[key] for key in (*SAFE_ENV, *spec.env) if key in source}
        env.update(HOME=str(home), NO_COLOR="1", TMPDIR=scratch)
        try:
            done = await run(
                args,
                cwd=worktree,
                env=env,
                timeout_s=spec.timeout_s,
                stdout_limit=MAX_SARIF_BYTES,
                stderr_limit=STDERR_BYTES,
                kill_grace_s=0,
            )
        except CannotStart as exc:
            raise AuditorError(
                f"auditor {spec.name}: cannot start {args[0]}: {exc.__cause__ or exc}"
            ) from exc
        if done.timed_out:
            raise AuditorError(f"auditor {spec.name} did not finish within {spec.timeout_s:g} s")
        if done.returncode != 0 and done.returncode not in spec.found_exit_codes:
            said = done.stderr_text.strip()[-2000:] or done.stdout_text.strip()[-2000:]
            raise AuditorError(
                f"auditor {spec.name} failed with exit code {done.returncode}"
                + (f":\n{said}" if said else " and said nothing")
            )
        if spec.sarif == "file":
            try:
                raw = out.read_bytes()
            except OSError as exc:
                raise AuditorError(f"auditor {spec.name} wrote no SARIF file: {exc}") from exc
        else:
            if done.stdout_truncated:
                raise AuditorError(f"auditor {spec.name} wrote more than {MAX_SARIF_BYTES} bytes")
            raw = done.stdout
    try:
        doc = json.loads(raw)
    except ValueError as exc:
        raise AuditorError(f"auditor {spec.name} wrote output that is not JSON: {exc}") from exc
    try:
        validate_sarif(doc, spec.name)
        read = read_sarif(
            doc, spec.name, worktree, safe_rules=spec.safe_fixes, fix_lines=spec.fix_lines
        )
    except SarifError as exc:
        raise AuditorError(str(exc)) from exc
    if read.outside or read.suppressed:
        log.info(
            "auditor %s: %d result(s) outside the repository or without a file dropped, "
            "%d suppressed",
            spec.name,
            read.outside,
            read.suppressed,
        )
    return [f for f in read.findings if spec.applies_to(f.path)]


async def _targets(spec: AuditorSpec, worktree: Path, paths: Sequence[str] | None) -> list[str]:
    """The files the auditor is given: `paths` (or every tracked file) that exist and match
    the auditor's `paths` globs, in order."""
    if paths is None:
        listed = await git("ls-files", "-z", cwd=worktree)
        paths = [p for p in listed.split("\0") if p]
    return [
        path
        for path in dict.fromkeys(paths)
        if spec.applies_to(path) and (worktree / path).is_file()
    ]


async def _clean_head(worktree: Path) -> str | None:
    """The commit `worktree` has checked out when it holds exactly that (no change, no
    untracked or ignored file); None otherwise, or outside a git checkout."""
    try:
        # Untracked and ignored directories are listed once, not file by file: only
        # whether anything is there matters.
        status = await git(
            "status", "--porcelain", "-z", "--untracked-files=normal", "--ignored", cwd=worktree
        )
        if status:
            return None
        return (await git("rev-parse", "HEAD", cwd=worktree)).strip() or None
    except GitError:
        return None


class RunMemo:
    """The findings of recent successful runs, by what decides them; at most `size` runs and
    about `max_bytes` of findings (a run larger alone is not kept), none older than `ttl_s`
    (an operator may change a rules file the argv names)."""

    def __init__(
        self, size: int = MEMO_SIZE, max_bytes: int = MEMO_BYTES, ttl_s: float = MEMO_TTL_S
    ) -> None:
        self.size, self.max_bytes, self.ttl_s = size, max_bytes, ttl_s
        self._runs: OrderedDict[Hashable, tuple[float, int, list[Finding]]] = OrderedDict()
        self.bytes = 0

    def __len__(self) -> int:
        return len(self._runs)

    def recall(self, key: Hashable) -> list[Finding] | None:
        kept = self._runs.get(key)
        if kept is None or time.monotonic() - kept[0] > self.ttl_s:
            self._forget(key)
            return None
        self._runs.move_to_end(key)
        return list(kept[2])

    def keep(self, key: Hashable, findings: list[Finding]) -> None:
        self._forget(key)
        size = findings_bytes(findings)
        if size > self.max_bytes:
            return
        self._runs[key] = (time.monotonic(), size, list(findings))
        self.bytes += size
        while len(self._runs) > self.size or self.bytes > self.max_bytes:
            self._forget(next(iter(self._runs)))

    def _forget(self, key: Hashable) -> None:
        kept = self._runs.pop(key, None)
        if kept is not None:
            self.bytes -= kept[1]


def findings_bytes(findings: Sequence[Finding]) -> int:
    """About how much memory `findings` hold: the length of their text."""
    return sum(len(repr(f)) for f in findings)


_MEMO = RunMemo()
