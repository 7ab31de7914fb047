"""Implicit feedback on MovieLens: mfcli's WALS (--implicit) and BPR beside the `implicit` package's
ALS and BPR, same split, same k, same metric code, same run.

    python benchmarks/bench_implicit.py [--datasets 100k,1m] [--k 10] [--no-sweep]

* Data: MovieLens 100K (random 80/20 split, seed 0) and 1M (the DMF papers' train/test masks), the
  splits of bench_completion.py. Every rating is an interaction, its value the confidence
  (mfcli: c = 1 + alpha r; implicit: c = alpha r, its convention).
* Metrics: nDCG@k, precision@k (and recall, MAP, coverage) of each test user's top-k list among the
  items they have not rated in training, against their held-out items, all computed by
  mfcli.metrics.ranking_metrics (the implicit models' factors are scored by the same code). As an
  independent check, implicit's own ranking_metrics_at_k scores implicit's ALS: its nDCG is
  printed beside ours (its "precision" divides by min(k, |test items|), not by k).
* Time: implicit's fit, in process, with its own threads (BLAS limited to one thread, as it
  recommends). Each implicit ALS fit and each whole process runs ``--repeat`` times (3): the
  median is the figure and the goal's, printed with the range of the runs. mfcli: (a) fit time in process, and (b) the WHOLE PROCESS of the command a user
  runs, `mfcli complete TRAIN --test TEST -m wals --implicit --json` (Python start, imports,
  reading the ratings files, training, ranking evaluation), whose figures come from its --json.
* Anchors: implicit ALS with its defaults (100 factors, regularization 0.01, 15 iterations,
  conjugate gradient) and with mfcli's number of factors and regularization 1 and mfcli's (its
  alpha 1, 15 iterations); implicit BPR with its defaults (100 factors, lr 0.01, reg 0.01, 100
  iterations). The time ratio and the goal use the implicit ALS row of best nDCG.
* Goal (issue 18): mfcli's best nDCG@10 >= implicit ALS's best, in <= 1.5x its time, counting
  mfcli's whole process. PASS/FAIL is printed per dataset.
* Sweep (--no-sweep skips it): mfcli's implicit WALS around its defaults, one setting at a time
  (factors, regularization, alpha, conjugate-gradient steps vs exact solves), with the epochs its
  stopping rule ran and the nDCG of 50 more epochs, which back the defaults of
  mfcli.completion.models.DEFAULTS["wals-implicit"].

Needs ../shared/data/movielens and `pip install implicit` (benchmark-only); skips with a reason
otherwise. The machine may be shared: the load average is printed with the timings.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_completion import (DATA, REPEAT, floor, load, median_and_range, whole_process,  # noqa: E402
                              write_triplets)  # the same splits, timing and floor

REPO = Path(__file__).resolve().parents[1]


def load_average() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def factor_predictor(user_factors, item_factors, train):
    """A FactorModel of given factors (no biases) over the training id maps, for mfcli's metrics."""
    from mfcli.completion.factors import FactorModel

    n_users, n_items = train.shape
    return FactorModel(0.0, np.zeros(n_users), np.zeros(n_items), np.asarray(user_factors, dtype=np.float64),
                       np.asarray(item_factors, dtype=np.float64), train.user_ids, train.item_ids, None, False,
                       {"implicit": True})


def ranking(model, train, test, k):
    from mfcli.completion.evaluate import evaluate_ranking

    return evaluate_ranking(model, train, test, k)


def run_implicit(kind: str, params: dict, train, test, k: int) -> dict:
    from threadpoolctl import threadpool_limits

    matrix = train.to_csr().astype(np.float32)
    times = []
    with threadpool_limits(1, "blas"):
        if kind == "als":
            from implicit.als import AlternatingLeastSquares as Model
        else:
            from implicit.bpr import BayesianPersonalizedRanking as Model
        for _ in range(REPEAT["runs"] if kind == "als" else 1):
            model = Model(**params, random_state=0)
            start = time.perf_counter()
            model.fit(matrix, show_progress=False)
            times.append(time.perf_counter() - start)
    seconds, spread = median_and_range(times)
    out = {"seconds": seconds, "range": spread,
           **ranking(factor_predictor(model.user_factors, model.item_factors, train), train, test, k)}
    if kind == "als":
        from implicit.evaluation import ranking_metrics_at_k

        test_matrix = test.reindex(train.user_ids, train.item_ids, drop_unknown=True).to_csr().astype(np.float32)
        own = ranking_metrics_at_k(model, matrix, test_matrix, K=k, show_progress=False)
        out["own_ndcg"] = float(own["ndcg"])
    return out


