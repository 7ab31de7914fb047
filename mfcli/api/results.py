"""Results: reading and writing them (:func:`load_result`, :func:`save_result`), the folder and
pictures of ``mfcli unmix`` (:func:`write_unmix_folder`, :func:`save_pictures`), and their scores
against ground truth (:func:`evaluate`, ``mfcli evaluate``)."""

from __future__ import annotations

import os
from pathlib import Path

from mfcli.api.common import SILENT, Reporter, as_specs
from mfcli.api.data import as_dataset, densify, open_data


def load_result(path: str | os.PathLike):
    """The :class:`~mfcli.result.Result` of a result file (``result.h5`` of an unmix folder
    too: give the folder or the file)."""
    from mfcli.io.result import read_result

    path = Path(path)
    if path.is_dir() and (path / "result.h5").exists():
        path = path / "result.h5"
    return read_result(path)


def save_result(result, path: str | os.PathLike, force: bool = False) -> Path:
    """Write ``result`` to the HDF5 file ``path`` atomically (a temporary file renamed into
    place); an existing file is replaced only with ``force``. Same as ``result.save(path)``."""
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import write_result

    check_output_path(os.fspath(path), force)
    return write_result(result, path, force=force)


UNMIX_FILES = ("result.h5", "hierarchy.json", "hierarchy.nwk", "hierarchy.dot")


def write_unmix_folder(result, folder: str | os.PathLike, *, pictures=True, force: bool = False,
                       data=None, reporter: Reporter | None = None) -> list[str]:
    """Write the folder ``mfcli unmix`` writes, atomically (built beside it, renamed into place;
    an existing folder is replaced only with ``force``): result.h5, the hierarchy as
    hierarchy.json, .nwk and .dot, and unless ``pictures=False`` the pictures of
    :func:`save_pictures`, shared with a forked process that starts on them while the result is written
    (or those of ``pictures(result, folder)``, a function returning the names, called after).
    ``data``: the Dataset of a stream/dask run whose abundances are computed block by block
    into result.h5 as it is written (no pictures then: the maps are not held in memory).
    Returns the names of the files written."""
    import json

    from mfcli.hierarchy import to_dot, to_json_dict, to_newick, tree_from_result
    from mfcli.io.atomic import atomic_directory, check_output_path
    from mfcli.io.result import result_writer

    reporter = reporter or SILENT
    folder = os.fspath(folder)
    check_output_path(folder, force, kind="folder", marker="result.h5")
    engine_data = data.X if data is not None and hasattr(getattr(data, "X", None), "scan") else None
    tree = tree_from_result(result)
    with atomic_directory(folder, force=force, marker="result.h5") as where:
        job = None
        if pictures is True and engine_data is None:
            # the default pictures: a forked process starts drawing them while this one writes the result
            from mfcli.plotting.bundle import start_pictures

            job = start_pictures(result, where)
        try:
            with result_writer(result, where / "result.h5") as out:
                pending = [layer.attrs.get("abundances") for layer in result.layers
                           if layer.abundances is None and layer.attrs.get("abundances") not in (None, "none")]
                if engine_data is not None and pending:
                    _write_abundances_by_blocks(out, result, engine_data, pending[0], reporter)
            (where / "hierarchy.json").write_text(json.dumps(to_json_dict(tree)) + "\n")
            (where / "hierarchy.nwk").write_text(to_newick(tree) + "\n")
            (where / "hierarchy.dot").write_text(to_dot(tree))
        except BaseException:
            if job is not None:
                job.cancel()
            raise
        if engine_data is not None and pictures:
            reporter.info(f"No pictures with --engine {engine_data.engine} (the abundance maps are not held in "
                          f"memory); draw them from {folder}/result.h5 with mfcli plot-abundances, "
                          "plot-endmembers, plot-tree, plot-convergence")
        if job is not None:
            written, skipped = job.finish()
            _report_skipped(skipped, reporter)
            drawn = [path.name for path in written]
        else:
            drawn = pictures(result, where) if callable(pictures) and engine_data is None else []
    return [*UNMIX_FILES, *drawn]


