"""scikit-learn compatible estimators of mfcli's factorization models.

They follow scikit-learn's conventions to the letter, so they go in a ``Pipeline``, a
``GridSearchCV`` or ``clone``: X is **n_samples x n_features** (for a hyperspectral image,
pixels x bands), parameters are explicit ``__init__`` arguments with scikit-learn's names where
it has them (``n_components``, ``init``, ``max_iter``, ``tol``, ``random_state``,
``beta_loss``...), fitted attributes end in ``_``, bad data raise ``ValueError`` and a transform
before ``fit`` raises ``NotFittedError``.

mfcli's core functions use the papers' orientation, features x samples: they factorize
X^T ~= W H with W (n_features x r) and H (r x n_samples). The estimators transpose at the
boundary, as scikit-learn's own NMF does (X ~= W H with W = ``transform(X)`` and H =
``components_``)::

    components_      = W^T  (n_components x n_features: for an image, the endmember spectra)
    transform(X)     = H^T  (n_samples x n_components: for an image, the abundances)
    inverse_transform(Z) = Z @ components_

``transform`` of new data solves the coefficients with the components fixed, the model's way
(:func:`mfcli.models.nnls.solve_coefficients`: exact NNLS for the NMF family, FCLS for the
models whose coefficients are on the simplex, the best cluster for ONMF, least squares for the
SVD). scipy.sparse input (CSR/CSC) is factorized without being densified by the models that
read X only through products (NMF, ONMF, AONMF, semi-NMF, sparse NMF, nsNMF, SVD, AA and the
deep models); minimum-volume NMF densifies it.

These are mfcli's only estimator classes for factorizations: the core (:mod:`mfcli.models`) is
functions returning a :class:`~mfcli.result.Result`, each model registered with its parameters
in :mod:`mfcli.models.registry`, whose ``estimator`` path names the class here.

Needs scikit-learn (``pip install 'mfcli[sklearn]'``); the rest of mfcli does not.
"""

from __future__ import annotations

import numbers
from typing import Any

import numpy as np

try:
    from sklearn.base import BaseEstimator, ClassNamePrefixFeaturesOutMixin, TransformerMixin
    from sklearn.utils import check_random_state
    from sklearn.utils.validation import check_array, check_is_fitted, check_non_negative, validate_data
except ImportError as exc:  # pragma: no cover - exercised only without scikit-learn
    from mfcli.errors import MissingDependencyError

    raise MissingDependencyError("scikit-learn", "sklearn", "mfcli.estimators") from exc

from mfcli.models.matrix import is_sparse
from mfcli.models.nnls import model_penalties, solve_coefficients
from mfcli.models.registry import get_model

__all__ = ["NMF", "ONMF", "AONMF", "SemiNMF", "SparseNMF", "NsNMF", "MinVolNMF", "ArchetypalAnalysis", "EDAA",
           "TruncatedSVD", "DeepFactorization"]

# scikit-learn's names of the beta-divergences, and mfcli's
_BETA_LOSSES = {"frobenius": "fro", "kullback-leibler": "kl", "itakura-saito": "is"}


def _seed(random_state) -> int:
    """An integer seed for the core from scikit-learn's ``random_state`` (an int is used as it
    is, so ``random_state=0`` gives the same result as ``mfcli factorize --seed 0``)."""
    if isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(np.iinfo(np.int32).max))


def _frobenius_errors(X, Z: np.ndarray, C: np.ndarray) -> tuple[float, float]:
    """(||X - Z C||_F, ||X - Z C||_F / ||X||_F): formed directly for a dense X, from Gram
    matrices for a sparse one (||X||^2 - 2 <X C^T, Z> + <Z^T Z, C C^T>, never densified)."""
    Z = np.asarray(Z, dtype=np.float64)
    C = np.asarray(C, dtype=np.float64)
    if is_sparse(X):
        x_sq = float(X.multiply(X).sum())
        residual_sq = max(x_sq - 2.0 * float(np.vdot(np.asarray(X @ C.T), Z)) + float(np.vdot(Z.T @ Z, C @ C.T)), 0.0)
    else:
        X = np.asarray(X, dtype=np.float64)
        x_sq = float(np.vdot(X, X))
        residual_sq = float(np.sum((X - Z @ C) ** 2))
    error = float(np.sqrt(residual_sq))
    return error, (error / np.sqrt(x_sq) if x_sq > 0 else 0.0)


