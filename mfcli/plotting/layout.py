"""What every picture canvas shares, with NumPy only: colour maps and images of values, round
ticks and their labels, and the layout helpers of :class:`CanvasLayout` (texts fitted to their
room, legends, colour bars) written on a canvas's drawing primitives. The canvases that draw are
:class:`mfcli.plotting.canvas.FigureCanvas` (matplotlib) and
:class:`mfcli.plotting.raster.RasterCanvas` (Pillow)."""

from __future__ import annotations

import functools
import math

import numpy as np

MISSING_RGBA = (200, 200, 200, 255)  # NaN values


# matplotlib's viridis (CC0; van der Walt & Smith), the abundance maps' colour map, as 256 RGB
# triples: the standard pictures colour their maps without importing matplotlib. A test checks it
# against matplotlib's own table.
VIRIDIS_RGB = (
    "44015444025645045745055946075a46085c460a5d460b5e470d60470e61471063471164471365481467481668481769"
    "48186a481a6c481b6d481c6e481d6f481f70482071482173482374482475482576482677482878482979472a7a472c7a"
    "472d7b472e7c472f7d46307e46327e46337f463480453581453781453882443983443a83443b84433d84433e85423f85"
    "4240864241864142874144874045884046883f47883f48893e49893e4a893e4c8a3d4d8a3d4e8a3c4f8a3c508b3b518b"
    "3b528b3a538b3a548c39558c39568c38588c38598c375a8c375b8d365c8d365d8d355e8d355f8d34608d34618d33628d"
    "33638d32648e32658e31668e31678e31688e30698e306a8e2f6b8e2f6c8e2e6d8e2e6e8e2e6f8e2d708e2d718e2c718e"
    "2c728e2c738e2b748e2b758e2a768e2a778e2a788e29798e297a8e297b8e287c8e287d8e277e8e277f8e27808e26818e"
    "26828e26828e25838e25848e25858e24868e24878e23888e23898e238a8d228b8d228c8d228d8d218e8d218f8d21908d"
    "21918c20928c20928c20938c1f948c1f958b1f968b1f978b1f988b1f998a1f9a8a1e9b8a1e9c891e9d891f9e891f9f88"
    "1fa0881fa1881fa1871fa28720a38620a48621a58521a68522a78522a88423a98324aa8325ab8225ac8226ad8127ad81"
    "28ae8029af7f2ab07f2cb17e2db27d2eb37c2fb47c31b57b32b67a34b67935b77937b87838b9773aba763bbb753dbc74"
    "3fbc7340bd7242be7144bf7046c06f48c16e4ac16d4cc26c4ec36b50c46a52c56954c56856c66758c7655ac8645cc863"
    "5ec96260ca6063cb5f65cb5e67cc5c69cd5b6ccd5a6ece5870cf5773d05675d05477d1537ad1517cd2507fd34e81d34d"
    "84d44b86d54989d5488bd6468ed64590d74393d74195d84098d83e9bd93c9dd93ba0da39a2da37a5db36a8db34aadc32"
    "addc30b0dd2fb2dd2db5de2bb8de29bade28bddf26c0df25c2df23c5e021c8e020cae11fcde11dd0e11cd2e21bd5e21a"
    "d8e219dae319dde318dfe318e2e418e5e419e7e419eae51aece51befe51cf1e51df4e61ef6e620f8e621fbe723fde725"
)


@functools.lru_cache(maxsize=16)
def colormap_lut(name: str) -> np.ndarray:
    """(256, 4) uint8 RGBA table of the matplotlib colour map ``name`` (computed once; viridis
    from :data:`VIRIDIS_RGB`, the others from matplotlib)."""
    if name == "viridis":
        rgb = np.frombuffer(bytes.fromhex("".join(VIRIDIS_RGB)), dtype=np.uint8).reshape(256, 3)
        return np.concatenate([rgb, np.full((256, 1), 255, dtype=np.uint8)], axis=1)
    import matplotlib

    return (matplotlib.colormaps[name](np.linspace(0.0, 1.0, 256)) * 255 + 0.5).astype(np.uint8)