def _write_abundances_by_blocks(out, result, data, method: str, reporter: Reporter) -> None:
    """Soft abundances of every layer's endmembers for X on a stream/dask engine: one pass over
    X, each block of columns solved (on a Dask worker where the block is) and written into the
    result file being written before the next, so no r x n abundance map is ever held whole."""
    import numpy as np

    from mfcli.engines import map_columns
    from mfcli.models.deep import soft_abundances

    bases = [np.asarray(layer.data_basis, dtype=data.dtype) for layer in result.layers]

    def solve(block):
        return [soft_abundances(basis, block, method) for basis in bases]

    writers = [out.layer_array(index, "abundances", (basis.shape[1], data.shape[1]), data.dtype)
               for index, basis in enumerate(bases, start=1)]
    with reporter.progress(f"abundances ({method})", data.shape[1]) as progress:
        for start, stop, maps in map_columns(data, solve):
            for writer, values in zip(writers, maps):
                writer.write(start, stop, values)
            progress(stop)


def save_pictures(result, folder: str | os.PathLike, *, reporter: Reporter | None = None) -> list[str]:
    """The pictures ``mfcli unmix`` draws, into the existing folder ``folder``: per-layer
    abundance maps and endmember spectra, the hierarchy and the convergence plot
    (:func:`mfcli.plotting.bundle.write_pictures`). A picture that does not apply (no image
    shape: no maps) is skipped with a note. Returns the file names written."""
    from mfcli.plotting.bundle import write_pictures

    written, skipped = write_pictures(result, Path(folder))
    _report_skipped(skipped, reporter or SILENT)
    return [path.name for path in written]


def _report_skipped(skipped: list[str], reporter: Reporter) -> None:
    for note in skipped:
        reporter.detail(f"  no picture {note}")


# -- evaluate ----------------------------------------------------------------------------------

def evaluate(result, truth, layer: int | None = None, *, match: str | None = None, abundances: str = "auto",
             data=None, library=None, wavelengths=None, top: int = 3, reporter: Reporter | None = None) -> dict:
    """Score a result (a Result or a result file) against ground truth (``truth``: a spec or a
    list of two: endmembers and abundances), as ``mfcli evaluate --json``: the same dict
    (mean_sad, sad, armse, sre, matching, ...; :func:`mfcli.unmixing.evaluate.evaluate_unmixing`).
    ``layer``: 1-based layer of a deep result (default: the last). ``match``: sad or abundance.
    ``abundances``: auto, stored or fcls. ``data``: the data the result came from (default:
    its recorded input), for FCLS abundances. ``library``: a spectral library to label the
    endmembers with (``wavelengths``: the bands' wavelengths where the result has none)."""
    import numpy as np

    from mfcli.errors import ParameterError
    from mfcli.io.truth import load_truth_for_result
    from mfcli.summary import JSON_INDEX_BASE
    from mfcli.unmixing.evaluate import evaluate_unmixing

    reporter = reporter or SILENT
    if abundances not in ("auto", "stored", "fcls"):
        raise ParameterError(f"abundances must be auto, stored or fcls, not {abundances!r}")
    if match not in (None, "sad", "abundance"):
        raise ParameterError(f"match must be sad or abundance, not {match!r}")
    path = None
    if isinstance(result, (str, os.PathLike)):
        path = os.fspath(result)
        result = load_result(path)
    layer = -1 if layer is None else int(layer)
    chosen = result.layer(layer)
    truth_specs = as_specs(truth)
    ground = load_truth_for_result(truth_specs, result, layer)
    for note in ground.notes:
        reporter.info(f"  {note}")
    E_est = np.asarray(chosen.data_basis, dtype=np.float64)
    A_est, abundances_from, dataset = _abundances(result, chosen, abundances, data,
                                                  need=ground.abundances is not None, reporter=reporter)
    if abundances_from:
        reporter.info(f"  estimated abundances: {abundances_from}")
    document = evaluate_unmixing(E_est, A_est, ground.endmembers, ground.abundances, match=match,
                                 names=ground.material_names())
    document["abundances_from"] = abundances_from
    document["relative_error"] = chosen.relative_error if chosen.relative_error is not None \
        else result.relative_error
    document["fcls_relative_error"] = _fcls_relative_error(E_est, A_est, dataset, abundances_from)
    document["truth"] = {**ground.sources, "notes": ground.notes,
                         "endmembers_scaled_to_max_one": ground.endmembers_scaled_to_max_one}
    document["result"] = {"path": path, "model": result.model, "layer": result.layer_number(layer),
                          "rank": chosen.rank}
    document["index_base"] = JSON_INDEX_BASE
    if library is not None:
        document["library"] = _library_labels(library, result, E_est, top, wavelengths, reporter)
    return document


