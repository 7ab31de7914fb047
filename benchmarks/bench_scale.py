"""Scale: `mfcli factorize` on a 162 x 1,000,000 float32 HDF5 matrix (about 650 MB) with each engine.

    python benchmarks/bench_scale.py [--path FILE.h5] [--keep] [--pixels 100000,1000000]
                                     [--engines memory,stream,dask] [--iters 10] [--threads N]

The data (never committed): X = W H + noise, 162 bands x n pixels, rank 7, W ~ U(0, 1), the
columns of H Dirichlet(0.5) abundances, Gaussian noise of 1% of the mean, clipped at 0; written
block by block of 50,000 columns into a chunked HDF5 file (so making it needs about 50 MB, not
650 MB), the first 10^5 pixels also into a second file for the scaling figure. By default both
files go to the temporary folder and are deleted at the end; ``--path`` names the large one
and ``--keep`` keeps them (a kept file of the right size is reused).

Each engine x size runs the real command, ``mfcli factorize FILE -r 7 --engine E --max-iter
ITERS --tol 0 -o OUT.h5`` (nmf, accelerated HALS, default nndsvda start), in its own Python
subprocess, which prints:

- s/iter: the median of the per-iteration times recorded in the result file (one pass over X
  per iteration on the stream engine, two products in memory and on Dask);
- total s: the whole command (sha256 of the file, reading or opening it, the one-pass input
  check, the initialization, the iterations, writing the result);
- peak RSS: the subprocess's VmHWM (absolute), and above its baseline (VmRSS after importing
  mfcli, NumPy, h5py and, for dask, Dask, before the command runs).

Printed after: time per iteration at 10^6 over 10^5 pixels (linear scaling gives 10), and
whether the stream and dask engines stayed under 400 MB of peak RSS on the large file (issue 9).
The machine may be shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

BANDS, RANK, SEED = 162, 7, 0
BLOCK = 50_000
PEAK_LIMIT_MB = 400
NOISE = 0.01 * 0.5  # 1% of the mean of W H (W ~ U(0, 1), columns of H summing to 1)


def make_matrix(path: Path, n: int) -> None:
    """Write the synthetic matrix block by block (never whole in memory)."""
    import h5py

    rng = np.random.default_rng(SEED)
    W = rng.random((BANDS, RANK)).astype(np.float32)
    tmp = path.with_name(path.name + ".part")
    with h5py.File(tmp, "w") as f:
        dataset = f.create_dataset("Y", shape=(BANDS, n), dtype=np.float32, chunks=(BANDS, 4096))
        f.attrs["mfcli_bench_scale"] = json.dumps({"seed": SEED, "rank": RANK, "n": n})
        for start in range(0, n, BLOCK):
            stop = min(start + BLOCK, n)
            H = rng.dirichlet(np.full(RANK, 0.5), size=stop - start).T.astype(np.float32)
            block = W @ H
            block += np.float32(NOISE) * rng.standard_normal(block.shape, dtype=np.float32)
            np.maximum(block, 0, out=block)
            dataset[:, start:stop] = block
    os.replace(tmp, path)


def matching(path: Path, n: int) -> bool:
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return f["Y"].shape == (BANDS, n) and json.loads(f.attrs["mfcli_bench_scale"])["n"] == n
    except (OSError, KeyError, ValueError):
        return False


def vm(key: str) -> int:
    with open("/proc/self/status") as fh:
        return next(int(line.split()[1]) * 1024 for line in fh if line.startswith(key + ":"))


def child(engine: str, path: str, iters: int, out: str) -> None:
    """Run one `mfcli factorize` in this process and print its figures as JSON."""
    import h5py  # noqa: F401  (the baseline counts what every engine imports)

    import mfcli.models.nmf  # noqa: F401
    from mfcli.cli.main import cli

    if engine == "dask":
        import dask.array  # noqa: F401
    baseline = vm("VmRSS")
    stdout = io.StringIO()
    started = time.perf_counter()
    with contextlib.redirect_stdout(stdout):
        try:
            cli.main(["-q", "factorize", path, "-r", str(RANK), "--engine", engine, "--max-iter", str(iters),
                      "--tol", "0", "-o", out, "--force", "--json"], standalone_mode=False)
        except SystemExit as exit_:  # pragma: no cover - errors are printed by the CLI
            if exit_.code:
                raise
    total = time.perf_counter() - started
    peak = vm("VmHWM")
    from mfcli.io.result import read_result

    result = read_result(out)
    seconds = result.layers[0].history["seconds"]
    print(json.dumps({"engine": engine, "s_per_iter": float(np.median(seconds)), "total": total,
                      "iterations_s": float(seconds.sum()), "peak": peak, "baseline": baseline,
                      "error": result.layers[0].relative_error}))


def measure(engine: str, path: Path, iters: int, env: dict) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_scale_")) / "result.h5"
    try:
        done = subprocess.run([sys.executable, __file__, "--child", engine, str(path), str(iters), str(out)],
                              capture_output=True, text=True, env=env)
        if done.returncode:
            raise RuntimeError(f"{engine} on {path} failed:\n{done.stderr[-3000:]}")
        return json.loads(done.stdout.strip().splitlines()[-1])
    finally:
        out.unlink(missing_ok=True)
        out.parent.rmdir()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--path", help="the large HDF5 file (default: in the temporary folder)")
    parser.add_argument("--keep", action="store_true", help="keep the generated files (and reuse them next time)")
    parser.add_argument("--pixels", default="100000,1000000", help="sizes, the largest being the file's")
    parser.add_argument("--engines", default="memory,stream,dask")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, help="BLAS threads in the subprocesses (default: the libraries' own)")
    parser.add_argument("--child", nargs=4, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        engine, path, iters, out = args.child
        child(engine, path, int(iters), out)
        return

    sizes = sorted(int(s) for s in args.pixels.split(","))
    engines = args.engines.split(",")
    env = dict(os.environ)
    if args.threads:
        env["OPENBLAS_NUM_THREADS"] = env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = str(args.threads)
    large = Path(args.path) if args.path else Path(tempfile.gettempdir()) / f"mfcli_bench_scale_{BANDS}x{sizes[-1]}.h5"
    files = {n: large if n == sizes[-1] else large.with_name(f"{large.stem}_first{n}.h5") for n in sizes}
    print(f"bench_scale: {os.cpu_count()} cores, BLAS threads {args.threads or 'default'}, "
          f"load average {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    try:
        for n, path in files.items():
            if matching(path, n):
                print(f"reusing {path} ({BANDS} x {n} float32)")
                continue
            started = time.perf_counter()
            make_matrix(path, n)
            print(f"wrote {path}: {BANDS} x {n} float32, {path.stat().st_size / 1e6:.0f} MB, "
                  f"in {time.perf_counter() - started:.1f} s (block by block)")
        rows = {}
        print(f"\nmfcli factorize -r {RANK} (nmf, HALS), {args.iters} iterations, float32")
        print(f"{'engine':<8} {'pixels':>9} {'s/iter':>8} {'total s':>8} {'peak RSS MB':>12} {'above base MB':>14} "
              f"{'rel. error':>11}")
        for engine in engines:
            for n, path in files.items():
                row = measure(engine, path, args.iters, env)
                rows[engine, n] = row
                print(f"{engine:<8} {n:>9} {row['s_per_iter']:>8.3f} {row['total']:>8.1f} {row['peak'] / 1e6:>12.0f} "
                      f"{(row['peak'] - row['baseline']) / 1e6:>14.0f} {row['error']:>11.6f}", flush=True)
        if len(sizes) > 1:
            small, big = sizes[0], sizes[-1]
            print(f"\ntime per iteration, {big} / {small} pixels (linear: {big / small:g}):")
            for engine in engines:
                ratio = rows[engine, big]["s_per_iter"] / rows[engine, small]["s_per_iter"]
                print(f"  {engine:<8} {ratio:6.2f}")
        print(f"\npeak RSS on {BANDS} x {sizes[-1]} ({files[sizes[-1]].stat().st_size / 1e6:.0f} MB), limit "
              f"{PEAK_LIMIT_MB} MB for stream and dask:")
        for engine in engines:
            peak = rows[engine, sizes[-1]]["peak"] / 1e6
            verdict = "" if engine == "memory" else ("  ok" if peak < PEAK_LIMIT_MB else "  OVER")
            print(f"  {engine:<8} {peak:6.0f} MB{verdict}")
        for engine in engines:
            if engine != "memory":
                ratio = rows[engine, sizes[-1]]["s_per_iter"] / rows["memory", sizes[-1]]["s_per_iter"] \
                    if ("memory", sizes[-1]) in rows else float("nan")
                print(f"  {engine} / memory time per iteration at {sizes[-1]} pixels: {ratio:.2f}")
    finally:
        if not args.keep:
            for path in files.values():
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
