"""One look for every picture mfcli draws, and the one way figures are written.

Figures are made with :class:`matplotlib.figure.Figure` on the Agg canvas directly, never
through ``pyplot``: no global figure state, no GUI backend, nothing left open after a plot.
matplotlib is imported inside the functions, so importing this module costs nothing.

The output format follows the file's extension (``.png``, ``.svg``, ``.pdf``); writes are
atomic and an existing file is kept unless ``force`` is given.
"""

from __future__ import annotations

import contextlib
import io
import os
from collections.abc import Iterator
from pathlib import Path

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
    """matplotlib's rcParams set to mfcli's style for the duration of the block."""
    import matplotlib

    with matplotlib.rc_context(RC_PARAMS):
        yield


def new_figure(width: float, height: float, dpi: float = DEFAULT_DPI, constrained: bool = True):
    """A Figure (inches) on an Agg canvas, with constrained layout so nothing overlaps."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    figure = Figure(figsize=(width, height), dpi=dpi, layout="constrained" if constrained else None)
    FigureCanvasAgg(figure)
    return figure


def save_figure(figure, path: str | os.PathLike, force: bool = False, dpi: float | None = None) -> Path:
    """Write ``figure`` to ``path`` (format from the extension) atomically."""
    from mfcli.io.atomic import atomic_file

    fmt = image_format(path)
    with plot_style(), atomic_file(path, force=force) as tmp:
        figure.savefig(tmp, format=fmt, dpi=dpi or figure.dpi, metadata=_metadata(fmt))
    return Path(path)


def figure_bytes(figure, fmt: str = "png", dpi: float | None = None) -> bytes:
    """The figure encoded as ``fmt`` in memory (for the HTML report)."""
    buffer = io.BytesIO()
    with plot_style():
        figure.savefig(buffer, format=fmt, dpi=dpi or figure.dpi, metadata=_metadata(fmt))
    return buffer.getvalue()


def _metadata(fmt: str) -> dict[str, str | None]:
    from mfcli import __version__

    software = f"mfcli {__version__}"
    if fmt == "png":
        return {"Software": software}
    if fmt == "svg":
        return {"Creator": software, "Date": None}
    return {"Creator": software, "CreationDate": None}
