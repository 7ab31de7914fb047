"""Endmembers that are materials: every layer of a hierarchy refined by cluster-restricted EDAA.

A hard clustering (deep ONMF, H2NMF) gives each cluster a basis vector that is a centroid of
its pixels, mixed pixels included, so the endmembers of neighbouring materials are pulled
towards each other. The refinement keeps the clusters (the tree is unchanged) and moves each
cluster's endmember to the material the cluster stands for: archetypal analysis in which the
endmember of cluster k is a convex combination of cluster k's own pixels,

    min_{A, B} 1/2 ||Y - Y B A||_F^2,  columns of A on the simplex,
    column k of B on the simplex and zero outside cluster k,

(Y: the pixels scaled to unit l2 norm) solved by the entropic descent of
:mod:`mfcli.models.edaa` (Zouaoui et al., IEEE TIP 2023) started from B = the cluster means. The
mirror step multiplies B, so the zeros outside each cluster stay zero: the endmember never
leaves its cluster's convex hull, hence never leaves the data's cone (a centroid is in it),
and it moves from the cluster mean towards the cluster's purest pixels as far as the fit of
the mixed pixels asks.

Cost, to keep ``mfcli unmix`` fast: everything is shared by the layers except the runs
themselves. One pass over X gives the pixel norms and the pixels' affine coordinates on every
layer's centroids; the fit uses a random sample of ``sample_size`` pixels plus, for each
cluster, its ``candidates`` members of largest affine coordinate on their own centroid (the
cluster's most extreme pixels, where its material is purest), projected on their ``subspace``
leading principal directions; one run per layer (step factor 4 with the safeguard of
:mod:`mfcli.models.edaa`, no ensemble: the start is already the right cluster). The endmember is rebuilt from the full bands and given its
cluster's mean pixel norm as brightness. NumPy only.
"""

from __future__ import annotations

import numpy as np

from mfcli.completion.data import sorted_unique  # np.unique's first call imports numpy.ma (15 ms)
from mfcli.errors import ParameterError
from mfcli.models.edaa import entropic_loop, principal_basis, start_runs
from mfcli.models.hals import cross_and_gram
from mfcli.models.matrix import as_data_matrix
from mfcli.models.stopping import Monitor, Stopping

REFINEMENTS = ("edaa", "none")
SAMPLE_SIZE = 3000
CANDIDATES = 200
SUBSPACE = 20
# The chosen pixels are taken from X this many at a time (their float64 copy is the setup's peak)
GATHER_COLUMNS = 1024
MAX_ITER = 25
INNER = 10
STEP_FACTOR = 4.0  # the authors' random factor is 2^-3..2^3; 4 measured (bench_unmixing), steps that raise f are halved


def column_clusters(layers, index: int) -> np.ndarray:
    """The cluster (0..r-1, -1: none) of every data column at layer ``index`` (1-based), from the
    layers' ``assignments`` (layer 1: columns -> clusters, layer l: clusters of l-1 -> clusters)."""
    assign = np.asarray(layers[0].assignments, dtype=np.int64)
    for layer in layers[1:index]:
        upper = np.asarray(layer.assignments, dtype=np.int64)
        assign = np.where(assign >= 0, upper[np.clip(assign, 0, None)], -1)
    return assign


def affine_coordinates(centroids: np.ndarray, products: np.ndarray) -> np.ndarray:
    """Sum-to-one least-squares coordinates of pixels on the columns of ``centroids`` (m x r),
    from ``products`` = centroids^T Y (r x n): argmin ||y - C a|| s.t. 1^T a = 1, in closed form
    a = G^+ (C^T y) + G^+ 1 (1 - 1^T G^+ C^T y) / (1^T G^+ 1), G = C^T C."""
    return _affine_solver(centroids)(products)


def _affine_solver(centroids: np.ndarray):
    """:func:`affine_coordinates` for ``centroids`` as a function of the products (G^+ formed
    once for all the blocks of a pass)."""
    C = np.asarray(centroids, dtype=np.float64)
    inverse = np.linalg.pinv(C.T @ C, hermitian=True)
    ones = np.ones(C.shape[1])
    denominator = max(float(ones @ inverse @ ones), np.finfo(np.float64).tiny)
    inverse_ones = inverse @ ones

    def solve(products: np.ndarray) -> np.ndarray:
        solved = inverse @ products
        shift = (1.0 - ones @ solved) / denominator
        solved += inverse_ones[:, None] * shift[None, :]
        return solved

    return solve


