"""A dask.distributed cluster started in the test runs a factorization (API) and a deep unmix
(`mfcli unmix --engine dask --scheduler ADDRESS`), with the in-memory results."""

from __future__ import annotations

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")
pytest.importorskip("dask")
distributed = pytest.importorskip("distributed")


@pytest.fixture(scope="module")
def cluster():
    """One in-process worker with two threads: starts in about a second."""
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as local:
        with distributed.Client(local) as client:
            yield local, client


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    rng = np.random.default_rng(11)
    materials = rng.random((16, 3)) ** 2
    labels = rng.integers(0, 3, 2400)
    Y = materials[:, labels] * rng.uniform(0.5, 1.5, 2400) + 0.01 * rng.random((16, 2400))
    path = tmp_path_factory.mktemp("cluster") / "scene.h5"
    with h5py.File(path, "w") as f:
        f["Y"] = Y
        f["rows"], f["cols"] = 40, 60
    return path, Y


@pytest.mark.parametrize("persist", [True, False])
def test_nmf_on_a_distributed_cluster_gives_the_in_memory_result(cluster, scene, persist):
    """X held on the workers (futures made once) or read there at each pass; five chunks in
    one update block, so W^T X comes back in parts and X H^T waits for the block's H."""
    from mfcli.engines.dask import DaskMatrix
    from mfcli.engines.stream import H5Source
    from mfcli.models.nmf import nmf

    _, client = cluster
    path, Y = scene
    data = DaskMatrix.from_source(H5Source(str(path), "Y"), chunk_size=500, client=client, persist=persist)
    layer = nmf(data, 3, max_iter=20, tol=0, seed=1).layers[0]
    assert data.persisted is persist
    expected = nmf(Y, 3, max_iter=20, tol=0, seed=1).layers[0]
    np.testing.assert_allclose(layer.W, expected.W, rtol=1e-8, atol=1e-12)
    assert layer.relative_error == pytest.approx(expected.relative_error, rel=1e-10)


def test_mfcli_unmix_on_a_distributed_cluster(invoke, cluster, scene, tmp_path):
    from mfcli.io.result import read_result

    local, _ = cluster
    outputs = {}
    for name, options in (("memory", []), ("cluster", ["--engine", "dask", "--scheduler", local.scheduler_address,
                                                       "--chunk-size", "600"])):
        result = invoke("unmix", str(scene[0]), "--ranks", "3,2", "-p", "restarts=3", "--no-plots", "--refine", "none",
                        *options,
                        "-o", str(tmp_path / name), "--json")
        assert result.exit_code == 0, result.stderr
        outputs[name] = (json.loads(result.stdout), read_result(tmp_path / name / "result.h5"))
    (summary, result), (expected_summary, expected) = outputs["cluster"], outputs["memory"]
    assert summary["relative_error"]["global"] == pytest.approx(expected_summary["relative_error"]["global"], rel=1e-9)
    for layer, reference in zip(result.layers, expected.layers):
        np.testing.assert_array_equal(layer.assignments, reference.assignments)
        np.testing.assert_allclose(layer.abundances, reference.abundances, rtol=1e-7, atol=1e-10)
    assert result.image_shape == (40, 60)
