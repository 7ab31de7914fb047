"""mfcli tree: the hierarchy of a deep result as JSON, Newick or Graphviz DOT."""

from __future__ import annotations

import click

from mfcli.cli import console
from mfcli.cli.options import force_option, result_argument


@click.command(short_help="The hierarchy of a deep result as JSON, Newick or DOT.")
@result_argument
@click.option("--format", "fmt", type=click.Choice(["json", "newick", "dot"]), default="json", show_default=True,
              help="json (the schema below), newick (leaves = layer-1 clusters) or dot (Graphviz: draw it with "
                   "`dot -Tpng`, which needs Graphviz installed, e.g. apt install graphviz).")
@click.option("-o", "--output", default="-", show_default=True, metavar="FILE", help="Output file, or '-' for stdout.")
@click.option("--no-members", is_flag=True, help="JSON: leave out the member lists of layer 1 (large images).")
@force_option
def command(result_path: str, fmt: str, output: str, no_members: bool, force: bool) -> None:
    """Write the tree of RESULT (a file written by `mfcli unmix`): each cluster of layer l has as
    children the clusters of layer l-1 assigned to it; layer-1 clusters hold their member
    columns (pixels, users). For soft models each child goes to its largest weight.

    \b
    JSON schema (stable):
      {"ranks": [7, 6, 4, 2], "n_columns": 94249, "unassigned": 0, "index_base": 0,
       "layers": [
         {"layer": 1, "rank": 7, "clusters": [
            {"id": 0, "size": 123, "parent": 2, "members": [0-based column indices], "label": null}, ...]},
         {"layer": 2, "rank": 6, "clusters": [
            {"id": 0, "size": 456, "parent": 1, "children": [ids in layer 1], "label": null}, ...]}, ...]}
    size = number of data columns in the cluster's subtree; members only on layer 1, children on
    layers >= 2; parent null on the last layer; soft models add "weight" (share of the child's
    mass in its parent). Layers are numbered from 1; ids, parents, children and members are
    0-based positions (index_base 0): cluster id k is #k+1 in the tables and pictures and is
    named Ll_(k+1) in Newick and DOT (L2_3 = layer 2's #3).

    \b
    Examples:
      mfcli tree out/result.h5 --format newick
      mfcli tree out/result.h5 --format dot | dot -Tpng > hierarchy_graph.png   # needs Graphviz
    """
    import json
    import sys

    from mfcli.hierarchy import to_dot, to_json_dict, to_newick, tree_from_result
    from mfcli.io.atomic import atomic_file
    from mfcli.io.result import read_result

    tree = tree_from_result(read_result(result_path))
    if fmt == "json":
        text = json.dumps(to_json_dict(tree, include_members=not no_members)) + "\n"
    elif fmt == "newick":
        text = to_newick(tree) + "\n"
    else:
        text = to_dot(tree)
    if output == "-":
        sys.stdout.write(text)
        sys.stdout.flush()
        return
    with atomic_file(output, force=force) as tmp:
        tmp.write_text(text)
    console.info(f"Wrote the {fmt} tree ({', '.join(map(str, tree.ranks))}) to {output}")
