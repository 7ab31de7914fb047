"""Scree plot of a rank estimate: eigenvalues of the signal correlation and HySime's criterion.

Left: the eigenvalues (log scale) with the estimated rank marked. Right: the per-component
signal power against twice the noise power (HySime keeps a component when the first is
larger). Drawn on the Agg canvas through :mod:`mfcli.plotting.style` (no pyplot).
"""

from __future__ import annotations

import numpy as np

from mfcli.plotting.style import DEFAULT_DPI, component_color, new_figure, plot_style


def scree_figure(estimate: dict, max_components: int | None = None, dpi: float = DEFAULT_DPI):
    """Figure for the dict returned by :func:`mfcli.models.rank.hysime`."""
    eigenvalues = np.asarray(estimate["eigenvalues"], dtype=np.float64)
    rank = int(estimate["rank"])
    shown = min(eigenvalues.size, max_components or max(3 * rank, 20))
    k = np.arange(1, shown + 1)
    with plot_style():
        figure = new_figure(7.0, 2.8, dpi=dpi)
        left, right = figure.subplots(1, 2)
        from matplotlib.ticker import MaxNLocator

        for ax in (left, right):
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
        positive = np.maximum(eigenvalues[:shown], np.finfo(np.float64).tiny)
        left.semilogy(k, positive, marker="o", markersize=3, color=component_color(0))
        left.axvline(rank, color="#888888", linestyle="--", linewidth=1)
        left.set_xlabel("component")
        left.set_ylabel("eigenvalue of the signal correlation")
        left.set_title(f"scree ({estimate.get('method', 'hysime')}: rank {rank})")
        if "signal_power" in estimate and "noise_power" in estimate:
            signal = np.maximum(np.asarray(estimate["signal_power"])[:shown], np.finfo(np.float64).tiny)
            noise = np.maximum(2.0 * np.asarray(estimate["noise_power"])[:shown], np.finfo(np.float64).tiny)
            right.semilogy(k, signal, marker="o", markersize=3, color=component_color(0), label="signal power")
            right.semilogy(k, noise, marker="s", markersize=3, color=component_color(1), label="2 x noise power")
            right.axvline(rank, color="#888888", linestyle="--", linewidth=1)
            right.set_xlabel("component")
            right.set_title("HySime: keep where signal > 2 x noise")
            right.legend(frameon=False)
        else:
            right.set_visible(False)
    return figure
