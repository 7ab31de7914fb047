"""finish_layers: the layers refined and their abundances solved, shared with a forked copy of
the process or not, give the numbers of the steps done one after the other (to rounding: the
forked processes use one BLAS thread each)."""

from __future__ import annotations

import copy

import numpy as np
import pytest

from mfcli.errors import MfcliError
from mfcli.models.deep import deep_factorize, layer_abundances
from mfcli.models.deep.finish import finish_layers
from mfcli.models.refine import refine_layers, refined_coefficients
from mfcli.parallel import can_fork


def _scene(seed: int = 0, m: int = 40, n: int = 3000):
    rng = np.random.default_rng(seed)
    spectra = rng.random((m, 5)) + 0.1
    return np.asfortranarray((spectra @ rng.dirichlet(np.full(5, 0.3), n).T + 0.01 * rng.random((m, n)))
                             .astype(np.float32))


def _fields(layers):
    return [(layer.basis, layer.abundances, layer.coefficients, layer.relative_error, layer.attrs.get("refinement"),
             layer.attrs.get("cluster_relative_error"), layer.arrays.get("refinement_objective")) for layer in layers]


def _assert_same(got, expected):
    for mine, theirs in zip(got, expected):
        for a, b in zip(mine, theirs):
            if isinstance(a, np.ndarray) or isinstance(b, np.ndarray):
                np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)  # float32 results
            elif isinstance(a, float):
                assert a == pytest.approx(b, rel=1e-12)
            else:
                assert a == b


@pytest.mark.parametrize("refine", ["edaa", "none"])
@pytest.mark.parametrize("parallel", [False, pytest.param(True, marks=pytest.mark.skipif(
    not can_fork(), reason="this system cannot fork a copy of the process (Linux with 2 cores)"))])
def test_finishing_the_layers_is_the_steps_one_after_the_other(refine, parallel):
    from threadpoolctl import threadpool_limits

    X = _scene()
    result = deep_factorize(X, [5, 4, 3, 2], model="deep-onmf", init="spa", seed=0)
    # both on one BLAS thread, as the forked processes are: OpenBLAS's Haswell kernels round some
    # of these products differently on one thread and on two (abundances 4e-6 apart)
    with threadpool_limits(limits=1, user_api="blas"):
        expected = copy.deepcopy(result.layers)
        if refine == "edaa":
            refine_layers(X, expected, seed=0)
        layer_abundances(type("R", (), {"layers": expected})(), X, "nnls")
        if refine == "edaa":
            refined_coefficients(X, expected)
        layers = copy.deepcopy(result.layers)
        finish_layers(X, layers, refine=refine, abundances="nnls", seed=0, parallel=parallel)
    _assert_same(_fields(layers), _fields(expected))
    if refine == "edaa":
        assert all(layer.coefficients is layer.abundances for layer in layers)  # one array, stored once


@pytest.mark.skipif(not can_fork(), reason="this system cannot fork a copy of the process (Linux with 2 cores)")
def test_a_failure_in_the_forked_copy_is_raised_here(monkeypatch):
    import os
    import time

    import mfcli.models.deep.abundances as abundances

    X = _scene(1)
    result = deep_factorize(X, [5, 2], model="deep-onmf", init="spa", seed=0)
    real = abundances.abundances_of_layer
    here = os.getpid()

    def fails_in_the_copy(layer, data, method="nnls", **options):
        if os.getpid() != here:
            raise FloatingPointError("boom")
        time.sleep(0.5)  # the copy takes the other layer meanwhile
        return real(layer, data, method, **options)

    monkeypatch.setattr(abundances, "abundances_of_layer", fails_in_the_copy)
    with pytest.raises(MfcliError, match="finishing the layers failed: FloatingPointError: boom"):
        finish_layers(X, result.layers, refine="none", parallel=True)
