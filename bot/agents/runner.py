"""Run one agent in a worktree: built-in fixers (ruff's, a SARIF analyzer's own fix), or
a command or a coding-agent CLI preset (bot.agents.preset_run) in a contained subprocess."""

from __future__ import annotations

import itertools
import json
import re
import tempfile
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path, PurePosixPath
from typing import Any

from ruff.__main__ import find_ruff_bin  # type: ignore[import-untyped]

from bot import held_secrets, process
from bot.agents.catalog import AgentSpec
from bot.agents.contained import MAX_OUTPUT_BYTES, AgentResult, Capture, agent_env, contained, tail
from bot.agents.preset_run import run_preset
from bot.audit.findings import Edit
from bot.meters import AGENT_RUN_SECONDS

BRIEF_FILE_ENV = "REVIEW_LOOP_BRIEF_FILE"
KILL_GRACE_S = process.KILL_GRACE_S
_RULE = re.compile(r"[A-Z]+[0-9]*")


@dataclass(frozen=True)
class FixTarget:
    """One finding a built-in fixer should fix: the rule and the file it is in, and for
    `sarif-fix` the analyzer's own fix as edits."""

    rule: str
    path: str
    edits: tuple[Edit, ...] = ()


@dataclass(frozen=True)
class AgentTask:
    """What the run is for; built-in agents act on `targets` alone."""

    targets: Sequence[FixTarget] = ()
    task_id: str = ""


async def run_agent(
    spec: AgentSpec,
    worktree: Path,
    brief: str,
    *,
    task: AgentTask,
    environ: Mapping[str, str] | None = None,
    agents_dir: Path | None = None,
    kill_grace_s: float = KILL_GRACE_S,
) -> AgentResult:
    """Run `spec` in `worktree` with `brief`; never raises for a failing agent.

    `environ` is where allow-listed variables are taken from (default: the server's own
    environment, read at call time, with the secrets held since start-up); `agents_dir` is
    where `make agents` installed the CLIs of presets (`<data_dir>/agents`; None: look on
    PATH only).
    """
    source_env = held_secrets.environ_with_secrets() if environ is None else environ
    if spec.kind in ("builtin", "command", "cli"):
        if spec.kind == "builtin":
            result = await _run_builtin(spec, worktree, task, source_env, kill_grace_s)
        elif spec.kind == "cli":
            files = sorted({t.path for t in task.targets if _is_relative_inside(t.path)})
            result = await run_preset(
                spec, worktree, brief, files=files, source_env=source_env,
                agents_dir=agents_dir, kill_grace_s=kill_grace_s,
            )  # fmt: skip
        else:
            result = await _run_command(spec, worktree, brief, source_env, kill_grace_s)
        outcome = "ok" if result.ok else "failed"
        AGENT_RUN_SECONDS.labels(spec.name, outcome).observe(result.duration_s)
        return result
    return AgentResult(
        ok=False,
        exit_code=None,
        timed_out=False,
        duration_s=0.0,
        error=f"agent {spec.name!r}: {spec.kind} agents are models, called by bot.agents.models",
    )


async def _run_builtin(
    spec: AgentSpec,
    worktree: Path,
    task: AgentTask,
    source_env: Mapping[str, str],
    kill_grace_s: float,
) -> AgentResult:
    if spec.name == "sarif-fix":
        return apply_sarif_fixes(spec, worktree, task)
    bad = [t.path for t in task.targets if not _is_relative_inside(t.path)]
    if spec.name == "ruff-fix":
        bad += [t.rule for t in task.targets if not _RULE.fullmatch(t.rule)]
    if bad or not task.targets:
        reason = f"not a rule or a path inside the worktree: {bad}" if bad else "nothing to fix"
        return AgentResult(False, None, False, 0.0, error=f"agent {spec.name!r}: {reason}")
    ruff = str(find_ruff_bin())
    commands: list[list[str]] = []
    if spec.name == "ruff-fix":
        by_rule: dict[str, list[str]] = {}
        for target in task.targets:
            by_rule.setdefault(target.rule, []).append(target.path)
        for rule, paths in by_rule.items():
            commands.append(
                [ruff, "check", "--fix", "--no-unsafe-fixes", "--no-cache", "--quiet",
                 "--select", rule, "--", *sorted(set(paths))]
            )  # fmt: skip
        # A fix can leave what `ruff format` would change (removing an import leaves a blank
        # line too many), which the next audit would file as a finding of the bot's making:
        # a file `ruff format` had nothing to change in is formatted again after the fix.
        paths = sorted({t.path for t in task.targets})
        formatted = await _formatted(ruff, paths, worktree, spec, source_env, kill_grace_s)
        if formatted:
            commands.append([ruff, "format", "--no-cache", "--quiet", "--", *formatted])
    else:
        paths = sorted({t.path for t in task.targets})
        commands.append([ruff, "format", "--no-cache", "--quiet", "--", *paths])
    # `ruff check --fix` exits 1 when unfixable findings remain; verification judges that.
    allowed = {0, 1} if spec.name == "ruff-fix" else {0}
    started = time.monotonic()
    stdout, stderr = bytearray(), bytearray()
    for argv in commands:
        with tempfile.TemporaryDirectory(prefix="review-loop-agent-") as home:
            env = agent_env(spec.env, source_env, Path(home))
            remaining = spec.timeout_s - (time.monotonic() - started)
            run = await contained(argv, worktree, env, None, remaining, kill_grace_s)
        stdout += run.stdout
        stderr += run.stderr
        if run.timed_out or run.error or run.exit_code not in allowed:
            break
    result = AgentResult(
        ok=True,
        exit_code=run.exit_code,
        timed_out=run.timed_out,
        duration_s=time.monotonic() - started,
        stdout_tail=tail(stdout, ()),
        stderr_tail=tail(stderr, ()),
    )
    if run.timed_out or run.error or run.exit_code not in allowed:
        return _failed(spec, run, result)
    return result


