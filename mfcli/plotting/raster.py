"""The pictures' canvas drawn straight to pixels with Pillow, without matplotlib.

The standard pictures (:mod:`mfcli.plotting.bundle`) are laid out by hand on a
:class:`~mfcli.plotting.canvas.Canvas` from a few primitives: images, lines, frames, filled
boxes, markers and texts. Importing matplotlib and building a Figure of artists cost more than
drawing them (about 0.9 s of the 1.7 s the ten pictures of ``unmix sample:urban`` took), so
inside :func:`raster_pictures` a Canvas is a :class:`RasterCanvas`: the same layout, rasterized
by Pillow (which matplotlib itself depends on; benchmarks/bench_unmix.py times its import at
0.03 s) with the font matplotlib uses (DejaVu Sans, from matplotlib's own data folder, read
without importing matplotlib).

Lines, frames, fills and markers are drawn at ``SUPERSAMPLE`` times the resolution and averaged
down (antialiasing), images are pasted pixel for pixel (they are resampled to their boxes
already), texts are rendered by FreeType at the final resolution on top of everything, in
matplotlib's order of layers (images, fills, lines and markers, frames, texts).
``tests/plotting/test_raster.py`` compares the result with matplotlib's drawing of the same
canvas.
"""

from __future__ import annotations

import contextlib
import functools
import importlib.util
import math
from pathlib import Path

import numpy as np

from mfcli.plotting.layout import CanvasLayout

SUPERSAMPLE = 2
LINE_SPACING = 1.15  # matplotlib's default linespacing, as the Canvas asks for
# matplotlib's dash patterns (rcParams lines.dashed_pattern, lines.dotted_pattern), in line widths
DASHES = {"dashed": (3.7, 1.6), "dotted": (1.0, 1.65), "dashdot": (6.4, 1.6, 1.0, 1.6)}

_state = {"raster": False}


@contextlib.contextmanager
def raster_pictures():
    """Within the block, :class:`~mfcli.plotting.canvas.Canvas` draws with Pillow and ``finish()``
    returns a :class:`RasterPicture` instead of a matplotlib Figure."""
    previous, _state["raster"] = _state["raster"], True
    try:
        yield
    finally:
        _state["raster"] = previous


def rastering() -> bool:
    return _state["raster"]


class RasterPicture:
    """A finished picture: RGB ``pixels`` (rows x cols x 3 uint8) at ``dpi``, with the records of
    what was drawn (``images``, ``texts``) for checks."""

    def __init__(self, pixels: np.ndarray, dpi: float, images: list, texts: list):
        self.pixels, self.dpi, self.images, self.texts = pixels, float(dpi), images, texts


class DrawnImage:
    """Where :meth:`RasterCanvas.image` drew an image (inches); :meth:`values_image` adds the
    attributes tests read off matplotlib's artists."""

    def __init__(self, box):
        self.box = box


class DrawnText:
    def __init__(self, text: str, x: float, y: float, size: float, gid: str | None):
        self.text, self.x, self.y, self.size, self.gid = text, x, y, size, gid

    def get_text(self) -> str:
        return self.text

    def get_gid(self):
        return self.gid


@functools.lru_cache(maxsize=2)
def font_path(weight: str = "normal") -> str:
    """DejaVu Sans (bold for ``weight`` "bold"), the font matplotlib draws with, from its data
    folder (found without importing matplotlib)."""
    spec = importlib.util.find_spec("matplotlib")
    name = "DejaVuSans-Bold.ttf" if weight == "bold" else "DejaVuSans.ttf"
    if spec is not None and spec.submodule_search_locations:
        for folder in spec.submodule_search_locations:
            path = Path(folder) / "mpl-data" / "fonts" / "ttf" / name
            if path.is_file():
                return str(path)
    from matplotlib.font_manager import FontProperties, findfont  # pragma: no cover - unusual installs

    return findfont(FontProperties(weight=weight))  # pragma: no cover


@functools.lru_cache(maxsize=64)
def font(size_points: float, weight: str, dpi: float):
    """The FreeType font at ``size_points`` points for ``dpi`` (Pillow sizes fonts in pixels)."""
    from PIL import ImageFont

    return ImageFont.truetype(font_path("bold" if weight == "bold" else "normal"), size_points * dpi / 72.0)


@functools.lru_cache(maxsize=4096)  # the same labels are measured again and again while texts are fitted
def text_width(line: str, size: float, weight: str, dpi: float) -> float:
    """Width in inches of one line of text as :class:`RasterCanvas` draws it (with the same 1 %
    of room as :func:`mfcli.plotting.canvas.measure_text`)."""
    return font(float(size), weight, float(dpi)).getlength(line) * 1.01 / dpi


@functools.lru_cache(maxsize=256)
def rgb(color: str) -> tuple[int, ...]:
    """(r, g, b) or (r, g, b, a) of a colour name or hex string."""
    from PIL import ImageColor

    return ImageColor.getrgb(color)


