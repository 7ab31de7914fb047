"""`mfcli unmix` holds the data about once (issue 19, item 4): the loader divides a stored scale
out in place, the abundances are solved block of columns by block, and the data are let go
before the result file is written. Peaks measured with tracemalloc (NumPy reports its buffers)."""

from __future__ import annotations

import gc
import tracemalloc
import weakref

import numpy as np

import mfcli.models.matrix as matrix
from mfcli.models.deep import layer_abundances
from mfcli.result import Layer, Result


def traced_peak(function, *args, **kwargs):
    """(return value, peak bytes allocated above what was allocated before the call)."""
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        tracemalloc.reset_peak()
        value = function(*args, **kwargs)
        return value, tracemalloc.get_traced_memory()[1] - before
    finally:
        tracemalloc.stop()


def test_a_stored_scale_is_divided_out_without_a_copy(tmp_path):
    import scipy.io

    from mfcli.io import load_dataset

    rng = np.random.default_rng(0)
    Y = (1000 * rng.random((150, 60000))).astype(np.float32)  # 36 MB: the reader's own buffers (a few MB) are small beside it
    scipy.io.savemat(tmp_path / "scaled.mat", {"Y": Y, "maxValue": np.array([[1000.0]])})
    dataset, peak = traced_peak(load_dataset, str(tmp_path / "scaled.mat"))
    np.testing.assert_array_equal(dataset.X, Y / np.float32(1000.0))  # the same values as a division into a copy
    assert peak < 1.5 * Y.nbytes, f"loading peaked at {peak / Y.nbytes:.2f}x the data"


def test_abundances_work_memory_does_not_grow_with_the_pixels(monkeypatch):
    """Beyond the abundance maps themselves, the solver's float64 work arrays are those of one
    block of columns: four times the pixels, about the same extra memory."""
    import mfcli.models.deep.abundances as abundances

    monkeypatch.setattr(matrix, "UPDATE_BLOCK_BYTES", 1 << 18)
    monkeypatch.setattr(abundances, "ABUNDANCE_WORK_BYTES", 1 << 18)
    rng = np.random.default_rng(1)
    basis = rng.random((40, 5))
    extra = []
    for n in (20000, 80000):
        X = (basis @ rng.dirichlet(np.ones(5), n).T + 0.01 * rng.random((40, n))).astype(np.float32)
        result = Result(model="test", layers=[Layer(W=basis.astype(np.float32), H=np.zeros((5, n), np.float32))])
        _, peak = traced_peak(layer_abundances, result, X)
        extra.append(peak - result.layers[0].abundances.nbytes)
    assert extra[1] < 1.5 * extra[0] + (1 << 20), f"extra memory {extra[0] >> 10} KiB at 20000 pixels, " \
                                                    f"{extra[1] >> 10} KiB at 80000"


def test_abundances_by_blocks_are_the_abundances_of_all_columns(monkeypatch):
    from mfcli.models.deep import soft_abundances

    rng = np.random.default_rng(2)
    basis = rng.random((30, 4))
    X = basis @ rng.dirichlet(np.ones(4), 5000).T + 0.02 * rng.random((30, 5000))
    import mfcli.models.deep.abundances as abundances

    monkeypatch.setattr(matrix, "UPDATE_BLOCK_BYTES", 1 << 16)
    monkeypatch.setattr(abundances, "ABUNDANCE_WORK_BYTES", 1 << 16)
    result = Result(model="test", layers=[Layer(W=basis, H=np.zeros((4, 5000)))])
    layer_abundances(result, X)
    np.testing.assert_allclose(result.layers[0].abundances, soft_abundances(basis, X), rtol=0, atol=1e-10)


def test_unmix_lets_the_data_go_before_writing_the_result(invoke, monkeypatch, tmp_path):
    import mfcli.cli.options as options
    import mfcli.io.result as result_io

    alive = {}
    load_input = options.load_input

    def watched_load(*args, **kwargs):
        dataset = load_input(*args, **kwargs)
        alive["X"] = weakref.ref(dataset.X)
        return dataset

    writer = result_io.result_writer

    def watched_writer(*args, **kwargs):
        gc.collect()
        alive["at_write"] = alive["X"]() is not None
        return writer(*args, **kwargs)

    monkeypatch.setattr(options, "load_input", watched_load)
    monkeypatch.setattr(result_io, "result_writer", watched_writer)
    done = invoke("-q", "unmix", "sample:samson", "--ranks", "3,2", "-o", str(tmp_path / "out"), "--no-plots",
                  "--max-iter", "3")
    assert done.exit_code == 0, done.stderr
    assert alive["at_write"] is False


def test_urban_sample_is_built_without_a_second_image_of_noise():
    """sample:urban's noise is drawn a few rows at a time: the same image as one draw of it, and
    no noise array of the image's size."""
    import scipy.io

    from mfcli.io.samples import URBAN_NOISE, URBAN_SCALE, URBAN_SEED, build_urban, sample_path

    truth = scipy.io.loadmat(sample_path("urban"))
    built, peak = traced_peak(build_urban, truth)
    M, A = np.asarray(truth["M"], np.float32), np.asarray(truth["A"], np.float32)
    one_draw = M @ A + np.float32(URBAN_NOISE) * np.random.default_rng(URBAN_SEED).standard_normal(
        (M.shape[0], A.shape[1]), dtype=np.float32)
    np.testing.assert_array_equal(built["Y"], np.maximum(one_draw, 0) * np.float32(URBAN_SCALE))
    assert peak < 1.3 * built["Y"].nbytes + M.nbytes + A.nbytes
