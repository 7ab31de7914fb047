"""A figure laid out by hand, in inches from its top-left corner, for the image pictures
(abundance maps, the hierarchy): fast and legible at its default size.

One axes covers the whole figure with data coordinates in inches (x to the right, y down), so
every image, frame, line and text is placed where the layout says, with no layout engine and no
axes per panel (matplotlib's constrained layout and axes set-up cost most of a picture's time).
Images are coloured in NumPy through a cached lookup table and resampled to the pixels they
cover at the figure's resolution (area average when shrinking, nearest pixel when enlarging), so
matplotlib copies each one once. Texts are measured with the Agg renderer, so titles are fitted
(shortened with an ellipsis) to the room they have instead of overlapping their neighbours.

:func:`Canvas` gives this matplotlib canvas (:class:`FigureCanvas`, whose ``finish()`` returns a
Figure the plot-* commands save as PNG, SVG or PDF), or, inside
:func:`mfcli.plotting.raster.raster_pictures`, the same layout drawn straight to pixels by Pillow
(the standard pictures of ``unmix``, without importing matplotlib). What both share is in
:mod:`mfcli.plotting.layout`.
"""

from __future__ import annotations

import functools
import itertools

import numpy as np

from mfcli.plotting.layout import (CanvasLayout, colorize, colormap_lut, integer_ticks, nice_ticks, resample,
                                  round_ticks, tick_labels)
from mfcli.plotting.style import new_figure

__all__ = ["Canvas", "CanvasLayout", "FigureCanvas", "Plot", "colorize", "colormap_lut", "integer_ticks",
           "measure_text", "nice_ticks", "resample", "round_ticks", "tick_labels"]


def measure_text(line: str, size: float, weight: str, dpi: float) -> float:
    """Width in inches of one line of text as the Agg renderer draws it: the sum of the glyphs'
    hinted advances (within 0.5 % of FreeType's layout of the whole string, and some thousand
    times faster, which matters when titles are fitted to their room)."""
    advances = _advances(float(size), weight, float(dpi))
    total = 0.0
    for char in line:
        width = advances.get(char)
        if width is None:
            width = advances[char] = _advance(char, float(size), weight, float(dpi))
        total += width
    return total * 1.01 / dpi


@functools.lru_cache(maxsize=64)
def _advances(size: float, weight: str, dpi: float) -> dict[str, float]:
    return {}


def _advance(char: str, size: float, weight: str, dpi: float) -> float:
    """The hinted advance of one character in pixels (the font the Agg renderer uses)."""
    from matplotlib.backends.backend_agg import get_hinting_flag
    from matplotlib.font_manager import FontProperties, findfont, get_font

    font = get_font(findfont(FontProperties(size=size, weight=weight)))
    font.set_size(size, dpi)
    return font.load_char(ord(char), flags=get_hinting_flag()).horiAdvance / 64.0


@functools.lru_cache(maxsize=1)
def _image_cmap():
    """The colour map handed to matplotlib's image artists, made once: the images are RGBA already,
    and naming a map would make matplotlib copy it for every image."""
    import matplotlib

    return matplotlib.colormaps["gray"]


