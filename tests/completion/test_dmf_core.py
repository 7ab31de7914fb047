"""Deep matrix factorization (DMF, DMF-D): CPU tests on tiny data.

The NumPy parts (scaling, quantizer, forward pass) run everywhere; training needs torch and
skips with a reason where it is absent.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from mfcli.completion.data import Ratings, holdout_split, random_split
from mfcli.completion.dmf import (forward_numpy, from_unit, hard_quantize, rating_levels, smooth_quantize,
                                  to_unit, uniform_boundaries)
from mfcli.completion.evaluate import restrict
from mfcli.errors import DataError


def tiny_ratings(n_users=40, n_items=30, density=0.5, seed=0):
    """Ratings 1..5 from a planted rank-2 matrix."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, 2))
    V = rng.normal(size=(n_items, 2))
    full = np.clip(np.round(3 + 1.2 * U @ V.T), 1, 5)
    users, items = np.nonzero(rng.random(full.shape) < density)
    return Ratings.from_triplets(users, items, full[users, items])


# ---------------------------------------------------------------- NumPy parts (no torch)

def test_scaling_round_trip_maps_the_range_onto_minus_one_one():
    ratings = np.array([1.0, 2.5, 3.0, 5.0])
    unit = to_unit(ratings, 1, 5)
    np.testing.assert_allclose(unit, [-1.0, -0.25, 0.0, 1.0])
    np.testing.assert_allclose(from_unit(unit, 1, 5), ratings)
    with pytest.raises(DataError):
        to_unit(ratings, 3, 3)


def test_quantizer_approaches_the_step_function():
    levels = np.arange(1.0, 6.0)
    boundaries = uniform_boundaries(levels) + np.array([0.1, -0.2, 0.0, 0.15])
    x = np.linspace(1, 5, 2001)
    hard = hard_quantize(x, levels, boundaries)
    away = np.min(np.abs(x[:, None] - boundaries[None, :]), axis=1) > 0.02
    gaps = [np.max(np.abs(smooth_quantize(x, levels, boundaries, lam) - hard)[away]) for lam in (1, 10, 100, 1000)]
    assert all(b < a for a, b in zip(gaps, gaps[1:])), gaps
    assert gaps[-1] < 1e-6
    # The hard quantizer outputs only the levels and switches exactly at the boundaries.
    assert set(np.unique(hard)) <= set(levels)
    assert hard_quantize(boundaries - 1e-9, levels, boundaries).tolist() == [1, 2, 3, 4]
    assert hard_quantize(boundaries, levels, boundaries).tolist() == [2, 3, 4, 5]


def test_rating_levels_must_be_equally_spaced():
    np.testing.assert_array_equal(rating_levels(np.array([1, 3, 2, 5, 4, 4.0])), [1, 2, 3, 4, 5])
    with pytest.raises(DataError, match="equally spaced"):
        rating_levels(np.array([1.0, 2.0, 4.0]))


def test_numpy_forward_pass_matches_a_direct_computation():
    rng = np.random.default_rng(0)
    layers = [{"weight": rng.normal(size=(4, 6)), "bias": rng.normal(size=4)},
              {"weight": rng.normal(size=(3, 4)), "bias": rng.normal(size=3)}]
    x = rng.normal(size=(5, 6))
    expected = np.maximum(x @ layers[0]["weight"].T + layers[0]["bias"], 0) @ layers[1]["weight"].T + layers[1]["bias"]
    np.testing.assert_allclose(forward_numpy(layers, x), expected)
    import scipy.sparse as sp

    np.testing.assert_allclose(forward_numpy(layers, sp.csr_matrix(x)), expected)


@pytest.fixture
def without_torch(monkeypatch):
    """Every ``import torch`` fails, as on a machine without the deep extra."""
    import builtins

    real_import = builtins.__import__

    def no_torch(name, *args, **kwargs):
        if name == "torch" or name.startswith("torch."):
            raise ImportError("no torch here")
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", no_torch)


def test_dmf_without_torch_says_how_to_install(without_torch):
    from mfcli.completion.dmf import DMF
    from mfcli.errors import MissingDependencyError

    with pytest.raises(MissingDependencyError, match=r"pip install 'mfcli\[deep\]'"):
        DMF(epochs=1).fit(tiny_ratings())


# ---------------------------------------------------------------- training (torch)

FAST = {"hidden": [16], "latent": 8, "epochs": 3, "batch_size": 16, "dropout": 0.0, "threads": 1}


@pytest.fixture(scope="module")
def torch():
    return pytest.importorskip("torch", reason="torch is not installed (pip install 'mfcli[deep]'); DMF training "
                                               "tests skipped")


