"""Unmixing quality of every method on the bundled scenes with ground truth, in one table.

    python benchmarks/bench_unmixing.py [--datasets samson,moffett,urban] [--methods spa,vca,...]
                                        [--seeds 3] [--threads N]

Scenes: Samson (3 materials), Moffett (3), sample:urban (the HYDICE Urban stand-in, 6 materials:
real spectra and abundance maps, seeded noise; it has pure pixels, so pure-pixel methods do
well on it and it cannot be the only test of a method).

For every method x scene: the endmembers at the ground truth's rank are matched to the true ones
by the Hungarian algorithm on spectral angle; the table gives the mean spectral angle (SAD,
degrees), each material's SAD, the abundance RMSE of the matched maps (aRMSE, fractions; and as
the field reports it, 100 x sqrt(mean squared error), percent) and the seconds. Every number
comes from mfcli.unmixing.evaluate.evaluate_unmixing (as `mfcli evaluate`). Abundances are the
exact FCLS of the pixels on each method's endmembers (sum to one, as the ground truth), so the
aRMSE column compares endmembers through the maps they give.

Methods (all through their public functions, with their defaults unless shown):
  spa, vca, nfindr         pixels as endmembers (VCA seed 0)
  nmf                      accelerated HALS, SPA init, 500 iterations, tol 1e-6
  minvol-fixed             minimum-volume NMF from SPA with lam 0.004 (the defaults before lam=auto and starts)
  minvol                   minvol's defaults: starts SPA, SNPA, VCA (smallest objective kept), lam=auto
  aa                       archetypal analysis (projected gradient), SPA init
  edaa                     EDAA: 20 runs, the paper's selection (defaults)
  deep-onmf                deep ONMF clusters (`mfcli unmix` without refinement): urban ranks 7,6,4,2, the
                           rank-6 layer; samson, moffett ranks 2r, r, the last layer; init spa (--init auto)
  deep-onmf+refine         the same hierarchy with its layers refined (`mfcli unmix`'s default, --refine edaa)
  h2nmf, h2nmf+refine      the same with H2NMF's top-down hierarchy (`mfcli unmix --model h2nmf`)
  sklearn                  anchor: scikit-learn NMF (nndsvda), where scikit-learn is installed

After each scene: minvol's delta sweep. After the table: the spread of EDAA and of the refined
unmix layers over --seeds seeds on --stability-datasets (stability without ground truth: what
docs/unmixing.md tells users to check).
The machine may be shared: the load average is printed with the times.
"""

from __future__ import annotations

import argparse
import os
import time

import numpy as np

from mfcli.io import load_dataset
from mfcli.io.truth import load_truth
from mfcli.unmixing.evaluate import evaluate_unmixing

MATERIALS = {"samson": ["soil", "tree", "water"], "moffett": ["water", "soil", "vegetation"]}
HIERARCHIES = {"urban": [7, 6, 4, 2]}  # others: [2r, r]


def hierarchy_ranks(name: str, r: int) -> list[int]:
    return HIERARCHIES.get(name, [2 * r, r])


def fcls_abundances(X, E):
    from mfcli.models.nnls import fcls

    return fcls(np.asarray(E, dtype=np.float64), np.asarray(X, dtype=np.float64))


def run_spa(X, r, name, seed):
    from mfcli.models.spa import spa

    return X[:, spa(X, r)]


def run_vca(X, r, name, seed):
    from mfcli.models.endmembers import vca

    return X[:, vca(X, r, seed=seed)]


def run_nfindr(X, r, name, seed):
    from mfcli.models.endmembers import nfindr

    return X[:, nfindr(X, r)]


def run_nmf(X, r, name, seed):
    from mfcli.models.nmf import nmf

    return nmf(X, r, init="spa", max_iter=500, tol=1e-6).layers[0].data_basis


