"""No run ends 'converged' short of the answer, and none exits 0 with a non-finite or empty one
(issue 13): time limits everywhere, finite parameters, NaN/Inf caught where they appear, and the
properties scikit-learn's own NMF tests check, for the estimators of mfcli.models."""

from __future__ import annotations

import json
import time
import warnings

import numpy as np
import pytest

from mfcli.errors import ConvergenceWarning, DataError, NumericalError, ParameterError


def positive(m=40, n=120, seed=0):
    return np.abs(np.random.default_rng(seed).standard_normal((m, n)))


def exact_low_rank(m, n, r, seed):
    rng = np.random.default_rng(seed)
    return np.abs(rng.standard_normal((m, r))) @ np.abs(rng.standard_normal((r, n)))


# ---- --max-time everywhere ----------------------------------------------------------------------


def test_onmf_restarts_stop_at_max_time():
    """Today a billion restarts build a billion-entry list before the first start."""
    from mfcli.models.onmf import onmf

    started = time.perf_counter()
    with pytest.warns(ConvergenceWarning, match="max_time"):
        result = onmf(positive(), 3, restarts=10**9, max_time=1.0)
    assert time.perf_counter() - started < 4.0
    assert result.summary["stop_reason"] == "max_time" and not result.converged
    assert 1 <= result.layers[0].arrays["start_errors"].size < 10**6


def test_max_time_bounds_a_deep_models_layer_wise_initialization():
    from mfcli.models.deep import deep_factorize

    started = time.perf_counter()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        result = deep_factorize(positive(60, 400), [4, 2], "deep-onmf", restarts=10**9, max_time=1.0)
    assert time.perf_counter() - started < 4.0
    assert result.summary["stop_reason"] == "max_time" and not result.converged


def test_restarts_draw_the_same_starts_as_before():
    """Lazily drawn starts: start i still seeds from SeedSequence(seed).spawn(...)[i]."""
    from mfcli.models.onmf import onmf

    X = positive(30, 200, 3)
    few = onmf(X, 4, restarts=3, seed=5).layers[0].arrays["start_errors"]
    more = onmf(X, 4, restarts=6, seed=5).layers[0].arrays["start_errors"]
    np.testing.assert_array_equal(few, more[:3])


# ---- non-finite answers -------------------------------------------------------------------------


def test_an_overflowing_beta_stops_with_an_error_naming_beta():
    from mfcli.models.nmf import nmf

    with pytest.raises(NumericalError, match="beta=1e\\+308"):
        nmf(positive(), 3, loss="beta=1e308")


def test_data_whose_squared_norm_overflows_are_refused():
    from mfcli.models.archetypal import archetypal

    with pytest.raises(DataError, match="overflows"):
        archetypal(positive() * 1e307, 3)


@pytest.mark.parametrize("model, pair", [("svd", "oversample=-3"), ("minvol", "lam=inf"), ("minvol", "delta=0"),
                                         ("minvol", "volume=box"), ("nsnmf", "theta=nan"), ("sparse-nmf", "l1=-1"),
                                         ("aonmf", "penalty=1e999"), ("onmf", "restarts=0"), ("nmf", "solver=cd"),
                                         ("deep-nmf", "layer_weight=0"), ("deep-onmf", "layer_tol=nan"),
                                         ("deep-sparse", "l1=inf")])
def test_model_parameters_are_refused_outside_their_range(model, pair):
    from mfcli.models.registry import get_model

    with pytest.raises(ParameterError, match="must be"):
        get_model(model).parse_params([pair])


def test_model_functions_check_the_same_ranges():
    from mfcli.models.deep import deep_factorize
    from mfcli.models.minvol import minvol
    from mfcli.models.svd import svd

    X = positive()
    with pytest.raises(ParameterError, match="oversample must be an integer >= 0"):
        svd(X, 3, oversample=-3)
    with pytest.raises(ParameterError, match="lam must be a finite number"):
        minvol(X, 3, lam=np.inf)
    with pytest.raises(ParameterError, match="penalty"):
        deep_factorize(X, [3, 2], "deep-aonmf", penalty=float("nan"))


def test_fcls_refuses_a_delta_that_drowns_the_data():
    """Today delta=1e308 squares to inf and every abundance comes out 0 (relative error 1)."""
    from mfcli.models.nnls import fcls

    rng = np.random.default_rng(1)
    W = rng.random((30, 3))
    X = W @ rng.dirichlet(np.ones(3), 50).T
    with pytest.raises(ParameterError, match="too large"):
        fcls(W, X, delta=1e308)
    np.testing.assert_allclose(fcls(W, X, delta=10.0).sum(axis=0), 1.0, atol=0.02)


