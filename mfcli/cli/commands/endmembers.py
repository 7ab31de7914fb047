"""mfcli endmembers: pure-pixel endmember extraction (SPA, VCA, N-FINDR) with abundances."""

from __future__ import annotations

import click

from mfcli.cli.options import (data_options, dtype_option, input_argument, rank_option, result_output_options,
                               seed_option)


@click.command(short_help="Extract endmembers among the pixels (SPA, VCA, N-FINDR, SNPA) and their abundances.")
@input_argument
@data_options
@rank_option
@click.option("--method", type=click.Choice(["spa", "vca", "nfindr", "snpa"]), default="vca", show_default=True,
              help="spa: successive projections; vca: vertex component analysis; nfindr: maximum simplex volume; "
                   "snpa: successive nonnegative projections.")
@click.option("--abundances", "abundance_method", type=click.Choice(["fcls", "nnls", "none"]), default="fcls",
              show_default=True, help="Abundances of every pixel for the extracted endmembers.")
@seed_option
@dtype_option
@result_output_options
def command(input_spec: str, rank: int, method: str, abundance_method: str, seed: int, dtype: str | None,
            output: str, force: bool, as_json: bool, **data_opts) -> None:
    """Pick RANK pixels of INPUT (bands x pixels) as endmembers, assuming pure pixels exist, and
    write a result file: W = the endmember spectra, H = their abundances (FCLS: nonnegative,
    summing to one; NNLS: nonnegative), arrays/indices = the chosen pixels (0-based columns of the
    data; where nodata pixels were left out, `pixels` in --json gives their place in the image).

    \b
    Methods:
      spa     successive projection algorithm (Araujo et al. 2001; Gillis & Vavasis 2014)
      vca     vertex component analysis (Nascimento & Bioucas-Dias 2005), seeded
      nfindr  N-FINDR (Winter 1999): pixels spanning the simplex of largest volume,
              started from SPA's pixels
      snpa    successive nonnegative projection algorithm (Gillis 2014): SPA with the
              distance to the convex hull of the pixels picked so far (robust to noise)

    --json prints {method, rank, indices, pixels (row, col, where the image shape is known),
    abundances, relative_error, seconds, output}.

    \b
    Example:
      mfcli endmembers sample:samson --rank 3 --method vca -o samson_vca.h5
      mfcli evaluate samson_vca.h5 --truth sample:samson
    """
    import time

    import numpy as np

    from mfcli.cli import console
    from mfcli.cli.commands._factorization import finish_result
    from mfcli.cli.options import check_factorization_input, load_input
    from mfcli.io.atomic import check_output_path
    from mfcli.io.result import write_result
    from mfcli.metrics import relative_error
    from mfcli.models.endmembers import extract_endmembers
    from mfcli.models.nnls import fcls, nnls
    from mfcli.result import Layer, Result
    from mfcli.validation import check_rank

    check_output_path(output, force)
    dataset = load_input(input_spec, dtype=dtype, **data_opts)
    check_factorization_input(dataset, method, nonnegative=False)
    check_rank(rank, dataset.X.shape)
    started = time.perf_counter()
    E, indices = extract_endmembers(dataset.X, rank, method=method, seed=seed)
    if abundance_method == "fcls":
        A = fcls(E, dataset.X)
    elif abundance_method == "nnls":
        A = nnls(E, dataset.X)
    else:
        A = np.zeros((rank, dataset.X.shape[1]), dtype=dataset.X.dtype)
    seconds = time.perf_counter() - started
    error = relative_error(dataset.X, E, A) if abundance_method != "none" else None
    layer = Layer(W=E, H=A, relative_error=error, arrays={"indices": indices},
                  attrs={"coefficients": abundance_method, "method": method})
    result = Result(model=method, layers=[layer], summary={"relative_error": error}, seconds=seconds,
                    converged=True, n_iter=1)
    finish_result(result, dataset, method, {"method": method, "rank": rank, "seed": seed,
                                            "abundances": abundance_method})
    write_result(result, output, force=force)
    pixels = None
    if dataset.image_shape is not None:
        rows, cols = np.unravel_index(dataset.pixel_numbers(indices), dataset.image_shape,
                                      order=dataset.pixel_order or "C")
        pixels = [[int(row), int(col)] for row, col in zip(rows, cols)]
    summary = {"method": method, "rank": rank, "indices": [int(j) for j in indices], "pixels": pixels,
               "abundances": abundance_method, "relative_error": error, "seconds": seconds, "output": str(output)}
    where = ", ".join(f"{j}" + (f" (row {p[0]}, col {p[1]})" if pixels else "")
                      for j, p in zip(summary["indices"], pixels or [None] * rank))
    console.info(f"{method}: endmembers at pixels {where}")
    console.info(f"abundances {abundance_method}, relative error "
                 f"{'-' if error is None else f'{error:.6f}'}, {seconds:.3g} s; wrote {output}")
    if as_json:
        console.emit_json(summary)
