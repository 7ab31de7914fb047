"""mfcli factorize: one factorization X ~= W H (NMF and its variants) written to a result file."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.commands._factorization import check_model, format_seconds, stopping_options
from mfcli.cli.options import (clip_negative_option, data_options, dtype_option, engine_options, input_argument,
                               rank_option, result_output_options, seed_option)
from mfcli.models import registry


def _model_list() -> str:
    lines = ["\b", "Models (--model) and their parameters (--param NAME=VALUE):"]
    for spec in registry.models("single"):
        lines.append(f"  {spec.name:<11} {spec.summary}")
        extras = []
        if spec.losses != ("fro",):
            extras.append("losses " + ", ".join("beta=B" if loss == "beta" else loss for loss in spec.losses))
        if spec.default_init:
            extras.append(f"init {spec.default_init}")
        for name, param in spec.params.items():
            extras.append(f"{name}={param.default!r} ({param.help})")
        for extra in extras:
            lines.append(f"  {'':<11}   {extra}")
    return "\n".join(lines)


@click.command(short_help="Factorize X ~= W H (nmf, onmf, aonmf, semi-nmf, sparse-nmf, nsnmf, aa, svd, ...).",
               epilog=_model_list())
@input_argument
@data_options
@engine_options
@rank_option
@click.option("-m", "--model", default="nmf", show_default=True, callback=check_model("single"), metavar="NAME",
              help="Model: " + ", ".join(registry.model_names("single")) + " (see below).")
@click.option("--loss", default="fro", show_default=True, metavar="LOSS",
              help="fro (Frobenius), kl (Kullback-Leibler), is (Itakura-Saito) or beta=B (nmf only for the last three).")
@click.option("--init", default=None, metavar="METHOD",
              help="nndsvda, nndsvd, nndsvdar, spa, kmeans++, random (onmf also: restarts). Default: the model's.")
@click.option("--init-w", metavar="FILE", help="Initial W (m x r) from a data file, or the W of a result file.")
@click.option("--init-h", metavar="FILE", help="Initial H (r x n) from a data file, or the H of a result file.")
@stopping_options()
@click.option("-p", "--param", "params", multiple=True, metavar="NAME=VALUE",
              help="A model parameter, e.g. -p theta=0.3 (nsnmf), -p solver=mu (nmf); repeatable.")
@seed_option
@dtype_option
@clip_negative_option
@result_output_options
def command(input_spec: str, rank: int, model: str, loss: str, init: str | None, init_w: str | None,
            init_h: str | None, max_iter, tol, target_error, max_time, params: tuple[str, ...], seed: int,
            dtype: str | None, clip_negative: bool, output: str, force: bool, as_json: bool, **data_opts) -> None:
    """Factorize INPUT (features x samples, e.g. bands x pixels) as X ~= W H and write the result
    file OUTPUT (HDF5: W, H, the error history, parameters and provenance; read it with
    `mfcli info`, `mfcli export --factor W|H`, `mfcli transform`).

    A progress bar shows the iteration and the relative error ||X-WH||_F/||X||_F on stderr and
    a summary table is printed at the end. --json prints on stdout {model, rank, loss, init
    ("given" with --init-w), init_w, init_h, relative_error, n_iter, seconds, converged,
    stop_reason, shape, dtype, engine, output}, and divergence for the kl/is/beta losses.

    Data larger than memory: --engine stream reads an HDF5, MATLAB v7.3 or .npy file block by
    block of columns; --engine dask runs on Dask (--scheduler for a cluster). The same seed
    gives the same result on every engine.

    Sparse data: a scipy.sparse matrix saved by scipy.sparse.save_npz (X.npz) is read and
    factorized without densifying by nmf, onmf, aonmf, semi-nmf, sparse-nmf, nsnmf, aa and svd;
    minvol and edaa densify it (with a note; refused beyond 2 GiB dense).

    Example: mfcli factorize sample:urban -r 6 --model nmf --init spa -o urban_nmf.h5
    """
    from mfcli.api import factorize
    from mfcli.cli.options import command_line
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import write_result
    from mfcli.result import make_provenance

    spec = registry.get_model(model, "single")
    loss = spec.check_loss(loss)
    model_params = spec.parse_params(params)
    check_output_path(output, force)
    result = factorize(input_spec, rank, model, reporter=console.REPORTER, loss=loss, init=init, init_w=init_w,
                       init_h=init_h, max_iter=max_iter, tol=tol, target_error=target_error, max_time=max_time,
                       seed=seed, dtype=dtype, clip_negative=clip_negative,
                       **model_params, **_reading_rules(data_opts))
    result.provenance = make_provenance(command_line())
    write_result(result, output, force=force)
    # A given W replaces the --init method (the result records init "given"); a given H alone
    # is kept beside a W from the method.
    init_used = "given" if init_w else ((init or spec.default_init) if spec.inits else None)
    start = f"W from {init_w}" if init_w else init_used
    if init_h:
        start = f"{start}, H from {init_h}"

    layer = result.layers[0]
    summary = {
        "model": result.model,
        "rank": rank,
        "loss": loss,
        "init": init_used,
        "init_w": init_w,
        "init_h": init_h,
        "relative_error": layer.relative_error,
        "n_iter": result.n_iter,
        "seconds": result.seconds,
        "converged": result.converged,
        "stop_reason": result.summary.get("stop_reason"),
        "shape": list(result.input["shape"]),
        "dtype": str(result.input["dtype"]),
        "engine": data_opts.get("engine", "memory"),
        "output": str(output),
    }
    if "divergence" in result.summary:
        summary["divergence"] = result.summary["divergence"]
    _print_summary(summary, start)
    if as_json:
        console.emit_json(summary)


def _reading_rules(data_opts: dict) -> dict:
    """The data and engine options as :func:`mfcli.api.open_data` names them."""
    names = {"input_format": "format", "pixel_order": "order", "wavelengths_path": "wavelengths"}
    return {names.get(key, key): value for key, value in data_opts.items()}


def _print_summary(summary: dict, start: str | None) -> None:
    from rich.table import Table

    table = Table(title=f"mfcli factorize: {summary['model']} rank {summary['rank']}", show_header=False)
    table.add_column("", style="bold")
    table.add_column("")
    rows = [
        ("data", f"{summary['shape'][0]} x {summary['shape'][1]} {summary['dtype']}"),
        ("loss", summary["loss"]),
        ("init", start or "-"),
        ("relative error", f"{summary['relative_error']:.6g}"),
    ]
    if "divergence" in summary:
        rows.append(("divergence", f"{summary['divergence']:.6g}"))
    rows += [
        ("iterations", f"{summary['n_iter']} ({summary['stop_reason']}"
                       + (", converged)" if summary["converged"] else ")")),
        ("time", format_seconds(summary["seconds"])),
        ("output", summary["output"]),
    ]
    for key, value in rows:
        table.add_row(key, str(value))
    console.print_table(table)