@pytest.mark.parametrize("args, code, message", [
    (["--loss", "beta=1e308"], 1, "beta=1e+308"),
    (["-m", "svd", "-p", "oversample=-3"], 1, "oversample must be an integer >= 0"),
    (["-m", "minvol", "-p", "lam=inf"], 1, "lam must be a finite number >= 0"),
    (["--tol", "nan"], 2, "not a finite number"),
    (["--max-time", "nan"], 2, "not a finite number"),
    (["--max-time", "inf"], 2, "not a finite number"),
    (["--target-error", "nan"], 2, "not a finite number"),
])
def test_factorize_refuses_what_would_give_a_non_finite_answer(invoke, tmp_path, args, code, message):
    path = tmp_path / "X.npy"
    np.save(path, positive())
    out = tmp_path / "out.h5"
    result = invoke("factorize", str(path), "-r", "3", *args, "-o", str(out))
    assert result.exit_code == code and message in result.stderr, result.stderr
    assert "Traceback" not in result.stderr and not out.exists()


def test_abundances_refuse_a_huge_delta(invoke, tmp_path):
    rng = np.random.default_rng(2)
    np.save(tmp_path / "E.npy", rng.random((20, 3)))
    np.save(tmp_path / "X.npy", rng.random((20, 40)))
    out = tmp_path / "a.h5"
    result = invoke("abundances", str(tmp_path / "X.npy"), "--endmembers", str(tmp_path / "E.npy"),
                    "--delta", "1e308", "-o", str(out))
    assert result.exit_code == 1 and "too large" in result.stderr and not out.exists()
    result = invoke("abundances", str(tmp_path / "X.npy"), "--endmembers", str(tmp_path / "E.npy"),
                    "--delta", "nan", "-o", str(out))
    assert result.exit_code == 2 and "not a finite number" in result.stderr


def test_a_run_stopped_by_a_limit_says_so_once_in_stderr_json_and_file(invoke, tmp_path):
    from mfcli.io.result import read_result

    path = tmp_path / "X.npy"
    np.save(path, positive())
    out = tmp_path / "out.h5"
    result = invoke("factorize", str(path), "-r", "3", "--max-iter", "2", "-o", str(out), "--json")
    assert result.exit_code == 0
    warnings_lines = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings_lines) == 1 and "max_iter" in warnings_lines[0]
    document = json.loads(result.stdout)
    assert document["converged"] is False and document["stop_reason"] == "max_iter"
    saved = read_result(out)
    assert saved.converged is False and saved.summary["stop_reason"] == "max_iter"
    converged = invoke("factorize", str(path), "-r", "3", "-o", str(tmp_path / "ok.h5"), "--json")
    assert "Warning:" not in converged.stderr and json.loads(converged.stdout)["converged"] is True


# ---- scikit-learn's NMF test properties, for mfcli's estimators -----------------------------------


@pytest.mark.parametrize("name, params", [("NMF", {}), ("SparseNMF", {}), ("NsNMF", {}), ("AONMF", {}),
                                          ("ONMF", {}), ("MinVolNMF", {}), ("NMF", {"beta_loss": "kullback-leibler"})])
def test_transform_refuses_negative_or_nan_data(name, params):
    """Today transform returns zero coefficients for such columns."""
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    estimator = getattr(estimators, name)(3, **params)
    X = positive(30, 80).T  # samples x features
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        estimator.fit(X)
    bad = X[:5].copy()
    bad[0, 0] = -1.0
    with pytest.raises(ValueError, match="(?i)negative"):
        estimator.transform(bad)
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        estimator.transform(bad)


def test_signed_models_transform_signed_data():
    estimators = pytest.importorskip("mfcli.estimators", reason="mfcli.estimators needs scikit-learn")
    X = np.random.default_rng(3).standard_normal((60, 20))  # samples x features
    for estimator in (estimators.SemiNMF(3), estimators.TruncatedSVD(3)):
        assert np.all(np.isfinite(estimator.fit(X).transform(X[:5])))


@pytest.mark.parametrize("shape", [(30, 50, 4), (100, 200, 6), (200, 100, 3)])
def test_an_exactly_low_rank_matrix_is_reconstructed_at_the_defaults(shape):
    from mfcli.models.nmf import nmf

    X = exact_low_rank(*shape, seed=sum(shape))
    result = nmf(X, shape[2])
    assert result.converged
    np.testing.assert_allclose(result.layers[0].W @ result.layers[0].H, X, rtol=1e-6)


def test_initial_factors_of_the_wrong_dtype_or_shape_are_refused():
    from mfcli.models.nmf import nmf

    X = positive(20, 15)
    rng = np.random.default_rng(0)
    W, H = rng.random((20, 4)), rng.random((4, 15))
    with pytest.raises(DataError, match="float32 but the data are worked in float64"):
        nmf(X, 4, W=W.astype(np.float32), H=H)
    with pytest.raises(DataError, match="int64"):
        nmf(X, 4, W=np.ones((20, 4), dtype=np.int64))
    with pytest.raises(DataError, match="shape"):
        nmf(X, 4, W=rng.random((20, 3)), H=H)
    with pytest.raises(DataError, match="shape"):
        nmf(X, 4, W=W, H=rng.random((5, 15)))
    with pytest.raises(DataError, match="all zeros"):
        nmf(X, 4, W=W, H=np.zeros_like(H))
    assert nmf(X.astype(np.float32), 4, W=W.astype(np.float32), H=H.astype(np.float32)).layers[0].W.dtype \
        == np.float32
