"""Work done by a forked copy of this process, beside this one: the pictures of `mfcli unmix`
(:mod:`mfcli.plotting.bundle`) and the refinement and abundances of some of its layers
(:mod:`mfcli.models.deep.finish`).

Their steps hold Python's lock (many small NumPy calls, drawing), so threads would take turns;
a forked copy runs on the second core and shares this process's memory (the data, the result)
copy-on-write, without copying or pickling it. Only its return value comes back, pickled,
through a pipe. Where the system cannot fork (not Linux: macOS forbids forking a process that
used system frameworks) or has one core, the callers do the work here instead.
"""

from __future__ import annotations

import os
import pickle
import sys
from collections.abc import Callable

from mfcli.errors import MfcliError


def can_fork() -> bool:
    """True where a forked copy of this process can work beside it: a POSIX fork (Linux) and a
    second core available to this process."""
    if not hasattr(os, "fork") or sys.platform != "linux":
        return False
    try:
        cores = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cores = os.cpu_count() or 1
    return cores >= 2


class ForkedCall:
    """``function(*args)`` running in a forked copy of this process from construction on;
    :meth:`result` waits for its return value (or raises its error here), :meth:`cancel` stops it.

    ``wrap_error``: what an exception other than an :class:`~mfcli.errors.MfcliError` becomes
    (the message the user sees); ``silent``: the error raised if the copy ends without a word
    (killed)."""

    def __init__(self, function: Callable, *args, wrap_error: Callable[[BaseException], MfcliError],
                 silent: Callable[[], MfcliError]):
        self.silent = silent
        pipe_read, pipe_write = os.pipe()
        pid = os.fork()
        if pid == 0:  # pragma: no cover (the child exits inside)
            os.close(pipe_read)
            _run_child(function, args, wrap_error, pipe_write)
        os.close(pipe_write)
        self.pid, self.pipe = pid, pipe_read

    def result(self):
        try:
            chunks = []
            while chunk := os.read(self.pipe, 1 << 16):
                chunks.append(chunk)
        except BaseException:
            self.cancel()
            raise
        self._close()
        if not chunks:
            raise self.silent()
        kind, value = pickle.loads(b"".join(chunks))
        if kind == "error":
            raise value
        return value

    def cancel(self) -> None:
        """Stop the forked process and wait for it (nothing if it has been waited for)."""
        if self.pid is None:
            return
        import signal

        try:
            os.kill(self.pid, signal.SIGTERM)
        except ProcessLookupError:  # pragma: no cover - it had already ended
            pass
        self._close()

    def _close(self) -> None:
        os.close(self.pipe)
        os.waitpid(self.pid, 0)
        self.pid = None


def _run_child(function: Callable, args: tuple, wrap_error, pipe_write: int) -> None:  # pragma: no cover
    """In the forked process: run ``function(*args)``, send the outcome through the pipe, exit
    without running the parent's exit handlers."""
    import signal

    status = 1
    try:
        for sig in (signal.SIGINT, signal.SIGTERM):  # the parent's handlers (clean-ups) are not ours to run
            signal.signal(sig, signal.SIG_DFL)
        try:
            outcome = ("ok", function(*args))
        except BaseException as exc:  # reported to the parent, which raises it there
            outcome = ("error", exc if isinstance(exc, MfcliError) else wrap_error(exc))
        payload = pickle.dumps(outcome)
        view = memoryview(payload)
        while view:
            view = view[os.write(pipe_write, view):]
        status = 0
    finally:
        os._exit(status)
