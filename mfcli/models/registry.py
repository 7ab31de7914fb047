"""The model registry: model name -> public function, estimator, losses, parameters.

``mfcli factorize --model NAME`` and ``mfcli unmix --model NAME`` look models up here, so
adding a model is adding one :class:`ModelSpec` to :data:`BUILTIN_MODELS` (or calling
:func:`register` before the command runs); no command needs editing. Functions are named by
import path ("module:function") and imported only when used, so listing models is cheap.

Calling convention of a single-layer model's function (``kind="single"``)::

    function(X, rank, *, max_iter, tol, target_error, max_time, seed, callback, dtype,
             [init, W, H]        # when the spec has init methods
             [loss]              # when the spec has more than the Frobenius loss
             **params)           # the spec's own parameters, by name
        -> mfcli.result.Result  (a dict with "W" and "H" is accepted and converted)

Deep models (``kind="deep"``, :data:`DEEP_MODELS`) are variants of :mod:`mfcli.models.deep`'s driver:
their function is called as ``function(X, ranks, model=name, **kwargs)``.
NumPy only (nothing is imported until a model is used).
"""

from __future__ import annotations

import importlib
import inspect
import math
from dataclasses import dataclass, field
from typing import Any, Callable

from mfcli.errors import ParameterError

# The initializations of :func:`mfcli.models.init.initialize` (the default, nndsvda, first).
COMMON_INITS = ("nndsvda", "nndsvd", "nndsvdar", "spa", "kmeans++", "random")

# Named losses: the beta of their beta-divergence, and the long names accepted for them.
NAMED_LOSSES = {"fro": 2.0, "kl": 1.0, "is": 0.0}
LOSS_ALIASES = {"frobenius": "fro", "kullback-leibler": "kl", "itakura-saito": "is"}


def loss_key(loss) -> str:
    """A --loss value lowercased, its long name replaced by the short one ("Frobenius" -> "fro")."""
    text = str(loss).strip().lower()
    return LOSS_ALIASES.get(text, text)


def describe_range(low: float | None = None, high: float | None = None, low_open: bool = False,
                   high_open: bool = False, integer: bool = False) -> str:
    """The valid range in words and interval notation, e.g. "a finite number in [0, 1]"."""
    what = "an integer" if integer else "a finite number"
    if low is None and high is None:
        return what
    if high is None:
        return f"{what} {'>' if low_open else '>='} {low:g}"
    if low is None:
        return f"{what} {'<' if high_open else '<='} {high:g}"
    return f"{what} in {'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"


def check_number(name: str, value, low: float | None = None, high: float | None = None, low_open: bool = False,
                 high_open: bool = False, integer: bool = False):
    """``value`` as a finite float (or int with ``integer``) inside the range, else a
    ParameterError that gives the valid range. Models check their numeric parameters with it,
    so the Python functions refuse what ``--param`` refuses."""

    valid = describe_range(low, high, low_open, high_open, integer)
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be {valid}, got {value!r}") from None
    if isinstance(value, bool) or not math.isfinite(number) or (integer and number != int(number)):
        raise ParameterError(f"{name} must be {valid}, got {value!r}")
    too_low = low is not None and (number <= low if low_open else number < low)
    too_high = high is not None and (number >= high if high_open else number > high)
    if too_low or too_high:
        raise ParameterError(f"{name} must be {valid}, got {value!r}")
    return int(number) if integer else number


def lam_value(value):
    """minvol's lam given as a number or text: a float >= 0, or "auto"."""
    if isinstance(value, str):
        text = value.strip().lower()
        if text == "auto":
            return "auto"
        try:
            value = float(text)
        except ValueError:
            raise ParameterError(f"lam must be a number >= 0 or auto, got {value!r}") from None
    value = float(value)
    if not (math.isfinite(value) and value >= 0):
        raise ParameterError(f"lam must be a finite number >= 0 or auto, got {value!r}")
    return value


