"""mfcli: matrix factorization for the command line and for Python.

NMF and its constrained variants, deep (hierarchical) orthogonal NMF for hyperspectral
unmixing, and matrix completion for recommender data. The solver core lives in
:mod:`mfcli.models`; the command line in :mod:`mfcli.cli`; the Python API (the same
workflows as the commands) in :mod:`mfcli.api`, whose functions are available here::

    import mfcli
    result = mfcli.unmix("sample:urban", [7, 6, 4, 2])
    mfcli.write_unmix_folder(result, "urban-run")

The API is imported on first use (module ``__getattr__``), so ``import mfcli`` and the CLI's
start-up stay light.
"""

__version__ = "0.1.0"

_API = ("open_data", "factorize", "unmix", "complete", "evaluate", "load_result", "save_result",
        "write_unmix_folder", "save_pictures", "Reporter")
_OTHER = {"Result": "mfcli.result", "Dataset": "mfcli.dataset"}

__all__ = ["__version__", *_API, *_OTHER]


def __getattr__(name: str):
    import importlib

    if name in _API:
        return getattr(importlib.import_module("mfcli.api"), name)
    if name in _OTHER:
        return getattr(importlib.import_module(_OTHER[name]), name)
    raise AttributeError(f"module 'mfcli' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_API, *_OTHER])
