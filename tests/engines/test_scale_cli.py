"""`--engine memory|stream|dask`: the same seed gives the same result on every engine (factorize
nmf and onmf, unmix deep-onmf with block-wise abundances), and the one-line errors of the
engine options."""

from __future__ import annotations

import json

import numpy as np
import pytest

h5py = pytest.importorskip("h5py")

from mfcli.io.result import read_result  # noqa: E402

ENGINES = ["memory", "stream", "dask"]


def engines():
    try:
        import dask  # noqa: F401
    except ImportError:  # pragma: no cover - the dask extra is optional
        return ENGINES[:2]
    return ENGINES


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    """A 24-band, 60 x 50 pixel scene of 4 materials in the Urban_R162 HDF5 layout (scaled by
    maxValue, image shape stored beside Y), float64 and float32 copies."""
    rng = np.random.default_rng(7)
    materials = rng.random((24, 4)) ** 2
    abundances = rng.dirichlet(np.full(4, 0.3), 3000).T
    Y = materials @ abundances + 0.005 * rng.random((24, 3000))
    folder = tmp_path_factory.mktemp("scene")
    for name, dtype in (("scene64.h5", np.float64), ("scene32.h5", np.float32)):
        with h5py.File(folder / name, "w") as f:
            f.create_dataset("Y", data=(1000 * Y).astype(dtype), chunks=(24, 256))
            f["maxValue"], f["nRow"], f["nCol"] = 1000.0, 60, 50
    return folder


def run(invoke, *args):
    result = invoke(*args, "--json")
    assert result.exit_code == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize("model, extra", [("nmf", ()), ("nmf", ("-p", "solver=mu", "--init", "nndsvd")),
                                          ("onmf", ("-p", "screen_size=1000"))])
def test_factorize_gives_the_same_result_on_every_engine(invoke, scene, tmp_path, model, extra):
    results = {}
    for engine in engines():
        options = ["--engine", engine] + (["--chunk-size", "700"] if engine != "memory" else [])
        summary = run(invoke, "factorize", str(scene / "scene64.h5"), "-r", "4", "-m", model, *extra,
                      "--max-iter", "25", "--seed", "3", *options, "-o", str(tmp_path / f"{engine}.h5"))
        assert summary["engine"] == engine and summary["shape"] == [24, 3000]
        results[engine] = read_result(tmp_path / f"{engine}.h5")
    reference = results["memory"].layers[0]
    for engine, result in results.items():
        layer = result.layers[0]
        assert result.input["scale"] == 1000.0 and result.input["image_shape"] == [60, 50]
        assert layer.relative_error == pytest.approx(reference.relative_error, rel=1e-9)
        np.testing.assert_allclose(layer.W, reference.W, rtol=1e-7, atol=1e-10)
        np.testing.assert_allclose(layer.H, reference.H, rtol=1e-7, atol=1e-10)


def test_float32_engines_agree_to_float32_tolerance(invoke, scene, tmp_path):
    errors, bases = {}, {}
    for engine in engines():
        summary = run(invoke, "factorize", str(scene / "scene32.h5"), "-r", "4", "--max-iter", "15",
                      "--engine", engine, "-o", str(tmp_path / f"{engine}.h5"))
        assert summary["dtype"] == "float32"
        errors[engine] = summary["relative_error"]
        bases[engine] = read_result(tmp_path / f"{engine}.h5").layers[0].W
    for engine in errors:
        assert errors[engine] == pytest.approx(errors["memory"], rel=1e-4)
        np.testing.assert_allclose(bases[engine], bases["memory"], rtol=1e-3, atol=1e-4)