async def _formatted(
    ruff: str,
    paths: list[str],
    worktree: Path,
    spec: AgentSpec,
    source_env: Mapping[str, str],
    kill_grace_s: float,
) -> list[str]:
    """Those of `paths` that `ruff format` (under the repository's config) would leave as
    they are."""
    found = []
    with tempfile.TemporaryDirectory(prefix="review-loop-agent-") as home:
        env = agent_env(spec.env, source_env, Path(home))
        for path in paths:
            check = [ruff, "format", "--check", "--no-cache", "--quiet", "--", path]
            run = await contained(check, worktree, env, None, spec.timeout_s, kill_grace_s)
            if run.exit_code == 0 and not run.error:
                found.append(path)
    return found


def apply_sarif_fixes(spec: AgentSpec, worktree: Path, task: AgentTask) -> AgentResult:
    """`sarif-fix`: apply exactly the edits of the targets' SARIF fixes, nothing else.

    Refused whole (nothing written) when a target has no fix, an edit's file is outside the
    worktree, the text an edit deletes is not what the analyzer saw, or edits overlap.
    """
    started = time.monotonic()

    def refuse(reason: str) -> AgentResult:
        return AgentResult(
            False, None, False, time.monotonic() - started, error=f"agent {spec.name!r}: {reason}"
        )

    if not task.targets:
        return refuse("nothing to fix")
    missing = [f"{t.rule} in {t.path}" for t in task.targets if not t.edits]
    if missing:
        return refuse(f"the analyzer gave no fix for {', '.join(missing)}")
    by_path: dict[str, list[Edit]] = {}
    for edit in dict.fromkeys(e for t in task.targets for e in t.edits):
        by_path.setdefault(edit.path, []).append(edit)
    root = worktree.resolve()
    new_texts: dict[Path, str] = {}
    for path, edits in sorted(by_path.items()):
        file = (root / path).resolve()
        linked = (root / path).is_symlink()
        if not _is_relative_inside(path) or not file.is_relative_to(root) or linked:
            return refuse(f"{path} is not a file inside the worktree")
        try:
            with file.open(encoding="utf-8", newline="") as handle:
                text = handle.read()
        except (OSError, UnicodeDecodeError) as exc:
            return refuse(f"cannot read {path}: {exc}")
        edits.sort(key=lambda e: (e.offset, e.length))
        for before, after in itertools.pairwise(edits):
            if before.offset + before.length > after.offset:
                return refuse(f"the fixes overlap in {path}")
        for edit in reversed(edits):
            end = edit.offset + edit.length
            if text[edit.offset : end] != edit.deleted:
                return refuse(f"{path} changed since the analyzer ran; its fix no longer fits")
            text = text[: edit.offset] + edit.inserted + text[end:]
        new_texts[file] = text
    for file, text in new_texts.items():
        with file.open("w", encoding="utf-8", newline="") as handle:
            handle.write(text)
    count = sum(len(edits) for edits in by_path.values())
    return AgentResult(
        ok=True,
        exit_code=0,
        timed_out=False,
        duration_s=time.monotonic() - started,
        stdout_tail=f"applied {count} replacement(s) in {len(by_path)} file(s)\n",
    )


