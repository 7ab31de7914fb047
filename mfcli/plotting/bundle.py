"""The standard set of pictures of a result, written into one folder (what ``mfcli unmix``
leaves beside ``result.h5`` unless ``--no-plots``).

Files: ``abundances_layer{L}.png`` (images only), ``endmembers_layer{L}.png`` for every layer,
``hierarchy.png`` (results with a hierarchy) and ``convergence.png`` (results with a history).
"""

from __future__ import annotations

import os
from pathlib import Path

from mfcli.errors import MfcliError
from mfcli.plotting.style import save_figure

BUNDLE_DPI = 120


def picture_plan(result) -> list[tuple[str, object]]:
    """(file name, function returning the Figure) for every picture that applies to ``result``."""
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.convergence import convergence_curves, convergence_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.tree import tree_figure

    plan: list[tuple[str, object]] = []
    for index in range(1, len(result.layers) + 1):
        if result.image_shape is not None:
            plan.append((f"abundances_layer{index}.png",
                         lambda index=index: abundance_figure(result, layer=index, dpi=BUNDLE_DPI)))
        plan.append((f"endmembers_layer{index}.png", lambda index=index: endmember_figure(result, index, dpi=BUNDLE_DPI)))
    if all(layer.assignments is not None for layer in result.layers):
        plan.append(("hierarchy.png", lambda: tree_figure(result, dpi=BUNDLE_DPI)))
    if any(convergence_curves(result)):
        plan.append(("convergence.png", lambda: convergence_figure(result, dpi=BUNDLE_DPI)))
    return plan


def write_pictures(result, folder: str | os.PathLike, force: bool = False) -> tuple[list[Path], list[str]]:
    """Write every picture of ``result`` into ``folder``; returns (written paths, one-line notes for
    pictures that could not be drawn). A picture that cannot be drawn never stops the others."""
    folder = Path(folder)
    written: list[Path] = []
    skipped: list[str] = []
    for name, make in picture_plan(result):
        try:
            written.append(save_figure(make(), folder / name, force=force))
        except MfcliError as exc:
            skipped.append(f"{name}: {exc}")
    return written, skipped
