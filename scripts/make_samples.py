"""Rebuild sample_data/ from ../shared/data (run from the repository root).

The samples are the real scenes stored compactly: float32, compressed MATLAB v5 files in
the same layout as the originals, so loading them exercises the same code as users' files.
"""

from pathlib import Path

import numpy as np
import scipy.io as sio

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"
OUT = Path(__file__).resolve().parents[1] / "sample_data"


def main() -> None:
    samson = sio.loadmat(SHARED / "hsi" / "samson.mat")
    sio.savemat(OUT / "samson.mat", {
        "Y": samson["Y"].astype(np.float32), "lines": samson["lines"], "cols": samson["cols"],
        "GT": samson["GT"].astype(np.float32), "S_GT": samson["S_GT"].astype(np.float32),
        # Samson: 156 bands evenly spaced from 401 to 889 nm.
        "wavelengths": np.linspace(401, 889, 156).reshape(-1, 1),
    }, do_compression=True)
    moffett = sio.loadmat(SHARED / "hsi" / "moffett.mat")
    sio.savemat(OUT / "moffett.mat", {
        "Y": moffett["Y"].astype(np.float32), "lines": moffett["lines"], "cols": moffett["cols"],
        "GT": moffett["GT"].astype(np.float32), "S_GT": moffett["S_GT"].astype(np.float32),
    }, do_compression=True)
    urban = sio.loadmat(SHARED / "hsi" / "urban_end6_groundTruth.mat")
    names = np.array([str(c[0][0]) for c in urban["cood"]], dtype=object).reshape(-1, 1)
    sio.savemat(OUT / "urban_groundtruth.mat", {
        "M": urban["M"].astype(np.float32), "A": urban["A"].astype(np.float32),
        "nRow": urban["nRow"], "nCol": urban["nCol"], "cood": names,
    }, do_compression=True)
    (OUT / "survey_ratings.csv").write_text((SHARED / "survey" / "ratings_9x15.csv").read_text())


if __name__ == "__main__":
    main()