def test_shapes_of_embeddings_and_exported_layers(torch):
    from mfcli.completion.dmf import DMF

    ratings = tiny_ratings()
    model = DMF(**FAST).fit(ratings)
    predictor = model.predictor()
    assert predictor.U.shape == (ratings.n_users, 8) and predictor.V.shape == (ratings.n_items, 8)
    np.testing.assert_allclose(np.linalg.norm(predictor.U, axis=1), 1.0, rtol=1e-6)
    assert [layer["weight"].shape for layer in model.user_layers_] == [(16, ratings.n_items), (8, 16)]
    assert [layer["weight"].shape for layer in model.item_layers_] == [(16, ratings.n_users), (8, 16)]
    scores = predictor.scores(ratings.users, ratings.items)
    assert scores.shape == (len(ratings),) and np.all((scores >= 1) & (scores <= 5))
    assert len(model.history_["validation_rmse"]) >= 1


def test_refit_on_other_data_validates_with_the_new_network(torch):
    """A second fit starts afresh: its per-epoch validation uses the network being trained, not
    the one exported at the end of the first fit (whose input width may not even match)."""
    from mfcli.completion.dmf import DMF

    first, second = tiny_ratings(seed=0), tiny_ratings(n_items=25, seed=1)
    refitted = DMF(**FAST).fit(first).fit(second)
    fresh = DMF(**FAST).fit(second)
    np.testing.assert_allclose(refitted.history_["validation_rmse"], fresh.history_["validation_rmse"])
    assert refitted.user_layers_[0]["weight"].shape == (16, second.n_items)


