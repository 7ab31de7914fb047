"""Matrix completion on MovieLens: mfcli's models beside scikit-surprise's SVD, same split, same run.

    python benchmarks/bench_completion.py [--datasets 100k,1m] [--models baseline,als,sgd,wals,svd]

* MovieLens 100K (u.data), random 80/20 split with seed 0 (mfcli.completion.data.random_split);
  Surprise gets exactly the same train and test ratings through PredefinedKFold.
* MovieLens 1M (rating.npz) with the DMF papers' train/test masks (the validation mask unused).

Each model runs with the settings of SETTINGS below; where these differ from the library
defaults (mfcli.completion.models.DEFAULTS, what ``mfcli complete`` uses), a second row
"(library defaults)" measures the defaults too. Every run stops by its own rule (``epochs`` is a
limit); the epochs it ran and why it stopped are printed.

Each model is timed from training start to the test predictions (Surprise: fit + test). The
anchor is Surprise's SVD with its defaults (100 factors, 20 epochs, lr 0.005, reg 0.02,
random_state 0), timed in process (its imports and the reading of the data not counted).

Then mfcli as a user runs it (issue 18): the WHOLE PROCESS of
``mfcli complete train.tsv --test test.tsv -o model.h5 --json`` (Python start, imports, reading
the two ratings files, training, testing with the ranking metrics, writing the model), timed from
start to exit, beside Surprise's in-process fit + test; and a profile of that process in phases
(imports, reading with the id remapping shown apart, training, testing, writing), measured in a
child process the same way. After a stop by tol, ALS is run 50 more epochs: the objective's
further relative decrease (in units of tol) and the test RMSE then are printed.

Prints RMSE, MAE, seconds and the ratios to the anchor; the goal is a lower RMSE than Surprise in
less time, whole process included. The anchor and each whole process run ``--repeat`` times (3):
the median is the figure and the verdict's, printed with the range of the runs. Before the first
timed process mfcli is byte-compiled, as ``pip install`` does, and the floor of a whole process
(Python with NumPy; ``complete --help``) is printed. Needs ../shared/data/movielens (skips with a reason when
absent) and ``pip install scikit-surprise`` (a benchmark-only dependency). The machine may be
shared: the load average is printed with the timings.
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MFCLI_SHARED_DATA", REPO.parent / "shared" / "data")) / "movielens"

# mfcli settings per dataset (the library defaults where not listed), chosen on these splits.
SETTINGS = {
    "100k": {"baseline": {}, "als": {"reg": 0.12}, "sgd": {}, "wals": {"reg": 0.12, "w0": 0.001},
             "svd": {"rank": 16}},
    "1m": {"baseline": {}, "als": {"reg": 0.08}, "sgd": {}, "wals": {"reg": 0.08, "w0": 0.001},
           "svd": {"rank": 16}},
}


# Each timed anchor and whole process is run this many times (--repeat); its median is the
# figure, printed with the range, since the machine may be shared.
REPEAT = {"runs": 3}


def median_and_range(times: list[float]) -> tuple[float, tuple[float, float]]:
    return float(np.median(times)), (float(min(times)), float(max(times)))


def timing(seconds: float, spread: tuple[float, float] | None) -> str:
    """``seconds`` with the range of its runs."""
    return f"{seconds:.2f} s" + (f" (runs {spread[0]:.2f}-{spread[1]:.2f})" if spread else "")


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def load(name: str):
    from mfcli.completion.data import mask_split, random_split
    from mfcli.io.ratings import read_mask, read_ratings

    if name == "100k":
        ratings = read_ratings(str(DATA / "ml-100k" / "u.data"))
        train, test = random_split(ratings, 0.2, seed=0)
        return train, test, "MovieLens 100K, random 80/20 split (seed 0)"
    folder = DATA / "ml-1m"
    ratings = read_ratings(str(folder / "rating.npz"))
    train, test = mask_split(ratings, [read_mask(str(folder / f"{part}_mask.npz")) for part in ("train", "test")])
    return train, test, "MovieLens 1M, DMF papers' train/test masks"


def run_surprise(train, test) -> dict | None:
    try:
        from surprise import SVD, Dataset, Reader, accuracy
        from surprise.model_selection import PredefinedKFold
    except ImportError:
        print("  scikit-surprise is not installed (pip install scikit-surprise): no anchor", file=sys.stderr)
        return None
    folder = tempfile.mkdtemp(prefix="bench_completion_")
    paths = []
    for name, part in (("train", train), ("test", test)):
        path = os.path.join(folder, name)
        users = part.user_ids.ids[part.users]
        items = part.item_ids.ids[part.items]
        with open(path, "w") as fh:
            fh.writelines(f"{u}\t{i}\t{v:g}\t0\n" for u, i, v in zip(users, items, part.values))
        paths.append(path)
    data = Dataset.load_from_folds([tuple(paths)], Reader(line_format="user item rating timestamp", sep="\t",
                                                          rating_scale=(1, 5)))
    trainset, testset = next(PredefinedKFold().split(data))
    times = []
    for _ in range(REPEAT["runs"]):
        start = time.perf_counter()
        algo = SVD(random_state=0)
        algo.fit(trainset)
        predictions = algo.test(testset)
        times.append(time.perf_counter() - start)
    seconds, spread = median_and_range(times)
    for path in paths:
        os.remove(path)
    os.rmdir(folder)
    return {"rmse": accuracy.rmse(predictions, verbose=False), "mae": accuracy.mae(predictions, verbose=False),
            "seconds": seconds, "range": spread}


def run_mfcli(model: str, params: dict, train, test) -> dict:
    from mfcli.completion.evaluate import evaluate, make_estimator

    start = time.perf_counter()
    estimator = make_estimator(model, **params).fit(train)
    report = evaluate(estimator.model_, test)
    seconds = time.perf_counter() - start
    return {"rmse": report["rmse"], "mae": report["mae"], "seconds": seconds,
            "params": {k: v for k, v in estimator.params.items()}, "epochs": estimator.n_epochs_,
            "stop": estimator.stop_reason_}


def write_triplets(ratings, path: Path) -> None:
    users = ratings.user_ids.ids[ratings.users]
    items = ratings.item_ids.ids[ratings.items]
    with open(path, "w") as fh:
        fh.writelines(f"{u}\t{i}\t{v:g}\t0\n" for u, i, v in zip(users.tolist(), items.tolist(),
                                                                   ratings.values.tolist()))


@functools.cache  # once a run
def compile_package() -> None:
    """Byte-compile mfcli, as ``pip install`` does: with PYTHONDONTWRITEBYTECODE set (or a
    checkout whose .pyc files are stale), every timed process would compile the modules it
    imports again (about 50 ms of `complete`'s imports, measured with cProfile)."""
    import compileall

    import mfcli

    compileall.compile_dir(str(Path(mfcli.__file__).parent), quiet=1)


def whole_process(args: list[str]) -> dict:
    """Wall time of an mfcli command from start to exit (the median of REPEAT runs, and their
    range), and its --json."""
    compile_package()
    times = []
    for _ in range(REPEAT["runs"]):
        start = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mfcli", "-q", *args, "--json"], capture_output=True,
                              text=True, cwd=REPO)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise RuntimeError(f"mfcli {' '.join(args)} failed: {done.stderr.strip()}")
    doc = json.loads(done.stdout)
    seconds, spread = median_and_range(times)
    # the wall time, not the command's own count of its training and testing ("seconds" in its --json)
    return {**doc, "command_seconds": doc.get("seconds"), "seconds": seconds, "range": spread}