def resample(image: np.ndarray, rows: int, cols: int) -> np.ndarray:
    """``image`` (h x w) at ``rows`` x ``cols``: the mean of the pixels each output pixel covers when
    shrinking (so thin structures fade instead of vanishing), the nearest pixel when enlarging."""
    image = np.asarray(image, dtype=np.float64)
    for axis, size in ((0, rows), (1, cols)):
        n = image.shape[axis]
        if size == n or size < 1:
            continue
        if size < n:
            edges = np.floor(np.arange(size) * (n / size)).astype(np.int64)
            counts = np.diff(np.append(edges, n))
            sums = np.add.reduceat(image, edges, axis=axis)
            shape = [1, 1]
            shape[axis] = size
            image = sums / counts.reshape(shape)
        else:
            index = np.minimum((np.arange(size) * (n / size)).astype(np.int64), n - 1)
            image = np.take(image, index, axis=axis)
    return image


def colorize(values: np.ndarray, low: float, high: float, cmap: str) -> np.ndarray:
    """RGBA uint8 image of ``values`` on the scale [low, high] (clipped) of colour map ``cmap``."""
    lut = colormap_lut(cmap)
    span = high - low if high > low else 1.0
    finite = np.isfinite(values)
    scaled = np.where(finite, (values - low) * (255.0 / span), 0.0)
    index = np.clip(scaled + 0.5, 0, 255).astype(np.uint8)
    rgba = lut[index]
    if not finite.all():
        rgba[~finite] = MISSING_RGBA
    return rgba


