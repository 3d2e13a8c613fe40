"""The model reviewers of an audit: one call per changed file, findings kept on changed lines.

`auditors: [ruff, ruff-format, review]` names `review` in the server's agents catalog (kind
`openai` or `anthropic`). Each changed file is reviewed on its own (its hunks with context,
its path and language, the PR's title and body fenced as untrusted data, the repository's
`.github/review-loop/review.md` from the default branch); never the whole PR in one prompt.
A reviewer that fails (401, timeouts, a reply still invalid after its repair) is reported,
not fatal: the other auditors' findings count, and the findings it reported last time are
kept (they are not taken for fixed), but the audit is incomplete and the PR is never ready.
"""

import hashlib
import json
import logging
import os
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TypeVar

from pydantic import BaseModel, ValidationError

from bot.agents.catalog import MODEL_KINDS, AgentSpec
from bot.agents.models import (
    FileChange,
    ModelCall,
    ModelError,
    PullRequestText,
    open_model_client,
    review_file,
    total_cost,
)
from bot.agents.models.calls import Reply, Turn
from bot.agents.models.client import schema_name
from bot.agents.models.review import Reviewer
from bot.audit.diffs import changed_lines
from bot.audit.findings import Finding
from bot.audit.globs import path_matches
from bot.audit.runners import DEFAULT_TIMEOUT_S, run_tool
from bot.loop.model_store import ModelStore
from bot.repo_config import SEVERITIES, RepoConfig

T = TypeVar("T", bound=BaseModel)

log = logging.getLogger(__name__)

GUIDELINES_PATH = ".github/review-loop/review.md"
MAX_FILE_BYTES = 512_000  # a larger file (generated, vendored) is not shown to a model


@dataclass
class ModelAudit:
    """What the model reviewers found, which of them failed (name -> why), and the calls."""

    findings: list[Finding] = field(default_factory=list)
    failed: dict[str, str] = field(default_factory=dict)
    calls: list[ModelCall] = field(default_factory=list)
    by_auditor: dict[str, list[Finding]] = field(default_factory=dict)  # those that completed
    files: int = 0  # files reviewed per reviewer, summed
    cached: int = 0  # of those, answered from the review cache without a call


class ReviewCache:
    """Reviews of unchanged files, kept in the database: a re-audit after fixes asks the
    model only about the files the fixes touched.

    The key is a sha256 over the reviewer (catalog name, kind, model, endpoint), the whole
    prompt (system text, the numbered hunks, guidelines, the PR's text), the file's content
    and the PR's base commit: change any of them and the file is reviewed again.
    """

    def __init__(self, store: ModelStore) -> None:
        self._store = store

    def wrap(self, client: Reviewer, *, file_text: str, base_sha: str) -> Reviewer:
        salt = hashlib.sha256(file_text.encode()).hexdigest() + ":" + base_sha
        return _CachedReviewer(client, self._store, salt)


class _CachedReviewer:
    def __init__(self, client: Reviewer, store: ModelStore, salt: str) -> None:
        self._client = client
        self._store = store
        self._salt = salt

    @property
    def spec(self) -> AgentSpec:
        return self._client.spec

    async def structured(
        self,
        system: str,
        user: str,
        schema: type[T],
        *,
        purpose: str,
        history: Sequence[Turn] = (),
    ) -> Reply[T]:
        spec = self.spec
        payload = [
            spec.name, spec.kind, spec.model, spec.base_url, schema_name(schema), system,
            [(turn.role, turn.text) for turn in history], user, self._salt,
        ]  # fmt: skip
        key = hashlib.sha256(json.dumps(payload).encode()).hexdigest()
        raw = await self._store.cached_reply(key)
        if raw is not None:
            try:
                return Reply(schema.model_validate_json(raw), raw, ())
            except ValidationError:
                pass  # a reply kept by another version of the schema: ask again
        reply = await self._client.structured(
            system, user, schema, purpose=purpose, history=history
        )
        await self._store.cache_reply(key, spec.name, str(spec.model), reply.raw)
        return reply


