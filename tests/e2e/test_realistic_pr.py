"""Issue #9's "Done when": a realistic repository (a package with its own pytest suite as the
`test` command, ruff set to `fix = true` with per-file ignores and a stricter `select` on the
base branch) and a multi-file PR with findings of all three kinds -- a safe fix, only an
unsafe fix, no fix -- run through the whole loop once, on a plain repository and on a
squash-only one whose PR branch requires a status check."""

import asyncio
import json
import re
import subprocess
import sys
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from bot.demo.stack import local_stack, wait_settled
from bot.sandbox import Driver
from tests.e2e.scenario import REPO, bare_git, fix_pulls, open_pr, task_rows

pytestmark = pytest.mark.slow

PYPROJECT = """\
[project]
name = "shop"
version = "0.1.0"

[tool.ruff]
line-length = 100
fix = true

[tool.ruff.lint]
select = ["E", "F", "I", "SIM", "C4"]

[tool.ruff.lint.per-file-ignores]
"tests/*" = ["F401", "E741"]
"""
LEGACY = '"""Old code the PR does not touch."""\n\nimport json\n\nVALUE = 1\n'
PRICING = '''\
"""Prices."""

import os


def price(amount: int, member: bool) -> int:
    if member:
        discount = 10
    else:
        discount = 0
    return amount - discount
'''
CART = '''\
"""A cart."""

import json


def totals(items: list[int]) -> dict[str, int]:
    count = len(items)
    return dict(total=sum(items), size=len(items))


def first(items: list[int]) -> int:
    l = items[0]
    return l
'''
TESTS = '''\
"""The shop's tests."""

import os

from shop.cart import first, totals
from shop.pricing import price


def test_price() -> None:
    assert price(100, True) == 90
    assert price(100, False) == 100


def test_totals() -> None:
    l = [1, 2]
    assert totals(l) == {"total": 3, "size": 2}
    assert first(l) == 1
'''
PR_FILES = {"shop/pricing.py": PRICING, "shop/cart.py": CART, "tests/test_shop.py": TESTS}
# What ruff finds in the PR's files (the tests' F401 and E741 are ignored per file).
SAFE = {("F401", "shop/pricing.py"), ("F401", "shop/cart.py")}
UNSAFE_ONLY = {("SIM108", "shop/pricing.py"), ("F841", "shop/cart.py"), ("C408", "shop/cart.py")}
NO_FIX = {("E741", "shop/cart.py")}
FINDINGS = len(SAFE | UNSAFE_ONLY | NO_FIX)
# GitHub requests per finding of this run, with room for the rounds timing adds or saves:
# bounds that fail when a change adds requests. The PR's own requests are those from the
# App's installation on (the worker's start-up passes are done by then). Of them, the
# repository's labels (listed once, and each created once, per repository) and the two
# installation tokens (the API's and git's, each minted once an hour) are not this PR's
# on a repository the bot already works on: the rest is the PR's steady cost. Measured:
# merge commits 37 (8 reads, 29 writes; 29 steady, 4.8 per finding); squash-only with a
# required check 40 (32 steady, 5.3 per finding: the first fix PR's merge is refused once
# for the missing check; the second, whose merge waits for the first's in the worker
# (`Fleet.merging`), posts its check run first); 40-43 with the process's start-up. Issue
# #9's goal is 6 per finding. Before merges into one PR branch took turns: squash-only 40-41
# (both fix PRs' merges refused when they ran at once).
# Before the fix tasks took the PR and their issues from their round's reconcile while
# nothing happened to the PR since (`bot/loop/round_view.py`): 41 and 44-45 (12 reads).
# Before fix PRs got their check run only where needed (merge first; after a 405 for the
# missing required check, post it and merge again), a head's check run was posted ahead of
# its issues only when it had any, and the fix PR's base was read before a merge only when
# GitHub had not just told it: 44 for both variants (46 with the base read).
# Before a round's reconciles waited for its last fix task: 48-54 (an audit of the head
# between the two fixes' merges: its check run, summary edit and issue close). Before the
# intents (a head's check run and the summary comment made without a lookup when none was
# ever begun) and `GET /app` moved to the start-up: 50-54 (18-19 reads), 52-56 in all.
# Before issue #9's reconcile cuts (an issue whose finding only moved is not edited, a fix task
# that merged while the head was audited counts as merged, unchanged check runs are not sent
# again, a round's reason the same from queueing to running) and before the start-up passes
# were waited for (the sweep raced the installation): 59 in all, 7 of them start-up's. Before
# issue #9's read cuts, conditional reads and `ruff-fix` keeping files formatted: 113 (52
# reads, 61 writes; two `format` issues of the bot's own making), which these bounds refuse.
# On a loaded machine one more reconcile may come (2 reads: the PR, its issues): a fix task
# recorded `merged` but whose job has not ended yet no longer counts as under way, so its
# sibling's end reconciles the round, and its own end then reconciles it again (seen 1 run
# in 5 with other tests running beside it).
MAX_REQUESTS_PER_FINDING = 7.5  # the PR's own
MAX_STEADY_REQUESTS_PER_FINDING = 6  # the PR's own less the repository's labels and tokens
MAX_COUNTED_READS_PER_FINDING = 1.7  # the PR's own reads less 304s: what the rate limit counts
MAX_ALL_REQUESTS_PER_FINDING = 8  # with the process's start-up
# Requests made once per repository (its labels) or once an hour (installation tokens).
ONCE_PER_REPOSITORY_OR_HOUR = (
    "POST /app/installations/{installation_id}/access_tokens",
    "GET /repos/{owner}/{repo}/labels",
    "POST /repos/{owner}/{repo}/labels",
)


