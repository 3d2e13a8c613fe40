"""Catalog auditors: real analyzers (bandit) and real misbehaving programs, run contained."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from bot.audit.commits import at_level
from bot.audit.external import (
    AuditorError,
    AuditorSpec,
    RunMemo,
    findings_bytes,
    run_sarif_auditor,
)
from bot.audit.findings import Finding
from bot.audit.runners import AuditError, audit, audit_report

BIN = Path(sys.executable).parent
PY = sys.executable
INSECURE = "import subprocess\n\n\ndef run(cmd):\n    return subprocess.call(cmd, shell=True)\n"


def bandit() -> AuditorSpec:
    if not (BIN / "bandit").exists():
        pytest.skip("bandit is not installed: pip install -e '.[test]' installs bandit[sarif]")
    return AuditorSpec(
        name="bandit",
        kind="sarif",
        argv=[str(BIN / "bandit"), "-q", "-f", "sarif", "-o", "{sarif}"],
        sarif="file",
        changed_files=True,
        paths=["*.py"],
    )


def program(name: str, code: str, **settings: object) -> AuditorSpec:
    return AuditorSpec.model_validate(
        {"name": name, "kind": "sarif", "argv": [PY, "-c", code], **settings}
    )


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    (tmp_path / "ruff.toml").write_text('[lint]\nselect = ["F401"]\n')
    (tmp_path / "app.py").write_text(INSECURE)
    (tmp_path / "lib.py").write_text("import os\n")
    (tmp_path / "web.js").write_text("eval(x);\n")
    return tmp_path


async def test_bandit_findings_with_rule_help_level_and_category(repo: Path) -> None:
    findings = await run_sarif_auditor(bandit(), repo, ["app.py", "web.js", "gone.py"])

    rules = {f.rule: f for f in findings}
    assert set(rules) == {"B404", "B602"}
    call = rules["B602"]
    assert (call.analyzer, call.path, call.start_line, call.category) == (
        "bandit", "app.py", 5, "security"
    )  # fmt: skip
    assert call.level == "error"  # bandit: high severity
    assert call.help_uri is not None and "bandit.readthedocs.io" in call.help_uri
    assert call.snippet == "    return subprocess.call(cmd, shell=True)"


async def test_changed_files_are_the_only_files_given(repo: Path) -> None:
    """With changed_files the auditor sees only the files it is given that match `paths`."""
    (repo / "other.py").write_text(INSECURE)
    findings = await run_sarif_auditor(bandit(), repo, ["other.py"])
    assert {f.path for f in findings} == {"other.py"}
    assert await run_sarif_auditor(bandit(), repo, ["web.js"]) == []  # not run at all


async def test_a_crashing_auditor_is_reported_and_the_others_count(repo: Path) -> None:
    crash = program("crash", "import sys; print('boom', file=sys.stderr); sys.exit(3)")
    report = await audit_report(repo, ["ruff", "crash"], catalog={"crash": crash})

    assert [(f.analyzer, f.rule) for f in report.findings] == [("ruff", "F401")]
    assert report.failed == {"crash": "auditor crash failed with exit code 3:\nboom"}
    with pytest.raises(AuditError, match="exit code 3"):
        await audit(repo, ["ruff", "crash"], catalog={"crash": crash})


async def test_a_hanging_auditor_is_killed_at_its_timeout(repo: Path) -> None:
    hang = program("hang", "import time; time.sleep(60)", timeout_s=0.5)
    report = await audit_report(repo, ["hang", "ruff"], catalog={"hang": hang})
    assert report.failed == {"hang": "auditor hang did not finish within 0.5 s"}
    assert len(report.findings) == 1


@pytest.mark.parametrize(
    ("output", "why"),
    [
        ("not json", "auditor bad wrote output that is not JSON"),
        (json.dumps({"runs": []}), "bad wrote a log that is not valid SARIF 2.1.0: at (the log): "
         "'version' is a required property"),
    ],
)  # fmt: skip
async def test_output_that_is_not_sarif_fails_the_auditor(
    repo: Path, output: str, why: str
) -> None:
    bad = program("bad", f"print({output!r})")
    with pytest.raises(AuditorError) as caught:
        await run_sarif_auditor(bad, repo)
    assert str(caught.value).startswith(why)


async def test_found_exit_codes_and_the_env_allow_list(
    repo: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Exit 1 means "found things"; only allow-listed variables reach the analyzer."""
    monkeypatch.setenv("ALLOWED_VAR", "yes")
    monkeypatch.setenv("REVIEW_LOOP_SECRET", "never")
    code = (
        "import json, os, sys\n"
        "msg = os.environ.get('ALLOWED_VAR', '-') + os.environ.get('REVIEW_LOOP_SECRET', '-')\n"
        "loc = {'physicalLocation': {'artifactLocation': {'uri': 'lib.py'},"
        " 'region': {'startLine': 1}}}\n"
        "res = {'ruleId': 'E1', 'message': {'text': msg}, 'locations': [loc]}\n"
        "run = {'tool': {'driver': {'name': 'p'}}, 'results': [res]}\n"
        "print(json.dumps({'version': '2.1.0', 'runs': [run]})); sys.exit(1)\n"
    )
    [finding] = await run_sarif_auditor(program("p", code, env=["ALLOWED_VAR"]), repo)
    assert finding.message == "yes-"
    with pytest.raises(ValueError, match="belong to the bot"):
        program("p", code, env=["REVIEW_LOOP_SECRET"])


