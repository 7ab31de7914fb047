"""FCLS and NNLS on Urban-sized data: 94249 pixels, 162 bands, 6 endmembers.

The data are the bundled Urban stand-in (the published 6-material ground truth M A plus
noise), float32 as loaded. Timed: mfcli's batched FCLS and NNLS (block principal pivoting over
all pixels at once), best of 3. Anchor in the same run: SciPy's Lawson-Hanson NNLS
(scipy.optimize.nnls) on the augmented FCLS system, column by column, timed on a subsample and
extrapolated to all pixels. Target: FCLS under 2 s on the development machine.

Usage: python benchmarks/bench_fcls.py [--repeat 3] [--anchor-pixels 2000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

from mfcli.io import load_dataset
from mfcli.metrics import abundance_rmse
from mfcli.models.nnls import fcls, nnls


def best_of(repeat: int, function):
    times, value = [], None
    for _ in range(repeat):
        started = time.perf_counter()
        value = function()
        times.append(time.perf_counter() - started)
    return min(times), value


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--anchor-pixels", type=int, default=2000)
    args = parser.parse_args()
    dataset = load_dataset("sample:urban")
    X = dataset.X
    E = np.asarray(dataset.extras["M"], dtype=X.dtype)
    A_true = np.asarray(dataset.extras["A"], dtype=np.float64)
    m, n = X.shape
    r = E.shape[1]
    print(f"Urban stand-in: {m} bands x {n} pixels, {r} endmembers, {X.dtype}")

    fcls_seconds, A = best_of(args.repeat, lambda: fcls(E, X))
    nnls_seconds, A_nnls = best_of(args.repeat, lambda: nnls(E, X))
    sums = A.sum(axis=0, dtype=np.float64)
    print(f"mfcli fcls: {fcls_seconds:.3f} s (best of {args.repeat}), sums {sums.min():.6f}..{sums.max():.6f}, "
          f"aRMSE vs truth {abundance_rmse(A, A_true):.4f}, dtype {A.dtype}")
    print(f"mfcli nnls: {nnls_seconds:.3f} s (best of {args.repeat}), aRMSE vs truth {abundance_rmse(A_nnls, A_true):.4f}")

    from scipy.optimize import nnls as scipy_nnls

    rng = np.random.default_rng(0)
    sample = rng.choice(n, size=min(args.anchor_pixels, n), replace=False)
    delta = 1e3 * float(np.linalg.norm(E, axis=0).max())
    E_aug = np.vstack([E.astype(np.float64), delta * np.ones((1, r))])
    X_aug = np.vstack([X[:, sample].astype(np.float64), delta * np.ones((1, sample.size))])
    started = time.perf_counter()
    A_ref = np.column_stack([scipy_nnls(E_aug, X_aug[:, k])[0] for k in range(sample.size)])
    anchor_seconds = (time.perf_counter() - started) * n / sample.size
    difference = float(np.abs(A_ref - A[:, sample]).max())
    print(f"anchor scipy.optimize.nnls per pixel (augmented FCLS): {anchor_seconds:.3f} s for all pixels "
          f"(extrapolated from {sample.size}); max |difference| to mfcli fcls {difference:.2e}")
    print(f"ratio: mfcli fcls / scipy per pixel = {fcls_seconds / anchor_seconds:.3f}; "
          f"target fcls < 2 s: {'met' if fcls_seconds < 2.0 else 'NOT met'} ({fcls_seconds:.3f} s)")


if __name__ == "__main__":
    main()