def own_coordinates(data, centroids, clusters, inverse_norms: np.ndarray):
    """Every normalized pixel's affine coordinate (:func:`affine_coordinates`) on its own
    cluster's centroid (0 where it has no cluster), a block of columns at a time: the r x n
    products and coordinates of a whole layer would set unmix's peak memory. ``centroids`` and
    ``clusters`` may be lists, one entry per layer: one pass over the data for all of them
    (returns the list of the layers' coordinates)."""
    from mfcli.models.matrix import column_blocks

    single = not isinstance(centroids, (list, tuple))
    if single:
        centroids, clusters = [centroids], [clusters]
    owns = [np.zeros(data.shape[1]) for _ in centroids]
    basis = np.hstack(centroids).astype(data.dtype)
    solvers = [_affine_solver(layer_centroids) for layer_centroids in centroids]
    bounds = np.cumsum([0] + [layer_centroids.shape[1] for layer_centroids in centroids])
    for start, stop, block in column_blocks(data):
        products = np.asarray(as_data_matrix(block).WtX(basis), dtype=np.float64)
        products *= inverse_norms[None, start:stop]
        for own, solve, layer_clusters, first, last in zip(owns, solvers, clusters, bounds[:-1], bounds[1:]):
            coordinates = solve(products[first:last])
            inside = np.flatnonzero(layer_clusters[start:stop] >= 0)
            own[start + inside] = coordinates[layer_clusters[start + inside], inside]
    return owns[0] if single else owns


def largest(values: np.ndarray, count: int) -> np.ndarray:
    """Indices of the ``count`` largest ``values``, ties to the earlier index: the set of
    ``np.argsort(-values, kind="stable")[:count]``, in index order, by a partition instead of a
    sort (the candidates of Urban's 19 clusters: 22 ms sorted, the refinement's setup being done
    before the layers are shared out; timed outside benchmarks/)."""
    values = np.asarray(values)
    if count >= values.size:
        return np.arange(values.size)
    if count <= 0:
        return np.arange(0)
    threshold = np.partition(values, values.size - count)[values.size - count]  # the count-th largest
    above = values > threshold
    ties = np.flatnonzero(values == threshold)[:count - int(np.count_nonzero(above))]
    above[ties] = True
    return np.flatnonzero(above)


def refine_layers(X, layers, *, method: str = "edaa", seed: int = 0, sample_size: int = SAMPLE_SIZE,
                  candidates: int = CANDIDATES, subspace: int = SUBSPACE, max_iter: int = MAX_ITER,
                  inner: int = INNER, step_factor: float = STEP_FACTOR, tol: float = 1e-4, callback=None) -> list[dict]:
    """Refine the data-space endmembers of every layer in place (module docstring).

    ``layers``: a hierarchy's layers with ``assignments`` (a Result's ``layers``). Each layer
    gets ``basis`` = the refined endmembers (m x r_l, X's dtype; W and the assignments stay the
    clustering's) and ``attrs['refinement']``; its ``coefficients``/``abundances`` are left to
    the caller (they depend on the basis: see :func:`mfcli.models.deep.layer_abundances`).
    Returns per layer {layer, relative_error (of the fit, on the sample), iterations}.
    """
    if method not in REFINEMENTS:
        raise ParameterError(f"unknown refinement '{method}'; use one of {', '.join(REFINEMENTS)}")
    if method == "none":
        return []
    refinement = Refinement(X, layers, seed=seed, sample_size=sample_size, candidates=candidates,
                            subspace=subspace)
    return [refinement.refine(index, max_iter=max_iter, inner=inner, step_factor=step_factor, tol=tol,
                              callback=callback) for index in range(len(layers))]


