"""The import graph between mfcli's modules, and its cycles.

Reads every module under mfcli/ with :mod:`ast` (nothing is imported) and links module A to
module B when A imports B: ``import mfcli.x``, ``from mfcli.x import y`` (to mfcli.x.y when that
is a module, else mfcli.x), relative imports resolved. Imports at module level (including under
``if``/``try`` at the top) and imports inside functions or classes are counted separately.
A cycle is a strongly connected component of more than one module (Tarjan's algorithm).

    python scripts/import_cycles.py            # cycles of module-level imports, then of all imports
"""

from __future__ import annotations

import ast
import sys
from pathlib import Path

PACKAGE = "mfcli"


def module_names(root: Path) -> dict[str, Path]:
    """Dotted module name -> file, for every .py file of the package under ``root``."""
    names = {}
    for path in sorted((root / PACKAGE).rglob("*.py")):
        parts = list(path.relative_to(root).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        names[".".join(parts)] = path
    return names


def _resolve(node: ast.ImportFrom, current: str, is_package: bool) -> str:
    if not node.level:
        return node.module or ""
    base = current.split(".")
    base = base if is_package else base[:-1]
    base = base[:len(base) - (node.level - 1)]
    return ".".join(base + ([node.module] if node.module else []))


def import_graphs(root: Path) -> tuple[dict[str, set[str]], dict[str, set[str]]]:
    """``({module: modules of the package it imports}, {...})``: the imports at module level
    (executed when the module is imported: not inside a function or class), then those inside
    functions or classes."""
    names = module_names(root)
    graphs: tuple[dict[str, set[str]], dict[str, set[str]]] = ({name: set() for name in names},
                                                               {name: set() for name in names})
    for name, path in names.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        is_package = path.name == "__init__.py"
        for node, nested in _imports(tree):
            graph = graphs[1 if nested else 0]
            targets = []
            if isinstance(node, ast.Import):
                targets = [alias.name for alias in node.names]
            else:
                module = _resolve(node, name, is_package)
                targets = [f"{module}.{alias.name}" if f"{module}.{alias.name}" in names else module
                           for alias in node.names]
            for target in targets:
                while target and target not in names:  # import mfcli.a.b.c: the deepest known module
                    target = target.rpartition(".")[0]
                if target and target != name and target.split(".")[0] == PACKAGE:
                    graph[name].add(target)
    return graphs


def import_edges(root: Path, scope: str = "module") -> dict[str, set[str]]:
    """One of :func:`import_graphs`: ``scope`` "module" or "function"."""
    return import_graphs(root)[0 if scope == "module" else 1]


def _imports(tree: ast.AST, nested: bool = False):
    for child in ast.iter_child_nodes(tree):
        if isinstance(child, (ast.Import, ast.ImportFrom)):
            yield child, nested
        inner = nested or isinstance(child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef, ast.Lambda))
        yield from _imports(child, inner)


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan), each sorted."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found = []
    counter = [0]

    def visit(node: str) -> None:
        index[node] = low[node] = counter[0]
        counter[0] += 1
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph.get(node, ())):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10000))
    for node in sorted(graph):
        if node not in index:
            visit(node)
    return sorted(found)


def main() -> int:
    root = Path(__file__).resolve().parents[1]
    module_level, nested = import_graphs(root)
    combined = {name: module_level[name] | nested[name] for name in module_level}
    for title, graph in (("module-level imports", module_level), ("all imports (module level and inside functions)",
                                                                   combined)):
        found = cycles(graph)
        print(f"{title}: {len(found)} cycle(s)")
        for component in found:
            print("  {" + ", ".join(component) + "}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
