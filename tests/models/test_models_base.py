"""Shared pieces of the solvers (mfcli.models.base, stopping, linalg)."""

from __future__ import annotations

import numpy as np
import pytest

from mfcli.models.linalg import frobenius_relative_error, frobenius_residual_sq


@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_residual_from_grams_equals_the_residual_of_the_formed_product(dtype):
    rng = np.random.default_rng(3)
    X, W, H = rng.random((15, 40)), rng.random((15, 4)), rng.random((4, 40))
    expected = float(np.sum((X - W @ H) ** 2))
    x_sq = float(np.sum(X * X))
    Wd = W.astype(dtype)
    XHt, HHt = (X @ H.T).astype(dtype), (H @ H.T).astype(dtype)
    rtol = 1e-10 if dtype == np.float64 else 1e-4
    assert frobenius_residual_sq(x_sq, Wd, XHt, HHt) == pytest.approx(expected, rel=rtol)
    assert frobenius_residual_sq(x_sq, Wd, XHt, HHt, Wd.T @ Wd) == pytest.approx(expected, rel=rtol)
    assert frobenius_relative_error(x_sq, Wd, XHt, Wd.T @ Wd, HHt) == pytest.approx(np.sqrt(expected / x_sq),
                                                                                    rel=rtol)