def run_mfcli(fit, params: dict, train, test, k: int) -> dict:
    start = time.perf_counter()
    model, history = fit(train, **params)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "epochs": model.convergence["epochs"], "stop": model.convergence["stop_reason"],
            **ranking(model, train, test, k)}


def run_command(args: list[str]) -> dict:
    """The whole process of an mfcli command (bench_completion.whole_process) with its ranking figures."""
    doc = whole_process(args)
    return {"seconds": doc["seconds"], "range": doc["range"], "epochs": doc["epochs"], "stop": doc["stop_reason"],
            **doc["ranking"]}


def print_rows(rows: list[tuple[str, dict]], k: int, anchor: dict | None) -> None:
    header = (f"{'model':<52}{f'nDCG@{k}':>9}{f'P@{k}':>8}{f'R@{k}':>8}{f'MAP@{k}':>8}{'cover':>7}"
              f"{'seconds':>9}{'time ratio':>11}  notes")
    print(header)
    print("-" * len(header))
    for label, r in rows:
        ratio = r["seconds"] / anchor["seconds"] if anchor else float("nan")
        notes = []
        if "epochs" in r:
            notes.append(f"{r['epochs']} epochs ({r['stop']})")
        spread = r.get("range")
        if spread and spread[0] != spread[1]:
            notes.append(f"median of {REPEAT['runs']} runs {spread[0]:.2f}-{spread[1]:.2f} s")
        if "own_ndcg" in r:
            notes.append(f"implicit's own nDCG {r['own_ndcg']:.4f}")
        print(f"{label:<52}{r['ndcg']:>9.4f}{r['precision']:>8.4f}{r['recall']:>8.4f}{r['map']:>8.4f}"
              f"{r['coverage']:>7.3f}{r['seconds']:>9.2f}{ratio:>11.3f}  {'; '.join(notes)}")


