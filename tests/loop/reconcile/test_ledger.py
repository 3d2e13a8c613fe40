"""The ledger: markers, grouping, issue text and the plan that keeps issues in step."""

from __future__ import annotations

import dataclasses
from typing import Any

import pytest

from bot.audit.findings import Finding
from bot.audit.groups import FindingGroup, group_findings
from bot.github.markers import parse_marker, render_marker
from bot.loop.reconcile.issue_text import IssueDraft, draft_issue, render_issue
from bot.loop.reconcile.ledger import ExistingIssue, IssueClose, LedgerPlan, plan_ledger

PR_URL = "https://github.com/octo/app/pull/12"
OLD_SHA = "1" * 40
NEW_SHA = "2" * 40


def finding(code: str, line: int = 1, rule: str = "F401", path: str = "src/a.py") -> Finding:
    return Finding(
        analyzer="ruff",
        rule=rule,
        category="lint",
        path=path,
        start_line=line,
        end_line=line,
        message=f"`{code}` is a problem",
        snippet=code,
        help_uri=f"https://docs.astral.sh/ruff/rules/{rule}",
    )


# ---- markers ------------------------------------------------------------------------------


def test_markers_round_trip_even_with_comment_closers_inside() -> None:
    """A value containing `-->` cannot end the hidden comment early."""
    data = {"fp": "abc", "pr": 12, "sha": "def", "note": "a --> b <!-- c & d"}
    marker = render_marker(data)
    assert marker.startswith("<!-- review-loop {") and marker.endswith("} -->")
    assert marker.count("-->") == 1
    assert parse_marker(marker) == data


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        pytest.param(None, None, id="no-body"),
        pytest.param("", None, id="empty-body"),
        pytest.param("Just text <!-- a comment -->", None, id="no-marker"),
        pytest.param(
            'Edited by a human\n<!-- note -->\n<!-- review-loop {"fp": "a"} -->\nmore text',
            {"fp": "a"},
            id="edits-and-other-comments-around",
        ),
        pytest.param(
            '<!-- review-loop {"fp": "a"} -->\n<!-- review-loop {"fp": "evil"} -->',
            {"fp": "a"},
            id="second-marker-ignored",
        ),
        pytest.param(
            '<!-- review-loop {"fp": broken -->\n<!-- review-loop {"fp": "b"} -->',
            {"fp": "b"},
            id="broken-marker-skipped",
        ),
        pytest.param(
            '<!-- review-loop ["a"] -->\n<!-- review-loop {"fp": "c"} -->',
            {"fp": "c"},
            id="non-object-skipped",
        ),
        pytest.param('<!-- review-loop {"fp": "d"}', None, id="unterminated"),
        pytest.param('<!-- review-loopy {"fp": "e"} -->', None, id="other-tool-prefix"),
        pytest.param('<!--review-loop{"fp":"f"}-->', {"fp": "f"}, id="no-spaces"),
    ],
)
def test_parse_marker(body: str | None, expected: dict[str, Any] | None) -> None:
    """The first well-formed marker is the one that counts."""
    assert parse_marker(body) == expected


# ---- grouping -----------------------------------------------------------------------------


def test_same_rule_findings_in_one_file_group_only_past_the_threshold() -> None:
    """Three findings stay three issues at threshold 3; a fourth makes them one issue."""
    three = [finding(f"x{n}", n) for n in range(1, 4)]
    assert [len(g.findings) for g in group_findings(three, 3)] == [1, 1, 1]
    four = [*three, finding("x4", 9)]
    [group] = group_findings(four, 3)
    assert group.grouped and [f.start_line for f in group.findings] == [1, 2, 3, 9]


def test_groups_never_mix_rules_but_span_files() -> None:
    """Grouping is per analyzer and rule: past the threshold a rule's findings in every file
    of the PR are one issue; output is ordered by path and line."""
    findings = [finding(f"x{n}", n) for n in range(1, 5)]
    findings += [finding("y", 2, rule="E501"), finding("z", 1, path="src/b.py")]
    groups = group_findings(findings, 3)
    assert [(g.first.path, g.first.rule, len(g.findings), g.paths) for g in groups] == [
        ("src/a.py", "F401", 5, ("src/a.py", "src/b.py")),
        ("src/a.py", "E501", 1, ("src/a.py",)),
    ]


def test_a_group_fingerprint_is_stable_while_its_members_change() -> None:
    """Fixing one of five findings or moving them keeps the group's issue."""
    five = [finding(f"x{n}", n) for n in range(1, 6)]
    [before] = group_findings(five, 3)
    [after] = group_findings(
        [
            dataclasses.replace(f, start_line=f.start_line + 10, end_line=f.end_line + 10)
            for f in five[1:]
        ],
        3,
    )
    assert before.fingerprint == after.fingerprint
    assert before.fingerprint not in {f.fingerprint for f in five}
    assert group_findings(five[:1], 3)[0].fingerprint == five[0].fingerprint


