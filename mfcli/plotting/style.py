"""One look for every picture mfcli draws, and the one way figures are written.

Figures are made with :class:`matplotlib.figure.Figure` on the Agg canvas directly, never
through ``pyplot``: no global figure state, no GUI backend, nothing left open after a plot.
matplotlib is imported inside the functions, so importing this module costs nothing.

The output format follows the file's extension (``.png``, ``.svg``, ``.pdf``); writes are
atomic and an existing file is kept unless ``force`` is given.
"""

from __future__ import annotations

import contextlib
import functools
import io
import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from mfcli.errors import ParameterError

IMAGE_FORMATS = {".png": "png", ".svg": "svg", ".pdf": "pdf"}
DEFAULT_DPI = 150

# Component k has the same colour in every picture (spectra, tree sparklines, panel frames):
# matplotlib's tab10, then the lighter half of tab20. In a hierarchy a cluster wears the colour
# of its largest layer-1 descendant (mfcli.plotting.views.cluster_colors).
COMPONENT_COLORS = (
    "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f",
    "#bcbd22", "#17becf", "#aec7e8", "#ffbb78", "#98df8a", "#ff9896", "#c5b0d5", "#c49c94",
    "#f7b6d2", "#c7c7c7", "#dbdb8d", "#9edae5",
)
TRUTH_COLOR = "#222222"
EMPTY_COLOR = "#999999"  # a cluster with no members
GAP_COLOR = "#ececec"
ABUNDANCE_CMAP = "viridis"

RC_PARAMS = {
    "font.size": 8,
    "axes.titlesize": 8,
    "axes.labelsize": 8,
    "xtick.labelsize": 7,
    "ytick.labelsize": 7,
    "legend.fontsize": 7,
    "figure.titlesize": 10,
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": False,
    "grid.color": "#dddddd",
    "grid.linewidth": 0.6,
    "lines.linewidth": 1.3,
    "figure.facecolor": "white",
    "savefig.facecolor": "white",
    "image.interpolation": "nearest",
    "svg.fonttype": "none",
    "pdf.fonttype": 42,
    "svg.hashsalt": "mfcli",
}


def component_color(index: int) -> str:
    return COMPONENT_COLORS[index % len(COMPONENT_COLORS)]


def image_format(path: str | os.PathLike) -> str:
    """``png``, ``svg`` or ``pdf`` from the file's extension, else a ParameterError."""
    suffix = Path(path).suffix.lower()
    if suffix not in IMAGE_FORMATS:
        raise ParameterError(
            f"cannot tell the picture format of '{path}' from its extension; end the name with "
            ".png, .svg or .pdf"
        )
    return IMAGE_FORMATS[suffix]


@contextlib.contextmanager
def plot_style() -> Iterator[None]:
    """matplotlib's rcParams set to mfcli's style for the duration of the block (nothing to set,
    and matplotlib not imported, while pictures are drawn with Pillow: :mod:`mfcli.plotting.raster`)."""
    from mfcli.plotting.raster import rastering

    if rastering():
        yield
        return
    import matplotlib

    with matplotlib.rc_context(RC_PARAMS):
        yield


def new_figure(width: float, height: float, dpi: float = DEFAULT_DPI, constrained: bool = True):
    """A Figure (inches) on an Agg canvas (:func:`canvas_class`), with constrained layout so nothing
    overlaps unless ``constrained`` is False (pictures laid out by hand)."""
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained" if constrained else None)
    canvas_class()(figure)
    return figure


@functools.lru_cache(maxsize=1)
def canvas_class():
    """FigureCanvasAgg whose renderer draws a line of plain text as one FreeType bitmap.

    matplotlib 3.11 draws text glyph by glyph, with Python work for each glyph, which made text
    most of the time of mfcli's pictures; FreeType lays out and renders a whole line in one call
    (``FT2Font.set_text`` and ``draw_glyphs_to_bitmap``, how matplotlib drew text up to 3.10),
    the same glyphs with their hinting, within a pixel of where matplotlib puts them. Math text,
    and anything the fast path cannot do on an installed matplotlib, is drawn by matplotlib
    itself; SVG and PDF are written by matplotlib's own backends, with real text.
    """
    import math

    from matplotlib.backends.backend_agg import FigureCanvasAgg, RendererAgg, get_hinting_flag

    class LineRendererAgg(RendererAgg):
        fast = True  # turned off for good if this matplotlib cannot draw text this way

        def draw_text(self, gc, x, y, s, prop, angle, ismath=False, mtext=None):
            if ismath or not LineRendererAgg.fast:
                return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)
            try:
                font = self._prepare_font(prop)
                font.set_text(s, 0, flags=get_hinting_flag())
                font.draw_glyphs_to_bitmap(antialiased=gc.get_antialiased())
                descent = font.get_descent() / 64.0
                x_offset, y_offset = (value / 64.0 for value in font.get_bitmap_offset())
                image = np.asarray(font.get_image())
                left = round(x + x_offset + descent * math.sin(math.radians(angle)))
                bottom = round(y + y_offset + descent * math.cos(math.radians(angle))) + 1  # y runs downwards
                self._renderer.draw_text_image(image, left, bottom, angle, gc)
            except (AttributeError, TypeError, ValueError):
                LineRendererAgg.fast = False
                return super().draw_text(gc, x, y, s, prop, angle, ismath=ismath, mtext=mtext)

    class LineCanvasAgg(FigureCanvasAgg):
        def get_renderer(self):
            width, height = self.get_width_height(physical=True)
            key = width, height, self.figure.dpi
            if self._lastKey != key:
                self.renderer = LineRendererAgg(width, height, self.figure.dpi)
                self._lastKey = key
            return self.renderer

    return LineCanvasAgg


