"""Correct by default: mfcli with NO stopping flags against scikit-learn's default NMF, same run.

    python benchmarks/bench_defaults.py [--only NAME,...] [--threads N] [--quick] [--fuzz N [--seed S]]

For every matrix of a varied suite (tall, wide, square, dense, sparse-ish, noisy, near-exact low
rank, pure noise, count data, the bundled image samples; ranks 3 to 20):

- the anchor: scikit-learn ``NMF(n_components=R, random_state=0)`` with every other setting at
  its default (coordinate descent, nndsvda init, tol 1e-4, max_iter 200), fitted on X^T
  (scikit-learn wants samples x features) in X's own dtype;
- mfcli: ``mfcli.models.nmf.nmf(X, R)`` with every setting at its default (what
  ``mfcli factorize X -r R`` runs);

and prints, per matrix, both relative errors ||X - WH||_F / ||X||_F (computed the same way, in
float64, from each one's factors), the error ratio mfcli / scikit-learn, both times, the time
ratio, mfcli's iterations and stop reason; then the summed time ratio over the suite.

Goal (issue 13): error ratio <= 1 on every matrix, summed time ratio <= 0.5. The machine may be
shared: the load average is printed before and after.

``--fuzz N``: instead of the suite, N random matrices (seed ``--seed``), as matrices no one tuned
for: 20-3000 x 30-5000, rank 2-24, low rank (exact, 1% or 10% noise), uniform, |N(0,1)|,
squared exponential (heavy tailed) or Poisson counts; the same table, then how many errors are
above scikit-learn's, by kind of matrix.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np


def low_rank(m: int, n: int, rank: int, noise: float, seed: int, *, dirichlet: bool = False) -> np.ndarray:
    """X = W H + noise (noise relative to the mean entry; Gaussian, clipped at 0)."""
    rng = np.random.default_rng(seed)
    W = np.abs(rng.standard_normal((m, rank)))
    H = rng.dirichlet(np.full(rank, 0.5), size=n).T if dirichlet else np.abs(rng.standard_normal((rank, n)))
    X = W @ H
    if noise:
        X += noise * X.mean() * rng.standard_normal((m, n))
        np.maximum(X, 0, out=X)
    return X


def counts(m: int, n: int, rank: int, seed: int) -> np.ndarray:
    """Sparse-ish count data: Poisson draws of a low-rank intensity with mean 0.1 (about 90% zeros)."""
    rng = np.random.default_rng(seed)
    intensity = rng.gamma(0.3, 1.0, (m, rank)) @ rng.gamma(0.3, 1.0, (rank, n))
    intensity *= 0.1 / intensity.mean()
    return rng.poisson(intensity).astype(np.float64)


def random_case(rng: np.random.Generator, index: int) -> tuple[str, str, np.ndarray, int]:
    """One matrix of the --fuzz set: (name, kind, X, rank), made by the suite's own generators
    where a kind has one."""
    m = int(rng.choice([20, 50, 100, 200, 500, 1000, 3000]))
    n = int(rng.choice([30, 80, 200, 600, 2000, 5000]))
    rank = int(rng.integers(2, min(m, n, 25)))
    kind = str(rng.choice(["lowrank", "uniform", "abs", "counts", "exp"]))
    seed = int(rng.integers(2**31))
    if kind == "lowrank":
        noise = float(rng.choice([0.0, 0.01, 0.1]))
        kind = f"lowrank+{noise:g}"
        X = low_rank(m, n, rank, noise, seed)
    elif kind == "counts":
        X = counts(m, n, rank, seed)
    else:
        draw = np.random.default_rng(seed)
        X = {"uniform": lambda: draw.random((m, n)), "abs": lambda: np.abs(draw.standard_normal((m, n))),
             "exp": lambda: draw.exponential(1.0, (m, n)) ** 2}[kind]()
    if not X.any():  # sparse counts of a small matrix can all be zero: NMF of nothing
        X[0, 0] = 1.0
    return f"fuzz{index}-{m}x{n}", kind, X, rank


def sample(name: str) -> np.ndarray:
    from mfcli.io import load_dataset

    return np.asarray(load_dataset(f"sample:{name}").X)


def suite(quick: bool = False) -> list[tuple[str, str, object, int]]:
    """(name, description, X or a function making it, rank): features x samples, mfcli's orientation."""
    cases = [
        ("dense", "400 x 4096, rank 15 + 5% noise", lambda: low_rank(400, 4096, 15, 0.05, 1), 15),
        ("tall", "20000 x 20, rank 5 + 1% noise", lambda: low_rank(20000, 20, 5, 0.01, 2), 5),
        ("wide", "50 x 100000, rank 5 + 1% noise", lambda: low_rank(50, 100000, 5, 0.01, 3), 5),
        ("square-noise", "1000 x 1000 uniform noise, rank 10", lambda: np.random.default_rng(4).random((1000, 1000)),
         10),
        ("near-exact", "300 x 500, rank 8 + 1e-6 noise", lambda: low_rank(300, 500, 8, 1e-6, 5), 8),
        ("counts", "2000 x 1000 Poisson counts (~90% zeros), rank 10", lambda: counts(2000, 1000, 10, 6), 10),
        ("small", "60 x 40 |N(0,1)|, rank 3", lambda: np.abs(np.random.default_rng(7).standard_normal((60, 40))), 3),
        ("high-rank", "500 x 2000, rank 20 + 10% noise", lambda: low_rank(500, 2000, 20, 0.1, 8), 20),
        ("samson", "sample:samson 156 x 9025 float32, rank 3", lambda: sample("samson"), 3),
        ("moffett", "sample:moffett 184 x 2500 float32, rank 3", lambda: sample("moffett"), 3),
        ("urban", "sample:urban 162 x 94249 float32, rank 7", lambda: sample("urban"), 7),
        ("urban-synthetic", "162 x 94249 Dirichlet abundances + 1% noise, rank 7",
         lambda: low_rank(162, 94249, 7, 0.01, 9, dirichlet=True), 7),
    ]
    if quick:
        cases = [case for case in cases if case[0] not in ("urban", "urban-synthetic", "wide")]
    return cases