@pytest.mark.parametrize("abundances", ["nnls", "fcls"])
def test_unmix_same_hierarchy_and_block_wise_abundances_on_every_engine(invoke, scene, tmp_path, abundances):
    results = {}
    for engine in engines():
        options = ["--engine", engine] + (["--chunk-size", "450"] if engine != "memory" else [])
        summary = run(invoke, "unmix", str(scene / "scene64.h5"), "--ranks", "4,2", "--abundances", abundances,
                      "-p", "screen_size=1000", "-p", "restarts=3", "--no-plots", "--refine", "none", *options,
                      "-o", str(tmp_path / engine))
        results[engine] = (summary, read_result(tmp_path / engine / "result.h5"))
    reference_summary, reference = results["memory"]
    for engine, (summary, result) in results.items():
        assert summary["relative_error"]["global"] == pytest.approx(reference_summary["relative_error"]["global"],
                                                                     rel=1e-9)
        assert [entry["sizes"] for entry in summary["layers"]] == [entry["sizes"] for entry in reference_summary["layers"]]
        for layer, expected in zip(result.layers, reference.layers):
            assert layer.attrs["abundances"] == abundances
            np.testing.assert_array_equal(layer.assignments, expected.assignments)
            np.testing.assert_allclose(layer.abundances, expected.abundances, rtol=1e-7, atol=1e-9)
            if abundances == "fcls":
                np.testing.assert_allclose(layer.abundances.sum(axis=0), 1.0, atol=1e-9)


