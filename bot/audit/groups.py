"""What one issue is about: one finding, or same-rule findings in one file past a threshold."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable
from dataclasses import dataclass

from bot.audit.findings import Finding


@dataclass(frozen=True)
class FindingGroup:
    """What one issue is about: one finding, or same-rule findings in one file."""

    findings: tuple[Finding, ...]

    def __post_init__(self) -> None:
        if not self.findings:
            raise ValueError("a finding group needs at least one finding")

    @property
    def first(self) -> Finding:
        return self.findings[0]

    @property
    def grouped(self) -> bool:
        return len(self.findings) > 1

    @property
    def fix(self) -> str | None:
        """The analyzer's fix for the whole group: "safe" only when every finding has one."""
        return next((f.fix for f in self.findings if f.fix != "safe"), "safe")

    @property
    def fingerprint(self) -> str:
        """A lone finding's own fingerprint; for a group, one over analyzer, rule and path."""
        if not self.grouped:
            return self.first.fingerprint
        key = json.dumps(["group", self.first.analyzer, self.first.rule, self.first.path])
        return hashlib.sha256(key.encode()).hexdigest()


def group_findings(findings: Iterable[Finding], threshold: int) -> list[FindingGroup]:
    """One group per finding, except that more than `threshold` same-rule findings in one
    file share a group. Ordered by path and line."""
    buckets: dict[tuple[str, str, str], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.path, f.start_line, f.end_line, f.rule)):
        buckets.setdefault((finding.analyzer, finding.rule, finding.path), []).append(finding)
    groups: list[FindingGroup] = []
    for bucket in buckets.values():
        if len(bucket) > max(threshold, 1):
            groups.append(FindingGroup(tuple(bucket)))
        else:
            groups.extend(FindingGroup((finding,)) for finding in bucket)
    return sorted(groups, key=lambda g: (g.first.path, g.first.start_line, g.first.rule))
