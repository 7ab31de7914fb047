"""What the pictures show, computed from a Result with NumPy only (no matplotlib here).

Keeping these apart from the drawing code lets tests check the arrays a picture is made of
(orientation, shares, gaps) without rendering anything.

- :func:`layer_maps`: the per-pixel maps of a layer (soft abundances, coefficients or hard
  cluster memberships) with each component's share of pixels.
- :func:`as_images`: per-pixel values to images, the right way round for either pixel order
  (through :func:`mfcli.dataset.pixels_to_image`, the one place that reshapes).
- :func:`spectral_axis` and :func:`break_at_gaps`: the x axis of spectra (wavelength in nm
  only from a source, else band numbers) and lines broken where bands were removed.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfcli.dataset import pixels_to_image
from mfcli.errors import DataError, ParameterError
from mfcli.summary import cluster_name, format_share, hard_assignments, shares  # noqa: F401 (re-exported)

MAP_KINDS = ("auto", "hard", "soft")
GAP_FACTOR = 1.5  # a spacing larger than this times the median spacing is a gap of removed bands


def layer_indices(result, layer: int | str) -> list[int]:
    """1-based layer numbers for ``--layer L`` (``-1`` = last) or ``--layer all``."""
    if isinstance(layer, str) and layer.lower() == "all":
        return list(range(1, len(result.layers) + 1))
    return [result.layer_number(int(layer))]  # a one-line ParameterError for a layer that does not exist


def cluster_colors(result, index: int) -> list[str]:
    """Colour of each component of layer ``index``, the same in every picture.

    In a hierarchy a merged cluster continues the colour of its largest child (recursively down
    to layer 1, where cluster k has colour k), so a material keeps its colour from layer 1 up
    through every merge it leads. Clusters of one layer never share a colour, since they have
    disjoint children. Without a hierarchy, component k has colour k.
    """
    from mfcli.plotting.style import EMPTY_COLOR, component_color

    layers = result.layers[:index]
    colors = [component_color(k) for k in range(layers[0].rank)]
    if index == 1 or not all(layer.assignments is not None for layer in layers):
        return [component_color(k) for k in range(result.layer(index).rank)]
    for level in range(2, index + 1):
        below = hard_assignments(result, level - 1)
        sizes = np.bincount(below[below >= 0], minlength=result.layer(level - 1).rank)
        upper = np.asarray(result.layer(level).assignments, dtype=np.int64)
        next_colors = []
        for k in range(result.layer(level).rank):
            children = np.flatnonzero(upper == k)
            next_colors.append(colors[int(children[np.argmax(sizes[children])])] if children.size else EMPTY_COLOR)
        colors = next_colors
    return colors


@dataclass
class LayerMaps:
    """The maps of one layer: ``values`` (r x n), what they are, and each component's share."""

    layer: int
    values: np.ndarray
    kind: str
    description: str
    shares: np.ndarray
    labels: list[str | None] = field(default_factory=list)
    method: str | None = None

    @property
    def fractions(self) -> bool:
        """True for values that are fractions by construction (memberships, sum-to-one FCLS
        abundances), drawn on [0, 1]; coefficients and NNLS abundances have a free scale."""
        return self.kind == "hard" or self.method == "fcls"

    @property
    def quantity(self) -> str:
        """What one pixel's value is, for the colour bar."""
        if self.kind == "hard":
            return "membership (1: in the cluster)"
        if self.method == "fcls":
            return "FCLS abundance (fraction of the pixel)"
        if self.method:
            return f"{self.method.upper()} abundance"
        return "coefficient (data units)"