class FigureCanvas(CanvasLayout):
    """A matplotlib Figure of ``width`` x ``height`` inches, its artists placed in inches from the
    top-left corner through one transform (no axes: an Axes and its ticks cost more than what it
    holds). ``finish()`` returns the Figure (what the plot-* commands save as PNG, SVG or PDF)."""

    def __init__(self, width: float, height: float, dpi: float):
        from matplotlib.transforms import Affine2D

        self.width, self.height, self.dpi = float(width), float(height), float(dpi)
        self.figure = new_figure(self.width, self.height, dpi=dpi, constrained=False)
        self.transform = Affine2D().scale(1.0, -1.0).translate(0.0, self.height) + self.figure.dpi_scale_trans
        self.start_batches()

    def measure(self, line: str, size: float, weight: str) -> float:
        return measure_text(line, size, weight, self.dpi)

    # ----------------------------------------------------------------------------- drawing
    def image(self, rgba: np.ndarray, x: float, y: float, width: float, height: float):
        """An RGBA image filling the box (``x``, ``y`` its top-left corner, inches); returns the artist."""
        from matplotlib.image import BboxImage
        from matplotlib.transforms import Bbox, TransformedBbox

        # inches from the bottom-left corner, lower edge first (a box given upside down flips the image)
        box = TransformedBbox(Bbox.from_extents(x, self.height - y - height, x + width, self.height - y),
                              self.figure.dpi_scale_trans)
        artist = BboxImage(box, cmap=_image_cmap(), interpolation="nearest", resample=False, origin="upper")
        artist.set_data(rgba)
        self.figure.add_artist(artist)
        return artist

    def text(self, x: float, y: float, text: str, size: float = 7.0, ha: str = "center", va: str = "top",
             color: str = "#222222", weight: str = "normal", rotation: float = 0.0, gid: str | None = None):
        """A text at (``x``, ``y``) inches; ``gid`` names what it is (e.g. the tick labels of one axis)."""
        return self.figure.text(x, y, text, transform=self.transform, fontsize=size, ha=ha, va=va, color=color,
                                fontweight=weight, rotation=rotation, linespacing=1.15, gid=gid,
                                rotation_mode="anchor" if rotation else "default")

    def markers(self, xs, ys, color: str, size: float = 3.0) -> None:
        from matplotlib.lines import Line2D

        self.figure.add_artist(Line2D(xs, ys, transform=self.transform, linestyle="none", marker="o",
                                      markersize=size, color=color, markeredgewidth=0))

    def finish(self):
        """Add the batched fills, lines and frames; returns the Figure."""
        from matplotlib.collections import LineCollection, PolyCollection

        def box(x, y, w, h):
            return np.array([[x, y], [x + w, y], [x + w, y + h], [x, y + h], [x, y]])

        if self._fills:
            self.figure.add_artist(PolyCollection([box(*f[:4]) for f in self._fills], transform=self.transform,
                                                  facecolors=[f[4] for f in self._fills], edgecolors="none",
                                                  zorder=0.5))
        for (color, width, style), segments in self._segments.items():
            if segments:
                self.figure.add_artist(LineCollection(segments, colors=color, linewidths=width, linestyles=style,
                                                      capstyle="round", joinstyle="round", transform=self.transform,
                                                      zorder=2))
        if self._frames:
            self.figure.add_artist(LineCollection([box(*f[:4]) for f in self._frames], transform=self.transform,
                                                  colors=[f[4] for f in self._frames],
                                                  linewidths=[f[5] for f in self._frames], joinstyle="miter",
                                                  zorder=2.5))
        self.start_batches()
        return self.figure


def Canvas(width: float, height: float, dpi: float) -> CanvasLayout:
    """A canvas of ``width`` x ``height`` inches at ``dpi``: drawn with Pillow inside
    :func:`~mfcli.plotting.raster.raster_pictures` (``finish()`` gives the pixels), else a
    matplotlib Figure (``finish()`` gives the Figure)."""
    from mfcli.plotting import raster

    if raster.rastering():
        return raster.RasterCanvas(width, height, dpi)
    return FigureCanvas(width, height, dpi)


