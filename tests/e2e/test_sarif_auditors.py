"""Real SARIF analyzers from the registries as auditors of the loop: bandit and semgrep
(PyPI, the test extras), ESLint with Microsoft's SARIF formatter (npm, `make analyzers`)."""

import sys
from pathlib import Path

import pytest

from bot.demo.stack import local_stack, wait_settled
from tests.e2e.scenario import REPO, fix_pulls, open_pr, show, task_rows

pytestmark = pytest.mark.slow

BIN = Path(sys.executable).parent
NODE_MODULES = Path(__file__).resolve().parents[2] / ".venv" / "analyzers" / "node_modules"
SEMGREP_RULES = """\
rules:
  - id: no-print
    languages: [python]
    severity: WARNING
    message: Use logging, not print.
    pattern: print($X)
    fix: logging.info($X)
"""
# Bandit finds B404/B602; semgrep the print, with a fix; the crashing auditor nothing.
APP = (
    '"""The app."""\n\nimport logging\nimport subprocess\n\nlog = logging.getLogger(__name__)\n\n\n'
    "def run(cmd: str) -> int:\n    print(cmd)\n"
    "    return subprocess.call(cmd, shell=True)\n"
)
ESLINT_CONFIG = (
    'export default [{ files: ["**/*.js"], rules: { "prefer-const": "error", '
    '"no-unused-vars": "warn" } }];\n'
)
WEB = "let total = 1;\nconsole.log(total);\n"
CRASH = "import sys; print('segfault, say', file=sys.stderr); sys.exit(139)"
HANG = "import time; time.sleep(600)"
# SARIF 2.1.0 needs the driver's name: this log does not validate.
INVALID = "import json; print(json.dumps({'version': '2.1.0', 'runs': [{'tool': {'driver': {}}}]}))"


def catalog(workdir: Path, entries: str) -> Path:
    path = workdir / "agents.toml"
    path.write_text(entries)
    return path


def needs(path: Path, how: str) -> str:
    if not path.exists():
        pytest.skip(f"{path.name} is not installed: {how}")
    return str(path)


async def test_bandit_and_semgrep_findings_filed_routed_and_fixed(
    workdir: Path, e2e_db: str
) -> None:
    """bandit's findings are filed with their rule's help and go to a person (no fix);
    semgrep's, with a fix the operator marks safe, goes to sarif-fix, is fixed exactly,
    verified and merged. Auditors that crash, hang or write invalid SARIF are reported in
    the check run; the others' findings still count. One loop run covers all of it:
    semgrep's start-up is the test's main cost."""
    bandit = needs(BIN / "bandit", "pip install -e '.[test]'")
    semgrep = needs(BIN / "semgrep", "pip install -e '.[test]'")
    rules = workdir / "rules.yml"
    rules.write_text(SEMGREP_RULES)
    agents = catalog(
        workdir,
        f"""
[auditors.bandit]
kind = "sarif"
argv = ["{bandit}", "-q", "-f", "sarif", "-o", "{{sarif}}"]
sarif = "file"
changed_files = true
paths = ["*.py"]

[auditors.semgrep]
kind = "sarif"
argv = ["{semgrep}", "scan", "--metrics=off", "--disable-version-check", "--quiet",
        "--config", "{rules}", "--no-rewrite-rule-ids", "--sarif", "--autofix", "--dryrun"]
paths = ["*.py"]
safe_fixes = ["*no-print"]
fix_lines = true

[auditors.crashes]
kind = "sarif"
argv = ["{sys.executable}", "-c", "{CRASH}"]

[auditors.hangs]
kind = "sarif"
argv = ["{sys.executable}", "-c", "{HANG}"]
timeout_s = 1

[auditors.invalid]
kind = "sarif"
argv = ["{sys.executable}", "-c", "{INVALID}"]
""",
    )
    config = (
        "auditors: [ruff, bandit, semgrep, crashes, hangs, invalid]\n"
        "min_level: {bandit: note}\nmax_depth: 0\n"
    )
    async with local_stack(workdir, database_url=e2e_db, agents_file=agents) as stack:
        number = await open_pr(stack, pr_files={"shop/app.py": APP}, config=config)
        row = await wait_settled(stack, REPO, number)
        driver = stack.sandbox.driver
        issues = {i["title"].split(" in ")[0]: i for i in driver.issues(REPO, "all")
                  if "pull_request" not in i}  # fmt: skip
        tasks = await task_rows(stack, "issue_number, agent, status")
        fixes = fix_pulls(stack, number)
        head = driver.pull(REPO, number)["head"]["sha"]
        at_head = show(stack, head, "shop/app.py")
        [check] = driver.check_runs(REPO, head)

    assert set(issues) == {"B404", "B602", "no-print"}  # the rule ids as the rules file says
    printed = issues["no-print"]
    assert printed["state"] == "closed"  # fixed by sarif-fix, verified, merged
    assert "Use logging, not print." in printed["body"]  # the rule's help
    assert [(t["agent"], t["status"]) for t in tasks] == [("sarif-fix", "merged")]
    assert fixes and all(f["merged_at"] is not None for f in fixes)
    assert "    logging.info(cmd)\n" in at_head and "print(" not in at_head
    shell = issues["B602"]
    assert shell["state"] == "open"
    assert "bandit.readthedocs.io" in shell["body"]  # the rule's help
    assert "(bandit, security)" in shell["body"]
    assert row.state == "needs-human", row.reason
    summary = (check["output"]["summary"] or "") + (check["output"]["text"] or "")
    assert "crashes" in summary and "segfault, say" in summary, check["output"]
    assert "auditor hangs did not finish within 1 s" in summary, check["output"]
    assert "invalid wrote a log that is not valid SARIF 2.1.0: at runs/0/tool/driver" in summary


async def test_eslint_with_the_sarif_formatter_audits_javascript(
    workdir: Path, e2e_db: str
) -> None:
    """An analyzer for another language: ESLint's findings on a JavaScript file are filed
    with the rule's documentation; the formatter writes no fixes, so a person is asked."""
    eslint = needs(NODE_MODULES / ".bin" / "eslint", "run `make analyzers`")
    formatter = needs(NODE_MODULES / "@microsoft" / "eslint-formatter-sarif" / "sarif.js",
                      "run `make analyzers`")  # fmt: skip
    agents = catalog(
        workdir,
        f"""
[auditors.eslint]
kind = "sarif"
argv = ["{eslint}", "--format", "{formatter}"]
changed_files = true
paths = ["*.js"]
""",
    )
    config = "auditors: [ruff, eslint]\nmin_level: {eslint: error}\n"
    base = {"eslint.config.mjs": ESLINT_CONFIG}
    async with local_stack(workdir, database_url=e2e_db, agents_file=agents) as stack:
        number = await open_pr(
            stack, pr_files={"web/app.js": WEB, "web/unused.js": "function f() {}\n"},
            base_files=base, config=config,
        )  # fmt: skip
        row = await wait_settled(stack, REPO, number)
        issues = [i for i in stack.sandbox.driver.issues(REPO) if "pull_request" not in i]

    assert row.state == "needs-human", row.reason
    [issue] = issues  # no-unused-vars is a warning, below the repository's min_level
    assert issue["title"].startswith("prefer-const in web/app.js:")
    assert "https://eslint.org/docs/latest/rules/prefer-const" in issue["body"]
    assert "(eslint, lint)" in issue["body"]
    assert "```javascript\nlet total = 1;\n```" in issue["body"]
