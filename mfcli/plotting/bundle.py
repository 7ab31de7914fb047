"""The standard set of pictures of a result, written into one folder (what ``mfcli unmix``
leaves beside ``result.h5`` unless ``--no-plots``).

Files: ``abundances_layer{L}.png`` (images only), ``endmembers_layer{L}.png`` for every layer,
``hierarchy.png`` (results with a hierarchy) and ``convergence.png`` (results with a history).

Speed: the pictures are drawn with Pillow (:mod:`mfcli.plotting.raster`: the same layout as the
matplotlib figures of the plot-* commands, without importing matplotlib). They are independent,
and drawing holds Python's lock, so where the system can fork (Linux) and has a second core they are
shared between this process and a forked copy of it, which shares the result without copying
or pickling it and writes its own files: each takes the next picture, costliest first, when it
is free (:class:`mfcli.parallel.WorkQueue`), the copy from the start and this process once it
has written the result file. In each process a picture is drawn on the main thread and its PNG
compressed and written on a second one (:mod:`mfcli.io.deflate` releases the lock while
compressing), overlapping the next drawing.
``benchmarks/bench_unmix.py`` prints the time of each picture and of the whole set.
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from mfcli.errors import MfcliError, OutputError

BUNDLE_DPI = 110
# Relative cost of drawing and writing each kind of picture with Pillow, to draw the costliest
# first (the last ones taken are then short); an abundance picture costs "abundances" plus
# MAP_COST a map.
# From the CPU time of each picture of the Urban stand-in's four layers, drawing plus writing,
# median of 7 (timed outside benchmarks/; bench_unmix prints each): endmembers 11-14 ms (the
# unit), hierarchy 89 ms, convergence 15 ms, abundance maps 18, 24, 33 and 41 ms at ranks 2, 4, 6, 7.
COSTS = {"hierarchy": 7.0, "convergence": 1.2, "abundances": 1.0, "endmembers": 1.0}
MAP_COST = 0.3


def picture_cost(name: str, result) -> float:
    """The drawing cost of the picture ``name`` of ``result``, in units of :data:`COSTS`."""
    kind = name.split("_")[0].split(".")[0]
    cost = COSTS.get(kind, 1.0)
    if kind == "abundances":
        layer = result.layers[int(name.split("layer")[1].split(".")[0]) - 1]
        cost += MAP_COST * layer.rank
    return cost


def picture_plan(result, dpi: float = BUNDLE_DPI) -> list[tuple[str, object]]:
    """(file name, function returning the Figure) for every picture that applies to ``result``."""
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.convergence import convergence_curves, convergence_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.tree import tree_figure

    plan: list[tuple[str, object]] = []
    for index in range(1, len(result.layers) + 1):
        if result.image_shape is not None:
            plan.append((f"abundances_layer{index}.png",
                         lambda index=index: abundance_figure(result, layer=index, dpi=dpi)))
        plan.append((f"endmembers_layer{index}.png", lambda index=index: endmember_figure(result, index, dpi=dpi)))
    if all(layer.assignments is not None for layer in result.layers):
        plan.append(("hierarchy.png", lambda: tree_figure(result, dpi=dpi)))
    if any(convergence_curves(result)):
        plan.append(("convergence.png", lambda: convergence_figure(result, dpi=dpi)))
    return plan


def _write_png(pixels, dpi: float, path: Path, force: bool) -> float:
    """Compress and write one picture atomically; returns the seconds it took."""
    from mfcli.io.atomic import atomic_file
    from mfcli.plotting.style import encode_png

    started = time.perf_counter()
    with atomic_file(path, force=force) as tmp:
        with open(tmp, "wb") as handle:
            encode_png(pixels, handle, dpi)
    return time.perf_counter() - started


def _draw_and_write(plan, folder: Path, force: bool) -> tuple[list[str], list[str], dict[str, dict[str, float]]]:
    """Draw the pictures of ``plan`` and write them into ``folder``: (written names, notes on the
    pictures that do not apply, {name: {"draw": s, "write": s}})."""
    from concurrent.futures import ThreadPoolExecutor

    from mfcli.plotting.raster import raster_pictures
    from mfcli.plotting.style import render_rgb

    written: list[str] = []
    skipped: list[str] = []
    timings: dict[str, dict[str, float]] = {}
    pending = []
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="mfcli-png") as writer:
        for name, make in plan:
            started = time.perf_counter()
            try:
                with raster_pictures():
                    pixels, dpi = render_rgb(make())
            except MfcliError as exc:
                skipped.append(f"{name}: {exc}")
                continue
            timings[name] = {"draw": time.perf_counter() - started}
            pending.append((name, writer.submit(_write_png, pixels, dpi, folder / name, force)))
        for name, future in pending:
            timings[name]["write"] = future.result()  # re-raises a failed write
            written.append(name)
    return written, skipped, timings


class PictureJob:
    """The pictures of ``result`` being drawn into ``folder`` (:func:`start_pictures`): where the
    system can fork, a forked copy of this process starts drawing at once
    (:class:`mfcli.parallel.ForkedCall`), so this process can do other work (write the result
    file) before :meth:`finish` draws what is left, taking turns with the copy."""

    def __init__(self, result, folder: str | os.PathLike, force: bool = False, parallel: bool | None = None):
        from mfcli.parallel import ForkedCall, WorkQueue, can_fork

        self.folder = Path(folder)
        self.force = force
        self.plan = picture_plan(result)
        self.forked = None
        if parallel is None:
            parallel = can_fork() and len(self.plan) >= 4
        self.queue = None
        self.mine = self.plan
        if parallel:
            costs = {name: picture_cost(name, result) for name, _ in self.plan}
            self.queue = WorkQueue(sorted(self.plan, key=lambda item: -costs[item[0]]))
            self.mine = self.queue
            self.forked = ForkedCall(_draw_and_write, self.queue, self.folder, force, wrap_error=_picture_error,
                                     silent=lambda: OutputError(
                                         "the process drawing half of the pictures ended without a word; rerun "
                                         "with --no-plots and draw them with the plot-* commands"))

    def finish(self, timings: dict[str, dict[str, float]] | None = None) -> tuple[list[Path], list[str]]:
        """Draw the pictures left (taking turns with the forked copy), wait for the copy; returns
        (written paths, one-line notes for pictures that could not be drawn)."""
        try:
            written, skipped, times = _draw_and_write(self.mine, self.folder, self.force)
        except BaseException:
            self.cancel()
            raise
        finally:
            if self.queue is not None:
                self.queue.close()
        if self.forked is not None:
            their_written, their_skipped, their_times = self.forked.result()
            order = {name: position for position, (name, _) in enumerate(self.plan)}
            written = sorted(written + their_written, key=order.__getitem__)
            skipped = skipped + their_skipped
            times = {**times, **their_times}
        if timings is not None:
            timings.update(times)
        return [self.folder / name for name in written], skipped

    def cancel(self) -> None:
        """Stop the forked process, if any (the caller is failing: its folder is discarded)."""
        if self.forked is not None:
            self.forked.cancel()
        if self.queue is not None:
            self.queue.close()


def _picture_error(exc: BaseException) -> OutputError:
    return OutputError(f"a picture could not be drawn: {type(exc).__name__}: {exc}")


def start_pictures(result, folder: str | os.PathLike, force: bool = False, parallel: bool | None = None) -> PictureJob:
    """Start drawing every picture of ``result`` into ``folder`` (:class:`PictureJob`; call its
    ``finish()``)."""
    return PictureJob(result, folder, force, parallel)


def write_pictures(result, folder: str | os.PathLike, force: bool = False,
                   timings: dict[str, dict[str, float]] | None = None,
                   parallel: bool | None = None) -> tuple[list[Path], list[str]]:
    """Write every picture of ``result`` into ``folder``; returns (written paths, one-line notes for
    pictures that could not be drawn). A picture that cannot be drawn never stops the others.
    ``timings``, if given, receives per file name the seconds spent drawing ("draw") and
    compressing and writing ("write", on a second thread). ``parallel``: share the pictures
    with a forked process (default: where :func:`mfcli.parallel.can_fork`)."""
    return start_pictures(result, folder, force, parallel).finish(timings)
