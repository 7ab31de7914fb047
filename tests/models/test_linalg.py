"""The small dense helpers of mfcli.models.linalg against NumPy's own."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.models.linalg import argmax_of_columns


@pytest.mark.parametrize("seed", range(5))
def test_argmax_of_columns_is_numpys_argmax_down_the_columns(seed):
    rng = np.random.default_rng(seed)
    for _ in range(40):
        r, n = int(rng.integers(1, 10)), int(rng.integers(1, 60))
        scores = rng.integers(0, 4, (r, n)).astype(float)  # many ties: the first row of the largest wins
        scores[rng.random((r, n)) < 0.2] = -np.inf
        np.testing.assert_array_equal(argmax_of_columns(scores), np.argmax(scores, axis=0))
        np.testing.assert_array_equal(argmax_of_columns(scores.astype(np.float32)), np.argmax(scores, axis=0))