def dashed(points: np.ndarray, pattern: tuple[float, ...]) -> list[np.ndarray]:
    """The pieces of the polyline ``points`` (k x 2, pixels) that are drawn with the on/off
    ``pattern`` (pixels), starting with a dash."""
    pieces: list[np.ndarray] = []
    current: list[np.ndarray] = [points[0]]
    phase, on, left = 0, True, pattern[0]
    for start, stop in zip(points[:-1], points[1:]):
        segment = stop - start
        length = float(np.hypot(*segment))
        position = 0.0
        while length - position > left:
            position += left
            point = start + segment * (position / length)
            if on:
                current.append(point)
                pieces.append(np.array(current))
            current = [point]
            phase = (phase + 1) % len(pattern)
            on, left = not on, pattern[phase]
        left -= length - position
        if on:
            current.append(stop)
    if on and len(current) >= 2:
        pieces.append(np.array(current))
    return pieces


def _share(alignment: str, size: float) -> float:
    """How far into a box of ``size`` an alignment puts its anchor: 0 for left/top, half for
    center, all of it for right/bottom."""
    return {"center": 0.5, "right": 1.0, "bottom": 1.0}.get(alignment, 0.0) * size


class RasterCanvas(CanvasLayout):
    """The drawing primitives of a :class:`~mfcli.plotting.canvas.CanvasLayout` on a Pillow image
    (see the module docstring)."""

    def __init__(self, width: float, height: float, dpi: float):
        self.width, self.height, self.dpi = float(width), float(height), float(dpi)
        self.cols = max(1, int(self.width * self.dpi))  # whole pixels, as matplotlib's Agg canvas
        self.rows = max(1, int(self.height * self.dpi))
        self._images: list[tuple[np.ndarray, tuple[float, float, float, float]]] = []
        self._markers: list[tuple[np.ndarray, np.ndarray, str, float]] = []
        self.start_batches()
        self._texts: list[tuple] = []
        self.drawn_images: list[DrawnImage] = []
        self.drawn_texts: list[DrawnText] = []

    # ----------------------------------------------------------------------------- measuring
    def measure(self, line: str, size: float, weight: str) -> float:
        return text_width(line, size, weight, self.dpi)

    # ----------------------------------------------------------------------------- recording
    def image(self, rgba: np.ndarray, x: float, y: float, width: float, height: float):
        self._images.append((np.asarray(rgba), (x, y, width, height)))
        drawn = DrawnImage((x, y, width, height))
        self.drawn_images.append(drawn)
        return drawn

    def text(self, x: float, y: float, text: str, size: float = 7.0, ha: str = "center", va: str = "top",
             color: str = "#222222", weight: str = "normal", rotation: float = 0.0, gid: str | None = None):
        self._texts.append((x, y, str(text), float(size), ha, va, color, weight, float(rotation)))
        drawn = DrawnText(str(text), x, y, size, gid)
        self.drawn_texts.append(drawn)
        return drawn

    def markers(self, xs, ys, color: str, size: float = 3.0) -> None:
        self._markers.append((np.asarray(xs, dtype=np.float64), np.asarray(ys, dtype=np.float64), color, size))

    # ----------------------------------------------------------------------------- drawing
    def _pixels(self, inches, scale: float) -> float:
        return inches * self.dpi * scale

    def _line_width(self, points: float, scale: float) -> int:
        return max(1, int(round(points / 72.0 * self.dpi * scale)))

    def finish(self) -> RasterPicture:
        """Rasterize everything recorded; returns the :class:`RasterPicture`."""
        from PIL import Image, ImageDraw

        s = SUPERSAMPLE
        picture = Image.new("RGB", (self.cols * s, self.rows * s), "white")
        for rgba, (x, y, w, h) in self._images:
            self._paste_image(picture, rgba, x, y, w, h, s)
        draw = ImageDraw.Draw(picture, "RGBA")
        for x, y, w, h, color in self._fills:
            draw.rectangle(self._box(x, y, w, h, s), fill=rgb(color))
        for xs, ys, color, size in self._markers:
            radius = size / 2.0 / 72.0 * self.dpi * s
            for px, py in zip(xs * self.dpi * s, ys * self.dpi * s):
                draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=rgb(color))
        for (color, width, style), pieces in self._segments.items():
            line_width = self._line_width(width, s)
            pattern = DASHES.get(style)
            for piece in pieces:
                points = piece * (self.dpi * s)
                parts = [points] if pattern is None else dashed(points, tuple(p * width / 72.0 * self.dpi * s
                                                                                for p in pattern))
                for part in parts:
                    draw.line(part.ravel().tolist(), fill=rgb(color), width=line_width, joint="curve")
                    if line_width > 2:  # round caps, as matplotlib's
                        radius = line_width / 2.0
                        for px, py in (part[0], part[-1]):
                            draw.ellipse((px - radius, py - radius, px + radius, py + radius), fill=rgb(color))
        for x, y, w, h, color, linewidth in self._frames:  # centred on the box's edge, as matplotlib strokes
            width = self._line_width(linewidth, s)
            half = width / 2.0 / (self.dpi * s)
            draw.rectangle(self._box(x - half, y - half, w + 2 * half, h + 2 * half, s), outline=rgb(color),
                           width=width)
        if s > 1:
            picture = picture.reduce(s)
        draw = ImageDraw.Draw(picture, "RGBA")
        for text in self._texts:
            self._draw_text(picture, draw, *text)
        pixels = np.asarray(picture, dtype=np.uint8)
        return RasterPicture(pixels, self.dpi, self.drawn_images, self.drawn_texts)

    def _box(self, x, y, w, h, s) -> tuple[float, float, float, float]:
        left, top = self._pixels(x, s), self._pixels(y, s)
        return left, top, max(left, self._pixels(x + w, s) - 1), max(top, self._pixels(y + h, s) - 1)

    def _paste_image(self, picture, rgba: np.ndarray, x, y, w, h, s) -> None:
        """The RGBA image scaled (nearest pixel) onto its box, alpha-blended."""
        from PIL import Image

        left, top = int(round(self._pixels(x, s))), int(round(self._pixels(y, s)))
        cols = max(1, int(round(self._pixels(x + w, s))) - left)
        rows = max(1, int(round(self._pixels(y + h, s))) - top)
        rgba = np.ascontiguousarray(rgba, dtype=np.uint8)
        if rgba.ndim == 2:
            rgba = np.repeat(rgba[..., None], 3, axis=2)
        mode = "RGBA" if rgba.shape[2] == 4 else "RGB"
        tile = Image.fromarray(rgba)  # RGB or RGBA from the last axis
        if tile.size != (cols, rows):
            tile = tile.resize((cols, rows), Image.Resampling.NEAREST)
        if mode == "RGBA":
            picture.paste(tile.convert("RGB"), (left, top), tile.getchannel("A"))
        else:
            picture.paste(tile, (left, top))

    def _draw_text(self, picture, draw, x, y, text, size, ha, va, color, weight, rotation) -> None:
        """One text block (lines aligned by ``ha``), anchored as matplotlib anchors it: the block's
        box aligned at (x, y) by ``ha``/``va``, in the text's own frame when rotated (matplotlib's
        rotation_mode "anchor")."""
        from PIL import Image, ImageDraw

        face = font(size, weight, self.dpi)
        ascent, descent = face.getmetrics()
        step = LINE_SPACING * (ascent + descent)
        lines = text.split("\n")
        widths = [face.getlength(line) for line in lines]
        block_w = max(widths, default=0.0)
        block_h = step * (len(lines) - 1) + ascent + descent
        fill = rgb(color)
        anchor_x = _share(ha, block_w)  # the anchor point, from the block's top-left corner
        anchor_y = step * (len(lines) - 1) + ascent if va == "baseline" else _share(va, block_h)
        if not rotation:
            left, top = self._pixels(x, 1) - anchor_x, self._pixels(y, 1) - anchor_y
            for number, (line, width) in enumerate(zip(lines, widths)):
                offset = _share(ha, block_w - width)
                draw.text((round(left + offset), round(top + number * step)), line, font=face, fill=fill, anchor="la")
            return
        # rotated: draw the block on its own mask, turn it, and place the anchor point
        margin = 2
        mask = Image.new("L", (int(math.ceil(block_w)) + 2 * margin, int(math.ceil(block_h)) + 2 * margin), 0)
        pen = ImageDraw.Draw(mask)
        for number, (line, width) in enumerate(zip(lines, widths)):
            pen.text((margin + _share(ha, block_w - width), margin + number * step), line, font=face, fill=255,
                     anchor="la")
        anchor_x, anchor_y = margin + anchor_x, margin + anchor_y
        turned = mask.rotate(rotation, expand=True, resample=Image.Resampling.BICUBIC)
        # where the anchor point went: rotation by `rotation` degrees counter-clockwise about the centre
        angle = math.radians(rotation)
        cx, cy = mask.size[0] / 2, mask.size[1] / 2
        dx, dy = anchor_x - cx, anchor_y - cy
        turned_x = turned.size[0] / 2 + dx * math.cos(angle) + dy * math.sin(angle)
        turned_y = turned.size[1] / 2 - dx * math.sin(angle) + dy * math.cos(angle)
        left = int(round(self._pixels(x, 1) - turned_x))
        top = int(round(self._pixels(y, 1) - turned_y))
        solid = Image.new("RGB", turned.size, fill[:3])
        picture.paste(solid, (left, top), turned)
