"""mfcli.parallel: work shared with a forked copy of the process."""

from __future__ import annotations

import time

import pytest

from mfcli.parallel import ForkedCall, WorkQueue, can_fork

needs_fork = pytest.mark.skipif(not can_fork(), reason="this system cannot fork a copy of the process (Linux with 2 cores)")


def _take_slowly(queue: WorkQueue, seconds: float) -> list:
    taken = []
    for item in queue:
        taken.append(item)
        time.sleep(seconds)
    return taken


@needs_fork
def test_a_work_queue_gives_every_item_once_to_whichever_process_is_free():
    items = [f"item{index}" for index in range(12)]
    queue = WorkQueue(items)
    theirs = ForkedCall(_take_slowly, queue, 0.02, wrap_error=RuntimeError, silent=lambda: RuntimeError("silent"))
    mine = _take_slowly(queue, 0.02)
    queue.close()
    taken = theirs.result()
    assert sorted(mine + taken) == sorted(items)  # every item once
    assert mine and taken  # both took part
    assert mine == sorted(mine, key=items.index) and taken == sorted(taken, key=items.index)  # in order


def test_a_work_queue_without_a_fork_gives_the_items_in_order():
    queue = WorkQueue(["a", None, "c"])
    assert list(queue) == ["a", None, "c"]
    assert queue.take() == (False, None) and list(queue) == []
    queue.close()
    assert queue.take() == (False, None)
    assert list(WorkQueue([])) == []
    with pytest.raises(ValueError, match="at most"):
        WorkQueue(range(WorkQueue.MAX_ITEMS + 1))


def _killed_while_sending():
    import os
    import signal

    os.kill(os.getpid(), signal.SIGKILL)


def _fails():
    raise KeyError("boom")


def _large():
    import numpy as np

    return {"array": np.arange(3_000_000, dtype=np.float32)}


@needs_fork
def test_a_forked_call_returns_large_arrays_raises_the_copys_errors_and_notices_a_killed_copy():
    import numpy as np

    value = ForkedCall(_large, wrap_error=RuntimeError, silent=lambda: RuntimeError("silent")).result()
    np.testing.assert_array_equal(value["array"], np.arange(3_000_000, dtype=np.float32))
    with pytest.raises(RuntimeError, match="wrapped: 'boom'"):
        ForkedCall(_fails, wrap_error=lambda exc: RuntimeError(f"wrapped: {exc}"),
                   silent=lambda: RuntimeError("silent")).result()
    with pytest.raises(RuntimeError, match="^silent$"):
        ForkedCall(_killed_while_sending, wrap_error=RuntimeError, silent=lambda: RuntimeError("silent")).result()