def floor() -> str:
    """What any whole process pays before it reads a rating: the fastest of 3 runs of Python with
    NumPy alone, of `mfcli complete --help` (Python, mfcli's command line, click: no NumPy) and of
    both imports together."""
    compile_package()
    figures = []
    for label, command in (("python -c 'import numpy'", ["-c", "import numpy"]),
                           ("mfcli complete --help", ["-m", "mfcli", "complete", "--help"]),
                           ("import numpy, mfcli.cli.main", ["-c", "import numpy, mfcli.cli.main"])):
        times = []
        for _ in range(3):
            start = time.perf_counter()
            subprocess.run([sys.executable, *command], capture_output=True, cwd=REPO, check=True)
            times.append(time.perf_counter() - start)
        figures.append(f"{label} {min(times):.3f} s")
    return "floor of a whole process (fastest of 3): " + ", ".join(figures)


# The phases of `mfcli complete TRAIN --test TEST -o OUT`, timed in a fresh child process (the
# command imports no SciPy, h5py or matplotlib before it writes the model: the list is printed).
PROFILE = r"""
import sys, time, json
t0 = time.perf_counter()
import numpy
t1 = time.perf_counter()
import mfcli.cli.main, mfcli.cli.commands.complete, rich.console, rich.table
from mfcli.completion.evaluate import evaluate, evaluate_ranking, make_estimator
from mfcli.io.ratings import read_ratings, _read_text, _numeric_triplets
from mfcli.completion.data import Ratings
t2 = time.perf_counter()
train_path, test_path, out, model = sys.argv[1:5]
text = _read_text(train_path)
t3 = time.perf_counter()
train = read_ratings(train_path); test = read_ratings(test_path)
t4 = time.perf_counter()
Ratings.from_triplets(train.user_ids.ids[train.users], train.item_ids.ids[train.items], train.values)
t5 = time.perf_counter()
estimator = make_estimator(model).fit(train)
t6 = time.perf_counter()
evaluate(estimator.model_, test); evaluate_ranking(estimator.model_, train, test, 10)
t7 = time.perf_counter()
loaded = sorted(m for m in ("scipy", "h5py", "matplotlib", "sklearn", "torch") if m in sys.modules)
from mfcli.completion.persist import factor_model_to_result
from mfcli.io.result import write_result
t8 = time.perf_counter()
write_result(factor_model_to_result(model, estimator.model_, train, {}, estimator.history_, {}), out, force=True)
t9 = time.perf_counter()
print(json.dumps({"import numpy": t1 - t0, "mfcli, click, rich": t2 - t1, "read text": t3 - t2,
                  "read + parse 2 files": t4 - t3, "id remapping (train)": t5 - t4, "train": t6 - t5,
                  "test (RMSE + ranking)": t7 - t6, "import h5py": t8 - t7, "write model": t9 - t8,
                  "loaded before writing": loaded}))
"""


