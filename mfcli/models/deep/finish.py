"""The layers of a hierarchy finished as `mfcli unmix` finishes them: every layer's endmembers
refined into materials (:mod:`mfcli.models.refine`), then its soft abundances
(:mod:`mfcli.models.deep.abundances`) and, where refined, its coefficients and error.

Past the refinement's shared setup, each layer's work depends on no other layer's, and it is
many small NumPy steps that hold Python's lock (entropic descent, block principal pivoting), so
the layers are shared between this process and a forked copy of it where the system allows
(:class:`mfcli.parallel.ForkedCall`): each takes the next layer, largest rank first, when it is
free (:class:`mfcli.parallel.WorkQueue`). The results are those of the layers done one after the
other (to rounding: each process then uses one BLAS thread).
"""

from __future__ import annotations

from mfcli.errors import MfcliError, ParameterError

# Past this many entries of the layers' coefficients (sum of ranks x pixels) a forked copy pays
# for its start (a few milliseconds); below it the layers are done here.
FORK_MIN_ENTRIES = 1_000_000

# The fields of a layer that finishing sets: what comes back from the forked copy.
FIELDS = ("basis", "abundances", "coefficients", "relative_error")


def finish_layers(X, layers, *, refine: str = "edaa", abundances: str = "nnls", seed: int = 0, callback=None,
                  parallel: bool | None = None) -> None:
    """Refine (``refine``: edaa or none), then solve the abundances of (``abundances``: nnls,
    fcls or none), every layer in place, as :func:`~mfcli.models.refine.refine_layers`,
    :func:`~mfcli.models.deep.layer_abundances` and
    :func:`~mfcli.models.refine.refined_coefficients` one after the other would.
    ``parallel``: share the layers with a forked copy of this process (default: where
    :func:`mfcli.parallel.can_fork` and the layers are large enough); ``callback`` follows the
    refinement of the layers done in this process."""
    from mfcli.models.matrix import InMemoryMatrix, as_data_matrix
    from mfcli.models.refine import REFINEMENTS, Refinement
    from mfcli.parallel import ForkedCall, WorkQueue, can_fork

    if refine not in REFINEMENTS:
        raise ParameterError(f"unknown refinement '{refine}'; use one of {', '.join(REFINEMENTS)}")
    data = as_data_matrix(X)
    data.sq_norm()  # once, before any fork: both processes use it
    # held only by this list, which each process empties: its arrays are let go when the process
    # has no layer left (it keeps only the chosen pixels' projections, not the pixels themselves)
    shared = [Refinement(data, layers, seed=seed)] if refine != "none" else []

    def work(indices, report=None) -> dict:
        return _finish(data, layers, shared, abundances, indices, report)

    entries = sum(layer.rank for layer in layers) * data.shape[1]
    order = sorted(range(len(layers)), key=lambda index: -layers[index].rank)  # the costliest first
    if parallel is None:  # NumPy data only: a GPU's context, for one, does not survive a fork
        parallel = (isinstance(data, InMemoryMatrix) and len(layers) >= 2 and entries >= FORK_MIN_ENTRIES
                    and can_fork())
    if not parallel:
        work(order, callback)
        return
    from threadpoolctl import threadpool_limits

    queue = WorkQueue(order)
    # one BLAS thread in each process (the copy inherits the setting): two processes of two
    # threads each on two cores spent their time waiting for each other (the whole `unmix` of
    # Urban took 2.8-2.9 s instead of 2.1-2.3 s, timed outside benchmarks/)
    try:
        with threadpool_limits(limits=1, user_api="blas"):
            forked = ForkedCall(work, queue, wrap_error=_internal_error,
                                silent=lambda: MfcliError("the process finishing half of the layers ended without a word"))
            try:
                work(queue, callback)
            except BaseException:
                forked.cancel()
                raise
    finally:
        queue.close()
    for index, fields in forked.result().items():
        layer = layers[index]
        for name in FIELDS:
            setattr(layer, name, fields[name])
        layer.attrs.update(fields["attrs"])
        layer.arrays.update(fields["arrays"])


def _finish(data, layers, shared: list, abundances: str, indices, callback) -> dict:
    """Finish the layers ``indices`` (any iterable, a :class:`~mfcli.parallel.WorkQueue` among
    them), each refined (``shared``: [the Refinement] or []) and then given its abundances;
    returns their fields (for the parent of a forked copy)."""
    from mfcli.models.deep.abundances import abundances_of_layer
    from mfcli.models.refine import refined_coefficients_of_layer

    refinement = shared.pop() if shared else None
    done = []
    for index in indices:
        if refinement is not None:
            refinement.refine(index, callback=callback)
        layer = layers[index]
        products = (abundances_of_layer(layer, data, abundances, products=refinement is not None)
                    if abundances != "none" else None)
        if refinement is not None:
            refined_coefficients_of_layer(data, layer, products=products)
        done.append(index)
    del refinement
    return {index: {**{name: getattr(layers[index], name) for name in FIELDS},
                    "attrs": {key: layers[index].attrs[key] for key in ("refinement", "abundances",
                                                                         "cluster_relative_error")
                              if key in layers[index].attrs},
                    "arrays": {key: value for key, value in layers[index].arrays.items()
                               if key == "refinement_objective"}}
            for index in done}


def _internal_error(exc: BaseException) -> MfcliError:
    return MfcliError(f"finishing the layers failed: {type(exc).__name__}: {exc}")
