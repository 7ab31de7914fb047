"""Reading and writing: data files into Datasets, Results to HDF5, arrays to any format.

The names below are imported on first use (module ``__getattr__``), so that a command that
needs one reader (``mfcli complete`` reads ratings with :mod:`mfcli.io.ratings`) does not import
every format's module, nor h5py, at start-up.
"""

_NAMES = {"describe_file": "mfcli.io.load", "load_dataset": "mfcli.io.load", "parse_spec": "mfcli.io.load",
          "read_result": "mfcli.io.result", "write_result": "mfcli.io.result", "write_array": "mfcli.io.write",
          "write_dataset": "mfcli.io.write"}

__all__ = list(_NAMES)


def __getattr__(name: str):
    import importlib

    if name in _NAMES:
        return getattr(importlib.import_module(_NAMES[name]), name)
    raise AttributeError(f"module 'mfcli.io' has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_NAMES])
