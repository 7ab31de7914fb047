"""One self-contained HTML report of a result: what went in, how it was run, how well it fits,
and every picture (abundance maps, endmembers, hierarchy, convergence, ground-truth comparison).

The file stands alone: pictures are PNGs embedded as ``data:`` URIs, the style sheet is inline,
there is no script, and a Content-Security-Policy forbids every fetch except ``data:``
images, so it opens offline and shows the same thing everywhere.
"""

from __future__ import annotations

import base64
import copy
import html
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from mfcli.errors import MfcliError
from mfcli.plotting.style import figure_bytes

REPORT_DPI = 100
CSP = "default-src 'none'; img-src data:; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'"

STYLE = """
body { font-family: -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; color: #222; margin: 0;
       background: #fafafa; line-height: 1.4; }
main { max-width: 1250px; margin: 0 auto; padding: 1.2em 1.5em 3em; background: white; }
h1 { font-size: 1.5em; margin: 0.2em 0; } h2 { font-size: 1.2em; margin-top: 1.8em;
     border-bottom: 1px solid #ddd; padding-bottom: 0.2em; } h3 { font-size: 1em; margin-bottom: 0.3em; }
.sub { color: #666; font-size: 0.9em; }
table { border-collapse: collapse; font-size: 0.9em; margin: 0.5em 0; }
th, td { border: 1px solid #ddd; padding: 0.25em 0.6em; text-align: left; vertical-align: top; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
.cards { display: flex; flex-wrap: wrap; gap: 0.6em; margin: 1em 0; }
.card { border: 1px solid #ddd; border-radius: 6px; padding: 0.4em 0.9em; min-width: 8em; }
.card b { display: block; font-size: 1.15em; } .card span { color: #666; font-size: 0.8em; }
figure { margin: 0.8em 0; } figure img { max-width: 100%; height: auto; border: 1px solid #eee; }
figcaption { color: #555; font-size: 0.85em; } .note { color: #8a5a00; font-size: 0.9em; }
code { font-size: 0.9em; background: #f3f3f3; padding: 0 0.2em; } nav a { margin-right: 1em; }
"""


