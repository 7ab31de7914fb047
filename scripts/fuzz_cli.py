"""Fuzz the mfcli command line with generated bad input and count the outcomes.

    python scripts/fuzz_cli.py --cases 500 --seed 1             # real processes, 2 at a time
    python scripts/fuzz_cli.py --cases 2000 --seed 2 --in-process   # faster, click's CliRunner

The cases are those of tests/fuzz_cases.py (files of every format, valid, truncated and
damaged; bad CSV, ratings and pairs; odd arrays; bad ENVI headers; numeric extremes; damaged
result files; bad option values and output paths; existing outputs without --force). With
real processes (the default) three more families run: stdout on /dev/full, a SIGINT or SIGTERM
at a random moment of a run writing over an existing output (--force), and two runs racing for
the same new output without --force.

Prints the number of cases, the count of each outcome (rejected, success, interrupted, and the
failures: internal-error, crash, bad-exit, leftover, clobbered, bad-result, messy-error, hang)
per family of bad input, and the first examples of each failure. Exits 1 if any case failed.
``startup`` counts signals that arrived while the Python interpreter was starting, before the
first line of mfcli ran (tens of milliseconds): Python's default handling applies there (exit
by the signal; a KeyboardInterrupt traceback for SIGINT), nothing has been written yet and the
existing output is untouched; they are listed, not counted as failures.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter, defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests"))

from fuzz_cases import FAILURES, Case, Run, cli_cases, judge, run_in_process, snapshot  # noqa: E402

STDOUT_COMMANDS = [["samples", "--json"], ["info", "--json", "X.npy"], ["convert", "X.npy", "-:csv"],
                   ["convert", "X.npy", "-:npy"], ["export", "nmf.h5", "-o", "-"], ["estimate-rank", "X.npy"],
                   ["tree", "deep.h5"], ["factorize", "X.npy", "-r", "2", "--max-iter", "2", "-o", "o.h5", "--json"],
                   ["complete", "r.csv", "--epochs", "1", "--json"], ["predict", "model.h5", "pairs.csv"],
                   ["recommend", "model.h5", "--user", "1"]]


def make_results(folder: Path) -> dict[str, Path]:
    """Valid result files to build the result cases from (as tests/cli/test_faults_fuzz.py does)."""
    import numpy as np

    np.save(folder / "X.npy", np.random.default_rng(0).random((8, 12)))
    (folder / "r.csv").write_text("".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(6) for i in range(5)))
    for args in (["factorize", "X.npy", "-r", "2", "--max-iter", "5", "-o", "nmf.h5"],
                 ["unmix", "X.npy", "--ranks", "3,2", "--max-iter", "2", "--no-plots", "-o", "deep"],
                 ["complete", "r.csv", "-m", "als", "--epochs", "2", "-o", "model.h5"]):
        subprocess.run([sys.executable, "-m", "mfcli", "-q", *args], cwd=folder, check=True, timeout=600)
    return {"nmf": folder / "nmf.h5", "deep": folder / "deep" / "result.h5", "model": folder / "model.h5"}


def generate(count: int, seed: int, results: dict[str, Path], root: Path) -> list[tuple[Case, Path]]:
    """``count`` cases drawn by Hypothesis from ``seed``, each with its files in a folder of ``root``."""
    from hypothesis import HealthCheck, Phase, given, settings
    from hypothesis import seed as hypothesis_seed
    from hypothesis import strategies as st

    cases: list[tuple[Case, Path]] = []

    @hypothesis_seed(seed)
    @settings(max_examples=count, phases=[Phase.generate], deadline=None, database=None,
              suppress_health_check=list(HealthCheck))
    @given(data=st.data())
    def draw(data):
        folder = Path(tempfile.mkdtemp(prefix="case-", dir=root))
        cases.append((data.draw(cli_cases(folder, results)), folder))

    draw()
    return cases


def extra_cases(count: int, seed: int, results: dict[str, Path], root: Path) -> list[tuple[Case, Path]]:
    """The families only real processes can run: stdout full, signals, races."""
    import numpy as np

    rng = random.Random(seed)
    out = []
    for index in range(count):
        folder = Path(tempfile.mkdtemp(prefix="extra-", dir=root))
        np.save(folder / "X.npy", np.random.default_rng(index).random((30, 400)))
        shutil.copy(results["nmf"], folder / "nmf.h5")
        shutil.copy(results["deep"], folder / "deep.h5")
        shutil.copy(results["model"], folder / "model.h5")
        (folder / "r.csv").write_text("".join(f"{u},{i},{(u + i) % 5 + 1}\n" for u in range(6) for i in range(5)))
        (folder / "pairs.csv").write_text("0,0\n1,1\n")
        family = rng.choice(["stdout-full", "signal", "signal", "race"])
        if family == "stdout-full":
            out.append((Case(rng.choice(STDOUT_COMMANDS), "stdout-full", outputs=["o.h5"], stdout_full=True), folder))
        elif family == "signal":
            folder.joinpath("out.h5").write_bytes(b"old output\n")
            if rng.random() < 0.5:
                args = ["factorize", "X.npy", "-r", "3", "--max-iter", "5", "-o", "out.h5", "--force"]
                outputs = ["out.h5"]
            else:
                (folder / "outdir").mkdir()
                (folder / "outdir" / "result.h5").write_bytes(b"old output\n")
                args = ["unmix", "X.npy", "--ranks", "3,2", "--max-iter", "2", "--no-plots", "-o", "outdir",
                        "--force"]
                outputs = ["outdir"]
            case = Case(args, f"signal:{rng.choice(['INT', 'TERM'])}:{rng.uniform(0.0, 4.0):.3f}", outputs=outputs)
            out.append((case, folder))
        else:
            command = rng.choice([["factorize", "X.npy", "-r", "2", "--max-iter", "3", "-o", "new.h5"],
                                  ["unmix", "X.npy", "--ranks", "2,1", "--max-iter", "1", "--no-plots", "-o", "new"]])
            out.append((Case(command, "race", outputs=[command[-1]]), folder))
    return out


def run_process(case: Case, folder: Path, timeout: float) -> Run:
    command = [sys.executable, "-m", "mfcli", "-q", *case.args]
    stdout = open("/dev/full", "wb") if case.stdout_full else subprocess.PIPE
    try:
        done = subprocess.run(command, cwd=folder, input=case.stdin, stdout=stdout, stderr=subprocess.PIPE,
                              timeout=timeout)
    except subprocess.TimeoutExpired as exc:
        return Run(-1, b"", (exc.stderr or b"").decode(errors="replace"), timed_out=True)
    finally:
        if case.stdout_full:
            stdout.close()
    return Run(done.returncode, done.stdout or b"", done.stderr.decode(errors="replace"))


def run_signal(case: Case, folder: Path, timeout: float) -> tuple[str, str]:
    """A run writing over an existing output, interrupted after a random delay."""
    _, name, delay = case.kind.split(":")
    signum = signal.SIGINT if name == "INT" else signal.SIGTERM
    old = snapshot(folder)
    process = subprocess.Popen([sys.executable, "-m", "mfcli", "-q", *case.args], cwd=folder,
                               stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    time.sleep(float(delay))
    process.send_signal(signum)
    try:
        _, stderr = process.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        process.kill()
        return "hang", " ".join(case.args)
    stderr = stderr.decode(errors="replace")
    new = snapshot(folder)
    target = case.outputs[0]
    key = target if target.endswith(".h5") else f"{target}/result.h5"
    hidden = [n for n in new if n.rsplit("/", 1)[-1].startswith(".")]
    if hidden:
        return "leftover", ", ".join(hidden)
    if (process.returncode == -signum or "KeyboardInterrupt" in stderr) and "/mfcli/" not in stderr \
            and new.get(key) == old.get(key):
        # Python's own default handling, before mfcli's first line ran (interpreter start-up)
        return "startup", f"exit {process.returncode}; the output untouched"
    if "Traceback" in stderr or "Exception ignored" in stderr:
        return "crash", stderr[-400:]
    if process.returncode == 128 + signum:
        if [line for line in stderr.splitlines() if line.strip() and not line.startswith("Warning: ")] != [
                "Error: interrupted"]:
            return "messy-error", stderr[-300:]
        if new.get(key) == old.get(key):
            return "interrupted", "before the commit: old output kept"
        return _complete_or_clobbered(folder / key, "after the commit: new output complete")
    if process.returncode == 0:
        return _complete_or_clobbered(folder / key, "finished before the signal")
    return "bad-exit", f"exit {process.returncode}: {stderr[-300:]}"


def _complete_or_clobbered(path: Path, note: str) -> tuple[str, str]:
    from mfcli.errors import MfcliError
    from mfcli.io.result import read_result

    try:
        read_result(path)
    except MfcliError as exc:
        return "clobbered", f"{path.name}: {exc}"
    return ("interrupted" if "commit" in note else "success"), note


def run_race(case: Case, folder: Path, timeout: float) -> tuple[str, str]:
    """Two runs creating the same new output without --force: one wins, one says "already exists"."""
    processes = [subprocess.Popen([sys.executable, "-m", "mfcli", "-q", *case.args], cwd=folder,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE) for _ in range(2)]
    codes, errors = [], []
    for process in processes:
        try:
            _, stderr = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            return "hang", " ".join(case.args)
        codes.append(process.returncode)
        errors.append(stderr.decode(errors="replace"))
    hidden = [n for n in snapshot(folder) if n.rsplit("/", 1)[-1].startswith(".")]
    if hidden:
        return "leftover", ", ".join(hidden)
    if sorted(codes) != [0, 1]:
        return "clobbered", f"exits {codes}: both wrote the output" if codes == [0, 0] else f"exits {codes}: {errors}"
    loser = errors[codes.index(1)]
    if "already exists" not in loser:
        return "messy-error", loser[-300:]
    target = case.outputs[0]
    return _complete_or_clobbered(folder / (target if target.endswith(".h5") else f"{target}/result.h5"),
                                  "one won, one was refused")


class _Hang(BaseException):
    pass


def run_in_process_timed(case: Case, folder: Path, timeout: float) -> Run:
    """:func:`run_in_process` stopped by a SIGALRM after ``timeout`` seconds (a hang)."""
    def stop(signum, frame):
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, stop)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return run_in_process(case, folder)
    except _Hang:
        return Run(-1, b"", "", timed_out=True)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


def execute(case: Case, folder: Path, in_process: bool, timeout: float) -> tuple[str, str]:
    if case.kind.startswith("signal:"):
        return run_signal(case, folder, timeout)
    if case.kind == "race":
        return run_race(case, folder, timeout)
    before = snapshot(folder)
    run = run_in_process_timed(case, folder, timeout) if in_process else run_process(case, folder, timeout)
    if case.stdout_full and not run.timed_out:
        if run.exit_code == 1 and "Error: cannot write to standard output: No space left on device" in run.stderr:
            return "rejected", "stdout full"
        return ("internal-error" if "internal error" in run.stderr else "messy-error"), run.stderr[-300:]
    return judge(case, run, before, snapshot(folder), folder)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cases", type=int, default=300, help="generated cases (default 300)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the generation (default 0)")
    parser.add_argument("--in-process", action="store_true", help="run with click's CliRunner (no signals, races "
                                                                   "or stdout failures)")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once with real processes (default 2)")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds before a case counts as a hang")
    parser.add_argument("--trace", action="store_true", help="print each case before running it")
    parser.add_argument("--show", type=int, default=5, help="examples printed per failure (default 5)")
    options = parser.parse_args()
    import faulthandler

    faulthandler.register(signal.SIGUSR1)  # kill -USR1 PID prints where every thread is (a hang)

    print(f"load average {os.getloadavg()}; seed {options.seed}; "
          f"{'in-process' if options.in_process else f'real processes, {options.jobs} at a time'}")
    root = Path(tempfile.mkdtemp(prefix="mfcli-fuzz-"))
    started = time.perf_counter()
    try:
        results = make_results(Path(tempfile.mkdtemp(prefix="results-", dir=root)))
        n_extra = 0 if options.in_process else options.cases // 5
        cases = generate(options.cases - n_extra, options.seed, results, root)
        cases += extra_cases(n_extra, options.seed, results, root)
        print(f"{len(cases)} cases generated in {time.perf_counter() - started:.0f} s", flush=True)

        def one(index_and_pair):
            index, (case, folder) = index_and_pair
            if options.trace:
                print(f"  case {index}: mfcli {' '.join(case.args)}  [{case.kind}]", flush=True)
            outcome = execute(case, folder, options.in_process, options.timeout)
            if (index + 1) % 50 == 0:
                print(f"  {index + 1} run ({time.perf_counter() - started:.0f} s)", flush=True)
            return outcome

        if options.in_process:
            outcomes = [one(pair) for pair in enumerate(cases)]
        else:
            with ThreadPoolExecutor(max_workers=options.jobs) as pool:
                outcomes = list(pool.map(one, enumerate(cases)))
    finally:
        shutil.rmtree(root, ignore_errors=True)

    totals: Counter[str] = Counter(outcome for outcome, _ in outcomes)
    by_family: dict[str, Counter[str]] = defaultdict(Counter)
    examples: dict[str, list[str]] = defaultdict(list)
    for (case, _), (outcome, detail) in zip(cases, outcomes):
        family = case.kind.split(":")[0] if case.kind.startswith(("signal", "file", "damaged")) else case.kind
        by_family[family][outcome] += 1
        if outcome in FAILURES and len(examples[outcome]) < options.show:
            examples[outcome].append(f"mfcli {' '.join(case.args)}  [{case.kind}]\n      {detail}")
    print(f"{len(cases)} cases in {time.perf_counter() - started:.0f} s")
    for outcome in ("rejected", "success", "interrupted", "startup", *FAILURES):
        print(f"  {outcome:<15} {totals.get(outcome, 0)}")
    print("per family:")
    for family in sorted(by_family):
        counts = ", ".join(f"{k} {v}" for k, v in sorted(by_family[family].items()))
        print(f"  {family:<16} {counts}")
    for outcome, lines in examples.items():
        print(f"{outcome}:")
        for line in lines:
            print(f"  {line}")
    return 1 if any(totals.get(f) for f in FAILURES) else 0


if __name__ == "__main__":
    sys.exit(main())
