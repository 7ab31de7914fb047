"""mfcli complete / predict / recommend on small ratings files."""

from __future__ import annotations

import json

import numpy as np
import pytest


def write_ratings(path, sep="\t", header=None, n_users=30, n_items=25, density=0.5, seed=0, user_prefix=""):
    """A planted rank-2 ratings file in 1..5; returns the list of (user, item, rating)."""
    rng = np.random.default_rng(seed)
    U = rng.normal(size=(n_users, 2))
    V = rng.normal(size=(n_items, 2))
    full = np.clip(np.round(3 + U @ V.T), 1, 5)
    rows = [(f"{user_prefix}{u + 1}", i + 1, int(full[u, i])) for u in range(n_users) for i in range(n_items)
            if rng.random() < density]
    lines = [header] if header else []
    lines += [sep.join(str(x) for x in (*row, 874965758)) for row in rows]
    path.write_text("\n".join(lines) + "\n")
    return rows


@pytest.fixture
def udata(tmp_path):
    path = tmp_path / "u.data"
    write_ratings(path)
    return path


def test_complete_trains_evaluates_and_saves(invoke, udata, tmp_path):
    out = tmp_path / "model.h5"
    result = invoke("complete", str(udata), "--rank", "2", "--epochs", "5", "-o", str(out), "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert {"model", "rank", "rmse", "mae", "n_train", "n_test", "seconds"} <= set(doc)
    assert doc["model"] == "als" and doc["rank"] == 2
    assert doc["n_train"] + doc["n_test"] == len(udata.read_text().splitlines())
    assert 0 < doc["rmse"] < 2 and doc["mae"] <= doc["rmse"]
    assert "RMSE" in result.stderr and out.exists()


@pytest.mark.parametrize("model", ["baseline", "sgd", "wals", "svd"])
def test_every_factor_model_runs(invoke, udata, model):
    result = invoke("complete", str(udata), "--model", model, "--rank", "2", "--epochs", "3", "--json")
    assert result.exit_code == 0, result.stderr
    assert json.loads(result.stdout)["model"] == model


def test_implicit_and_frequency_weighted_wals(invoke, udata):
    for extra in (["--implicit", "--alpha", "2"], ["--frequency-power", "0.5", "--w0", "0.01"]):
        result = invoke("complete", str(udata), "--model", "wals", "--rank", "2", "--epochs", "3", "--json", *extra)
        assert result.exit_code == 0, result.stderr


def test_movielens_1m_and_csv_formats_are_read(invoke, tmp_path):
    dat = tmp_path / "ratings.dat"
    rows = write_ratings(dat, sep="::")
    csv = tmp_path / "ratings.csv"
    write_ratings(csv, sep=",", header="userId,movieId,rating,timestamp")
    for path in (dat, csv):
        result = invoke("complete", str(path), "--model", "baseline", "--json")
        assert result.exit_code == 0, result.stderr
        doc = json.loads(result.stdout)
        assert doc["n_train"] + doc["n_test"] == len(rows)


def test_dense_matrix_with_nan(invoke, tmp_path):
    rng = np.random.default_rng(0)
    matrix = np.round(3 + rng.normal(size=(20, 15)))
    matrix[rng.random(matrix.shape) < 0.4] = np.nan
    path = tmp_path / "dense.csv"
    np.savetxt(path, matrix, delimiter=",")
    result = invoke("complete", str(path), "--dense", "--model", "baseline", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["n_train"] + doc["n_test"] == int(np.count_nonzero(~np.isnan(matrix)))


def test_sparse_matrix_with_masks(invoke, tmp_path):
    import scipy.sparse as sp

    rng = np.random.default_rng(0)
    dense = np.where(rng.random((30, 20)) < 0.5, rng.integers(1, 6, (30, 20)), 0).astype(np.float32)
    matrix = sp.csr_matrix(dense)
    sp.save_npz(tmp_path / "r.npz", matrix)
    part = rng.integers(0, 3, matrix.nnz)
    for k, name in enumerate(("train", "val", "test")):
        mask = matrix.copy()
        mask.data = (part == k).astype(np.float32)
        mask.eliminate_zeros()
        sp.save_npz(tmp_path / f"{name}.npz", mask)
    masks = ",".join(str(tmp_path / f"{n}.npz") for n in ("train", "val", "test"))
    result = invoke("complete", str(tmp_path / "r.npz"), "--masks", masks, "--rank", "2", "--epochs", "4", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["n_train"] == int((part == 0).sum()) and doc["n_test"] == int((part == 2).sum())
    assert doc["n_validation"] <= int((part == 1).sum()) and 1 <= doc["best_epoch"] <= 4


def test_test_file_with_unseen_users_and_items(invoke, udata, tmp_path):
    test = tmp_path / "test.tsv"
    test.write_text("1\t1\t3\n999\t2\t4\n2\t777\t5\n")
    result = invoke("complete", str(udata), "--test", str(test), "--rank", "2", "--epochs", "3", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert doc["n_test"] == 3 and doc["unseen_users"] == 1 and doc["unseen_items"] == 1
    assert doc["n_test_unseen"] == 2


def test_holdout_rows_and_columns_report_four_areas(invoke, udata):
    result = invoke("complete", str(udata), "--rank", "2", "--epochs", "5", "--holdout-rows", "0.2",
                    "--holdout-cols", "0.2", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert set(doc["areas"]) == {"I", "II", "III", "IV"}
    assert sum(area["n_test"] for area in doc["areas"].values()) == doc["n_test"] - doc["n_test_unseen"]
    assert "Extendability" in result.stderr


# ---------------------------------------------------------------- bad input

def test_duplicate_ratings_fail_cleanly(invoke, tmp_path):
    path = tmp_path / "dup.tsv"
    path.write_text("1\t1\t3\n1\t2\t4\n1\t1\t5\n2\t2\t1\n")
    out = tmp_path / "m.h5"
    result = invoke("complete", str(path), "-o", str(out))
    assert result.exit_code == 1
    assert "duplicate" in result.stderr and result.stderr.count("\n") == 1
    assert result.stdout == "" and not out.exists()
    assert list(tmp_path.iterdir()) == [path]


def test_non_numeric_rating_names_the_line(invoke, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text("user,item,rating\n1,1,3\n1,2,four\n")
    result = invoke("complete", str(path))
    assert result.exit_code == 1
    assert "line 3" in result.stderr and "'four'" in result.stderr and "Traceback" not in result.stderr


def test_empty_test_set_fails_cleanly(invoke, udata, tmp_path):
    empty = tmp_path / "empty.tsv"
    empty.write_text("# nothing\n")
    result = invoke("complete", str(udata), "--test", str(empty))
    assert result.exit_code == 1 and "no ratings" in result.stderr
    tiny = tmp_path / "tiny.tsv"
    tiny.write_text("1\t1\t3\n1\t2\t4\n2\t1\t5\n")
    result = invoke("complete", str(tiny), "--test-fraction", "0.01")
    assert result.exit_code == 1 and "empty test set" in result.stderr


def test_existing_output_needs_force(invoke, udata, tmp_path):
    out = tmp_path / "m.h5"
    out.write_text("keep me")
    result = invoke("complete", str(udata), "--model", "baseline", "-o", str(out))
    assert result.exit_code == 1 and "--force" in result.stderr
    assert out.read_text() == "keep me"


# ---------------------------------------------------------------- predict and recommend

@pytest.fixture
def model_file(invoke, udata, tmp_path):
    out = tmp_path / "model.h5"
    result = invoke("complete", str(udata), "--rank", "2", "--epochs", "5", "-o", str(out))
    assert result.exit_code == 0, result.stderr
    return out


def test_recommend_lists_unseen_items(invoke, model_file, udata):
    result = invoke("recommend", str(model_file), "--user", "3", "-n", "5")
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "rank,item,score" and len(lines) == 6
    from mfcli.completion.data import train_ratings_from_result
    from mfcli.io.result import read_result

    train = train_ratings_from_result(read_result(model_file))
    seen = set(train.item_ids.ids[train.items[train.user_ids.ids[train.users] == 3]].tolist())
    recommended = [int(line.split(",")[1]) for line in lines[1:]]
    assert not seen & set(recommended)
    scores = [float(line.split(",")[2]) for line in lines[1:]]
    assert scores == sorted(scores, reverse=True)


def test_recommend_unknown_user_fails_cleanly(invoke, model_file):
    result = invoke("recommend", str(model_file), "--user", "nobody")
    assert result.exit_code == 1
    assert "user nobody is not in the model" in result.stderr and "--new-ratings" in result.stderr


def test_recommend_folds_in_a_new_user(invoke, model_file, tmp_path):
    new = tmp_path / "new.csv"
    new.write_text("item,rating\n1,5\n2,1\n3,4\n")
    result = invoke("recommend", str(model_file), "--new-ratings", str(new), "-n", "3", "--json")
    assert result.exit_code == 0, result.stderr
    doc = json.loads(result.stdout)
    assert len(doc["items"]) == 3 and not {1, 2, 3} & {entry["item"] for entry in doc["items"]}


def test_predict_scores_pairs_and_reports_unknown_ids(invoke, model_file, tmp_path):
    pairs = tmp_path / "pairs.csv"
    pairs.write_text("user,item,rating\n1,1,3\n2,5,4\n12345,1,2\n")
    result = invoke("predict", str(model_file), str(pairs))
    assert result.exit_code == 0, result.stderr
    lines = result.stdout.strip().splitlines()
    assert lines[0] == "user,item,score" and len(lines) == 4
    assert all(1 <= float(line.split(",")[2]) <= 5 for line in lines[1:])
    assert "unknown" in result.stderr and "RMSE" in result.stderr
    doc = json.loads(invoke("predict", str(model_file), str(pairs), "--json").stdout)
    assert doc["unknown_user_pairs"] == 1 and len(doc["predictions"]) == 3


def test_movielens_100k_beats_the_baseline(invoke, shared_data):
    path = shared_data / "movielens" / "ml-100k" / "u.data"
    if not path.exists():
        pytest.skip(f"{path} is absent")
    docs = {}
    for model in ("baseline", "als"):
        result = invoke("complete", str(path), "--model", model, "--rank", "16", "--epochs", "4", "--json")
        assert result.exit_code == 0, result.stderr
        docs[model] = json.loads(result.stdout)
    assert docs["als"]["rmse"] < docs["baseline"]["rmse"] < 1.0
