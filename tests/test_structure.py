"""The layout: no import cycle between mfcli's modules (scripts/import_cycles.py reads the
imports with ast), counting imports at module level and, separately, all imports (those inside
functions too: a cycle broken by a function-level import is still a cycle of the design)."""

from __future__ import annotations

from pathlib import Path

import pytest

from checks import load_script

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def import_cycles():
    return load_script("import_cycles")


@pytest.fixture(scope="module")
def graphs(import_cycles):
    """(imports at module level, imports inside functions) of every mfcli module."""
    return import_cycles.import_graphs(REPO)


def test_the_graph_sees_the_imports_it_must(import_cycles, graphs):
    """A check that would pass on an empty graph proves nothing: known edges are found, of
    both kinds, and a planted cycle is reported."""
    module_level, nested = graphs
    assert "mfcli.models.stopping" in module_level["mfcli.models.base"]
    assert "mfcli.models.deep.driver" in module_level["mfcli.models.deep"]
    assert "mfcli.models.onmf" in nested["mfcli.models.nnls"]  # imported inside solve_coefficients
    planted = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}
    assert import_cycles.cycles(planted) == [["a", "b", "c"]]


def test_no_import_cycle_at_module_level(import_cycles, graphs):
    assert import_cycles.cycles(graphs[0]) == []


# Imports inside functions that close a cycle on purpose, each with its reason.
DELIBERATE = {
    ("mfcli.result", "mfcli.api"): "Result.save(path) (the API of issue 16) calls mfcli.api.save_result when it runs: "
                                   "the core type offers saving without importing any I/O itself",
}


def test_no_import_cycle_counting_imports_inside_functions(import_cycles, graphs):
    module_level, nested = graphs
    graph = {name: module_level[name] | nested[name] for name in module_level}
    for source, target in DELIBERATE:
        assert target in nested[source], f"{source} no longer imports {target}: remove it from DELIBERATE"
        graph[source] = graph[source] - {target}
    assert import_cycles.cycles(graph) == []