@dataclass(frozen=True)
class Param:
    """A model-specific parameter: ``--param NAME=VALUE`` on the command line.

    Numbers must be finite and inside [``low``, ``high``] (``low_open``/``high_open``: the end
    is excluded; None: no bound); strings must be one of ``choices`` when given. A value outside
    is refused with the valid range."""

    type: type
    default: Any
    help: str
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] | None = None

    def valid(self) -> str:
        """The valid values in words (shown in errors and in --help)."""
        if self.choices:
            return "one of " + ", ".join(self.choices)
        if self.type is bool:
            return "true or false"
        if self.type in (int, float):
            return describe_range(self.low, self.high, self.low_open, self.high_open, self.type is int)
        return f"a {self.type.__name__}"

    def check(self, name: str, value: Any) -> Any:
        """A value given from Python, checked as :meth:`parse` checks text (the range, the
        choices); a ParameterError that gives the valid values otherwise."""
        if self.type in (int, float):
            return check_number(name, value, self.low, self.high, self.low_open, self.high_open, self.type is int)
        if self.type is bool and not isinstance(value, bool):
            raise ParameterError(f"{name} must be {self.valid()}, got {value!r}")
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"{name} must be {self.valid()}, got {value!r}")
        if self.type is str and not isinstance(value, str):
            raise ParameterError(f"{name} must be {self.valid()}, got {value!r}")
        return value

    def parse(self, name: str, text: str) -> Any:
        try:
            if self.type is bool:
                lowered = str(text).lower()
                if lowered in ("1", "true", "yes", "on"):
                    return True
                if lowered in ("0", "false", "no", "off"):
                    return False
                raise ValueError(text)
            value = self.type(text)
        except ValueError:
            raise ParameterError(f"parameter {name}={text!r} is not valid: {name} must be {self.valid()}") from None
        if self.choices is not None and value not in self.choices:
            raise ParameterError(f"parameter {name}={text!r} is not valid: {name} must be {self.valid()}")
        if self.type in (int, float):
            try:
                return check_number(name, value, self.low, self.high, self.low_open, self.high_open,
                                    self.type is int)
            except ParameterError:
                raise ParameterError(f"parameter {name}={text!r} is not valid: {name} must be {self.valid()}") \
                    from None
        return value


@dataclass(frozen=True)
class ModelSpec:
    """What a command needs to know about a model.

    ``function``: "module:attribute" import path of the core function (returns a Result);
    ``estimator``: that of its scikit-learn estimator in :mod:`mfcli.estimators` (which needs
    scikit-learn; :meth:`load_estimator` raises MissingDependencyError without it). ``losses``: accepted ``--loss``
    values ("beta" stands for beta=B). ``inits``: accepted ``--init`` methods (empty: the model
    takes no init). ``nonnegative``: X must be >= 0. ``transform``: how coefficients of new data
    are solved with the basis fixed: nnls | fcls | lstsq | assign (hard cluster, ONMF).
    ``any_engine``: the function reads X only through :class:`~mfcli.models.matrix.DataMatrix`,
    so it runs on every engine (``--engine stream|dask``, ``--device cuda``); else it needs a
    NumPy array in memory. ``iterative``: the stopping rules (max_iter, tol, target_error,
    max_time) apply; a model with a fixed amount of work (H2NMF's splits) refuses them.
    """

    name: str
    function: str
    summary: str
    estimator: str | None = None
    kind: str = "single"
    losses: tuple[str, ...] = ("fro",)
    inits: tuple[str, ...] = COMMON_INITS
    default_init: str | None = "nndsvda"
    nonnegative: bool = True
    transform: str = "nnls"
    params: dict[str, Param] = field(default_factory=dict)
    extra_inits: tuple[str, ...] = ()
    any_engine: bool = True
    iterative: bool = True

    def load(self) -> Callable[..., Any]:
        return _import(self.function)

    def load_estimator(self):
        return _import(self.estimator) if self.estimator else None

    @property
    def all_inits(self) -> tuple[str, ...]:
        return tuple(self.extra_inits) + tuple(self.inits)

    def parse_params(self, pairs: list[str] | tuple[str, ...]) -> dict[str, Any]:
        """``["theta=0.3", ...]`` -> {"theta": 0.3}, checked against the spec."""
        values: dict[str, Any] = {}
        for pair in pairs:
            if "=" not in pair:
                raise ParameterError(f"--param takes NAME=VALUE, got {pair!r}")
            name, text = (part.strip() for part in pair.split("=", 1))
            name = name.replace("-", "_")
            self.check_names([name])
            values[name] = self.params[name].parse(name, text)
        return values

    def check_names(self, names) -> None:
        """A ParameterError naming the first of ``names`` that is not one of the model's
        parameters, with the list of those it has."""
        for name in names:
            if name not in self.params:
                known = ", ".join(self.params) or "none"
                raise ParameterError(f"model {self.name} has no parameter '{name}' (its parameters: {known})")

    def check_params(self, values: dict[str, Any]) -> dict[str, Any]:
        """Every parameter of the model: the given ``values`` checked (unknown names refused with
        the list of valid ones), the others at their declared defaults."""
        self.check_names(values)
        return {name: param.check(name, values[name]) if name in values else param.default
                for name, param in self.params.items()}

    def check_loss(self, loss: str) -> str:
        text = str(loss).strip().lower()
        base = "beta" if text.startswith("beta=") else loss_key(text)
        if base not in self.losses:
            raise ParameterError(f"model {self.name} supports --loss {', '.join(self.losses)}, not '{loss}'")
        return text

    def run(self, X, rank, **kwargs: Any):
        """Call the model's function and return a Result (``rank``: the list of ranks of a
        deep model, whose function also receives ``model=name``)."""
        function = self.load()
        if self.kind == "deep":  # the driver refuses names that are not the model's parameters
            value = function(X, list(rank), model=self.name, **kwargs)
        else:
            accepted = inspect.signature(function).parameters
            if not any(p.kind is p.VAR_KEYWORD for p in accepted.values()):
                self.check_names([name for name in kwargs if name not in accepted])
            value = function(X, rank, **kwargs)
        return as_result(value, self.name)