def run_sklearn(X: np.ndarray, rank: int):
    from sklearn.decomposition import NMF

    model = NMF(n_components=rank, random_state=0)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        coefficients = model.fit_transform(X.T)
        seconds = time.perf_counter() - start
    return model.components_.T, coefficients.T, seconds, model.n_iter_


def run_mfcli(X: np.ndarray, rank: int):
    from mfcli.models.nmf import nmf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        result = nmf(X, rank)
        seconds = time.perf_counter() - start
    layer = result.layers[0]
    return layer.W, layer.H, seconds, result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--only", help="comma-separated names of the matrices to run")
    parser.add_argument("--quick", action="store_true", help="leave out the three largest matrices")
    parser.add_argument("--threads", type=int, help="BLAS threads for both (default: the libraries' own)")
    parser.add_argument("--fuzz", type=int, metavar="N", help="N random matrices instead of the suite")
    parser.add_argument("--seed", type=int, default=0, help="seed of the --fuzz matrices (default 0)")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits

        threadpool_limits(args.threads)
    import sklearn

    from mfcli.metrics import relative_error
    from mfcli.models.nmf import nmf

    print(f"bench_defaults: mfcli nmf(X, R) vs scikit-learn {sklearn.__version__} NMF(n_components=R, random_state=0); "
          f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    nmf(np.random.default_rng(0).random((50, 300)), 3)  # warm imports and code paths outside the timings
    if args.fuzz:
        rng = np.random.default_rng(args.seed)
        cases = [random_case(rng, i) for i in range(args.fuzz)]
    else:
        cases = suite(args.quick)
    if args.only:
        wanted = set(args.only.split(","))
        cases = [case for case in cases if case[0] in wanted]
    header = (f"{'matrix':<16} {'rank':>4} {'sklearn err':>12} {'mfcli err':>12} {'err ratio':>9} "
              f"{'sklearn s':>9} {'mfcli s':>8} {'time ratio':>10} {'sk it':>5} {'mf it':>5}  stop")
    print(header)
    print("-" * len(header))
    sk_total = mf_total = 0.0
    worst = 0.0
    above: dict[str, list[int]] = {}  # description (--fuzz: kind) -> [matrices, errors above scikit-learn's]
    for name, description, make, rank in cases:
        X = make() if callable(make) else make
        W_sk, H_sk, sk_seconds, sk_iter = run_sklearn(X, rank)
        W_mf, H_mf, mf_seconds, result = run_mfcli(X, rank)
        X64 = np.asarray(X, dtype=np.float64)
        sk_error = relative_error(X64, np.asarray(W_sk, np.float64), np.asarray(H_sk, np.float64))
        mf_error = relative_error(X64, np.asarray(W_mf, np.float64), np.asarray(H_mf, np.float64))
        ratio = mf_error / sk_error if sk_error > 0 else (1.0 if mf_error == 0 else np.inf)
        worst = max(worst, ratio)
        counts_of = above.setdefault(description, [0, 0])
        counts_of[0] += 1
        counts_of[1] += ratio > 1
        sk_total += sk_seconds
        mf_total += mf_seconds
        print(f"{name:<16.16} {rank:>4} {sk_error:>12.6g} {mf_error:>12.6g} {ratio:>9.4f} {sk_seconds:>9.3f} "
              f"{mf_seconds:>8.3f} {mf_seconds / sk_seconds:>10.3f} {sk_iter:>5} {result.n_iter:>5}  "
              f"{result.summary['stop_reason']}", flush=True)
    print("-" * len(header))
    print(f"summed time: scikit-learn {sk_total:.2f} s, mfcli {mf_total:.2f} s, ratio {mf_total / sk_total:.3f} "
          f"(goal <= 0.5); largest error ratio {worst:.8f} (goal <= 1); errors above scikit-learn's: "
          f"{sum(c[1] for c in above.values())} of {len(cases)}")
    if args.fuzz:
        print("errors above scikit-learn's by kind: " + ", ".join(f"{kind} {c[1]} of {c[0]}" for kind, c in
                                                                  sorted(above.items())))
    else:
        print("matrices: " + "; ".join(f"{name}: {description}" for name, description, _, _ in cases))
    print(f"load average after: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")


if __name__ == "__main__":
    main()
