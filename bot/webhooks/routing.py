"""Handler registration: declare with a decorator, enable by listing routers in one place.

A handler may also declare `skips`: from the payload alone (a read-only mapping, no model,
no database, no GitHub), the reason it would do nothing with this delivery, or None when it
might act or the payload does not say. The intake asks `Router.ignored` before it queues a
delivery: one that no handler wants (none registered, or each one skips it) is stored as
ignored, with the reason, and gets no dispatch job. A `skips` must be conservative: when in
doubt it answers None and the handler decides in the worker.
"""

from collections import defaultdict
from collections.abc import Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from bot.webhooks.context import Context

Handler = Callable[["Context"], Awaitable[None]]
Skips = Callable[[Mapping[str, Any]], str | None]


class Router:
    """Maps (event, action) to handlers. `Router(*routers)` merges several."""

    def __init__(self, *routers: "Router") -> None:
        # Per (event, action): each handler, with its `skips` (None: it always gets it).
        self._handlers: dict[tuple[str, str | None], list[tuple[Handler, Skips | None]]] = (
            defaultdict(list)
        )
        for router in routers:
            for key, entries in router._handlers.items():
                self._handlers[key].extend(entries)

    def register(
        self, event: str, action: str | None = None, *, skips: Skips | None = None
    ) -> Callable[[Handler], Handler]:
        """Call the decorated handler for `event` (and only `action`, when given); `skips`,
        if given, tells from the payload when the handler would do nothing."""

        def decorator(handler: Handler) -> Handler:
            self._handlers[(event, action)].append((handler, skips))
            return handler

        return decorator

    def _entries(self, event: str, action: str | None) -> list[tuple[Handler, Skips | None]]:
        """The handlers of `event` for any action, then those of `action`, with their skips."""
        found = list(self._handlers.get((event, None), ()))
        if action is not None:
            found.extend(self._handlers.get((event, action), ()))
        return found

    def handlers_for(self, event: str, action: str | None) -> list[Handler]:
        return [handler for handler, _ in self._entries(event, action)]

    def ignored(self, event: str, action: str | None, payload: Mapping[str, Any]) -> str | None:
        """Why no handler would act on this delivery, or None if one might (or a `skips`
        cannot tell). Nothing but the payload is read."""
        reasons: list[str] = []
        for _, skips in self._entries(event, action):
            reason = skips(payload) if skips is not None else None
            if reason is None:
                return None
            reasons.append(reason)
        if not reasons:
            return f"no handler for {event}.{action}" if action else f"no handler for {event}"
        return "; ".join(dict.fromkeys(reasons))

    def events(self) -> set[str]:
        return {event for event, _ in self._handlers}
