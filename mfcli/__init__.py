"""mfcli: matrix factorization for the command line.

NMF and its constrained variants, deep (hierarchical) orthogonal NMF for hyperspectral
unmixing, and matrix completion for recommender data. The solver core lives in
:mod:`mfcli.models`; the command line in :mod:`mfcli.cli`.
"""

__version__ = "0.1.0"
