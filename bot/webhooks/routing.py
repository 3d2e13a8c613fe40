"""Handler registration: declare with a decorator, enable by listing routers in one place."""

from collections import defaultdict
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bot.webhooks.context import Context

Handler = Callable[["Context"], Awaitable[None]]


class Router:
    """Maps (event, action) to handlers. `Router(*routers)` merges several."""

    def __init__(self, *routers: "Router") -> None:
        self._handlers: dict[tuple[str, str | None], list[Handler]] = defaultdict(list)
        for router in routers:
            for key, handlers in router._handlers.items():
                self._handlers[key].extend(handlers)

    def register(self, event: str, action: str | None = None) -> Callable[[Handler], Handler]:
        """Call the decorated handler for `event` (and only `action`, when given)."""

        def decorator(handler: Handler) -> Handler:
            self._handlers[(event, action)].append(handler)
            return handler

        return decorator

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        found = list(self._handlers.get((event, None), ()))
        if action is not None:
            found.extend(self._handlers.get((event, action), ()))
        return found

    def events(self) -> set[str]:
        return {event for event, _ in self._handlers}
