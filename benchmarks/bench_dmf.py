"""DMF and DMF-D on MovieLens 1M with the DMF papers' masks, beside the paper's tables and WALS.

    python benchmarks/bench_dmf.py [--time-budget 600] [--holdout 0.1] [--device auto] [--skip-dmf-d]

* Extendability (Table 1 of Nguyen et al., ../shared/seeds/002): 10% of the users and 10% of the
  items of the training mask are held out of training (seed 0). DMF is trained on area I of the
  training mask (early stopping on the validation mask), then predicts the test-mask ratings of
  area I (seen users and items), II (unseen users), III (unseen items) and IV (both unseen) from
  the held-out users' and items' training ratings, without retraining. mfcli's WALS gets the same
  split, with fold-in for the unseen users and items.
* Discrete completion (Table 2): DMF-D trained on the whole training mask; RMSE and MAE of its
  discrete predictions on the test mask.

Each DMF training stops at --time-budget seconds. The masks hold 71.25/3.75/25 % of the ratings
(the authors' public code); the paper reports 75/5/20 random splits averaged over 5 runs.
Needs torch (pip install 'mfcli[deep]') and ../shared/data/movielens (skips otherwise).
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("MFCLI_SHARED_DATA", REPO.parent / "shared" / "data")) / "movielens" / "ml-1m"

PAPER_TABLE_1 = {"I": 0.850, "II": 0.883, "III": 0.864, "IV": 0.904}
PAPER_TABLE_2 = {"rmse": 0.898, "mae": 0.625}
# Lambdas of the fold-in of unseen users and items measured beside the network's output (None).
FOLD_IN_GRID = (None, 100.0, 30.0, 10.0, 3.0, 1.0)
# mfcli's WALS beside DMF, in both tables.
WALS_SETTINGS = {"rank": 32, "reg": 0.08, "reg_bias": 0.1, "w0": 0.001, "epochs": 8}


def hardware() -> str:
    model = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    model = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    return f"{model}, {os.cpu_count()} cores"


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--time-budget", type=float, default=600.0, help="seconds per DMF training (--max-time)")
    parser.add_argument("--holdout", type=float, default=0.1, help="fraction of users and of items held out")
    parser.add_argument("--epochs", type=int, default=None, help="maximum epochs (default: the model's)")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--skip-dmf-d", action="store_true")
    args = parser.parse_args(argv)
    if not DATA.is_dir():
        print(f"SKIP: MovieLens 1M folder {DATA} is absent (set MFCLI_SHARED_DATA to the shared data folder)")
        return 0
    try:
        import torch
    except ImportError:
        print("SKIP: torch is not installed (pip install 'mfcli[deep]')")
        return 0

    from mfcli.completion.data import holdout_split, mask_split
    from mfcli.completion.dmf import DMF
    from mfcli.completion.evaluate import align, evaluate, evaluate_areas, extend_factor_model, restrict
    from mfcli.completion.models import fit_wals
    from mfcli.io.ratings import read_mask, read_ratings
    from mfcli.metrics import mae, rmse

    ratings = read_ratings(str(DATA / "rating.npz"))
    train, validation, test = mask_split(ratings, [read_mask(str(DATA / f"{p}_mask.npz"))
                                                   for p in ("train", "val", "test")])
    print(f"hardware: {hardware()}; torch {torch.__version__}, device {args.device}, "
          f"cuda available: {torch.cuda.is_available()}")
    print(f"MovieLens 1M masks: {len(train)} train, {len(validation)} validation, {len(test)} test ratings")

    seen_users, seen_items = holdout_split(train, args.holdout, args.holdout, seed=0)
    area_one = restrict(train, seen_users, seen_items)
    val_one = validation.reindex(area_one.user_ids, area_one.item_ids, drop_unknown=True)
    print(f"held out {int((~seen_users).sum())} users and {int((~seen_items).sum())} items; "
          f"DMF trains on {len(area_one)} ratings of area I")

    extra = {"time_budget": args.time_budget, "device": args.device}
    if args.epochs:
        extra["epochs"] = args.epochs
    start = time.perf_counter()
    dmf = DMF(**extra).fit(area_one, validation=val_one)
    dmf_seconds = time.perf_counter() - start
    dmf_areas = evaluate_areas(dmf.predictor(train), test, seen_users, seen_items)

    # Unseen users and items: the network's output alone, and folded in toward it (fold_in_embeddings)
    # with the lambdas of FOLD_IN_GRID, measured on the validation mask (areas II-IV).
    fold_in_default = dmf.params.get("fold_in")
    sweep = {}
    for lam in FOLD_IN_GRID:
        dmf.params["fold_in"] = lam
        predictor = dmf.predictor(train)
        sweep[lam] = (evaluate_areas(predictor, validation, seen_users, seen_items),
                      evaluate_areas(predictor, test, seen_users, seen_items))
    dmf.params["fold_in"] = fold_in_default

    start = time.perf_counter()
    wals, _ = fit_wals(area_one, **WALS_SETTINGS)
    wals_seconds = time.perf_counter() - start
    wals_areas = evaluate_areas(extend_factor_model(wals, train), test, seen_users, seen_items)

    p = dmf.params
    print(f"\nDMF: hidden {p['hidden']}, latent {p['latent']}, dropout {p['dropout']}, batch {p['batch_size']}x"
          f"{p['batch_size']}, lr {p['lr']} (x{p['lr_decay']}/epoch), weight decay {p['weight_decay']}; "
          f"{len(dmf.history_['seconds'])} epochs in {dmf_seconds:.0f} s ({dmf.stopped_by_}, best epoch "
          f"{dmf.best_epoch_}), device {dmf.device_}, {dmf.threads_} threads")
    settings = ", ".join(f"{key} {value}" for key, value in WALS_SETTINGS.items())
    print(f"WALS: {settings}, in {wals_seconds:.1f} s; unseen users/items by fold-in")
    print(f"\nTable 1 (RMSE by area)  {'paper DMF':>10}{'mfcli DMF':>11}{'ratio':>8}{'mfcli WALS':>12}{'test n':>9}")
    for area in ("I", "II", "III", "IV"):
        ours = dmf_areas[area]["rmse"]
        theirs = wals_areas[area]["rmse"]
        fmt = lambda v: f"{v:.4f}" if v is not None else "-"  # noqa: E731
        ratio = f"{ours / PAPER_TABLE_1[area]:.3f}" if ours is not None else "-"
        print(f"  area {area:<18}{PAPER_TABLE_1[area]:>10.3f}{fmt(ours):>11}{ratio:>8}{fmt(theirs):>12}"
              f"{dmf_areas[area]['n_test']:>9}")

    print("\nDMF on unseen users and items: the network's output (fold-in off) or folded in toward it with lambda;"
          "\nRMSE by area on the validation mask | on the test mask")
    print(f"  {'fold-in lambda':<16}" + "".join(f"{'val ' + a:>10}" for a in ("I", "II", "III", "IV"))
          + "".join(f"{'test ' + a:>10}" for a in ("I", "II", "III", "IV")))
    for lam, (val_areas, test_areas) in sweep.items():
        label = "off" if lam is None else f"{lam:g}"
        if lam == fold_in_default:
            label += " (default)"
        cells = [val_areas[a]["rmse"] for a in ("I", "II", "III", "IV")] + \
            [test_areas[a]["rmse"] for a in ("I", "II", "III", "IV")]
        print(f"  {label:<16}" + "".join(f"{v:>10.4f}" if v is not None else f"{'-':>10}" for v in cells))

    if not args.skip_dmf_d:
        start = time.perf_counter()
        dmfd = DMF(discrete=True, **extra).fit(train, validation=validation)
        dmfd_seconds = time.perf_counter() - start
        predictor = dmfd.predictor(train)
        report = evaluate(predictor, test)
        continuous = dmfd.discrete_report(predictor, test)
        wals_full, _ = fit_wals(train, **WALS_SETTINGS)
        rounded = np.clip(np.round(wals_full.scores(*align(wals_full, test))), 1, 5)
        wals_report = evaluate(wals_full, test)
        print(f"\nDMF-D: {len(dmfd.history_['seconds'])} epochs in {dmfd_seconds:.0f} s ({dmfd.stopped_by_}), "
              f"lambda {dmfd.history_['lambda'][0]:g} -> {dmfd.history_['lambda'][-1]:.1f}, boundaries "
              + ", ".join(f"{b:.3f}" for b in dmfd.boundaries_))
        print(f"Table 2 (discrete)      {'paper DMF-D':>12}{'mfcli DMF-D':>13}{'ratio':>8}{'WALS rounded':>14}")
        for key, wals_value in (("rmse", rmse(test.values, rounded)), ("mae", mae(test.values, rounded))):
            print(f"  {key.upper():<22}{PAPER_TABLE_2[key]:>12.3f}{report[key]:>13.4f}"
                  f"{report[key] / PAPER_TABLE_2[key]:>8.3f}{wals_value:>14.4f}")
        print(f"  (DMF-D before its quantizer: RMSE {continuous['continuous_rmse']:.4f}; WALS continuous: RMSE "
              f"{wals_report['rmse']:.4f}, MAE {wals_report['mae']:.4f})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
