"""The solver core: factorization models (NumPy/SciPy only; no I/O, no click, no printing).

Progress is reported through a ``callback(iteration, relative_error, **info)`` argument.
"""
