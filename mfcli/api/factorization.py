"""The factorization workflows: :func:`factorize` (``mfcli factorize``) and :func:`unmix`
(``mfcli unmix``), each returning a :class:`~mfcli.result.Result`."""

from __future__ import annotations

import os
from collections.abc import Sequence
from typing import Any

from mfcli.api.common import READING_RULES, SILENT, STOPPING, Reporter, as_specs, check_rank, check_seed, \
    refuse_unknown
from mfcli.api.data import (DENSE_MODELS, as_dataset, as_working_dtype, check_engine, check_input, checked_matrix,
                            densify, finish_result, model_params, read_matrix)


FACTORIZE_PARAMS = ("loss", "init", "init_w", "init_h", *STOPPING, "seed", "dtype", "clip_negative")


def factorize(data, rank: int, model: str = "nmf", *, reporter: Reporter | None = None, **params: Any):
    """Factorize ``data`` (features x samples) as X ~= W H with a model of the registry, as
    ``mfcli factorize`` does, and return the :class:`~mfcli.result.Result` (not written:
    :meth:`Result.save`).

    Parameters (the CLI's names): ``loss`` (fro, kl, is, beta=B), ``init`` (the model's
    methods), ``init_w``/``init_h`` (arrays, data files or result files), ``max_iter``,
    ``tol``, ``target_error``, ``max_time``, ``seed`` (0), ``dtype``, ``clip_negative``, the
    model's own parameters (``mfcli factorize --help`` lists them, e.g. ``theta`` for nsnmf),
    and for a spec string the reading rules of :func:`open_data`. A scipy.sparse matrix (or
    ``.npz`` file) stays sparse for the models that read X through products (NMF, ONMF, AONMF,
    semi-NMF, sparse NMF, nsNMF, AA, SVD); minvol and edaa densify it, with a note.
    """
    from mfcli.errors import ParameterError
    from mfcli.models import registry

    spec = registry.get_model(model, "single")
    reporter = reporter or SILENT
    extra, rules, rest = _split_params(spec, params, FACTORIZE_PARAMS)
    rank = check_rank(rank)
    loss = spec.check_loss(rest.get("loss") or "fro")
    init, init_w, init_h = rest.get("init"), rest.get("init_w"), rest.get("init_h")
    if not spec.inits and (init or init_w is not None or init_h is not None):
        raise ParameterError(f"model {spec.name} takes no initialization (--init/--init-w/--init-h)")
    if init is not None and init not in spec.all_inits:
        raise ParameterError(f"model {spec.name} takes --init {', '.join(spec.all_inits)}, not '{init}'")
    seed = check_seed(rest.get("seed", 0))

    check_engine(spec, data, rules)
    dataset = as_dataset(data, reporter=reporter, dtype=rest.get("dtype"), **rules)
    if spec.name in DENSE_MODELS:
        dataset.X = densify(dataset.X, reporter, f"model {spec.name}")
    check_input(dataset, spec.name, nonnegative=spec.nonnegative, clip_negative=bool(rest.get("clip_negative")),
                reporter=reporter)
    kwargs = {**{key: rest[key] for key in STOPPING if rest.get(key) is not None}, "seed": seed, **extra}
    if spec.inits:
        kwargs["init"] = init or spec.default_init
        # a given start is used in the data's working precision (the core refuses a mismatch)
        if init_w is not None:
            kwargs["W"] = as_working_dtype(read_matrix(init_w, "W"), dataset.X.dtype)
        if init_h is not None:
            kwargs["H"] = as_working_dtype(read_matrix(init_h, "H"), dataset.X.dtype)
    if spec.losses != ("fro",):
        kwargs["loss"] = loss
    start = "W given" if init_w is not None else kwargs.get("init")
    if isinstance(init_w, (str, os.PathLike)):
        start = f"W from {os.fspath(init_w)}"
    if init_h is not None:
        start = f"{start}, H from {os.fspath(init_h) if isinstance(init_h, (str, os.PathLike)) else 'given'}"
    reporter.info(f"Factorizing with {spec.name}, rank {rank}"
                  + (f", loss {loss}" if loss != "fro" else "") + (f", init {start}" if start else ""))
    with reporter.progress(f"{spec.name} r={rank}", kwargs.get("max_iter", 200)) as progress:
        result = spec.run(checked_matrix(dataset, spec), rank, callback=progress, **kwargs)
    finish_result(result, dataset, spec.name, {"model": spec.name, "loss": loss, **extra},
                  ["python", "mfcli.factorize"])
    return result


