"""Hierarchical clustering by rank-two NMF (H2NMF): a top-down binary tree of clusters.

Gillis, Kuang & Park, "Hierarchical clustering of hyperspectral images using rank-two
nonnegative matrix factorization", IEEE TGRS 53(4), 2015. Starting from one cluster holding
every column of X (m x n, bands x pixels), repeatedly split one leaf into two:

1. **Rank-two NMF of the leaf** X_K (their Algorithm 3): the best rank-two approximation
   U_2 S_2 V_2^T; SPA on the two-dimensional points S_2 V_2^T (any nonnegative rank-two
   matrix is separable, so SPA picks the two extreme columns exactly); the two endmembers are
   those columns' rank-two approximations clipped at zero, w_i = max(U_2 U_2^T x_{k_i}, 0);
   the coefficients V >= 0 are the exact nonnegative least squares for them.
2. **Split** (their section 3.2): with s_j = v_1j / (v_1j + v_2j), the share of the first
   endmember in column j, the columns with s_j >= delta form one child and the rest the
   other. delta on the grid 0, 0.01, ..., 1 minimizes
   -log(F(delta) (1 - F(delta))) + exp(G(delta)), F the fraction of columns with s_j <= delta
   (balanced children) and G the density of shares within 0.05 of delta (a cut through a
   sparse region of the shares, not through a cluster).
3. **Which leaf** (their section 3.3): the one whose split most reduces the error of the
   rank-one fits of the clusters, sigma_1(X_K1)^2 + sigma_1(X_K2)^2 - sigma_1(X_K)^2
   (sigma_1 the largest singular value). Every new leaf's split is computed when the leaf
   is made, so the choice compares every leaf.

The tree is cut at each requested number of clusters: after c - 1 splits the leaves are the
c clusters, and the clusters for fewer leaves are unions of them, so the ranks 7,6,4,2 give
a hierarchy of hard clusterings in the format of deep ONMF (``Layer.assignments``: layer 1
column -> cluster, layer l cluster of layer l-1 -> cluster of layer l). Each cluster's basis
vector is its rank-one fit: the leading left singular vector u_K (nonnegative by
Perron-Frobenius), scaled like ONMF's (:func:`mfcli.models.onmf.hard_factors`), with weight
u_K^T x_j for each of its columns; the layer's relative error is
sqrt(||X||^2 - sum_K sigma_1(X_K)^2) / ||X||. ``arrays['representatives']`` holds, per cluster,
the column closest to u_K in mean-removed spectral angle (their section 4.4.1: a pixel to
show for the cluster).

Not iterative: a fixed number of splits (r_1 - 1), each reported through the monitor with the
relative error of the clustering so far. NumPy only; X must be held in memory.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfcli.errors import ParameterError
from mfcli.metrics import relative_error_from_residual
from mfcli.models.base import prepare_data
from mfcli.models.nnls import nnls_from_grams
from mfcli.models.spa import spa
from mfcli.models.stopping import Monitor, Stopping
from mfcli.result import Layer, Result
from mfcli.validation import check_ranks

THRESHOLD_GRID = np.linspace(0.0, 1.0, 101)
DENSITY_HALF_WIDTH = 0.05


@dataclass
class Node:
    """One cluster of the binary tree: its columns, rank-one fit and (once computed) its split."""

    members: np.ndarray
    sigma: float
    u: np.ndarray
    children: tuple[np.ndarray, np.ndarray] | None = None
    gain: float = -np.inf
    child_ids: list[int] = field(default_factory=list)


def leading_singular(X: np.ndarray, k: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """(U_k, sigma_k): the k leading left singular vectors and values of X (m x n), from the m x m
    Gram matrix X X^T (or the n x n one when n < m)."""
    X = np.asarray(X, dtype=np.float64)
    m, n = X.shape
    if m <= n:
        values, vectors = np.linalg.eigh(X @ X.T)
        order = np.argsort(values)[::-1][:k]
        return vectors[:, order], np.sqrt(np.maximum(values[order], 0.0))
    values, vectors = np.linalg.eigh(X.T @ X)
    order = np.argsort(values)[::-1][:k]
    sigma = np.sqrt(np.maximum(values[order], 0.0))
    U = X @ vectors[:, order] / np.where(sigma > 0, sigma, 1.0)
    return U, sigma


def rank_one(X: np.ndarray) -> tuple[float, np.ndarray]:
    """(sigma_1, u_1) of X with u_1 >= 0 (Perron-Frobenius: X >= 0 has a nonnegative leading pair)."""
    U, sigma = leading_singular(X, 1)
    u = np.abs(U[:, 0])
    return float(sigma[0]), u


def rank_two_nmf(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(W, V): the rank-two NMF X ~= W V of the module docstring (SPA on the rank-two SVD, exact
    NNLS coefficients). W is m x 2, V is 2 x n, both >= 0."""
    X = np.asarray(X, dtype=np.float64)
    U, _ = leading_singular(X, 2)
    projected = U.T @ X  # 2 x n: S_2 V_2^T
    picked = spa(projected, 2) if projected.shape[0] >= 2 else np.array([0, 0])
    W = np.maximum(U @ projected[:, picked], 0.0)
    V = nnls_from_grams(W.T @ W, W.T @ X)
    return W, V