def _import(path: str):
    module_name, _, attribute = path.partition(":")
    return getattr(importlib.import_module(module_name), attribute)


def as_result(value: Any, model: str):
    """A model's return value as a :class:`~mfcli.result.Result` (dicts with W and H accepted)."""
    from mfcli.result import Layer, Result

    if isinstance(value, Result):
        return value
    if isinstance(value, dict) and "W" in value and "H" in value:
        import numpy as np

        history = {key: np.asarray(val) for key, val in (value.get("history") or {}).items()}
        layer = Layer(W=value["W"], H=value["H"], relative_error=value.get("relative_error"), history=history)
        return Result(model=model, layers=[layer], params=dict(value.get("params", {})),
                      summary={"relative_error": value.get("relative_error")},
                      seconds=value.get("seconds"), converged=value.get("converged"), n_iter=value.get("n_iter"))
    raise TypeError(f"model {model} returned {type(value).__name__}, not a Result")


# The inner sweeps and extrapolation of accelerated HALS (Gillis & Glineur 2012; Ang & Gillis 2019), which
# `nmf` records with its result, so each can be set again: -p accelerate=false.
_HALS_PARAMS = {
    "accelerate": Param(bool, True, "several inner sweeps per update where they pay (accelerated HALS)"),
    "extrapolate": Param(bool, True, "safeguarded extrapolation of the iterates"),
    "alpha": Param(float, 0.25, "inner sweeps: their cost relative to one pass over X", low=0),
    "eps": Param(float, 0.1, "inner sweeps stop when one changes less than eps x the first", low=0, high=1),
}


def _lam_value(text: str):
    """minvol's lam as a --param type: a number or auto."""
    try:
        return lam_value(text)
    except ParameterError:
        raise ValueError(text) from None


_lam_value.__name__ = "finite number >= 0 or auto"

_ONMF_PARAMS = {
    "restarts": Param(int, 10, "number of starts (SPA, k-means++-style, random); the best is kept", low=1),
    "screen_size": Param(int, 5000, "above this many columns, starts are screened on a random subsample of this size",
                         low=1),
}

