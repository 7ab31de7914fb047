"""The Python API (mfcli.api): docs/api.md runs as written, the API gives the CLI's results,
sparse data stay sparse, unknown parameters are refused, nothing given is modified."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import scipy.sparse

import mfcli
from mfcli.errors import DataError, MfcliError, ParameterError
from mfcli.io.result import read_result

REPO = Path(__file__).resolve().parents[2]


def doc_blocks() -> list[str]:
    return re.findall(r"```python\n(.*?)```", (REPO / "docs" / "api.md").read_text(), re.S)


@pytest.mark.slow
def test_docs_api_walkthrough_runs_in_order(tmp_path, monkeypatch):
    blocks = doc_blocks()
    assert len(blocks) >= 8
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    for number, block in enumerate(blocks, start=1):
        exec(compile(block, f"docs/api.md block {number}", "exec"), namespace)
    assert (tmp_path / "samson-run" / "hierarchy.json").exists()
    assert read_result(tmp_path / "samson-nmf.h5").model == "nmf"


def test_import_mfcli_stays_light():
    code = ("import sys, mfcli; heavy = [m for m in ('matplotlib', 'click', 'rich', 'sklearn', 'h5py', 'torch', "
            "'numpy') if m in sys.modules]; print(heavy); mfcli.factorize; "
            "print([m for m in ('matplotlib', 'click', 'rich', 'sklearn') if m in sys.modules])")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert done.stdout.split("\n")[:2] == ["[]", "[]"], done.stdout


# -- the API gives what the CLI gives ------------------------------------------------------------

def same_results(a, b) -> None:
    """Every stored array and value of two results equal, provenance and timings aside."""
    assert a.model == b.model and a.ranks == b.ranks
    assert a.n_iter == b.n_iter and a.converged == b.converged
    assert json.dumps(a.params, sort_keys=True, default=str) == json.dumps(b.params, sort_keys=True, default=str)
    assert a.summary.keys() == b.summary.keys()
    for key in a.input.keys() | b.input.keys():
        left, right = a.input.get(key), b.input.get(key)
        if isinstance(left, np.ndarray) or isinstance(right, np.ndarray):
            np.testing.assert_array_equal(left, right)
        else:
            assert left == right, key
    for x, y in zip(a.layers, b.layers):
        for name in ("W", "H", "basis", "coefficients", "abundances"):
            left, right = getattr(x, name), getattr(y, name)
            assert (left is None) == (right is None), name
            if left is not None:
                np.testing.assert_array_equal(left, right, err_msg=name)
        assert x.relative_error == y.relative_error
        assert x.labels == y.labels


@pytest.mark.parametrize("model, options, params", [
    ("nmf", ["--init", "spa", "--max-iter", "30"], {"init": "spa", "max_iter": 30}),
    ("nsnmf", ["-p", "theta=0.3", "--tol", "0"], {"theta": 0.3, "tol": 0}),
    ("nmf", ["--loss", "kl", "--max-iter", "20", "--dtype", "float32"], {"loss": "kl", "max_iter": 20,
                                                                        "dtype": "float32"}),
])
def test_factorize_equals_the_cli(invoke, small_csv, tmp_path, model, options, params):
    path, _ = small_csv
    out = tmp_path / "cli.h5"
    done = invoke("factorize", str(path), "-r", "3", "-m", model, "--seed", "5", *options, "-o", str(out))
    assert done.exit_code == 0, done.stderr
    mfcli.factorize(str(path), 3, model=model, seed=5, **params).save(tmp_path / "api.h5")
    same_results(read_result(out), read_result(tmp_path / "api.h5"))


def test_factorize_of_an_array_equals_that_of_its_file(small_csv):
    path, X = small_csv
    from_file = mfcli.factorize(str(path), 3, seed=1, max_iter=20)
    from_array = mfcli.factorize(X, 3, seed=1, max_iter=20)
    np.testing.assert_array_equal(from_file.layers[0].W, from_array.layers[0].W)
    np.testing.assert_array_equal(from_file.layers[0].H, from_array.layers[0].H)


@pytest.mark.slow
def test_unmix_and_its_folder_equal_the_cli(invoke, tmp_path):
    args = ["--ranks", "3,2", "--seed", "2", "--max-iter", "5"]
    done = invoke("unmix", "sample:samson", *args, "--truth", "sample:samson", "--no-plots", "-o",
                  str(tmp_path / "cli"), "--json")
    assert done.exit_code == 0, done.stderr
    result = mfcli.unmix("sample:samson", [3, 2], seed=2, max_iter=5, truth="sample:samson")
    files = mfcli.write_unmix_folder(result, tmp_path / "api", pictures=False)
    assert files == json.loads(done.stdout)["files"]
    same_results(read_result(tmp_path / "cli" / "result.h5"), mfcli.load_result(tmp_path / "api"))
    for name in ("hierarchy.json", "hierarchy.nwk", "hierarchy.dot"):
        assert (tmp_path / "cli" / name).read_text() == (tmp_path / "api" / name).read_text()


def test_evaluate_equals_evaluate_json(invoke, tmp_path):
    out = tmp_path / "samson.h5"
    mfcli.factorize("sample:samson", 3, init="spa", max_iter=10, seed=0).save(out)
    for args, kwargs in [((), {}), (("--abundances", "fcls"), {"abundances": "fcls"}),
                         (("--match", "abundance"), {"match": "abundance"})]:
        done = invoke("evaluate", str(out), "--truth", "sample:samson", *args, "--json")
        assert done.exit_code == 0, done.stderr
        from mfcli.cli.console import _finite_or_null
        from mfcli.io.result import to_json

        document = _finite_or_null(json.loads(to_json(mfcli.evaluate(str(out), "sample:samson", **kwargs))))
        assert document == json.loads(done.stdout)
        assert document["mean_sad"] == pytest.approx(np.mean([entry["sad"] for entry in document["matching"]
                                                              if entry["sad"] is not None]))


def test_evaluate_mean_sad_against_an_independent_computation():
    result = mfcli.factorize("sample:samson", 3, init="spa", max_iter=10, seed=0)
    truth = mfcli.open_data("sample:samson").extras["GT"]  # materials x bands
    E = result.layers[0].W
    T = np.asarray(truth, dtype=np.float64).T
    cosines = (T.T @ E) / np.outer(np.linalg.norm(T, axis=0), np.linalg.norm(E, axis=0))
    angles = np.degrees(np.arccos(np.clip(cosines, -1, 1)))
    from itertools import permutations

    best = min(np.mean([angles[i, p[i]] for i in range(3)]) for p in permutations(range(3)))
    assert mfcli.evaluate(result, "sample:samson")["mean_sad"] == pytest.approx(best, rel=1e-5)  # float32 data


def test_complete_equals_complete_json(invoke, tmp_path):
    done = invoke("complete", "sample:survey-ratings", "-m", "als", "-r", "3", "--seed", "4", "--top-k", "3",
                  "--json", "-o", str(tmp_path / "cli.h5"))
    assert done.exit_code == 0, done.stderr
    fit = mfcli.complete("sample:survey-ratings", "als", rank=3, seed=4, top_k=3)
    expected = json.loads(done.stdout)
    got = json.loads(json.dumps(fit.summary))
    for key in ("seconds", "output"):
        expected.pop(key, None), got.pop(key, None)
    assert got == expected
    fit.save(tmp_path / "api.h5")
    a, b = read_result(tmp_path / "cli.h5"), read_result(tmp_path / "api.h5")
    for x, y in zip(a.layers, b.layers):
        np.testing.assert_array_equal(x.W, y.W)
        np.testing.assert_array_equal(x.H, y.H)


def test_complete_without_a_test_split_trains_on_every_rating(tmp_path):
    from mfcli.io.ratings import read_ratings

    everything = len(read_ratings("sample:survey-ratings"))
    fit = mfcli.complete("sample:survey-ratings", "als", rank=2, test_fraction=0)
    assert fit.summary["n_train"] == everything and fit.summary["n_test"] == 0
    assert fit.summary["rmse"] is None and "ranking" not in fit.summary
    fit.save(tmp_path / "all.h5")
    assert mfcli.load_result(tmp_path / "all.h5").model == "als"
    with pytest.raises(ParameterError, match="need a test split"):
        mfcli.complete("sample:survey-ratings", "als", test_fraction=0, holdout_rows=0.2)


def test_complete_takes_triplets_and_refuses_parameters_its_model_has_not():
    rng = np.random.default_rng(0)
    users, items = np.repeat(np.arange(20), 6), np.tile(np.arange(6), 20)
    fit = mfcli.complete((users, items, rng.integers(1, 6, users.size).astype(float)), "als", rank=2)
    assert fit.summary["n_train"] + fit.summary["n_test"] == users.size
    with pytest.raises(ParameterError, match="'lr'.*reg"):
        mfcli.complete("sample:survey-ratings", "als", lr=0.1)
    with pytest.raises(ParameterError, match="rank must be"):
        mfcli.complete("sample:survey-ratings", "als", rank=0)


# -- sparse ------------------------------------------------------------------------------------

@pytest.fixture
def no_densifying(monkeypatch):
    """Densifying a scipy.sparse matrix of more than 6000 entries (a tenth of the 300 x 200 test
    matrices) fails the test; a few columns (a start's pixels) may be densified."""
    from scipy.sparse import _base, _compressed, _coo

    classes = [getattr(_base, "_spbase", None), getattr(_compressed, "_cs_matrix", None),
               getattr(_coo, "_coo_base", None), getattr(_coo, "coo_matrix", None)]
    for cls in filter(None, classes):
        for name in ("toarray", "todense"):
            if name in vars(cls):
                original = vars(cls)[name]

                def refuse(self, *args, _original=original, **kwargs):
                    if self.shape[0] * self.shape[1] > 6000:
                        raise AssertionError(f"a {self.shape[0]} x {self.shape[1]} sparse matrix was densified")
                    return _original(self, *args, **kwargs)

                monkeypatch.setattr(cls, name, refuse)


def sparse_counts(shape=(300, 200), density=0.02, seed=0):
    return scipy.sparse.random(*shape, density=density, format="csr", random_state=seed, dtype=np.float64)


@pytest.mark.parametrize("model", ["nmf", "onmf", "aonmf", "semi-nmf", "sparse-nmf", "nsnmf", "aa", "svd"])
@pytest.mark.parametrize("layout", ["csr", "csc"])
def test_the_nmf_family_never_densifies_a_sparse_matrix(no_densifying, model, layout):
    X = sparse_counts().asformat(layout)
    result = mfcli.factorize(X, 4, model=model, seed=0, max_iter=5)
    assert result.layers[0].W.shape == (300, 4) and result.input["shape"] == [300, 200]


def test_sparse_and_dense_give_the_same_factorization():
    X = sparse_counts()
    from_sparse = mfcli.factorize(X, 4, seed=0, max_iter=20)
    with np.errstate(all="ignore"):
        from_dense = mfcli.factorize(X.toarray(), 4, seed=0, max_iter=20)
    np.testing.assert_allclose(from_sparse.layers[0].W, from_dense.layers[0].W, rtol=1e-6, atol=1e-9)
    assert from_sparse.relative_error == pytest.approx(from_dense.relative_error, rel=1e-6)


def test_cli_factorizes_an_npz_without_densifying_it(invoke, tmp_path, no_densifying):
    X = sparse_counts()
    scipy.sparse.save_npz(tmp_path / "X.npz", X)
    done = invoke("-v", "factorize", str(tmp_path / "X.npz"), "-r", "4", "--seed", "0", "--max-iter", "20",
                  "-o", str(tmp_path / "r.h5"), "--json")
    assert done.exit_code == 0, done.stderr
    assert "kept sparse" in done.stderr
    assert json.loads(done.stdout)["shape"] == [300, 200]
    same_results(read_result(tmp_path / "r.h5"),
                 mfcli.factorize(str(tmp_path / "X.npz"), 4, seed=0, max_iter=20))


def test_cli_densifies_an_npz_for_a_dense_model_with_a_note(invoke, tmp_path):
    X = scipy.sparse.random(40, 60, density=0.3, format="csr", random_state=1) + scipy.sparse.eye(40, 60)
    scipy.sparse.save_npz(tmp_path / "X.npz", X.tocsr())
    done = invoke("factorize", str(tmp_path / "X.npz"), "-r", "3", "-m", "minvol", "--max-iter", "5",
                  "-o", str(tmp_path / "r.h5"))
    assert done.exit_code == 0, done.stderr
    assert "Densified the 40 x 60 sparse matrix" in done.stderr


def test_a_sparse_matrix_too_large_to_densify_is_refused(monkeypatch):
    import mfcli.api.data

    monkeypatch.setattr(mfcli.api.data, "DENSIFY_MAX_BYTES", 1000)
    with pytest.raises(DataError, match="needs dense data.*NMF family"):
        mfcli.factorize(sparse_counts(), 3, model="minvol")


def test_info_shows_the_storage_and_density_of_an_npz(invoke, tmp_path):
    X = sparse_counts(density=0.05).tocoo()
    scipy.sparse.save_npz(tmp_path / "X.npz", X)
    done = invoke("info", str(tmp_path / "X.npz"), "--json")
    assert done.exit_code == 0, done.stderr
    data = json.loads(done.stdout)["data"]
    assert data["shape"] == [300, 200]
    assert data["sparse"] == {"format": "csr", "nnz": X.nnz, "density": pytest.approx(X.nnz / 60000)}
    assert data["max"] == pytest.approx(X.data.max()) and data["min"] == 0.0
    table = invoke("info", str(tmp_path / "X.npz"))
    assert f"{X.nnz} stored values" in table.stdout


def test_sparse_input_is_checked_like_dense_input():
    X = sparse_counts()
    X.data[3] = np.nan
    with pytest.raises(DataError, match="NaN"):
        mfcli.factorize(X, 3)
    X.data[3] = -1.0
    with pytest.raises(DataError, match="negative"):
        mfcli.factorize(X, 3)
    before = X.copy()
    with pytest.warns(UserWarning, match="set 1 negative values to 0"):
        mfcli.factorize(X, 3, clip_negative=True, max_iter=3)
    assert (X != before).nnz == 0 and X.data[3] == -1.0  # clipped on a copy


# -- parameters and inputs -----------------------------------------------------------------------

def test_unknown_parameters_are_refused_with_the_valid_ones(small_csv):
    path, X = small_csv
    with pytest.raises(ParameterError, match=r"no parameter 'restrats'.*max_iter.*solver"):
        mfcli.factorize(X, 3, restrats=50)
    with pytest.raises(ParameterError, match=r"no parameter 'restrats'.*restarts"):
        mfcli.unmix(X, [3, 2], restrats=50)
    with pytest.raises(ParameterError, match="no parameter 'colour'.*layout"):
        mfcli.open_data(str(path), colour="red")
    with pytest.raises(ParameterError, match="theta"):
        mfcli.factorize(X, 3, model="nsnmf", theta=2.0)
    with pytest.raises(ParameterError, match="layout apply to data read from a file"):
        mfcli.factorize(X, 3, layout="cube")
    with pytest.raises(ParameterError, match="rank must be"):
        mfcli.factorize(X, 0)
    with pytest.raises(ParameterError, match="takes --init"):
        mfcli.factorize(X, 3, init="bogus")
    with pytest.raises(ParameterError, match="spec string, a Dataset"):
        mfcli.factorize({"X": X}, 3)


def test_open_data_takes_the_cli_reading_rules(tmp_path):
    cube = np.random.default_rng(0).random((4, 5, 6))
    np.save(tmp_path / "cube.npy", cube)
    dataset = mfcli.open_data(tmp_path / "cube.npy", layout="cube", order="F")
    assert dataset.shape == (6, 20) and dataset.image_shape == (4, 5) and dataset.pixel_order == "F"
    np.testing.assert_array_equal(dataset.X[:, 1], cube[1, 0, :])  # F order: down the columns first
    matrix = np.random.default_rng(1).random((6, 20))
    np.save(tmp_path / "m.npy", matrix)
    shaped = mfcli.open_data(str(tmp_path / "m.npy"), image_shape="4x5", dtype="float32")
    assert shaped.image_shape == (4, 5) and shaped.X.dtype == np.float32
    assert mfcli.open_data(str(tmp_path / "m.npy"), transpose=True).shape == (20, 6)


def test_nothing_given_is_modified(small_csv):
    _, X = small_csv
    X = X - X.mean()
    before = X.copy()
    with pytest.warns(UserWarning, match="negative values to 0"):
        mfcli.factorize(X, 3, clip_negative=True, max_iter=3, dtype="float32")
    np.testing.assert_array_equal(X, before)
    dataset = mfcli.open_data("sample:survey-ratings")
    dataset.X = dataset.X - dataset.X.mean()
    X_before, notes_before = dataset.X.copy(), list(dataset.notes)
    with pytest.warns(UserWarning, match="negative values to 0"):
        mfcli.factorize(dataset, 2, clip_negative=True, max_iter=3)
    np.testing.assert_array_equal(dataset.X, X_before)
    assert dataset.notes == notes_before


def test_save_and_load_round_trip_and_never_overwrite_without_force(tmp_path, small_csv):
    _, X = small_csv
    result = mfcli.factorize(X, 3, seed=0, max_iter=10)
    path = tmp_path / "r.h5"
    result.save(path)
    same_results(result, mfcli.load_result(path))
    first = path.read_bytes()
    other = mfcli.factorize(X, 2, seed=0, max_iter=10)
    with pytest.raises(MfcliError, match="force"):
        other.save(path)
    assert path.read_bytes() == first and sorted(p.name for p in tmp_path.iterdir()) == ["r.h5", "x.csv"]
    other.save(path, force=True)
    assert mfcli.load_result(path).ranks == [2]


def test_write_unmix_folder_refuses_an_existing_folder_and_draws_pictures(tmp_path):
    result = mfcli.unmix("sample:survey-ratings", [3, 2], seed=0)
    files = mfcli.write_unmix_folder(result, tmp_path / "run")
    assert {"result.h5", "hierarchy.json", "hierarchy.png", "convergence.png"} <= set(files)
    assert all((tmp_path / "run" / name).exists() for name in files)
    with pytest.raises(MfcliError, match="force"):
        mfcli.write_unmix_folder(result, tmp_path / "run")
    drawn = mfcli.save_pictures(result, tmp_path)
    assert drawn and all((tmp_path / name).exists() for name in drawn)


def test_a_reporter_hears_what_the_cli_prints(small_csv):
    path, _ = small_csv

    class Lines(mfcli.Reporter):
        def __init__(self):
            self.lines = []

        def info(self, message):
            self.lines.append(message)

    heard = Lines()
    mfcli.factorize(str(path), 3, init="spa", max_iter=3, reporter=heard)
    assert heard.lines[0].startswith(f"Read {path}: 12 x 50 float64")
    assert heard.lines[1] == "Factorizing with nmf, rank 3, init spa"
