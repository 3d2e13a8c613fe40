"""What one issue is about: one finding, or a rule's findings in one PR past a threshold."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bot.audit.findings import Finding


@dataclass(frozen=True)
class FindingGroup:
    """What one issue is about: one finding, or same-rule findings (in one file or several)."""

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
    def paths(self) -> tuple[str, ...]:
        """The files the group's findings are in, in order."""
        return tuple(dict.fromkeys(f.path for f in self.findings))

    @property
    def fix(self) -> str | None:
        """The analyzer's fix for the whole group: "safe" only when every finding has one."""
        return next((f.fix for f in self.findings if f.fix != "safe"), "safe")

    @property
    def fingerprint(self) -> str:
        """A lone finding's own fingerprint; for a group in one file, one over analyzer, rule
        and path; for a group across files, over analyzer and rule (one issue per rule)."""
        if not self.grouped:
            return self.first.fingerprint
        first = self.first
        where = [first.path] if len(self.paths) == 1 else []
        key = json.dumps(["group", first.analyzer, first.rule, *where])
        return hashlib.sha256(key.encode()).hexdigest()


def group_findings(
    findings: Iterable[Finding],
    threshold: int,
    route: Callable[[Finding], object] | None = None,
) -> list[FindingGroup]:
    """One group per finding, except that more than `threshold` findings of one rule in the
    PR share a group, spread over several files when `route` (where each finding would go)
    sends them all to one place, else one group per file past the threshold. Ordered by path
    and line."""
    limit = max(threshold, 1)
    buckets: dict[tuple[str, str], list[Finding]] = {}
    for finding in sorted(findings, key=lambda f: (f.path, f.start_line, f.end_line, f.rule)):
        buckets.setdefault((finding.analyzer, finding.rule), []).append(finding)
    groups: list[FindingGroup] = []
    for bucket in buckets.values():
        if len(bucket) <= limit:
            groups.extend(FindingGroup((finding,)) for finding in bucket)
        elif route is None or len({route(f) for f in bucket}) == 1:
            groups.append(FindingGroup(tuple(bucket)))
        else:  # routed apart: a group would go to one agent with another's findings
            by_file: dict[str, list[Finding]] = {}
            for finding in bucket:
                by_file.setdefault(finding.path, []).append(finding)
            for same in by_file.values():
                if len(same) > limit:
                    groups.append(FindingGroup(tuple(same)))
                else:
                    groups.extend(FindingGroup((finding,)) for finding in same)
    return sorted(groups, key=lambda g: (g.first.path, g.first.start_line, g.first.rule))
