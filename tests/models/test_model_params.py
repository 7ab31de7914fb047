"""Every model's parameters are declared once, by the registry's Params: the functions'
defaults agree with them, the deep models take theirs from them, and an unknown name is
refused with the list of valid ones, from the CLI and from Python."""

from __future__ import annotations

import importlib.util
import inspect

import numpy as np
import pytest

from mfcli.errors import ParameterError
from mfcli.models import registry
from mfcli.models.deep import VARIANTS, deep_factorize

SINGLE = registry.models("single")
DEEP = [spec for spec in registry.models("deep") if spec.name in VARIANTS]  # h2nmf is not a variant of the driver


@pytest.mark.parametrize("spec", SINGLE, ids=lambda spec: spec.name)
def test_single_layer_functions_take_the_declared_params_with_their_defaults(spec):
    signature = inspect.signature(spec.load()).parameters
    for name, param in spec.params.items():
        assert name in signature, f"{spec.name}: {name} is declared but the function does not take it"
        assert signature[name].default == param.default, f"{spec.name}: {name}"


@pytest.mark.skipif(importlib.util.find_spec("sklearn") is None,
                    reason="mfcli.estimators needs scikit-learn (pip install 'mfcli[sklearn]')")
@pytest.mark.parametrize("spec", [spec for spec in registry.models(None) if spec.estimator],
                         ids=lambda spec: spec.name)
def test_estimators_default_to_the_declared_params(spec):
    exposed = spec.load_estimator()().get_params()
    for name, param in spec.params.items():
        if name in exposed:
            assert exposed[name] == param.default, f"{spec.name}: {name}"


@pytest.mark.parametrize("spec", DEEP, ids=lambda spec: spec.name)
def test_deep_variants_read_the_declared_params_and_inits(spec):
    variant = VARIANTS[spec.name]()
    assert variant.params == {name: param.default for name, param in spec.params.items()}
    assert variant.init == spec.default_init and variant.nonnegative == spec.nonnegative


def test_deep_factorize_refuses_an_unknown_parameter_with_the_valid_ones():
    """Today deep_factorize(X, [3, 2], restrats=50) runs and stores restrats in the result."""
    X = np.random.default_rng(0).random((12, 40))
    with pytest.raises(ParameterError, match=r"no parameter 'restrats' \(its parameters: restarts, screen_size"):
        deep_factorize(X, [3, 2], "deep-onmf", restrats=50)
    with pytest.raises(ParameterError, match=r"deep-semi has no parameter 'theta' \(its parameters: none\)"):
        deep_factorize(X, [3, 2], "deep-semi", theta=0.5)
    with pytest.raises(ParameterError, match="no parameter 'loss'"):  # deep sparse NMF has the global loss only
        deep_factorize(X, [3, 2], "deep-sparse", loss="global")


@pytest.mark.parametrize("model, params, message", [
    ("deep-nsnmf", {"theta": 2.0}, r"theta must be a finite number in \[0, 1\], got 2.0"),
    ("deep-onmf", {"restarts": 0}, "restarts must be an integer >= 1"),
    ("deep-onmf", {"loss": "total"}, "loss must be one of global, layers, got 'total'"),
    ("multilayer", {"first_layer": "svd"}, "first_layer must be one of nmf, minvol"),
    ("deep-nmf", {"layer_weight": 0}, "layer_weight must be a finite number > 0"),
])
def test_deep_parameter_values_are_checked_against_the_declaration(model, params, message):
    X = np.random.default_rng(0).random((12, 40))
    with pytest.raises(ParameterError, match=message):
        deep_factorize(X, [3, 2], model, **params)


def test_the_result_records_the_given_parameters_as_checked():
    X = np.random.default_rng(0).random((12, 40))
    result = deep_factorize(X, [3, 2], "deep-onmf", restarts=2.0, max_iter=1)
    assert result.params["restarts"] == 2 and isinstance(result.params["restarts"], int)


def test_registry_run_refuses_an_unknown_parameter_with_the_valid_ones():
    X = np.random.default_rng(0).random((12, 40))
    with pytest.raises(ParameterError, match=r"model nsnmf has no parameter 'thetta' \(its parameters: theta\)"):
        registry.get_model("nsnmf").run(X, 3, thetta=0.2)
    with pytest.raises(ParameterError, match="model deep-aonmf has no parameter 'l1'"):
        registry.get_model("deep-aonmf").run(X, [3, 2], l1=0.1)
