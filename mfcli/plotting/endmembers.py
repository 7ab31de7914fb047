"""Endmember spectra: the columns of a layer's data-space basis against wavelength.

The x axis is the wavelength in nm where a source gives it (``--wavelengths``, or the input's
own, see :func:`mfcli.plotting.views.spectral_axis`), else the band number. Lines break, and the background is
shaded, where bands were removed (a spacing larger than 1.5x the median). With a ground
truth, each endmember gets its own panel with its matched reference spectrum (scaled to it by
least squares, since reference libraries are often normalised) and their spectral angle, as in
the deep-MF survey's Fig. 6.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from mfcli.plotting.style import DEFAULT_DPI, GAP_COLOR, TRUTH_COLOR, new_figure, plot_style
from mfcli.plotting.views import (SpectralAxis, break_at_gaps, cluster_colors, component_title, hard_assignments,
                                  shares, spectral_axis)


@dataclass
class TruthMatch:
    """Ground-truth spectra matched to a layer's endmembers.

    ``spectra``: (m, k) reference spectra; ``names``: their k names; ``pairs``: (endmember,
    reference) index pairs; ``angles_deg``: the spectral angle of each pair in degrees.
    """

    spectra: np.ndarray
    names: list[str]
    pairs: list[tuple[int, int]]
    angles_deg: list[float]


def _draw_spectrum(ax, axis: SpectralAxis, values: np.ndarray, markers: bool, **style) -> None:
    order = np.argsort(axis.x, kind="stable")
    x, y = break_at_gaps(axis.x[order], np.asarray(values, dtype=np.float64)[order], axis.gaps)
    ax.plot(x, y, marker="o" if markers else None, markersize=3, **style)


def _decorate(ax, axis: SpectralAxis, ylabel: str | None) -> None:
    for start, end in axis.gaps:
        ax.axvspan(start, end, color=GAP_COLOR, zorder=0, linewidth=0)
    ax.set_xlabel(axis.label)
    if ylabel:
        ax.set_ylabel(ylabel)
    ax.grid(True, axis="y")
    low, high = float(np.min(axis.x)), float(np.max(axis.x))
    pad = 0.01 * (high - low) if high > low else 0.5
    ax.set_xlim(low - pad, high + pad)
    if not axis.is_wavelength and axis.x.size <= 20:
        ax.set_xticks(axis.x)


def endmember_figure(result, layer: int = -1, wavelengths: np.ndarray | None = None,
                     truth: TruthMatch | None = None, dpi: float = DEFAULT_DPI):
    """The Figure of layer ``layer``'s endmembers (1-based, -1 = last); with ``truth``, one panel
    per endmember with its matched reference spectrum and spectral angle."""
    index = result.layer_number(int(layer))
    chosen = result.layer(index)
    basis = np.asarray(chosen.data_basis, dtype=np.float64)
    n_features, rank = basis.shape
    axis = spectral_axis(result, n_features, wavelengths)
    pixel_shares = shares(hard_assignments(result, index), rank)
    labels = list(chosen.labels) if chosen.labels else [None] * rank
    colors = cluster_colors(result, index)
    markers = n_features <= 40
    is_image = result.image_shape is not None
    ylabel = "reflectance" if axis.is_wavelength else ("value" if is_image else "basis value")
    gap_note = f" · shaded: {len(axis.gaps)} gap(s) of removed bands" if axis.gaps else ""
    title = f"{result.model} · layer {index} of {len(result.layers)} · {rank} endmembers{gap_note}"

    with plot_style():
        if truth is None:
            figure = new_figure(8.0, 3.6, dpi=dpi)
            ax = figure.subplots()
            for k in range(rank):
                _draw_spectrum(ax, axis, basis[:, k], markers, color=colors[k],
                               label=component_title(k, labels[k], pixel_shares[k]))
            _decorate(ax, axis, ylabel)
            ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), frameon=False, ncol=1 if rank <= 12 else 2,
                      title="endmember · share of\n" + ("pixels" if is_image else "columns"),
                      alignment="left")
            figure.suptitle(title)
            return figure

        matched = dict(truth.pairs)
        angles = {k: a for (k, _), a in zip(truth.pairs, truth.angles_deg)}
        n_cols = min(rank, 3)
        n_rows = math.ceil(rank / n_cols)
        figure = new_figure(3.0 * n_cols + 0.3, 2.3 * n_rows + 0.6, dpi=dpi)
        axes = figure.subplots(n_rows, n_cols, squeeze=False)
        for k in range(n_rows * n_cols):
            ax = axes[k // n_cols][k % n_cols]
            if k >= rank:
                ax.set_axis_off()
                continue
            _draw_spectrum(ax, axis, basis[:, k], markers, color=colors[k], label="extracted")
            name = component_title(k, labels[k], pixel_shares[k])
            if k in matched:
                reference = truth.spectra[:, matched[k]]
                scale = float(reference @ basis[:, k]) / max(float(reference @ reference), 1e-300)
                _draw_spectrum(ax, axis, scale * reference, markers, color=TRUTH_COLOR, linestyle="--",
                               linewidth=1.0, label=f"truth: {truth.names[matched[k]]}")
                ax.set_title(f"{name}\n↔ {truth.names[matched[k]]} · angle {angles[k]:.1f}°")
            else:
                ax.set_title(f"{name}\n(no ground-truth match)")
            _decorate(ax, axis, ylabel if k % n_cols == 0 else None)
        mean = float(np.mean(truth.angles_deg)) if truth.angles_deg else float("nan")
        figure.suptitle(f"{title}\nsolid: extracted · dashed: ground truth (scaled to fit) · mean spectral angle {mean:.1f}°")
    return figure
