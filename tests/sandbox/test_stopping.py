"""The sandboxes' wait for Ctrl-C or SIGTERM: a signal is held until collected, never lost."""

import signal
import threading
from pathlib import Path

from bot.sandbox.stopping import stop_signals_held


def _blocked(native_id: int) -> int:
    status = Path(f"/proc/self/task/{native_id}/status").read_text()
    return int(
        next(line for line in status.splitlines() if line.startswith("SigBlk:")).split()[1], 16
    )


def _bit(sig: signal.Signals) -> int:
    return 1 << (sig - 1)


def test_a_signal_that_comes_before_the_wait_is_kept_for_it() -> None:
    """Ctrl-C while the server is still starting (or printing) stops it once it waits."""
    with stop_signals_held() as wait_for_stop:
        signal.pthread_kill(threading.get_ident(), signal.SIGINT)
        signal.pthread_kill(threading.get_ident(), signal.SIGTERM)
        assert {wait_for_stop(), wait_for_stop()} == {signal.SIGINT, signal.SIGTERM}
    assert signal.getsignal(signal.SIGINT) is signal.default_int_handler


def test_threads_started_while_held_never_take_the_signal_and_the_mask_comes_back() -> None:
    """The server's threads inherit the mask, so the kernel gives the signal to none of them;
    afterwards this thread's mask is what it was."""
    before = _blocked(threading.get_native_id())
    seen: list[int] = []
    with stop_signals_held():
        thread = threading.Thread(target=lambda: seen.append(_blocked(threading.get_native_id())))
        thread.start()
        thread.join()
    stop = _bit(signal.SIGINT) | _bit(signal.SIGTERM)
    assert seen[0] & stop == stop
    assert before & stop == 0
    assert _blocked(threading.get_native_id()) == before