def test_numpy_predictions_equal_the_torch_network(torch):
    """The saved-array forward pass (no torch) reproduces the torch branches in eval mode."""
    from mfcli.completion.dmf import DMF, input_matrices

    ratings = tiny_ratings()
    model = DMF(**{**FAST, "batch_norm": True, "hidden": [16, 12]}).fit(ratings)
    X, _ = input_matrices(model.train_, model.beta_)
    with torch.no_grad():
        expected = model._user_net.eval()(torch.from_numpy(X.toarray().astype(np.float32))).numpy()
    np.testing.assert_allclose(forward_numpy(model.user_layers_, X), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.slow
def test_dmf_learns_better_than_the_mean(torch):
    from mfcli.completion.dmf import DMF
    from mfcli.metrics import rmse

    ratings = tiny_ratings(n_users=80, n_items=60, density=0.6)
    train, test = random_split(ratings, 0.2, seed=0)
    model = DMF(**{**FAST, "epochs": 40, "lr": 0.01, "hidden": [32], "patience": 0}).fit(train)
    predictor = model.predictor(train)
    users = predictor.user_ids.index(test.user_ids.ids[test.users])
    items = predictor.item_ids.index(test.item_ids.ids[test.items])
    error = rmse(test.values, predictor.scores(users, items))
    assert error < 0.85 * np.std(test.values), (error, np.std(test.values))


@pytest.mark.parametrize("input_norm", [False, True])
def test_extends_to_unseen_rows_and_columns_without_retraining(torch, input_norm):
    from mfcli.completion.data import areas
    from mfcli.completion.dmf import DMF
    from mfcli.completion.evaluate import evaluate_areas

    ratings = tiny_ratings()
    seen_users, seen_items = holdout_split(ratings, 0.25, 0.25, seed=0)
    area_one = restrict(ratings, seen_users, seen_items)
    model = DMF(**FAST, input_norm=input_norm).fit(area_one)
    predictor = model.predictor(ratings)
    assert len(predictor.user_ids) == ratings.n_users and len(predictor.item_ids) == ratings.n_items
    # A new user's embedding is the user branch applied to its ratings of the training items.
    new_user = ratings.user_ids.ids[~seen_users][0]
    mine = (ratings.user_ids.ids[ratings.users] == new_user) & seen_items[ratings.items]
    items = predictor.item_ids.index(ratings.item_ids.ids[ratings.items[mine]])
    row = predictor.user_ids.index([new_user])[0]
    np.testing.assert_allclose(predictor.new_user_scores(items, ratings.values[mine]), predictor.user_scores(row))
    report = evaluate_areas(predictor, ratings, seen_users, seen_items)
    masks = areas(ratings, seen_users, seen_items)
    assert {area: values["n_test"] for area, values in report.items()} == {a: int(m.sum()) for a, m in masks.items()}
    # Three epochs on 40 x 30 ratings learn little, but the extended rows and columns must score
    # like a trained model: within 10% of predicting the training mean everywhere (measured: 1-3% above).
    for area, mask in masks.items():
        truth = ratings.values[mask]
        mean_rmse = float(np.sqrt(np.mean((truth - area_one.values.mean()) ** 2)))
        assert report[area]["rmse"] < 1.1 * mean_rmse, (area, report[area], mean_rmse)


def test_dmf_d_outputs_levels_and_learns_boundaries(torch):
    from mfcli.completion.dmf import DMF

    ratings = tiny_ratings()
    model = DMF(discrete=True, **{**FAST, "epochs": 4, "lambda_start": 1.0, "lambda_end": 100.0}).fit(ratings)
    predictor = model.predictor()
    scores = predictor.scores(ratings.users, ratings.items)
    assert set(np.unique(scores)) <= {1.0, 2.0, 3.0, 4.0, 5.0}
    assert model.boundaries_.shape == (4,) and np.all(np.diff(model.boundaries_) > 0)
    assert model.history_["lambda"][-1] > model.history_["lambda"][0]


def test_result_round_trip_keeps_predictions_and_extension(torch, tmp_path):
    from mfcli.completion.dmf import DMF
    from mfcli.completion.persist import predictor_from_result
    from mfcli.io.result import read_result, write_result

    ratings = tiny_ratings()
    seen_users, seen_items = holdout_split(ratings, 0.2, 0.2, seed=1)
    model = DMF(**FAST, input_norm=True, input_dropout=0.2).fit(restrict(ratings, seen_users, seen_items))
    in_memory = model.predictor(ratings)
    write_result(model.to_result(in_memory, {"model": "dmf"}, {}), tmp_path / "m.h5")
    loaded = predictor_from_result(read_result(tmp_path / "m.h5"))
    users = loaded.user_ids.index(ratings.user_ids.ids[ratings.users])
    items = loaded.item_ids.index(ratings.item_ids.ids[ratings.items])
    same_users = in_memory.user_ids.index(ratings.user_ids.ids[ratings.users])
    same_items = in_memory.item_ids.index(ratings.item_ids.ids[ratings.items])
    np.testing.assert_array_equal(loaded.scores(users, items), in_memory.scores(same_users, same_items))
    np.testing.assert_allclose(loaded.new_user_scores(items[:5], ratings.values[:5]),
                               in_memory.new_user_scores(same_items[:5], ratings.values[:5]))


def test_save_and_load_give_identical_predictions(torch, invoke, tmp_path):
    from mfcli.completion.persist import predictor_from_result
    from mfcli.io.result import read_result

    ratings = tiny_ratings()
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{i}\t{v:g}\n" for u, i, v in zip(ratings.users, ratings.items, ratings.values)))
    out = tmp_path / "dmf.h5"
    result = invoke("complete", str(path), "--model", "dmf-d", "--rank", "8", "--hidden", "16", "--epochs", "2",
                    "--batch-size", "16", "--device", "cpu", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["model"] == "dmf-d" and "continuous_rmse" in doc
    predictor = predictor_from_result(read_result(out))
    assert predictor.discrete
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("".join(f"{u},{i},{v:g}\n" for u, i, v in zip(ratings.users, ratings.items, ratings.values)))
    first = invoke("predict", str(out), str(pairs), "--json")
    second = invoke("predict", str(out), str(pairs), "--json")
    assert first.exit_code == 0, first.stderr
    assert json.loads(first.stdout) == json.loads(second.stdout)
    scores = [p["score"] for p in json.loads(first.stdout)["predictions"]]
    users = predictor.user_ids.index(ratings.users)
    items = predictor.item_ids.index(ratings.items)
    np.testing.assert_allclose(scores, predictor.scores(users, items))
    recommended = invoke("recommend", str(out), "--user", "0", "-n", "3")
    assert recommended.exit_code == 0 and len(recommended.stdout.strip().splitlines()) == 4


def test_complete_dmf_reports_the_four_areas(torch, invoke, tmp_path):
    ratings = tiny_ratings()
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{i}\t{v:g}\n" for u, i, v in zip(ratings.users, ratings.items, ratings.values)))
    result = invoke("complete", str(path), "--model", "dmf", "--rank", "8", "--hidden", "16", "--epochs", "2",
                    "--batch-size", "16", "--holdout-rows", "0.2", "--holdout-cols", "0.2", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc["areas"]) == {"I", "II", "III", "IV"} and doc["rank"] == 8
    assert "Extendability" in result.stderr


def test_complete_dmf_without_torch_fails_with_the_install_command(invoke, tmp_path, without_torch):
    ratings = tiny_ratings()
    path = tmp_path / "r.tsv"
    path.write_text("".join(f"{u}\t{i}\t{v:g}\n" for u, i, v in zip(ratings.users, ratings.items, ratings.values)))
    out = tmp_path / "m.h5"
    result = invoke("complete", str(path), "--model", "dmf", "-o", str(out))
    assert result.exit_code == 1
    assert "pip install 'mfcli[deep]'" in result.stderr and not out.exists()
