"""Scale: `mfcli factorize` on a 162 x 1,000,000 float32 HDF5 matrix (about 650 MB) with each engine.

    python benchmarks/bench_scale.py [--path FILE.h5] [--keep] [--pixels 100000,1000000]
                                     [--engines memory,stream,dask,dask-file,dask-processes]
                                     [--iters 10] [--threads N] [--repeat 3]
                                     [--no-flags memory,stream]

The data (never committed): X = W H + noise, 162 bands x n pixels, rank 7, W ~ U(0, 1), the
columns of H Dirichlet(0.5) abundances, Gaussian noise of 1% of the mean, clipped at 0; written
block by block of 50,000 columns into a chunked HDF5 file (so making it needs about 50 MB, not
650 MB), the first 10^5 pixels also into a second file for the scaling figure. By default both
files go to the temporary folder and are deleted at the end; ``--path`` names the large one
and ``--keep`` keeps them (a kept file of the right size is reused).

Each engine x size runs the real command, ``mfcli factorize FILE -r 7 --engine E --max-iter
ITERS --tol 0 -o OUT.h5`` (nmf, accelerated HALS, default nndsvda start), in its own Python
subprocess. The engines:

- memory: X read whole (the anchor of the ratios);
- stream: the file read once per iteration by a pool of threads, bounded memory;
- dask: ``--engine dask`` as a user runs it (``--scheduler`` unset: threads of this process),
  X held in memory when it takes at most half the memory available (here it does);
- dask-file: the same with X not held (``PERSIST_SHARE`` set to 0): the file read at each
  pass, what the engine does when X does not fit;
- dask-processes: ``--scheduler`` at a ``distributed.LocalCluster`` of one single-threaded
  worker process per core started in the subprocess (X held on the workers): what a local
  cluster of processes costs against threads.

Printed for each: s/iter (the median of the per-iteration times recorded in the result file),
its ratio to memory's at the same size (goals, issue 19: stream <= 1.3, dask <= 2 at 10^6
pixels), total s (the whole command: sha256 of the file, opening or reading it, the one-pass
input check, the initialization, the iterations, writing the result), peak RSS (the
subprocess's VmHWM; for dask-processes the workers' peaks added, the scheduler and nannies
being in the subprocess), its part above the baseline (VmRSS after importing mfcli, NumPy,
h5py and, for dask, Dask, before the command runs), whether X was held, the tasks (or thread
pool jobs) submitted per solver step, and the load average when the row ended. After the
table: the mean time of a pipelined solver step and the time spent in the solver's update,
summed over the threads that ran it: the pool's, for the stream engine and the dask engine on
threads (each grid block's update is a task, as in the memory engine's pass threads); this
thread's with a cluster, the rest of such a step being the wait for the cluster. For
dask-processes, Dask's task stream of the whole command is summed by kind of task after the
table: tasks, seconds computing, seconds moving data between workers, against the command's
wall time (what the scheduling and the messages cost is the difference).

Repeats (``--repeat``, default 3): the whole table is run that many times, round after round (every
engine and size in turn in each round, so a slow spell of a shared machine touches all of them),
each run's row printed as it ends; the figures after the table are medians over the runs (the
step times and the task stream of the median run of each engine and size), and the ratios are
of those medians.

Printed after: time per iteration at 10^6 over 10^5 pixels (linear scaling gives 10), and
whether stream and dask-file stayed under 400 MB of peak RSS on the large file (issue 9; the
dask engine holds X when memory allows, by design). The machine may be shared: the load
average is printed; ``--threads 1`` (one BLAS thread everywhere) makes the figures steadier on
a busy machine.

Last, what a user gets with no flags on the large file: ``mfcli factorize FILE -r 7 -o OUT.h5``
(the memory engine) and the same with ``--engine stream`` (``--no-flags``: the engines, each run
once), whole processes from start to written file, byte-compiled first: seconds, iterations and
why they stopped (the default stopping rule), relative error, and the ratio to memory's seconds.
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


def count_steps():
    """Count the solver steps run through the engines' own passes (the pipelined one, and the
    stream engine's pass over mapped blocks), the tasks they submit, their time and the time
    spent in the solver's update (summed over the threads running it)."""
    from mfcli.engines import base

    counts = {"steps": 0, "tasks": 0, "step_s": 0.0, "update_s": 0.0}

    def counting(original):
        def counted_pass(runner, bounds, load, W, update, *args, **kwargs):
            submit = runner.submit

            def counted(*task):
                counts["tasks"] += 1
                return submit(*task)

            def timed(B, cols):
                started = time.perf_counter()
                try:
                    return update(B, cols)
                finally:
                    counts["update_s"] += time.perf_counter() - started

            runner.submit = counted
            started = time.perf_counter()
            try:
                return original(runner, bounds, load, W, timed, *args, **kwargs)
            finally:
                counts["step_s"] += time.perf_counter() - started
                del runner.submit  # the class's method again
                counts["steps"] += 1

        return counted_pass

    import mfcli.engines.dask
    import mfcli.engines.stream

    for name in ("pipelined_project_update", "blockwise_view_pass"):
        wrapped = counting(getattr(base, name))
        for module in (base, mfcli.engines.dask, mfcli.engines.stream):
            if hasattr(module, name):
                setattr(module, name, wrapped)
    return counts


