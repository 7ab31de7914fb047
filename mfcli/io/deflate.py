"""Deflate in the zlib format (RFC 1950) for what mfcli writes compressed: the chunks of a result
file's large arrays (HDF5's deflate filter) and the PNG pictures' pixel data.

Where the ``isal`` package is installed (a dependency of mfcli on the machines it has wheels for),
Intel's ISA-L deflates, else Python's zlib. Either output is a standard zlib stream that every
reader inflates (HDF5's own filter, MATLAB, PNG decoders). On an unmix result of the Urban
stand-in (11 MB of arrays, shuffled as HDF5 does), ISA-L's level 1 took 40 ms against 158 ms
for zlib's level 1 with its run-length strategy, for a file 8% larger; on the ten pictures,
14 ms against 79 ms, 5% larger (an Intel Xeon; timed outside benchmarks/).
"""

from __future__ import annotations

import zlib

try:
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - the machines without a wheel of isal
    _isal = None

ISAL_LEVEL = 1  # ISA-L's levels are 0-3; 1 compressed these arrays and pictures as well as 2 and 3
ZLIB_LEVEL = 1


def deflate(data, run_length: bool = False) -> bytes:
    """``data`` (bytes-like) deflated in the zlib format; with zlib, ``run_length`` uses its
    run-length strategy (Z_RLE: faster, and smaller on shuffled floating-point arrays)."""
    if _isal is not None:
        return _isal.compress(data, ISAL_LEVEL)
    if not run_length:
        return zlib.compress(data, ZLIB_LEVEL)
    compressor = zlib.compressobj(ZLIB_LEVEL, zlib.DEFLATED, 15, 8, zlib.Z_RLE)
    return compressor.compress(data) + compressor.flush()

