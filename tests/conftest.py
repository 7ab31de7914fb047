"""Shared fixtures: a CLI runner with stdout and stderr apart, and the shared data folder."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from click.testing import CliRunner

REPO = Path(__file__).resolve().parents[1]
SHARED_DATA = Path(os.environ.get("MFCLI_SHARED_DATA", REPO.parent / "shared" / "data"))


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def invoke(runner):
    """Run the CLI in-process: ``invoke("info", "sample:samson", "--json")``."""
    from mfcli.cli.main import cli

    def run(*args: str, input: str | bytes | None = None):
        return runner.invoke(cli, list(args), input=input, catch_exceptions=False)

    return run


@pytest.fixture
def shared_data() -> Path:
    """../shared/data, or skip when this checkout has no shared data beside it."""
    if not SHARED_DATA.is_dir():
        pytest.skip(f"shared data folder {SHARED_DATA} is absent (set MFCLI_SHARED_DATA to point at it)")
    return SHARED_DATA


@pytest.fixture(scope="session")
def survey_ratings():
    """The survey's 9 x 15 ratings (bundled sample) in float64, read-only."""
    import numpy as np

    from mfcli.io import load_dataset

    X = load_dataset("sample:survey-ratings").X.astype(np.float64)
    X.flags.writeable = False
    return X


@pytest.fixture
def small_csv(tmp_path):
    """A 12 x 50 rank-4 nonnegative matrix in a CSV file: (path, X)."""
    import numpy as np

    rng = np.random.default_rng(0)
    X = rng.random((12, 4)) @ rng.random((4, 50))
    path = tmp_path / "x.csv"
    np.savetxt(path, X, delimiter=",")
    return path, X
