"""Unmixing quality on the bundled scenes with ground truth (Samson, Moffett).

For every method, the endmembers at the ground truth's rank are matched to the true ones by
the Hungarian algorithm on spectral angle and the mean spectral angle distance (SAD, degrees)
is printed, with the per-material angles and the time. All methods run through their public
functions with the settings shown in the table; all numbers come from mfcli.metrics.

Methods: SPA, VCA, N-FINDR (pixels as endmembers); NMF (accelerated HALS, SPA init); minvol
(minimum-volume NMF, defaults: l1 pixel normalization, affine volume, lam 0.004, delta 0.5,
SPA init); ONMF (10 restarts, `factorize`'s default); deep ONMF (ranks 2r, r; the last layer's
basis; SPA start, as `mfcli unmix --init auto` runs it on images). Anchor:
scikit-learn's NMF (nndsvda) where scikit-learn is installed.

After each scene's table, when minvol is among the methods: minvol's mean SAD for delta = 0.3,
0.5 (the default), 0.75 and 1 (the other settings at their defaults), and the largest
difference from the default's.

Material order of the ground truths (checked on the spectra): Samson soil, tree, water;
Moffett water, soil, vegetation (red edge in the third).

Usage: python benchmarks/bench_unmixing.py [--datasets samson,moffett] [--methods spa,vca,...]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mfcli.io import load_dataset
from mfcli.io.truth import load_truth
from mfcli.metrics import match_endmembers, spectral_angles

MATERIALS = {"samson": ["soil", "tree", "water"], "moffett": ["water", "soil", "vegetation"]}


def run_spa(X, r):
    from mfcli.models.spa import spa

    return X[:, spa(X, r)]


def run_vca(X, r):
    from mfcli.models.endmembers import vca

    return X[:, vca(X, r, seed=0)]


def run_nfindr(X, r):
    from mfcli.models.endmembers import nfindr

    return X[:, nfindr(X, r)]


def run_nmf(X, r):
    from mfcli.models.nmf import nmf

    return nmf(X, r, init="spa", max_iter=500, tol=1e-6).layers[0].data_basis


def run_minvol(X, r, **params):
    from mfcli.models.minvol import minvol

    return minvol(X, r, **params).layers[0].data_basis


DELTAS = (0.3, 0.5, 0.75, 1.0)


def print_delta_sweep(X, r, E_true) -> None:
    """minvol's mean SAD for every delta of DELTAS, and the spread around the default's."""
    from mfcli.models.minvol import DEFAULT_DELTA

    sads = {}
    for delta in DELTAS:
        E = np.asarray(run_minvol(X, r, delta=delta), dtype=np.float64)
        sads[delta] = float(spectral_angles(E[:, match_endmembers(E, E_true)], E_true).mean())
    values = "  ".join(f"{delta:g}: {sad:.2f}" for delta, sad in sads.items())
    spread = max(abs(sad - sads[DEFAULT_DELTA]) for sad in sads.values())
    print(f"{'minvol, delta sweep':<24} {values}  (within {spread:.2f} deg of delta {DEFAULT_DELTA:g})")


def run_onmf(X, r):
    from mfcli.models.onmf import onmf

    return onmf(X, r, seed=0).layers[0].data_basis


def run_deep_onmf(X, r):
    from mfcli.models.deep import deep_factorize

    return deep_factorize(X, [2 * r, r], model="deep-onmf", init="spa", seed=0).layers[-1].data_basis


def run_sklearn(X, r):
    from sklearn.decomposition import NMF

    model = NMF(n_components=r, init="nndsvda", max_iter=1000, random_state=0)
    model.fit(np.asarray(X, dtype=np.float64).T)  # samples x features
    return model.components_.T


METHODS = {  # id: (label, function)
    "spa": ("SPA", run_spa),
    "vca": ("VCA", run_vca),
    "nfindr": ("N-FINDR", run_nfindr),
    "nmf": ("NMF (HALS, SPA init)", run_nmf),
    "minvol": ("minvol NMF", run_minvol),
    "onmf": ("ONMF", run_onmf),
    "deep-onmf": ("deep ONMF (2r, r)", run_deep_onmf),
    "sklearn": ("anchor: sklearn NMF", run_sklearn),
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="samson,moffett")
    parser.add_argument("--methods", default=",".join(METHODS))
    args = parser.parse_args()
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    rows = []
    for name in args.datasets.split(","):
        dataset = load_dataset(f"sample:{name}")
        truth = load_truth(f"sample:{name}", n_bands=dataset.n_features, n_pixels=dataset.n_samples,
                           image_shape=dataset.image_shape, pixel_order=dataset.pixel_order)
        E_true = truth.endmembers
        r = E_true.shape[1]
        X = dataset.X
        materials = MATERIALS.get(name, truth.material_names())
        print(f"\n{name}: {X.shape[0]} bands x {X.shape[1]} pixels, rank {r} ({', '.join(materials)})")
        print(f"{'method':<24} {'mean SAD':>9}  " + "  ".join(f"{m:>10}" for m in materials) + f"  {'seconds':>8}")
        for method in chosen:
            if method not in METHODS:
                raise SystemExit(f"unknown method {method!r}; choose from {', '.join(METHODS)}")
            label, function = METHODS[method]
            try:
                started = time.perf_counter()
                E = np.asarray(function(X, r), dtype=np.float64)
                seconds = time.perf_counter() - started
            except ImportError as exc:
                print(f"{label:<24} {'missing':>9}  ({exc})")
                continue
            matched = match_endmembers(E, E_true)
            sad = spectral_angles(E[:, matched], E_true)
            rows.append((name, method, float(sad.mean())))
            print(f"{label:<24} {sad.mean():>9.2f}  " + "  ".join(f"{v:>10.2f}" for v in sad) + f"  {seconds:>8.2f}")
        if "minvol" in chosen:
            print_delta_sweep(X, r, E_true)
    by_data = {}
    for data, method, value in rows:
        by_data.setdefault(data, {})[method] = value
    print("\nratios to the sklearn anchor (mean SAD, lower is better):")
    for data, values in by_data.items():
        anchor = values.get("sklearn")
        if anchor:
            best = min((v, m) for m, v in values.items() if m != "sklearn")
            print(f"  {data}: best {METHODS[best[1]][0]} {best[0]:.2f} deg = {best[0] / anchor:.3f} x anchor "
                  f"({anchor:.2f} deg)")


if __name__ == "__main__":
    main()