def task_summary(records: list) -> dict:
    """Dask task stream records summed by kind (the task function's name)."""
    kinds: dict = {}
    for record in records:
        from dask.utils import key_split

        name = key_split(record["key"])
        entry = kinds.setdefault(name, {"tasks": 0, "compute": 0.0, "transfer": 0.0, "other": 0.0})
        entry["tasks"] += 1
        for span in record["startstops"]:
            kind = span["action"] if span["action"] in ("compute", "transfer") else "other"
            entry[kind] += span["stop"] - span["start"]
    return kinds


def child(engine: str, path: str, iters: int, out: str) -> None:
    """Run one `mfcli factorize` in this process and print its figures as JSON."""
    import h5py  # noqa: F401  (the baseline counts what every engine imports)

    import mfcli.models.nmf  # noqa: F401
    from mfcli.cli.main import cli

    options, cluster, client = ["--engine", engine.split("-")[0]], None, None
    if engine.startswith("dask"):
        import dask.array  # noqa: F401

        import mfcli.engines.dask as dask_engine
    if engine == "dask-file":
        dask_engine.PERSIST_SHARE = 0.0
    if engine == "dask-processes":
        from distributed import Client, LocalCluster

        cluster = LocalCluster(n_workers=os.cpu_count(), threads_per_worker=1, processes=True,
                               dashboard_address=None)
        client = Client(cluster)
        options += ["--scheduler", cluster.scheduler_address]
    held = []
    if engine.startswith("dask"):
        original = dask_engine.DaskMatrix._held_chunks

        def noting(self, raw=False):
            chunks = original(self, raw)
            held.append(self.persisted)
            return chunks

        dask_engine.DaskMatrix._held_chunks = noting
    counts = count_steps()
    baseline = vm("VmRSS")
    stdout = io.StringIO()
    context = contextlib.nullcontext()
    if client is not None:
        from distributed import get_task_stream

        context = get_task_stream(client)
    started = time.perf_counter()
    with context as stream, contextlib.redirect_stdout(stdout):
        try:
            cli.main(["-q", "factorize", path, "-r", str(RANK), *options, "--max-iter", str(iters),
                      "--tol", "0", "-o", out, "--force", "--json"], standalone_mode=False)
        except SystemExit as exit_:  # pragma: no cover - errors are printed by the CLI
            if exit_.code:
                raise
    total = time.perf_counter() - started
    peak = vm("VmHWM")
    workers, tasks = 0, {}
    if client is not None:
        tasks = task_summary(stream.data)
        workers = sum(client.run(vm, "VmHWM").values())
        client.close()
        cluster.close()
    from mfcli.io.result import read_result

    result = read_result(out)
    seconds = result.layers[0].history["seconds"]
    print(json.dumps({"engine": engine, "s_per_iter": float(np.median(seconds)), "total": total,
                      "iterations_s": float(seconds.sum()), "peak": peak, "workers": workers, "baseline": baseline,
                      "error": result.layers[0].relative_error, "held": held[-1] if held else None,
                      "tasks_per_step": counts["tasks"] / counts["steps"] if counts["steps"] else None,
                      "step_s": counts["step_s"] / counts["steps"] if counts["steps"] else None,
                      "update_s": counts["update_s"] / counts["steps"] if counts["steps"] else None,
                      "task_stream": tasks, "load": os.getloadavg()[0]}))