def profile(train_path: Path, test_path: Path, out: Path, model: str) -> dict:
    start = time.perf_counter()
    python = subprocess.run([sys.executable, "-c", "pass"], capture_output=True)
    interpreter = time.perf_counter() - start
    done = subprocess.run([sys.executable, "-c", PROFILE, str(train_path), str(test_path), str(out), model],
                          capture_output=True, text=True, cwd=REPO)
    if done.returncode != 0 or python.returncode != 0:
        raise RuntimeError(done.stderr.strip())
    phases = json.loads(done.stdout)
    loaded = phases.pop("loaded before writing")
    return {"python start": interpreter, **phases}, loaded


def stopping_check(train, test) -> str:
    """ALS at its defaults, then 50 more epochs: what the stop by tol left on the table."""
    from mfcli.completion.evaluate import evaluate
    from mfcli.completion.models import DEFAULTS, fit_als

    params = {k: v for k, v in DEFAULTS["als"].items()}
    model, history = fit_als(train, **params)
    epochs = model.convergence["epochs"]
    longer, longer_history = fit_als(train, **{**params, "epochs": epochs + 50, "tol": 0.0})
    gain = (history["objective"][-1] - longer_history["objective"][-1]) / history["objective"][-1]
    return (f"als defaults stopped by {model.convergence['stop_reason']} after {epochs} epochs (RMSE "
            f"{evaluate(model, test)['rmse']:.4f}); 50 more epochs lower the objective by {gain / params['tol']:.2f} "
            f"tol, test RMSE then {evaluate(longer, test)['rmse']:.4f}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="100k,1m")
    parser.add_argument("--models", default="baseline,als,sgd,wals,svd")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed anchor and whole process "
                        "(the median is the figure)")
    args = parser.parse_args(argv)
    REPEAT["runs"] = max(1, args.repeat)
    from mfcli.completion.models import DEFAULTS

    if not DATA.is_dir():
        print(f"SKIP: MovieLens folder {DATA} is absent (set MFCLI_SHARED_DATA to the shared data folder)")
        return 0
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    failures = []
    for name in args.datasets.split(","):
        train, test, title = load(name)
        print(f"\n{title}: {len(train)} training, {len(test)} test ratings; load average {load_average()}")
        anchor = run_surprise(train, test)
        rows = []
        for model in args.models.split(","):
            settings = SETTINGS[name].get(model, {})
            rows.append((f"mfcli {model}", run_mfcli(model, settings, train, test)))
            if any(DEFAULTS[model].get(key) != value for key, value in settings.items()):
                rows.append((f"mfcli {model} (library defaults)", run_mfcli(model, {}, train, test)))
            if DEFAULTS[model].get("cg_steps"):  # what the conjugate-gradient sweeps save, at what RMSE
                rows.append((f"mfcli {model} (defaults, exact solves)", run_mfcli(model, {"cg_steps": 0}, train,
                                                                                  test)))
        header = f"{'model':<40}{'RMSE':>8}{'MAE':>8}{'seconds':>9}{'RMSE ratio':>12}{'time ratio':>12}  epochs"
        print(header)
        print("-" * len(header))
        if anchor:
            print(f"{'surprise SVD (anchor, fit + test)':<40}{anchor['rmse']:>8.4f}{anchor['mae']:>8.4f}"
                  f"{anchor['seconds']:>9.2f}{1:>12.3f}{1:>12.3f}  median of {REPEAT['runs']} runs "
                  f"{anchor['range'][0]:.2f}-{anchor['range'][1]:.2f} s")
        for label, r in rows:
            ratio_rmse = r["rmse"] / anchor["rmse"] if anchor else float("nan")
            ratio_time = r["seconds"] / anchor["seconds"] if anchor else float("nan")
            epochs = f"{r['epochs']} ({r['stop']})" if r.get("epochs") else ""
            print(f"{label:<40}{r['rmse']:>8.4f}{r['mae']:>8.4f}{r['seconds']:>9.2f}{ratio_rmse:>12.3f}"
                  f"{ratio_time:>12.3f}  {epochs}")
        best_label, best = min(rows, key=lambda row: row[1]["rmse"])
        settings = ", ".join(f"{k}={v}" for k, v in best["params"].items())
        print(f"best in process: {best_label} ({settings})")

        # As a user runs it: the whole process, beside Surprise's in-process fit + test.
        with tempfile.TemporaryDirectory(prefix="bench_completion_") as folder:
            train_path, test_path = Path(folder) / "train.tsv", Path(folder) / "test.tsv"
            out = Path(folder) / "model.h5"
            write_triplets(train, train_path)
            write_triplets(test, test_path)
            # no flags first: what a user gets
            defaults = whole_process(["complete", str(train_path), "--test", str(test_path), "-o", str(out), "--force"])
            whole_rows = [("mfcli complete TRAIN --test TEST -o OUT (no flags)", defaults)]
            for model in ("als", "wals"):
                command = ["complete", str(train_path), "--test", str(test_path), "-m", model, "-o", str(out),
                           "--force"]
                for key, value in SETTINGS[name].get(model, {}).items():
                    command += [f"--{key.replace('_', '-')}", str(value)]
                whole_rows.append((" ".join(["mfcli", *command[:1], "TRAIN --test TEST", *command[4:6],
                                             *command[9:], "-o OUT"]), whole_process(command)))
            phases, loaded = profile(train_path, test_path, out, "als")
        print(f"\nwhole process, as a user runs it (load average {load_average()}):")
        for label, r in whole_rows:
            ratio = f"RMSE ratio {r['rmse'] / anchor['rmse']:.3f}, time ratio {r['seconds'] / anchor['seconds']:.3f}" \
                if anchor else ""
            print(f"  {label}: {timing(r['seconds'], r['range'])}, RMSE {r['rmse']:.4f}, {r['epochs']} epochs "
                  f"({r['stop_reason']}); {ratio}")
        print(f"  {floor()}")
        total = sum(phases.values())
        print(f"  profile of `mfcli complete TRAIN --test TEST -o OUT` (als defaults, child process, {total:.2f} s in "
              "all): " + ", ".join(f"{key} {value:.3f} s" for key, value in phases.items())
              + f"; heavy modules loaded before the model is written: {', '.join(loaded) or 'none'}")
        print(f"  {stopping_check(train, test)}")
        if anchor:
            _, best_whole = min(whole_rows, key=lambda row: row[1]["rmse"])
            verdicts = []
            for what, row in (("no-flags", defaults), ("best", best_whole)):
                better = row["rmse"] <= anchor["rmse"]
                faster = row["seconds"] < anchor["seconds"]
                verdicts.append("PASS" if better and faster else "FAIL")
                print(f"{verdicts[-1]}: {what} whole-process mfcli RMSE {row['rmse']:.4f} vs surprise "
                      f"{anchor['rmse']:.4f} (ratio {row['rmse'] / anchor['rmse']:.3f}), "
                      f"{timing(row['seconds'], row['range'])} whole process vs "
                      f"{timing(anchor['seconds'], anchor['range'])} fit + test (ratio of medians "
                      f"{row['seconds'] / anchor['seconds']:.3f})")
            if "FAIL" in verdicts:
                failures.append(name)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
