"""Sparse NMF: mfcli on a scipy.sparse matrix against scikit-learn's cd solver, same matrix, same run.

    python benchmarks/bench_sparse.py [--rank 10] [--sklearn-iter 200] [--cases 5000x2000@0.01,20000x10000@0.005]

The matrices are seeded synthetic document-term counts (documents x terms, CSR), drawn from a
topic model so that NMF has structure to find: each document mixes ``rank`` topics
(Dirichlet(0.1) weights), each topic is a Dirichlet(0.01) distribution over the terms (a few
hundred terms carry most of a topic), and each document draws 1.35 x ``density`` x terms tokens
from its mixture, which leaves about ``density`` x terms distinct terms with counts (the
printed density is the real one). Neither side densifies the matrix.

1. The anchor: scikit-learn ``NMF(n_components=rank, solver='cd', init='nndsvda', max_iter=200,
   tol=0)`` on the CSR matrix (documents x terms). Its relative error ||X - WH||_F / ||X||_F,
   computed from the sparse X and the factors without forming WH densely, is the target.
2. mfcli ``nmf`` on the same matrix transposed (terms x documents, mfcli's features x samples;
   a CSR transpose is a CSC matrix, nothing is copied), timed to reach that error
   (``target_error``), float64, default initialization (nndsvda, as scikit-learn).
3. Both libraries' defaults, no stopping flags: scikit-learn ``NMF(n_components=rank,
   random_state=0)`` and mfcli ``nmf(X, rank)``: error and time.

Goal (issue 16): mfcli / scikit-learn <= 0.5 in time to the 200-iteration error. The machine may
be shared: the load average is printed.
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings

import numpy as np
import scipy.sparse as sp


def topic_counts(n_docs: int, n_terms: int, rank: int, density: float, seed: int = 0) -> sp.csr_matrix:
    """A documents x terms count matrix drawn from a topic model (see the module docstring)."""
    rng = np.random.default_rng(seed)
    topics = rng.dirichlet(np.full(n_terms, 0.01), size=rank)          # rank x terms
    mixtures = rng.dirichlet(np.full(rank, 0.1), size=n_docs)           # docs x rank
    tokens_per_doc = max(1, int(1.35 * density * n_terms))
    doc_of_token = np.repeat(np.arange(n_docs), tokens_per_doc)
    # topic of each token from its document's mixture, then a term from that topic
    cumulative = np.cumsum(mixtures, axis=1)
    u = rng.random(doc_of_token.size)
    topic = (u[:, None] > cumulative[doc_of_token]).sum(axis=1).clip(max=rank - 1)
    term_cumulative = np.cumsum(topics, axis=1)
    term = np.empty(doc_of_token.size, dtype=np.int64)
    for k in range(rank):
        picked = topic == k
        term[picked] = np.searchsorted(term_cumulative[k], rng.random(int(picked.sum())) * term_cumulative[k, -1])
    term = term.clip(max=n_terms - 1)
    counts = sp.coo_matrix((np.ones(doc_of_token.size), (doc_of_token, term)), shape=(n_docs, n_terms)).tocsr()
    counts.sum_duplicates()
    return counts


def sparse_relative_error(X: sp.csr_matrix, W: np.ndarray, H: np.ndarray) -> float:
    """||X - WH||_F / ||X||_F for sparse X (n x m) and W (n x r), H (r x m), in float64, without
    forming WH: ||X||^2 - 2 <X, WH> + <W^T W, H H^T>, where <X, WH> = sum over the nonzeros."""
    X = X.tocoo()
    x_sq = float(np.dot(X.data, X.data))
    cross = float(np.dot(X.data, np.einsum("ij,ji->i", W[X.row], H[:, X.col])))
    gram = float(np.vdot(W.T @ W, H @ H.T))
    return float(np.sqrt(max(x_sq - 2 * cross + gram, 0.0) / x_sq))


def run_case(n_docs: int, n_terms: int, density: float, rank: int, sklearn_iter: int) -> dict:
    from sklearn.decomposition import NMF as SklearnNMF

    from mfcli.models.nmf import nmf

    X = topic_counts(n_docs, n_terms, rank, density)
    print(f"\n{n_docs} documents x {n_terms} terms, {X.nnz} nonzeros ({X.nnz / (n_docs * n_terms):.2%} dense), "
          f"rank {rank}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        anchor = SklearnNMF(n_components=rank, solver="cd", init="nndsvda", max_iter=sklearn_iter, tol=0,
                            random_state=0)
        W = anchor.fit_transform(X)
        sk_seconds = time.perf_counter() - start
    target = sparse_relative_error(X, W, anchor.components_)
    print(f"  scikit-learn cd, {sklearn_iter} iterations: {sk_seconds:.3f} s, relative error {target:.6f}")

    Xt = X.T  # terms x documents (CSC): mfcli's features x samples
    start = time.perf_counter()
    result = nmf(Xt, rank, target_error=target, max_iter=20 * sklearn_iter)
    seconds = time.perf_counter() - start
    reached = result.relative_error <= target
    print(f"  mfcli nmf to that error: {seconds:.3f} s ({result.n_iter} iterations, error {result.relative_error:.6f}"
          f"{'' if reached else ', NOT reached'}), ratio {seconds / sk_seconds:.3f}")

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        start = time.perf_counter()
        default = SklearnNMF(n_components=rank, random_state=0)
        Wd = default.fit_transform(X)
        sk_default_seconds = time.perf_counter() - start
    sk_default_error = sparse_relative_error(X, Wd, default.components_)
    start = time.perf_counter()
    mf_default = nmf(Xt, rank)
    mf_default_seconds = time.perf_counter() - start
    print(f"  defaults: scikit-learn {sk_default_error:.6f} in {sk_default_seconds:.3f} s ({default.n_iter_} it.); "
          f"mfcli {mf_default.relative_error:.6f} in {mf_default_seconds:.3f} s ({mf_default.n_iter} it., "
          f"{mf_default.summary.get('stop_reason')}); time ratio {mf_default_seconds / sk_default_seconds:.3f}")
    return {"case": f"{n_docs}x{n_terms}@{density:g}", "ratio": seconds / sk_seconds, "reached": reached,
            "default_error_ratio": mf_default.relative_error / sk_default_error,
            "default_time_ratio": mf_default_seconds / sk_default_seconds}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rank", type=int, default=10)
    parser.add_argument("--sklearn-iter", type=int, default=200)
    parser.add_argument("--cases", default="5000x2000@0.01,20000x10000@0.005",
                        help="documents x terms @ density, comma-separated")
    args = parser.parse_args()
    print(f"bench_sparse: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}")
    rows = []
    for case in args.cases.split(","):
        size, density = case.split("@")
        n_docs, n_terms = (int(v) for v in size.split("x"))
        rows.append(run_case(n_docs, n_terms, float(density), args.rank, args.sklearn_iter))
    print("\ncase                     time ratio to sklearn-200 error   default error ratio   default time ratio")
    for row in rows:
        print(f"{row['case']:<24} {row['ratio']:>8.3f}{'' if row['reached'] else ' (not reached)':<24} "
              f"{row['default_error_ratio']:>18.4f} {row['default_time_ratio']:>20.3f}")
    print(f"goal: time ratio <= 0.5; load average at the end {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
