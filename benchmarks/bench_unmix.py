"""Deep unmixing speed and quality: the whole `mfcli unmix --ranks 7,6,4,2` run beside scikit-learn NMF.

    python benchmarks/bench_unmix.py [--ranks 7,6,4,2] [--keep DIR] [--threads N] [--repeat 3]

Data: the bundled Urban stand-in (sample:urban: 162 bands x 94249 pixels, the published
6-material ground truth M, A times 1000 plus seeded noise) written to an Urban_R162-style
MATLAB file, as a user would bring it (float32 `Y`, `nRow`, `nCol`, `SlectBands`, `maxValue`).

1. The anchor: scikit-learn ``NMF(n_components=7, solver='cd', init='nndsvda', max_iter=200)``
   on the same matrix as mfcli reads it (X^T, float32), fit time only.
2. mfcli: ``mfcli unmix urban.mat --ranks 7,6,4,2 -o OUT --json`` in a subprocess, timed from
   the start of the process to the written folder (load, deep ONMF (--init auto: SPA on images), joint
   refinement, the layers' endmembers refined to materials (--refine auto), NNLS abundances of
   every layer, result.h5 and hierarchy files), three times: with --no-plots; with --no-plots
   --refine none (clusters only), the ratio of the two (issue 17: at most 1.5); and as the
   default command, which also draws its ten pictures. Peak memory: the child's own high-water
   resident set size (VmHWM), minus that of the same command on the 9 x 15 survey sample (the
   interpreter and the libraries it loads).
   The pictures alone (issue 19, item 1: <= 0.5 s in total): a fresh process reads the result
   and draws the default set as `unmix` does (mfcli.plotting.bundle.write_pictures), timed from
   before the drawing library (Pillow; the pictures no longer import matplotlib, and the timer
   says whether anything did) is imported; printed with the import, the whole set (half of it in a forked
   process where the system allows), the set drawn in one process, and each picture (drawing on
   the main thread, PNG compression and writing on the second); with each set, the CPU time it
   took in all (every thread, and the forked process), which a busy machine inflates less than
   the wall time.
3. Quality: the rank-6 layer's endmembers against the six ground-truth spectra, by spectral angle
   after optimal (Hungarian) matching (mfcli.metrics.match_endmembers); and the tree, every
   cluster named after its closest ground-truth material, with what merges at each layer.
4. Initialization (untimed, after the timed run): the same command with --init restarts beside
   --init auto (SPA on images), the rank-6 layer's mean spectral angle and the metal roofs' angle
   for each, the figures behind `mfcli unmix --help`'s claim that the restarts miss the metal roofs.

mfcli's modules are byte-compiled before the timed runs, as an installed mfcli is
(:func:`compile_mfcli`).

Repeats (``--repeat``, default 3): scikit-learn's fit and each timed mfcli command are run that
many times (the fit and the three commands in turn, round after round, so that a slow spell of a
shared machine falls on all of them), and each time printed is the median, with every run's time
after it; the ratios are those of the medians, and for the default command the ratio within each
round is printed too. Between invocations on one machine in one session, the median of
scikit-learn's fit moved from 7.3 to 11.8 s (it is bound by computation, mfcli's passes by
memory, and the two slow down in different spells). A single run of each moved the default command's
ratio between 0.24 and 0.28 on one machine within the hour.

Targets: mfcli / scikit-learn <= 0.5, aim 0.25 (issue 4), with the pictures <= 0.25 (issue 19);
the pictures <= 0.5 s. The machine may be shared: the load average is printed with every figure.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np


def write_urban_mat(path: Path):
    """The Urban stand-in in the Urban_R162 layout; returns (X as mfcli reads it, M, names)."""
    import scipy.io

    from mfcli.io.samples import build_urban, sample_path

    data = build_urban(scipy.io.loadmat(sample_path("urban")))
    scipy.io.savemat(path, {key: data[key] for key in ("Y", "nRow", "nCol", "SlectBands", "maxValue")})
    X = data["Y"] / np.float32(data["maxValue"][0, 0])
    names = [str(np.ravel(entry)[0]).split("-", 1)[-1].lower() for entry in np.ravel(data["cood"])]
    return np.ascontiguousarray(X, dtype=np.float32), np.asarray(data["M"], dtype=np.float64), names


PEAK_WRAPPER = (
    "import atexit, resource, sys\n"
    "def report():\n"
    "    status = open('/proc/self/status').read().split('\\n')\n"
    "    peak = [line for line in status if line.startswith('VmHWM')][0].split()[1]\n"
    "    sys.stderr.write('PEAK_KIB ' + peak + '\\n')\n"
    "    sys.stderr.write('FORKED_PEAK_KIB %d\\n' % resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss)\n"
    "atexit.register(report)\n"
    "from mfcli.cli.main import main\n"
    "sys.argv = ['mfcli', *sys.argv[1:]]\n"
    "main()\n"
)


def run_mfcli(arguments: list[str]):
    """Run mfcli in a fresh interpreter; returns (completed process, seconds, peak RSS in MiB).

    The peak is the child's own high-water mark (VmHWM), which starts afresh in the new process
    (unlike getrusage's, which keeps the pages a forked child shares with this process). The
    largest resident set of the copies mfcli forks (its pictures, its layers' refinement) is
    left in ``completed.forked_peak`` (MiB; the pages they share with mfcli counted in it).
    """
    start = time.perf_counter()
    completed = subprocess.run([sys.executable, "-c", PEAK_WRAPPER, *arguments], check=False,
                               capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if completed.returncode != 0:
        raise SystemExit(f"mfcli {' '.join(arguments)} failed:\n{completed.stderr}")
    peaks = [line.split()[1] for line in completed.stderr.splitlines() if line.startswith("PEAK_KIB ")]
    forked = [line.split()[1] for line in completed.stderr.splitlines() if line.startswith("FORKED_PEAK_KIB ")]
    completed.forked_peak = int(forked[-1]) / 1024.0 if forked else float("nan")
    return completed, seconds, int(peaks[-1]) / 1024.0 if peaks else float("nan")


def runs_text(seconds: list[float]) -> str:
    """`` (median of 3: 2.1, 2.3, 2.2 s)`` for several runs, nothing for one."""
    if len(seconds) < 2:
        return ""
    return f" (median of {len(seconds)}: {', '.join(f'{value:.3f}' for value in seconds)} s)"


PICTURE_TIMER = (
    "import json, sys, tempfile, time\n"
    "started = time.perf_counter()\n"
    "from mfcli.io.result import read_result\n"
    "result = read_result(sys.argv[1])\n"
    "read = time.perf_counter() - started\n"
    "parallel = sys.argv[2] == 'parallel'\n"
    "started = time.perf_counter()\n"
    "import PIL.Image, PIL.ImageDraw, PIL.ImageFont\n"
    "imported = time.perf_counter() - started\n"
    "from mfcli.plotting.bundle import write_pictures\n"
    "timings = {}\n"
    "import os\n"
    "cpu = os.times()\n"
    "start = time.perf_counter()\n"
    "written, skipped = write_pictures(result, tempfile.mkdtemp(), timings=timings, parallel=parallel)\n"
    "drawn = time.perf_counter() - start\n"
    "after = os.times()\n"
    "cpu = sum(after[i] - cpu[i] for i in range(4))  # this process's threads and the forked half, user + system\n"
    "print(json.dumps({'read': read, 'import': imported, 'pictures': drawn, 'cpu': cpu, 'per_picture': timings,\n"
    "                  'count': len(written), 'skipped': skipped, 'matplotlib': 'matplotlib' in sys.modules}))\n"
)


def time_pictures(result_path: Path, parallel: bool) -> dict:
    """The default pictures of a result drawn in a fresh process (see the module docstring)."""
    completed = subprocess.run([sys.executable, "-c", PICTURE_TIMER, str(result_path),
                                "parallel" if parallel else "serial"], check=True, capture_output=True, text=True)
    return json.loads(completed.stdout)


def compile_mfcli() -> bool:
    """mfcli's modules byte-compiled before any timed run, as `pip install` compiles an installed
    package; returns whether that was needed. A checkout imported with PYTHONDONTWRITEBYTECODE
    set (some shells and containers set it) would otherwise compile every module in every fresh
    process (0.1-0.2 s of each run here), which no installed mfcli does. The children run
    without that variable, so the modules any of them imports are compiled once too."""
    import compileall

    import mfcli

    os.environ.pop("PYTHONDONTWRITEBYTECODE", None)
    needed = not any(Path(mfcli.__file__).parent.glob("__pycache__/*.pyc"))
    compileall.compile_dir(str(Path(mfcli.__file__).parent), quiet=1)
    return needed


def load() -> str:
    return "load " + " ".join(f"{v:.1f}" for v in os.getloadavg())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--ranks", default="7,6,4,2")
    parser.add_argument("--keep", metavar="DIR", help="keep the output folder here")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each timed command and of scikit-learn's "
                        "fit; the medians are printed (default 3)")
    parser.add_argument("--threads", type=int, help="BLAS threads for both (default: the libraries' own); "
                                                    "1 gives steadier figures on a shared machine")
    args = parser.parse_args()
    if args.threads:
        os.environ["OPENBLAS_NUM_THREADS"] = os.environ["OMP_NUM_THREADS"] = str(args.threads)
        from threadpoolctl import threadpool_limits  # a runtime dependency of mfcli

        threadpool_limits(args.threads)
    ranks = [int(r) for r in args.ranks.split(",")]
    compiled = compile_mfcli()

    from sklearn.decomposition import NMF as SklearnNMF

    from mfcli.hierarchy import tree_from_result
    from mfcli.io.result import read_result
    from mfcli.metrics import match_endmembers, spectral_angle_matrix

    print(f"bench_unmix: {os.cpu_count()} cores, BLAS threads {args.threads or 'default'}, {load()}; mfcli's "
          f"modules {'byte-compiled first (as pip installs them)' if compiled else 'already byte-compiled'}")
    work = Path(tempfile.mkdtemp(prefix="bench_unmix."))
    try:
        mat = work / "urban.mat"
        X, M, names = write_urban_mat(mat)
        print(f"data: {mat.name}, {X.shape[0]} x {X.shape[1]} float32 ({X.nbytes / 2**20:.1f} MiB), "
              f"ground truth: {', '.join(names)}")

        repeat = max(1, args.repeat)

        def fit_scikit_learn():
            model = SklearnNMF(n_components=ranks[0], solver="cd", init="nndsvda", max_iter=200, random_state=0)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                start = time.perf_counter()
                coefficients = model.fit_transform(X.T)
                return model, coefficients, time.perf_counter() - start

        _, _, baseline_rss = run_mfcli(["-q", "unmix", "sample:survey-ratings", "--ranks", "2,1", "-o",
                                        str(work / "tiny"), "--no-plots"])
        out = work / "out"
        commands = {
            "no plots": ["-q", "unmix", str(mat), "--ranks", args.ranks, "-o", str(out), "--json", "--no-plots"],
            "clusters": ["-q", "unmix", str(mat), "--ranks", args.ranks, "-o", str(work / "out_plain"), "--no-plots",
                         "--refine", "none"],
            "default": ["-q", "unmix", str(mat), "--ranks", args.ranks, "-o", str(work / "out_pictures"), "--json"],
        }
        runs: dict[str, list] = {name: [] for name in commands}
        sk_runs = []
        for _ in range(repeat):  # scikit-learn's fit and the commands in turn, round after round
            model, coefficients, seconds = fit_scikit_learn()  # seeded: every fit is the same
            sk_runs.append(seconds)
            for name, arguments in commands.items():
                shutil.rmtree(arguments[arguments.index("-o") + 1], ignore_errors=True)  # the last round's stays
                runs[name].append(run_mfcli(arguments))
        sk_seconds = float(np.median(sk_runs))
        from mfcli.metrics import relative_error

        sk_error = relative_error(X.astype(np.float64), model.components_.T.astype(np.float64),
                                  coefficients.T.astype(np.float64))
        print(f"scikit-learn NMF rank {ranks[0]} (cd, nndsvda, {model.n_iter_} iterations): {sk_seconds:.3f} s"
              f"{runs_text(sk_runs)}, relative error {sk_error:.5f}")
        del coefficients
        completed, pictured = runs["no plots"][-1][0], runs["default"][-1][0]
        mfcli_seconds, plain_seconds, pictures_seconds = (float(np.median([run[1] for run in runs[name]]))
                                                          for name in ("no plots", "clusters", "default"))
        peak_rss = max(run[2] for run in runs["no plots"] + runs["default"])
        document = json.loads(completed.stdout)
        print(f"mfcli unmix --ranks {args.ranks} --no-plots (whole process, load to written folder): "
              f"{mfcli_seconds:.3f} s{runs_text([run[1] for run in runs['no plots']])} (its own count "
              f"{document['seconds']:.3f} s), {document['n_iter']} refinement sweeps; {load()}")
        print(f"  ratio mfcli / scikit-learn: {mfcli_seconds / sk_seconds:.3f}  (target <= 0.5, aim 0.25)")
        print(f"mfcli unmix --no-plots --refine none (clusters only, issue 17's anchor): {plain_seconds:.3f} s"
              f"{runs_text([run[1] for run in runs['clusters']])}; refined / clusters only: "
              f"{mfcli_seconds / plain_seconds:.3f}  (target <= 1.5)")
        n_pictures = len([f for f in json.loads(pictured.stdout)["files"] if f.endswith(".png")])
        print(f"mfcli unmix --ranks {args.ranks} (the default command, {n_pictures} pictures; whole process): "
              f"{pictures_seconds:.3f} s{runs_text([run[1] for run in runs['default']])}; {load()}")
        print(f"  ratio mfcli / scikit-learn: {pictures_seconds / sk_seconds:.3f}  (target <= 0.25)")
        if repeat > 1:
            paired = [run[1] / seconds for run, seconds in zip(runs["default"], sk_runs)]
            print(f"  ratio within each round (the command / that round's scikit-learn fit): "
                  f"{', '.join(f'{ratio:.3f}' for ratio in paired)}; median {float(np.median(paired)):.3f}")
        print(f"  the pictures' share of the process: {pictures_seconds - mfcli_seconds:+.3f} s")
        print(f"peak memory (max RSS): {peak_rss:.0f} MiB, {peak_rss - baseline_rss:.0f} MiB above the same "
              f"command on a 9 x 15 matrix ({baseline_rss:.0f} MiB: interpreter and libraries) = "
              f"{(peak_rss - baseline_rss) / (X.nbytes / 2**20):.2f}x the input; the copies it forks (layers, "
              f"pictures) peak at {max(completed.forked_peak, pictured.forked_peak):.0f} MiB resident, the pages they "
              "share with it (the data, the result) counted in that")
        for parallel in (True, False):
            timing = time_pictures(out / "result.h5", parallel)
            how = "half in a forked process" if parallel else "one process"
            together = timing["import"] + timing["pictures"]
            print(f"pictures of the result ({timing['count']}, {how}): import of Pillow {timing['import']:.3f} s, "
                  f"drawing and writing {timing['pictures']:.3f} s, together {together:.3f} s (target <= 0.5 s; "
                  f"matplotlib imported: {'yes' if timing['matplotlib'] else 'no'}); CPU time of the drawing and "
                  f"writing, all threads and processes {timing['cpu']:.3f} s; {load()}")
            if not parallel:
                for name, seconds in timing["per_picture"].items():
                    print(f"  {name:<24} draw {seconds['draw']:.3f} s, compress and write {seconds['write']:.3f} s "
                          "(second thread)")
        errors = document["relative_error"]
        print("relative error per layer: " + ", ".join(
            f"L{i + 1} (r={r}) {e:.5f}" for i, (r, e) in enumerate(zip(ranks, errors["layers"]))))
        print()

        result = read_result(out / "result.h5")
        six = next((i for i, r in enumerate(ranks) if r == M.shape[1]), None)

        def matched_angles(fitted) -> tuple[np.ndarray, np.ndarray]:
            """(estimated cluster, spectral angle in degrees) matched to each ground-truth material at
            the rank-6 layer."""
            basis = fitted.layers[six].data_basis
            matched = match_endmembers(basis, M)
            return matched, spectral_angle_matrix(basis, M)[matched, np.arange(len(names))]

        if six is not None:
            matched, angles = matched_angles(result)
            print(f"layer {six + 1} (rank {ranks[six]}) endmembers vs ground truth, spectral angle after "
                  f"Hungarian matching:")
            for q, name in enumerate(names):
                print(f"  {name:<14} <- cluster #{matched[q] + 1}: {angles[q]:6.2f} deg")
            print(f"  mean {np.mean(angles):.2f} deg")
            print()

        tree = tree_from_result(result)
        print("tree (each cluster named after its closest ground-truth spectrum, angle in degrees):")

        def label(level: int, cid: int) -> str:
            angles = spectral_angle_matrix(result.layers[level - 1].data_basis[:, [cid]], M)[0]
            best = int(np.argmin(angles))
            size = tree.cluster(level, cid).size
            return f"#{cid + 1} {names[best]} {angles[best]:.1f} ({size} px)"

        print("  layer 1: " + "; ".join(label(1, c.id) for c in tree.layers[0]))
        for level in range(2, len(ranks) + 1):
            merges = tree.merges(level)
            text = "; ".join(f"{label(level, cid)} = " + " + ".join(label(level - 1, child) for child in children)
                             for cid, children in merges) or "no merge"
            print(f"  layer {level} merges: {text}")

        if six is not None:  # not timed: the initialization the help text speaks of
            restarts_out = work / "out_restarts"
            run_mfcli(["-q", "unmix", str(mat), "--ranks", args.ranks, "--init", "restarts", "-o", str(restarts_out),
                       "--no-plots"])
            metal = next((q for q, name in enumerate(names) if "metal" in name), None)
            print()
            print(f"initialization, layer {six + 1} (rank {ranks[six]}) vs ground truth:")
            for how, fitted in ((f"auto ({result.params.get('init')})", result),
                                ("restarts", read_result(restarts_out / "result.h5"))):
                _, angles = matched_angles(fitted)
                metal_text = f", {names[metal]} {angles[metal]:.2f} deg" if metal is not None else ""
                print(f"  --init {how:<12} mean spectral angle {np.mean(angles):.2f} deg{metal_text}")
        if args.keep:
            shutil.copytree(out, args.keep, dirs_exist_ok=True)
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