BUILTIN_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("nmf", "mfcli.models.nmf:nmf", "NMF, W,H >= 0 (accelerated HALS; MU; beta-divergences by MU)",
              "mfcli.estimators:NMF", losses=("fro", "kl", "is", "beta"),
              params={"solver": Param(str, "hals", "hals (accelerated HALS) or mu (multiplicative updates)",
                                       choices=("hals", "mu")),
                      **_HALS_PARAMS}),
    ModelSpec("onmf", "mfcli.models.onmf:onmf", "orthogonal NMF: one nonzero per column of H (clustering)",
              "mfcli.estimators:ONMF", inits=("spa", "kmeans++", "random"), default_init="restarts",
              extra_inits=("restarts",), transform="assign", params=_ONMF_PARAMS),
    ModelSpec("aonmf", "mfcli.models.onmf:aonmf", "approximately orthogonal NMF: penalty on off-diagonal of HH^T",
              "mfcli.estimators:AONMF", default_init="spa",
              params={"penalty": Param(float, 1.0, "weight of sum_{j<k} <h_j, h_k> (W has unit columns)", low=0)}),
    ModelSpec("semi-nmf", "mfcli.models.semi:semi_nmf", "semi-NMF: W of any sign, H >= 0 (signed data allowed)",
              "mfcli.estimators:SemiNMF", nonnegative=False, default_init="kmeans++",
              inits=("kmeans++", "spa", "random")),
    ModelSpec("sparse-nmf", "mfcli.models.sparse:sparse_nmf", "sparse NMF: l1 penalty on H, unit-norm columns of W",
              "mfcli.estimators:SparseNMF",
              params={"l1": Param(float, 0.1, "l1 weight on H, relative to the rms column norm of X", low=0)}),
    ModelSpec("nsnmf", "mfcli.models.nsnmf:nsnmf", "nonsmooth NMF: X ~= W S H, S = (1-theta) I + theta/r 11^T",
              "mfcli.estimators:NsNMF", params={"theta": Param(float, 0.5, "smoothness, 0 <= theta <= 1", low=0, high=1)}),
    ModelSpec("aa", "mfcli.models.archetypal:archetypal", "archetypal analysis: W = X A, A and H column-stochastic",
              "mfcli.estimators:ArchetypalAnalysis", inits=("spa", "kmeans++", "random"), default_init="spa",
              transform="fcls", nonnegative=False),
    ModelSpec("minvol", "mfcli.models.minvol:minvol",
              "minimum-volume NMF: columns of H on the simplex, logdet volume of the endmember simplex (unmixing)",
              "mfcli.estimators:MinVolNMF", inits=("spa", "vca", "nfindr", "snpa"), default_init="starts",
              extra_inits=("starts",), transform="fcls", any_engine=False,
              params={"lam": Param(_lam_value, "auto", "volume weight relative to ||X||_F^2 of the (normalized) "
                                                       "data, or auto: the last of 0.016, 0.004, ... (each 4x "
                                                       "smaller) that still improves the fit by 25% or more"),
                      "starts": Param(str, "spa,snpa,vca", "with --init starts: minvol from each of these, the "
                                                           "smallest objective kept"),
                      "screen_size": Param(int, 10000, "above this many pixels, lam's path and the starts run on a "
                                                       "sample of this size, the winner on all pixels (0: never)",
                                           low=0),
                      "delta": Param(float, 0.5, "logdet(J W^T W J + delta I): delta relative to the initial simplex",
                                     low=0, low_open=True),
                      "volume": Param(str, "affine", "affine (simplex volume) or origin (logdet(W^T W + delta I))",
                                      choices=("affine", "origin")),
                      "normalize": Param(str, "l1", "pixel normalization before fitting: l1, l2 or none",
                                         choices=("l1", "l2", "none"))}),
    ModelSpec("edaa", "mfcli.models.edaa:edaa",
              "entropic descent archetypal analysis: endmembers = convex combinations of pixels, best of "
              "random runs by fit and endmember correlation (unmixing)",
              "mfcli.estimators:EDAA", inits=(), default_init=None, transform="fcls", nonnegative=False,
              any_engine=False,
              params={"runs": Param(int, 20, "random runs; the kept one fits within 5% of the best with the least "
                                             "correlated endmembers", low=1),
                      "inner": Param(int, 20, "entropic steps on each factor per iteration", low=1),
                      "subspace": Param(int, 20, "principal directions the runs work in (0: all bands)", low=0),
                      "screen_size": Param(int, 10000, "above this many pixels the runs use a random sample of "
                                                       "this size (0: all pixels)", low=0),
                      "normalize": Param(str, "l2", "pixel normalization before fitting: l2, l1 or none",
                                         choices=("l2", "l1", "none"))}),
    ModelSpec("svd", "mfcli.models.svd:svd", "truncated SVD: the unconstrained reference (signed factors)",
              "mfcli.estimators:TruncatedSVD", inits=(), default_init=None, nonnegative=False, transform="lstsq",
              params={"oversample": Param(int, 10, "extra columns of the subspace iteration", low=0)}),
)

_DEEP = "mfcli.models.deep:deep_factorize"