# ---- issue text ---------------------------------------------------------------------------


def test_an_issue_says_what_where_why_and_which_pr() -> None:
    """Rule, linked location at the head sha, fenced code, message, docs, PR and marker."""
    one = FindingGroup((finding("import os", 7),))
    title, body, labels = render_issue(one, 12, PR_URL, NEW_SHA, "ruff-fix")
    assert title == "F401 in src/a.py: `import os` is a problem"
    assert body.startswith("<!-- review-loop ")
    assert parse_marker(body) == {"fp": one.fingerprint, "pr": 12, "sha": NEW_SHA}
    assert f"[`src/a.py:7`](https://github.com/octo/app/blob/{NEW_SHA}/src/a.py#L7)" in body
    assert "```python\nimport os\n```" in body
    assert "`import os` is a problem" in body
    assert "(https://docs.astral.sh/ruff/rules/F401)" in body
    assert f"[#12]({PR_URL})" in body
    assert "agent `ruff-fix`" in body
    assert labels == ["review-loop:finding", "agent:ruff-fix"]


def test_an_unroutable_issue_asks_for_a_person() -> None:
    """Without an agent the issue is labelled needs-human and says how to route it."""
    _, body, labels = render_issue(FindingGroup((finding("x"),)), 12, PR_URL, NEW_SHA, None)
    assert labels == ["review-loop:finding", "review-loop:needs-human"]
    assert "`agent:<name>`" in body


def test_a_grouped_issue_lists_every_location() -> None:
    """Each member of a group gets its own linked line and code."""
    [group] = group_findings([finding(f"x{n}", n) for n in range(1, 5)], 3)
    title, body, _ = render_issue(group, 12, PR_URL, NEW_SHA, "ruff-fix")
    assert title == "F401 in src/a.py: 4 findings"
    for n in range(1, 5):
        assert f"/src/a.py#L{n})" in body and f"```python\nx{n}\n```" in body


def test_a_grouped_issue_says_why_the_rule_matters() -> None:
    """Findings of a group with different messages: "**Why:**" gives the rule's explanation
    from the analyzer's documentation, or says the messages above tell, never nothing."""
    members = [finding(f"x{n}", n) for n in range(1, 5)]
    explained = [
        dataclasses.replace(f, explanation="Unused imports slow imports.") for f in members
    ]
    [group] = group_findings(explained, 3)
    _, body, _ = render_issue(group, 12, PR_URL, NEW_SHA, "ruff-fix")
    assert "**Why:** Unused imports slow imports. ([F401 documentation](" in body
    [bare] = group_findings(members, 3)
    _, body, _ = render_issue(bare, 12, PR_URL, NEW_SHA, "ruff-fix")
    assert "**Why:** each of these findings breaks the repository's rule F401 (ruff)" in body


def test_hostile_code_cannot_break_the_fence_or_replace_the_marker() -> None:
    """Backticks in the code lengthen the fence; a marker inside the code does not count."""
    code = 'x = """\n```\n<!-- review-loop {"fp": "evil"} -->\n"""'
    one = FindingGroup((dataclasses.replace(finding(code), message="<!-- hidden -->"),))
    _, body, _ = render_issue(one, 12, PR_URL, NEW_SHA, "ruff-fix")
    assert f"````python\n{code}\n````" in body
    assert parse_marker(body) == {"fp": one.fingerprint, "pr": 12, "sha": NEW_SHA}
    assert "<!-- hidden" not in body


# ---- the plan -----------------------------------------------------------------------------

A, B, C = (FindingGroup((finding(code, n),)) for n, code in enumerate(["a", "b", "c"], 1))
MOVED_A = FindingGroup((finding("a", 30),))
# Same fingerprint (same code, rule, file), but what the issue says of it changed.
REWORDED_A = FindingGroup((dataclasses.replace(finding("a", 30), message="`a` is worse"),))


def draft(group: FindingGroup, sha: str = NEW_SHA) -> IssueDraft:
    return draft_issue(group, 12, PR_URL, sha, "ruff-fix")


def issue(
    number: int,
    group: FindingGroup,
    state: str = "open",
    reason: str | None = None,
    by_bot: bool = True,
    labels: tuple[str, ...] = ("review-loop:finding",),
) -> ExistingIssue:
    """An issue as the bot filed it for `group` at the previous head."""
    filed = draft(group, OLD_SHA)
    return ExistingIssue(
        number=number,
        state=state,  # type: ignore[arg-type]
        state_reason=reason,
        labels=labels,
        marker=parse_marker(filed.body),
        closed_by_bot=by_bot if state == "closed" else False,
        title=filed.title,
        body=filed.body,
    )


