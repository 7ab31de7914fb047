"""mfcli info: what a data or result file holds."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import data_options, input_argument, json_option


@click.command(short_help="Describe a data or result file: arrays, shapes, ranges, detected layout.")
@input_argument
@data_options
@json_option
def command(input_spec: str, as_json: bool, **data_opts) -> None:
    """Describe INPUT: every variable or dataset with shape, dtype, value range and counts of NaN,
    Inf and negative values, then how mfcli reads it (the chosen array, layout, image shape,
    pixel order, scale, wavelengths and where they come from): a table on stdout.

    \b
    JSON keys (--json): source, format, variables[{name, shape, dtype, min, max, nan, inf,
    nonfinite, negative; a sparse matrix also sparse (its storage: csr, csc...), nnz, density}],
    data{variable, n_features, n_samples, shape, dtype, layout, orientation, image_shape,
    pixel_order, scale, wavelength_range_nm, wavelengths_source, has_band_indices, min, max,
    nan, inf, nonfinite, negative, sha256, notes, georeference, nodata, nodata_pixels, sparse}.
    sparse: null unless INPUT is a scipy.sparse .npz read as a matrix (factorize keeps it
    sparse): {format (csr, csc...), nnz (stored values), density (nnz / size)}. georeference
    (null without one): {crs (name), epsg, units, pixel_size [width, height], north_up,
    transform [a, b, c, d, e, f], crs_wkt}; nodata: the file's nodata value (a number, "nan",
    or null), nodata_pixels: pixels left out as nodata (the
    value ranges and counts are of the other pixels).

    A result file written by mfcli is summarised instead (model, ranks, errors); its JSON
    keys: source, format ("mfcli-result"), model, ranks, relative_error, layers[{layer, rank,
    W, H (shapes), relative_error}], input, georeference (as above, or null), params,
    provenance.
    """
    import numpy as np

    from mfcli.models.matrix import is_sparse
    from mfcli.io.load import (_sparse_dataset, apply_plan, describe_container, describe_data, open_spec,
                               sparse_counts, value_counts)
    from mfcli.io.result import result_path_of

    path = result_path_of(input_spec)
    if path is not None:
        document = _describe_result(path)
        if as_json:
            console.emit_json(document)
        else:
            _print_result(document)
        return

    container, source, spec_var, digest = open_spec(input_spec, data_opts.get("input_format"))
    with container:  # every array read once: the data array and the ground truth beside it serve both
        if getattr(container, "sparse", False) and (data_opts.get("layout") or "auto") in ("auto", "matrix") \
                and data_opts.get("image_shape") is None:  # as factorize reads it: never densified
            dataset = _sparse_dataset(container, source, data_opts.get("variable") or spec_var,
                                      bool(data_opts.get("transpose")), None)
            listing = describe_container(container, source)
        else:
            dataset, plan = describe_data(
                container, source, data_opts.get("variable") or spec_var, layout=data_opts.get("layout") or "auto",
                order=data_opts.get("pixel_order"), transpose=bool(data_opts.get("transpose")),
                image_shape=data_opts.get("image_shape"))
            raw = np.asarray(container.read(plan.variable))
            listing = describe_container(container, source, already_read={**dataset.extras, plan.variable: raw})
            dataset.X, dataset.valid_pixels = apply_plan(raw, plan)
    dataset.sha256 = digest
    if data_opts.get("wavelengths_path"):
        from mfcli.io.wavelengths import apply_wavelengths_file

        apply_wavelengths_file(dataset, data_opts["wavelengths_path"])
    sparse = is_sparse(dataset.X)
    counts = sparse_counts(dataset.X) if sparse else value_counts(dataset.X)
    storage = {"format": counts.pop("sparse"), "nnz": counts.pop("nnz"), "density": counts.pop("density")} \
        if sparse else None
    document = {
        **listing,
        "data": {
            "variable": dataset.variable,
            "n_features": dataset.n_features,
            "n_samples": dataset.n_samples,
            "shape": [dataset.n_features, dataset.n_samples],
            "dtype": str(dataset.X.dtype),
            "layout": dataset.layout,
            "orientation": "features x samples (bands x pixels)",
            "image_shape": list(dataset.image_shape) if dataset.image_shape else None,
            "pixel_order": dataset.pixel_order,
            "scale": dataset.scale,
            "wavelength_range_nm": [float(dataset.wavelengths.min()), float(dataset.wavelengths.max())]
            if dataset.wavelengths is not None else None,
            "wavelengths_source": dataset.wavelengths_source,
            "has_band_indices": dataset.band_indices is not None,
            **counts,
            "sha256": dataset.sha256,
            "notes": dataset.notes,
            "georeference": dataset.georeference.describe() if dataset.georeference is not None else None,
            "nodata": _nodata_json(dataset.nodata),
            "nodata_pixels": dataset.n_nodata_pixels,
            "sparse": storage,
        },
    }
    if as_json:
        console.emit_json(document)
    else:
        _print_data(document)


def _print_data(document: dict) -> None:
    from rich.table import Table

    table = Table(title=f"{document['source']} ({document['format']})")
    for column in ("variable", "shape", "dtype", "min", "max", "NaN", "Inf", "negative"):
        table.add_column(column)
    for v in document["variables"]:
        table.add_row(v["name"], "x".join(map(str, v["shape"])), v["dtype"], _number(v.get("min")),
                      _number(v.get("max")), str(v.get("nan", "")), str(v.get("inf", "")), str(v.get("negative", "")))
    console.listing(table)
    d = document["data"]
    image = f"image {d['image_shape'][0]}x{d['image_shape'][1]}, pixel order {d['pixel_order']}" \
        if d["image_shape"] else "no image shape"
    console.listing(f"Data: '{d['variable']}' read as {d['n_features']} x {d['n_samples']} ({d['orientation']}), "
                 f"layout {d['layout']}, {image}")
    if d["georeference"] is not None:
        console.listing(f"Georeference: {_georeference_line(d['georeference'])}")
    if d["nodata"] is not None:
        console.listing(f"Nodata: value {d['nodata']}, {d['nodata_pixels']} pixels left out of the data")
    if d["sparse"] is not None:
        console.listing(f"Sparse: {d['sparse']['format'].upper()}, {d['sparse']['nnz']} stored values "
                        f"({100 * d['sparse']['density']:.3g}% dense); factorize reads it without densifying")
    if d["scale"] != 1.0:
        console.listing(f"Scale: divided by {d['scale']:g}")
    if d["wavelength_range_nm"]:
        console.listing(f"Wavelengths: {d['wavelength_range_nm'][0]:.1f}-{d['wavelength_range_nm'][1]:.1f} nm "
                     f"(from {d['wavelengths_source']})")
    console.listing(f"Values: {_number(d['min'])} to {_number(d['max'])}; {d['nan']} NaN, {d['inf']} Inf, "
                 f"{d['negative']} negative")
    if d["nonfinite"]:
        console.warn(f"{d['nonfinite']} NaN/Inf values ({d['nan']} NaN, {d['inf']} Inf): factorization "
                     "commands refuse them")
    for note in d["notes"]:
        console.listing(f"Note: {note}")


def _number(value) -> str:
    return "" if value is None else f"{value:.6g}"


def _nodata_json(value: float | None):
    """The nodata value for JSON: a number, "nan" (JSON has no NaN), or None."""
    if value is None:
        return None
    return "nan" if value != value else value


def _georeference_line(info: dict) -> str:
    """``WGS 84 / UTM zone 33N (EPSG:32633), pixels 30 x 30 metre``, from Georeference.describe()."""
    from mfcli.georeference import Georeference

    return Georeference(info["crs_wkt"], tuple(info["transform"])).summary()


def _describe_result(path: str) -> dict:
    from mfcli.io.result import read_result

    result = read_result(path)
    georeference = result.georeference
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
        "input": {k: v for k, v in result.input.items()
                  if k not in ("wavelengths", "band_indices", "valid_pixels", "georeference")},
        "georeference": georeference.describe() if georeference is not None else None,
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
    console.listing(table)
    console.listing(f"Input: {document['input'].get('source')} (sha256 {document['input'].get('sha256')})")
    if document["georeference"] is not None:
        console.listing(f"Georeference: {_georeference_line(document['georeference'])}")
    if document["input"].get("nodata_pixels"):
        console.listing(f"Nodata: {document['input']['nodata_pixels']} pixels of the image left out of the data")
