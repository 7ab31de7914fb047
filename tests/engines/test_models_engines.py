"""The solvers run unchanged on the streamed-HDF5 and Dask engines and give the in-memory results."""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from mfcli.engines.stream import H5Source, StreamedMatrix  # noqa: E402
from mfcli.models.deep import deep_factorize  # noqa: E402
from mfcli.models.nmf import nmf  # noqa: E402
from mfcli.models.onmf import onmf  # noqa: E402
from mfcli.models.svd import svd  # noqa: E402


@pytest.fixture(scope="module")
def stored(tmp_path_factory):
    rng = np.random.default_rng(3)
    W = rng.random((20, 4)) ** 2
    labels = rng.integers(0, 4, 700)
    X = W[:, labels] * rng.uniform(0.5, 1.5, 700) + 0.01 * rng.random((20, 700))
    path = tmp_path_factory.mktemp("engines") / "x.h5"
    with h5py.File(path, "w") as f:
        f.create_dataset("X", data=X, chunks=(20, 64))
    return path, X


def canonical(labels):
    """Cluster labels renumbered by first appearance (equal partitions give equal arrays)."""
    order = {}
    return np.array([order.setdefault(int(k), len(order)) for k in labels])


def engines(path):
    yield StreamedMatrix(H5Source(str(path), "X"), chunk_size=128)
    if importlib.util.find_spec("dask") is None:  # the dask extra is optional: the stream checks still ran
        return
    from mfcli.engines.dask import DaskMatrix

    yield DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=150)  # held in memory
    yield DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=300, persist=False)  # read at each pass


@pytest.mark.parametrize("solver", ["hals", "mu"])
def test_nmf_same_on_every_engine(stored, solver):
    path, X = stored
    reference = nmf(X, 4, solver=solver, init="spa", max_iter=15, tol=0).layers[0]
    for engine in engines(path):
        layer = nmf(engine, 4, solver=solver, init="spa", max_iter=15, tol=0).layers[0]
        np.testing.assert_allclose(layer.W, reference.W, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(layer.H, reference.H, rtol=1e-7, atol=1e-10)
        assert layer.relative_error == pytest.approx(reference.relative_error, rel=1e-8)


def test_onmf_and_svd_same_on_every_engine(stored):
    path, X = stored
    reference = onmf(X, 4, restarts=3, screen_size=300, seed=2).layers[0]
    singular = svd(X, 3).layers[0].arrays["singular_values"]
    for engine in engines(path):
        layer = onmf(engine, 4, restarts=3, screen_size=300, seed=2).layers[0]
        np.testing.assert_array_equal(canonical(layer.assignments), canonical(reference.assignments))
        assert layer.relative_error == pytest.approx(reference.relative_error, rel=1e-8)
        np.testing.assert_allclose(svd(engine, 3).layers[0].arrays["singular_values"], singular, rtol=1e-8)


def test_deep_onmf_same_on_every_engine(stored):
    path, X = stored
    reference = deep_factorize(X, [4, 3, 2], "deep-onmf", seed=1)
    for engine in engines(path):
        result = deep_factorize(engine, [4, 3, 2], "deep-onmf", seed=1)
        np.testing.assert_allclose(result.history["global_loss"], reference.history["global_loss"], rtol=1e-8)
        # the same partition of the columns at every layer (cluster numbers may differ when
        # starts tie to rounding)
        for level in range(3):
            composite_a, composite_b = result.layers[0].assignments, reference.layers[0].assignments
            for upper in range(1, level + 1):
                composite_a = result.layers[upper].assignments[composite_a]
                composite_b = reference.layers[upper].assignments[composite_b]
            np.testing.assert_array_equal(canonical(composite_a), canonical(composite_b))


def test_beta_nmf_on_the_streamed_engine(stored):
    path, X = stored
    reference = nmf(X, 3, loss="kl", max_iter=5, tol=0).layers[0]
    layer = nmf(StreamedMatrix(H5Source(str(path), "X"), chunk_size=100), 3, loss="kl", max_iter=5, tol=0).layers[0]
    np.testing.assert_allclose(layer.W, reference.W, rtol=1e-8)


PASSES_PER_ITERATION = [  # what the docstrings promise on a streaming engine
    ("nmf hals", lambda X, k: nmf(X, 4, init="spa", max_iter=k, tol=0), 1),
    ("nmf mu", lambda X, k: nmf(X, 4, solver="mu", init="spa", max_iter=k, tol=0), 1),
    ("nmf kl", lambda X, k: nmf(X, 4, loss="kl", init="spa", max_iter=k, tol=0), 2),
    ("onmf", lambda X, k: onmf(X, 4, init="spa", max_iter=k, tol=0), 1),
    ("svd", lambda X, k: svd(X, 4, max_iter=k, tol=0), 1),
    ("deep-onmf", lambda X, k: deep_factorize(X, [4, 3, 2], "deep-onmf", init="spa", max_iter=k, tol=0), 1),
    ("deep-nmf", lambda X, k: deep_factorize(X, [4, 3, 2], "deep-nmf", max_iter=k, tol=0), 1),
    ("deep-nmf layers", lambda X, k: deep_factorize(X, [4, 3, 2], "deep-nmf", loss="layers", max_iter=k, tol=0), 2),
]


def pass_counting_engine(name, path):
    if name == "stream":
        return StreamedMatrix(H5Source(str(path), "X"), chunk_size=128)
    pytest.importorskip("dask")
    from mfcli.engines.dask import DaskMatrix

    return DaskMatrix.from_source(H5Source(str(path), "X"), chunk_size=128, persist=False)


@pytest.mark.parametrize("engine_name", ["stream", "dask"])
@pytest.mark.parametrize("name, run, per_iteration", PASSES_PER_ITERATION, ids=[p[0] for p in PASSES_PER_ITERATION])
def test_streamed_passes_per_iteration(stored, name, run, per_iteration, engine_name):
    """Each iteration (each sweep of a deep model) reads the streamed file as often as documented
    (Dask: each pass over X, the file read when X is not held): three more iterations, three
    times that many more passes."""
    path, _ = stored
    counts = []
    for iterations in (3, 6):
        engine = pass_counting_engine(engine_name, path)
        run(engine, iterations)
        counts.append(engine.passes)
    assert counts[1] - counts[0] == 3 * per_iteration, counts
