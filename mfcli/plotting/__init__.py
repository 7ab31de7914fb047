"""Pictures of results: abundance maps, endmember spectra, the hierarchy, convergence, and a
self-contained HTML report.

Every function takes a :class:`~mfcli.result.Result` and returns a matplotlib Figure (drawn on
the Agg canvas, never through pyplot) or writes a file; the format of a picture follows its
file's extension (:func:`mfcli.plotting.style.save_figure`). matplotlib is imported inside the
functions, so importing this package is cheap. No plotting code lives in the core.
"""

from mfcli.plotting.abundances import abundance_figure, truth_abundance_figure
from mfcli.plotting.convergence import convergence_figure
from mfcli.plotting.endmembers import endmember_figure
from mfcli.plotting.report import build_report, write_report
from mfcli.plotting.style import save_figure
from mfcli.plotting.tree import tree_figure

__all__ = ["abundance_figure", "truth_abundance_figure", "convergence_figure", "endmember_figure",
           "tree_figure", "build_report", "write_report", "save_figure"]
