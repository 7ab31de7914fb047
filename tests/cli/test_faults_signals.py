"""Outputs under real signals and real races (subprocesses of the installed entry point).

An interrupt (SIGINT, SIGTERM) before an output's commit aborts it: the temporary is removed,
an existing output stays as it was, the exit status is 128 + the signal and stderr holds one
line ``Error: interrupted``. One during or after the commit leaves a complete output. Two
runs creating the same new output without --force: one wins, the other says "already exists".
tests/signal_driver.py stretches moments of a write (the HDF5 writes, the commit, a finalizer
in the middle of writing) so that a signal lands in each of them.
"""

from __future__ import annotations

import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
DRIVER = REPO / "tests" / "signal_driver.py"
OLD = b"the old output\n"


def _errors(stderr: str) -> list[str]:
    """stderr's lines without the warnings (a run cut short by --max-iter warns that it did not converge)."""
    return [line for line in stderr.strip().splitlines() if not line.startswith("Warning: ")]


def hidden(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob(".*"))


def is_complete_result(path: Path) -> bool:
    from mfcli.io.result import read_result

    result = read_result(path)
    return all(np.isfinite(layer.W).all() and np.isfinite(layer.H).all() for layer in result.layers)


def start(folder: Path, phase: str, args: list[str]) -> subprocess.Popen:
    (folder / "marks").mkdir(exist_ok=True)
    return subprocess.Popen([sys.executable, str(DRIVER), phase, str(folder / "marks"), "--", "-q", *args],
                            cwd=folder, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def wait_for(condition, process: subprocess.Popen, timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert process.poll() is None, f"the run ended before the moment to interrupt: {process.stderr.read()}"
        assert time.monotonic() < deadline, "the moment to interrupt never came"
        time.sleep(0.002)


def finish(process: subprocess.Popen) -> tuple[int, str]:
    _, stderr = process.communicate(timeout=120)
    return process.returncode, stderr


@pytest.fixture
def data(tmp_path) -> Path:
    np.save(tmp_path / "X.npy", np.random.default_rng(0).random((30, 400)))
    return tmp_path


# (command, output, file inside a folder output holding the result)
WRITERS = {
    "factorize": (["factorize", "X.npy", "-r", "3", "--max-iter", "3", "-o", "out.h5", "--force"], "out.h5", None),
    "unmix": (["unmix", "X.npy", "--ranks", "3,2", "--max-iter", "1", "--no-plots", "-o", "outdir", "--force"],
              "outdir", "result.h5"),
    "convert-envi": (["convert", "X.npy", "out.img", "--force"], "out.img", None),
}


def plant_old_output(folder: Path, writer: str) -> Path:
    _, output, inner = WRITERS[writer]
    if inner:
        (folder / output).mkdir()
        (folder / output / inner).write_bytes(OLD)
        return folder / output / inner
    (folder / output).write_bytes(OLD)
    if writer == "convert-envi":
        (folder / "out.hdr").write_bytes(OLD)
    return folder / output


@pytest.mark.slow
@pytest.mark.parametrize("writer", sorted(WRITERS))
@pytest.mark.parametrize("signum, delay", [(signal.SIGINT, 0.0), (signal.SIGTERM, 0.3)])
def test_an_interrupt_while_the_output_is_written_aborts_it_and_keeps_the_old_one(data, writer, signum, delay):
    old = plant_old_output(data, writer)
    process = start(data, "write", WRITERS[writer][0])
    wait_for(lambda: (data / "marks" / "write").exists(), process)
    time.sleep(delay)
    process.send_signal(signum)
    code, stderr = finish(process)
    assert code == 128 + signum
    assert _errors(stderr) == ["Error: interrupted"]
    assert old.read_bytes() == OLD
    if writer == "convert-envi":
        assert (data / "out.hdr").read_bytes() == OLD
    assert hidden(data) == []


@pytest.mark.slow
@pytest.mark.parametrize("writer", sorted(WRITERS))
def test_an_interrupt_during_the_commit_leaves_the_new_output_complete(data, writer):
    args, output, inner = WRITERS[writer]
    plant_old_output(data, writer)
    process = start(data, "commit", args)
    wait_for(lambda: (data / "marks" / "commit").exists(), process)
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and _errors(stderr) == ["Error: interrupted"]
    if writer == "convert-envi":
        from mfcli.io import load_dataset

        assert load_dataset(str(data / "out.img")).X.shape == (30, 400)
        assert (data / "out.hdr").read_bytes() != OLD
    else:
        assert is_complete_result(data / output / inner if inner else data / output)
    assert hidden(data) == []


@pytest.mark.slow
def test_an_interrupt_dropped_by_a_finalizer_still_ends_the_run(data):
    """A signal handled inside a finalizer (where Python only prints 'Exception ignored') is
    raised again in the code being run: the run stops, quietly, and the old output stays."""
    old = plant_old_output(data, "factorize")
    process = start(data, "finalizer", WRITERS["factorize"][0])
    wait_for(lambda: (data / "marks" / "finalizer").exists(), process)
    process.send_signal(signal.SIGINT)
    code, stderr = finish(process)
    assert code == 130 and _errors(stderr) == ["Error: interrupted"]
    assert old.read_bytes() == OLD and hidden(data) == []


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_an_interrupt_as_soon_as_the_temporary_appears_in_a_real_run(data, signum):
    """The issue's case, nothing stretched: the signal sent the moment the temporary file exists."""
    np.save(data / "big.npy", np.random.default_rng(1).random((200, 5000)))
    (data / "out.h5").write_bytes(OLD)
    process = start(data, "none", ["factorize", "big.npy", "-r", "7", "--max-iter", "2", "-o", "out.h5", "--force"])
    wait_for(lambda: any(p.name.startswith(".out.h5.") for p in data.iterdir()), process)
    process.send_signal(signum)
    code, stderr = finish(process)
    assert "Exception ignored" not in stderr
    if code == 0:  # finished before the signal could act: the new output is complete
        assert is_complete_result(data / "out.h5")
    else:
        assert code == 128 + signum and _errors(stderr) == ["Error: interrupted"]
        assert (data / "out.h5").read_bytes() == OLD or is_complete_result(data / "out.h5")
    assert hidden(data) == []


@pytest.mark.slow
@pytest.mark.parametrize("command", [
    ["unmix", "X.npy", "--ranks", "2,1", "--max-iter", "1", "--no-plots", "-o", "new"],
    ["factorize", "X.npy", "-r", "2", "--max-iter", "2", "-o", "new.h5"],
    ["convert", "X.npy", "new.img"],
])
def test_two_runs_racing_for_a_new_output_without_force_one_wins_one_is_refused(data, command):
    processes = [start(data, "commit", command) for _ in range(2)]  # both reach the commit together
    results = [finish(process) for process in processes]
    codes = sorted(code for code, _ in results)
    assert codes == [0, 1], results
    loser = next(stderr for code, stderr in results if code == 1)
    assert "already exists" in loser and len(_errors(loser)) == 1
    assert hidden(data) == []


@pytest.mark.slow
def test_two_runs_racing_with_force_leave_one_complete_folder(data):
    command = ["unmix", "X.npy", "--ranks", "2,1", "--max-iter", "1", "--no-plots", "-o", "new", "--force"]
    (data / "new").mkdir()
    (data / "new" / "result.h5").write_bytes(OLD)
    processes = [start(data, "commit", command) for _ in range(2)]
    assert [finish(process)[0] for process in processes] == [0, 0]
    assert is_complete_result(data / "new" / "result.h5")
    assert sorted(p.name for p in (data / "new").iterdir()) == ["hierarchy.dot", "hierarchy.json", "hierarchy.nwk",
                                                               "result.h5"]
    assert hidden(data) == []


def test_a_signal_while_mfcli_starts_is_held_then_reported_as_interrupted(tmp_path):
    """Between the first line of mfcli and the command (the imports), a signal is recorded, not
    raised in the middle of an import; main() then reports it: one line, exit 128 + signal."""
    code = textwrap.dedent("""
        import os, signal, sys, time
        from mfcli import interrupts
        interrupts.install(hold=True)
        os.kill(os.getpid(), signal.SIGTERM)
        time.sleep(0.2)  # held: nothing is raised here
        print("still running", flush=True)
        from mfcli.cli.main import main
        main(["samples"])
    """)
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout == "still running\n"
    assert done.returncode == 143 and _errors(done.stderr) == ["Error: interrupted"]


def test_after_the_exit_status_is_set_signals_are_ignored_so_shutdown_cannot_turn_them_fatal():
    # Python's shutdown restores the default handlers of handlers written in Python: a SIGTERM
    # in the last milliseconds would then kill a run that finished (exit -15, not its status).
    code = ("import signal\nfrom mfcli.cli.main import main\ntry:\n    main(['-q', 'samples', '--json'])\n"
            "except SystemExit as exc:\n    print(exc.code, signal.getsignal(signal.SIGTERM) is signal.SIG_IGN,\n"
            "          signal.getsignal(signal.SIGINT) is signal.SIG_IGN)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip().splitlines()[-1] == "0 True True", done.stderr
