"""What a handler receives: the event, its payload's fields, a bound logger, the services."""

import logging
from collections.abc import MutableMapping
from dataclasses import dataclass
from typing import Any

from githubkit import GitHub

from bot.github.tokens import SharedInstallationAuth
from bot.loop.fleet import Fleet
from bot.runtime import Runtime
from bot.webhooks.events import Envelope


class DeliveryLogger(logging.LoggerAdapter[logging.Logger]):
    """Prefixes messages with the event so a log line says what it is about."""

    def process(self, msg: Any, kwargs: MutableMapping[str, Any]) -> tuple[Any, Any]:
        return f"{self.extra['event']}: {msg}" if self.extra else msg, kwargs


@dataclass
class Context:
    event: str
    action: str | None
    delivery_id: str
    payload: dict[str, Any]
    envelope: Envelope
    fleet: Fleet
    log: logging.LoggerAdapter[logging.Logger]

    @property
    def runtime(self) -> Runtime:
        """The process's services: database, queue, GitHub App."""
        return self.fleet.runtime

    @property
    def repo(self) -> str:
        """`owner/name` of the repository the event is about."""
        if self.envelope.repository is None:
            raise ValueError(f"{self.event} delivery {self.delivery_id} names no repository")
        return self.envelope.repository.full_name

    @property
    def number(self) -> int:
        """The pull request or issue number the event is about."""
        if self.envelope.pull_request is not None:
            return self.envelope.pull_request.number
        if self.envelope.issue is not None:
            return self.envelope.issue.number
        raise ValueError(f"{self.event} delivery {self.delivery_id} names no issue or PR")

    @property
    def installation_id(self) -> int:
        if self.envelope.installation is None:
            raise ValueError(f"{self.event} delivery {self.delivery_id} carries no installation")
        return self.envelope.installation.id

    def github(self) -> GitHub[SharedInstallationAuth]:
        """An installation client; use it as `async with ctx.github() as gh:`."""
        return self.runtime.github.installation_client(self.installation_id)
