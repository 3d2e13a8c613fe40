"""What every step of one fix task works with, and how a task (or one of its issues) fails."""

from dataclasses import dataclass, field, replace
from pathlib import Path

from bot.agents.catalog import AgentSpec
from bot.audit.runners import analyzers
from bot.engine.leases import Lease
from bot.github.records import IssueInfo, MergeMethod
from bot.github.repo_api import RepoAPI
from bot.loop.fleet import Fleet
from bot.loop.store import LoopStore, TaskRow
from bot.repo_config import RepoConfig


class TaskFailed(Exception):
    """The task (or one issue of it) cannot produce a fix; `status` says how it ended."""

    def __init__(
        self, status: str, reason: str, *, tampered: bool = False, told: bool = False
    ) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason
        self.tampered = tampered  # the agent touched git's config or hooks
        self.told = told  # its issues were told already (one comment each)
        self.output = ""  # the end of the agent's output, when an agent ran
        self.said = ""  # a coding-agent CLI's last message, when one ran


@dataclass(frozen=True)
class BotIdentity:
    """Who the bot's commits are by."""

    name: str
    email: str


@dataclass(frozen=True)
class FixJob:
    """One fix task with everything its steps need: the GitHub API, its rows, its lease, the
    repository's config and mirror, the agent. Never changed in place: moving the task onto
    a new base commit (`on_base`) gives a new FixJob."""

    fleet: Fleet
    api: RepoAPI
    store: LoopStore
    lease: Lease
    task: TaskRow
    config: RepoConfig
    spec: AgentSpec
    mirror: Path
    clone_url: str
    merge_method: MergeMethod = "merge"  # how its fix PR is merged into the PR branch
    # The PR's generation as the task started: one moved since means an event about the PR
    # (a push among them) came in meanwhile.
    generation: int | None = None
    # What a coding-agent CLI said it did, per issue fixed: shown collapsed in the fix PR.
    agent_notes: dict[int, str] = field(default_factory=dict)
    # Each issue as this task read it before fixing it: what it says later (the fix PR's
    # title) is taken from here, not asked of GitHub again.
    issues_read: dict[int, IssueInfo] = field(default_factory=dict)
    # A batch's issues as one listing showed them as the task started: each is taken (once)
    # instead of reading that issue.
    issues_listed: dict[int, IssueInfo] = field(default_factory=dict)

    @property
    def analyzers(self) -> list[str]:
        """The repository's auditors the bot runs itself: built-ins and SARIF auditors."""
        return analyzers(self.config.auditors, self.fleet.auditors)

    async def check_lease(self) -> None:
        """Raise LeaseLost unless this task still holds its issue: before every side effect."""
        await self.fleet.runtime.leases.check(self.lease)

    async def identity(self) -> BotIdentity:
        ident = await self.fleet.runtime.github.identity()
        return BotIdentity(
            ident.bot_login, f"{ident.id}+{ident.bot_login}@users.noreply.github.com"
        )

    def on_base(self, base_sha: str) -> "FixJob":
        """This job with its task moved onto `base_sha` (a new head of the PR branch)."""
        return replace(self, task=replace(self.task, base_sha=base_sha))
