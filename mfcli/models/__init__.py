"""The solver core: factorization models (NumPy/SciPy only; no I/O, no click, no printing).

Progress is reported through a ``callback(iteration, relative_error, **info)`` argument.

One convention for models: a model is a **function** ``model(X, rank, *, ..., **its params) ->
Result`` on X in the papers' orientation (features x samples), registered by name in
:mod:`mfcli.models.registry`, whose ``Param`` entries are the one declaration of its
parameters (names, defaults, ranges). The core has no estimator classes: the estimators
(fit/transform, scikit-learn compatible, samples x features) are in :mod:`mfcli.estimators`,
each a thin layer over the registry's function of its model. Completion (:mod:`mfcli.completion`)
works on ratings, not matrices, so scikit-learn's estimator API does not apply there: its cores
are ``fit_*`` functions and its fit/predict classes stay beside them.

Layers, bottom up: :mod:`~mfcli.models.threads`, :mod:`~mfcli.models.matrix` (how X is read),
:mod:`~mfcli.models.linalg` (shared dense algebra), :mod:`~mfcli.models.stopping` (Stopping,
Monitor), :mod:`~mfcli.models.registry` (declarations), :mod:`~mfcli.models.base` (run set-up
and Result building), then the solvers (:mod:`~mfcli.models.hals`, ``nnls``, ``init``, ``nmf``,
...), then :mod:`mfcli.models.deep`. No import cycle (``tests/test_structure.py``).
"""