def run_minvol(X, r, name, seed, **params):
    from mfcli.models.minvol import minvol

    return minvol(X, r, seed=seed, **params).layers[0].data_basis


def run_minvol_fixed(X, r, name, seed):
    return run_minvol(X, r, name, seed, init="spa", lam=0.004)


def run_aa(X, r, name, seed):
    from mfcli.models.archetypal import archetypal

    return archetypal(X, r, init="spa", seed=seed).layers[0].data_basis


def run_edaa(X, r, name, seed):
    from mfcli.models.edaa import edaa

    return edaa(X, r, seed=seed).layers[0].data_basis


def _hierarchy(X, r, name, seed, model: str, refine: bool):
    ranks = hierarchy_ranks(name, r)
    if model == "h2nmf":
        from mfcli.models.h2nmf import h2nmf

        result = h2nmf(X, ranks, seed=seed)
    else:
        from mfcli.models.deep import deep_factorize

        result = deep_factorize(X, ranks, model="deep-onmf", init="spa", seed=seed)
    if refine:
        from mfcli.models.refine import refine_layers

        refine_layers(X, result.layers, seed=seed)
    return result.layers[ranks.index(r)].data_basis


METHODS = {  # id: (label, function(X, r, scene name, seed) -> endmembers m x r)
    "spa": ("SPA", run_spa),
    "vca": ("VCA", run_vca),
    "nfindr": ("N-FINDR", run_nfindr),
    "nmf": ("NMF (HALS, SPA init)", run_nmf),
    "minvol-fixed": ("minvol, SPA, lam 0.004", run_minvol_fixed),
    "minvol": ("minvol (defaults)", run_minvol),
    "aa": ("AA", run_aa),
    "edaa": ("EDAA (20 runs)", run_edaa),
    "deep-onmf": ("deep ONMF clusters", lambda X, r, name, seed: _hierarchy(X, r, name, seed, "deep-onmf", False)),
    "deep-onmf+refine": ("unmix: deep ONMF refined", lambda X, r, name, seed: _hierarchy(X, r, name, seed,
                                                                                          "deep-onmf", True)),
    "h2nmf": ("H2NMF clusters", lambda X, r, name, seed: _hierarchy(X, r, name, seed, "h2nmf", False)),
    "h2nmf+refine": ("unmix: H2NMF refined", lambda X, r, name, seed: _hierarchy(X, r, name, seed, "h2nmf", True)),
    "sklearn": ("anchor: sklearn NMF", None),
}


def run_sklearn(X, r, name, seed):
    from sklearn.decomposition import NMF

    model = NMF(n_components=r, init="nndsvda", max_iter=1000, random_state=seed)
    model.fit(np.asarray(X, dtype=np.float64).T)  # samples x features
    return model.components_.T


METHODS["sklearn"] = ("anchor: sklearn NMF", run_sklearn)


def scene(name: str):
    dataset = load_dataset(f"sample:{name}")
    truth = load_truth(f"sample:{name}", n_bands=dataset.n_features, n_pixels=dataset.n_samples,
                       image_shape=dataset.image_shape, pixel_order=dataset.pixel_order)
    names = MATERIALS.get(name) or [n.split("-", 1)[-1].lower() for n in truth.material_names()]
    return np.asarray(dataset.X), truth.endmembers, truth.abundances, names


def score(X, E, E_true, A_true, names) -> dict:
    E = np.asarray(E, dtype=np.float64)
    return evaluate_unmixing(E, fcls_abundances(X, E), E_true, A_true, match="sad", names=names)


def load() -> str:
    return " ".join(f"{v:.1f}" for v in os.getloadavg())


