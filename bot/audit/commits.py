"""Audit a commit in a worktree of its own, keep the findings the PR is answerable for."""

import logging
import uuid
from collections.abc import Mapping, Sequence
from pathlib import Path

from bot.audit.diffs import changed_lines, filter_ignored, filter_to_changed
from bot.audit.external import AuditorSpec
from bot.audit.findings import Finding
from bot.audit.runners import NO_AUDITORS, AuditError, AuditReport, analyzers, audit_report
from bot.audit.sarif import LEVELS
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
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
) -> list[Finding]:
    """Findings at `sha`; with `base_sha`, only those on lines changed since the merge base
    (when the repository asks for changed lines only), minus ignored paths. Any auditor that
    fails fails it (AuditError)."""
    report = await audit_commit_report(
        mirrors, mirror, repo, sha, config, base_sha=base_sha, auditors=auditors, catalog=catalog
    )
    if report.failed:
        raise AuditError("; ".join(report.failed.values()))
    return report.findings


async def audit_commit_report(
    mirrors: Mirrors,
    mirror: Path,
    repo: str,
    sha: str,
    config: RepoConfig,
    *,
    base_sha: str | None,
    auditors: Sequence[str] | None = None,
    catalog: Mapping[str, AuditorSpec] = NO_AUDITORS,
) -> AuditReport:
    """`audit_commit`, where a catalog auditor that fails is reported and the others count.
    Findings below the repository's `min_level` for their auditor are dropped."""
    name = f"audit-{sha[:12]}-{uuid.uuid4().hex[:6]}"
    changed = None
    if base_sha is not None and config.changed_lines_only:
        changed = await changed_lines(mirror, base_sha, sha)
    wt: Worktree = await mirrors.add_worktree(
        mirror, mirrors.worktree_path(repo, name), f"review-loop/audit/{name}", sha
    )
    try:
        names = list(auditors or analyzers(config.auditors, catalog))
        paths = sorted(changed) if changed is not None else None
        report = await audit_report(wt.path, names, catalog=catalog, changed=paths)
    finally:
        await mirrors.remove_worktree(wt)
    findings = report.findings
    if changed is not None:
        findings = filter_to_changed(findings, changed)
    findings = filter_ignored(at_level(findings, config.min_level), config.ignore)
    log.info("audit of %s at %s: %d findings", repo, sha[:8], len(findings))
    return AuditReport(findings, report.failed)


def at_level(findings: Sequence[Finding], min_level: Mapping[str, str]) -> list[Finding]:
    """The findings at or above the repository's `min_level` for their auditor (findings
    without a SARIF level, of the built-ins and model reviewers, are all kept)."""
    return [
        f
        for f in findings
        if f.level is None
        or f.analyzer not in min_level
        or LEVELS.index(f.level) >= LEVELS.index(min_level[f.analyzer])
    ]
