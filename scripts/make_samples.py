"""Rebuild sample_data/ from ../shared/data (run from the repository root).

    python scripts/make_samples.py [OUT_FOLDER]    # default: sample_data/

The samples are the real scenes stored compactly: float32, compressed MATLAB v5 files in the
same layout as the originals, so loading them exercises the same code as users' files. The
MAT-file header carries no date, so a rebuild gives the same bytes (and the same sha256).

- samson.mat: Y (156 x 9025, F order), lines, cols, GT, S_GT, the material names (soil, tree,
  water: the order of GT, told by the spectra: soil rises steadily to the near infrared, tree has
  the red edge, water peaks in the green and is dark in the near infrared), and wavelengths (156
  bands evenly spaced over 401-889 nm: the range and band count of the published description,
  F. Zhu, "Hyperspectral unmixing: ground truth labeling, datasets, benchmark performances and
  survey", arXiv:1708.05125, 2017; the even spacing is assumed, the bands being 3.13 nm wide).
- moffett.mat: Y (184 x 2500), lines, cols, GT, S_GT and the material names (water, soil,
  vegetation: water is bright only in the blue, soil rises into the short-wave infrared,
  vegetation peaks in the near infrared); no wavelengths (which of AVIRIS' 224 bands were kept
  is not recorded), so its spectra are drawn against band numbers.
- urban_groundtruth.mat: the HYDICE Urban ground truth M (162 x 6), A (6 x 94249), nRow, nCol and
  the material names cood; `sample:urban` builds the Urban_R162-layout scene from it on the fly
  (mfcli.io.samples.build_urban).
- survey_ratings.csv: the survey's 9 x 15 ratings, as they are.
- usgs_1995_library.mat: the USGS 1995 spectral library (public domain, a work of the U.S.
  Geological Survey) as distributed for unmixing: datalib (wavelengths in micrometres, then 498
  spectra at 224 AVIRIS bands) and names; copied as it is.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import scipy.io as sio

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
MAT_HEADER = b"MATLAB 5.0 MAT-file, Platform: mfcli sample data, made by scripts/make_samples.py"


def save_mat(path: Path, arrays: dict) -> None:
    """savemat with a fixed header text (SciPy writes the date into the 116-byte description)."""
    sio.savemat(path, arrays, do_compression=True)
    with open(path, "r+b") as fh:
        fh.write(MAT_HEADER.ljust(116, b" "))


def main(out: Path) -> None:
    out.mkdir(parents=True, exist_ok=True)
    samson = sio.loadmat(SHARED / "hsi" / "samson.mat")
    save_mat(out / "samson.mat", {
        "Y": samson["Y"].astype(np.float32), "lines": samson["lines"], "cols": samson["cols"],
        "GT": samson["GT"].astype(np.float32), "S_GT": samson["S_GT"].astype(np.float32),
        "wavelengths": np.linspace(401, 889, 156).reshape(-1, 1),
        "names": np.array(["soil", "tree", "water"], dtype=object).reshape(-1, 1),
    })
    moffett = sio.loadmat(SHARED / "hsi" / "moffett.mat")
    save_mat(out / "moffett.mat", {
        "Y": moffett["Y"].astype(np.float32), "lines": moffett["lines"], "cols": moffett["cols"],
        "GT": moffett["GT"].astype(np.float32), "S_GT": moffett["S_GT"].astype(np.float32),
        "names": np.array(["water", "soil", "vegetation"], dtype=object).reshape(-1, 1),
    })
    urban = sio.loadmat(SHARED / "hsi" / "urban_end6_groundTruth.mat")
    names = np.array([str(c[0][0]) for c in urban["cood"]], dtype=object).reshape(-1, 1)
    save_mat(out / "urban_groundtruth.mat", {
        "M": urban["M"].astype(np.float32), "A": urban["A"].astype(np.float32),
        "nRow": urban["nRow"], "nCol": urban["nCol"], "cood": names,
    })
    (out / "survey_ratings.csv").write_text((SHARED / "survey" / "ratings_9x15.csv").read_text())
    (out / "usgs_1995_library.mat").write_bytes((SHARED / "hsi" / "usgs_1995_library.mat").read_bytes())


if __name__ == "__main__":
    main(Path(sys.argv[1]) if len(sys.argv) > 1 else REPO / "sample_data")