def _split_params(spec, params: dict[str, Any], command_params: Sequence[str]):
    """``params`` of factorize/unmix split into (the model's own parameters, checked; the
    reading rules of a spec string; the command's parameters), refusing any other name with the
    list of valid ones."""
    own = {name: value for name, value in params.items() if name in spec.params}
    rules = {name: value for name, value in params.items() if name in READING_RULES and name != "dtype"}
    rest = {name: value for name, value in params.items() if name not in own and name not in rules}
    refuse_unknown(rest, [*command_params, *spec.params], f"model {spec.name}", reading_rules=True)
    return model_params(spec, own), rules, rest


# -- unmix -------------------------------------------------------------------------------------

UNMIX_PARAMS = ("init", *STOPPING, "seed", "dtype", "clip_negative", "refine", "abundances", "truth")
ABUNDANCES = ("nnls", "fcls", "none")
REFINE_CHOICES = ("auto", "edaa", "none")
HARD_CLUSTER_MODELS = ("deep-onmf", "h2nmf")


def automatic_init(spec, dataset) -> str:
    """``init="auto"``: SPA for images when the model's default is ONMF restarts, else its default.

    Restarts keep the start of lowest ONMF objective, which on a hyperspectral image prefers
    splitting the large materials to isolating small distinct ones; SPA's starts are pure
    pixels, the vertices of the data cone, which is what unmixing looks for (Gillis' practice
    for ONMF on images). For other data the objective is what the user asks for.
    benchmarks/bench_unmix.py prints both inits' spectral angles on Urban (metal roofs included).
    """
    if dataset.is_image and spec.default_init == "restarts" and "spa" in spec.all_inits:
        return "spa"
    return spec.default_init


def refinement_method(choice: str, model: str, out_of_core: bool, is_image: bool = True) -> str:
    """``refine``: auto is edaa for the hard clusterings of an image (their endmembers are
    centroids of mixed pixels; benchmarks/bench_unmixing.py measures the refined layers against
    them) with the data in memory, none otherwise (a matrix of ratings has clusters of users,
    not mixed pixels). edaa out of core is refused (it samples pixels at random)."""
    from mfcli.errors import ParameterError

    if choice not in REFINE_CHOICES:
        raise ParameterError(f"refine must be one of {', '.join(REFINE_CHOICES)}, not {choice!r}")
    if choice == "auto":
        return "edaa" if model in HARD_CLUSTER_MODELS and not out_of_core and is_image else "none"
    if choice == "edaa" and out_of_core:
        raise ParameterError("--refine edaa needs the data in memory; use --engine memory or --refine none")
    return choice


