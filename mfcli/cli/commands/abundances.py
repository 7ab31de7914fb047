"""mfcli abundances: NNLS or FCLS abundances of every pixel for given endmembers."""

from __future__ import annotations

import click

from mfcli.cli.options import FiniteFloatRange, data_options, dtype_option, input_argument, result_output_options


@click.command(short_help="Abundances for given endmembers by exact batched NNLS or FCLS.")
@input_argument
@data_options
@click.option("--endmembers", "endmembers_spec", required=True, metavar="FILE|RESULT",
              help="The endmembers: an mfcli result (its layer's basis, see --layer) or a file holding a "
                   "bands x r (or r x bands) matrix, e.g. a ground truth with M/GT/E.")
@click.option("--layer", type=int, default=-1, help="Layer of a result given to --endmembers (default: the last).")
@click.option("--method", type=click.Choice(["fcls", "nnls"]), default="fcls", show_default=True,
              help="fcls: nonnegative and summing to one; nnls: nonnegative only.")
@click.option("--delta", type=FiniteFloatRange(min=0, min_open=True), default=None,
              help="FCLS weight of the sum-to-one row (Heinz & Chang's delta); default: the constraint is exact.")
@dtype_option
@result_output_options
def command(input_spec: str, endmembers_spec: str, layer: int, method: str, delta: float | None,
            dtype: str | None, output: str, force: bool, as_json: bool, **data_opts) -> None:
    """Solve the abundances of every pixel of INPUT for fixed endmembers, all pixels at once
    (block principal pivoting, Kim & Park 2011; no loop per pixel):

    \b
      nnls:  min ||x - E a||  s.t. a >= 0
      fcls:  min ||x - E a||  s.t. a >= 0, sum(a) = 1   (Heinz & Chang 2001)

    Writes a result file with W = the endmembers and H = the abundances, ready for
    `mfcli evaluate`, `mfcli plot-abundances` and the other commands. --json prints {method,
    rank, relative_error, min_sum, max_sum, seconds, endmembers, output}.

    \b
    Examples:
      mfcli abundances sample:urban --endmembers sample:urban:M --method fcls -o urban_fcls.h5
      mfcli abundances sample:samson --endmembers samson_vca.h5 --method nnls -o samson_nnls.h5
    """
    import time

    import numpy as np

    from mfcli.cli import console
    from mfcli.cli.commands._factorization import finish_result
    from mfcli.cli.options import check_factorization_input, load_input
    from mfcli.errors import InputError
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import read_result, result_path_of, write_result
    from mfcli.io.truth import load_truth
    from mfcli.metrics import relative_error
    from mfcli.models.nnls import fcls, nnls
    from mfcli.result import Layer, Result

    check_output_path(output, force)
    dataset = load_input(input_spec, dtype=dtype, **data_opts)
    check_factorization_input(dataset, method, nonnegative=False)
    m = dataset.X.shape[0]
    path = result_path_of(endmembers_spec)
    if path is not None:
        source = read_result(path)
        E = np.asarray(source.layer(layer).data_basis)
        how = f"the basis of layer {source.layer_number(layer)} of {path}"
        if E.shape[0] != m:
            raise InputError(f"the endmembers of {path} have {E.shape[0]} bands but {dataset.source} has {m}; "
                             "use the result computed from these data")
    else:
        truth = load_truth(endmembers_spec, n_bands=m)
        if truth.endmembers is None:
            raise InputError(f"found no endmembers in '{endmembers_spec}' (only abundances); give a bands x r matrix "
                             "or a variable with FILE:VAR")
        E = truth.endmembers
        how = truth.notes[0]
    E = np.ascontiguousarray(E, dtype=dataset.X.dtype)
    console.info(f"Endmembers: {how} ({E.shape[1]} of them)")
    started = time.perf_counter()
    A = fcls(E, dataset.X, delta=delta) if method == "fcls" else nnls(E, dataset.X)
    seconds = time.perf_counter() - started
    error = relative_error(dataset.X, E, A)
    sums = A.sum(axis=0)
    layer_out = Layer(W=E, H=A, relative_error=error, attrs={"coefficients": method, "endmembers": how})
    result = Result(model=f"abundances-{method}", layers=[layer_out], summary={"relative_error": error},
                    seconds=seconds, converged=True, n_iter=1)
    finish_result(result, dataset, f"abundances-{method}",
                  {"method": method, "delta": delta, "endmembers": endmembers_spec})
    write_result(result, output, force=force)
    summary = {"method": method, "rank": int(E.shape[1]), "relative_error": error,
               "min_sum": float(sums.min()), "max_sum": float(sums.max()), "seconds": seconds,
               "endmembers": how, "output": str(output)}
    console.info(f"{method}: {dataset.X.shape[1]} pixels, rank {E.shape[1]}, relative error {error:.6f}, "
                 f"abundance sums {sums.min():.4f}-{sums.max():.4f}, {seconds:.3g} s; wrote {output}")
    if as_json:
        console.emit_json(summary)