class Plot:
    """A plotting box on a :class:`Canvas`: data coordinates mapped to the box (``y`` on a log
    scale with ``ylog``), with axis lines, ticks, tick labels and a grid drawn as plain lines and
    texts. Tick labels are spaced so that they never overlap: fewer ticks where labels are wide."""

    TICK_SIZE = 6.5
    _numbers = itertools.count(1)  # names the tick labels of each plot (gid), for checks of what is drawn

    def __init__(self, canvas: Canvas, x: float, y: float, width: float, height: float, xlim, ylim,
                 ylog: bool = False):
        self.canvas, self.x, self.y, self.width, self.height = canvas, x, y, width, height
        self.number = next(self._numbers)
        self.xlim = (float(xlim[0]), float(xlim[1]))
        self.ylog = ylog
        self.ylim = (float(ylim[0]), float(ylim[1]))

    def _ty(self, values):
        values = np.asarray(values, dtype=np.float64)
        return np.log10(np.where(values > 0, values, np.nan)) if self.ylog else values

    def X(self, values) -> np.ndarray:
        low, high = self.xlim
        return self.x + self.width * (np.asarray(values, dtype=np.float64) - low) / (high - low if high > low else 1.0)

    def Y(self, values) -> np.ndarray:
        low, high = self._ty(self.ylim)
        return self.y + self.height * (1.0 - (self._ty(values) - low) / (high - low if high > low else 1.0))

    def line(self, xs, ys, color: str, width: float = 1.3, style: str = "solid", markers: bool = False) -> None:
        px, py = self.X(xs), self.Y(ys)
        self.canvas.line(px, py, color, width, style)
        if markers:
            keep = np.isfinite(px) & np.isfinite(py)
            self.canvas.markers(px[keep], py[keep], color)

    def vspan(self, x0: float, x1: float, color: str) -> None:
        left, right = self.X([x0, x1])
        self.canvas.fill(float(left), self.y, float(right - left), self.height, color)

    def _spaced(self, ticks: np.ndarray, labels: list[str], horizontal: bool) -> tuple[np.ndarray, list[str]]:
        """Every other tick dropped until the labels have room between them."""
        ticks, labels = np.asarray(ticks), list(labels)
        while len(ticks) > 2:
            positions = self.X(ticks) if horizontal else self.Y(ticks)
            if horizontal:
                sizes = [self.canvas.text_width(text, self.TICK_SIZE) for text in labels]
            else:
                sizes = [self.TICK_SIZE / 72 * 1.2] * len(labels)
            gaps = np.abs(np.diff(positions)) - (np.array(sizes[:-1]) + np.array(sizes[1:])) / 2
            if np.all(gaps >= 0.08):
                break
            ticks, labels = ticks[::2], labels[::2]
        return ticks, labels

    def axes(self, xticks, xlabels, yticks, ylabels, xlabel: str | None = None, ylabel: str | None = None,
             grid: bool = True, label_size: float = 7.5) -> None:
        """Axis lines on the left and bottom, ticks with labels, an optional y grid and axis labels."""
        canvas = self.canvas
        bottom, right = self.y + self.height, self.x + self.width
        xticks, xlabels = self._spaced(xticks, xlabels, True)
        yticks, ylabels = self._spaced(yticks, ylabels, False)
        canvas.line([self.x, right], [bottom, bottom], "#333333", 0.8)
        canvas.line([self.x, self.x], [self.y, bottom], "#333333", 0.8)
        for value, text in zip(xticks, xlabels):
            tx = float(self.X(value))
            canvas.line([tx, tx], [bottom, bottom + 0.035], "#333333", 0.8)
            canvas.text(tx, bottom + 0.05, text, size=self.TICK_SIZE, va="top", gid=f"xtick-{self.number}")
        widest = 0.0
        for value, text in zip(yticks, ylabels):
            ty = float(self.Y(value))
            canvas.line([self.x - 0.035, self.x], [ty, ty], "#333333", 0.8)
            canvas.text(self.x - 0.05, ty, text, size=self.TICK_SIZE, ha="right", va="center",
                        gid=f"ytick-{self.number}")
            widest = max(widest, canvas.text_width(text, self.TICK_SIZE))
            if grid:
                canvas.line([self.x, right], [ty, ty], "#dddddd", 0.6)
        if xlabel:
            canvas.text(self.x + self.width / 2, bottom + 0.07 + self.TICK_SIZE / 72 * 1.25,
                        canvas.fit(xlabel, self.width, label_size), size=label_size, va="top")
        if ylabel:
            canvas.text(self.x - 0.1 - widest, self.y + self.height / 2, canvas.fit(ylabel, self.height, label_size),
                        size=label_size, ha="center", va="bottom", rotation=90)