class Refinement:
    """What the layers' refinements share (module docstring: one pass for the pixel norms and
    the centroids, the pixels of every layer's fit projected once), then :meth:`refine` per
    layer, each independent of the others (they may run in different processes)."""

    def __init__(self, X, layers, *, seed: int = 0, sample_size: int = SAMPLE_SIZE, candidates: int = CANDIDATES,
                 subspace: int = SUBSPACE):
        if any(layer.assignments is None for layer in layers):
            raise ParameterError("refining endmembers needs a hierarchy of clusters (layers with assignments)")
        if min(sample_size, candidates) < 1:
            raise ParameterError("sample_size, candidates, max_iter and inner must be positive")
        data = as_data_matrix(X)
        m, n = data.shape
        norms = np.sqrt(np.maximum(np.asarray(data.col_sq_norms(), dtype=np.float64), 0.0))
        alive = norms > 0
        inverse_norms = np.where(alive, 1.0 / np.where(alive, norms, 1.0), 0.0)
        clusters = [column_clusters(layers, index) for index in range(1, len(layers) + 1)]
        ranks = [layer.rank for layer in layers]
        # centroids of the normalized pixels of every cluster of every layer, by one pass X H^T
        first = clusters[0]
        onehot = np.zeros((ranks[0], n), dtype=data.dtype)
        valid = (first >= 0) & alive
        onehot[first[valid], np.flatnonzero(valid)] = inverse_norms[valid]
        sums = np.asarray(data.XHt(onehot), dtype=np.float64)
        counts = np.bincount(first[valid], minlength=ranks[0]).astype(np.float64)
        del onehot, valid
        centroids, sizes = [], []
        layer_sums, layer_counts = sums, counts
        for index, layer in enumerate(layers):
            if index:
                upper = np.asarray(layer.assignments, dtype=np.int64)
                mapping = np.zeros((ranks[index], ranks[index - 1]))
                mapping[upper[upper >= 0], np.flatnonzero(upper >= 0)] = 1.0
                layer_sums, layer_counts = layer_sums @ mapping.T, mapping @ layer_counts
            centroids.append(layer_sums / np.maximum(layer_counts, 1.0))
            sizes.append(layer_counts)
        rng = np.random.default_rng(seed)
        sample = rng.choice(np.flatnonzero(alive), min(sample_size, int(alive.sum())), replace=False)
        chosen_by_layer = []
        owns = own_coordinates(data, centroids, clusters, inverse_norms)  # one pass for every layer
        for index in range(len(layers)):
            r, own = ranks[index], owns[index]
            chosen = [sample]
            for k in range(r):
                members = np.flatnonzero((clusters[index] == k) & alive)
                if members.size:
                    chosen.append(members[largest(own[members], candidates)])
            chosen_by_layer.append(sorted_unique(np.concatenate(chosen)))
        del owns, own
        # the pixels of every layer's fit, normalized and projected once onto their principal directions
        union = sorted_unique(np.concatenate(chosen_by_layer))
        Y_union = np.empty((m, union.size))
        for start in range(0, union.size, GATHER_COLUMNS):  # no whole copy of the pixels in X's dtype beside it
            part = union[start:start + GATHER_COLUMNS]
            Y_union[:, start:start + part.size] = data.columns(part)
        Y_union *= inverse_norms[union][None, :]
        basis = principal_basis(Y_union, max(subspace, max(ranks)) if subspace else 0)
        self.layers, self.dtype = layers, data.dtype
        self.norms, self.alive, self.clusters, self.ranks, self.sizes = norms, alive, clusters, ranks, sizes
        self.chosen_by_layer, self.union = chosen_by_layer, union
        self.Z_union = Y_union if basis is None else basis.T @ Y_union
        # the chosen pixels themselves (8.8 MB on Urban) are not kept beside their projections:
        # refine() takes a layer's again from X, and the layers' abundances (done by the same
        # process, layer after layer) then have that memory
        self.data, self.inverse_norms = data, inverse_norms

    def refine(self, index: int, *, max_iter: int = MAX_ITER, inner: int = INNER, step_factor: float = STEP_FACTOR,
               tol: float = 1e-4, callback=None) -> dict:
        """Refine layer ``index`` (0-based) in place; returns {layer, relative_error, iterations}."""
        if min(max_iter, inner) < 1:
            raise ParameterError("sample_size, candidates, max_iter and inner must be positive")
        layer, r = self.layers[index], self.ranks[index]
        clusters, alive = self.clusters[index], self.alive
        pixels = self.chosen_by_layer[index]
        label = clusters[pixels]
        counts = np.bincount(label[label >= 0], minlength=r)
        segments = None
        if np.all(label >= 0) and np.all(counts > 0):  # each pixel in one cluster's support: the
            order = np.argsort(label, kind="stable")  # pixels cluster by cluster, B^T's rows then
            pixels, label = pixels[order], label[order]  # lie on segments (edaa.EntropicRuns)
            segments = np.concatenate([[0], np.cumsum(counts)])
        positions = np.searchsorted(self.union, pixels)
        Z = np.ascontiguousarray(self.Z_union[:, positions])
        support = (label[None, :] == np.arange(r)[:, None]).astype(np.float64)
        empty = support.sum(axis=1) == 0
        support[empty] = 1.0  # a cluster without pixels (cannot happen after ONMF) may use any
        Bt = support / support.sum(axis=1, keepdims=True)
        A = np.full((r, pixels.size), 1.0 / r)
        runs = start_runs(Z, Bt[None], A[None], [step_factor], segments=segments)
        monitor = Monitor(Stopping(max_iter=max_iter, tol=tol), callback,
                          stage=f"refining layer {index + 1}/{len(self.layers)} (rank {r})")
        entropic_loop(Z, runs, [monitor], inner, inner)
        chosen = np.array(self.data.columns(pixels), dtype=np.float64)  # the layer's pixels, normalized
        chosen *= self.inverse_norms[pixels][None, :]
        directions = chosen @ runs.Bt[0].T
        del chosen
        brightness = np.array([float(np.mean(self.norms[(clusters == k) & alive])) if self.sizes[index][k] else 1.0
                               for k in range(r)])
        layer.basis = (directions * brightness[None, :]).astype(self.dtype)
        history = monitor.history()
        layer.attrs["refinement"] = {"method": "edaa", "iterations": monitor.iteration,
                                     "relative_error": float(history["relative_error"][-1]),
                                     "pixels": int(pixels.size), "stop_reason": monitor.reason}
        layer.arrays["refinement_objective"] = history["objective"]
        return {"layer": index + 1, "relative_error": float(history["relative_error"][-1]),
                "iterations": monitor.iteration}


