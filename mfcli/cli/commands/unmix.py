"""mfcli unmix: a deep factorization (deep ONMF by default) written as a folder: result, hierarchy, plots."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.api import ABUNDANCES, REFINE_CHOICES, automatic_init, refinement_method, write_unmix_folder  # noqa: F401
from mfcli.cli.commands._factorization import check_model, format_seconds, stopping_options
from mfcli.cli.options import (clip_negative_option, data_options, dtype_option, engine_options, file_output,
                               force_option, input_argument, json_option, parse_int_list, seed_option)
from mfcli.errors import ParameterError
from mfcli.models import registry


def _model_list() -> str:
    lines = ["\b", "Models (--model) and their parameters (--param NAME=VALUE):"]
    for spec in registry.models("deep"):
        lines.append(f"  {spec.name:<11} {spec.summary}")
        if spec.all_inits:
            others = ", ".join(i for i in spec.all_inits if i != spec.default_init)
            lines.append(f"  {'':<11}   init {spec.default_init}" + (f" (or {others})" if others else ""))
        for name, param in spec.params.items():
            lines.append(f"  {'':<11}   {name}={param.default!r} ({param.help})")
    return "\n".join(lines)


@click.command(short_help="Deep unmixing: a hierarchy of endmembers and abundance maps (deep ONMF, ...).",
               epilog=_model_list())
@input_argument
@data_options
@engine_options
@click.option("--ranks", required=True, callback=parse_int_list, metavar="R1,R2,...",
              help="Ranks of the layers, first layer first, non-increasing, e.g. 7,6,4,2.")
@click.option("-m", "--model", default="deep-onmf", show_default=True, callback=check_model("deep"), metavar="NAME",
              help="Model: " + ", ".join(registry.model_names("deep")) + " (see below).")
@click.option("--init", default="auto", show_default=True, metavar="METHOD",
              help="Layer-wise initialization: auto (deep-onmf: spa for images, restarts for other data; the "
                   "model's default otherwise), restarts (best of SPA, k-means++ and random starts), spa, "
                   "kmeans++, random, nndsvd, nndsvda, nndsvdar (NMF-based models).")
@stopping_options("Maximum number of sweeps of the joint refinement (default 100; 0 keeps the layer-wise "
                  "initialization).", min_iter=0)
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A model parameter, e.g. -p restarts=20 (deep-onmf), -p loss=layers (deep-nmf); repeatable.")
@click.option("--refine", type=click.Choice(REFINE_CHOICES), default="auto", show_default=True,
              help="Endmembers of every layer refined from its clusters to materials (EDAA restricted to each "
                   "cluster's pixels; the tree is kept): auto (edaa for the hard clusterings deep-onmf and h2nmf "
                   "of an image in memory; none otherwise), edaa, none.")
@click.option("--abundances", type=click.Choice(ABUNDANCES), default="nnls", show_default=True,
              help="Soft abundance maps of every layer's endmembers: nnls, fcls (sum to one) or none.")
@seed_option
@dtype_option
@clip_negative_option
@click.option("-o", "--output", required=True, metavar="OUTDIR", callback=file_output("the output folder"),
              help="Output folder (created; --force replaces it).")
@force_option
@json_option
@click.option("--no-plots", is_flag=True, help="Do not write the default pictures into OUTDIR.")
@click.option("--truth", "truth_specs", multiple=True, metavar="GT",
              help="Ground truth (as for `mfcli evaluate`, e.g. sample:urban): every layer's estimates are matched to "
                   "its materials as evaluate matches them and named after them in the result, tree and pictures.")
def command(input_spec: str, ranks: list[int], model: str, init: str | None, max_iter, tol, target_error, max_time,
            params: tuple[str, ...], refine: str, abundances: str, seed: int, dtype: str | None, clip_negative: bool,
            output: str, force: bool, as_json: bool, no_plots: bool, truth_specs: tuple[str, ...],
            **data_opts) -> None:
    """Deep matrix factorization of INPUT (bands x pixels) with layers of decreasing rank, written
    to the folder OUTDIR:

    \b
      result.h5        every layer: W, H, data-space endmembers (basis) and coefficients,
                       cluster assignments, soft abundances, histories, provenance
      hierarchy.json   the tree (schema in `mfcli tree --help`), also .nwk (Newick) and .dot
      (pictures)       per-layer abundance maps, endmembers, the tree, unless --no-plots

    Deep ONMF (default): X ~= W_L H_L ... H_1 with every H_l a hard assignment, initialized layer
    by layer by ONMF, then refined jointly on ||X - W_L H_L ... H_1||_F; each layer merges
    clusters of the layer below. With --init auto, images start from SPA (pure pixels, the
    usual start for hyperspectral ONMF): the best-objective restarts split large materials
    and miss small distinct ones such as Urban's metal roofs. Other data (ratings, users) use
    the restarts, which find the best ONMF partition. --max-iter, --tol and --target-error bound
    the joint refinement (sweeps; --max-iter 0 keeps the layer-wise solution); --max-time bounds
    the whole factorization, layer-wise initialization included.

    Endmembers that are materials (--refine, default auto: on for deep-onmf and h2nmf of an
    image): a cluster's basis vector is a centroid of its pixels, mixed ones included; each
    layer's endmembers are then refined by EDAA restricted to each cluster's own pixels (every
    endmember stays a convex combination of its cluster's pixels, so inside the data's cone),
    started from the clusters, which are kept: the tree, the merges and the cluster maps do not
    change. The result's data-space basis of each layer is the refined endmembers, W the
    clusters' basis vectors; a refined layer's relative error is that of its endmembers and
    abundances (the clusters' error is kept in the file).

    H2NMF (--model h2nmf, Gillis, Kuang & Park 2015) builds the tree top down by rank-two NMF
    splits instead of merging bottom up; see docs/unmixing.md for when to use which.

    A summary per layer (rank, relative error, share of the pixels per cluster, merges) goes to
    stderr, clusters numbered #1..#k; a layer with empty clusters is warned about. --json prints
    {ranks, model, relative_error: {global (the last layer's), layers, unrefined (the deep
    factorization's, where the endmembers were refined)}, seconds, output, files, n_iter (sweeps of
    the joint refinement), converged, stop_reason, abundances, refine (the refinement made: edaa
    or none), index_base, layers: [{layer, rank, relative_error, sizes, shares, empty, labels,
    and from layer 2: children, merged [{cluster, children}]}]}. Layers are numbered from 1;
    clusters in JSON are 0-based positions (index_base 0), so cluster c is #c+1 in the table and
    the pictures.

    Data larger than memory: --engine stream|dask (see `mfcli factorize --help`). The soft
    abundances are then computed and written block by block of columns, never held whole, and
    no pictures are drawn (draw them from OUTDIR/result.h5 with the plot-* commands).

    Example: mfcli unmix sample:urban --ranks 7,6,4,2 -o urban_deep
    """
    import time

    from mfcli.api import unmix
    from mfcli.cli.options import check_engine, command_line, load_input
    from mfcli.io.atomic import check_output_path
    from mfcli.result import make_provenance
    from mfcli.summary import JSON_INDEX_BASE, empty_cluster_warnings, layer_summaries

    started = time.perf_counter()
    spec = registry.get_model(model, "deep")
    model_params = spec.parse_params(params)
    if init != "auto" and init not in spec.all_inits:
        raise ParameterError(f"model {spec.name} takes --init auto, {', '.join(spec.all_inits)}, not '{init}'")
    check_output_path(output, force, kind="folder", marker="result.h5")
    check_engine(spec, **data_opts)
    dataset = load_input(input_spec, dtype=dtype, **data_opts)
    out_of_core = data_opts.get("engine", "memory") != "memory"
    result = unmix(dataset, ranks, spec.name, reporter=console.REPORTER, init=init, max_iter=max_iter, tol=tol,
                   target_error=target_error, max_time=max_time, seed=seed, clip_negative=clip_negative,
                   refine=refine, abundances=abundances, truth=list(truth_specs) or None, **model_params)
    result.provenance = make_provenance(command_line())
    if not out_of_core:
        dataset.X = None  # all that is written and drawn from here on is in the result: free the data first
    result.seconds = time.perf_counter() - started
    files = write_unmix_folder(result, output, force=force, data=dataset if out_of_core else None,
                               pictures=not no_plots, reporter=console.REPORTER)
    seconds = time.perf_counter() - started
    ranks = result.ranks
    refinement = result.params.get("refine")

    layers = layer_summaries(result)
    for line in empty_cluster_warnings(layers):
        console.warn(line)
    _print_summary(result, layers, seconds, output)
    if dataset.georeference is not None:
        console.info(f"Georeferenced input: maps for a GIS with `mfcli export {output}/result.h5 --factor abundances "
                     "-o abundances.tif` (or --factor assignments)")
    if as_json:
        console.emit_json({
            "ranks": ranks,
            "model": spec.name,
            "relative_error": {"global": result.relative_error,
                               "layers": [entry["relative_error"] for entry in layers],
                               **({"unrefined": result.summary["unrefined_relative_error"]}
                                  if result.summary.get("unrefined_relative_error") is not None else {})},
            "seconds": seconds,
            "output": str(output),
            "files": files,
            "n_iter": result.n_iter,
            "converged": result.converged,
            "stop_reason": result.summary.get("stop_reason"),
            "abundances": abundances,
            "refine": refinement,
            "index_base": JSON_INDEX_BASE,
            "layers": layers,
        })


def _print_summary(result, layers: list[dict], seconds: float, output: str) -> None:
    if console.quiet():  # nothing of it is printed (and rich.table, 25 ms to import, is not needed)
        return
    from rich.table import Table

    from mfcli.summary import cluster_name, format_error, format_share, merges_text

    table = Table(title="Layers (1 = closest to the data)")
    for column in ("layer", "rank", "rel. error", "clusters: share of the pixels (columns)",
                   "merges (clusters of the layer below)"):
        table.add_column(column)
    for entry in layers:
        labels = entry["labels"] or [None] * entry["rank"]
        clusters = ", ".join(f"{cluster_name(k, labels[k])} {format_share(share)}"
                             for k, share in enumerate(entry["shares"]))
        merges = merges_text(entry) or ("-" if entry["layer"] > 1 else "")
        table.add_row(str(entry["layer"]), str(entry["rank"]), format_error(entry["relative_error"]), clusters, merges)
    console.print_table(table)
    unrefined = result.summary.get("unrefined_relative_error")
    before = f", where the deep factorization's error was {format_error(unrefined)} before the endmembers were " \
             "refined" if unrefined is not None else ""
    console.info(f"relative error {format_error(result.relative_error)} (layer {len(result.layers)}); joint "
                 f"refinement {result.n_iter} sweep{'s' if result.n_iter != 1 else ''} "
                 f"({result.summary.get('stop_reason')}){before}; {format_seconds(seconds)}; wrote {output}/")