def round_ticks(low: float, high: float, bins: int, steps=(1, 2, 2.5, 5, 10), integer: bool = False) -> np.ndarray:
    """At most ``bins`` + 1 round tick values covering [low, high] (the first at or below ``low``,
    the last at or above ``high``), the step the smallest of ``steps`` x 10^k that is at least
    (high - low) / bins, or a smaller one where that leaves fewer than two ticks inside; integer
    steps only with ``integer``. The rule of matplotlib's MaxNLocator, without matplotlib
    (``tests/plotting/test_raster.py`` compares the two)."""
    low, high = float(low), float(high)
    if not high - low > 1e-13 * max(abs(low), abs(high), 1e-14):  # a single value: widen it, as matplotlib does
        spread = max(abs(low) * 1e-3, 1e-3) if low or high else 1e-3
        low, high = low - spread, high + spread
    # ticks counted from an offset (a power of ten near the middle) when the range is narrow
    # for its distance from zero, so that the steps are not lost in rounding
    middle = (low + high) / 2
    offset = math.copysign(10.0 ** math.floor(math.log10(abs(middle))), middle) \
        if abs(middle) / (high - low) >= 100 else 0.0
    low, high = low - offset, high - offset
    steps = np.asarray(steps, dtype=np.float64)
    ladder = np.concatenate([0.1 * steps[:-1], steps, [10 * steps[1]]])
    scale = 10.0 ** math.floor(math.log10((high - low) / bins))
    candidates = ladder * scale
    if integer:
        candidates = candidates[(candidates < 1) | (np.abs(candidates - np.round(candidates)) < 0.001)]
    large = np.flatnonzero(candidates >= (high - low) / bins)
    last = large[0] if large.size else len(candidates) - 1
    ticks = np.array([low, high])
    for step in candidates[:last + 1][::-1]:
        if integer and math.floor(high) - math.ceil(low) >= 1:
            step = max(1.0, step)
        base = (low // step) * step
        # a remainder this close to a whole step counts as one (more slack with a large offset)
        slack = min(0.4999, max(1e-10, 10.0 ** (math.log10(abs(offset) / step) - 12))) if offset else 1e-10
        whole, rest = divmod(low - base, step)
        first = whole + 1 if abs(rest / step - 1) < slack else whole
        whole, rest = divmod(high - base, step)
        end = whole if abs(rest / step) < slack else whole + 1
        ticks = np.arange(first, end + 1) * step + base
        if np.count_nonzero((ticks >= low) & (ticks <= high)) >= 2:
            break
    return ticks + offset


def nice_ticks(low: float, high: float, count: int = 5) -> np.ndarray:
    """Round tick values within [low, high] (:func:`round_ticks`)."""
    ticks = round_ticks(low, high, count)
    span = high - low
    return ticks[(ticks >= low - 1e-9 * span) & (ticks <= high + 1e-9 * span)]


def integer_ticks(low: float, high: float, count: int = 8) -> np.ndarray:
    """Round integer tick values within [low, high] (band numbers)."""
    ticks = round_ticks(low, high, count, steps=(1, 1.5, 2, 2.5, 3, 4, 5, 6, 8, 10), integer=True)
    return ticks[(ticks >= low) & (ticks <= high)]


def tick_labels(ticks: np.ndarray) -> list[str]:
    """Tick labels with the fewest decimals (up to 6) that write every tick exactly (0, 0.25, 0.5 ...)."""
    ticks = np.asarray(ticks, dtype=np.float64)
    scale = float(np.abs(ticks).max(initial=0.0)) or 1.0
    for decimals in range(7):
        if np.allclose(np.round(ticks, decimals), ticks, rtol=0, atol=1e-9 * scale):
            return ["0" if round(float(t), decimals) == 0 else f"{t:.{decimals}f}" for t in ticks]
    return [f"{t:.3g}" for t in ticks]



class CanvasLayout:
    """What every canvas does with its drawing primitives (``measure``, ``image``, ``text``,
    ``line``, ``markers``, ``frame``, ``fill``, ``finish``): texts fitted to their room, images of
    values, legends and colour bars. Two canvases draw: :class:`FigureCanvas` (matplotlib) and
    :class:`~mfcli.plotting.raster.RasterCanvas` (Pillow, for the standard pictures)."""

    width: float
    height: float
    dpi: float

    def start_batches(self) -> None:
        """Empty the batches of lines, frames and filled boxes, which ``finish()`` draws in one go."""
        self._segments: dict[tuple, list] = {}
        self._frames: list[tuple[float, float, float, float, str, float]] = []
        self._fills: list[tuple[float, float, float, float, str]] = []

    def line(self, xs, ys, color: str, width: float = 1.0, style: str = "solid") -> None:
        """A polyline (NaN breaks it), batched with the others of the same colour, width and style."""
        xs = np.asarray(xs, dtype=np.float64)
        ys = np.asarray(ys, dtype=np.float64)
        breaks = ~(np.isfinite(xs) & np.isfinite(ys))
        pieces = np.split(np.column_stack([xs, ys]), np.flatnonzero(breaks))
        batch = self._segments.setdefault((color, width, style), [])
        for piece in pieces:
            piece = piece[np.all(np.isfinite(piece), axis=1)]
            if len(piece) >= 2:
                batch.append(piece)

    def frame(self, x: float, y: float, width: float, height: float, color: str, linewidth: float = 1.6) -> None:
        self._frames.append((x, y, width, height, color, linewidth))

    def fill(self, x: float, y: float, width: float, height: float, color: str) -> None:
        """A filled rectangle, drawn below the lines."""
        self._fills.append((x, y, width, height, color))

    def text_width(self, text: str, size: float, weight: str = "normal") -> float:
        """Width in inches of the widest line of ``text`` at ``size`` points."""
        return max((self.measure(line, size, weight) for line in text.split("\n")), default=0.0)

    def fit(self, text: str, width: float, size: float, weight: str = "normal") -> str:
        """``text`` shortened with an ellipsis until it is at most ``width`` inches wide."""
        if self.text_width(text, size, weight) <= width:
            return text
        low, high = 0, len(text)
        while low < high:  # the longest prefix that fits with the ellipsis
            middle = (low + high + 1) // 2
            if self.text_width(text[:middle].rstrip() + "…", size, weight) <= width:
                low = middle
            else:
                high = middle - 1
        return text[:low].rstrip() + "…"

    def fit_lines(self, lines: list[str], width: float, size: float, weight: str = "normal") -> str:
        return "\n".join(self.fit(line, width, size, weight) for line in lines)

    def wrap(self, text: str, width: float, size: float, max_lines: int = 2) -> list[str]:
        """``text`` broken at spaces into at most ``max_lines`` lines of at most ``width`` inches
        (the last one shortened with an ellipsis if it still does not fit)."""
        lines: list[str] = []
        words = text.split(" ")
        while words and len(lines) < max_lines - 1:
            count = len(words)
            while count > 1 and self.text_width(" ".join(words[:count]), size) > width:
                count -= 1
            if count == len(words):
                break
            lines.append(" ".join(words[:count]))
            words = words[count:]
        lines.append(self.fit(" ".join(words), width, size))
        return lines

    def values_image(self, values: np.ndarray, x: float, y: float, width: float, height: float, low: float,
                     high: float, cmap: str):
        """Per-pixel ``values`` (rows x cols) coloured on [low, high] and resampled to the pixels
        of the box at the figure's resolution; the artist keeps ``values`` as ``mfcli_values`` and
        the scale as ``mfcli_scale`` (what the panel shows, for tests)."""
        rows = max(1, int(round(height * self.dpi)))
        cols = max(1, int(round(width * self.dpi)))
        artist = self.image(colorize(resample(values, rows, cols), low, high, cmap), x, y, width, height)
        artist.mfcli_values = values
        artist.mfcli_scale = (low, high)
        return artist

    def legend(self, x: float, y: float, width: float, entries: list[tuple[str, str, str]], size: float = 7.0,
               columns: int = 1, title: str | None = None) -> float:
        """Legend entries (label, colour, line style) as line samples and texts, row by row in
        ``columns`` columns from (``x``, ``y``), each fitted to its column; returns the height used."""
        step = size / 72 * 1.45
        column_w = width / columns
        top = y
        if title:
            self.text(x, y, self.fit(title, width, size, "bold"), size=size, ha="left", va="top", weight="bold")
            top += step
        for number, (label, color, style) in enumerate(entries):
            row, column = divmod(number, columns)
            ty = top + row * step + step / 2
            tx = x + column * column_w
            self.line([tx, tx + 0.25], [ty, ty], color, 1.5, style)
            self.text(tx + 0.32, ty, self.fit(label, column_w - 0.36, size), size=size, ha="left", va="center")
        rows = -(-len(entries) // columns)
        return top - y + rows * step

    def colorbar(self, x: float, y: float, height: float, low: float, high: float, cmap: str, label: str,
                 bar_width: float = 0.11, size: float = 6.5, n_ticks: int = 4) -> float:
        """A vertical colour bar at (``x``, ``y``) with about ``n_ticks`` ticks and a label on its
        right; returns the width it takes (inches)."""
        gradient = colorize(np.linspace(high, low, max(2, int(round(height * self.dpi))))[:, None], low, high, cmap)
        self.image(gradient, x, y, bar_width, height)
        self.frame(x, y, bar_width, height, "#555555", 0.5)
        ticks = nice_ticks(low, high, n_ticks)
        widest = 0.0
        for value, text in zip(ticks, tick_labels(ticks)):
            ty = y + height * (high - value) / (high - low if high > low else 1.0)
            self.line([x + bar_width, x + bar_width + 0.04], [ty, ty], "#555555", 0.5)
            self.text(x + bar_width + 0.06, ty, text, size=size, ha="left", va="center", gid=f"cbar-{x}-{y}")
            widest = max(widest, self.text_width(text, size))
        label_x = x + bar_width + 0.08 + widest + 0.05
        lines = self.wrap(label, height, size, 2)
        self.text(label_x, y + height / 2, "\n".join(lines), size=size, ha="center", va="top", rotation=90)
        return label_x + len(lines) * size / 72 * 1.3 - x