DEEP_MODELS: tuple[ModelSpec, ...] = (
    ModelSpec("deep-onmf", _DEEP, "deep orthogonal NMF: hard clusters merged layer by layer (survey 3.2.1)",
              "mfcli.estimators:DeepFactorization", kind="deep", inits=("spa", "kmeans++", "random"),
              default_init="restarts", extra_inits=("restarts",),
              params={**_ONMF_PARAMS,
                      "loss": Param(str, "global", "global (||X - W_L H_L...H_1||) or layers "
                                                   "(sum_l ||X - W_l H_l...H_1||: every layer fits the data)",
                                    choices=("global", "layers")),
                      "layer_tol": Param(float, 1e-3, "the layer-wise ONMF initialization stops at the first "
                                                         "iteration that gains less than this (relative)", low=0),
                      "layer_max_iter": Param(int, 200, "iterations of each layer-wise ONMF initialization at most",
                                              low=1)}),
    ModelSpec("deep-aonmf", _DEEP, "deep approximately orthogonal NMF: soft H_l with the AONMF penalty",
              "mfcli.estimators:DeepFactorization", kind="deep", default_init="spa",
              params={"penalty": Param(float, 1.0, "weight of sum_{j<k} <h_j, h_k> on every layer", low=0)}),
    ModelSpec("multilayer", _DEEP, "multilayer NMF: sequential NMFs of the activations (survey Alg. 2)",
              "mfcli.estimators:DeepFactorization", kind="deep",
              params={"first_layer": Param(str, "nmf", "nmf, or minvol: a minimum-volume first layer "
                                                        "(endmembers), later layers group its abundances",
                                           choices=("nmf", "minvol"))}),
    ModelSpec("deep-semi", _DEEP, "deep semi-NMF of Trigeorgis et al. (survey Alg. 3), signed data allowed",
              "mfcli.estimators:DeepFactorization", kind="deep", inits=("kmeans++", "spa", "random"),
              default_init="kmeans++", nonnegative=False),
    ModelSpec("deep-nmf", _DEEP, "deep NMF by BCD on the global loss (survey Alg. 4) or the layer-balanced loss",
              "mfcli.estimators:DeepFactorization", kind="deep",
              params={"loss": Param(str, "global", "global (||X - W1...WL HL||) or layers (sum of layer losses)",
                                    choices=("global", "layers")),
                      "layer_weight": Param(float, 1.0, "lambda_l of layers >= 2 in the layer-balanced loss",
                                            low=0, low_open=True)}),
    ModelSpec("deep-sparse", _DEEP, "deep sparse NMF: l1 on H_L, unit W_1, column-stochastic W_l",
              "mfcli.estimators:DeepFactorization", kind="deep",
              params={"l1": Param(float, 0.1, "l1 weight on H_L, relative to the rms column norm of X", low=0)}),
    ModelSpec("deep-nsnmf", _DEEP, "deep nonsmooth NMF: W_l S_l on every layer",
              "mfcli.estimators:DeepFactorization", kind="deep",
              params={"theta": Param(float, 0.5, "smoothness of every layer, 0 <= theta <= 1", low=0, high=1)}),
)

H2NMF_MODEL = ModelSpec("h2nmf", "mfcli.models.h2nmf:h2nmf",
                        "H2NMF: top-down hierarchy of rank-two NMF splits (Gillis, Kuang & Park 2015), cut at the ranks",
                        kind="deep", inits=(), default_init=None, any_engine=False, iterative=False)

_REGISTRY: dict[str, ModelSpec] = {spec.name: spec for spec in (*BUILTIN_MODELS, *DEEP_MODELS, H2NMF_MODEL)}


def register(spec: ModelSpec, replace: bool = False) -> ModelSpec:
    """Add a model; its name becomes valid for ``--model``."""
    if spec.name in _REGISTRY and not replace:
        raise ValueError(f"model '{spec.name}' is already registered")
    _REGISTRY[spec.name] = spec
    return spec


def get_model(name: str, kind: str | None = None) -> ModelSpec:
    spec = _REGISTRY.get(name)
    if spec is None or (kind is not None and spec.kind != kind):
        raise ParameterError(f"unknown model '{name}'; choose one of {', '.join(model_names(kind))}")
    return spec


def model_names(kind: str | None = "single") -> list[str]:
    return [name for name, spec in _REGISTRY.items() if kind is None or spec.kind == kind]


def models(kind: str | None = "single") -> list[ModelSpec]:
    return [spec for spec in _REGISTRY.values() if kind is None or spec.kind == kind]
