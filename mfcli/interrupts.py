"""SIGINT and SIGTERM, honoured at every moment of a run, output commits included.

The command line installs :func:`install`: a signal raises :class:`Interrupted` (a
KeyboardInterrupt, so ``except Exception`` in a library never swallows it) where the main
thread is, and every output being written unwinds and removes its temporary file. Three
things make this hold at *every* moment rather than most:

- Python runs a signal handler between any two bytecodes, also inside a finalizer or a weakref
  callback, where an exception is only printed ("Exception ignored in ...") and the run goes
  on. The signal is therefore also recorded (:func:`pending`), the dropped exception is not
  printed but raised again a millisecond later (by a SIGALRM), and an output commit checks the
  record first.
- An output commit (the rename that makes an output appear) runs in :func:`deferred`: a
  signal arriving then is recorded, the commit completes, and the interrupt is raised right
  after. An interrupt before the commit aborts it; one after leaves a complete output.
- Only the first signal raises; later ones (a second Ctrl-C during the clean-up) are recorded,
  so a clean-up is never itself interrupted.

Exit status: 128 + the signal number (130 for SIGINT, 143 for SIGTERM). No click, no NumPy.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
REDELIVERY_DELAY = 0.001  # seconds

_state = {"pending": None, "raised": False, "deferring": 0, "installed": False}


class Interrupted(KeyboardInterrupt):
    """The run was interrupted by signal ``signum``; exit with ``exit_code`` (128 + signum)."""

    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = int(signum)

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


def _handler(signum, frame) -> None:
    if _state["pending"] is None:
        _state["pending"] = signum
    if _state["deferring"] or _state["raised"]:
        return  # recorded: raised when the commit is done, or already unwinding
    _state["raised"] = True
    raise Interrupted(_state["pending"])


def _redeliver(signum, frame) -> None:
    if _state["pending"] is not None and not _state["deferring"] and not _state["raised"]:
        _state["raised"] = True
        raise Interrupted(_state["pending"])


def _unraisable(hook):
    def handle(unraisable) -> None:
        if isinstance(unraisable.exc_value, Interrupted):
            # Raised inside a finalizer and dropped there: raise it again a moment later (a
            # SIGALRM), in the code being run rather than in this hook.
            _state["raised"] = False
            signal.setitimer(signal.ITIMER_REAL, REDELIVERY_DELAY)
            return
        hook(unraisable)

    return handle


def install(hold: bool = False) -> None:
    """Handle SIGINT and SIGTERM as described above (main thread only; idempotent). With
    ``hold`` (while the program starts, before anything can be written or cleaned up) a signal
    is only recorded until :func:`release`."""
    if hold and not _state["installed"]:
        _state["deferring"] += 1
        _state["held"] = True
    if _state["installed"]:
        return
    for signum in SIGNALS:
        if signal.getsignal(signum) is not signal.SIG_IGN:  # ignored by whoever started us (nohup, `&`): kept
            signal.signal(signum, _handler)
    signal.signal(signal.SIGALRM, _redeliver)
    sys.unraisablehook = _unraisable(sys.unraisablehook)
    _state["installed"] = True


def release() -> None:
    """End the hold of :func:`install`: a signal received meanwhile is raised now."""
    if _state.pop("held", False):
        _state["deferring"] -= 1
    if not _state["deferring"]:
        check()


def settle() -> None:
    """From now on signals are only recorded (the run has finished and its exit status is set)."""
    if _state["installed"]:
        _state["deferring"] += 1


def ignore_from_now() -> None:
    """Ignore SIGINT and SIGTERM for the rest of the process (its exit status is set and its
    outputs are complete). Python's shutdown puts handlers written in Python back to the
    default, under which a signal arriving in the last milliseconds would kill the process
    instead of letting it exit with the status it has set; an ignored signal stays ignored."""
    if _state["installed"]:
        settle()
        for signum in SIGNALS:
            if signal.getsignal(signum) is _handler:
                signal.signal(signum, signal.SIG_IGN)


def pending() -> int | None:
    """The number of the first signal received, or None."""
    return _state["pending"]


def check() -> None:
    """Raise :class:`Interrupted` if a signal has been received (and not raised yet where it
    could be acted on)."""
    if _state["pending"] is not None:
        _state["raised"] = True
        raise Interrupted(_state["pending"])


@contextlib.contextmanager
def deferred(raise_after: bool = True) -> Iterator[None]:
    """A block that signals do not interrupt: they are recorded, and (``raise_after``)
    :class:`Interrupted` is raised when the block has completed (not if it raised an exception
    of its own). A clean-up passes ``raise_after=False``: it must never raise; the interrupt
    is acted on by the next check."""
    _state["deferring"] += 1
    try:
        yield
    finally:
        _state["deferring"] -= 1
    if raise_after and not _state["deferring"]:
        check()


def reset() -> None:
    """Forget a received signal (for tests that run several commands in one process)."""
    _state["pending"] = None
    _state["raised"] = False