def _load_data(result, data, reporter: Reporter):
    """The data behind ``result``: ``data``, else its recorded input if it can still be read."""
    if data is not None and not isinstance(data, (str, os.PathLike)):
        dataset = as_dataset(data)
        dataset.X = densify(dataset.X, reporter, "FCLS")
        return dataset
    spec = os.fspath(data) if data is not None else result.input.get("source")
    if not spec:
        return None
    if data is None and not (spec.startswith("sample:") or os.path.exists(spec)):
        return None
    variable = result.input.get("variable") if data is None else None
    dataset = open_data(spec, variable=variable, reporter=reporter, keep_sparse=False)
    if data is None:
        reporter.detail(f"  data from the result's recorded input {spec}")
    return dataset


def _abundances(result, chosen, source: str, data, need: bool, reporter: Reporter):
    """(abundances r x n, how they were obtained, dataset or None)."""
    import numpy as np

    from mfcli.errors import DataError
    from mfcli.models.nnls import fcls

    if chosen.abundances is not None and source != "fcls":
        return np.asarray(chosen.abundances, dtype=np.float64), "the layer's stored abundances", None
    coefficients = np.asarray(chosen.data_coefficients, dtype=np.float64)
    kind = (chosen.attrs or {}).get("coefficients")
    sums_to_one = coefficients.size and np.abs(coefficients.sum(axis=0) - 1).max() <= 1e-3 \
        and coefficients.min() >= -1e-6
    if source == "stored" or (source == "auto" and (kind in ("fcls", "nnls") or sums_to_one)):
        how = f"the layer's coefficients ({kind})" if kind else "the layer's coefficients"
        return coefficients, how, None
    dataset = _load_data(result, data, reporter) if (need or source == "fcls") else None
    if dataset is None:
        if source == "fcls":
            raise DataError("--abundances fcls needs the data: give --data INPUT (the result's recorded input "
                            f"{result.input.get('source')!r} cannot be read)")
        return coefficients, "the layer's coefficients (they do not sum to one; give --data for FCLS)", None
    basis = np.asarray(chosen.data_basis)
    if dataset.X.shape[0] != basis.shape[0] or dataset.X.shape[1] != coefficients.shape[1]:
        raise DataError(f"the data are {dataset.X.shape[0]} x {dataset.X.shape[1]} but the result's layer has "
                        f"{basis.shape[0]} bands and {coefficients.shape[1]} pixels; give the matching --data")
    return np.asarray(fcls(basis, dataset.X), dtype=np.float64), "FCLS of the data for the layer's endmembers", dataset


def _fcls_relative_error(E_est, A_est, dataset, abundances_from):
    """||X - E A||_F / ||X||_F for abundances computed here by FCLS, else None."""
    from mfcli.metrics import relative_error

    if dataset is not None and abundances_from and abundances_from.startswith("FCLS"):
        return relative_error(dataset.X, E_est, A_est)
    return None


def _library_labels(library_spec, result, E_est, top: int, wavelengths_path, reporter: Reporter):
    from mfcli.errors import DataError
    from mfcli.io.library import read_library
    from mfcli.io.wavelengths import check_band_count, read_wavelengths
    from mfcli.unmixing.library import closest_library_spectra

    if wavelengths_path:
        wavelengths = check_band_count(read_wavelengths(os.fspath(wavelengths_path)), E_est.shape[0],
                                       f"--wavelengths {wavelengths_path}")
    elif result.input.get("wavelengths") is not None and not result.input.get("wavelengths_nominal"):
        wavelengths = result.input.get("wavelengths")
    else:
        raise DataError("the result's input has no wavelengths, so library spectra cannot be resampled to its bands; "
                        "give the bands' wavelengths with --wavelengths FILE (nm or micrometres, one per band)")
    library = read_library(os.fspath(library_spec))
    reporter.info(f"  library {library.source}: {len(library)} spectra, "
                  f"{library.wavelengths_nm.min():.0f}-{library.wavelengths_nm.max():.0f} nm")
    labels = closest_library_spectra(E_est, wavelengths, library, top=top)
    return [[{"name": item["name"], "sad": item["sad"]} for item in row] for row in labels]