def layer_maps(result, index: int, kind: str = "auto") -> LayerMaps:
    """Maps of layer ``index``: ``soft`` abundances (or the coefficients where the layer has none),
    ``hard`` cluster memberships (0/1), or ``auto`` (soft abundances if stored, else coefficients).
    Shares are the fraction of pixels assigned to (or dominated by) each component."""
    if kind not in MAP_KINDS:
        raise ParameterError(f"unknown map kind '{kind}'; use one of {', '.join(MAP_KINDS)}")
    layer = result.layer(index)
    assign = hard_assignments(result, index)
    rank = layer.rank
    method = None
    if kind == "hard":
        values = (assign[None, :] == np.arange(rank)[:, None]).astype(np.float64)
        description = "hard clusters (1 = pixel in the cluster)"
    elif layer.abundances is not None:
        values = np.asarray(layer.abundances, dtype=np.float64)
        method = layer.attrs.get("abundances") or result.params.get("abundances")
        description = f"soft abundances ({method.upper()})" if isinstance(method, str) else "soft abundances"
    else:
        values = np.asarray(layer.data_coefficients, dtype=np.float64)
        method = layer.attrs.get("coefficients")  # H solved as abundances (mfcli abundances/endmembers, minvol)
        description = f"abundances ({method.upper()})" if isinstance(method, str) else "coefficients in data space"
    labels = list(layer.labels) if layer.labels else [None] * rank
    return LayerMaps(index, values, kind, description, shares(assign, rank), labels,
                     method if isinstance(method, str) else None)


def as_images(result, values: np.ndarray) -> np.ndarray:
    """Per-pixel values (k x n) as images (k x rows x cols) in the image's true orientation;
    the input's nodata pixels (left out of the data) are NaN, drawn as blank."""
    shape = result.image_shape
    if shape is None:
        source = result.input.get("source") or "the input"
        raise DataError(
            f"{source} has no image shape, so its maps cannot be drawn as images; rerun the "
            "factorization with --image-shape ROWSxCOLS (or use plot-endmembers / plot-tree)"
        )
    return pixels_to_image(values, shape, result.pixel_order or "C", result.valid_pixels)


def robust_vmax(values: np.ndarray, fractions: bool = False, percentile: float = 99.5) -> float:
    """Top of a shared colour scale: 1 for fractions (abundances, memberships) that stay within
    [0, 1], else a high percentile, so one hot pixel does not darken every map."""
    flat = np.ravel(values)
    keep = np.isfinite(flat)
    finite = flat if keep.all() else flat[keep]
    if finite.size == 0:
        return 1.0
    top = float(finite.max())
    if fractions and 0 < top <= 1.0 + 1e-6:
        return 1.0
    high = percentile_of(finite, percentile)
    return high if high > 0 else (top if top > 0 else 1.0)


# Above this many values, a high percentile is taken among the values above a threshold found on
# a sample of SAMPLE_SIZE of them: 1.4 ms instead of 9 for 7 x 94249 values (a partition of them
# all), for each picture of a layer's maps (median of 30, timed outside benchmarks/).
SELECT_FROM = 65536
SAMPLE_SIZE = 4096


