"""mfcli transform: coefficients of new data with a fitted basis fixed."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import (clip_negative_option, data_options, dtype_option, layer_option, result_argument,
                               result_output_options)

METHODS = ("auto", "nnls", "fcls", "lstsq", "assign")


@click.command(short_help="Coefficients of new data for the basis of a result (batched NNLS/FCLS).")
@result_argument
@click.argument("input_spec", metavar="NEWDATA")
@data_options
@layer_option
@click.option("--method", type=click.Choice(METHODS), default="auto", show_default=True,
              help="nnls: H >= 0; fcls: H >= 0 with columns summing to 1 (abundances); lstsq: unconstrained; "
                   "assign: one nonzero per column (ONMF clusters); auto: what the model fits.")
@dtype_option
@clip_negative_option
@result_output_options
def command(result_path: str, input_spec: str, layer: int, method: str, dtype: str | None, clip_negative: bool,
            output: str, force: bool, as_json: bool, **data_opts) -> None:
    """Solve the coefficients H of NEWDATA with the basis of RESULT fixed, min ||X - W H||_F for
    all columns at once (exact batched nonnegative least squares, no loop over columns), and
    write a result file OUTPUT holding that basis as W and the new coefficients as H.

    The basis is the data-space basis of --layer (for a deep result, the endmembers of that
    layer). NEWDATA must have the same number of features (bands) as the data RESULT was fitted
    on. --json prints {model, method, layer, rank, relative_error, shape, seconds, output}.

    --method fcls needs endmembers at the data's scale (mfcli endmembers, abundances): the
    columns of an NMF W have a free scale, so sum-to-one abundances of them fit poorly.

    \b
    Examples:
      mfcli transform urban_nmf.h5 other_scene.mat -o other_coefficients.h5
      mfcli transform samson_vca.h5 other_samson.mat --method fcls -o other_abundances.h5
    """
    import time

    import numpy as np

    from mfcli.cli.commands._factorization import finish_result
    from mfcli.cli.options import check_factorization_input, load_input
    from mfcli.errors import DataError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result, write_result
    from mfcli.metrics import relative_error
    from mfcli.models.nnls import model_penalties, solve_coefficients
    from mfcli.result import Layer, Result

    check_output_path(output, force)
    fitted = read_result(result_path)
    chosen = fitted.layer(layer)
    layer_number = fitted.layer_number(layer)
    basis = np.asarray(chosen.data_basis)
    if method == "auto":
        method = auto_method(fitted, chosen)
    dataset = load_input(input_spec, dtype=dtype, **data_opts)
    check_factorization_input(dataset, f"transform --method {method}", nonnegative=method != "lstsq",
                              clip_negative=clip_negative)
    X = dataset.X
    if X.shape[0] != basis.shape[0]:
        raise DataError(f"NEWDATA has {X.shape[0]} features but the basis of {result_path} has {basis.shape[0]}; "
                        "the new data must have the same bands/features (use --transpose for samples x features)")
    basis = basis.astype(X.dtype)
    started = time.perf_counter()
    penalties = model_penalties(fitted, chosen) if method == "nnls" and len(fitted.layers) == 1 else {}
    H = solve_coefficients(basis, X, method, **penalties)
    seconds = time.perf_counter() - started
    error = relative_error(X, basis, H)
    result = Result(model=fitted.model, layers=[Layer(W=basis, H=H, relative_error=error,
                                                      labels=chosen.labels)],
                    summary={"relative_error": error, "transform_of": str(result_path), "method": method,
                             "layer": layer_number},
                    seconds=seconds, converged=True, n_iter=1)
    finish_result(result, dataset, fitted.model, {"transform_of": str(result_path), "method": method,
                                                  "layer": layer_number})
    write_result(result, output, force=force)
    summary = {"model": fitted.model, "method": method, "layer": layer_number, "rank": int(basis.shape[1]),
               "relative_error": error, "shape": list(X.shape), "seconds": seconds, "output": str(output)}
    console.info(f"{method}: {X.shape[1]} columns, rank {basis.shape[1]}, relative error {error:.6g} "
                 f"in {seconds:.3g} s; wrote {output}")
    if as_json:
        console.emit_json(summary)


def auto_method(fitted, layer) -> str:
    """What the layer's coefficients were solved as (attrs 'coefficients': results of mfcli
    abundances/endmembers, minvol), else what the model's estimator does for new data."""
    from mfcli.errors import MfcliError
    from mfcli.models import registry

    recorded = (layer.attrs or {}).get("coefficients")
    if recorded in ("nnls", "fcls"):
        return recorded
    try:
        return registry.get_model(fitted.model).transform
    except MfcliError:  # not a registered model (an older or foreign result): plain NNLS
        return "nnls"
