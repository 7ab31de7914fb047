"""mfcli info: what a data or result file holds."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import data_options, input_argument, json_option, load_input


@click.command(short_help="Describe a data or result file: arrays, shapes, ranges, detected layout.")
@input_argument
@data_options
@json_option
def command(input_spec: str, as_json: bool, **data_opts) -> None:
    """Describe INPUT: every variable or dataset with shape, dtype, value range and NaN/Inf count,
    then how mfcli reads it (the chosen array, layout, image shape and pixel order).

    A result file written by mfcli is summarised instead (model, ranks, errors).
    """
    import numpy as np

    from mfcli.io.load import describe_file, parse_spec
    from mfcli.io.result import is_result_file

    path = parse_spec(input_spec)[0]
    if path not in ("-",) and not path.startswith("sample:") and is_result_file(path):
        document = _describe_result(path)
        if as_json:
            console.emit_json(document)
        else:
            _print_result(document)
        return

    if input_spec == "-":
        dataset = load_input(input_spec, **data_opts)
        listing = {"source": "-", "format": "csv/npy", "variables": [
            {"name": "data", "shape": list(dataset.X.shape), "dtype": str(dataset.X.dtype)}]}
    else:
        listing = describe_file(input_spec, data_opts.get("input_format"))
        dataset = load_input(input_spec, **data_opts)
    X = dataset.X
    finite = np.isfinite(X)
    n_nonfinite = int(X.size - np.count_nonzero(finite))
    values = X[finite] if n_nonfinite else X
    document = {
        **listing,
        "data": {
            "variable": dataset.variable,
            "n_features": dataset.n_features,
            "n_samples": dataset.n_samples,
            "shape": [dataset.n_features, dataset.n_samples],
            "dtype": str(X.dtype),
            "layout": dataset.layout,
            "orientation": "features x samples (bands x pixels)",
            "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
            "pixel_order": dataset.pixel_order,
            "scale": dataset.scale,
            "wavelength_range_nm": [float(dataset.wavelengths.min()), float(dataset.wavelengths.max())]
            if dataset.wavelengths is not None else None,
            "min": float(values.min()) if values.size else None,
            "max": float(values.max()) if values.size else None,
            "nan": int(np.count_nonzero(np.isnan(X))) if X.dtype.kind == "f" else 0,
            "nonfinite": n_nonfinite,
            "negative": int(np.count_nonzero(values < 0)),
            "sha256": dataset.sha256,
            "notes": dataset.notes,
        },
    }
    if as_json:
        console.emit_json(document)
    else:
        _print_data(document)


def _print_data(document: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{document['source']} ({document['format']})")
    for column in ("variable", "shape", "dtype", "min", "max", "NaN/Inf"):
        table.add_column(column)
    for v in document["variables"]:
        table.add_row(v["name"], "x".join(map(str, v["shape"])), v["dtype"],
                      f"{v['min']:.6g}" if "min" in v else "", f"{v['max']:.6g}" if "max" in v else "",
                      str(v.get("nonfinite", "")))
    console.print_table(table)
    d = document["data"]
    image = f"image {d['image_shape'][0]}x{d['image_shape'][1]}, pixel order {d['pixel_order']}" \
        if d["image_shape"] else "no image shape"
    console.info(f"Data: '{d['variable']}' read as {d['n_features']} x {d['n_samples']} ({d['orientation']}), "
                 f"layout {d['layout']}, {image}")
    if d["scale"] != 1.0:
        console.info(f"Scale: divided by {d['scale']:g}")
    if d["wavelength_range_nm"]:
        console.info(f"Wavelengths: {d['wavelength_range_nm'][0]:.1f}-{d['wavelength_range_nm'][1]:.1f} nm")
    if d["nonfinite"]:
        console.warn(f"{d['nonfinite']} NaN/Inf values ({d['nan']} NaN)")
    for note in d["notes"]:
        console.info(f"Note: {note}")


def _describe_result(path: str) -> dict:
    from mfcli.io.result import read_result

    result = read_result(path)
    return {
        "source": path,
        "format": "mfcli-result",
        "model": result.model,
        "ranks": result.ranks,
        "relative_error": result.relative_error,
        "layers": [
            {"layer": i, "rank": layer.rank, "W": list(layer.W.shape), "H": list(layer.H.shape),
             "relative_error": layer.relative_error}
            for i, layer in enumerate(result.layers, start=1)
        ],
        "input": {k: v for k, v in result.input.items() if k not in ("wavelengths", "band_indices")},
        "params": result.params,
        "provenance": result.provenance,
    }


def _print_result(document: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{document['source']}: {document['model']} result")
    for column in ("layer", "rank", "W", "H", "relative error"):
        table.add_column(column)
    for layer in document["layers"]:
        error = layer["relative_error"]
        table.add_row(str(layer["layer"]), str(layer["rank"]), "x".join(map(str, layer["W"])),
                      "x".join(map(str, layer["H"])), f"{error:.6f}" if error is not None else "")
    console.print_table(table)
    console.info(f"Input: {document['input'].get('source')} (sha256 {document['input'].get('sha256')})")