def split_threshold(shares: np.ndarray) -> float:
    """delta minimizing -log(F (1 - F)) + exp(G) on the grid (see the module docstring)."""
    shares = np.sort(np.asarray(shares, dtype=np.float64))
    n = shares.size
    below = np.searchsorted(shares, THRESHOLD_GRID, side="right") / n  # F(delta)
    high = np.minimum(THRESHOLD_GRID + DENSITY_HALF_WIDTH, 1.0)
    low = np.maximum(THRESHOLD_GRID - DENSITY_HALF_WIDTH, 0.0)
    inside = np.searchsorted(shares, high, side="right") - np.searchsorted(shares, low, side="left")
    density = inside / n / (high - low)
    with np.errstate(divide="ignore"):
        balance = -np.log(below * (1.0 - below))
    objective = balance + np.exp(density)
    return float(THRESHOLD_GRID[int(np.argmin(objective))])


def split_columns(X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Positions (within X's columns) of the two children: shares of the first rank-two NMF
    endmember at or above the threshold, and below it."""
    _, V = rank_two_nmf(X)
    totals = V.sum(axis=0)
    shares = V[0] / np.where(totals > 0, totals, 1.0)
    shares[totals <= 0] = 0.0
    delta = split_threshold(shares)
    first = shares >= delta
    return np.flatnonzero(first), np.flatnonzero(~first)


class BinaryTree:
    """The H2NMF tree being grown: ``nodes``, the current ``leaves`` (node ids, in the order
    the reference keeps them: a split leaf is removed and its two children appended) and the
    ``splits`` made (node ids)."""

    def __init__(self, X: np.ndarray):
        self.X = X
        self.nodes: list[Node] = []
        self.leaves: list[int] = [self._node(np.arange(X.shape[1]))]
        self.splits: list[int] = []
        self._prepare(self.leaves[0])

    def _node(self, members: np.ndarray) -> int:
        sigma, u = rank_one(self.X[:, members])
        self.nodes.append(Node(members=members, sigma=sigma, u=u))
        return len(self.nodes) - 1

    def _prepare(self, node_id: int) -> None:
        """Compute the leaf's split and the gain of making it (-inf when it cannot be split)."""
        node = self.nodes[node_id]
        if node.members.size < 2:
            return
        first, second = split_columns(self.X[:, node.members])
        if first.size == 0 or second.size == 0:
            return
        node.children = (node.members[first], node.members[second])
        sigma_first = rank_one(self.X[:, node.children[0]])[0]
        sigma_second = rank_one(self.X[:, node.children[1]])[0]
        node.gain = sigma_first**2 + sigma_second**2 - node.sigma**2

    def split_best(self) -> bool:
        """Split the leaf of largest gain; False when no leaf can be split."""
        gains = [self.nodes[leaf].gain for leaf in self.leaves]
        position = int(np.argmax(gains))
        chosen = self.leaves[position]
        node = self.nodes[chosen]
        if node.children is None or not np.isfinite(node.gain):
            return False
        node.child_ids = [self._node(node.children[0]), self._node(node.children[1])]
        del self.leaves[position]
        self.leaves.extend(node.child_ids)
        self.splits.append(chosen)
        for child in node.child_ids:
            self._prepare(child)
        return True

    def leaves_at(self, count: int) -> list[int]:
        """The leaves when the tree had ``count`` clusters (after count - 1 splits), in leaf order."""
        leaves = [0]
        for chosen in self.splits[:count - 1]:
            position = leaves.index(chosen)
            del leaves[position]
            leaves.extend(self.nodes[chosen].child_ids)
        return leaves


def _representative(X: np.ndarray, members: np.ndarray, u: np.ndarray) -> int:
    """The member closest to u in mean-removed spectral angle (Gillis et al., section 4.4.1)."""
    block = np.asarray(X[:, members], dtype=np.float64)
    centred_u = u - u.mean()
    centred = block - block.mean(axis=0, keepdims=True)
    norms = np.linalg.norm(centred, axis=0) * max(np.linalg.norm(centred_u), 1e-300)
    cosines = (centred_u @ centred) / np.where(norms > 0, norms, np.inf)
    return int(members[int(np.argmax(cosines))])


def h2nmf(X, ranks, *, model: str = "h2nmf", init=None, max_iter=None, tol=None, target_error=None,
          max_time=None, seed: int = 0, callback=None, dtype=None) -> Result:
    """H2NMF hierarchy of X cut at ``ranks`` (first layer first, non-increasing), e.g. [7, 6, 4, 2].

    Returns a Result in the format of :func:`mfcli.models.deep.deep_factorize` for deep ONMF:
    per layer ``W`` (m x r_l, each cluster's rank-one basis vector), ``H`` (layer 1: r_1 x n
    hard weights; layer l >= 2: r_l x r_{l-1}, each child's basis vector's least-squares weight
    on its parent's), ``coefficients`` (r_l x n: the hard weights of every column on its
    cluster's basis vector), ``assignments``, ``assignment_weights``, and
    ``arrays['representatives']``. ``seed`` is recorded (H2NMF is deterministic); the stopping
    rules do not apply (a fixed number of splits) and are refused.
    """
    given = {"max_iter": max_iter, "tol": tol, "target_error": target_error, "max_time": max_time}
    used = [name for name, value in given.items() if value is not None]
    if used:
        raise ParameterError(f"h2nmf is not iterative (it makes r_1 - 1 splits), so {', '.join(used)} "
                             "does not apply; leave it out")
    if init not in (None, "auto", "none"):
        raise ParameterError(f"h2nmf takes no initialization (got '{init}')")
    data = prepare_data(X, model, nonnegative=True, dtype=dtype)
    ranks = check_ranks(list(ranks), data.shape)
    array = np.asarray(data.to_array() if hasattr(data, "to_array") else X)
    out_dtype = array.dtype
    X64 = np.asarray(array, dtype=np.float64)
    x_sq = float(np.vdot(X64, X64))
    monitor = Monitor(Stopping(max_iter=max(ranks[0] - 1, 1), tol=0.0), callback, stage="h2nmf splits")
    tree = BinaryTree(X64)
    monitor.restart_clock()
    while len(tree.leaves) < ranks[0]:
        if not tree.split_best():
            raise ParameterError(f"h2nmf could only make {len(tree.leaves)} clusters of these data "
                                 f"(asked for {ranks[0]}): too few distinct columns")
        fitted = sum(tree.nodes[leaf].sigma ** 2 for leaf in tree.leaves)
        monitor(relative_error_from_residual(x_sq, x_sq - fitted))
    layers = _layers(tree, ranks, X64, x_sq, out_dtype)
    history = monitor.history()
    for layer in layers:
        layer.history = history
    summary = {"relative_error": layers[-1].relative_error,
               "layer_relative_errors": [layer.relative_error for layer in layers],
               "stop_reason": "splits", "chain": "features"}
    params = {"ranks": ranks, "model": model, "init": None, "seed": seed}
    return Result(model=model, layers=layers, params=params, history=history, summary=summary,
                  seconds=monitor.elapsed, converged=True, n_iter=len(tree.splits))


def _layers(tree: BinaryTree, ranks: list[int], X: np.ndarray, x_sq: float, dtype) -> list[Layer]:
    n = X.shape[1]
    layers: list[Layer] = []
    previous: list[int] | None = None
    previous_W = None
    parent = {child: node for node, entry in enumerate(tree.nodes) for child in entry.child_ids}
    for rank in ranks:
        leaves = tree.leaves_at(rank)
        column_cluster = np.empty(n, dtype=np.int64)
        weights = np.empty(n, dtype=np.float64)
        W = np.empty((X.shape[0], rank), dtype=np.float64)
        representatives = np.empty(rank, dtype=np.int64)
        fitted = 0.0
        for k, leaf in enumerate(leaves):
            node = tree.nodes[leaf]
            h = node.u @ X[:, node.members]
            scale = float(h.mean()) if h.size and h.mean() > 0 else 1.0
            W[:, k] = node.u * scale
            column_cluster[node.members] = k
            weights[node.members] = h / scale
            representatives[k] = _representative(X, node.members, node.u)
            fitted += node.sigma**2
        coefficients = np.zeros((rank, n), dtype=dtype)
        coefficients[column_cluster, np.arange(n)] = weights
        if previous is None:
            assignments, assignment_weights, H = column_cluster, weights, coefficients
        else:
            position = {leaf: k for k, leaf in enumerate(leaves)}
            assignments = np.array([position[_ancestor(parent, child, position)] for child in previous], dtype=np.int64)
            parents = W[:, assignments]
            assignment_weights = np.einsum("ij,ij->j", parents, previous_W) / np.maximum(
                np.einsum("ij,ij->j", parents, parents), 1e-300)
            H = np.zeros((rank, len(previous)), dtype=dtype)
            H[assignments, np.arange(len(previous))] = assignment_weights
        layer = Layer(W=W.astype(dtype), H=H, coefficients=None if previous is None else coefficients,
                      assignments=assignments, assignment_weights=np.asarray(assignment_weights, dtype=np.float64),
                      relative_error=relative_error_from_residual(x_sq, x_sq - fitted),
                      attrs={"clusters": "h2nmf"})
        layer.arrays["representatives"] = representatives
        layers.append(layer)
        previous, previous_W = leaves, W
    return layers


def _ancestor(parent: dict[int, int], node_id: int, wanted: dict[int, int]) -> int:
    """The node of ``wanted`` that is ``node_id`` or one of its ancestors (``parent``: node -> parent)."""
    while node_id not in wanted:
        node_id = parent[node_id]
    return node_id
