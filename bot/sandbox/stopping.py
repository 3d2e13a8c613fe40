"""Serve until Ctrl-C or SIGTERM, with no moment at which the signal can be lost.

A sandbox's main thread used to wait in `threading.Event().wait()` for the KeyboardInterrupt
of Ctrl-C. That wait can miss it: CPython's handler only marks the signal, the main thread
raises it at its next bytecode, and a signal that lands after the thread's last bytecode
and before the lock's wait begins is marked and then slept through. In busy test runs two
sandboxes did not stop within 60 s of a SIGINT; that race is the likely reason (the hang was
not reproduced alone). A Ctrl-C just before the wait printed a traceback (reproduced).

Here SIGINT and SIGTERM are blocked before the server's threads start (threads inherit the
mask, so none of them takes the signal), a signal that comes early stays pending, and the
main thread collects it with `sigwait`. SIGTERM (`docker stop`, systemd) stops a sandbox as
cleanly as Ctrl-C. Processes that the server's threads start (the GitHub sandbox's git)
inherit the mask too: a Ctrl-C at a terminal lets them finish instead of killing them.
"""

from __future__ import annotations

import contextlib
import signal
from collections.abc import Callable, Iterator

STOP_SIGNALS = frozenset({signal.SIGINT, signal.SIGTERM})


@contextlib.contextmanager
def stop_signals_held() -> Iterator[Callable[[], signal.Signals]]:
    """Hold SIGINT and SIGTERM in this thread and in every thread it starts from here on;
    yields a function that waits for one of them and says which. The mask is restored on
    the way out (a second Ctrl-C already pending is then delivered as usual)."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, STOP_SIGNALS)

    def wait_for_stop() -> signal.Signals:
        return signal.Signals(signal.sigwait(STOP_SIGNALS))

    try:
        yield wait_for_stop
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)