def _e(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _number(value: Any, digits: int = 4) -> str:
    if value is None:
        return "-"
    if isinstance(value, (float, np.floating)):
        return f"{float(value):.{digits}g}"
    return _e(value)


def _table(header: list[str], rows: list[list[str]], numeric: set[int] | None = None) -> str:
    numeric = numeric or set()
    head = "".join(f"<th>{_e(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f'<td class="num">{c}</td>' if i in numeric else f"<td>{c}</td>"
                                    for i, c in enumerate(row)) + "</tr>" for row in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def _image(figure, alt: str, caption: str = "", dpi: float = REPORT_DPI) -> str:
    encoded = base64.b64encode(figure_bytes(figure, "png", dpi=dpi)).decode("ascii")
    caption_html = f"<figcaption>{_e(caption)}</figcaption>" if caption else ""
    return f'<figure><img alt="{_e(alt)}" src="data:image/png;base64,{encoded}">{caption_html}</figure>'


def _attempt(make, alt: str, caption: str = "") -> str:
    """The embedded picture, or a one-line note saying why this picture does not apply."""
    try:
        return _image(make(), alt, caption)
    except MfcliError as exc:
        return f'<p class="note">{_e(alt)}: {_e(exc)}</p>'


def _input_rows(result) -> list[list[str]]:
    meta = result.input
    rows = []
    for key, name in (("source", "source"), ("variable", "variable"), ("sha256", "sha256"),
                      ("shape", "shape (features x samples)"), ("dtype", "dtype"), ("layout", "layout"),
                      ("image_shape", "image shape (rows x cols)"), ("pixel_order", "pixel order"),
                      ("scale", "scale divided out")):
        value = meta.get(key)
        if value is None:
            continue
        if isinstance(value, (list, tuple, np.ndarray)):
            value = " x ".join(str(int(v)) for v in value)
        if key == "pixel_order":
            value = {"F": "F (MATLAB: down the columns first)", "C": "C (row by row)"}.get(value, value)
        rows.append([_e(name), f"<code>{_e(value)}</code>" if key == "sha256" else _e(value)])
    wavelengths = meta.get("wavelengths")
    if wavelengths is not None and np.size(wavelengths) and not meta.get("wavelengths_nominal"):
        wl = np.asarray(wavelengths, dtype=np.float64)
        source = meta.get("wavelengths_source") or "the input file"
        rows.append(["wavelengths", _e(f"{wl.size} bands, {wl.min():.0f}-{wl.max():.0f} nm, from {source}")])
    elif result.image_shape is not None:
        rows.append(["wavelengths", _e("unknown (none in the input): spectra are drawn against band numbers; "
                                       "give --wavelengths FILE for the sensor's band centres")])
    georeference = result.georeference
    if georeference is not None:
        info = georeference.describe()
        crs = (info["crs"] or "unnamed CRS") + (f" (EPSG:{info['epsg']})" if info["epsg"] else "") \
            if georeference.crs else "none given (transform only)"
        units = f" {info['units']}" if info["units"] else ""
        rows.append(["coordinate reference system", _e(crs)])
        rows.append(["pixel size", _e(f"{info['pixel_size'][0]:.6g} x {info['pixel_size'][1]:.6g}{units}"
                                      + ("" if info["north_up"] else " (rotated grid)"))])
        a, b, c, d, e, f = info["transform"]
        rows.append(["upper-left corner", _e(f"x {c:.6f}, y {f:.6f}")])
    if meta.get("nodata_pixels"):
        rows.append(["nodata pixels", _e(f"{meta['nodata_pixels']} left out of the data (blank in the maps)")])
    bands = meta.get("band_indices")
    if bands is not None and np.size(bands):
        b = np.asarray(bands).ravel()
        rows.append(["kept bands", _e(f"{b.size} of the sensor's bands (numbers {int(b.min())}-{int(b.max())})")])
    for note in meta.get("notes") or []:
        rows.append(["note", _e(note)])
    return rows


def _layer_rows(result) -> list[list[str]]:
    """One row per layer, every number from :mod:`mfcli.summary` (as the CLI table and --json)."""
    from mfcli.summary import cluster_name, format_error, format_share, layer_summaries, merges_text

    deep = len(result.layers) > 1
    rows = []
    for entry, layer in zip(layer_summaries(result), result.layers):
        labels = entry["labels"] or [None] * entry["rank"]
        sizes = ", ".join(f"{cluster_name(k, labels[k])} {format_share(share)}"
                          for k, share in enumerate(entry["shares"]))
        history = layer.history.get("relative_error")
        iterations = str(len(history)) if history is not None and np.size(history) else "-"
        row = [str(entry["layer"]), str(entry["rank"]), format_error(entry["relative_error"]), _e(sizes)]
        if deep:
            row += [_e(merges_text(entry) or "-"), iterations]
        rows.append(row)
    return rows


def _closest_layer(result, n_materials: int) -> int:
    """The layer whose rank is closest to the number of reference materials (the lowest on ties)."""
    gaps = [abs(rank - n_materials) for rank in result.ranks]
    return int(np.argmin(gaps)) + 1


def _evaluation(result, truth, wavelengths) -> str:
    from mfcli.plotting.abundances import truth_abundance_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.truth import match_maps, match_spectra, truth_label
    from mfcli.unmixing.evaluate import evaluate_unmixing

    names = truth.material_names()
    how = ("spectra are matched to each layer's endmembers by the Hungarian algorithm on spectral angle "
           "(scale-free, so references normalised to a maximum of 1 compare fairly)") if truth.endmembers is not None \
        else "it has abundances only, matched to the layer's maps by the Hungarian algorithm on their RMSE"
    parts = [f"<p>Ground truth: <code>{_e(truth_label(truth))}</code> — {len(names)} materials: "
             f"{_e(', '.join(names))}; {how}.</p>"]
    parts += [f'<p class="sub">{_e(note)}</p>' for note in truth.notes]
    best = _closest_layer(result, len(names))
    if truth.endmembers is not None:
        rows, matches = [], []
        for index in range(1, len(result.layers) + 1):
            match = match_spectra(result, index, truth)
            matches.append(match)
            per = "; ".join(f"#{e + 1} ↔ {names[r]}: {a:.2f}°" for (e, r), a in zip(match.pairs, match.angles_deg))
            rows.append([str(index), str(result.ranks[index - 1]), _number(float(np.mean(match.angles_deg)), 4),
                         _e(per)])
        parts.append(_table(["layer", "rank", "mean spectral angle (°)", "matched pairs and angles"], rows, {2}))
        match = matches[best - 1]
        parts.append(_attempt(lambda: endmember_figure(result, best, wavelengths=wavelengths, truth=match,
                                                       dpi=REPORT_DPI),
                              f"layer {best} endmembers against the ground truth",
                              f"Layer {best} (rank {result.ranks[best - 1]}, the closest to the "
                              f"{len(names)} reference materials): extracted spectra (colour) and matched "
                              "references (dashed, scaled by least squares)."))
    else:
        match = match_maps(result, best, truth)
    if truth.abundances is not None and result.image_shape is not None:
        layer = result.layer(best)
        note = ""
        if layer.abundances is not None and np.shape(truth.abundances)[1] == np.shape(layer.abundances)[1]:
            # the same matching and numbers as `mfcli evaluate` (stored abundances)
            scores = evaluate_unmixing(layer.data_basis, layer.abundances, truth.endmembers, truth.abundances,
                                       match="sad" if truth.endmembers is not None else "abundance")
            errors = scores["armse_per_material"]
            note = " Abundance RMSE per matched material: " + ", ".join(
                f"{names[r]} {errors[r]:.4f}" for _, r in match.pairs) + "."
        parts.append(_attempt(lambda: truth_abundance_figure(result, best, truth, match, dpi=REPORT_DPI),
                              f"layer {best} abundance maps against the ground truth",
                              f"Top: reference abundances; bottom: the matched maps of layer {best}.{note}"))
    return "".join(parts)


def build_report(result, truth=None, wavelengths: np.ndarray | None = None, result_name: str = "") -> str:
    """The report of ``result`` as one HTML string (see the module docstring)."""
    from mfcli import __version__
    from mfcli.hierarchy import tree_from_result
    from mfcli.plotting.abundances import abundance_figure
    from mfcli.plotting.convergence import convergence_figure
    from mfcli.plotting.endmembers import endmember_figure
    from mfcli.plotting.tree import tree_figure
    from mfcli.summary import format_error

    result = copy.copy(result)  # the layers' labels are set for the pictures, never on the caller's result
    result.layers = [copy.copy(layer) for layer in result.layers]
    if truth is not None:
        from mfcli.plotting.truth import label_with_truth

        label_with_truth(result, truth)
    try:
        tree = tree_from_result(result)
    except MfcliError:
        tree = None
    source = result.input.get("source") or "unknown input"
    title = f"mfcli report: {result.model} on {source}"
    ranks = ",".join(map(str, result.ranks))
    created = result.provenance.get("created", "")
    command = result.provenance.get("command_line", "")
    sections: list[tuple[str, str, str]] = []

    deep = len(result.layers) > 1
    cards = [("model", result.model), ("ranks", ranks), ("relative error", format_error(result.relative_error)),
             ("seconds", _number(result.seconds, 3)),
             ("sweeps of the joint refinement" if deep else "iterations", _number(result.n_iter)),
             ("converged", {True: "yes", False: "no", None: "-"}[result.converged])]
    overview = '<div class="cards">' + "".join(f"<div class=\"card\"><b>{v}</b><span>{_e(k)}</span></div>"
                                               for k, v in cards) + "</div>"
    if command:
        overview += f"<p>Command line: <code>{_e(command)}</code></p>"
    sections.append(("overview", "Overview", overview))
    sections.append(("input", "Input", _table(["", "value"], _input_rows(result))))
    params = [[_e(k), _e(json.dumps(v, default=str) if not isinstance(v, str) else v)]
              for k, v in sorted(result.params.items())]
    sections.append(("parameters", "Parameters",
                     _table(["parameter", "value"], params) if params else "<p>No parameters recorded.</p>"))
    header = ["layer", "rank", "relative error", "clusters: share of the data"]
    if deep:
        header += ["merges (clusters of the layer below)", "iterations of the layer-wise initialization"]
    sections.append(("layers", "Layers and errors", _table(header, _layer_rows(result), {0, 1, 2, 5}) +
                     "<p class=\"sub\">Relative error ||X − B<sub>l</sub> C<sub>l</sub>||<sub>F</sub> / "
                     "||X||<sub>F</sub> of each layer's data-space reconstruction at the end of the run (the "
                     "model's is the last layer's); "
                     "shares from each column's cluster (hard assignment or largest coefficient); clusters numbered "
                     "#1..#k as in every picture.</p>"))
    if tree is not None:
        sections.append(("hierarchy", "Hierarchy", _attempt(
            lambda: tree_figure(result, wavelengths=wavelengths, dpi=REPORT_DPI), "hierarchy",
            "Deepest layer at the top; thick edges join a cluster to the clusters it merges.")))
    if result.image_shape is not None:
        maps = _attempt(lambda: abundance_figure(result, layer="all", dpi=REPORT_DPI), "abundance maps",
                        "Every layer's maps, each layer on its own colour scale; titles give the number, name and "
                        "share of pixels.")
        if any(layer.abundances is not None for layer in result.layers) and tree is not None:
            maps += _attempt(lambda: abundance_figure(result, layer="all", kind="hard", dpi=REPORT_DPI),
                             "hard cluster maps", "Hard cluster of every pixel, layer by layer.")
    else:
        maps = ('<p class="note">The input has no image shape, so there are no abundance maps; the hierarchy '
                "and the endmember plots show the clusters.</p>")
    sections.append(("abundances", "Abundance maps", maps))
    spectra = "".join(_attempt(lambda index=index: endmember_figure(result, index, wavelengths=wavelengths,
                                                                    dpi=REPORT_DPI),
                               f"layer {index} endmembers") for index in range(1, len(result.layers) + 1))
    sections.append(("endmembers", "Endmembers", spectra))
    sections.append(("convergence", "Convergence", _attempt(lambda: convergence_figure(result, dpi=REPORT_DPI),
                                                            "convergence")))
    if truth is not None:
        sections.append(("evaluation", "Evaluation against the ground truth", _evaluation(result, truth, wavelengths)))

    nav = "<nav>" + "".join(f'<a href="#{key}">{_e(name)}</a>' for key, name, _ in sections) + "</nav>"
    body = "".join(f'<section id="{key}"><h2>{_e(name)}</h2>{content}</section>' for key, name, content in sections)
    subtitle = " · ".join(_e(x) for x in (result_name, created, f"mfcli {__version__}") if x)
    return (
        "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
        f'<meta http-equiv="Content-Security-Policy" content="{CSP}">'
        '<meta name="viewport" content="width=device-width, initial-scale=1">'
        f"<title>{_e(title)}</title><style>{STYLE}</style></head>\n<body><main>"
        f"<h1>{_e(title)}</h1><p class=\"sub\">{subtitle}</p>{nav}{body}"
        "<p class=\"sub\">This report is one self-contained file: every picture is embedded, nothing is "
        "fetched from the network.</p></main></body></html>\n"
    )


def write_report(result, path: str | os.PathLike, truth=None, wavelengths: np.ndarray | None = None,
                 force: bool = False, result_name: str = "") -> Path:
    """Write the report of ``result`` to ``path`` atomically (see :func:`build_report`)."""
    from mfcli.io.atomic import atomic_file, check_output_path

    check_output_path(path, force)
    document = build_report(result, truth=truth, wavelengths=wavelengths, result_name=result_name)
    with atomic_file(path, force=force) as tmp:
        tmp.write_text(document, encoding="utf-8")
    return Path(path)
