"""NMF speed: mfcli's accelerated HALS against scikit-learn's coordinate descent, same data, same run.

    python benchmarks/bench_nmf.py [--size 162x94249] [--rank 7] [--sklearn-iter 200] [--repeat 3]

A seeded synthetic nonnegative matrix of Urban's size (162 bands x 94249 pixels), rank 7:
X = W H + noise with W ~ U(0, 1), the columns of H Dirichlet(0.5) abundances (sum to one, many
nearly pure pixels, as in a hyperspectral scene), Gaussian noise of 1% of the mean, clipped at 0.

1. The anchor: scikit-learn ``NMF(n_components=7, solver='cd', init='nndsvda', max_iter=200)``
   on X^T (scikit-learn wants samples x features), float64. Its relative error
   ||X - WH||_F / ||X||_F becomes the target.
2. mfcli ``nmf`` is timed to reach that error (``target_error``, no other stopping rule), in
   float64 and float32, with its default initialization (nndsvda, as scikit-learn) and with SPA
   (which finds the nearly pure pixels of such data).
   Time includes the initialization; the float32 copy of X is made before timing.
3. Printed beside them: the time of one pass over X (W^T X), the floor of any method that reads
   the data; the two products of a fused pass, block by block on one thread, as plain W^T X and
   X H^T and as mfcli takes them (orientation for the layout, rank padded to 8), for float32 in
   both layouts and float64; and the peak memory mfcli allocated above what was allocated before
   its call (tracemalloc, which NumPy reports its buffers to, in a second run: tracing slows the
   timed run), in multiples of the input's size.
4. The inner-sweep factor ``alpha`` of accelerated HALS (at most 1 + alpha * rho inner sweeps,
   :mod:`mfcli.models.hals`): time to the same target in float64 with the default init for
   alpha = 0.1, 0.25 (the default), 0.5 and 1 (Gillis & Glineur's 0.5 among them).

5. What a user gets with no flags: ``mfcli factorize X.npy -r 7 -o OUT.h5`` (default model,
   init and stopping rule), the whole process timed from its start to the written file, X saved
   as the float64 ``.npy`` it was made as, byte-compiled first (as an installed mfcli is); its
   error against scikit-learn's and the ratio of the times, the import, reading and writing
   included in mfcli's.

Repeats (``--repeat``, default 3): scikit-learn's fit, the four mfcli runs of 2 (in turn, round
after round, so a slow spell of a shared machine touches all of them) and the command of 5 are
run that many times; the seconds and ratios printed are medians, each run's time beside them
(single runs of the float32 fit moved 0.045-0.067x between two runs of this benchmark). The
alpha sweep of 4 runs once.

Target (issue 3): mfcli / scikit-learn <= 0.15 in float64, about half that in float32; peak
memory at most 2x the input. The machine may be shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import time
import tracemalloc
import warnings
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_unmix import runs_text  # noqa: E402  (" (median of 3: ... s)" after a median)


def synthetic(m: int, n: int, rank: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    W = rng.random((m, rank))
    H = rng.dirichlet(np.full(rank, 0.5), size=n).T
    X = W @ H
    X += 0.01 * X.mean() * rng.standard_normal((m, n))
    np.maximum(X, 0, out=X)
    return X


def one_pass_seconds(X: np.ndarray, rank: int, repeat: int = 7) -> float:
    from mfcli.models.matrix import InMemoryMatrix

    data = InMemoryMatrix(X)
    W = np.random.default_rng(1).random((X.shape[0], rank)).astype(X.dtype)
    data.WtX(W)
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        data.WtX(W)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def run_mfcli(X: np.ndarray, rank: int, target: float, init: str | None, memory: bool = False, **kwargs):
    """(result, seconds, peak bytes allocated or None): the timed run has no tracing (tracemalloc
    slowed it by 7-30%); with ``memory`` a second, untimed run measures the peak allocation."""
    from mfcli.models.nmf import nmf

    if init is not None:
        kwargs["init"] = init

    def run():
        return nmf(X, rank, target_error=target, tol=0, max_iter=2000, **kwargs)

    start = time.perf_counter()
    result = run()
    seconds = time.perf_counter() - start
    peak = None
    if memory:
        tracemalloc.start()
        tracemalloc.reset_peak()
        before = tracemalloc.get_traced_memory()[0]
        run()
        peak = tracemalloc.get_traced_memory()[1] - before
        tracemalloc.stop()
    return result, seconds, peak


def pass_products_ms(X: np.ndarray, rank: int, repeat: int = 7) -> tuple[float, float]:
    """Median ms of the two products of one fused pass over X, block by block of the update grid
    on one BLAS thread (as each of mfcli's pass threads computes them): plain W^T X_J and
    X_J H_J^T, then mfcli's (mfcli.models.threads.wt_x, x_ht: the BLAS orientation chosen for
    X's layout, the rank padded to a multiple of 8)."""
    from threadpoolctl import threadpool_limits

    from mfcli.models.matrix import InMemoryMatrix, update_block_size
    from mfcli.models.threads import wt_x, x_ht

    rng = np.random.default_rng(1)
    Wt = np.ascontiguousarray(rng.random((rank, X.shape[0])).astype(X.dtype))
    H = rng.random((rank, X.shape[1])).astype(X.dtype)
    size = update_block_size(InMemoryMatrix(X))
    blocks = [(X[:, start:start + size], H[:, start:start + size]) for start in range(0, X.shape[1], size)]

    def seconds(products) -> float:
        start = time.perf_counter()
        for block, H_block in blocks:
            products(block, H_block)
        return time.perf_counter() - start

    plain, chosen = [], []
    with threadpool_limits(1):
        for _ in range(repeat):  # alternated, so that a busier moment of the machine hits both
            plain.append(seconds(lambda block, H_block: (Wt @ block, block @ H_block.T)))
            chosen.append(seconds(lambda block, H_block: (wt_x(Wt, block), x_ht(block, H_block))))
    return float(np.median(plain)) * 1e3, float(np.median(chosen)) * 1e3


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--size", default="162x94249", help="m x n of the synthetic matrix")
    parser.add_argument("--rank", type=int, default=7)
    parser.add_argument("--sklearn-iter", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=3, help="runs of scikit-learn's fit and of each timed mfcli "
                        "run (medians printed)")
    parser.add_argument("--threads", type=int, help="BLAS threads for both (default: the libraries' own); "
                                                    "1 gives steadier figures on a shared machine")
    args = parser.parse_args()
    if args.threads:
        from threadpoolctl import threadpool_limits  # a runtime dependency of mfcli

        threadpool_limits(args.threads)
    m, n = (int(v) for v in args.size.lower().split("x"))
    rank = args.rank

    from sklearn.decomposition import NMF as SklearnNMF

    from mfcli.metrics import relative_error
    from mfcli.models.nmf import nmf

    print(f"bench_nmf: synthetic {m} x {n}, rank {rank}; {platform.processor() or platform.machine()}, "
          f"{os.cpu_count()} cores, BLAS threads {args.threads or 'default'}, load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    X = synthetic(m, n, rank)
    X32 = X.astype(np.float32)
    print(f"input: {X.nbytes / 2**20:.1f} MiB in float64, {X32.nbytes / 2**20:.1f} MiB in float32")
    pass64, pass32 = one_pass_seconds(X, rank), one_pass_seconds(X32, rank)
    print(f"one pass over X (W^T X): {pass64 * 1e3:.1f} ms float64, {pass32 * 1e3:.1f} ms float32")
    for label, data in (("float32 C-ordered", X32), ("float32 column-major (a MATLAB file's layout)",
                                                       np.asfortranarray(X32)), ("float64 C-ordered", X)):
        plain, chosen = pass_products_ms(data, rank)
        print(f"the products of a pass, {label}, one thread: W^T X and X H^T {plain:.1f} ms, as mfcli "
              f"takes them {chosen:.1f} ms ({chosen / plain:.2f}x)")

    repeat = max(1, args.repeat)
    sk_runs = []
    for _ in range(repeat):  # seeded: every fit is the same
        model = SklearnNMF(n_components=rank, solver="cd", init="nndsvda", max_iter=args.sklearn_iter,
                           random_state=0)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            start = time.perf_counter()
            coefficients = model.fit_transform(X.T)  # n x r: our H^T
            sk_runs.append(time.perf_counter() - start)
    sk_seconds = float(np.median(sk_runs))
    target = relative_error(X, model.components_.T, coefficients.T)
    print(f"scikit-learn cd, nndsvda, {model.n_iter_} iterations: {sk_seconds:.3f} s{runs_text(sk_runs)}, "
          f"relative error {target:.6f}")
    print()
    with warnings.catch_warnings():  # two iterations: its ConvergenceWarning says nothing about the runs
        warnings.simplefilter("ignore")
        nmf(X[:, :2000], rank, max_iter=2)  # warm imports and code paths outside the timings

    header = f"{'mfcli run':<30} {'seconds':>8} {'ratio':>7} {'iters':>6} {'passes':>7} {'rel. error':>11} " \
             f"{'peak mem':>13}"
    print(header)
    print("-" * len(header))
    configurations = (("float64, default init", X, None), ("float32, default init", X32, None),
                      ("float64, init spa", X, "spa"), ("float32, init spa", X32, "spa"))
    runs: dict[str, list] = {label: [] for label, _, _ in configurations}
    for round_ in range(repeat):  # the configurations in turn, round after round
        for label, data, init in configurations:
            runs[label].append(run_mfcli(data, rank, target, init, memory=round_ == repeat - 1))
    for label, data, init in configurations:
        result, _, peak = runs[label][-1]
        times = [seconds for _, seconds, _ in runs[label]]
        seconds = float(np.median(times))
        layer = result.layers[0]
        error = relative_error(X, layer.W.astype(np.float64), layer.H.astype(np.float64))
        floor = pass64 if data.dtype == np.float64 else pass32
        print(f"{label:<30} {seconds:>8.3f} {seconds / sk_seconds:>7.3f} "
              f"{result.n_iter:>6d} {seconds / floor:>7.0f} {error:>11.6f} "
              f"{peak / 2**20:>7.1f} MiB {peak / data.nbytes:>4.2f}x"
              + ("" if error <= target * (1 + 1e-6) else "  (target not reached)") + runs_text(times))
    print()
    print("ratio = mfcli seconds / scikit-learn seconds (target <= 0.15 float64, ~0.075 float32);")
    print("passes = mfcli seconds / one pass over X; peak mem = allocated during the run, x input size (<= 2x).")
    print()
    print_alpha_sweep(X, rank, target, sk_seconds)
    print()
    print_command_with_no_flags(X, rank, target, sk_seconds, repeat)


def print_alpha_sweep(X: np.ndarray, rank: int, target: float, sk_seconds: float) -> None:
    """Time to the target for several inner-sweep factors alpha (float64, default init)."""
    from mfcli.models.hals import ALPHA, inner_sweeps

    header = f"{'alpha (float64, default init)':<30} {'H/W sweeps':>10} {'seconds':>8} {'ratio':>7} {'iters':>6}"
    print(header)
    print("-" * len(header))
    for alpha in (0.1, 0.25, 0.5, 1.0):
        result, seconds, _ = run_mfcli(X, rank, target, None, alpha=alpha)
        sweeps = "/".join(str(v) for v in inner_sweeps(*X.shape, rank, alpha))
        label = f"{alpha:g}" + (" (default)" if alpha == ALPHA else "")
        print(f"{label:<30} {sweeps:>10} {seconds:>8.3f} {seconds / sk_seconds:>7.3f} {result.n_iter:>6d}")
    print("H/W sweeps = the caps on inner sweeps per pass over X, for H and for W.")



def print_command_with_no_flags(X: np.ndarray, rank: int, target: float, sk_seconds: float, repeat: int = 1) -> None:
    """``mfcli factorize X.npy -r RANK`` with no other flag, as a whole process (item 5 above)."""
    import compileall
    import json
    import subprocess
    import tempfile

    import mfcli

    compileall.compile_dir(str(Path(mfcli.__file__).parent), quiet=1)
    with tempfile.TemporaryDirectory(prefix="bench-nmf-") as folder:
        path = Path(folder) / "X.npy"
        np.save(path, X)
        times = []
        for _ in range(repeat):
            started = time.perf_counter()
            run = subprocess.run([sys.executable, "-m", "mfcli", "-q", "factorize", str(path), "-r", str(rank), "-o",
                                  str(Path(folder) / "out.h5"), "--force", "--json"], capture_output=True, text=True,
                                 check=True)
            times.append(time.perf_counter() - started)
    seconds = float(np.median(times))
    summary = json.loads(run.stdout)
    print(f"mfcli factorize X.npy -r {rank}, no other flag (whole process): {seconds:.3f} s{runs_text(times)}, ratio "
          f"{seconds / sk_seconds:.3f}, {summary['n_iter']} iterations ({summary['stop_reason']}), relative error "
          f"{summary['relative_error']:.6f} ({summary['relative_error'] / target:.4f}x scikit-learn's)")


if __name__ == "__main__":
    main()
