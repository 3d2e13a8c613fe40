"""`sarif-fix`: a SARIF analyzer's own fix, applied exactly (semgrep, run for real)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bot.agents.catalog import BUILTINS
from bot.agents.runner import AgentTask, FixTarget, run_agent
from bot.audit.external import AuditorSpec, run_sarif_auditor
from bot.audit.findings import Edit

SEMGREP = Path(sys.executable).parent / "semgrep"
RULES = """\
rules:
  - id: no-print
    languages: [python]
    severity: WARNING
    message: Use logging, not print.
    pattern: print($X)
    fix: logging.info($X)
"""


def semgrep(rules: Path) -> AuditorSpec:
    if not SEMGREP.exists():
        pytest.skip("semgrep is not installed: pip install -e '.[test]' installs it")
    argv = [str(SEMGREP), "scan", "--metrics=off", "--disable-version-check", "--quiet",
            "--config", str(rules), "--sarif", "--autofix", "--dryrun"]  # fmt: skip
    return AuditorSpec(name="semgrep", kind="sarif", argv=argv, safe_fixes=["*"], fix_lines=True)


def task(*targets: FixTarget) -> AgentTask:
    return AgentTask(targets=targets)


async def test_semgrep_fix_is_applied_exactly_and_the_finding_goes(tmp_path: Path) -> None:
    repo = tmp_path / "repo"
    repo.mkdir()
    rules = tmp_path / "rules.yml"
    rules.write_text(RULES)
    source = 'import logging\n\nprint("hi")\nx = 1\r\n\n\ndef f(y):\n    print(y)\n'
    (repo / "app.py").write_text(source, newline="")
    spec = semgrep(rules)

    findings = await run_sarif_auditor(spec, repo)
    # semgrep names a rule after the directory of its rules file, then its id
    assert [(f.rule.rsplit(".", 1)[-1], f.start_line, f.fix) for f in findings] == [
        ("no-print", 3, "safe"),
        ("no-print", 8, "safe"),
    ]
    top, indented = findings
    assert top.explanation == "Use logging, not print."
    # semgrep's insertedContent is the whole fixed line (fix_lines), not just the match
    assert [(e.deleted, e.inserted) for e in indented.edits] == [
        ("    print(y)", "    logging.info(y)")
    ]
    fixing = task(FixTarget(indented.rule, indented.path, indented.edits))
    result = await run_agent(BUILTINS["sarif-fix"], repo, "", task=fixing)

    assert result.ok, result.error
    assert result.cost_usd is None
    # Only that replacement; the other print and the CRLF line ending are untouched.
    assert (repo / "app.py").read_bytes() == source.replace(
        "    print(y)", "    logging.info(y)"
    ).encode()
    assert [f.start_line for f in await run_sarif_auditor(spec, repo)] == [3]


async def test_a_fix_whose_file_changed_is_refused_and_nothing_written(tmp_path: Path) -> None:
    (tmp_path / "a.js").write_text("var x = 1;\nvar y = 2;\n")
    good = Edit("a.js", 11, 3, "var", "let")
    stale = Edit("a.js", 0, 3, "const", "let")
    result = await run_agent(
        BUILTINS["sarif-fix"], tmp_path, "", task=task(FixTarget("no-var", "a.js", (good, stale)))
    )
    assert not result.ok
    assert result.error == (
        "agent 'sarif-fix': a.js changed since the analyzer ran; its fix no longer fits"
    )
    assert (tmp_path / "a.js").read_text() == "var x = 1;\nvar y = 2;\n"


@pytest.mark.parametrize(
    ("targets", "why"),
    [
        pytest.param(
            (FixTarget("r", "a.js"),), "the analyzer gave no fix for r in a.js", id="none"
        ),
        pytest.param(
            (
                FixTarget(
                    "r", "a.js", (Edit("a.js", 0, 5, "var x", ""), Edit("a.js", 4, 1, "x", "z"))
                ),
            ),
            "the fixes overlap in a.js",
            id="overlap",
        ),
        pytest.param(
            (FixTarget("r", "a.js", (Edit("../out.js", 0, 0, "", "x"),)),),
            "../out.js is not a file inside the worktree",
            id="outside",
        ),
    ],
)
async def test_sarif_fix_refuses_what_it_cannot_apply_exactly(
    tmp_path: Path, targets: tuple[FixTarget, ...], why: str
) -> None:
    (tmp_path / "a.js").write_text("var x = 1;\n")
    result = await run_agent(BUILTINS["sarif-fix"], tmp_path, "", task=task(*targets))
    assert (result.ok, result.error) == (False, f"agent 'sarif-fix': {why}")
    assert (tmp_path / "a.js").read_text() == "var x = 1;\n"