def refined_coefficients(X, layers, method: str = "nnls") -> None:
    """After :func:`refine_layers`: every refined layer's ``coefficients`` (r x n) for its new
    basis -- its ``abundances`` where they were computed (NNLS or FCLS), else NNLS -- and its
    ``relative_error`` that of basis @ coefficients (the clustering's error is kept in
    ``attrs['cluster_relative_error']``)."""
    data = as_data_matrix(X)
    for layer in layers:
        refined_coefficients_of_layer(data, layer, method)


def refined_coefficients_of_layer(X, layer, method: str = "nnls", products=None) -> None:
    """:func:`refined_coefficients` of one layer (nothing for a layer that was not refined;
    give the same DataMatrix for every layer: it keeps ||X||^2). ``products``: (<W^T X, C>,
    C C^T) of the layer's abundances C, from :func:`~mfcli.models.deep.abundances.abundances_of_layer`
    (else a pass over X forms them)."""
    from mfcli.metrics import relative_error_from_grams
    from mfcli.models.deep import soft_abundances

    if not isinstance(layer.attrs.get("refinement"), dict):
        return
    data = as_data_matrix(X)
    coefficients = layer.abundances if layer.abundances is not None else soft_abundances(layer.basis, data, method)
    layer.coefficients = coefficients
    W = np.asarray(layer.basis, dtype=np.float64)
    if products is None or layer.abundances is None:
        products = cross_and_gram(data.WtX(np.asarray(layer.basis, dtype=data.dtype)), coefficients)
    cross, CCt = products
    layer.attrs["cluster_relative_error"] = layer.relative_error
    layer.relative_error = relative_error_from_grams(data.sq_norm(), cross, W.T @ W, CCt)