def _inverse(Z, components: np.ndarray) -> np.ndarray:
    """``Z @ components`` for coefficients Z (n_samples x n_components, dense or sparse)."""
    Z = check_array(Z, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32])
    if Z.shape[1] != components.shape[0]:
        raise ValueError(f"inverse_transform takes an array of shape (n_samples, {components.shape[0]}), "
                         f"got {Z.shape}")
    return np.asarray(Z @ components)


class _Factorization(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """What every single-layer estimator shares; a subclass names its registry model
    (``_model``) and lists its model-specific parameters (``_model_params``), which are passed
    to the model's function unchanged; ``_densify``: the model needs dense data, so sparse input
    is densified first."""

    _model = ""
    _model_params: tuple[str, ...] = ()
    _densify = False

    # -- scikit-learn protocol ----------------------------------------------------------------

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = self._spec().nonnegative
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def fit(self, X, y=None, W=None, H=None):
        """Fit the model to X (n_samples x n_features). ``W`` (n_samples x n_components) and
        ``H`` (n_components x n_features), in scikit-learn's orientation, start the solver
        where the model takes a given start."""
        self._fit(X, W, H)
        return self

    def fit_transform(self, X, y=None, W=None, H=None):
        """Fit and return the coefficients of X (n_samples x n_components) found by the fit."""
        return self._fit(X, W, H)

    def transform(self, X):
        """Coefficients of new samples with the components fixed (n_samples x n_components)."""
        check_is_fitted(self)
        return self._coefficients(self._validate(X, reset=False))

    def inverse_transform(self, X):
        """Samples back from coefficients: ``X @ components_``."""
        check_is_fitted(self)
        return _inverse(X, self.components_)

    # -- the fit ------------------------------------------------------------------------------

    def _spec(self):
        return get_model(self._model)

    def _validate(self, X, reset: bool):
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32], reset=reset)
        if self._spec().nonnegative:
            check_non_negative(X, f"{type(self).__name__} (input X)")
        return X

    def _rank(self, X) -> int:
        if self.n_components is None:
            return min(X.shape)
        if not isinstance(self.n_components, numbers.Integral) or isinstance(self.n_components, bool) \
                or not 1 <= self.n_components <= min(X.shape):
            raise ValueError(f"n_components must be an integer in [1, {min(X.shape)}] for data of shape "
                             f"{X.shape}, got {self.n_components!r}")
        return int(self.n_components)

    def _core_kwargs(self) -> dict[str, Any]:
        kwargs: dict[str, Any] = {"seed": _seed(self.random_state)}
        for name in ("max_iter", "tol", "max_time"):
            value = getattr(self, name, None)
            if value is not None:
                kwargs[name] = value
        if getattr(self, "init", None) is not None:
            kwargs["init"] = self.init
        for name in self._model_params:
            kwargs[name] = getattr(self, name)
        return kwargs

    def _fit(self, X, W, H):
        if self._densify and is_sparse(X):
            X = X.toarray()
        X = self._validate(X, reset=True)
        rank = self._rank(X)
        kwargs = self._core_kwargs()
        if W is not None or H is not None:  # scikit-learn's W is the core's H^T, its H the core's W^T
            kwargs["W"] = None if H is None else np.asarray(H).T
            kwargs["H"] = None if W is None else np.asarray(W).T
        result = self._spec().run(X.T, rank, **kwargs)
        layer = result.layers[0]
        self.result_ = result
        self.components_ = np.ascontiguousarray(layer.data_basis.T, dtype=X.dtype)
        self.n_components_ = rank
        self.n_iter_ = int(result.n_iter or 0)
        self._fitted(result)
        Z = self._coefficients(X)
        self.reconstruction_err_, self.relative_error_ = self._errors(X, Z)
        return Z

    def _coefficients(self, X):
        """The coefficients of the samples X for the fitted components, solved to the end the
        model's way (so ``fit_transform(X)`` equals ``fit(X).transform(X)``)."""
        layer = self.result_.layers[0]
        H = solve_coefficients(self.components_.T, X.T, self._spec().transform,
                               **model_penalties(self.result_, layer))
        return np.ascontiguousarray(H.T, dtype=X.dtype)

    def _errors(self, X, Z) -> tuple[float, float]:
        """(||X - Z C||_F, that over ||X||_F) for the coefficients Z and components C."""
        return _frobenius_errors(X, Z, self.components_)

    def _fitted(self, result) -> None:
        """Model-specific fitted attributes."""