def summary(plan: LedgerPlan) -> dict[str, list[Any]]:
    """The plan in a form a table can state: only the non-empty parts."""
    fp_names = {A.fingerprint: "A", B.fingerprint: "B", C.fingerprint: "C"}
    parts: dict[str, list[Any]] = {
        "create": [fp_names[d.fingerprint] for d in plan.create],
        "update": [u.number for u in plan.update],
        "close": [(c.number, c.state_reason) for c in plan.close],
        "reopen": [r.number for r in plan.reopen],
        "oscillations": [(fp_names[o.fingerprint], o.number) for o in plan.oscillations],
        "waived": list(plan.waived),
        "unchanged": list(plan.unchanged),
    }
    return {key: value for key, value in parts.items() if value}


LEDGER_CASES = [
    pytest.param([A, B], [], {"create": ["A", "B"]}, id="new-findings-are-filed"),
    pytest.param([A], [issue(1, A)], {"unchanged": [1]}, id="same-finding-new-head-untouched"),
    pytest.param([MOVED_A], [issue(1, A)], {"unchanged": [1]}, id="moved-finding-untouched"),
    pytest.param([REWORDED_A], [issue(1, A)], {"update": [1]}, id="reworded-finding-updated"),
    pytest.param(
        [B],
        [issue(1, A)],
        {"create": ["B"], "close": [(1, "completed")]},
        id="gone-finding-closed-as-fixed",
    ),
    pytest.param(
        [],
        [issue(1, A), issue(2, B)],
        {"close": [(1, "completed"), (2, "completed")]},
        id="clean-audit-closes-all-open",
    ),
    pytest.param(
        [A],
        [issue(1, A, "closed", "not_planned", by_bot=False)],
        {"waived": [1]},
        id="human-closed-stays-closed-no-new-issue",
    ),
    pytest.param(
        [A],
        [issue(1, A, "closed", "completed", by_bot=False)],
        {"waived": [1]},
        id="human-closed-as-completed-also-respected",
    ),
    pytest.param(
        [],
        [issue(1, A, "closed", "not_planned", by_bot=False)],
        {},
        id="human-closed-and-gone-untouched",
    ),
    pytest.param(
        [A],
        [
            issue(
                1, A, "closed", "not_planned", labels=("review-loop:finding", "review-loop:waived")
            )
        ],
        {"waived": [1]},
        id="waived-by-command-stays-closed",
    ),
    pytest.param(
        [], [issue(1, A, labels=("review-loop:waived",))], {}, id="open-waived-issue-never-closed"
    ),
    pytest.param(
        [A],
        [issue(1, A, labels=("review-loop:waived",))],
        {"waived": [1]},
        id="open-waived-issue-never-updated",
    ),
    pytest.param(
        [A],
        [issue(1, A, "closed", "completed")],
        {"reopen": [1], "oscillations": [("A", 1)]},
        id="fixed-finding-comes-back-oscillation",
    ),
    pytest.param(
        [A],
        [issue(1, A, "closed", "not_planned")],
        {"create": ["A"]},
        id="bot-closed-duplicate-does-not-block-a-new-issue",
    ),
    pytest.param([], [issue(1, A, "closed", "completed")], {}, id="fixed-and-gone-untouched"),
    pytest.param(
        [A],
        [issue(4, A), issue(2, A)],
        {"unchanged": [2], "close": [(4, "not_planned")]},
        id="duplicate-open-issues-collapse-to-oldest",
    ),
    pytest.param(
        [A],
        [issue(1, A, "closed", "not_planned", by_bot=False), issue(2, A)],
        {"unchanged": [2]},
        id="open-issue-wins-over-older-human-close",
    ),
    pytest.param(
        [A],
        [dataclasses.replace(issue(1, A), marker=None)],
        {"create": ["A"]},
        id="issue-without-marker-ignored",
    ),
    pytest.param([A, A], [], {"create": ["A"]}, id="same-fingerprint-twice-filed-once"),
    pytest.param(
        [A, B, C],
        [
            issue(1, A),
            issue(2, B, "closed", "completed"),
            issue(3, C, "closed", "not_planned", by_bot=False),
        ],
        {"unchanged": [1], "reopen": [2], "oscillations": [("B", 2)], "waived": [3]},
        id="mixed",
    ),
]


