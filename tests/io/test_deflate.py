"""mfcli.io.deflate: zlib streams that any reader inflates, with ISA-L or with zlib."""

from __future__ import annotations

import zlib

import numpy as np
import pytest

from mfcli.io import deflate as deflate_module


@pytest.mark.parametrize("engine", ["default", "zlib"])
@pytest.mark.parametrize("run_length", [False, True])
def test_deflated_data_inflate_back_with_zlib(monkeypatch, engine, run_length):
    if engine == "zlib":
        monkeypatch.setattr(deflate_module, "_isal", None)
    rng = np.random.default_rng(0)
    values = np.where(rng.random(50_000) < 0.5, 0.0, rng.random(50_000)).astype(np.float32)
    shuffled = values.view(np.uint8).reshape(-1, 4).T.tobytes()  # as HDF5's shuffle filter lays it out
    packed = deflate_module.deflate(shuffled, run_length=run_length)
    assert zlib.decompress(packed) == shuffled
    assert len(packed) < 0.8 * len(shuffled)  # the zeros compress


def test_a_result_file_written_with_either_engine_reads_back(monkeypatch, tmp_path):
    import h5py

    from mfcli.io.result import _write_compressed

    array = np.random.default_rng(1).random((3, 300_000)).astype(np.float32)
    for engine in ("default", "zlib"):
        if engine == "zlib":
            monkeypatch.setattr(deflate_module, "_isal", None)
        with h5py.File(tmp_path / f"{engine}.h5", "w") as handle:
            _write_compressed(handle, "values", array)
        with h5py.File(tmp_path / f"{engine}.h5", "r") as handle:  # inflated by HDF5's own filter
            np.testing.assert_array_equal(handle["values"][()], array)
            assert handle["values"].compression == "gzip" and handle["values"].shuffle