class NMF(_Factorization):
    """Nonnegative matrix factorization X ~= W H, W, H >= 0 (:func:`mfcli.models.nmf.nmf`).

    ``solver``: ``"hals"`` (accelerated HALS with extrapolation, default) or ``"mu"``;
    ``beta_loss``: ``"frobenius"`` (default), ``"kullback-leibler"``, ``"itakura-saito"`` or a
    float beta (beta-divergences by multiplicative updates). ``init``: ``None`` (the model's
    default, nndsvda, as scikit-learn), ``"nndsvd"``, ``"nndsvda"``, ``"nndsvdar"``, ``"spa"``,
    ``"kmeans++"``, ``"random"``. ``tol``/``max_iter``: ``None`` keeps mfcli's default stopping
    rule; ``max_time``: seconds. ``reconstruction_err_`` is ||X - WH||_F for the Frobenius loss
    and sqrt(2 D_beta(X | WH)) otherwise, as scikit-learn's.
    """

    _model = "nmf"

    def __init__(self, n_components=None, *, init=None, solver="hals", beta_loss="frobenius", tol=None,
                 max_iter=None, max_time=None, random_state=None):
        self.n_components = n_components
        self.init = init
        self.solver = solver
        self.beta_loss = beta_loss
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state

    def _core_kwargs(self):
        kwargs = super()._core_kwargs()
        loss = self.beta_loss
        if isinstance(loss, str):
            loss = _BETA_LOSSES.get(loss.lower(), loss)
        elif isinstance(loss, numbers.Real) and not isinstance(loss, bool):
            loss = f"beta={float(loss)!r}"
        else:
            raise ValueError(f"beta_loss must be 'frobenius', 'kullback-leibler', 'itakura-saito' or a number, "
                             f"got {self.beta_loss!r}")
        kwargs["loss"] = loss
        kwargs["solver"] = self.solver
        return kwargs

    def _beta(self) -> float:
        from mfcli.models.nmf import parse_loss

        return parse_loss(self._core_kwargs()["loss"])

    def _coefficients(self, X):
        beta = self._beta()
        if beta == 2.0:
            return super()._coefficients(X)
        from mfcli.models.beta import beta_coefficients

        return np.ascontiguousarray(beta_coefficients(self.components_.T, X.T, beta).T, dtype=X.dtype)

    def _errors(self, X, Z):
        """Frobenius: as the other models; a beta-divergence: sqrt(2 D_beta(X | Z C)) as
        scikit-learn's ``reconstruction_err_``, with the relative Frobenius error beside it."""
        reconstruction, relative = super()._errors(X, Z)
        beta = self._beta()
        if beta == 2.0:
            return reconstruction, relative
        from mfcli.metrics import beta_divergence
        from mfcli.models.matrix import as_data_matrix, column_blocks

        C = np.asarray(self.components_, dtype=np.float64)
        divergence = sum(beta_divergence(np.asarray(block, dtype=np.float64).T, Z[start:stop] @ C, beta)
                         for start, stop, block in column_blocks(as_data_matrix(X.T)))
        return float(np.sqrt(2.0 * max(divergence, 0.0))), relative


class ONMF(_Factorization):
    """Orthogonal NMF: every sample belongs to one component (a hard clustering; the components
    are the cluster centroids' directions). ``init=None`` takes the best of ``restarts`` starts
    (SPA, k-means++-style, random), screened on ``screen_size`` samples when there are more;
    ``transform`` assigns each sample to its best component."""

    _model = "onmf"
    _model_params = ("restarts", "screen_size")

    def __init__(self, n_components=None, *, init=None, restarts=10, screen_size=5000, tol=None, max_iter=None,
                 max_time=None, random_state=None):
        self.n_components = n_components
        self.init = init
        self.restarts = restarts
        self.screen_size = screen_size
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state

    def _fitted(self, result):
        self.labels_ = np.asarray(result.layers[0].assignments)