def test_unmix_on_the_stream_engine_draws_no_pictures_and_says_how(invoke, scene, tmp_path):
    result = invoke("unmix", str(scene / "scene32.h5"), "--ranks", "3,2", "--engine", "stream", "--max-iter", "2",
                    "-p", "restarts=2", "-o", str(tmp_path / "out"), "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["files"] == ["result.h5", "hierarchy.json", "hierarchy.nwk", "hierarchy.dot"]
    assert "No pictures with --engine stream" in result.stderr and "plot-abundances" in result.stderr
    assert read_result(tmp_path / "out" / "result.h5").layers[0].abundances.dtype == np.float32


def test_negative_and_nonfinite_values_are_checked_on_the_stream(invoke, tmp_path):
    X = np.random.default_rng(8).random((6, 400))
    X[2, 7] = -0.25
    with h5py.File(tmp_path / "neg.h5", "w") as f:
        f["Y"] = X
        nan = X.copy()
        nan[0, 0] = np.nan
        f["nan"] = nan
    refused = invoke("factorize", str(tmp_path / "neg.h5"), "-r", "2", "--engine", "stream", "-o", str(tmp_path / "a.h5"))
    assert refused.exit_code == 1 and "1 negative values (minimum -0.25)" in refused.stderr
    refused = invoke("factorize", f"{tmp_path / 'neg.h5'}:nan", "-r", "2", "--engine", "stream", "-o",
                     str(tmp_path / "a.h5"))
    assert refused.exit_code == 1 and "1 non-finite values (1 NaN, 0 Inf)" in refused.stderr
    clipped = {}
    for engine in ("memory", "stream"):
        result = invoke("factorize", str(tmp_path / "neg.h5"), "-r", "2", "--engine", engine, "--clip-negative",
                        "--max-iter", "10", "-o", str(tmp_path / f"{engine}.h5"))
        assert result.exit_code == 0 and "set 1 negative values to 0" in result.stderr
        clipped[engine] = read_result(tmp_path / f"{engine}.h5").layers[0].W
    np.testing.assert_allclose(clipped["stream"], clipped["memory"], rtol=1e-8)


@pytest.mark.parametrize("args, words", [
    (["--engine", "stream", "-m", "minvol"], "needs the data in memory"),
    (["--scheduler", "tcp://127.0.0.1:1"], "--scheduler applies to --engine dask"),
    (["--chunk-size", "100"], "--chunk-size applies to --engine stream or dask"),
    (["--engine", "stream", "--device", "cuda"], "applies to --engine memory"),
])
def test_engine_option_mistakes_are_one_line_errors(invoke, scene, tmp_path, args, words):
    result = invoke("factorize", str(scene / "scene32.h5"), "-r", "2", *args, "-o", str(tmp_path / "x.h5"))
    assert result.exit_code == 1
    assert words in result.stderr and result.stderr.count("\n") == 1 and result.stdout == ""
    assert not (tmp_path / "x.h5").exists()


def test_csv_input_on_the_stream_engine_says_what_to_do(invoke, tmp_path):
    np.savetxt(tmp_path / "x.csv", np.ones((3, 5)), delimiter=",")
    result = invoke("factorize", str(tmp_path / "x.csv"), "-r", "1", "--engine", "stream", "-o", str(tmp_path / "x.h5"))
    assert result.exit_code == 1 and "use --engine memory, or convert it first" in result.stderr


def test_dask_engine_without_dask_says_how_to_install_it(invoke, scene, tmp_path, monkeypatch):
    import sys

    for name in [name for name in sys.modules if name == "dask" or name.startswith("dask.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "dask", None)  # import dask now raises ImportError
    result = invoke("factorize", str(scene / "scene32.h5"), "-r", "2", "--engine", "dask", "-o", str(tmp_path / "x.h5"))
    assert result.exit_code == 1
    assert "--engine dask needs the optional package 'dask'" in result.stderr
    assert "pip install 'mfcli[dask]'" in result.stderr


def test_device_cuda_runs_the_torch_engine(invoke, scene, tmp_path, monkeypatch):
    """--device cuda goes through TorchMatrix; here on CPU tensors (no GPU where tests run)."""
    pytest.importorskip("torch")
    import mfcli.engines.gpu as gpu

    monkeypatch.setattr(gpu, "check_device", lambda device: device)
    real = gpu.TorchMatrix
    monkeypatch.setattr(gpu, "TorchMatrix", lambda X, device: real(X, "cpu"))
    on_torch = run(invoke, "factorize", str(scene / "scene64.h5"), "-r", "3", "--max-iter", "10", "--device", "cuda",
                   "-o", str(tmp_path / "t.h5"))
    in_numpy = run(invoke, "factorize", str(scene / "scene64.h5"), "-r", "3", "--max-iter", "10",
                   "-o", str(tmp_path / "n.h5"))
    assert on_torch["relative_error"] == pytest.approx(in_numpy["relative_error"], rel=1e-9)


def test_result_writer_adds_layer_arrays_block_by_block_and_leaves_nothing_on_failure(tmp_path):
    from mfcli.io.result import result_writer, write_result
    from mfcli.result import Layer, Result

    rng = np.random.default_rng(9)
    result = Result(model="nmf", layers=[Layer(W=rng.random((5, 2)), H=rng.random((2, 1000)))])
    maps = rng.random((2, 1000)).astype(np.float32)
    with result_writer(result, tmp_path / "r.h5") as out:
        writer = out.layer_array(1, "abundances", (2, 1000), np.float32)
        for start in range(0, 1000, 300):
            writer.write(start, min(start + 300, 1000), maps[:, start:start + 300])
        with pytest.raises(ValueError):
            out.layer_array(1, "not_a_layer_array", (2, 1000), np.float32)
    back = read_result(tmp_path / "r.h5")
    np.testing.assert_array_equal(back.layers[0].abundances, maps)
    np.testing.assert_array_equal(back.layers[0].H, result.layers[0].H)
    write_result(result, tmp_path / "whole.h5")
    with h5py.File(tmp_path / "r.h5", "r") as a, h5py.File(tmp_path / "whole.h5", "r") as b:
        assert set(a["layers/1"]) == set(b["layers/1"]) | {"abundances"}
    with pytest.raises(RuntimeError), result_writer(result, tmp_path / "failed.h5") as out:
        out.layer_array(1, "abundances", (2, 1000), np.float32).write(0, 10, maps[:, :10])
        raise RuntimeError("interrupted")
    assert sorted(path.name for path in tmp_path.iterdir()) == ["r.h5", "whole.h5"]
