"""The deep driver: the layer-wise initialization, the joint stage's sweeps under the shared
stopping rules, and the Result (survey Algorithm 2 and the joint stage; see
:mod:`mfcli.models.deep`). NumPy only.
"""

from __future__ import annotations

import time
import warnings
from typing import Any

import numpy as np

from mfcli.errors import ConvergenceWarning, ParameterError
from mfcli.models.base import check_scale, prepare_data, require_finite_factors
from mfcli.models.deep.aonmf import DeepAONMF
from mfcli.models.deep.chain import DeepNMF, DeepNsNMF, DeepSemi, DeepSparse, Multilayer
from mfcli.models.deep.common import DeepVariant, _stage_callback
from mfcli.models.threads import single_threaded_small_products
from mfcli.models.deep.onmf import DeepONMF
from mfcli.models.matrix import InMemoryMatrix
from mfcli.models.stopping import Monitor, Stopping, warn_not_converged
from mfcli.result import Result
from mfcli.validation import check_ranks

VARIANTS: dict[str, type[DeepVariant]] = {
    cls.name: cls for cls in (DeepONMF, DeepAONMF, Multilayer, DeepSemi, DeepNMF, DeepSparse, DeepNsNMF)
}
DEEP_MODELS = tuple(VARIANTS)


@single_threaded_small_products
def deep_factorize(X, ranks, model: str = "deep-onmf", *, init: str | None = None, max_iter: int = 100,
                   tol: float | None = None, target_error: float | None = None, max_time: float | None = None,
                   seed: int = 0, callback=None, dtype=None, **params: Any) -> Result:
    """Deep factorization of X with the given ``ranks`` (layer 1 first, non-increasing).

    ``model``: one of :data:`DEEP_MODELS` (see the module docstring for each objective).
    ``init``: the layer-wise initialization (deep-onmf: restarts | spa | kmeans++ | random; the
    NMF-based models: nndsvda | nndsvd | nndsvdar | spa | kmeans++ | random).
    ``max_iter``/``tol``/``target_error``/``max_time``: stopping of the joint stage (sweeps;
    ``max_iter=0`` keeps the layer-wise initialization). ``params``: the model's parameters,
    as its registry entry declares them (names, defaults, ranges); an unknown name or a value
    out of range is a ParameterError that lists the valid ones.

    Returns a Result with one Layer per layer (own factors W, H; data-space ``basis`` and
    ``coefficients`` where they differ; ``assignments`` for the tree) and the joint stage's
    history in ``Result.history`` (``global_loss``, ``relative_error``, ``seconds``; entry 0 is
    the layer-wise initialization).
    """
    if model not in VARIANTS:
        raise ParameterError(f"unknown deep model '{model}'; choose one of {', '.join(DEEP_MODELS)}")
    variant = VARIANTS[model](init, **params)
    started = time.perf_counter()
    data = prepare_data(X, model, nonnegative=variant.nonnegative, dtype=dtype)
    ranks = check_ranks(list(ranks), data.shape)
    if isinstance(max_iter, bool) or int(max_iter) != max_iter or max_iter < 0:
        raise ParameterError(f"max_iter must be an integer >= 0, got {max_iter}")
    tol = variant.default_tol if tol is None else tol
    # the joint stage's rules, checked before the (long) layer-wise initialization
    stopping = Stopping(max_iter=max(int(max_iter), 1), tol=tol, target_error=target_error, max_time=max_time)
    deadline = None if max_time is None else started + stopping.max_time
    state = variant.state_type(data=data, x_sq=check_scale(data), ranks=ranks, dtype=np.dtype(data.dtype))
    seeds = [int(child.generate_state(1)[0]) for child in np.random.SeedSequence(seed).spawn(len(ranks))]
    Y = data
    init_monitors = []
    for index, rank in enumerate(ranks):
        # --max-time bounds the whole run: each layer gets what is left (at least one iteration)
        variant.time_limit = {} if deadline is None else {"max_time": max(deadline - time.perf_counter(), 1e-6)}
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", ConvergenceWarning)
            layer = variant.init_layer(Y, rank, index, seeds[index],
                                       _stage_callback(callback, f"layer {index + 1}/{len(ranks)} (rank {rank})"))
        for warning in caught:  # a layer that did not converge matters when no joint stage follows
            if not issubclass(warning.category, ConvergenceWarning):
                warnings.warn_explicit(warning.message, warning.category, warning.filename, warning.lineno)
        init_monitors.append((index, layer.attrs.get("converged", True), layer.attrs.get("stop_reason")))
        state.init_layers.append(layer)
        if index + 1 < len(ranks):
            Y = InMemoryMatrix(np.ascontiguousarray(variant.next_input(layer, state), dtype=data.dtype))
    variant.time_limit = {}
    variant.prepare(state)
    init_seconds = time.perf_counter() - started
    error0, objective0 = variant.evaluate(state)
    errors, objectives, seconds = [error0], [objective0], [init_seconds]
    sweeps = 0
    if not variant.refines:  # the result is the layer-wise one: converged when every layer is
        unconverged = [(index, reason) for index, done, reason in init_monitors if not done]
        converged = not unconverged
        reason = "layers converged" if converged else f"layer {unconverged[0][0] + 1} stopped at {unconverged[0][1]}"
        if not converged:
            warnings.warn(f"{model}: {reason} before converging (the layers are sequential NMFs with no joint stage); "
                          "raise max_iter/max_time to go on", ConvergenceWarning, stacklevel=2)
    elif max_iter == 0:
        converged, reason = True, "max_iter 0"
    else:
        if deadline is not None:
            stopping.max_time = max(deadline - time.perf_counter(), 1e-6)
        monitor = Monitor(stopping, callback, stage="joint refinement",
                          hint=f"{model}'s joint refinement diverged; the data's scale is the likely cause "
                               "(values near the floating-point limits: rescale the data)")
        monitor.record_start(error0, objective0)  # the tol rule measures progress from the initialization
        monitor.restart_clock()
        while True:
            for index in range(state.L):
                variant.update_layer(state, index)
            error, objective = variant.end_sweep(state)
            if monitor(error, objective=objective):
                break
        errors, objectives = monitor.errors, monitor.objectives
        seconds = [init_seconds, *monitor.seconds]
        converged, reason, sweeps = monitor.converged, monitor.reason, monitor.iteration
        warn_not_converged(monitor, f"{model} (joint refinement)")
    layers = variant.finish(state)
    for number, layer in enumerate(layers, 1):
        require_finite_factors(f"{model} layer {number}", None, W=layer.W, H=layer.H)
    history = {"global_loss": np.asarray(objectives, dtype=np.float64),
               "relative_error": np.asarray(errors, dtype=np.float64),
               "seconds": np.asarray(seconds, dtype=np.float64)}
    result_params = {"ranks": ranks, "model": model, "init": variant.init, "seed": seed, "max_iter": max_iter,
                     "tol": tol, "target_error": target_error, "max_time": max_time,
                     **{name: variant.params[name] for name in params}}
    summary = {"relative_error": float(errors[-1]),
               "layer_relative_errors": [layer.relative_error for layer in layers],
               "global_loss": float(objectives[-1]), "stop_reason": reason, "chain": variant.chain}
    return Result(model=model, layers=layers, params=result_params, history=history, summary=summary,
                  seconds=time.perf_counter() - started, converged=converged, n_iter=sweeps)
