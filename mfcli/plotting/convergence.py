"""Convergence: relative error per iteration on a log scale.

Left panel: each layer's own history (``Layer.history["relative_error"]``, layer-wise
pretraining of a deep model, or the only layer of a shallow one). Right panel, when the result
has one: the global history of a deep model's joint refinement (``Result.history["relative_error"]``;
its ``global_loss`` is not drawn, as it does not share a unit). The final value of every curve is in its
legend entry.
"""

from __future__ import annotations

import numpy as np

from mfcli.errors import DataError
from mfcli.plotting.style import DEFAULT_DPI, component_color, new_figure, plot_style

LAYER_KEYS = ("relative_error",)


def convergence_curves(result) -> tuple[list[tuple[str, np.ndarray]], list[tuple[str, np.ndarray]]]:
    """(per-layer curves, global curves) as (legend name, values) pairs, non-empty ones only."""
    per_layer = []
    for index, layer in enumerate(result.layers, start=1):
        for key in LAYER_KEYS:
            values = layer.history.get(key)
            if values is not None and np.size(values):
                name = f"layer {index} (r={layer.rank})" if len(result.layers) > 1 else f"rank {layer.rank}"
                per_layer.append((name, np.asarray(values, dtype=np.float64).ravel()))
    joint = result.history.get("relative_error")
    global_curves = [("relative error", np.asarray(joint, dtype=np.float64).ravel())] \
        if joint is not None and np.size(joint) else []
    return per_layer, global_curves


def _plot_curves(ax, curves, colors) -> None:
    for (name, values), color in zip(curves, colors):
        iterations = np.arange(1, values.size + 1)
        positive = np.where(values > 0, values, np.nan)
        ax.plot(iterations, positive, color=color, label=f"{name}: {values[-1]:.4g} after {values.size}",
                marker="o" if values.size <= 30 else None, markersize=2.5)
    from matplotlib.ticker import MaxNLocator

    ax.set_yscale("log")
    _plain_log_labels(ax)
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set_xlabel("iteration")
    ax.grid(True, which="both", axis="y")
    ax.legend(loc="best", frameon=False)


def _plain_log_labels(ax) -> None:
    """Tick labels as plain numbers (0.15, not 1.5x10^-1); minor ticks labelled too when the
    curves span less than about a decade, where there would be no major label at all."""
    from matplotlib.ticker import FuncFormatter, LogLocator, NullFormatter

    plain = FuncFormatter(lambda value, _pos: f"{value:.3g}")
    ax.yaxis.set_major_formatter(plain)
    low, high = ax.get_ylim()
    if high / max(low, 1e-300) < 20:
        ax.yaxis.set_minor_locator(LogLocator(base=10, subs=(1.5, 2, 3, 4, 5, 6, 7, 8, 9)))
        ax.yaxis.set_minor_formatter(plain)
    else:
        ax.yaxis.set_minor_formatter(NullFormatter())


def convergence_figure(result, dpi: float = DEFAULT_DPI):
    """The Figure of the error histories of ``result``."""
    per_layer, global_curves = convergence_curves(result)
    if not per_layer and not global_curves:
        raise DataError(f"this {result.model} result stores no error history, so there is no convergence to "
                        "plot; histories are saved by mfcli factorize and unmix")
    panels = [p for p in (per_layer, global_curves) if p]
    with plot_style():
        figure = new_figure(4.4 * len(panels) + 0.4, 3.3, dpi=dpi)
        axes = figure.subplots(1, len(panels), squeeze=False)[0]
        column = 0
        if per_layer:
            _plot_curves(axes[column], per_layer, [component_color(i) for i in range(len(per_layer))])
            axes[column].set_ylabel("relative error (Frobenius)")
            axes[column].set_title("each layer's own factorization" if len(result.layers) > 1 else
                                   r"$\|X - WH\|_F \,/\, \|X\|_F$")
            column += 1
        if global_curves:
            _plot_curves(axes[column], global_curves, ["#222222"])
            axes[column].set_title("joint refinement (all layers)")
            axes[column].set_ylabel(global_curves[0][0])
        ranks = ",".join(map(str, result.ranks))
        figure.suptitle(f"{result.model} · ranks {ranks} · convergence (log scale)")
    return figure
