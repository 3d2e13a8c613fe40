"""Every label the bot sets or reads, every branch name it makes, and the rule for telling
its own fix PRs apart. One place, so handlers, the loop and routing agree on the words."""

from collections.abc import Collection, Sequence

# On pull requests.
LOOP_LABEL = "review-loop"
READY_LABEL = "review-loop:ready"
# On issues (and, for needs-human, on pull requests too).
FINDING_LABEL = "review-loop:finding"
NEEDS_HUMAN_LABEL = "review-loop:needs-human"
WAIVED_LABEL = "review-loop:waived"
PARTIAL_LABEL = "review-loop:partial"
FIX_LABEL = "review-loop:fix"
AGENT_LABEL_PREFIX = "agent:"

# name -> (colour, description): what `RepoAPI.ensure_labels` creates on a repository.
# The labels people set are made on a repository's first reconcile, so they can be picked
# from the list; the ones the bot sets only when it first uses them (`first_use`), so a
# repository that never has a ready PR never pays for the ready label's creation.
LABELS = {
    LOOP_LABEL: ("0e8a16", "Run the review loop on this pull request"),
    FINDING_LABEL: ("d93f0b", "A finding filed by review-loop"),
    READY_LABEL: ("0e8a16", "review-loop: only a human approval is left"),
    NEEDS_HUMAN_LABEL: ("b60205", "review-loop needs a person to decide"),
    WAIVED_LABEL: ("cccccc", "A finding a person accepted"),
    PARTIAL_LABEL: ("fbca04", "A fix that stopped part way; its branch keeps the work"),
    FIX_LABEL: ("1d76db", "Ask review-loop to fix this issue"),
}
PEOPLE_LABELS = (LOOP_LABEL, WAIVED_LABEL, FIX_LABEL)


def label_specs(names: Collection[str]) -> dict[str, tuple[str, str]]:
    """The specs of `names` that are the bot's own labels (others, e.g. `agent:` ones, are
    left to GitHub, which creates the labels an issue is given)."""
    return {name: LABELS[name] for name in names if name in LABELS}


# Branches. Fix branches are pushed to GitHub; audit and warm branches live only in the
# worker's local mirror, for the worktrees made there.
FIX_BRANCH_PREFIX = "review-loop/"
AUDIT_BRANCH_PREFIX = "review-loop/audit/"
WARM_BRANCH_PREFIX = "review-loop/warm/"


def fix_branch(pr_number: int | None, issue_number: int) -> str:
    """The branch of the fix for `issue_number`: under its PR, or `default` for an issue a
    person filed (its fix PR goes to the default branch)."""
    scope = f"pr-{pr_number}" if pr_number is not None else "default"
    return f"{FIX_BRANCH_PREFIX}{scope}/{issue_number}"


def is_own_fix_pr(
    repo: str, head_repo: str | None, head_ref: str, base_ref: str, default_branch: str
) -> bool:
    """Whether a PR is one of the bot's fix PRs into another PR's branch: those are audited
    one level deep, never looped on. Fix branches live in the base repository, never in a
    fork; a fix PR into the default branch (a person's issue) runs the loop like any PR."""
    return (
        head_repo == repo and head_ref.startswith(FIX_BRANCH_PREFIX) and base_ref != default_branch
    )


def agent_label(agent: str) -> str:
    """The issue label that routes an issue to `agent`."""
    return f"{AGENT_LABEL_PREFIX}{agent}"


def wants_fix(label: str) -> bool:
    """Whether adding `label` to an issue asks the fleet to fix it."""
    return label == FIX_LABEL or label.startswith(AGENT_LABEL_PREFIX)


def labelled_agent(labels: Sequence[str], known_agents: Collection[str]) -> str | None:
    """The first known agent named by an `agent:<name>` label, if any."""
    for label in labels:
        if label.startswith(AGENT_LABEL_PREFIX):
            name = label.removeprefix(AGENT_LABEL_PREFIX).strip()
            if name in known_agents:
                return name
    return None


def agent_of(labels: Sequence[str]) -> str | None:
    """The agent an `agent:<name>` label names, known or not (for showing, not routing)."""
    return next(
        (
            lbl.removeprefix(AGENT_LABEL_PREFIX)
            for lbl in labels
            if lbl.startswith(AGENT_LABEL_PREFIX)
        ),
        None,
    )
