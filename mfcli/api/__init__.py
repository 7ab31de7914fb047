"""mfcli's Python API: every workflow of the command line, callable from a notebook.

Each ``mfcli`` command parses its options, calls one function here and prints; the function
does the work (read with the reading rules, validate, solve, derive abundances, write a
folder) and says nothing unless given a ``reporter``. Parameters have the command line's
names (``--max-iter`` is ``max_iter``, ``-p theta=0.3`` is ``theta=0.3``); an unknown name
is a :class:`~mfcli.errors.ParameterError` listing the valid ones.

>>> import mfcli
>>> result = mfcli.factorize("sample:samson", 3, model="nmf", init="spa", seed=0)
>>> result.save("samson.h5")                                      # doctest: +SKIP

``data`` is a spec string (``FILE``, ``FILE:VAR``, ``sample:NAME``), a
:class:`~mfcli.dataset.Dataset` (:func:`open_data`), a NumPy array (features x samples, as
the CLI reads a matrix: bands x pixels) or a scipy.sparse matrix, which the NMF family
factorizes without densifying it (:class:`~mfcli.models.matrix.SparseMatrix`). Nothing given
is modified: clipping, dtype conversion and densifying work on copies.

Modules: :mod:`~mfcli.api.common` (the reporter, parameter checks), :mod:`~mfcli.api.data`
(reading and checking data), :mod:`~mfcli.api.factorization` (factorize, unmix),
:mod:`~mfcli.api.results` (load, save, the unmix folder, evaluate), :mod:`~mfcli.api.completion`
(complete). Heavy modules (h5py, matplotlib, the models) are imported inside the functions,
so ``import mfcli`` stays light. A walk-through: docs/api.md.
"""

from mfcli.api.common import READING_RULES, STOPPING, Reporter
from mfcli.api.completion import COMPLETION_APPLIES, Completion, as_ratings, complete
from mfcli.api.data import (DENSIFY_MAX_BYTES, as_dataset, as_working_dtype, check_engine, check_input,
                            finish_result, model_params, open_data, parse_image_shape, read_matrix)
from mfcli.api.factorization import (ABUNDANCES, HARD_CLUSTER_MODELS, REFINE_CHOICES, automatic_init, factorize,
                                     refinement_method, unmix)
from mfcli.api.results import evaluate, load_result, save_pictures, save_result, write_unmix_folder

__all__ = ["Reporter", "open_data", "factorize", "unmix", "complete", "Completion", "evaluate", "load_result",
           "save_result", "write_unmix_folder", "save_pictures", "as_dataset", "as_ratings", "check_input",
           "check_engine", "model_params", "read_matrix", "as_working_dtype", "finish_result", "parse_image_shape",
           "automatic_init", "refinement_method", "READING_RULES", "STOPPING", "DENSIFY_MAX_BYTES", "ABUNDANCES",
           "REFINE_CHOICES", "HARD_CLUSTER_MODELS", "COMPLETION_APPLIES"]
