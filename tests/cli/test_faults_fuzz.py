"""Generated bad input (tests/fuzz_cases.py) never gives an internal error, a traceback, a
leftover or clobbered file, an exit status other than 0/1/2, or an exit 0 with a non-finite or
empty result: every case is a clean one-line rejection or a complete success. A larger run
that counts the outcomes: scripts/fuzz_cli.py."""

from __future__ import annotations

import shutil
import tempfile
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from fuzz_cases import FAILURES, cli_cases, judge, run_in_process, snapshot

EXAMPLES = 120


@pytest.fixture(scope="module")
def fuzz_results(tmp_path_factory) -> dict[str, Path]:
    """One valid result file of each kind the result commands read: single layer, deep, completion."""
    import numpy as np
    from click.testing import CliRunner

    from mfcli.cli.main import cli

    folder = tmp_path_factory.mktemp("fuzz-results")
    np.save(folder / "X.npy", np.random.default_rng(0).random((8, 12)))
    (folder / "r.csv").write_text("".join(f"{u},{i},{(u * i) % 5 + 1}\n" for u in range(6) for i in range(5)))
    runner = CliRunner()
    for args in (["factorize", "X.npy", "-r", "2", "--max-iter", "5", "-o", "nmf.h5"],
                 ["unmix", "X.npy", "--ranks", "3,2", "--max-iter", "2", "--no-plots", "-o", "deep"],
                 ["complete", "r.csv", "-m", "als", "--epochs", "2", "-o", "model.h5"]):
        result = runner.invoke(cli, ["-q", *args[:1], *[str(folder / a) if a in ("X.npy", "r.csv", "nmf.h5", "deep",
                                                                                 "model.h5") else a for a in args[1:]]])
        assert result.exit_code == 0, result.stderr
    return {"nmf": folder / "nmf.h5", "deep": folder / "deep" / "result.h5", "model": folder / "model.h5"}


@pytest.mark.slow
@settings(max_examples=EXAMPLES, deadline=None, database=None,
          suppress_health_check=[HealthCheck.too_slow, HealthCheck.function_scoped_fixture,
                                 HealthCheck.data_too_large, HealthCheck.filter_too_much])
@given(data=st.data())
def test_generated_bad_input_is_rejected_cleanly_or_succeeds_completely(data, fuzz_results):
    folder = Path(tempfile.mkdtemp(prefix="mfcli-fuzz-"))
    try:
        case = data.draw(cli_cases(folder, fuzz_results), label="case")
        before = snapshot(folder)
        run = run_in_process(case, folder)
        outcome, detail = judge(case, run, before, snapshot(folder), folder)
        assert outcome not in FAILURES, f"{outcome} ({case.kind}): mfcli {' '.join(case.args)}\n{detail}"
    finally:
        shutil.rmtree(folder, ignore_errors=True)