def unmix(data, ranks: Sequence[int], model: str = "deep-onmf", *, reporter: Reporter | None = None,
          **params: Any):
    """Deep (hierarchical) unmixing of ``data`` (bands x pixels) with layers of ranks ``ranks``
    (first layer first, non-increasing), as ``mfcli unmix`` does: the deep factorization, the
    endmembers refined into materials (``refine``: auto, edaa, none), the soft abundances of
    every layer (``abundances``: nnls, fcls, none) and, with ``truth`` (specs as for
    :func:`evaluate`), every layer's estimates named after the materials they match. Returns
    the :class:`~mfcli.result.Result`; :func:`write_unmix_folder` writes the folder.

    Parameters (the CLI's names): ``init`` ("auto": SPA for images with deep-onmf),
    ``max_iter``, ``tol``, ``target_error``, ``max_time``, ``seed``, ``dtype``,
    ``clip_negative``, ``refine``, ``abundances``, ``truth``, the model's own parameters
    (``mfcli unmix --help``), and for a spec string the reading rules of :func:`open_data`.
    On the stream/dask engines the abundances are computed while the folder is written
    (give the Dataset to :func:`write_unmix_folder`).
    """
    import time

    from mfcli.errors import ParameterError
    from mfcli.models import registry
    from mfcli.validation import check_ranks

    started = time.perf_counter()
    spec = registry.get_model(model, "deep")
    reporter = reporter or SILENT
    extra, rules, rest = _split_params(spec, params, UNMIX_PARAMS)
    init = rest.get("init") or "auto"
    if init != "auto" and init not in spec.all_inits:
        raise ParameterError(f"model {spec.name} takes --init auto, {', '.join(spec.all_inits)}, not '{init}'")
    abundances = rest.get("abundances") or "nnls"
    if abundances not in ABUNDANCES:
        raise ParameterError(f"abundances must be one of {', '.join(ABUNDANCES)}, not {abundances!r}")
    refine = rest.get("refine") or "auto"
    seed = check_seed(rest.get("seed", 0))
    try:
        ranks = [int(r) for r in ranks]
    except (TypeError, ValueError):
        raise ParameterError(f"ranks must be a list of integers, e.g. [7, 6, 4, 2], not {ranks!r}") from None

    check_engine(spec, data, rules)
    dataset = as_dataset(data, reporter=reporter, dtype=rest.get("dtype"), **rules)
    dataset.X = densify(dataset.X, reporter, "unmixing")
    check_input(dataset, spec.name, nonnegative=spec.nonnegative, clip_negative=bool(rest.get("clip_negative")),
                reporter=reporter)
    ranks = check_ranks(ranks, dataset.X.shape)
    truth_specs = as_specs(rest.get("truth"))
    truth = _read_truth(truth_specs, dataset, reporter) if truth_specs else None  # before the run: fail fast
    out_of_core = hasattr(dataset.X, "scan")
    kwargs = {**{key: rest[key] for key in STOPPING if rest.get(key) is not None}, "seed": seed, **extra}
    kwargs["init"] = automatic_init(spec, dataset) if init == "auto" else init
    reporter.info(f"Unmixing with {spec.name}, ranks {','.join(map(str, ranks))}, init {kwargs['init']}")
    matrix = checked_matrix(dataset, spec)
    with reporter.progress(spec.name, kwargs.get("max_iter", 100)) as progress:
        result = spec.run(matrix, ranks, callback=progress, **kwargs)
    refinement = refinement_method(refine, spec.name, out_of_core, dataset.is_image)
    if refine == "auto" and refinement == "none" and out_of_core and spec.name in HARD_CLUSTER_MODELS:
        reporter.info(f"Endmembers not refined into materials: --refine needs the data in memory (--engine "
                      f"{dataset.X.engine})")
    if refinement != "none" or (abundances != "none" and not out_of_core):  # refinement is "none" out of core
        from contextlib import nullcontext

        from mfcli.models.deep.finish import finish_layers

        refining = reporter.progress("refining endmembers", 25) if refinement != "none" else nullcontext()
        with refining as progress:
            finish_layers(matrix, result.layers, refine=refinement, abundances=abundances, seed=seed,
                          callback=progress)
    if refinement != "none":
        # The model's error is its last layer's (mfcli.summary), now that of the refined endmembers;
        # the deep factorization's own error, where the joint refinement's curve ends, is kept apart.
        result.summary["unrefined_relative_error"] = result.summary.get("relative_error")
        result.summary["relative_error"] = result.layers[-1].relative_error
    elif abundances != "none":  # out of core: computed block by block while the folder is written
        for layer in result.layers:
            layer.attrs["abundances"] = abundances
    finish_result(result, dataset, spec.name, {"model": spec.name, "abundances": abundances, "refine": refinement,
                                               **extra}, ["python", "mfcli.unmix"])
    if truth is not None:
        _name_after_truth(result, truth, truth_specs, reporter)
    result.seconds = time.perf_counter() - started
    return result


def _read_truth(truth_specs, dataset, reporter: Reporter):
    """The ground truth oriented for the data (as `mfcli evaluate` reads it)."""
    from mfcli.io.truth import load_truth

    truth = load_truth(list(truth_specs), n_bands=dataset.n_features, n_pixels=dataset.n_samples,
                       image_shape=dataset.image_shape, pixel_order=dataset.pixel_order)
    for note in truth.notes:
        reporter.detail(f"  {note}")
    return truth


def _name_after_truth(result, truth, truth_specs, reporter: Reporter) -> None:
    """Label every layer's estimates with the ground-truth materials they match (as evaluate)."""
    from mfcli.plotting.truth import label_with_truth

    labels = label_with_truth(result, truth)
    how = "spectral angle" if truth.endmembers is not None else "abundance RMSE"
    named = sum(label is not None for names in labels for label in names)
    reporter.info(f"Named {named} estimates after the materials of {', '.join(truth_specs)} (matched on {how}, "
                  "as mfcli evaluate matches them)")