def print_delta_sweep(X, r, E_true, A_true, names) -> None:
    """minvol's mean SAD for delta 0.3, 0.5 (the default), 0.75, 1 (SPA start, lam 0.004)."""
    from mfcli.models.minvol import DEFAULT_DELTA

    sads = {delta: score(X, run_minvol(X, r, "", 0, init="spa", lam=0.004, delta=delta), E_true, A_true,
                         names)["mean_sad"] for delta in (0.3, 0.5, 0.75, 1.0)}
    spread = max(abs(sad - sads[DEFAULT_DELTA]) for sad in sads.values())
    print("  minvol delta sweep (SPA, lam 0.004): " + "  ".join(f"{d:g}: {s:.2f}" for d, s in sads.items())
          + f"  (within {spread:.2f} deg of delta {DEFAULT_DELTA:g})")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", default="samson,moffett,urban")
    parser.add_argument("--methods", default=",".join(METHODS))
    parser.add_argument("--seeds", type=int, default=3, help="seeds of the stability check (0: skip it)")
    parser.add_argument("--stability-datasets", default="samson,moffett",
                        help="scenes of the stability check (EDAA on urban takes long)")
    parser.add_argument("--threads", type=int, help="BLAS threads (default: the library's)")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits  # a runtime dependency of mfcli

        threadpool_limits(args.threads)
    chosen = [m.strip() for m in args.methods.split(",") if m.strip()]
    unknown = [m for m in chosen if m not in METHODS]
    if unknown:
        raise SystemExit(f"unknown method(s) {', '.join(unknown)}; choose from {', '.join(METHODS)}")
    print(f"bench_unmixing: {os.cpu_count()} cores, load average {load()}")
    header = f"{'scene':<8} {'method':<26} {'mean SAD':>8} {'aRMSE':>7} {'aRMSE %':>8} {'seconds':>8}  per-material SAD"
    print(header)
    print("-" * len(header))
    stability = []
    for name in args.datasets.split(","):
        X, E_true, A_true, names = scene(name)
        r = E_true.shape[1]
        for method in chosen:
            label, function = METHODS[method]
            try:
                started = time.perf_counter()
                E = function(X, r, name, 0)
                seconds = time.perf_counter() - started
            except ImportError as exc:
                print(f"{name:<8} {label:<26} missing ({exc})")
                continue
            except TypeError as exc:  # a parameter this version of mfcli does not have
                print(f"{name:<8} {label:<26} not available ({exc})")
                continue
            doc = score(X, E, E_true, A_true, names)
            per = ", ".join(f"{n} {s:.2f}" for n, s in zip(names, doc["sad"]))
            print(f"{name:<8} {label:<26} {doc['mean_sad']:>8.2f} {doc['armse']:>7.4f} {100 * doc['armse']:>8.2f} "
                  f"{seconds:>8.2f}  {per}", flush=True)
            if method in ("edaa", "deep-onmf+refine") and args.seeds > 1 and name in args.stability_datasets.split(","):
                stability.append((name, method, label, X, r, E_true, A_true, names))
        if "minvol-fixed" in chosen:
            print_delta_sweep(X, r, E_true, A_true, names)
    if stability:
        print(f"\nstability over seeds 0..{args.seeds - 1} (mean SAD per seed; the spread needs no ground truth: "
              "largest angle between the same endmember across seeds, after matching)")
        from mfcli.metrics import match_endmembers, spectral_angles

        for name, method, label, X, r, E_true, A_true, names in stability:
            bases = [np.asarray(METHODS[method][1](X, r, name, seed), dtype=np.float64) for seed in range(args.seeds)]
            # (seed 0 again: the table's run is not kept, and recomputing it keeps this loop simple)
            sads = [score(X, E, E_true, A_true, names)["mean_sad"] for E in bases]
            spread = max(float(spectral_angles(E[:, match_endmembers(E, bases[0])], bases[0]).max()) for E in bases)
            print(f"  {name:<8} {label:<26} " + " ".join(f"{s:.2f}" for s in sads)
                  + f"   largest endmember change across seeds {spread:.2f} deg")
    print(f"\nload average at the end: {load()}")


if __name__ == "__main__":
    main()
