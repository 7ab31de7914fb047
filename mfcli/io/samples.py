"""Bundled samples, named ``sample:NAME`` wherever a file is accepted.

The files live in ``sample_data/`` (installed as ``mfcli/sample_data``). They are real data
stored compactly (float32, compressed) in the layouts users bring, so loading a sample
exercises the same loader as a user's file.
"""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import numpy as np

from mfcli.errors import InputError
from mfcli.io.formats import Container, DictContainer, open_container, sha256_of

URBAN_SCALE = 1000.0
URBAN_NOISE = 0.002  # standard deviation of the added noise, in reflectance units
URBAN_SEED = 0
# HYDICE Urban keeps 162 of 210 bands; removed (1-based): 1-4, 76, 87, 101-111, 136-153, 198-210.
URBAN_REMOVED_BANDS = [*range(1, 5), 76, 87, *range(101, 112), *range(136, 154), *range(198, 211)]


@dataclass(frozen=True)
class Sample:
    """A bundled sample. ``ratings_rows``: for a ratings matrix, what its rows are ("users" or
    "items"), so that `mfcli complete` reads it users x items."""

    name: str
    file: str
    kind: str
    description: str
    truth: str | None = None
    ratings_rows: str | None = None


SAMPLES = {
    s.name: s
    for s in (
        Sample("samson", "samson.mat", "image",
               "Samson scene, 95x95 pixels, 156 bands (401-889 nm), reflectance 0-1; "
               "3 materials (soil, tree, water) with ground truth GT, S_GT and their names", "GT, S_GT"),
        Sample("moffett", "moffett.mat", "image",
               "Moffett Field crop, 50x50 pixels, 184 AVIRIS bands (wavelengths not recorded), 0-1; 3 materials "
               "(water, soil, vegetation) with ground truth GT, S_GT and their names", "GT, S_GT"),
        Sample("urban", "urban_groundtruth.mat", "image",
               "HYDICE Urban stand-in, 307x307 pixels, 162 bands, in the Urban_R162 layout: a "
               "reconstruction X = M A from the published 6-material ground truth (real spectra and "
               f"abundance maps) plus seeded Gaussian noise (sd {URBAN_NOISE:g}), times maxValue = "
               f"{URBAN_SCALE:g}; not the sensor image", "M, A"),
        Sample("survey-ratings", "survey_ratings.csv", "matrix",
               "the deep-MF survey's 9 movies x 15 users ratings (1-10): rows 1-3 horror, 4-6 comedy, "
               "7-9 biopic (`mfcli complete` reads it as 15 users x 9 movies)", ratings_rows="items"),
        Sample("usgs-1995", "usgs_1995_library.mat", "library",
               "USGS 1995 spectral library (public domain): 498 mineral spectra at 224 AVIRIS bands "
               "(383-2508 nm), for `mfcli evaluate --library sample:usgs-1995`"),
    )
}


def sample_dir() -> Path:
    """Folder of the bundled sample files (installed package or source checkout)."""
    installed = resources.files("mfcli") / "sample_data"
    if installed.is_dir():
        return Path(str(installed))
    checkout = Path(__file__).resolve().parents[2] / "sample_data"
    if checkout.is_dir():
        return checkout
    raise InputError("the bundled sample data are missing from this installation; reinstall mfcli")


def sample_path(name: str) -> Path:
    if name not in SAMPLES:
        raise InputError(f"unknown sample '{name}'; available: {', '.join(SAMPLES)} (see mfcli samples)")
    return sample_dir() / SAMPLES[name].file


def urban_kept_bands() -> np.ndarray:
    removed = set(URBAN_REMOVED_BANDS)
    return np.array([b for b in range(1, 211) if b not in removed], dtype=np.float64)


def build_urban(gt: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The Urban_R162 layout from the ground truth: Y = scale * max(M A + noise, 0).

    Keys as in Urban_R162.mat: ``Y`` (162, 94249) with pixels in MATLAB (Fortran) order,
    ``nRow``, ``nCol``, ``SlectBands`` (1-based kept bands), ``maxValue`` (= the scale, so the
    loader gives back reflectance on the ground truth's scale); plus the ground
    truth ``M``, ``A`` and material names ``cood``.
    """
    M = np.asarray(gt["M"], dtype=np.float32)
    A = np.asarray(gt["A"], dtype=np.float32)
    rng = np.random.default_rng(URBAN_SEED)
    Y = M @ A
    rows = 16  # the noise drawn a few rows at a time (the same numbers as in one draw), never a second Y
    for start in range(0, Y.shape[0], rows):
        block = Y[start:start + rows]
        block += np.float32(URBAN_NOISE) * rng.standard_normal(block.shape, dtype=np.float32)
    np.maximum(Y, 0, out=Y)
    Y *= np.float32(URBAN_SCALE)
    return {
        "Y": Y,
        "nRow": np.asarray(gt["nRow"]),
        "nCol": np.asarray(gt["nCol"]),
        "SlectBands": urban_kept_bands().reshape(-1, 1),
        "maxValue": np.array([[URBAN_SCALE]]),
        "M": M,
        "A": A,
        "cood": gt.get("cood"),
    }


def open_sample(name: str) -> tuple[Container, str]:
    """A container for sample ``name`` and the sha256 of its bundled file."""
    path = sample_path(name)
    digest = sha256_of(str(path))
    if name == "urban":
        # the plain MAT reader (mfcli.io.mat5): importing scipy.io would cost the command 0.2-0.3 s
        # (timed outside benchmarks/)
        truth = open_container(str(path))
        return DictContainer(f"sample:{name}", build_urban(truth.arrays), "mat", matlab=True), digest
    container = open_container(str(path))
    container.path = f"sample:{name}"
    return container, digest