async def review_changes(
    catalog: Mapping[str, AgentSpec],
    config: RepoConfig,
    mirror: Path,
    head_sha: str,
    base_sha: str,
    *,
    pr: PullRequestText,
    guidelines: str = "",
    cache: ReviewCache | None = None,
    environ: Mapping[str, str] | None = None,
    analyzers: Collection[str] = (),
) -> ModelAudit:
    """Run every model reviewer of `config` over the files changed from `base_sha` (the
    merge base) to `head_sha`, read from `mirror`. `analyzers`: the catalog's SARIF auditors,
    which are not model reviewers."""
    result = ModelAudit()
    names = [name for name in config.model_auditors if name not in analyzers]
    if not names:
        return result
    changes = await _changed_files(mirror, base_sha, head_sha, config.ignore)
    for name in names:
        spec = catalog.get(name)
        if spec is None or spec.kind not in MODEL_KINDS:
            result.failed[name] = (
                f"auditor {name!r} is neither a built-in (ruff, ruff-format), nor a SARIF "
                "auditor, nor a model reviewer (kind openai or anthropic) in the server's "
                "agents catalog"
            )
            continue
        found: list[Finding] = []
        try:
            async with open_model_client(spec, environ=environ) as client:
                for change in changes:
                    reviewer: Reviewer = client
                    if cache is not None:
                        reviewer = cache.wrap(client, file_text=change.text, base_sha=base_sha)
                    try:
                        review = await review_file(reviewer, change, pr=pr, guidelines=guidelines)
                    except ModelError as error:
                        result.calls += error.calls
                        raise
                    result.calls += review.calls
                    result.files += 1
                    result.cached += not review.calls
                    found += review.findings
        except ModelError as error:
            result.failed[name] = str(error)
            log.warning("model reviewer %s failed: %s", name, error)
            continue
        result.by_auditor[name] = found
    kept = keep_most_severe(
        [f for found in result.by_auditor.values() for f in found],
        config.min_severity,
        config.max_findings,
    )
    result.findings = kept
    kept_set = set(kept)
    result.by_auditor = {n: [f for f in fs if f in kept_set] for n, fs in result.by_auditor.items()}
    return result


def keep_most_severe(
    findings: Sequence[Finding], min_severity: str, max_findings: int
) -> list[Finding]:
    """The findings at `min_severity` or above, the most severe first, at most `max_findings`
    (then in path and line order)."""
    floor = SEVERITIES.index(min_severity)
    rank = {name: index for index, name in enumerate(SEVERITIES)}
    severe = [f for f in findings if rank.get(f.severity or "low", 0) >= floor]
    severe.sort(key=lambda f: (-rank.get(f.severity or "low", 0), f.path, f.start_line))
    return sorted(severe[:max_findings], key=lambda f: (f.path, f.start_line, f.analyzer))


async def _changed_files(
    mirror: Path, base_sha: str, head_sha: str, ignore: Sequence[str]
) -> list[FileChange]:
    changed = await changed_lines(mirror, base_sha, head_sha)
    out: list[FileChange] = []
    for path in sorted(changed):
        lines = changed[path]
        if not lines or any(path_matches(path, glob) for glob in ignore):
            continue
        shown = await run_tool(
            ["git", "show", f"{head_sha}:{path}"], mirror, DEFAULT_TIMEOUT_S, dict(os.environ)
        )
        data = shown.stdout
        if shown.returncode != 0 or len(data) > MAX_FILE_BYTES or b"\0" in data:
            continue  # a submodule, a binary or a huge file: nothing a reviewer can read
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            continue
        out.append(FileChange(path, text, frozenset(lines)))
    return out


def log_calls(calls: Sequence[ModelCall], what: str) -> None:
    """One log line for the model calls of `what`: how many, tokens, cost."""
    if not calls:
        return
    cost = total_cost(calls)
    log.info(
        "%s: %d model calls, %d tokens in, %d out, %s",
        what,
        len(calls),
        sum(c.tokens_in for c in calls),
        sum(c.tokens_out for c in calls),
        "unpriced" if cost is None else f"${cost:.4f}",
    )
