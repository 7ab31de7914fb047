"""Soft abundances (NNLS or FCLS) of every layer's data-space endmembers. NumPy only."""

from __future__ import annotations

import numpy as np

from mfcli.errors import ParameterError
from mfcli.models.hals import cross_and_gram
from mfcli.models.linalg import gram_solve
from mfcli.result import Result


def layer_abundances(result: Result, X, method: str = "nnls") -> None:
    """Soft abundances of every layer's data-space endmembers for all columns at once, exact
    NNLS (H >= 0) or FCLS (also sum to one) by :mod:`mfcli.models.nnls`, stored in
    ``Layer.abundances`` in X's dtype. Block principal pivoting starts from the passive sets of
    the clipped least-squares coefficients (:func:`_warm_start`)."""
    for layer in result.layers:
        abundances_of_layer(layer, X, method)


def abundances_of_layer(layer, X, method: str = "nnls", products: bool = False):
    """:func:`layer_abundances` of one layer (in place). ``products``: also return
    (<W^T X, A>, A A^T) in float64 for the layer's basis W and the abundances A, from the W^T X
    the NNLS solves already formed (what the layer's relative error needs:
    :func:`mfcli.models.refine.refined_coefficients_of_layer`); None for FCLS."""
    from mfcli.models.matrix import as_data_matrix, column_blocks

    if method not in ("nnls", "fcls"):
        raise ParameterError(f"abundances are nnls or fcls, not '{method}'")
    data = as_data_matrix(X)
    rank = layer.data_basis.shape[1]
    abundances = np.empty((rank, data.shape[1]), dtype=data.dtype)
    cross, gram = 0.0, np.zeros((rank, rank))
    operators: dict = {}  # the NNLS solution operators of the basis's passive sets, shared by its blocks
    for start, stop, block in column_blocks(data, _abundance_block_size(data, rank)):
        block_abundances, WtX = _abundances_and_products(layer.data_basis, block, method, operators)
        abundances[:, start:stop] = block_abundances
        if products and WtX is not None:
            block_cross, block_gram = cross_and_gram(WtX, block_abundances)
            cross += block_cross
            gram += block_gram
    layer.abundances = abundances
    layer.attrs["abundances"] = method
    return (cross, gram) if products and method == "nnls" else None


# Each column is solved on its own, so the columns are taken in blocks that bound the solver's
# float64 work arrays (a few k x block arrays) to about this many bytes each. With 16 MiB (Urban's
# layers in one block each) they set the peak memory of `mfcli unmix` (a resident high-water mark
# of 153 MiB against 145 MiB with 2 MiB, at the same speed: 3 blocks at rank 7; measured outside
# benchmarks/, where bench_unmix prints the peak of the setting in use).
ABUNDANCE_WORK_BYTES = 2 << 20


def _abundance_block_size(data, rank: int) -> int:
    """Columns per block of :func:`layer_abundances`. In memory a block of X is a view, so only
    the k x block work arrays count: block principal pivoting takes a block of many columns in
    hardly more time than a small one (it solves each distinct passive set once per block), and
    blocks of 8 MiB of X made the abundances of Urban at rank 7 take twice as long. Engines that
    read X block by block keep their blocks of about 8 MiB of X."""
    from mfcli.models.matrix import update_block_size

    size = update_block_size(data)
    if getattr(data, "engine", None) == "memory":
        size = max(size, ABUNDANCE_WORK_BYTES // (8 * max(rank, 1)))
    return size


def soft_abundances(basis: np.ndarray, X, method: str = "nnls") -> np.ndarray:
    """NNLS or FCLS abundances of the columns of X (an array or DataMatrix, e.g. one block of
    columns: each column is solved on its own) for ``basis``, in X's dtype (see
    :func:`layer_abundances`)."""
    return _abundances_and_products(basis, X, method)[0]


def _abundances_and_products(basis: np.ndarray, X, method: str, operators: dict | None = None):
    """(:func:`soft_abundances`, the W^T X the NNLS solve formed; None for FCLS). ``operators``:
    see :func:`mfcli.models.nnls.nnls_from_grams` (one dict per basis)."""
    from mfcli.models.matrix import as_data_matrix
    from mfcli.models.nnls import fcls, nnls_from_grams

    data = as_data_matrix(X)
    W = np.asarray(basis, dtype=data.dtype)
    if method == "fcls":
        return np.asarray(fcls(W, data), dtype=data.dtype), None
    # in X's dtype: used as it is (see nnls_from_grams), column-major: the pivoting works on its
    # transpose (one row per pixel), which is then a view, not a copy (one r x n array less)
    WtX = np.ascontiguousarray(data.WtX(W).T).T
    G = W.astype(np.float64).T @ W.astype(np.float64)
    passive = _warm_start(G, WtX) > 0
    return np.asarray(nnls_from_grams(G, WtX, init=passive, operators=operators), dtype=data.dtype), WtX


def _warm_start(G: np.ndarray, WtX: np.ndarray) -> np.ndarray:
    """The clipped least-squares coefficients, whose positive entries start the pivoting's passive
    sets. Five HALS sweeps from them (the previous start) left more columns to exchange on
    ill-conditioned endmembers (Urban's rank-7 layer, cond(W^T W) = 2e7): the four layers' NNLS
    took 0.44 s instead of 0.55, Samson's 0.017 s instead of 0.021, one thread (the same
    solution: it is unique; timed outside benchmarks/)."""
    start = gram_solve(G, WtX)
    np.maximum(start, 0.0, out=start)
    return start
