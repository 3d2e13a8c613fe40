"""The model reviewers of an audit: one call per changed file, severity and count limits, a
reviewer that fails is reported and leaves the others' findings alone."""

from __future__ import annotations

from pathlib import Path

from bot.agents.catalog import AgentSpec
from bot.agents.models import PullRequestText
from bot.loop.fleet import Fleet
from bot.loop.model_audit import ModelAudit, ReviewCache, keep_most_severe, review_changes
from bot.loop.model_store import ModelStore
from bot.repo_config import RepoConfig
from bot.sandbox.models import ModelFault, ModelSandbox, Rule, Scenario
from tests.gitrepos import GitRepo
from tests.modelsandbox import API_KEY, ENVIRON, model_spec

NEGATIVE_COUNT = Rule(
    "negative-count",
    pattern=r"def \w+\(.*\bcount\b",
    unless=r"count < 0",
    category="correctness",
    severity="high",
    title="count is never checked for negative values",
)
TODO = Rule("todo", pattern=r"# TODO", category="maintainability", severity="low")

BASE = '"""Shop."""\n\n\ndef first(prices, count):\n    return prices[:count]\n'
CART = '"""Cart."""\n\n\ndef total(prices, count):\n    return sum(prices[:count])  # TODO\n'


def pull_request(tmp_path: Path) -> tuple[GitRepo, str, str]:
    repo = GitRepo(tmp_path / "repo")
    repo.write("shop/base.py", BASE)
    repo.write("README.md", "# shop\n")
    base = repo.commit("base")
    repo.write("shop/cart.py", CART)
    repo.write("shop/base.py", BASE + "\n\ndef last(prices):\n    return prices[-1:]\n")
    repo.write("README.md", "# shop\n\nNow with a cart.\n")
    head = repo.commit("a cart")
    return repo, base, head


def catalog(models: ModelSandbox) -> dict[str, AgentSpec]:
    return {"review": model_spec(models, "openai", name="review")}


async def test_each_changed_file_is_reviewed_on_its_own(
    models: ModelSandbox, tmp_path: Path
) -> None:
    """Three changed files, three calls, each brief naming one file; findings only where the
    PR changed code (`first` in base.py was there before and is not flagged)."""
    models.scenario = Scenario([NEGATIVE_COUNT])
    repo, base, head = pull_request(tmp_path)
    config = RepoConfig(auditors=["ruff", "review"])
    result = await review_changes(
        catalog(models),
        config,
        repo.root,
        head,
        base,
        pr=PullRequestText("A cart", "Adds a cart."),
        guidelines="Look for unchecked counts.",
        environ=ENVIRON,
    )
    requests = models.hub.requests
    assert sorted(r.files for r in requests) == [
        ("README.md",),
        ("shop/base.py",),
        ("shop/cart.py",),
    ]
    assert all("Look for unchecked counts." in r.prompt for r in requests)
    assert all(API_KEY not in r.prompt for r in requests)
    assert result.failed == {}
    assert [(f.analyzer, f.path, f.start_line, f.severity) for f in result.findings] == [
        ("review", "shop/cart.py", 4, "high")
    ]
    assert len(result.calls) == 3 and all(c.agent == "review" for c in result.calls)


async def test_min_severity_and_max_findings_keep_the_most_severe(
    models: ModelSandbox, tmp_path: Path
) -> None:
    models.scenario = Scenario([NEGATIVE_COUNT, TODO])
    repo, base, head = pull_request(tmp_path)
    everything = RepoConfig(auditors=["review"])
    found = await review_changes(
        catalog(models), everything, repo.root, head, base, pr=PullRequestText(), environ=ENVIRON
    )
    assert sorted(f.severity or "" for f in found.findings) == ["high", "low"]
    assert [f.severity for f in keep_most_severe(found.findings, "medium", 20)] == ["high"]
    assert [f.severity for f in keep_most_severe(found.findings, "low", 1)] == ["high"]
    assert keep_most_severe(found.findings, "low", 0) == []


async def test_a_failing_reviewer_is_reported_not_fatal(
    models: ModelSandbox, tmp_path: Path
) -> None:
    """A refused key (401) and a reply malformed twice each fail only their reviewer; an
    auditor that names no model entry is reported too."""
    models.scenario = Scenario([NEGATIVE_COUNT])
    repo, base, head = pull_request(tmp_path)
    config = RepoConfig(auditors=["ruff", "review", "nobody"])
    models.set_faults(ModelFault("unauthorized"))
    refused = await review_changes(
        catalog(models), config, repo.root, head, base, pr=PullRequestText(), environ=ENVIRON
    )
    assert set(refused.failed) == {"review", "nobody"}
    assert "401" in refused.failed["review"]
    assert API_KEY not in refused.failed["review"]
    assert "catalog" in refused.failed["nobody"]
    assert refused.findings == [] and refused.by_auditor == {}

    models.set_faults(ModelFault("malformed_json"))
    malformed = await review_changes(
        catalog(models), config, repo.root, head, base, pr=PullRequestText(), environ=ENVIRON
    )
    assert "even after a repair request" in malformed.failed["review"]
    assert [c.repair for c in malformed.calls] == [False, True]


async def test_an_unchanged_file_is_not_reviewed_again(
    models: ModelSandbox, tmp_path: Path, fleet: Fleet
) -> None:
    """The review cache: a re-audit asks only about the file that changed since; the calls
    made are kept with their tokens and cost."""
    models.scenario = Scenario([NEGATIVE_COUNT])
    repo, base, head = pull_request(tmp_path)
    config = RepoConfig(auditors=["review"])
    store = ModelStore(fleet.runtime.pool)
    cache = ReviewCache(store)

    async def audit_at(sha: str) -> ModelAudit:
        return await review_changes(
            catalog(models), config, repo.root, sha, base, pr=PullRequestText("A cart"),
            cache=cache, environ=ENVIRON,
        )  # fmt: skip

    first = await audit_at(head)
    assert (first.files, first.cached, len(models.hub.requests)) == (3, 0, 3)
    again = await audit_at(head)
    assert (again.files, again.cached, len(models.hub.requests)) == (3, 3, 3)
    assert again.findings == first.findings and again.calls == []

    repo.write("shop/cart.py", CART.replace("# TODO", "# fixed"))
    fixed = await audit_at(repo.commit("fix"))
    assert (fixed.files, fixed.cached) == (3, 2)
    assert [r.files for r in models.hub.requests[3:]] == [("shop/cart.py",)]

    await store.record_calls(first.calls, repo="acme/shop", pr_number=7)
    kept = await store.calls("acme/shop", 7)
    assert kept == first.calls
    assert all(c.tokens_in > 0 and c.tokens_out > 0 and c.cost_usd for c in kept)


async def test_a_reviewer_that_times_out_is_reported(models: ModelSandbox, tmp_path: Path) -> None:
    models.scenario = Scenario([NEGATIVE_COUNT])
    repo, base, head = pull_request(tmp_path)
    spec = model_spec(models, "anthropic", name="review", timeout_s=0.3, max_retries=0)
    models.set_faults(ModelFault("timeout", delay_s=2.0))
    result = await review_changes(
        {"review": spec},
        RepoConfig(auditors=["review"]),
        repo.root,
        head,
        base,
        pr=PullRequestText(),
        environ=ENVIRON,
    )
    assert set(result.failed) == {"review"}
    assert "kept failing" in result.failed["review"]
    assert result.findings == []
