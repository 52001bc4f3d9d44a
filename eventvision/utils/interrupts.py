"""Interrupts while a command runs: SIGINT and SIGTERM become ``KeyboardInterrupt`` so ``finally`` blocks
(and :func:`eventvision.utils.io.atomic_path`) remove partial outputs; the signal is remembered for the exit code."""

from __future__ import annotations

import contextlib
import signal
import sys

_last_signal = [signal.SIGINT]


def _on_signal(signum, frame):
    from eventvision.utils.io import note_interrupt

    note_interrupt()  # an atomic output open now will refuse to commit even if this exception is swallowed
    _last_signal[0] = signum
    raise KeyboardInterrupt


def _unraisable(hook):
    """An unraisable-exception hook that stays silent for a KeyboardInterrupt raised inside a callback (a
    weakref or ``__del__`` swallowed it; the interrupt is noted and the command stops at its next check)."""
    def handle(info):
        if info.exc_type is not KeyboardInterrupt:
            hook(info)
    return handle


@contextlib.contextmanager
def signals_interrupt():
    """SIGINT and SIGTERM raise KeyboardInterrupt (so ``finally`` blocks clean up) inside the block."""
    previous = {}
    with contextlib.suppress(ValueError):  # not the main thread: leave the handlers alone
        for sig in (signal.SIGINT, signal.SIGTERM):
            previous[sig] = signal.signal(sig, _on_signal)
    old_hook, sys.unraisablehook = sys.unraisablehook, _unraisable(sys.unraisablehook)
    try:
        yield
    finally:
        sys.unraisablehook = old_hook
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def take_last_signal() -> signal.Signals:
    """The signal behind the latest interrupt (SIGINT when none was caught), and reset it."""
    signum = _last_signal[0]
    _last_signal[0] = signal.SIGINT
    return signal.Signals(signum)
