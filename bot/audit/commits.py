"""Audit a commit in a worktree of its own, keep the findings the PR is answerable for."""

import logging
import uuid
from collections.abc import Sequence
from pathlib import Path

from bot.audit.diffs import changed_lines, filter_ignored, filter_to_changed
from bot.audit.findings import Finding
from bot.audit.runners import audit
from bot.git.worktrees import Mirrors, Worktree
from bot.repo_config import RepoConfig

log = logging.getLogger(__name__)


async def audit_commit(
    mirrors: Mirrors,
    mirror: Path,
    repo: str,
    sha: str,
    config: RepoConfig,
    *,
    base_sha: str | None,
    auditors: Sequence[str] | None = None,
) -> list[Finding]:
    """Findings at `sha`; with `base_sha`, only those on lines changed since the merge base
    (when the repository asks for changed lines only), minus ignored paths."""
    name = f"audit-{sha[:12]}-{uuid.uuid4().hex[:6]}"
    wt: Worktree = await mirrors.add_worktree(
        mirror, mirrors.worktree_path(repo, name), f"review-loop/audit/{name}", sha
    )
    try:
        findings = await audit(wt.path, list(auditors or config.builtin_auditors))
    finally:
        await mirrors.remove_worktree(wt)
    if base_sha is not None and config.changed_lines_only:
        changed = await changed_lines(mirror, base_sha, sha)
        findings = filter_to_changed(findings, changed)
    findings = filter_ignored(findings, config.ignore)
    log.info("audit of %s at %s: %d findings", repo, sha[:8], len(findings))
    return findings
