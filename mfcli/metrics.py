"""Numbers people rely on, computed one way, in one place.

Every error, angle or RMSE that mfcli prints or stores comes from a function of this module,
and each is tested against an independent computation in ``tests/test_metrics.py``.
NumPy only.
"""

from __future__ import annotations

import numpy as np


def relative_error_from_grams(x_sq_norm: float, cross: float, WtW: np.ndarray, HHt: np.ndarray) -> float:
    """Relative Frobenius error ||X - WH||_F / ||X||_F without forming WH.

    ||X - WH||^2 = ||X||^2 - 2 <W^T X, H> + <W^T W, H H^T>, where ``cross`` = <W^T X, H>
    = trace(W^T X H^T). The difference can lose digits to cancellation when the fit is almost
    exact; it is clipped at 0.
    """
    if x_sq_norm <= 0:
        return 0.0
    residual = x_sq_norm - 2.0 * float(cross) + float(np.vdot(WtW, HHt))
    return float(np.sqrt(max(residual, 0.0) / x_sq_norm))


def relative_error(X: np.ndarray, W: np.ndarray, H: np.ndarray) -> float:
    """||X - WH||_F / ||X||_F for in-memory data (via Gram matrices, no m x n product)."""
    X = np.asarray(X)
    WtX = W.T @ X
    return relative_error_from_grams(float(np.vdot(X, X)), float(np.vdot(WtX, H)), W.T @ W, H @ H.T)