def squash_only_with_required_check(driver: Driver) -> None:
    driver.set_merge_methods(REPO, "squash")
    driver.protect_branch(REPO, "change", required_checks=["review-loop"])


@pytest.mark.parametrize(
    "settings",
    [None, squash_only_with_required_check],
    ids=["merge-commits", "squash-only-with-required-check"],
)
async def test_a_realistic_pr_ends_fixed_or_explained_quietly_and_cheaply(
    workdir: Path, e2e_db: str, settings: Callable[[Driver], None] | None
) -> None:
    """Every safe-fixable finding is fixed and verified, every other one goes to a person
    with a comment saying why; no commit touches a file outside the PR, no issue is closed
    while its finding is still there, the repository's tests pass, each check run carries
    each annotation once, and the loop's GitHub requests per finding stay under the bound."""
    config = f"test: {sys.executable} -m pytest -q -p no:cacheprovider tests\ngroup_threshold: 5\n"
    base = {"pyproject.toml": PYPROJECT, "shop/legacy.py": LEGACY}
    async with local_stack(workdir, database_url=e2e_db) as stack:
        driver = stack.sandbox.driver
        await stack.started_up()  # the process's own start-up requests are made by then
        since = len(await asyncio.to_thread(driver.requests))
        number = await open_pr(
            stack, pr_files=PR_FILES, base_files=base, config=config, settings=settings
        )
        row = await wait_settled(stack, REPO, number)
        head = driver.pull(REPO, number)["head"]["sha"]
        issues = [i for i in driver.issues(REPO) if "pull_request" not in i]
        comments = {i["number"]: bodies(driver, i["number"]) for i in issues}
        fixes = fix_pulls(stack, number)
        touched = set(bare_git(stack, "log", "--format=", "--name-only", f"main..{head}").split())
        history = bare_git(stack, "rev-list", "--parents", f"main..{head}").splitlines()
        shas = [line.split()[0] for line in history]
        tasks = await task_rows(stack, "status, error, agent")
        fix_shas = [f["head"]["sha"] for f in fixes]
        annotations = [run for sha in {*shas, *fix_shas} for run in annotations_of(driver, sha)]
        everything = await asyncio.to_thread(driver.requests)
        tree = checkout(stack, head, workdir / "head")
        left = bare_git(stack, "for-each-ref", "--format=%(refname)", "refs/heads/review-loop/")

    requests = everything[since:]  # the PR's own: from the repository's installation on
    asked = Counter(f"{r['method']} {r['route']} {r['status']}" for r in requests)
    reads = [r for r in requests if r["method"] == "GET"]
    not_modified = [r for r in reads if r["status"] == 304]
    steady = [
        r for r in requests if f"{r['method']} {r['route']}" not in ONCE_PER_REPOSITORY_OR_HOUR
    ]
    print(
        f"\n{len(everything)} requests in all, {since} of them the process's start-up; the "
        f"PR's own: {len(requests)} for {FINDINGS} findings: {len(reads)} reads (of which "
        f"{len(not_modified)} 304s), {len(requests) - len(reads)} writes; less the "
        f"repository's labels and the tokens: {len(steady)} "
        f"({len(steady) / FINDINGS:.2f} per finding)",
        file=sys.stderr,
    )
    for i, r in enumerate(everything):
        print(f"  {'*' if i < since else ' '} {r['method']} {r['path']} {r['status']}",
              file=sys.stderr)  # fmt: skip
    for line, n in sorted(asked.items(), key=lambda kv: -kv[1]):
        print(f"{n:4} {line}", file=sys.stderr)

    assert row.state == "needs-human", row.reason
    by_finding = {(i["title"].split(" in ")[0], i["title"].split(" in ")[1].split(":")[0]): i
                  for i in issues}  # fmt: skip
    # Not one more: the blank line too many an import's removal leaves is formatted away by
    # the same fix, not filed as a `format` finding of the bot's own making.
    assert set(by_finding) == SAFE | UNSAFE_ONLY | NO_FIX, sorted(by_finding)
    still_there = ruff_findings(tree)
    # Said fixed: closed with the bot's "Fixed in <sha>", or silently because a merged fix PR
    # of the bot says "Fixes #n" (that PR is on the issue's timeline).
    fixed_by_pr = {
        int(n)
        for f in fixes
        if f["merged_at"]
        for n in re.findall(r"Fixes #(\d+)", f["body"] or "")
    }

    def said_fixed(issue: dict) -> bool:
        return issue["number"] in fixed_by_pr or said_fixed_in(comments[issue["number"]])

    for key in SAFE:
        issue = by_finding[key]
        assert issue["state"] == "closed", key
        assert key not in still_there, f"{key} is fixed at the PR's head"
        assert said_fixed(issue), key
    assert fixes and all(f["merged_at"] is not None for f in fixes)
    assert left.split() == [], "each merged fix PR's branch is deleted"
    assert tasks and all(t["status"] == "merged" and t["agent"] == "ruff-fix" for t in tasks)
    merges = [line for line in history if len(line.split()) > 2]
    if settings is None:
        # Landed over git: a fix made on the branch's head fast-forwards it, one made while
        # a sibling landed is merged with a merge commit; every fix PR's head is on the PR.
        assert len(merges) < len(fixes), "the first fix to land is a fast-forward"
        assert {f["head"]["sha"] for f in fixes} <= set(shas)
    else:
        assert merges == [], "squash merges only: no merge commit"
    for key in UNSAFE_ONLY | NO_FIX:
        issue = by_finding[key]
        assert issue["state"] == "open", key
        assert "review-loop:needs-human" in [label["name"] for label in issue["labels"]]
        only = " (only an unsafe one)" if key in UNSAFE_ONLY else ""
        why = f"ruff has no safe fix for {key[0]}{only}; route it to an agent or fix it by hand"
        assert [c for c in comments[issue["number"]] if why in c], (key, comments[issue["number"]])
        assert key in still_there, f"{key} is left for a person"
    claimed = {key for key, i in by_finding.items() if said_fixed(i)}
    assert claimed == SAFE and not claimed & still_there, "no false Fixed in"
    assert touched <= set(PR_FILES), f"only the PR's files change: {sorted(touched)}"
    assert (workdir / "head" / "shop/legacy.py").read_text() == LEGACY
    tests = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", "tests"],
        cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    assert tests.returncode == 0, tests.stdout
    assert any(annotations), "the open findings are annotated"
    for listed in annotations:
        assert len(listed) == len(set(listed)), f"each annotation once per check run: {listed}"
    assert len(requests) / FINDINGS <= MAX_REQUESTS_PER_FINDING, asked.most_common(12)
    assert len(steady) / FINDINGS <= MAX_STEADY_REQUESTS_PER_FINDING, asked.most_common(12)
    assert len(everything) / FINDINGS <= MAX_ALL_REQUESTS_PER_FINDING, everything[:since]
    counted_reads = len(reads) - len(not_modified)
    assert counted_reads / FINDINGS <= MAX_COUNTED_READS_PER_FINDING, asked.most_common(12)


