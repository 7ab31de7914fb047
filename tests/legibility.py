"""What a picture shows in words: every text drawn, with its box in pixels, and the problems a
reader would see: texts cut at the picture's edges, texts drawn over each other, and an axis
that repeats a tick label.

Texts are recorded while the figure is drawn (``matplotlib.text.Text.draw`` wrapped), so only
the texts that are really drawn count, whatever made them (a layout by hand, an axes' ticks,
a legend).
"""

from __future__ import annotations

from collections import defaultdict


def drawn_texts(figure) -> list[tuple[str, object, object]]:
    """(text, its box in display pixels, the Text artist) of every non-empty text drawn."""
    from matplotlib.text import Text

    records = []
    original = Text.draw

    def recording(self, renderer):
        original(self, renderer)
        if self.get_visible() and self.get_text().strip():
            records.append((self.get_text(), self.get_window_extent(renderer), self))

    Text.draw = recording
    try:
        figure.canvas.draw()
    finally:
        Text.draw = original
    return records


def _tick_groups(figure, records) -> dict[object, list[str]]:
    """Tick labels grouped by the axis they belong to: a ``gid`` naming the axis (pictures drawn
    by hand) or the matplotlib Axis whose tick labels they are."""
    owner = {}
    for ax in figure.axes:
        for axis in (ax.xaxis, ax.yaxis):
            for tick in axis.get_major_ticks() + axis.get_minor_ticks():
                for label in (tick.label1, tick.label2):
                    owner[id(label)] = id(axis)
    groups: dict[object, list[str]] = defaultdict(list)
    for text, _, artist in records:
        gid = artist.get_gid()
        key = gid if gid and ("tick" in gid or "cbar" in gid) else owner.get(id(artist))
        if key is not None:
            groups[key].append(text)
    return groups


def legibility_problems(figure, tolerance: float = 1.0) -> list[str]:
    """One line per problem: a text outside the picture, two texts overlapping (by more than
    ``tolerance`` pixels both ways), or an axis repeating a tick label."""
    records = drawn_texts(figure)
    width, height = figure.bbox.width, figure.bbox.height
    problems = []
    for text, box, _ in records:
        if box.x0 < -tolerance or box.y0 < -tolerance or box.x1 > width + tolerance or box.y1 > height + tolerance:
            problems.append(f"clipped: {text!r} at {tuple(round(v) for v in box.extents)} in {width:.0f}x{height:.0f}")
    for i, (text_a, a, _) in enumerate(records):
        for text_b, b, _ in records[i + 1:]:
            overlap_x = min(a.x1, b.x1) - max(a.x0, b.x0)
            overlap_y = min(a.y1, b.y1) - max(a.y0, b.y0)
            if overlap_x > tolerance and overlap_y > tolerance:
                problems.append(f"overlap: {text_a!r} and {text_b!r}")
    for key, labels in _tick_groups(figure, records).items():
        repeated = sorted({label for label in labels if labels.count(label) > 1})
        if repeated:
            problems.append(f"repeated tick labels {repeated} on one axis")
    return problems


def all_text(figure) -> str:
    """Every text drawn, one per line."""
    return "\n".join(text for text, _, _ in drawn_texts(figure))