def test_min_level_drops_findings_below_it_per_auditor() -> None:
    def finding(analyzer: str, level: str | None) -> Finding:
        return Finding(analyzer, "R", "lint", "a.py", 1, 1, level or "-", "x", level=level)

    found = [finding("bandit", "note"), finding("bandit", "error"), finding("semgrep", "note")]
    found.append(finding("ruff", None))
    kept = at_level(found, {"bandit": "warning"})
    assert [(f.analyzer, f.level) for f in kept] == [
        ("bandit", "error"), ("semgrep", "note"), ("ruff", None)
    ]  # fmt: skip


COUNTING = """
import json, pathlib, sys
with open(sys.argv[1], "a") as runs:
    runs.write("run\\n")
result = {"ruleId": "R1", "message": {"text": "m"},
          "locations": [{"physicalLocation": {"artifactLocation": {"uri": "app.py"},
                                              "region": {"startLine": 1}}}]}
print(json.dumps({"version": "2.1.0",
                  "runs": [{"tool": {"driver": {"name": "count"}}, "results": [result]}]}))
"""


async def test_a_run_on_the_same_clean_commit_is_reused(tmp_path: Path) -> None:
    """The same analyzer and argv on a clean checkout of the same commit (as a fix task's
    audit of the commit the PR's audit just read) is not run again; a changed tree, a
    worktree with an untracked or ignored file, or another commit with the same tree (an
    analyzer may read history), is."""
    from bot.git.cmd import git

    checkout = tmp_path / "checkout"
    checkout.mkdir()
    (checkout / "app.py").write_text(INSECURE)
    (checkout / ".gitignore").write_text("build/\n")
    who = {
        f"GIT_{role}_{what}": "a" for role in ("AUTHOR", "COMMITTER") for what in ("NAME", "EMAIL")
    }
    for args in (("init", "-q"), ("add", "."), ("commit", "-qm", "one")):
        await git(*args, cwd=checkout, env=who)
    runs = tmp_path / "runs"
    spec = AuditorSpec(
        name="count", kind="sarif", argv=[PY, "-c", COUNTING, str(runs)], description="memo"
    )

    def count() -> int:
        return len(runs.read_text().splitlines())

    first = await run_sarif_auditor(spec, checkout)
    again = await run_sarif_auditor(spec, checkout)
    assert (count(), first, again) == (1, first, first)
    assert [f.rule for f in again] == ["R1"]

    (checkout / "app.py").write_text("x = 1\n")  # changed: the tree is not the commit's
    await run_sarif_auditor(spec, checkout)
    assert count() == 2
    await git("checkout", "-q", "app.py", cwd=checkout)
    (checkout / "notes").mkdir()
    (checkout / "notes" / "todo.txt").write_text("untracked\n")
    await run_sarif_auditor(spec, checkout)
    assert count() == 3
    (checkout / "notes" / "todo.txt").unlink()
    (checkout / "build").mkdir()  # ignored by git, but an analyzer may read it
    (checkout / "build" / "out.js").write_text("x\n")
    await run_sarif_auditor(spec, checkout)
    assert count() == 4
    (checkout / "build" / "out.js").unlink()
    (checkout / "build").rmdir()
    await git("commit", "-q", "--allow-empty", "-m", "two", cwd=checkout, env=who)
    await run_sarif_auditor(spec, checkout)
    assert count() == 5
    await run_sarif_auditor(spec, checkout)
    assert count() == 5


def test_the_run_memo_is_capped_by_the_bytes_of_its_findings() -> None:
    """Past `max_bytes` the least recently used runs go first; a run larger than the cap
    alone is not kept; the count cap holds too."""
    one = [Finding("a", "R1", "lint", "app.py", 1, 1, "m" * 100, "x = 1")]
    size = findings_bytes(one)
    memo = RunMemo(size=64, max_bytes=3 * size)
    for key in "abc":
        memo.keep(key, one)
    assert memo.recall("a") == one  # now the most recently used
    memo.keep("d", one)
    assert [memo.recall(k) is not None for k in "abcd"] == [True, False, True, True]
    assert memo.bytes == 3 * size

    memo.keep("huge", one * 4)
    assert (memo.recall("huge"), len(memo), memo.bytes) == (None, 3, 3 * size)

    counted = RunMemo(size=2, max_bytes=100 * size)
    for key in "abc":
        counted.keep(key, one)
    assert [counted.recall(k) is not None for k in "abc"] == [False, True, True]