def percentile_of(values: np.ndarray, percentile: float) -> float:
    """np.percentile(values, percentile) (linear interpolation between the two nearest ranks) for
    1-D finite ``values``, left as they are. NumPy's own, like its median, imports numpy.ma on
    first use (25 ms in each process drawing pictures). The two values it needs are found by a
    partition of the values at or above a threshold, where a sample of them gives one below both
    ranks with room to spare (checked by counting: the values below it are then exactly the lowest
    ranks), else of them all: the same two values either way."""
    n = values.size
    position = percentile / 100.0 * (n - 1)
    low = int(np.floor(position))
    high = min(low + 1, n - 1)
    candidates, first_rank = None, 0
    if n >= SELECT_FROM and (n - low) * 16 <= n:
        sample = np.sort(values[::max(1, n // SAMPLE_SIZE)])
        share = 4.0 * (n - low) / n  # 4 times the share of the values at ranks low..n-1
        threshold = sample[max(0, int(sample.size * (1.0 - share)) - 1)]
        chosen = values >= threshold
        count = int(np.count_nonzero(chosen))
        if count >= n - low:
            candidates, first_rank = values[chosen], n - count
    if candidates is None:
        candidates = np.array(values, copy=True)
    candidates.partition([low - first_rank, high - first_rank])
    a, b = float(candidates[low - first_rank]), float(candidates[high - first_rank])
    fraction = position - low
    return a + (b - a) * fraction if fraction < 0.5 else b - (b - a) * (1.0 - fraction)


def component_title(index: int, label: str | None, share: float | None) -> str:
    """``#k label`` (1-based ``k`` of the 0-based ``index``) and the share of pixels, e.g.
    ``#2 grass · 31.4 %``."""
    name = cluster_name(index, label)
    return name if share is None else f"{name} · {format_share(share)}"


@dataclass
class SpectralAxis:
    """x values of the m features, their axis label, where they came from, and the gaps
    (removed bands) as (start, end) pairs in x units."""

    x: np.ndarray
    label: str
    source: str
    gaps: list[tuple[float, float]]
    is_wavelength: bool


def find_gaps(x: np.ndarray, factor: float = GAP_FACTOR) -> list[tuple[float, float]]:
    """Intervals between neighbours of sorted ``x`` spaced more than ``factor`` x the median."""
    x = np.asarray(x, dtype=np.float64)
    if x.size < 3:
        return []
    spacing = np.diff(x)
    ordered = np.sort(spacing)  # the median as np.median takes it, whose first call imports numpy.ma (25 ms)
    median = float((ordered[(ordered.size - 1) // 2] + ordered[ordered.size // 2]) / 2)
    if median <= 0:
        return []
    return [(float(x[i]), float(x[i + 1])) for i in np.flatnonzero(spacing > factor * median)]


def break_at_gaps(x: np.ndarray, y: np.ndarray, gaps: list[tuple[float, float]]) -> tuple[np.ndarray, np.ndarray]:
    """``x``/``y`` (sorted by x) with a NaN inserted in every gap, so a line is drawn in pieces."""
    x = np.asarray(x, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    if not gaps:
        return x, y
    starts = np.array([start for start, _ in gaps])
    cut = np.searchsorted(x, starts, side="right")
    return np.insert(x, cut, np.nan), np.insert(y, cut, np.nan)


BAND_NUMBER_LABEL = "band number (wavelengths unknown)"
BAND_INDEX_LABEL = "band (wavelengths unknown)"


def spectral_axis(result, n_features: int, wavelengths: np.ndarray | None = None) -> SpectralAxis:
    """The x axis of spectra, from what is known and nothing else: wavelengths in nm where a
    source gives them (``wavelengths``, i.e. ``--wavelengths``, else those stored with the
    input, which came from the file or the user); else the sensor's band numbers (``SlectBands``,
    with gaps where bands were removed); else the band (row) number 1..m. Nanometres are never
    derived from band numbers (:mod:`mfcli.io.wavelengths`); wavelengths that an older mfcli
    derived that way (``wavelengths_nominal``) are ignored."""
    from mfcli.io.wavelengths import check_band_count

    if wavelengths is not None:
        x = check_band_count(wavelengths, n_features, "--wavelengths")
        return SpectralAxis(x, "wavelength (nm)", "--wavelengths", find_gaps(np.sort(x)), True)
    stored = result.input.get("wavelengths")
    if stored is not None and np.asarray(stored).size == n_features and not result.input.get("wavelengths_nominal"):
        x = np.asarray(stored, dtype=np.float64).ravel()
        source = result.input.get("wavelengths_source") or "the input file"
        return SpectralAxis(x, "wavelength (nm)", source, find_gaps(np.sort(x)), True)
    bands = result.input.get("band_indices")
    if bands is not None and np.asarray(bands).size == n_features:
        bands = np.asarray(bands, dtype=np.float64).ravel()
        return SpectralAxis(bands, BAND_NUMBER_LABEL, "band numbers of the input (SlectBands)",
                            find_gaps(np.sort(bands)), False)
    x = np.arange(1, n_features + 1, dtype=np.float64)
    label = BAND_INDEX_LABEL if result.image_shape is not None else "feature (row of the data matrix)"
    return SpectralAxis(x, label, "row numbers of the data", [], False)


def read_wavelengths(path: str) -> np.ndarray:
    """Wavelengths (nm) from a file: :func:`mfcli.io.wavelengths.read_wavelengths`."""
    from mfcli.io.wavelengths import read_wavelengths as read

    return read(path)