class AONMF(_Factorization):
    """Approximately orthogonal NMF: penalty ``penalty * sum_{j<k} <h_j, h_k>`` on the
    coefficients (unit-norm components)."""

    _model = "aonmf"
    _model_params = ("penalty",)

    def __init__(self, n_components=None, *, penalty=1.0, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.penalty = penalty
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class SemiNMF(_Factorization):
    """Semi-NMF: components of any sign, coefficients >= 0 (signed data allowed)."""

    _model = "semi-nmf"

    def __init__(self, n_components=None, *, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class SparseNMF(_Factorization):
    """Sparse NMF: ``l1`` penalty on the coefficients (relative to the rms sample norm),
    unit-norm components."""

    _model = "sparse-nmf"
    _model_params = ("l1",)

    def __init__(self, n_components=None, *, l1=0.1, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.l1 = l1
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class NsNMF(_Factorization):
    """Nonsmooth NMF, X ~= W S H with S = (1 - theta) I + theta / r 11^T."""

    _model = "nsnmf"
    _model_params = ("theta",)

    def __init__(self, n_components=None, *, theta=0.5, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.theta = theta
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class MinVolNMF(_Factorization):
    """Minimum-volume NMF for unmixing: coefficients on the simplex (abundances), small
    endmember simplex; ``transform`` is FCLS. ``lam="auto"`` chooses the volume weight by the
    data-fit/volume trade-off; ``init=None`` runs from each method of ``starts`` and keeps the
    smallest objective (:func:`mfcli.models.minvol.minvol`). Sparse input is densified."""

    _model = "minvol"
    _densify = True
    _model_params = ("lam", "delta", "volume", "normalize", "starts", "screen_size")

    def __init__(self, n_components=None, *, lam="auto", delta=0.5, volume="affine", normalize="l1",
                 starts="spa,snpa,vca", screen_size=10000, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.lam = lam
        self.delta = delta
        self.volume = volume
        self.normalize = normalize
        self.starts = starts
        self.screen_size = screen_size
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class EDAA(_Factorization):
    """Entropic descent archetypal analysis (Zouaoui et al., IEEE TIP 2023;
    :func:`mfcli.models.edaa.edaa`): components are convex combinations of samples, found by
    entropic gradient steps on the simplex from ``runs`` random starts, the run kept by the
    paper's criterion (fit within 5% of the best, least correlated components); ``transform`` is
    FCLS. Sparse input is densified."""

    _model = "edaa"
    _densify = True
    _model_params = ("runs", "inner", "subspace", "screen_size", "normalize")

    def __init__(self, n_components=None, *, runs=20, inner=20, subspace=20, screen_size=10000, normalize="l2",
                 tol=None, max_iter=None, max_time=None, random_state=None):
        self.n_components = n_components
        self.runs = runs
        self.inner = inner
        self.subspace = subspace
        self.screen_size = screen_size
        self.normalize = normalize
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state


class ArchetypalAnalysis(_Factorization):
    """Archetypal analysis: components are convex combinations of samples (``archetypes_`` =
    ``components_``, ``A_`` the combination weights), coefficients on the simplex; ``transform``
    is FCLS."""

    _model = "aa"

    def __init__(self, n_components=None, *, init=None, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.init = init
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state

    def _fitted(self, result):
        self.A_ = result.layers[0].arrays["A"].T


class TruncatedSVD(_Factorization):
    """Truncated SVD by subspace iteration (signed components; ``transform`` by least squares,
    which for orthonormal components is the projection). ``singular_values_`` as scikit-learn's."""

    _model = "svd"
    _model_params = ("oversample",)

    def __init__(self, n_components=None, *, oversample=10, tol=None, max_iter=None, max_time=None,
                 random_state=None):
        self.n_components = n_components
        self.oversample = oversample
        self.tol = tol
        self.max_iter = max_iter
        self.max_time = max_time
        self.random_state = random_state

    def _fitted(self, result):
        layer = result.layers[0]
        self.singular_values_ = np.linalg.norm(np.asarray(layer.H, dtype=np.float64), axis=1)


class DeepFactorization(ClassNamePrefixFeaturesOutMixin, TransformerMixin, BaseEstimator):
    """A deep factorization (:func:`mfcli.models.deep.deep_factorize`), deep orthogonal NMF by
    default: X^T ~= W_1 H_1, W_1 ~= W_2 H_2, ..., with ``ranks`` (layer 1 first,
    non-increasing). ``None`` is one layer per halving of the smallest dimension capped at 2
    layers: (k, ceil(k/2)) with k = min(n_samples, n_features, 4).

    Fitted: ``layers_`` (the core's Layer objects), ``components_`` of the last layer
    (n_components x n_features), ``n_components_``, ``layer_components_`` (one array per layer),
    ``labels_`` (each sample's cluster at layer 1 where the model makes hard clusters),
    ``reconstruction_err_`` (of ``fit_transform(X)`` with ``components_``), ``n_iter_``, and
    ``result_.relative_error``, the deep model's own error. ``transform(X, layer=-1)``: NNLS
    coefficients of new samples for that layer's data-space components. ``model_params``: the
    deep model's own parameters (e.g. ``{"restarts": 20}`` for deep ONMF, ``{"penalty": 0.5}``
    for deep AONMF), as its registry entry declares them; unknown names are refused.
    """

    def __init__(self, ranks=None, *, model="deep-onmf", model_params=None, init=None, max_iter=None, tol=None,
                 max_time=None, random_state=None):
        self.ranks = ranks
        self.model = model
        self.model_params = model_params
        self.init = init
        self.max_iter = max_iter
        self.tol = tol
        self.max_time = max_time
        self.random_state = random_state

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.input_tags.sparse = True
        tags.input_tags.positive_only = get_model(self.model, "deep").nonnegative
        tags.transformer_tags.preserves_dtype = ["float64", "float32"]
        return tags

    def _validate(self, X, reset: bool):
        X = validate_data(self, X, accept_sparse=("csr", "csc"), dtype=[np.float64, np.float32], reset=reset)
        if get_model(self.model, "deep").nonnegative:
            check_non_negative(X, f"{type(self).__name__} (input X)")
        return X

    def _ranks(self, X) -> list[int]:
        if self.ranks is None:
            k = min(min(X.shape), 4)
            return [k, (k + 1) // 2] if k > 1 else [1]
        ranks = [self.ranks] if isinstance(self.ranks, numbers.Integral) else list(self.ranks)
        return [int(r) for r in ranks]

    def fit(self, X, y=None):
        self._fit(X)
        return self

    def fit_transform(self, X, y=None):
        """Fit, then the NNLS coefficients of X for the last layer's components (what
        ``transform(X)`` gives; the model's own coefficients of each layer are in ``layers_``)."""
        return self._fit(X)

    def _fit(self, X):
        from mfcli.models.deep import deep_factorize

        X = self._validate(X, reset=True)
        kwargs: dict[str, Any] = {"seed": _seed(self.random_state)}
        for name in ("init", "max_iter", "tol", "max_time"):
            if getattr(self, name) is not None:
                kwargs[name] = getattr(self, name)
        result = deep_factorize(X.T, self._ranks(X), self.model, **kwargs, **dict(self.model_params or {}))
        self.result_ = result
        self.layers_ = result.layers
        self.layer_components_ = [np.ascontiguousarray(layer.data_basis.T, dtype=X.dtype) for layer in result.layers]
        self.components_ = self.layer_components_[-1]
        self.n_components_ = self.components_.shape[0]
        self.n_iter_ = int(result.n_iter or 0)
        first = result.layers[0]
        if first.assignments is not None:
            self.labels_ = np.asarray(first.assignments)
        Z = self.transform(X)
        self.reconstruction_err_, self.relative_error_ = _frobenius_errors(X, Z, self.components_)
        return Z

    def transform(self, X, layer=-1):
        check_is_fitted(self)
        X = self._validate(X, reset=False)
        basis = self.result_.layer(layer).data_basis
        return np.asarray(solve_coefficients(basis, X.T, "nnls").T, dtype=X.dtype)

    def inverse_transform(self, X):
        check_is_fitted(self)
        return _inverse(X, self.components_)
