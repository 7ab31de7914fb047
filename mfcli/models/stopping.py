"""When an iterative solver stops, and the monitor that records its history.

A solver is written as a private loop that calls ``monitor(relative_error, objective=...)``
once per iteration; the :class:`Monitor` records the history (relative error, seconds per
iteration, objective), reports progress through ``callback(iteration, relative_error, **info)``
and says when to stop (:class:`Stopping`): a relative error at or below ``target_error``; else
too little progress of the accepted iterates (``tol``, measured over a window of them); else
``max_iter`` iterations or ``max_time`` seconds. A step the loop tried and threw away (a
rejected extrapolation, a restart) is reported with ``accepted=False``: it counts as an
iteration (it cost a pass over the data) but never as progress or as its absence. A NaN or Inf
relative error or objective stops the run with a :class:`~mfcli.errors.NumericalError`.
NumPy only.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from mfcli.errors import ConvergenceWarning, NumericalError, ParameterError

Callback = Callable[..., None]

# The tol rule looks at the last TOL_WINDOW accepted iterations: one slow step (a plain step after
# an extrapolated run, a stall of the inner sweeps) does not stop a run that is still moving.
TOL_WINDOW = 10

# The tol rule measures a decrease relative to the current objective f_k, or, once the fit is much
# better than where it started, to START_SHARE of the starting one f_0, up to START_CAP f_k:
# scale = min(START_CAP f_k, max(f_k, START_SHARE f_0)). Relative to f_k alone, a fit that has
# become very good (Urban at 0.9% error) is held to ever smaller absolute progress and chases
# digits no one reads (Urban: 135 iterations where 53 give an error 0.25% higher); the
# cap keeps a fit that is still converging fast (an exact low-rank matrix, whose objective falls
# by a constant factor every iteration) going to the end. With the NMF defaults on
# benchmarks/bench_defaults.py's twelve matrices, 0.2 and 20 took the summed time from 1.02x to
# 0.57x scikit-learn's and raised no error by more than 0.25% (Urban).
START_SHARE = 0.2
START_CAP = 20.0

DEFAULT_HINT = ("the data's scale is the likely cause (values near the limits of floating point: rescale the "
                "data), or a parameter that makes the updates overflow")


def _finite_number(value, name: str) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        raise ParameterError(f"{name} must be a number, got {value!r}") from None
    if not math.isfinite(value):
        raise ParameterError(f"{name} must be a finite number, got {value}")
    return value


@dataclass
class Stopping:
    """When an iterative solver stops.

    ``target_error``: stop once the relative error ||X - WH||_F / ||X||_F is at most this; when
    it is given, ``tol`` is not applied (the run goes on until the target, ``max_iter`` or
    ``max_time``).

    ``tol`` (0 disables): stop when the objective f of the accepted iterates decreased by less
    than ``tol`` per iteration, relative to the larger of its current value and a fifth of its
    starting value f_0 (``START_SHARE``), on average over the last ``window`` accepted iterations:

        f_{k-w} - f_k <= w * tol * max(|f_k|, 0.2 |f_0|) .

    Rejected steps are not counted. As the decrease slows down near a minimum, a run stopped by
    ``tol`` gains at most about 50 tol max(|f_k|, 0.2 |f_0|) in objective from 50 more
    iterations.

    ``max_iter``: iterations (passes), accepted or not. ``max_time``: seconds since the run
    began (initialization included), checked after each iteration. A run stopped by either
    before the rules above is not converged (a :class:`~mfcli.errors.ConvergenceWarning`).
    """

    max_iter: int = 200
    tol: float = 1e-4
    target_error: float | None = None
    max_time: float | None = None
    window: int = TOL_WINDOW

    def __post_init__(self) -> None:
        if isinstance(self.max_iter, bool) or int(self.max_iter) != self.max_iter or self.max_iter < 1:
            raise ParameterError(f"max_iter must be a positive integer, got {self.max_iter}")
        if self.tol is None:
            raise ParameterError("tol must be a number >= 0 (0 disables it), got None")
        self.tol = _finite_number(self.tol, "tol")
        if self.tol < 0:
            raise ParameterError(f"tol must be >= 0 (0 disables it), got {self.tol}")
        if self.target_error is not None:
            self.target_error = _finite_number(self.target_error, "target error")
            if not 0 <= self.target_error < 1:
                raise ParameterError(f"target error must be in [0, 1), got {self.target_error}")
        if self.max_time is not None:
            self.max_time = _finite_number(self.max_time, "max_time")
            if self.max_time <= 0:
                raise ParameterError(f"max_time must be positive (seconds), got {self.max_time}")
        if int(self.window) != self.window or self.window < 1:
            raise ParameterError(f"window must be a positive integer, got {self.window}")
        self.max_iter = int(self.max_iter)
        self.window = int(self.window)

    def as_dict(self) -> dict[str, Any]:
        return {"max_iter": self.max_iter, "tol": self.tol, "target_error": self.target_error,
                "max_time": self.max_time}


class Monitor:
    """History, progress and stopping for one iterative loop.

    Call ``monitor(relative_error, objective=None, accepted=True, **extra)`` after every
    iteration with the error and objective of the current (accepted) iterate; it returns True
    when the loop must stop, with ``converged`` and ``reason`` set (``target_error``, ``tol``,
    ``max_iter``, ``max_time``). ``objective`` (the value the solver decreases, e.g. a penalised
    loss or a beta-divergence) drives ``tol``; without it the relative error does. ``scale``:
    what the decrease is relative to, for objectives that are not a positive size (e.g. with a
    log-determinant term; default |objective|). ``accepted=False``: the loop tried a step and
    discarded it; it counts for ``max_iter`` and ``max_time`` but not for ``tol``. ``hint``: the
    likely cause named when a value is NaN/Inf.
    """

    def __init__(self, stopping: Stopping, callback: Callback | None = None, stage: str | None = None,
                 hint: str | None = None, exact_error: float = 0.0):
        self.stopping = stopping
        self.exact_error = exact_error  # a relative error this small is an exact fit: converged
        self.callback = callback
        self.stage = stage
        self.hint = hint or DEFAULT_HINT
        self.iteration = 0
        self.errors: list[float] = []
        self.seconds: list[float] = []
        self.objectives: list[float] = []
        self.rejected: list[bool] = []
        self.extra: dict[str, list[float]] = {}
        self.converged = False
        self.reason = "max_iter"
        self.progress: float | None = None  # the last measured relative decrease per accepted iteration
        self._accepted: list[float] = []    # the tol rule's values: objective (or error) of accepted iterates
        self._scales: list[float] = []      # and what their decrease is relative to (|value| unless given)
        self._start_scale: float | None = None  # the first accepted iterate's (START_SHARE)
        self.started = time.perf_counter()
        self._last = self.started

    def restart_clock(self) -> None:
        """Start timing iterations now (after the initialization)."""
        self._last = time.perf_counter()

    @property
    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def time_left(self) -> float | None:
        """Seconds left before ``max_time`` (None without a time limit; may be negative)."""
        if self.stopping.max_time is None:
            return None
        return self.stopping.max_time - self.elapsed

    def out_of_time(self) -> bool:
        left = self.time_left()
        return left is not None and left <= 0

    def record_start(self, relative_error: float, objective: float | None = None) -> None:
        """Record the starting point (iteration 0, e.g. a layer-wise initialization) as the first
        accepted iterate, so the tol rule measures progress from it."""
        self._check_finite(relative_error, objective, 0)
        self.errors.append(float(relative_error))
        if objective is not None:
            self.objectives.append(float(objective))
        self._accepted.append(float(relative_error if objective is None else objective))
        self._scales.append(abs(self._accepted[-1]))
        self._start_scale = self._scales[-1]

    def __call__(self, relative_error: float, objective: float | None = None, *, accepted: bool = True,
                 scale: float | None = None, **extra: float) -> bool:
        now = time.perf_counter()
        self.iteration += 1
        self._check_finite(relative_error, objective, self.iteration)
        self.seconds.append(now - self._last)
        self._last = now
        self.errors.append(float(relative_error))
        if objective is not None:
            self.objectives.append(float(objective))
        self.rejected.append(not accepted)
        if accepted:
            value = float(relative_error if objective is None else objective)
            self._accepted.append(value)
            self._scales.append(abs(value) if scale is None else float(scale))
            if self._start_scale is None:
                self._start_scale = self._scales[-1]
        for key, value in extra.items():
            self.extra.setdefault(key, []).append(float(value))
        if self.callback is not None:
            info: dict[str, Any] = {"total": self.stopping.max_iter, "seconds": now - self.started}
            if self.stage:
                info["stage"] = self.stage
            if objective is not None:
                info["objective"] = float(objective)
            self.callback(self.iteration, float(relative_error), **info)
        return self._should_stop(now)

    def resume(self) -> bool:
        """Go on after a stop by ``tol`` (a loop that switches to a more precise way of measuring
        its progress): the tol window starts again from the current iterate. False (and the
        stop stands) when max_iter or max_time is reached."""
        if self.reason != "tol":
            return False
        if self.iteration >= self.stopping.max_iter or (
                self.stopping.max_time is not None and self.elapsed >= self.stopping.max_time):
            return False
        self._accepted, self._scales = self._accepted[-1:], self._scales[-1:]
        self.converged, self.reason, self.progress = False, "max_iter", None
        return True

    def _check_finite(self, relative_error, objective, iteration: int) -> None:
        values = [relative_error] if objective is None else [relative_error, objective]
        if all(math.isfinite(float(v)) for v in values):
            return
        what = "NaN" if any(math.isnan(float(v)) for v in values) else "Inf"
        where = f"{self.stage} " if self.stage else "the solver "
        raise NumericalError(f"{where}produced {what} at iteration {iteration}: {self.hint}")

    def _tol_met(self) -> bool:
        stop = self.stopping
        values = self._accepted
        if stop.tol <= 0 or len(values) <= stop.window:
            return False
        before, now = values[-1 - stop.window], values[-1]
        if self._scales[-1] == 0.0:  # an exact fit: nothing left to decrease
            self.progress = 0.0
            return True
        scale = self.tol_scale()
        self.progress = (before - now) / (stop.window * scale)
        return self.progress <= stop.tol

    def tol_scale(self) -> float:
        """What the tol rule measures a decrease against: min(START_CAP |f_k|, max(|f_k|,
        START_SHARE |f_0|)), f_0 the first accepted iterate (or the scales the loop gave instead
        of |f|)."""
        if not self._scales:
            return 0.0
        current = self._scales[-1]
        start = self._start_scale if self._start_scale is not None else 0.0
        return min(START_CAP * current, max(current, START_SHARE * start))

    def _should_stop(self, now: float) -> bool:
        stop = self.stopping
        if stop.target_error is not None and self.errors[-1] <= stop.target_error:
            self.converged, self.reason = True, "target_error"
            return True
        if stop.target_error is None and stop.tol > 0 and self.errors[-1] <= self.exact_error:
            self.converged, self.reason, self.progress = True, "tol", 0.0
            return True
        if stop.target_error is None and self._tol_met():
            self.converged, self.reason = True, "tol"
            return True
        if self.iteration >= stop.max_iter:
            self.converged, self.reason = False, "max_iter"
            return True
        if stop.max_time is not None and now - self.started >= stop.max_time:
            self.converged, self.reason = False, "max_time"
            return True
        return False

    def history(self) -> dict[str, np.ndarray]:
        out = {"relative_error": np.asarray(self.errors, dtype=np.float64),
               "seconds": np.asarray(self.seconds, dtype=np.float64)}
        if self.objectives:
            out["objective"] = np.asarray(self.objectives, dtype=np.float64)
        if any(self.rejected):
            out["rejected"] = np.asarray(self.rejected, dtype=np.float64)
        for key, values in self.extra.items():
            out[key] = np.asarray(values, dtype=np.float64)
        return out

    def stop_message(self, what: str | None = None) -> str | None:
        """One line saying why a run that did not converge stopped (None when it converged)."""
        if self.converged:
            return None
        what = what or self.stage or "the solver"
        limit = (f"max_iter ({self.stopping.max_iter} iterations)" if self.reason == "max_iter"
                 else f"max_time ({self.stopping.max_time:g} s)")
        error = f"relative error {self.errors[-1]:.6g}" if self.errors else "no iteration done"
        stop = self.stopping
        if stop.target_error is not None:
            rule = f"target error {stop.target_error:g} not reached"
        elif stop.tol > 0:
            rule = (f"still improving by {self.progress:.2g} per iteration (tol {stop.tol:g})"
                    if self.progress is not None else f"tol {stop.tol:g} not met")
        else:
            rule = "tol 0 (no convergence test)"
        return f"{what} stopped at {limit} before converging: {rule}; {error}. Raise max_iter/max_time to go on."


def warn_not_converged(monitor: Monitor, what: str | None = None) -> None:
    """A :class:`~mfcli.errors.ConvergenceWarning` when ``max_iter``/``max_time`` ended the run
    before its stopping rule was met (scikit-learn's convention); the CLI prints it as one line."""
    message = monitor.stop_message(what)
    if message is not None:
        warnings.warn(message, ConvergenceWarning, stacklevel=3)