def _failed(spec: AgentSpec, run: Capture, result: AgentResult) -> AgentResult:
    reason = run.error or (
        f"timed out after {spec.timeout_s:g} s" if run.timed_out else f"exit code {run.exit_code}"
    )
    return replace(result, ok=False, error=f"agent {spec.name!r}: {reason}")


async def _run_command(
    spec: AgentSpec,
    worktree: Path,
    brief: str,
    source_env: Mapping[str, str],
    kill_grace_s: float,
) -> AgentResult:
    secrets = [source_env[name] for name in spec.env if source_env.get(name)]
    with tempfile.TemporaryDirectory(prefix="review-loop-agent-") as scratch:
        home = Path(scratch) / "home"
        home.mkdir()
        env = agent_env(spec.env, source_env, home)
        stdin: bytes | None = brief.encode()
        if spec.brief == "file":
            brief_file = Path(scratch) / "brief.md"
            brief_file.write_text(brief)
            brief_file.chmod(0o600)
            env[BRIEF_FILE_ENV] = str(brief_file)
            stdin = None
        run = await contained(spec.argv, worktree, env, stdin, spec.timeout_s, kill_grace_s)

    result = AgentResult(
        ok=True,
        exit_code=run.exit_code,
        timed_out=run.timed_out,
        duration_s=run.duration_s,
        stdout_tail=tail(run.stdout, secrets),
        stderr_tail=tail(run.stderr, secrets),
    )
    if run.error or run.timed_out or run.exit_code != 0:
        return _failed(spec, run, result)
    if spec.output == "text":
        return result
    if run.stdout_truncated:
        error = f"output over {MAX_OUTPUT_BYTES} bytes, cannot be checked"
        return replace(result, ok=False, error=f"agent {spec.name!r}: {error}")
    parsed = parse_json_output(run.stdout.decode(errors="replace"))
    return replace(
        result,
        ok=parsed.error is None,
        error=f"agent {spec.name!r}: {parsed.error}" if parsed.error else None,
        output=parsed.output,
        cost_usd=parsed.cost_usd,
        input_tokens=parsed.input_tokens,
        output_tokens=parsed.output_tokens,
    )


@dataclass
class JsonOutput:
    """What an agent CLI's machine output says: the result, any error, what it cost."""

    output: Any = None
    error: str | None = None
    cost_usd: float | None = None
    input_tokens: int | None = None
    output_tokens: int | None = None


def parse_json_output(text: str) -> JsonOutput:
    """Read a CLI's JSON output (one document, or JSON Lines events) and look for failure.

    Several agent CLIs exit 0 after failing; the failure is in their output: Claude Code sets
    `is_error`, Gemini CLI sets `error`, Codex emits `error` / `turn.failed` events.
    """
    text = text.strip()
    if not text:
        return JsonOutput(error="printed no output, expected JSON")
    try:
        events: list[Any] = [json.loads(text)]
    except json.JSONDecodeError:
        try:
            events = [json.loads(line) for line in text.splitlines() if line.strip()]
        except json.JSONDecodeError as exc:
            return JsonOutput(error=f"output is not JSON ({exc.msg} at line {exc.lineno})")
    result = JsonOutput(output=events[0] if len(events) == 1 else events)
    for event in events:
        if not isinstance(event, dict):
            continue
        problem = _event_error(event)
        if problem and result.error is None:
            result.error = f"reported failure: {problem}"
        cost = event.get("total_cost_usd", event.get("cost_usd"))
        if isinstance(cost, int | float):
            result.cost_usd = (result.cost_usd or 0.0) + float(cost)
        usage = event.get("usage")
        if isinstance(usage, dict):
            result.input_tokens = _add(result.input_tokens, usage.get("input_tokens"))
            result.output_tokens = _add(result.output_tokens, usage.get("output_tokens"))
    return result


def _event_error(event: dict[str, Any]) -> str | None:
    if event.get("is_error") is True:
        detail = event.get("result") or event.get("subtype") or "is_error"
        return str(detail)[:500]
    if event.get("error"):
        error = event["error"]
        detail = error.get("message", error) if isinstance(error, dict) else error
        return str(detail)[:500]
    if event.get("type") in {"error", "turn.failed"}:
        return str(event.get("message") or event.get("type"))[:500]
    subtype = event.get("subtype")
    if isinstance(subtype, str) and subtype.startswith("error"):
        return subtype
    return None


def _add(total: int | None, value: object) -> int | None:
    if isinstance(value, int) and not isinstance(value, bool):
        return (total or 0) + value
    return total


def _is_relative_inside(path: str) -> bool:
    pure = PurePosixPath(path)
    return bool(path) and not pure.is_absolute() and ".." not in pure.parts and path[0] != "-"