def bodies(driver: Driver, number: int) -> list[str]:
    return [c["body"] for c in driver.comments(REPO, number)]


def said_fixed_in(comments: list[str]) -> bool:
    """Whether one of `comments` is the bot's "Fixed in <sha>" (after its marker line)."""
    return any(c.split("\n", 1)[-1].startswith("Fixed in ") for c in comments)


def annotations_of(driver: Driver, sha: str) -> list[list[str]]:
    """For each `review-loop` check run of commit `sha`, its annotations as `path:line message`."""
    runs = [r for r in driver.check_runs(REPO, sha) if r["name"] == "review-loop"]
    return [
        [f"{a['path']}:{a['start_line']} {a['message']}" for a in driver.annotations(REPO, r["id"])]
        for r in runs
    ]


def checkout(stack: Any, sha: str, into: Path) -> Path:
    """The tree of commit `sha` of the sandbox repository, written to `into`."""
    into.mkdir()
    archive = bare_git_bytes(stack, "archive", sha)
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)
    return into


def bare_git_bytes(stack: Any, *args: str) -> bytes:
    bare = stack.sandbox.hub.store.repos_dir / f"{REPO}.git"
    return subprocess.run(["git", *args], cwd=bare, capture_output=True, check=True).stdout


def ruff_findings(tree: Path) -> set[tuple[str, str]]:
    """(rule, path) of what ruff finds in `tree` under its own config, changing nothing."""
    out = subprocess.run(
        [sys.executable, "-m", "ruff", "check", "--no-fix", "--output-format", "json", "."],
        cwd=tree, capture_output=True, text=True,
    )  # fmt: skip
    found = json.loads(out.stdout)
    return {(f["code"], str(Path(f["filename"]).relative_to(tree.resolve()))) for f in found}
