"""Per-pixel maps of a result as images a GIS opens: GeoTIFF or ENVI, in the input's
georeference.

A map factor has one value per pixel for each component: soft ``abundances``, data-space
``coefficients`` (or ``H`` where its columns are the pixels), or hard ``assignments`` (the
cluster of every pixel, composed down the layers of a hierarchy). Float maps are one band per
component, named by the component's label where known, else ``#1..#k``; the input's nodata
pixels are NaN, declared as nodata. Cluster maps are one band of unsigned integers, ``k`` for
cluster ``#k`` and 0 for no cluster (nodata), with a colour table in the colours of mfcli's
pictures (an ENVI Classification for ENVI).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from mfcli.errors import DataError, InputError

MAP_FACTORS = ("abundances", "coefficients", "H", "assignments")
NO_CLUSTER_COLOR = "#000000"


@dataclass
class MapImages:
    """What is written: ``images`` (bands, rows, cols), band names, the nodata value, and for
    cluster maps ``classes`` as (name, colour) from value 0 ("none") on."""

    images: np.ndarray
    band_names: list[str]
    nodata: float | None
    description: str
    classes: list[tuple[str, str]] | None = None
    tags: dict[str, str] = field(default_factory=dict)


def component_names(labels: list[str | None] | None, rank: int) -> list[str]:
    """The label of each component where known, else ``#1..#k`` (1-based, as every picture)."""
    labels = list(labels or []) + [None] * rank
    return [str(labels[k]) if labels[k] else f"#{k + 1}" for k in range(rank)]


def map_images(result, factor: str, layer: int = -1, source: str = "the result") -> MapImages:
    """The images of ``factor`` of ``layer`` (1-based, -1 = last) of ``result``."""
    from mfcli.dataset import pixels_to_image

    if result.image_shape is None:
        raise DataError(f"{source} was computed from data without an image shape, so its {factor} are not maps; "
                        "write them as CSV/NPY, or factorize again with --image-shape ROWSxCOLS")
    index = result.layer_number(layer)
    chosen = result.layer(index)
    order = result.pixel_order or "C"
    valid = result.valid_pixels
    rows, cols = result.image_shape
    n_pixels = rows * cols if valid is None else int(valid.sum())
    tags = {"MFCLI_FACTOR": factor, "MFCLI_LAYER": str(index), "MFCLI_MODEL": result.model,
            "MFCLI_SOURCE": str(result.input.get("source") or "")}
    if factor == "assignments":
        from mfcli.plotting.views import cluster_colors, hard_assignments

        if any(level.assignments is None for level in result.layers[:index]):
            raise InputError(f"layer {index} of {source} has no hard assignments (a model with orthogonal "
                             "layers, such as deep-onmf, has them); export abundances or coefficients")
        clusters = hard_assignments(result, index) + 1  # cluster #k is k; 0 is no cluster
        dtype = np.uint8 if chosen.rank < 255 else np.uint16
        image = pixels_to_image(clusters, result.image_shape, order, valid, fill=0).astype(dtype)
        names = component_names(chosen.labels, chosen.rank)
        classes = [("none", NO_CLUSTER_COLOR), *zip(names, cluster_colors(result, index))]
        return MapImages(image[None], [f"clusters of layer {index} (1-{chosen.rank}; 0: none)"], 0,
                         f"hard clusters of layer {index}", classes, tags)
    values = {"abundances": chosen.abundances, "coefficients": chosen.data_coefficients, "H": chosen.H}[factor]
    if values is None:
        raise InputError(f"layer {index} of {source} has no {factor} (computed by unmix --abundances nnls|fcls "
                         "or mfcli abundances); export coefficients instead")
    values = np.asarray(values)
    if values.ndim != 2 or values.shape[1] != n_pixels:
        raise DataError(f"{factor} of layer {index} is {'x'.join(map(str, values.shape))}, not one value per pixel "
                        f"of the {n_pixels} pixels with data; export coefficients for the layer's maps")
    if values.dtype.kind != "f":
        values = values.astype(np.float64)
    method = chosen.attrs.get("abundances") or chosen.attrs.get("coefficients") or result.params.get("abundances")
    if factor in ("abundances", "coefficients") and isinstance(method, str):
        tags["MFCLI_METHOD"] = method
    images = pixels_to_image(values, result.image_shape, order, valid)
    return MapImages(images, component_names(chosen.labels, values.shape[0]),
                     float("nan") if valid is not None else None, f"{factor} of layer {index}", None, tags)


def write_map_images(maps: MapImages, path: str, fmt: str, georeference=None, force: bool = False) -> None:
    """Write ``maps`` as GeoTIFF (``fmt`` "tif") or ENVI ("envi"), atomically, in ``georeference``."""
    if fmt == "tif":
        from mfcli.io.geotiff import write_geotiff

        colors = None if maps.classes is None else {value: color for value, (_, color) in enumerate(maps.classes)}
        if colors is not None:
            colors[0] = NO_CLUSTER_COLOR + "00"  # transparent
        tags = dict(maps.tags)
        if maps.classes is not None:
            tags.update({f"CLASS_{value}": name for value, (name, _) in enumerate(maps.classes)})
        write_geotiff(path, maps.images, georeference=georeference, nodata=maps.nodata, band_names=maps.band_names,
                      colors=colors, tags=tags, force=force)
    elif fmt == "envi":
        from mfcli.io.envi import header_fields
        from mfcli.io.write import write_envi_atomic

        fields = header_fields(georeference, maps.band_names, maps.nodata, maps.classes)
        fields["description"] = f"mfcli {maps.description} ({', '.join(f'{k}={v}' for k, v in maps.tags.items())})"
        write_envi_atomic(path, np.moveaxis(maps.images, 0, 2), None, force, fields)
    else:
        raise DataError(f"maps are written as GeoTIFF (.tif) or ENVI (.hdr), not {fmt}")