def save_figure(figure, path: str | os.PathLike, force: bool = False, dpi: float | None = None) -> Path:
    """Write ``figure`` to ``path`` (format from the extension) atomically."""
    from mfcli.io.atomic import atomic_file

    fmt = image_format(path)
    with atomic_file(path, force=force) as tmp:
        with open(tmp, "wb") as handle:
            write_figure(figure, handle, fmt, dpi)
    return Path(path)


def figure_bytes(figure, fmt: str = "png", dpi: float | None = None) -> bytes:
    """The figure encoded as ``fmt`` in memory (for the HTML report)."""
    buffer = io.BytesIO()
    write_figure(figure, buffer, fmt, dpi)
    return buffer.getvalue()


def write_figure(figure, handle, fmt: str, dpi: float | None = None) -> None:
    """Encode ``figure`` into the binary file ``handle``. PNGs are drawn once on the Agg canvas
    and written as RGB (the background is opaque) with fast compression; SVG and PDF go through
    matplotlib's own writers."""
    if fmt != "png":
        with plot_style():
            figure.savefig(handle, format=fmt, dpi=dpi or figure.dpi, metadata=_metadata(fmt))
        return
    pixels, resolution = render_rgb(figure, dpi)
    encode_png(pixels, handle, resolution)


def render_rgb(figure, dpi: float | None = None) -> tuple[np.ndarray, float]:
    """The figure drawn on its Agg canvas: (rows x cols x 3 uint8 pixels, dots per inch). A
    :class:`~mfcli.plotting.raster.RasterPicture` is drawn already (at its own resolution)."""
    from mfcli.plotting.raster import RasterPicture

    if isinstance(figure, RasterPicture):
        return figure.pixels, figure.dpi
    original = figure.dpi
    with plot_style():
        if dpi is not None and dpi != original:
            figure.set_dpi(dpi)
        try:
            figure.canvas.draw()
            pixels = np.array(np.asarray(figure.canvas.buffer_rgba())[..., :3])
            resolution = float(figure.dpi)
        finally:
            if figure.dpi != original:
                figure.set_dpi(original)
    return pixels, resolution


def encode_png(pixels: np.ndarray, handle, dpi: float) -> None:
    """Write RGB ``pixels`` (rows x cols x 3 uint8) as a PNG into the binary file ``handle``: 8-bit
    truecolour, rows unfiltered (filter type 0) and deflated at level 1 (:mod:`mfcli.io.deflate`,
    which releases Python's lock while compressing, so pictures can be encoded in a thread), the
    resolution in a pHYs chunk and "Software" in a tEXt chunk (PNG specification, 2nd edition,
    W3C 2003, sections 11.2.2, 11.3.5.3, 11.3.4.3).

    Level 1: zlib's level 6 (matplotlib's) made maps' PNGs barely smaller and took twice as long.
    The rows are not filtered: on these pictures (flat areas, colour-mapped images, antialiased
    lines and text) the unfiltered rows compressed smaller than Pillow's per-row choice of filter
    (1.65 MB against 1.84 MB for the ten pictures of unmix sample:urban) in 40-45% of its CPU time
    (timed outside benchmarks/; bench_unmix prints the compression time of each picture)."""
    import struct
    import zlib

    from mfcli.io.deflate import deflate

    pixels = np.asarray(pixels)
    if pixels.dtype != np.uint8 or pixels.ndim != 3 or pixels.shape[2] != 3:
        raise ValueError(f"PNG pixels must be rows x cols x 3 uint8, not {pixels.shape} {pixels.dtype}")
    rows, cols = pixels.shape[:2]
    scanlines = np.zeros((rows, 1 + 3 * cols), dtype=np.uint8)  # a 0 (no filter) before every row
    scanlines[:, 1:] = pixels.reshape(rows, 3 * cols)

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(data, zlib.crc32(kind)))

    per_metre = int(dpi / 0.0254 + 0.5)
    handle.write(b"\x89PNG\r\n\x1a\n"
                 + chunk(b"IHDR", struct.pack(">IIBBBBB", cols, rows, 8, 2, 0, 0, 0))
                 + chunk(b"pHYs", struct.pack(">IIB", per_metre, per_metre, 1))
                 + b"".join(chunk(b"tEXt", key.encode("latin-1") + b"\0" + value.encode("latin-1"))
                            for key, value in _metadata("png").items())
                 + chunk(b"IDAT", deflate(scanlines.data))
                 + chunk(b"IEND", b""))


def _metadata(fmt: str) -> dict[str, str | None]:
    from mfcli import __version__

    software = f"mfcli {__version__}"
    if fmt == "png":
        return {"Software": software}
    if fmt == "svg":
        return {"Creator": software, "Date": None}
    return {"Creator": software, "CreationDate": None}
