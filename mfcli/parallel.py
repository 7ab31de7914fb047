"""Work done by a forked copy of this process, beside this one: the pictures of `mfcli unmix`
(:mod:`mfcli.plotting.bundle`) and the refinement and abundances of some of its layers
(:mod:`mfcli.models.deep.finish`).

Their steps hold Python's lock (many small NumPy calls, drawing), so threads would take turns;
a forked copy runs on the second core and shares this process's memory (the data, the result)
copy-on-write, without copying or pickling it. Only its return value comes back, pickled,
through a pipe. Where the system cannot fork (not Linux: macOS forbids forking a process that
used system frameworks) or has one core, the callers do the work here instead.

The two processes share the work through a :class:`WorkQueue`: each takes the next item when it
is free, largest first, so they end together whatever each item costs on this machine (a split
made in advance from estimated costs left one process idle for a tenth of a second or more
where the estimates were off).
"""

from __future__ import annotations

import os
import pickle
import struct
import sys
from collections.abc import Callable, Iterable, Iterator

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


class WorkQueue:
    """Items taken one at a time, in the order given, by this process and its forked copies,
    whichever is free first. Made before forking: a pipe holds the items' positions (2 bytes
    each) and its writing end is closed at once; each take is one read of a position, which the
    system gives to one reader only, and a read past the last returns nothing. Iterate over it
    to take items until none is left."""

    MAX_ITEMS = 16384  # their positions fit in a pipe's buffer (64 KiB on Linux) with room to spare

    def __init__(self, items: Iterable):
        self.items = list(items)
        if len(self.items) > self.MAX_ITEMS:
            raise ValueError(f"a WorkQueue holds at most {self.MAX_ITEMS} items, not {len(self.items)}")
        read, write = os.pipe()
        try:
            payload = memoryview(b"".join(struct.pack("<H", position) for position in range(len(self.items))))
            while payload:
                payload = payload[os.write(write, payload):]
        except BaseException:
            os.close(read)
            raise
        finally:
            os.close(write)
        self._read: int | None = read

    def take(self) -> tuple[bool, object]:
        """(True, the next item), or (False, None) when every item has been taken."""
        if self._read is None:
            return False, None
        data = os.read(self._read, 2)
        if len(data) < 2:
            return False, None
        return True, self.items[struct.unpack("<H", data)[0]]

    def __iter__(self) -> Iterator:
        while True:
            taken, item = self.take()
            if not taken:
                return
            yield item

    def close(self) -> None:
        """Let go of this process's reading end (nothing more can be taken here)."""
        if self._read is not None:
            os.close(self._read)
            self._read = None


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
        # unpickled as it is read: the arrays sent back (protocol 5, each in one bytearray the
        # array then wraps) are the only copy held here, not also the payload's pieces and their join
        try:
            with os.fdopen(self.pipe, "rb", closefd=False) as stream:
                try:
                    outcome = pickle.load(stream)
                except (EOFError, pickle.UnpicklingError):  # nothing, or not all of it: the copy was killed
                    outcome = None
        except BaseException:
            self.cancel()
            raise
        self._close()
        if outcome is None:
            raise self.silent()
        kind, value = outcome
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
        payload = pickle.dumps(outcome, protocol=5)
        view = memoryview(payload)
        while view:
            view = view[os.write(pipe_write, view):]
        status = 0
    finally:
        os._exit(status)
