"""The sandbox's one shared object: state, renderers, faults, webhooks, and access rules."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from bot.sandbox.errors import ApiError
from bot.sandbox.faults import Faults
from bot.sandbox.render import Renderer, node_id
from bot.sandbox.state import (
    ALWAYS_SENT_EVENTS,
    APP_EVENTS,
    PERMISSION_RANK,
    Account,
    Installation,
    Repo,
    Store,
    Token,
)
from bot.sandbox.webhooks import Webhooks


@dataclass(frozen=True)
class Principal:
    """Who is calling: the App (JWT), an installation (its token) or a user (personal token)."""

    kind: str  # "app" | "installation" | "user"
    account: Account  # the bot user for the App and its installations
    key: str  # rate-limit bucket
    token: Token | None = None

    @property
    def installation_id(self) -> int | None:
        return None if self.token is None else self.token.installation_id


class Hub:
    def __init__(self, store: Store, renderer: Renderer, faults: Faults) -> None:
        self.store = store
        self.render = renderer
        self.faults = faults
        self.webhooks = Webhooks(store, faults)

    # access

    def repo(self, owner: str, name: str, who: Principal | None, need: str = "read") -> Repo:
        """The repository, if `who` may `need` it; GitHub hides what you cannot read (404)."""
        repo = self.store.repo_by_name(owner, name)
        if repo is None or (who is not None and not self.can(who, repo, "read")):
            raise ApiError.not_found()
        if who is not None and not self.can(who, repo, need):
            noun = "integration" if who.kind != "user" else "personal access token"
            raise ApiError(403, f"Resource not accessible by {noun}")
        return repo

    def can(self, who: Principal, repo: Repo, need: str) -> bool:
        if who.kind == "app":
            return False
        if who.token is not None:
            installation = self.store.installations.get(who.token.installation_id)
            if installation is None or installation.account_id != repo.owner_id:
                return False
            if who.token.repo_ids is not None and repo.id not in who.token.repo_ids:
                return False
            return need in ("read", "triage", "write")
        have = self.store.permission(repo, who.account)
        return PERMISSION_RANK[have] >= PERMISSION_RANK[need]

    # webhooks

    def send(self, event: str, repo: Repo | None, sender: Account, payload: dict[str, Any]) -> None:
        """Emit `event` for `repo` to the App, if the App is installed on the repo's owner and
        subscribes to the event."""
        if event not in APP_EVENTS and event not in ALWAYS_SENT_EVENTS:
            return
        if repo is None:
            self.webhooks.emit(event, {**payload, "sender": self.render.user(sender)})
            return
        installation = self.store.installation_for(repo.owner_id)
        if installation is None:
            return
        owner = self.store.accounts[repo.owner_id]
        body = {
            **payload,
            "repository": self.render.repository(repo, webhook=True),
            "sender": self.render.user(sender),
            "installation": installation_lite(installation),
        }
        if owner.type == "Organization":
            body["organization"] = self.render.organization(owner)
        self.webhooks.emit(event, body)


def installation_lite(installation: Installation) -> dict[str, Any]:
    return {"id": installation.id, "node_id": node_id("MDIz", installation.id)}
