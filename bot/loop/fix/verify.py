"""What counts as fixed: the findings an issue names, and whether a change removed them and
added nothing. Pure functions; line numbers never count, since fixes move lines."""

from collections import Counter
from collections.abc import Iterable

from bot.audit.findings import Finding, normalise_code
from bot.audit.groups import FindingGroup


def _key(f: Finding) -> tuple[str, str, str, str]:
    return (f.analyzer, f.rule, f.path, normalise_code(f.snippet) or f.message)


def verify(
    before: Iterable[Finding], after: Iterable[Finding], targets: Iterable[Finding]
) -> str | None:
    """Why the change must not be proposed, or None when it fixed its targets and added
    nothing. Compared as counts of (analyzer, rule, path, code): line numbers move."""
    b, a = Counter(map(_key, before)), Counter(map(_key, after))
    for t in targets:
        if a[_key(t)] >= b[_key(t)]:
            return f"the finding is still there: {t.rule} in {t.path}:{t.start_line}"
    grown = [k for k in a if a[k] > b[k]]
    if grown:
        analyzer, rule, path, _ = grown[0]
        return f"the change adds a new finding: {analyzer} {rule} in {path}"
    return None


def targets_of(findings: list[Finding], marker: dict[str, object]) -> list[Finding]:
    """The findings an issue's marker names: one finding, or a same-rule group in a file."""
    fp = marker.get("fp")
    if not isinstance(fp, str):
        return []
    singles = [f for f in findings if f.fingerprint == fp]
    if singles:
        return singles
    buckets: dict[tuple[str, str, str], list[Finding]] = {}
    for f in findings:
        buckets.setdefault((f.analyzer, f.rule, f.path), []).append(f)
    for same in buckets.values():
        if len(same) > 1 and FindingGroup(tuple(same)).fingerprint == fp:
            return same
    return []
