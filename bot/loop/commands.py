"""`@review-loop <verb>` commands in PR comments: parsing, and what `retry` forgives; pure."""

import difflib
import re
from collections.abc import Sequence
from dataclasses import dataclass

from bot.loop.store import ACTIVE_TASK_STATES, ENDED_BADLY, TaskRow

VERBS = ("audit", "fix", "status", "stop", "resume", "retry", "waive", "help")

HELP = """\
**review-loop commands** (people with write access to this repository):

| command | what it does |
| --- | --- |
| `@review-loop audit` | audit this PR now (and start the loop if it was not running) |
| `@review-loop fix` | audit this PR now and fix the open findings the loop may still take on |
| `@review-loop fix #issue` | fix just `#issue`, now (past `max_rounds`, or stopped, too) |
| `@review-loop status` | where the loop stands |
| `@review-loop stop` / `resume` | pause the loop on this PR / go on (e.g. a raised `budget`) |
| `@review-loop retry #issue` | run the fix for `#issue` again |
| `@review-loop waive #issue <reason>` | close the finding as accepted; it is not raised again |
| `@review-loop help` | this list |
"""

_MENTION = re.compile(r"(?im)^\s*@review-loop\b[ \t]*(?P<rest>[^\n]*)$")
_ISSUE = re.compile(r"^#(?P<n>\d+)$")


@dataclass(frozen=True)
class Command:
    verb: str
    issue: int | None = None
    reason: str = ""


@dataclass(frozen=True)
class BadCommand:
    """A mention the bot cannot act on; `message` tells the user why."""

    message: str


def parse_command(body: str, mention: str = "@review-loop") -> Command | BadCommand | None:
    """The first `@review-loop ...` line of a comment, or None when the bot is not addressed.

    Only a line that starts with the mention counts, so quoting the bot in prose does not
    command it.
    """
    pattern = (
        _MENTION
        if mention == "@review-loop"
        else re.compile(rf"(?im)^\s*{re.escape(mention)}\b[ \t]*(?P<rest>[^\n]*)$")
    )
    match = pattern.search(body or "")
    if match is None:
        return None
    words = match.group("rest").split()
    if not words:
        return BadCommand("Say what to do: try `@review-loop help`.")
    verb, args = words[0].lower(), words[1:]
    if verb not in VERBS:
        close = difflib.get_close_matches(verb, VERBS, n=1)
        hint = f" Did you mean `@review-loop {close[0]}`?" if close else ""
        return BadCommand(f"Unknown command `{verb}`.{hint} Try `@review-loop help`.")
    issue: int | None = None
    if args and (m := _ISSUE.match(args[0])):
        issue = int(m.group("n"))
        args = args[1:]
    if verb in ("retry", "waive") and issue is None:
        return BadCommand(f"`{verb}` needs an issue: `@review-loop {verb} #123`.")
    if verb == "waive" and not args:
        return BadCommand("`waive` needs a reason: `@review-loop waive #123 false positive`.")
    if verb not in ("fix", "retry", "waive") and (issue is not None or args):
        return BadCommand(f"`{verb}` takes no arguments: try `@review-loop help`.")
    if verb == "fix" and args:
        return BadCommand("`fix` takes at most one issue: `@review-loop fix #123`.")
    return Command(verb, issue, " ".join(args))


def retry_reset(task: TaskRow, issue: int) -> dict[str, object] | None:
    """What `retry #issue` changes on one of the issue's tasks so that the task no longer
    counts against `issue`; None when it does not (or is still running).

    Only that issue's failure is forgiven: a batch's other failures still count, and its
    fixes stay recorded as they are (a merged batch stays merged; what it fixed is closed and
    is not fixed again).
    """
    failed = task.failed_issues
    if task.status in ACTIVE_TASK_STATES or issue not in failed:
        return None
    rest = [n for n in failed if n != issue]
    if task.status in ENDED_BADLY:
        # "retried" makes the reconciler count the task's `failed` list, now without `issue`.
        return {"status": "retried", "failed": rest}
    return {"failed": rest}


def fix_one_refusal(
    state: str, agent: str | None, tasks: Sequence[TaskRow], issue: int
) -> str | None:
    """Why `fix #issue` cannot start a fix of that one finding now (its state, the agent its
    `agent:<name>` label routes it to, the tasks that worked on it); None: start it."""
    if state != "open":
        return f"#{issue} is closed: reopen it to have it fixed."
    if agent is None:
        return (
            f"#{issue} has no `agent:<name>` label naming an agent of the server's catalog: "
            "label it, then `@review-loop fix` it again."
        )
    running = [t for t in tasks if t.status in ACTIVE_TASK_STATES]
    if running:
        return f"A fix of #{issue} is already under way."
    return None
