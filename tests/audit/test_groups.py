"""Grouping: past the threshold, one issue per rule, whether in one file or across files."""

from bot.audit.findings import Finding
from bot.audit.groups import FindingGroup, group_findings
from bot.loop.fix.verify import targets_of
from bot.loop.reconcile.issue_text import render_issue


def finding(path: str, line: int, rule: str = "F401") -> Finding:
    return Finding("ruff", rule, "lint", path, line, line, f"`m{line}` imported", f"import m{line}")


def test_a_rule_over_the_threshold_across_files_is_one_group() -> None:
    findings = [finding("a.py", 1), finding("a.py", 2), finding("b.py", 1), finding("c.py", 4)]
    findings.append(finding("b.py", 3, rule="E501"))

    groups = group_findings(findings, threshold=3)

    grouped = [g for g in groups if g.grouped]
    assert [len(g.findings) for g in grouped] == [4]
    assert grouped[0].paths == ("a.py", "b.py", "c.py")
    assert sorted(g.first.rule for g in groups if not g.grouped) == ["E501"]


def test_at_or_under_the_threshold_every_finding_is_its_own_issue() -> None:
    findings = [finding("a.py", 1), finding("b.py", 1), finding("c.py", 1)]
    groups = group_findings(findings, threshold=3)
    assert [g.grouped for g in groups] == [False, False, False]


def test_a_one_file_group_keeps_its_fingerprint_and_a_cross_file_one_names_no_path() -> None:
    one_file = FindingGroup((finding("a.py", 1), finding("a.py", 2)))
    same_file_more = FindingGroup((finding("a.py", 1), finding("a.py", 2), finding("a.py", 3)))
    across = FindingGroup((finding("a.py", 1), finding("b.py", 2)))
    across_other = FindingGroup((finding("a.py", 1), finding("c.py", 9)))

    assert one_file.fingerprint == same_file_more.fingerprint  # by analyzer, rule and path
    assert across.fingerprint == across_other.fingerprint  # by analyzer and rule: one issue
    assert across.fingerprint != one_file.fingerprint


def test_the_fix_task_finds_every_finding_of_a_cross_file_group() -> None:
    findings = [finding("a.py", 1), finding("b.py", 2), finding("b.py", 5, rule="E501")]
    group = FindingGroup(tuple(findings[:2]))
    assert targets_of(findings, {"fp": group.fingerprint}) == findings[:2]


def test_a_cross_file_issue_says_how_many_files_and_links_each() -> None:
    group = FindingGroup((finding("a.py", 1), finding("b.py", 2), finding("c.py", 3)))
    url = "https://github.com/acme/shop/pull/7"

    title, body, _ = render_issue(group, 7, url, "f" * 40, "ruff-fix")

    assert title == "F401 in 3 files: 3 findings"
    for path in ("a.py", "b.py", "c.py"):
        assert f"https://github.com/acme/shop/blob/{'f' * 40}/{path})" in body


def test_findings_routed_to_different_agents_are_not_grouped_across_files() -> None:
    findings = [finding("a.py", 1), finding("a.py", 2), finding("b.py", 1), finding("c.py", 4)]
    routes = {"a.py": "claude", "b.py": "codex", "c.py": "codex"}

    groups = group_findings(findings, threshold=1, route=lambda f: routes[f.path])

    assert [(g.paths, len(g.findings)) for g in groups] == [
        (("a.py",), 2),  # one file past the threshold: its own group
        (("b.py",), 1),
        (("c.py",), 1),
    ]
