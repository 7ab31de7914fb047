"""The streaming engine's memory stays bounded: with ten times the columns, the peak grows by the
solver's r x n factors only, not by the m x n data (measured in a fresh subprocess per size)."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

M, RANK, N_SMALL, N_LARGE = 200, 4, 20_000, 200_000

CHILD = """
import json, sys, tracemalloc
from mfcli.engines.stream import H5Source, StreamedMatrix
from mfcli.models.nmf import nmf

def status(key):
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))

data = StreamedMatrix(H5Source(sys.argv[1], "X"), chunk_size=4096)
baseline = status("VmRSS")
tracemalloc.start()
result = nmf(data, int(sys.argv[2]), init="spa", max_iter=3, tol=0)
print(json.dumps({"numpy_peak": tracemalloc.get_traced_memory()[1], "rss_peak": status("VmHWM"),
                  "rss_baseline": baseline, "error": result.relative_error}))
"""


def write_matrix(path, n, block=20_000):
    """A nonnegative float32 M x n matrix written block by block (never whole in memory)."""
    rng = np.random.default_rng(n)
    basis = rng.random((M, RANK)).astype(np.float32)
    with h5py.File(path, "w") as f:
        dataset = f.create_dataset("X", shape=(M, n), dtype=np.float32, chunks=(M, 2048))
        for start in range(0, n, block):
            stop = min(start + block, n)
            dataset[:, start:stop] = basis @ rng.random((RANK, stop - start), dtype=np.float32)


# glibc otherwise raises its mmap threshold as large blocks are freed, and then keeps freed
# blocks in the heap: the RSS peak would depend on allocation history, not on what is live.
ENV = {**os.environ, "MALLOC_MMAP_THRESHOLD_": str(1 << 20)}


def measure(path) -> dict:
    done = subprocess.run([sys.executable, "-c", CHILD, str(path), str(RANK)], capture_output=True, text=True,
                          env=ENV, timeout=300, check=True)
    return json.loads(done.stdout)


@pytest.mark.slow
def test_streamed_nmf_memory_grows_with_the_factors_not_the_data(tmp_path):
    write_matrix(tmp_path / "small.h5", N_SMALL)
    write_matrix(tmp_path / "large.h5", N_LARGE)
    small, large = measure(tmp_path / "small.h5"), measure(tmp_path / "large.h5")
    added_columns = N_LARGE - N_SMALL
    data_growth = M * added_columns * 4                     # what holding X would add: 144 MB
    factor_growth = RANK * added_columns * 4                # one r x n float32 array: 2.9 MB
    numpy_growth = large["numpy_peak"] - small["numpy_peak"]
    # HALS with extrapolation keeps four r x n iterates, plus n-vectors of norms and residuals
    assert numpy_growth < 6 * factor_growth + 4 * 8 * added_columns, (small, large)
    assert numpy_growth < data_growth / 4, (small, large)  # measured: about data_growth / 8.2
    rss_growth = (large["rss_peak"] - large["rss_baseline"]) - (small["rss_peak"] - small["rss_baseline"])
    assert rss_growth < data_growth / 4, (small, large)
    assert large["error"] < 0.1  # it did factorize (three iterations from SPA)
