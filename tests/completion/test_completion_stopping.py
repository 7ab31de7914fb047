"""Stopping rules of the completion loops (ALS/WALS/baseline, SGD/BPR, DMF) and finite answers.

A run that stops by its rule made the progress the rule asks for on its accepted epochs, and
running on does not improve it by more than the documented bound; a limit (--epochs,
--max-time) ends a run unconverged and says so; no run ends with a non-finite answer.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfcli.completion import models as M
from mfcli.completion.data import Ratings
from mfcli.errors import ParameterError


def planted(n_users=80, n_items=60, rank=3, density=0.4, noise=0.3, seed=0):
    rng = np.random.default_rng(seed)
    full = 3.0 + rng.normal(size=(n_users, rank)) @ rng.normal(size=(rank, n_items)) / np.sqrt(rank)
    users, items = np.nonzero(rng.random(full.shape) < density)
    values = np.clip(np.round(full[users, items] + noise * rng.normal(size=len(users))), 1, 5)
    return Ratings.from_triplets(users, items, values)


DESCENT = {
    "baseline": lambda r, **kw: M.fit_baseline(r, **kw),
    "als": lambda r, **kw: M.fit_als(r, rank=3, **kw),
    "wals": lambda r, **kw: M.fit_wals(r, rank=3, w0=0.01, **kw),
    "wals-implicit": lambda r, **kw: M.fit_wals(r, rank=3, implicit=True, reg=0.5, cg_steps=0, **kw),
    "wals-implicit-cg": lambda r, **kw: M.fit_wals(r, rank=3, implicit=True, reg=0.5, cg_steps=3, **kw),
}
# The bound of the docs (mfcli.completion.models.STOPPING_BOUND): the objective decreases linearly
# (geometrically), so after a stop by tol 50 more epochs still lower it, by at most 20 tol.
MORE_EPOCHS_BOUND = M.STOPPING_BOUND


@pytest.mark.parametrize("name", list(DESCENT))
def test_descent_loops_stop_by_tol_only_on_real_progress(name):
    ratings = planted()
    fit = DESCENT[name]
    model, history = fit(ratings, epochs=500)
    info = model.convergence
    assert info["stop_reason"] == "tol" and info["converged"], info
    tol = info["tol"]
    objective = history["objective"]
    assert len(objective) == info["epochs"] >= 2
    decrease = (objective[-2] - objective[-1]) / objective[-2]
    assert 0 <= decrease <= tol  # the last accepted epoch decreased the objective by at most tol
    assert np.all(np.diff(objective) <= 1e-6 * objective[:-1])  # descent: never an increase
    _, longer = fit(ratings, epochs=info["epochs"] + 50, tol=0.0)
    np.testing.assert_allclose(longer["objective"][:len(objective)], objective, rtol=1e-9)
    gained = (objective[-1] - longer["objective"][-1]) / objective[-1]
    assert gained <= MORE_EPOCHS_BOUND * tol, (gained, tol)


PLATEAU = {
    "sgd": lambda r, **kw: M.fit_sgd(r, rank=3, lr=0.02, batch_size=256, **kw),
    "bpr": lambda r, **kw: M.fit_bpr(r, rank=4, batch_size=128, **kw),
}


@pytest.mark.parametrize("name", list(PLATEAU))
def test_stochastic_loops_stop_on_a_plateau_of_their_best_objective(name):
    ratings = planted()
    model, history = PLATEAU[name](ratings, epochs=400)
    info = model.convergence
    assert info["stop_reason"] == "plateau" and info["converged"], info
    objective = history["objective"]
    # none of the last 3 epochs improved on the best before it by more than tol...
    for t in range(len(objective) - 3, len(objective)):
        assert objective[t] >= objective[:t].min() * (1 - info["tol"])
    # ...and the epoch before them did (the rule counts consecutive epochs without progress)
    t = len(objective) - 4
    assert t == 0 or objective[t] < objective[:t].min() * (1 - info["tol"])
    # the best was reached by real progress from the start
    assert objective.min() < objective[0] * (1 - 10 * info["tol"])


@pytest.mark.parametrize("fit", [*DESCENT.values(), *PLATEAU.values()])
def test_max_time_ends_a_run_unconverged(fit):
    model, history = fit(planted(), epochs=50, max_time=1e-9)
    info = model.convergence
    assert info == {**info, "converged": False, "stop_reason": "max_time", "epochs": 1}
    assert len(history["seconds"]) == 1


@pytest.mark.parametrize("fit", [*DESCENT.values(), *PLATEAU.values()])
def test_epochs_end_a_run_unconverged_unless_tol_is_zero(fit):
    model, _ = fit(planted(), epochs=1)
    assert model.convergence["stop_reason"] == "max_iter" and not model.convergence["converged"]


def test_a_diverging_sgd_is_an_error_naming_the_step_size():
    with pytest.raises(ParameterError, match=r"sgd diverged at epoch 1.*--lr 1e\+308"):
        M.fit_sgd(planted(), rank=3, lr=1e308, epochs=3)
    with pytest.raises(ParameterError, match="--lr"):
        M.fit_bpr(planted(), rank=3, lr=1e308, epochs=3)


@pytest.mark.parametrize("call", [
    lambda r: M.fit_als(r, rank=2, reg=np.nan),
    lambda r: M.fit_wals(r, rank=2, w0=np.nan),
    lambda r: M.fit_wals(r, rank=2, frequency_power=np.nan),
    lambda r: M.fit_wals(r, rank=2, frequency_power=1e9),
    lambda r: M.fit_wals(r, rank=2, implicit=True, alpha=np.inf),
    lambda r: M.fit_sgd(r, rank=2, lr=np.nan),
    lambda r: M.fit_baseline(r, reg=-1.0),
    lambda r: M.fit_als(r, rank=2, tol=np.nan),
    lambda r: M.fit_als(r, rank=2, max_time=np.nan),
])
def test_non_finite_or_out_of_range_parameters_are_refused(call):
    with pytest.raises(ParameterError, match="must be a finite number in"):
        call(planted())


# ---------------------------------------------------------------- DMF

def test_dmf_reports_its_early_stopping_and_its_limits():
    pytest.importorskip("torch")
    from mfcli.completion.dmf import DMF

    ratings = planted(n_users=40, n_items=30, density=0.5)
    limited = DMF(hidden=[8], rank=4, epochs=2, patience=1, threads=1).fit(ratings)
    assert limited.stop_reason_ in ("max_iter", "early_stopping")
    assert limited.converged_ == (limited.stop_reason_ == "early_stopping") and limited.has_stopping_rule_
    timed = DMF(hidden=[8], rank=4, epochs=50, time_budget=1e-9, threads=1).fit(ratings)
    assert timed.stop_reason_ == "max_time" and not timed.converged_ and len(timed.history_["seconds"]) == 1
    with pytest.raises(ParameterError, match="--lr"):
        DMF(hidden=[8], rank=4, epochs=3, lr=1e30, threads=1).fit(ratings)


# ---------------------------------------------------------------- command line

@pytest.fixture
def ratings_file(tmp_path):
    r = planted()
    path = tmp_path / "r.csv"
    path.write_text("".join(f"{u},{i},{v:g}\n" for u, i, v in zip(r.users, r.items, r.values)))
    return path


@pytest.mark.parametrize("args", [
    ["--reg", "nan"], ["--w0", "nan", "-m", "wals"], ["--frequency-power", "nan", "-m", "wals"],
    ["--frequency-power", "1e9", "-m", "wals"], ["--tol", "nan"], ["--max-time", "nan"], ["--max-time", "inf"],
    ["--alpha", "inf", "-m", "wals", "--implicit"], ["--test-fraction", "nan"], ["--lr", "nan", "-m", "sgd"],
])
def test_non_finite_options_are_usage_errors_with_the_valid_range(invoke, ratings_file, args):
    result = invoke("complete", str(ratings_file), *args)
    assert result.exit_code == 2, result.stderr
    assert args[0] in result.stderr and ("x>" in result.stderr or "<x" in result.stderr or "<=x" in result.stderr)


def test_a_diverging_run_is_a_one_line_error(invoke, ratings_file, tmp_path):
    out = tmp_path / "m.h5"
    result = invoke("complete", str(ratings_file), "-m", "sgd", "--lr", "1e308", "-o", str(out), "--json")
    assert result.exit_code == 1 and result.stdout == "" and not out.exists()
    errors = [line for line in result.stderr.splitlines() if line.startswith("Error:")]
    assert len(errors) == 1 and "diverged" in errors[0] and "--lr" in errors[0]


@pytest.mark.parametrize("args", [
    ["--reg", "1e308"], ["-m", "wals", "--w0", "1e308"], ["-m", "wals", "--implicit", "--alpha", "1e308"],
    ["-m", "bpr", "--lr", "1e308"], ["-m", "sgd", "--reg", "1e308"],
])
def test_extreme_values_stop_with_one_line_naming_them(invoke, ratings_file, args):
    import warnings

    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)  # no floating-point warning on the way
        result = invoke("-q", "complete", str(ratings_file), "--rank", "2", *args)
    assert result.exit_code == 1 and result.stdout == ""
    assert result.stderr.count("\n") == 1 and "diverged" in result.stderr and args[-2] in result.stderr


def test_a_run_ended_by_epochs_warns_once_and_says_unconverged(invoke, ratings_file, tmp_path):
    from mfcli.io.result import read_result

    out = tmp_path / "m.h5"
    result = invoke("complete", str(ratings_file), "--rank", "2", "--epochs", "2", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["converged"] is False and doc["stop_reason"] == "max_iter" and doc["epochs"] == 2
    warnings = [line for line in result.stderr.splitlines() if line.startswith("Warning:")]
    assert len(warnings) == 1 and "--epochs" in warnings[0] and "converged: false" in warnings[0]
    saved = read_result(out)
    assert saved.converged is False and saved.summary["stop_reason"] == "max_iter"
    # a converged run: no warning
    result = invoke("complete", str(ratings_file), "--rank", "2", "--json")
    doc = json.loads(result.stdout)
    assert doc["converged"] is True and doc["stop_reason"] == "tol" and "Warning" not in result.stderr
    # --tol 0 asks for a fixed number of epochs: unconverged, but nothing to warn about
    result = invoke("complete", str(ratings_file), "--rank", "2", "--epochs", "3", "--tol", "0", "--json")
    doc = json.loads(result.stdout)
    assert doc["converged"] is False and doc["epochs"] == 3 and "Warning" not in result.stderr


def test_max_time_and_its_old_name_end_a_run(invoke, ratings_file):
    for option in ("--max-time", "--time-budget"):
        result = invoke("complete", str(ratings_file), "--rank", "2", option, "1e-9", "--json")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["stop_reason"] == "max_time" and doc["epochs"] == 1 and not doc["converged"]
        assert "--max-time" in result.stderr


def test_options_a_model_does_not_take_are_reported(invoke, ratings_file):
    result = invoke("complete", str(ratings_file), "-m", "als", "--implicit", "--rank", "2")
    assert result.exit_code == 0 and "--implicit do(es) not apply to als" in result.stderr
