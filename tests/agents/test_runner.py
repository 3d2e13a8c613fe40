"""Running agents: built-in ruff fixers in a worktree, and contained command agents."""

from __future__ import annotations

import json
import os
import sys
import textwrap
import uuid
from pathlib import Path
from typing import Any

import pytest

from bot.agents.catalog import BUILTINS, AgentSpec
from bot.agents.runner import AgentTask, FixTarget, parse_json_output, run_agent
from bot.git.worktrees import Worktree, changed_files
from tests.gitrepos import processes_with_argument

NO_TASK = AgentTask()


def agent(tmp_path: Path, source: str, **spec: Any) -> AgentSpec:
    """A command agent that runs `source` as a Python script written into tmp_path."""
    script = tmp_path / "agent_script.py"
    script.write_text(textwrap.dedent(source))
    return AgentSpec(name="script", kind="command", argv=[sys.executable, str(script)], **spec)


async def test_ruff_fix_removes_an_unused_import_in_a_worktree(worktree: Worktree) -> None:
    """The built-in fixer applies ruff's fix for the finding's rule to the finding's file."""
    target = worktree.path / "src" / "app.py"
    target.write_text("import os\nimport sys\n\nprint(sys.argv)\n")

    task = AgentTask(targets=[FixTarget("F401", "src/app.py")])
    result = await run_agent(BUILTINS["ruff-fix"], worktree.path, "", task=task)

    assert result.ok, result.error
    assert target.read_text() == "import sys\n\nprint(sys.argv)\n"
    assert await changed_files(worktree, worktree.base_sha) == ["src/app.py"]


async def test_ruff_fix_only_fixes_the_rule_it_was_given(worktree: Worktree) -> None:
    """Other fixable findings in the same file are left for their own tasks."""
    target = worktree.path / "src" / "app.py"
    target.write_text("import os\nx = 1\nif x == None:\n    pass\n")

    task = AgentTask(targets=[FixTarget("E711", "src/app.py")])
    result = await run_agent(BUILTINS["ruff-fix"], worktree.path, "", task=task)

    assert result.ok, result.error
    assert target.read_text() == "import os\nx = 1\nif x == None:\n    pass\n"  # E711 is unsafe
    task = AgentTask(targets=[FixTarget("F401", "src/app.py")])
    await run_agent(BUILTINS["ruff-fix"], worktree.path, "", task=task)
    assert target.read_text() == "x = 1\nif x == None:\n    pass\n"


@pytest.mark.parametrize(
    ("before", "after"),
    [
        pytest.param(
            '"""Doc."""\n\nimport os\n\n\ndef f() -> int:\n    return 1\n',
            '"""Doc."""\n\n\ndef f() -> int:\n    return 1\n',
            id="formatted-stays-formatted",
        ),
        pytest.param(
            '"""Doc."""\n\nimport os\n\n\ndef f( ) -> int:\n    return 1\n',
            '"""Doc."""\n\n\n\ndef f( ) -> int:\n    return 1\n',
            id="unformatted-is-not-formatted",
        ),
    ],
)
async def test_ruff_fix_keeps_a_formatted_file_formatted(
    worktree: Worktree, before: str, after: str
) -> None:
    """Removing an import leaves a blank line too many: in a file `ruff format` had nothing
    to change in, the fix formats it away; a file that was not formatted is left as it was
    but for the fix (its formatting is a finding of its own)."""
    target = worktree.path / "src" / "app.py"
    target.write_text(before)

    task = AgentTask(targets=[FixTarget("F401", "src/app.py")])
    result = await run_agent(BUILTINS["ruff-fix"], worktree.path, "", task=task)

    assert result.ok, result.error
    assert target.read_text() == after


async def test_ruff_format_formats_the_findings_files(worktree: Worktree) -> None:
    """The built-in formatter rewrites only the files it was given."""
    (worktree.path / "src" / "app.py").write_text("x=[1,2 ,3]\n")
    (worktree.path / "other.py").write_text("y=1\n")

    task = AgentTask(targets=[FixTarget("format", "src/app.py")])
    result = await run_agent(BUILTINS["ruff-format"], worktree.path, "", task=task)

    assert result.ok, result.error
    assert (worktree.path / "src" / "app.py").read_text() == "x = [1, 2, 3]\n"
    assert (worktree.path / "other.py").read_text() == "y=1\n"