def whole_command(path: Path, engine: str, env: dict) -> tuple[float, dict]:
    """(seconds, the --json summary) of ``mfcli factorize PATH -r RANK`` with no other flag but
    ``--engine`` (none for memory, the default), a whole process, mfcli byte-compiled first."""
    import compileall

    import mfcli

    compileall.compile_dir(str(Path(mfcli.__file__).parent), quiet=1)
    engine_flag = [] if engine == "memory" else ["--engine", engine]
    with tempfile.TemporaryDirectory(prefix="bench_scale_") as folder:
        started = time.perf_counter()
        done = subprocess.run([sys.executable, "-m", "mfcli", "-q", "factorize", str(path), "-r", str(RANK),
                               *engine_flag, "-o", str(Path(folder) / "out.h5"), "--json"],
                              capture_output=True, text=True, env=env)
        seconds = time.perf_counter() - started
    if done.returncode:
        raise RuntimeError(f"{engine} with no flags failed:\n{done.stderr[-3000:]}")
    return seconds, json.loads(done.stdout)


def median_run(found: list[dict]) -> dict:
    """The run with the median time per iteration (the lower middle one of an even count)."""
    ordered = sorted(found, key=lambda row: row["s_per_iter"])
    return ordered[(len(ordered) - 1) // 2]


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
    parser.add_argument("--engines", default="memory,stream,dask,dask-file,dask-processes")
    parser.add_argument("--iters", type=int, default=10)
    parser.add_argument("--threads", type=int, help="BLAS threads in the subprocesses (default: the libraries' own)")
    parser.add_argument("--repeat", type=int, default=3, help="runs of every engine and size, round after round "
                        "(the figures after the table are medians)")
    parser.add_argument("--no-flags", default="memory,stream",
                        help="engines timed with no other flag on the large file, whole processes ('' for none)")
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
        runs: dict[tuple[str, int], list[dict]] = {}
        repeat = max(1, args.repeat)
        print(f"\nmfcli factorize -r {RANK} (nmf, HALS), {args.iters} iterations, float32, {repeat} run(s) of each")
        print(f"{'engine':<15} {'pixels':>8} {'run':>3} {'s/iter':>7} {'/memory':>7} {'total s':>8} {'peak RSS MB':>11} "
              f"{'above base':>10} {'held X':>6} {'tasks/step':>10} {'rel. error':>10} {'load':>5}")
        for round_ in range(repeat):
            for engine in engines:
                for n, path in files.items():
                    row = measure(engine, path, args.iters, env)
                    runs.setdefault((engine, n), []).append(row)
                    anchor = runs.get(("memory", n))
                    ratio = (f"{row['s_per_iter'] / anchor[round_]['s_per_iter']:7.2f}"
                             if anchor and len(anchor) > round_ else f"{'':>7}")
                    peak = (row["peak"] + row["workers"]) / 1e6
                    held = {None: "", True: "yes", False: "no"}[row["held"]]
                    tasks = f"{row['tasks_per_step']:10.0f}" if row["tasks_per_step"] else f"{'':>10}"
                    print(f"{engine:<15} {n:>8} {round_ + 1:>3} {row['s_per_iter']:>7.3f} {ratio} {row['total']:>8.1f} "
                          f"{peak:>11.0f} {peak - row['baseline'] / 1e6:>10.0f} {held:>6} {tasks} "
                          f"{row['error']:>10.6f} {row['load']:>5.1f}", flush=True)
        rows = {key: median_run(found) for key, found in runs.items()}
        if repeat > 1:
            print(f"\nmedian of {repeat} runs: s/iter (each run's), its ratio to memory's median at the same size")
            for (engine, n), found in runs.items():
                each = ", ".join(f"{row['s_per_iter']:.3f}" for row in found)
                anchor = rows.get(("memory", n))
                ratio = f"{rows[engine, n]['s_per_iter'] / anchor['s_per_iter']:5.2f}" if anchor else ""
                print(f"  {engine:<15} {n:>8} {rows[engine, n]['s_per_iter']:7.3f} s  ({each})  {ratio}")
        print("\na pipelined step (mean per step): its time, and the solver's update in it, summed over the "
              "threads that ran it (the pool's threads, or this one with a cluster):")
        for (engine, n), row in rows.items():
            if row["step_s"]:
                print(f"  {engine:<15} {n:>8}  step {row['step_s']:6.3f} s  update {row['update_s']:6.3f} s")
        for (engine, n), row in rows.items():
            if row["task_stream"]:
                print(f"\nDask task stream, {engine} at {n} pixels (whole command, {row['total']:.1f} s wall):")
                for name, entry in sorted(row["task_stream"].items(), key=lambda item: -item[1]["compute"]):
                    print(f"  {name:<28} {entry['tasks']:>6} tasks  compute {entry['compute']:7.2f} s  "
                          f"transfer {entry['transfer']:6.2f} s  other {entry['other']:6.2f} s")
        small, big = sizes[0], sizes[-1]
        if len(sizes) > 1:
            print(f"\ntime per iteration, {big} / {small} pixels (linear: {big / small:g}):")
            for engine in engines:
                ratio = rows[engine, big]["s_per_iter"] / rows[engine, small]["s_per_iter"]
                print(f"  {engine:<15} {ratio:6.2f}")
        if ("memory", big) in rows:
            print(f"\ntime per iteration / memory's at {big} pixels (goals: stream <= 1.3, dask <= 2):")
            for engine in engines:
                if engine != "memory":
                    print(f"  {engine:<15} {rows[engine, big]['s_per_iter'] / rows['memory', big]['s_per_iter']:6.2f}")
        print(f"\npeak RSS on {BANDS} x {big} ({files[big].stat().st_size / 1e6:.0f} MB, the largest of the runs), limit "
              f"{PEAK_LIMIT_MB} MB where X is not held (stream, dask-file):")
        for engine in engines:
            peak = max(row["peak"] + row["workers"] for row in runs[engine, big]) / 1e6
            verdict = ("  ok" if peak < PEAK_LIMIT_MB else "  OVER") if engine in ("stream", "dask-file") else ""
            print(f"  {engine:<15} {peak:6.0f} MB{verdict}")
        no_flags = [engine for engine in args.no_flags.split(",") if engine]
        if no_flags:
            print(f"\nmfcli factorize FILE -r {RANK} with no other flag but the engine, on {BANDS} x {big} "
                  "(whole process, one run each):")
            anchor = None
            for engine in no_flags:
                seconds, summary = whole_command(files[big], engine, env)
                anchor = anchor or seconds
                print(f"  {engine:<15} {seconds:7.1f} s  {seconds / anchor:5.2f}x  {summary['n_iter']:>4} iterations "
                      f"({summary['stop_reason']})  relative error {summary['relative_error']:.6f}", flush=True)
        print(f"load average at the end: {' '.join(f'{v:.1f}' for v in os.getloadavg())}")
    finally:
        if not args.keep:
            for path in files.values():
                path.unlink(missing_ok=True)


if __name__ == "__main__":
    main()
