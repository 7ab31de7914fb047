"""The first hour with mfcli (issue 15, point 6): the README's examples run in order without
one overwriting another's output or using a file before an earlier one made it; parameters
stored in a result can be set again; `complete` reads the bundled ratings the right way round
and never tests on ratings it trained on; export says what a deep result's factors are; empty
clusters are warned about."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
OUTPUT_OPTIONS = ("-o", "--output", "--plot")
FILE_PATTERN = r"\.(h5|csv|npy|png|pdf|svg|html|mat|npz|nwk|dot|hdr)$|/result\.h5$"


def readme_commands() -> list[tuple[list[str], list[str]]]:
    """The mfcli command lines of README.md's shell blocks, in order: (words, files written by a
    redirect of the line), comments dropped."""
    text = (REPO / "README.md").read_text()
    commands = []
    for block in re.findall(r"```sh\n(.*?)```", text, flags=re.S):
        for line in block.replace("\\\n", " ").splitlines():
            line = re.sub(r"\s#\s.*$", "", line)
            redirected = []
            if ">" in line:
                line, target = line.rsplit(">", 1)
                redirected = target.split()[:1]
            parts = [shlex.split(part) for part in re.split(r"&&|\|", line) if part.strip()]
            mfcli = [words for words in parts if words[0] == "mfcli"]
            for number, words in enumerate(mfcli):
                commands.append((words, redirected if number == len(mfcli) - 1 else []))
    return commands


def _files(command: list[str], redirected: list[str]) -> tuple[list[str], list[str]]:
    """(inputs, outputs) of one README command: outputs after -o/--output/--plot, a redirect, the
    second argument of convert; inputs the other file-like words (paths with a known extension)."""
    outputs, inputs = list(redirected), []
    words = command[1:]
    skip = False
    for position, word in enumerate(words):
        if skip:
            skip = False
            continue
        if word in OUTPUT_OPTIONS and position + 1 < len(words):
            outputs.append(words[position + 1])
            skip = True
        elif not word.startswith("-") and re.search(FILE_PATTERN, word.split(":")[0]):
            inputs.append(word.split(":")[0])
    if words and words[0] == "convert" and len(inputs) >= 2:
        outputs.append(inputs.pop(1))
    return inputs, outputs


def test_readme_examples_run_in_order_without_collisions():
    made: list[str] = []
    every_output = {out for command, redirected in readme_commands() for out in _files(command, redirected)[1]}
    problems = []
    for command, redirected in readme_commands():
        inputs, outputs = _files(command, redirected)
        for name in inputs:
            folder = name.split("/")[0] if "/" in name else None
            produced_later = name in every_output or (folder in every_output)
            if produced_later and name not in made and folder not in made:
                problems.append(f"{' '.join(command)}: uses {name} before an example makes it")
        for name in outputs:
            if name in made and "--force" not in command:
                problems.append(f"{' '.join(command)}: writes {name}, which an earlier example wrote")
            made.append(name)
    assert not problems, "\n".join(problems)
    assert len(made) > 20  # the parser found the examples


def test_readme_says_where_graphviz_and_a_cpu_torch_come_from():
    text = (REPO / "README.md").read_text()
    assert "Graphviz" in text and "download.pytorch.org/whl/cpu" in text
    assert text.index("python3 -m venv") < text.index("pip install . && mfcli unmix")  # the venv advice first


def test_parameters_stored_in_a_result_can_be_set_again():
    from mfcli.models import registry

    X = np.random.default_rng(0).random((20, 30)) + 0.01
    command_options = {"rank", "ranks", "loss", "init", "seed", "max_iter", "tol", "target_error", "max_time",
                       "model", "abundances", "dtype"}
    for spec in registry.models("single") + registry.models("deep"):
        kwargs = {"seed": 0, **({"max_iter": 3} if spec.iterative else {}),
                  **({"init": spec.default_init} if spec.default_init else {})}
        result = spec.run(X, [3, 2] if spec.kind == "deep" else 3, **kwargs)
        unsettable = set(result.params) - command_options - set(spec.params)
        assert not unsettable, f"{spec.name} stores {sorted(unsettable)}, which no option or -p sets"
        function = spec.load()
        defaults = {name: p.default for name, p in inspect.signature(function).parameters.items()}
        for name, param in spec.params.items():  # and the registry's defaults are the function's
            if name in defaults and spec.kind == "single":
                assert param.default == defaults[name], (spec.name, name)


def test_accelerate_false_is_a_parameter_of_nmf(invoke, tmp_path):
    run = invoke("factorize", "sample:survey-ratings", "-r", "2", "-p", "accelerate=false", "--max-iter", "5",
                 "-o", str(tmp_path / "n.h5"))
    assert run.exit_code == 0, run.stderr
    from mfcli.io.result import read_result

    assert read_result(tmp_path / "n.h5").params["accelerate"] is False


def test_complete_reads_the_survey_sample_as_users_by_items(invoke):
    from mfcli.io import load_dataset
    from mfcli.io.ratings import read_ratings

    ratings = read_ratings("sample:survey-ratings")
    assert (ratings.n_users, ratings.n_items) == (15, 9) and len(ratings) == 135
    matrix = load_dataset("sample:survey-ratings").X  # 9 movies x 15 users as stored
    dense = ratings.to_csr().toarray()
    np.testing.assert_array_equal(dense, matrix.T)
    assert ratings.user_ids.ids[0] == 1 and ratings.item_ids.ids[-1] == 9  # the survey's numbering
    run = invoke("complete", "sample:survey-ratings", "--model", "baseline", "--json")
    assert run.exit_code == 0, run.stderr
    assert "15 users x 9 items" in run.stderr
    wrong = invoke("complete", "sample:urban")
    assert wrong.exit_code == 1 and "not a ratings sample" in wrong.stderr


def test_test_ratings_that_are_also_training_ratings_are_removed_from_training_loudly(invoke, tmp_path):
    rng = np.random.default_rng(0)
    rows = [(u, i, int(rng.integers(1, 6))) for u in range(1, 21) for i in range(1, 16) if rng.random() < 0.6]
    (tmp_path / "all.csv").write_text("\n".join(f"{u},{i},{r}" for u, i, r in rows) + "\n")
    test_rows = rows[::5]
    (tmp_path / "test.csv").write_text("\n".join(f"{u},{i},{r}" for u, i, r in test_rows) + "\n")
    run = invoke("complete", str(tmp_path / "all.csv"), "--test", str(tmp_path / "test.csv"), "--model", "als",
                 "--rank", "2", "--json")
    assert run.exit_code == 0, run.stderr
    assert f"Warning: {len(test_rows)} of the {len(test_rows)} test ratings" in run.stderr
    document = json.loads(run.stdout)
    assert document["n_train"] == len(rows) - len(test_rows) and document["n_test"] == len(test_rows)


def test_export_says_what_a_deep_results_own_factors_are(invoke, tmp_path):
    out = tmp_path / "deep"
    run = invoke("unmix", "sample:survey-ratings", "--ranks", "4,3", "-o", str(out), "--no-plots")
    assert run.exit_code == 0, run.stderr
    export = invoke("export", str(out / "result.h5"), "--factor", "H", "-o", str(tmp_path / "H.csv"))
    assert export.exit_code == 0, export.stderr
    assert "maps the 4 clusters of layer 1" in export.stderr and "--factor coefficients" in export.stderr
    assert np.loadtxt(tmp_path / "H.csv", delimiter=",").shape == (3, 4)


@pytest.mark.slow
def test_empty_clusters_are_a_warning(invoke, tmp_path):
    run = invoke("unmix", "sample:samson", "--ranks", "5,3", "-m", "deep-nmf", "-o", str(tmp_path / "d"),
                 "--no-plots", "--json")
    assert run.exit_code == 0, run.stderr
    document = json.loads(run.stdout)
    empty = {entry["layer"]: entry["empty"] for entry in document["layers"] if entry["empty"]}
    for layer, clusters in empty.items():
        assert f"Warning: layer {layer}: {len(clusters)} of" in run.stderr
        assert all(document["layers"][layer - 1]["sizes"][c] == 0 for c in clusters)
    assert empty  # deep NMF leaves some of Samson's 5 clusters empty (issue 15)