@pytest.mark.parametrize(
    "target",
    [
        pytest.param(FixTarget("F401", "../outside.py"), id="parent-dir"),
        pytest.param(FixTarget("F401", "/etc/passwd"), id="absolute"),
        pytest.param(FixTarget("F401", "--config=x"), id="option"),
        pytest.param(FixTarget("F401 --unsafe-fixes", "a.py"), id="bad-rule"),
    ],
)
async def test_builtin_refuses_targets_outside_the_worktree(
    tmp_path: Path, target: FixTarget
) -> None:
    """Paths and rules that are not plainly inside the task are refused, not run."""
    result = await run_agent(BUILTINS["ruff-fix"], tmp_path, "", task=AgentTask([target]))
    assert not result.ok and result.error is not None


async def test_command_agent_gets_the_brief_on_stdin_and_only_allowed_environment(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The brief arrives on stdin; allow-listed variables pass, the App's settings do not."""
    monkeypatch.setenv("AGENT_API_KEY", "key-123")
    monkeypatch.setenv("REVIEW_LOOP_WEBHOOK_SECRET", "do-not-leak")
    monkeypatch.setenv("UNLISTED_VAR", "nope")
    report = tmp_path / "report.json"
    workdir = tmp_path / "wt"
    workdir.mkdir()
    spec = agent(
        tmp_path,
        f"""
        import json, os, sys
        json.dump({{"brief": sys.stdin.read(), "env": dict(os.environ), "cwd": os.getcwd(),
                   "home_exists": os.path.isdir(os.environ["HOME"])}}, open({str(report)!r}, "w"))
        """,
        env=["AGENT_API_KEY"],
    )

    result = await run_agent(spec, workdir, "Fix F401 in a.py", task=NO_TASK)

    assert result.ok, result.error
    seen = json.loads(report.read_text())
    assert seen["brief"] == "Fix F401 in a.py"
    assert seen["env"]["AGENT_API_KEY"] == "key-123"
    assert "REVIEW_LOOP_WEBHOOK_SECRET" not in seen["env"]
    assert "UNLISTED_VAR" not in seen["env"]
    assert seen["cwd"] == str(workdir)
    assert seen["home_exists"] and seen["env"]["HOME"] != os.environ.get("HOME")
    assert not Path(seen["env"]["HOME"]).exists()  # the temporary HOME is gone afterwards


async def test_command_agent_with_brief_file_gets_its_path_in_the_environment(
    tmp_path: Path,
) -> None:
    """In file mode the brief is a file named by REVIEW_LOOP_BRIEF_FILE, never an argument."""
    spec = agent(
        tmp_path,
        """
        import os, sys
        print(open(os.environ["REVIEW_LOOP_BRIEF_FILE"]).read(), sys.argv[1:], sys.stdin.read())
        """,
        brief="file",
    )
    result = await run_agent(spec, tmp_path, "the brief", task=NO_TASK)
    assert result.ok, result.error
    assert result.stdout_tail == "the brief [] \n"


async def test_agent_past_its_timeout_is_killed_with_its_children(tmp_path: Path) -> None:
    """A timeout kills the whole process group, including a child that ignores SIGTERM."""
    started = tmp_path / "grandchild.started"
    marker = f"grandchild-{uuid.uuid4()}"
    spec = agent(
        tmp_path,
        f"""
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c",
            "import signal, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); time.sleep(60)",
            {marker!r}])
        open({str(started)!r}, "w").write(str(child.pid))
        time.sleep(60)
        """,
        timeout_s=1,
    )

    result = await run_agent(spec, tmp_path, "", task=NO_TASK, kill_grace_s=0.5)

    assert not result.ok and result.timed_out
    assert result.error is not None and "timed out after 1 s" in result.error
    assert result.duration_s < 5
    assert started.exists()
    assert processes_with_argument(marker) == []


async def test_leftover_background_processes_are_killed_when_the_agent_exits(
    tmp_path: Path,
) -> None:
    """An agent that exits leaving a background process behind does not leave it running."""
    started = tmp_path / "background.started"
    marker = f"background-{uuid.uuid4()}"
    spec = agent(
        tmp_path,
        f"""
        import subprocess, sys
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", {marker!r}])
        open({str(started)!r}, "w").write(str(child.pid))
        """,
    )
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert result.ok, result.error
    assert started.exists()
    assert processes_with_argument(marker) == []


@pytest.mark.parametrize(
    ("stdout", "reason"),
    [
        pytest.param('{"type": "result", "is_error": true, "result": "no credit"}', "no credit",
                     id="claude-is-error"),
        pytest.param('{"response": null, "error": {"message": "quota"}}', "quota",
                     id="gemini-error"),
        pytest.param('{"type": "thread.started"}\n{"type": "turn.failed", "message": "boom"}',
                     "boom", id="codex-turn-failed"),
        pytest.param('{"subtype": "error_max_turns"}', "error_max_turns", id="max-turns"),
        pytest.param("Sorry, I could not do that", "not JSON", id="not-json"),
        pytest.param("", "no output", id="empty"),
    ],
)  # fmt: skip
async def test_json_agent_that_exits_zero_but_reports_failure_fails(
    tmp_path: Path, stdout: str, reason: str
) -> None:
    """Exit code 0 is not enough: the machine output must not report an error."""
    spec = agent(tmp_path, f"print({stdout!r})", output="json")
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert result.exit_code == 0
    assert not result.ok
    assert result.error is not None and reason in result.error


async def test_json_agent_success_reports_output_cost_and_tokens(tmp_path: Path) -> None:
    """A successful run carries its parsed output and what it cost."""
    output = {
        "type": "result",
        "is_error": False,
        "result": "done",
        "total_cost_usd": 0.0123,
        "usage": {"input_tokens": 1000, "output_tokens": 50},
    }
    spec = agent(tmp_path, f"import json; print(json.dumps({output!r}))", output="json")
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert result.ok, result.error
    assert result.output == output
    assert (result.cost_usd, result.input_tokens, result.output_tokens) == (0.0123, 1000, 50)


def test_json_lines_usage_is_summed_over_events() -> None:
    """JSON Lines output (Codex) adds up the usage of every turn."""
    lines = [
        {"type": "turn.completed", "usage": {"input_tokens": 10, "output_tokens": 1}},
        {"type": "turn.completed", "usage": {"input_tokens": 5, "output_tokens": 2}},
    ]
    parsed = parse_json_output("\n".join(json.dumps(line) for line in lines))
    assert parsed.error is None
    assert (parsed.input_tokens, parsed.output_tokens) == (15, 3)


async def test_command_agent_with_nonzero_exit_fails_with_its_exit_code(tmp_path: Path) -> None:
    """A failing exit code is a failed run, with stderr kept for the log."""
    spec = agent(tmp_path, "import sys; sys.stderr.write('bad things'); sys.exit(3)")
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert not result.ok and result.exit_code == 3
    assert result.error == "agent 'script': exit code 3"
    assert result.stderr_tail == "bad things"


async def test_command_agent_that_cannot_start_fails_cleanly(tmp_path: Path) -> None:
    """A missing executable is a failed run with a reason, not an exception."""
    spec = AgentSpec(name="ghost", kind="command", argv=["/nonexistent/agent-cli"])
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert not result.ok and result.exit_code is None
    assert result.error is not None and "cannot start /nonexistent/agent-cli" in result.error


async def test_output_tails_redact_the_agents_own_secrets(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An agent echoing its API key or a token does not get it into logs."""
    monkeypatch.setenv("AGENT_API_KEY", "very-private-key-value")
    spec = agent(
        tmp_path,
        "import os; print(os.environ['AGENT_API_KEY'], 'ghp_' + 'a' * 36)",
        env=["AGENT_API_KEY"],
    )
    result = await run_agent(spec, tmp_path, "", task=NO_TASK)
    assert "very-private-key-value" not in result.stdout_tail
    assert "ghp_" not in result.stdout_tail