@pytest.mark.parametrize(("groups", "existing", "expected"), LEDGER_CASES)
def test_plan_ledger(
    groups: list[FindingGroup], existing: list[ExistingIssue], expected: dict[str, list[Any]]
) -> None:
    """Create new, update changed, close fixed, never touch human decisions, flag oscillation."""
    plan = plan_ledger([draft(g) for g in groups], existing, NEW_SHA)
    assert summary(plan) == expected
    assert plan.has_changes is bool({"create", "update", "close", "reopen"} & set(expected))


def test_plan_details_carry_the_text_to_write() -> None:
    """Closes say where the finding was fixed and which finding it was; updates and reopens
    carry the new text."""
    plan = plan_ledger(
        [draft(REWORDED_A), draft(B)],
        [issue(1, A), issue(2, C), issue(3, B, "closed", "completed")],
        NEW_SHA,
    )
    assert plan.close == (IssueClose(2, f"Fixed in {NEW_SHA}", "completed", C.fingerprint),)
    assert plan.update[0].body == draft(REWORDED_A).body
    assert plan.reopen[0].body == draft(B).body
    assert NEW_SHA in plan.reopen[0].comment
    assert plan.issue_for == {REWORDED_A.fingerprint: 1, B.fingerprint: 3}


def test_a_duplicate_is_closed_with_a_marker_naming_the_issue_kept() -> None:
    """The close's new body keeps the duplicate's text and marker and adds `duplicate_of`,
    which is how a later reconcile tells the bot's close from a person's (a waiver)."""
    plan = plan_ledger([draft(A)], [issue(2, A), issue(5, A)], NEW_SHA)

    (close,) = plan.close
    assert (close.number, close.state_reason) == (5, "not_planned")
    assert close.body is not None
    assert parse_marker(close.body) == {**parse_marker(issue(5, A).body), "duplicate_of": 2}
    assert close.body.split("\n", 1)[1] == issue(5, A).body.split("\n", 1)[1]


def spans(lines: list[tuple[int, int]], path: str = "src/a.py") -> list[Finding]:
    return [
        dataclasses.replace(finding(f"{path}{n}", start, path=path), end_line=end)
        for n, (start, end) in enumerate(lines)
    ]


def test_an_issue_whose_findings_only_moved_keeps_its_permalinks_and_is_not_edited() -> None:
    """Code added above a group's findings moves every line (spans too, in two files): the
    issue still links each location at the commit it was filed at, so it stays as it is;
    one finding fewer is news to its reader, and the issue is edited."""
    before = [*spans([(3, 5), (9, 9), (12, 13)]), *spans([(4, 4), (6, 6)], "src/b.py")]
    moved = [dataclasses.replace(f, start_line=f.start_line + 7, end_line=f.end_line + 7)
             for f in before]  # fmt: skip
    [filed], [now], [fewer] = (group_findings(fs, 3) for fs in (before, moved, moved[1:]))
    assert filed.fingerprint == now.fingerprint == fewer.fingerprint
    old = issue(1, filed)
    assert f"/blob/{OLD_SHA}/src/a.py#L3-L5)" in old.body  # a permalink at the filed commit

    assert summary(plan_ledger([draft(now)], [old], NEW_SHA)) == {"unchanged": [1]}
    assert summary(plan_ledger([draft(fewer)], [old], NEW_SHA)) == {"update": [1]}


def test_new_issues_wait_while_max_open_are_open_and_the_most_severe_go_first() -> None:
    """With 2 allowed open and 1 open already, one of the new findings is filed: the most
    severe; the others are held (named in the summary) for a later reconcile."""
    low = FindingGroup((dataclasses.replace(finding("x = 1", 5, path="src/b.py"), severity="low"),))
    high = FindingGroup(
        (dataclasses.replace(finding("y = 2", 9, path="src/c.py"), severity="high"),)
    )
    plan = plan_ledger([draft(A), draft(B), draft(low), draft(high)], [issue(1, A)], NEW_SHA, 2)

    assert [d.fingerprint for d in plan.create] == [high.fingerprint]
    assert {d.fingerprint for d in plan.held} == {B.fingerprint, low.fingerprint}
    assert plan.unchanged == (1,)

    # Once the open one is fixed and closed, the rest of the room goes to the held findings,
    # the unranked (medium) before the low one.
    later = plan_ledger([draft(B), draft(low)], [issue(1, A, "closed", "completed")], NEW_SHA, 2)
    assert [d.fingerprint for d in later.create] == [B.fingerprint, low.fingerprint]
    assert later.held == ()


def test_every_open_issue_counts_against_max_open_so_nothing_new_is_filed() -> None:
    plan = plan_ledger([draft(A), draft(B), draft(C)], [issue(1, A), issue(2, B)], NEW_SHA, 2)
    assert plan.create == () and [d.fingerprint for d in plan.held] == [C.fingerprint]
