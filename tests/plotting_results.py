"""Small hand-made Results for the plotting and report tests (no solver needed, all fast).

- :func:`spa_result`: a single-layer result of a sample image: SPA endmembers and
  least-squares coefficients, with the sample's metadata (image shape, pixel order, wavelengths).
- :func:`deep_result`: a deep, hard (orthogonal-like) result with per-layer assignments and
  histories, built from a planted partition of the columns of any data matrix.
- :func:`pattern_result`: one map with a known asymmetric pattern, stored in either pixel order.
"""

from __future__ import annotations

import numpy as np

from mfcli.dataset import image_to_pixels
from mfcli.result import Layer, Result, input_metadata


def _history(n_iter: int, start: float, end: float) -> dict[str, np.ndarray]:
    errors = start * (end / start) ** (np.arange(1, n_iter + 1) / n_iter)
    return {"relative_error": errors, "seconds": np.cumsum(np.full(n_iter, 0.01))}


def spa_result(sample: str = "samson", rank: int = 3) -> tuple[Result, object]:
    """(Result, Dataset): SPA endmembers + least-squares coefficients of ``sample:NAME``."""
    from mfcli.io import load_dataset
    from mfcli.metrics import relative_error
    from mfcli.models.spa import spa

    dataset = load_dataset(f"sample:{sample}")
    X = np.asarray(dataset.X, dtype=np.float64)
    columns = spa(X, rank)
    W = X[:, columns]
    H = np.clip(np.linalg.lstsq(W, X, rcond=None)[0], 0, None)
    error = relative_error(X, W, H)
    layer = Layer(W=W, H=H, relative_error=error, history=_history(12, 0.5, error))
    result = Result(model="nmf", layers=[layer], params={"rank": rank, "init": "spa", "solver": "lstsq"},
                    input=input_metadata(dataset))
    return result, dataset


def deep_result(X: np.ndarray, first: np.ndarray, merges: list[np.ndarray], dataset=None,
                labels: list[list[str] | None] | None = None) -> Result:
    """A deep hard result: ``first`` assigns each column of X to a layer-1 cluster, ``merges[l]``
    assigns the clusters of layer l+1 to those of layer l+2. Each layer's basis is the mean of
    its columns and its coefficients the indicator times each column's norm ratio."""
    X = np.asarray(X, dtype=np.float64)
    assignments = [np.asarray(first)] + [np.asarray(m) for m in merges]
    layers = []
    column_assign = assignments[0]
    for depth, assign in enumerate(assignments):
        if depth > 0:
            column_assign = assign[column_assign]
        rank = int(column_assign.max()) + 1 if depth == 0 else int(assign.max()) + 1
        basis = np.stack([X[:, column_assign == k].mean(axis=1) for k in range(rank)], axis=1)
        indicator = (column_assign[None, :] == np.arange(rank)[:, None]).astype(np.float64)
        scale = np.linalg.norm(X, axis=0) / np.maximum(np.linalg.norm(basis, axis=0)[column_assign], 1e-12)
        coefficients = indicator * scale[None, :]
        error = float(np.linalg.norm(X - basis @ coefficients) / np.linalg.norm(X))
        own_H = coefficients if depth == 0 else (assign[None, :] == np.arange(rank)[:, None]).astype(np.float64)
        layers.append(Layer(W=basis, H=own_H, basis=basis, coefficients=coefficients,
                            assignments=assign.astype(np.int64), relative_error=error,
                            history=_history(20 + 5 * depth, 0.6, error),
                            labels=labels[depth] if labels else None))
    history = {"relative_error": _history(15, layers[-1].relative_error * 1.2, layers[-1].relative_error * 0.95)[
        "relative_error"]}
    result = Result(model="deep-onmf", layers=layers, history=history,
                    params={"ranks": [layer.rank for layer in layers], "seed": 0},
                    input=input_metadata(dataset) if dataset is not None else {"shape": list(X.shape)})
    return result


def pattern_result(order: str, rows: int = 6, cols: int = 9) -> tuple[Result, np.ndarray]:
    """A 1-layer result whose only map is an asymmetric image (bright top-left block and a bright
    last row), stored with pixels in ``order``; returns (result, the true image)."""
    image = np.zeros((rows, cols))
    image[: rows // 2, : cols // 3] = 1.0
    image[-1, :] = 0.5
    H = image_to_pixels(image[None], order)
    W = np.ones((4, 1))
    result = Result(model="nmf", layers=[Layer(W=W, H=H)],
                    input={"image_shape": [rows, cols], "pixel_order": order, "shape": [4, rows * cols]})
    return result, image