def sweep(train, test, k: int) -> None:
    from mfcli.completion.models import DEFAULTS, fit_wals

    base = {key: value for key, value in DEFAULTS["wals-implicit"].items()}
    print(f"\n  sweep of mfcli wals --implicit around its defaults {base} (one setting at a time)")
    print(f"  {'setting':<22}{f'nDCG@{k}':>9}{f'P@{k}':>8}{'seconds':>9}{'epochs':>8}"
          f"{f'nDCG@{k} +50 ep':>16}{'objective gain +50 ep / tol':>29}")
    grid = [("rank", (16, 32, 64, 128)), ("reg", (1.0, 3.0, 10.0, 30.0)), ("alpha", (0.1, 0.3, 1.0, 3.0)),
            ("cg_steps", (0, 2, 3, 5))]
    for name, values in grid:
        for value in values:
            params = {**base, name: value}
            start = time.perf_counter()
            model, history = fit_wals(train, implicit=True, **params)
            seconds = time.perf_counter() - start
            r = ranking(model, train, test, k)
            extra = ""
            if value == base[name] or name == "cg_steps":
                epochs = model.convergence["epochs"]
                longer, longer_history = fit_wals(train, implicit=True, **{**params, "epochs": epochs + 50,
                                                                          "tol": 0.0})
                gain = (history["objective"][-1] - longer_history["objective"][-1]) / history["objective"][-1]
                extra = f"{ranking(longer, train, test, k)['ndcg']:>16.4f}{gain / params['tol']:>29.2f}"
            label = f"{name}={value}" + (" (exact)" if name == "cg_steps" and value == 0 else "")
            print(f"  {label:<22}{r['ndcg']:>9.4f}{r['precision']:>8.4f}{seconds:>9.2f}"
                  f"{model.convergence['epochs']:>8}{extra}")


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--datasets", default="100k,1m")
    parser.add_argument("--k", type=int, default=10)
    parser.add_argument("--no-sweep", action="store_true")
    parser.add_argument("--no-bpr", action="store_true", help="skip the BPR rows (the slowest)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each implicit ALS fit and each whole "
                        "process (the median is the figure)")
    args = parser.parse_args(argv)
    REPEAT["runs"] = max(1, args.repeat)
    if not DATA.is_dir():
        print(f"SKIP: MovieLens folder {DATA} is absent (set MFCLI_SHARED_DATA to the shared data folder)")
        return 0
    try:
        import implicit
    except ImportError:
        print("SKIP: the implicit package is not installed (pip install implicit)")
        return 0
    from mfcli.completion.models import DEFAULTS, fit_bpr, fit_wals

    k = args.k
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python "
          f"{platform.python_version()}, numpy {np.__version__}, implicit {implicit.__version__}")
    mine = DEFAULTS["wals-implicit"]
    failures = []
    for name in args.datasets.split(","):
        train, test, title = load(name)
        print(f"\n{title} as implicit feedback: {len(train)} training, {len(test)} test interactions; "
              f"load average {load_average()}")
        rows = []
        als_rows = []
        for label, params in (("implicit ALS (its defaults: 100 factors, reg 0.01)", {}),
                              (f"implicit ALS ({mine['rank']} factors, reg 1, 15 it.)",
                               {"factors": mine["rank"], "regularization": 1.0, "iterations": 15}),
                              (f"implicit ALS ({mine['rank']} factors, reg {mine['reg']:g}, 15 it.)",
                               {"factors": mine["rank"], "regularization": mine["reg"], "iterations": 15})):
            result = run_implicit("als", params, train, test, k)
            rows.append((label, result))
            als_rows.append(result)
        if not args.no_bpr:
            rows.append(("implicit BPR (its defaults: 100 factors, 100 it.)", run_implicit("bpr", {}, train, test, k)))
        rows.append(("mfcli wals --implicit (defaults, fit in process)", run_mfcli(
            lambda t, **p: fit_wals(t, implicit=True, **p), dict(mine), train, test, k)))
        rows.append(("mfcli wals --implicit, exact solves (cg-steps 0)", run_mfcli(
            lambda t, **p: fit_wals(t, implicit=True, **p), {**mine, "cg_steps": 0}, train, test, k)))
        if not args.no_bpr:
            rows.append(("mfcli bpr (defaults, fit in process)", run_mfcli(fit_bpr, dict(DEFAULTS["bpr"]), train,
                                                                            test, k)))
        with tempfile.TemporaryDirectory(prefix="bench_implicit_") as folder:
            train_path, test_path = Path(folder) / "train.tsv", Path(folder) / "test.tsv"
            write_triplets(train, train_path)
            write_triplets(test, test_path)
            whole = run_command(["complete", str(train_path), "--test", str(test_path), "-m", "wals", "--implicit",
                                 "--top-k", str(k)])
            rows.append(("mfcli complete -m wals --implicit (WHOLE PROCESS)", whole))
            whole_rows = [whole]
            if not args.no_bpr:
                whole_rows.append(run_command(["complete", str(train_path), "--test", str(test_path), "-m", "bpr",
                                               "--top-k", str(k)]))
                rows.append(("mfcli complete -m bpr (WHOLE PROCESS)", whole_rows[-1]))
        anchor = max(als_rows, key=lambda r: r["ndcg"])
        print(f"time ratio: to implicit ALS's best nDCG row ({anchor['seconds']:.2f} s); load average "
              f"{load_average()}")
        print_rows(rows, k, anchor)
        best_whole = max(whole_rows, key=lambda r: r["ndcg"])
        ok = best_whole["ndcg"] >= anchor["ndcg"] and best_whole["seconds"] <= 1.5 * anchor["seconds"]
        print(f"{'PASS' if ok else 'FAIL'}: mfcli's best whole-process nDCG@{k} {best_whole['ndcg']:.4f} vs implicit "
              f"ALS's best {anchor['ndcg']:.4f}, in {best_whole['seconds']:.2f} s = "
              f"{best_whole['seconds'] / anchor['seconds']:.2f}x its {anchor['seconds']:.2f} s (goal: >=, <= 1.5x)")
        print(f"  {floor()}")
        if not ok:
            failures.append(name)
        if not args.no_sweep:
            sweep(train, test, k)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
