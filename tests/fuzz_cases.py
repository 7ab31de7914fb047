"""Generated bad input for the command line, and the judgement of what mfcli did with it.

Shared by tests/cli/test_faults_fuzz.py (a short Hypothesis run in the suite) and
scripts/fuzz_cli.py (a larger run that counts the outcomes). A case is one command line over
files written for it: data files of every format (valid, truncated, with bytes zeroed or
replaced, emptied), CSV/ratings/pairs text with bad rows, odd arrays (1-D, 4-D, empty, int,
bool, complex), ENVI headers with bad fields, values at the numeric extremes (1e308, 1e-308,
subnormals, NaN, Inf, all zero), damaged result files, bad option values and bad output paths.

:func:`run_case` runs a case and :func:`judge` names its outcome: ``rejected`` (exit 1 or 2
with one ``Error:`` line), ``success`` (exit 0 with a complete, finite output), or a failure:
``internal-error``, ``crash`` (a traceback or an exception escaping the command),
``bad-exit`` (another exit status), ``leftover`` (a temporary or half-written file left
behind), ``clobbered`` (an existing output changed without --force), ``bad-result`` (exit 0
with a non-finite or empty result), ``messy-error`` (an error without exactly one ``Error:``
line), ``hang`` (scripts only: past the time limit).

Not generated here: the values of solver parameters (--tol, --max-time, -p NAME=VALUE ranges,
complete's --reg/--lr/...), which the solvers' own checks own.
"""

from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from hypothesis import strategies as st

FAILURES = ("internal-error", "crash", "bad-exit", "leftover", "clobbered", "bad-result", "messy-error", "hang")
DATA_FORMATS = ("csv", "tsv", "npy", "npz", "mat", "mat73", "h5", "envi")
EXTENSION = {"csv": ".csv", "tsv": ".tsv", "npy": ".npy", "npz": ".npz", "mat": ".mat", "mat73": ".mat",
             "h5": ".h5", "envi": ".img"}


@dataclass
class Case:
    """A command line (paths relative to the case's folder), what it writes, stdin, and what
    must not change."""

    args: list[str]
    kind: str  # the class of bad input, for the counts
    outputs: list[str] = field(default_factory=list)  # names the command may create
    stdin: bytes | None = None
    protected: dict[str, bytes] = field(default_factory=dict)  # existing files that must stay as they are
    stdout_full: bool = False  # run with stdout on /dev/full (scripts only)


# --------------------------------------------------------------------------- values and arrays

EXTREMES = (1e308, -1e308, 1e300, 1e-308, 5e-324, 1e-300, 3.4e38, 1e38, 1e20, 0.0, np.nan, np.inf, -np.inf)


@st.composite
def matrices(draw, allow_bad: bool = True) -> np.ndarray:
    """A small matrix: random nonnegative values, sometimes with extreme, NaN or Inf cells, all
    zero, negative, integer or float32; or (``allow_bad``) an odd array: 1-D, 3-D, 4-D, empty,
    boolean, complex."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    rows, cols = draw(st.integers(1, 12)), draw(st.integers(1, 14))
    X = rng.random((rows, cols))
    shape_kind = draw(st.sampled_from(["plain"] * 6 + (["1d", "3d", "4d", "empty", "bool", "complex"]
                                                       if allow_bad else [])))
    if shape_kind == "1d":
        return X.ravel()
    if shape_kind == "3d":
        return rng.random((draw(st.integers(1, 4)), draw(st.integers(1, 4)), draw(st.integers(1, 5))))
    if shape_kind == "4d":
        return rng.random((2, 2, 2, 2))
    if shape_kind == "empty":
        return np.zeros((rows, 0))
    if shape_kind == "bool":
        return X > 0.5
    if shape_kind == "complex":
        return X + 1j * X
    values = draw(st.sampled_from(["plain", "plain", "extreme", "scaled", "zero", "negative", "int", "float32"]))
    if values == "extreme":
        for _ in range(draw(st.integers(1, 3))):
            X[draw(st.integers(0, rows - 1)), draw(st.integers(0, cols - 1))] = draw(st.sampled_from(EXTREMES))
    elif values == "scaled":
        X = X * draw(st.sampled_from([1e-320, 1e-200, 1e-80, 1e-30, 1e30, 1e80, 1e150, 1e200, 1e300]))
    elif values == "zero":
        X = np.zeros_like(X)
    elif values == "negative":
        X = X - 0.5
    elif values == "int":
        X = (X * 1000).astype(np.int64)
    elif values == "float32":
        X = X.astype(np.float32)
    return X


# --------------------------------------------------------------------------- files

def write_data(path: Path, fmt: str, X: np.ndarray) -> None:
    """``X`` written as ``fmt`` (what a user would have: CSV of a matrix, a .mat with Y...)."""
    import h5py
    import scipy.io

    if fmt in ("csv", "tsv"):
        X2 = np.atleast_2d(X.real if np.iscomplexobj(X) else X)
        X2 = X2.reshape(X2.shape[0], -1)
        np.savetxt(path, X2.astype(np.float64), delimiter="," if fmt == "csv" else "\t", fmt="%.17g")
    elif fmt == "npy":
        np.save(path, X)
    elif fmt == "npz":
        np.savez(path, Y=X)
    elif fmt == "mat":
        scipy.io.savemat(path, {"Y": X})
    elif fmt == "mat73":
        from mfcli.io.write import _write_mat73

        _write_mat73(path, {"Y": X if X.size else np.zeros((1, 1))})
    elif fmt == "h5":
        with h5py.File(path, "w") as f:
            f["Y"] = X
    elif fmt == "envi":
        from mfcli.io.envi import write_envi

        cube = np.atleast_3d(X.real if np.iscomplexobj(X) else X)
        if cube.ndim != 3 or cube.size == 0:
            cube = np.ones((2, 2, 2))
        write_envi(str(path), cube.astype(np.float64 if cube.dtype.kind != "f" else cube.dtype))


def damage(path: Path, how: str, rng: np.random.Generator) -> None:
    """Truncate, zero or replace bytes of ``path``, or empty it."""
    data = bytearray(path.read_bytes())
    if how == "truncate" and data:
        data = data[: int(rng.integers(0, len(data)))]
    elif how == "zero" and data:
        start = int(rng.integers(0, len(data)))
        data[start:start + 16] = bytes(min(16, len(data) - start))
    elif how == "flip" and data:
        for _ in range(8):
            position = int(rng.integers(0, len(data)))
            data[position] = int(rng.integers(0, 256))
    elif how == "random":
        data = bytearray(rng.bytes(int(rng.integers(1, 600))))
    elif how == "empty":
        data = bytearray()
    path.write_bytes(bytes(data))


ENVI_FIELDS = {
    "samples": ["0", "-5", "x", "1e3", "99999"], "lines": ["0", "-1", "2.5", "100000"],
    "bands": ["0", "-2", "abc"], "data type": ["99", "7", "x", "6"], "interleave": ["xyz", "BSQ", "bip"],
    "byte order": ["2", "-1", "1"], "header offset": ["-1", "x", "100000"],
    "reflectance scale factor": ["0", "nan", "-1", "inf", "abc", "1e-320", "2"],
}


def bad_envi_header(path: Path, field_name: str, value: str) -> None:
    """Set (or add) ``field_name = value`` in the header beside the ENVI data file ``path``."""
    header = path.with_suffix(".hdr")
    lines = [line for line in header.read_text().splitlines() if not line.lower().startswith(field_name)]
    lines.append(f"{field_name} = {value}")
    header.write_text("\n".join(lines) + "\n")


RATING_LINES = ["1,2,3", "1\t2\t4", "1::2::5", "u1,i1,4.5", "1,2,x", "1,2", "1,2,nan", "1,2,inf", "1,2,1e308",
                "1,2,-1e308", "1000000000000000000000000000001,3,4", "-1,-2,3", "1,2,3,4,5", "user,item,rating",
                "", "#c", "1,1,1e-320", "é,ü,3", "1 2 3", "1;2;3"]


@st.composite
def ratings_text(draw) -> str:
    """Ratings lines: mostly valid, with a few bad ones (ids beyond 64 bits, non-numbers, NaN...)."""
    rng = np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1)))
    n_users, n_items = draw(st.integers(2, 8)), draw(st.integers(2, 8))
    lines = [f"{u},{i},{rng.integers(1, 6)}" for u in range(n_users) for i in range(n_items) if rng.random() < 0.7]
    for _ in range(draw(st.integers(0, 3))):
        lines.insert(draw(st.integers(0, len(lines))), draw(st.sampled_from(RATING_LINES)))
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- option values

BAD_RANKS = ["3,,2", "0", "-1", "a", "2,3", "", "1,", ",1", "99", "2.5", "1e9", "3 2"]
BAD_SEEDS = ["-1", str(2 ** 70), "x", "1.5", "0", "42"]
BAD_OUTPUTS = ["", "dir/", "missing/out.h5", "afile/out.h5", "x" * 300 + ".h5", ".", "..", "-", "-:npy"]
SINGLE_MODELS = ("nmf", "onmf", "aonmf", "semi-nmf", "sparse-nmf", "nsnmf", "aa", "minvol", "svd")
DEEP_MODELS = ("deep-onmf", "deep-aonmf", "multilayer", "deep-semi", "deep-nmf", "deep-sparse", "deep-nsnmf")
DATA_OPTIONS = [[], [], [], ["--transpose"], ["--layout", "cube"], ["--layout", "bands-x-pixels"],
                ["--order", "F"], ["--image-shape", "2x3"], ["--image-shape", "0x1"], ["--image-shape", "x"],
                ["--var", "nope"], ["--format", "npy"], ["--format", "csv"], ["--dtype", "float32"],
                ["--engine", "stream"], ["--engine", "dask", "--scheduler", "garbage://x"],
                ["--chunk-size", "1"], ["--device", "cuda"], ["--clip-negative"]]


def output_path(draw, folder: Path, good: str) -> tuple[str, list[str]]:
    """An output name: usually ``good``, sometimes a bad one; and the names it may create."""
    if draw(st.integers(0, 4)):
        return good, [good]
    bad = draw(st.sampled_from(BAD_OUTPUTS))
    (folder / "dir").mkdir(exist_ok=True)
    (folder / "afile").write_text("a file\n")
    return bad, []


# --------------------------------------------------------------------------- cases

@st.composite
def data_file_cases(draw, folder: Path) -> Case:
    """A command over a data file of some format, maybe damaged, with maybe bad options."""
    fmt = draw(st.sampled_from(DATA_FORMATS))
    X = draw(matrices())
    name = "data" + EXTENSION[fmt]
    from mfcli.errors import MfcliError

    try:
        write_data(folder / name, fmt, X)
    except (ValueError, TypeError, OverflowError, MfcliError):  # a format that cannot hold X (complex in .mat)
        write_data(folder / name, fmt, np.ones((3, 4)))
    kind = f"file:{fmt}"
    how = draw(st.sampled_from(["none"] * 5 + ["truncate", "zero", "flip", "random", "empty"]))
    if how != "none":
        target = folder / name
        if fmt == "envi" and draw(st.booleans()):
            target = target.with_suffix(".hdr")
        damage(target, how, np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))))
        kind = f"damaged:{fmt}"
    elif fmt == "envi" and draw(st.booleans()):
        field_name = draw(st.sampled_from(sorted(ENVI_FIELDS)))
        bad_envi_header(folder / name, field_name, draw(st.sampled_from(ENVI_FIELDS[field_name])))
        kind = "envi-header"
    if fmt == "mat73" and how == "none" and draw(st.booleans()):
        name = name + ":mat73"
    options = draw(st.sampled_from(DATA_OPTIONS)) if draw(st.integers(0, 3)) == 0 else []
    if options:
        kind = "option" if how == "none" else kind
    command = draw(st.sampled_from(["info", "info-json", "convert", "factorize", "factorize", "unmix",
                                    "estimate-rank", "endmembers", "complete-dense", "abundances"]))
    rank = draw(st.sampled_from(["1", "2", "3"]))
    seed = draw(st.sampled_from(BAD_SEEDS)) if draw(st.integers(0, 5)) == 0 else draw(st.sampled_from(["0", "7"]))
    if seed not in ("0", "7"):
        kind = "option"
    if command == "info":
        return Case(["info", name, *options], kind)
    if command == "info-json":
        return Case(["info", "--json", name, *options], kind)
    if command == "convert":
        out_fmt = draw(st.sampled_from(DATA_FORMATS))
        out, outputs = output_path(draw, folder, "out" + EXTENSION[out_fmt])
        if out_fmt == "envi" and outputs:
            outputs = [out, str(Path(out).with_suffix(".hdr"))]
        stdout = draw(st.sampled_from([None] * 6 + ["-", "-:csv", "-:npy", "-:tsv", "-:h5"]))
        return Case(["convert", name, stdout or out, *options], kind, outputs=[] if stdout else outputs)
    if command == "factorize":
        out, outputs = output_path(draw, folder, "out.h5")
        if not outputs:
            kind = "output-path"
        model = draw(st.sampled_from(SINGLE_MODELS))
        return Case(["factorize", name, "-r", rank, "-m", model, "--max-iter", "3", "--seed", seed, "-o", out,
                     *options], kind, outputs=outputs)
    if command == "unmix":
        out, outputs = output_path(draw, folder, "outdir")
        if not outputs:
            kind = "output-path"
        good = draw(st.sampled_from(["2,1", "1"]))
        ranks = draw(st.sampled_from(BAD_RANKS)) if draw(st.integers(0, 3)) == 0 else good
        if ranks not in ("2,1", "1"):
            kind = "option"
        model = draw(st.sampled_from(DEEP_MODELS))
        return Case(["unmix", name, "--ranks", ranks, "-m", model, "--max-iter", "2", "--no-plots",
                     "--seed", seed, "-o", out, *options], kind, outputs=outputs)
    if command == "estimate-rank":
        return Case(["estimate-rank", name, *options], kind)
    if command == "endmembers":
        out, outputs = output_path(draw, folder, "ends.h5")
        method = draw(st.sampled_from(["spa", "vca", "nfindr"]))
        return Case(["endmembers", name, "-r", rank, "--method", method, "--seed", seed, "-o", out, *options],
                    kind, outputs=outputs)
    if command == "abundances":
        np.savetxt(folder / "E.csv", np.abs(draw(matrices(allow_bad=False)))[:, :2], delimiter=",")
        out, outputs = output_path(draw, folder, "ab.h5")
        return Case(["abundances", name, "--endmembers", "E.csv", "-o", out, *options], kind, outputs=outputs)
    model = draw(st.sampled_from(["als", "baseline", "svd", "wals", "sgd"]))
    return Case(["complete", name, "--dense", "-m", model, "--epochs", "2", "--seed", seed], kind)


@st.composite
def text_cases(draw, folder: Path) -> Case:
    """Bad CSV tables and ratings/pairs text, read from a file or standard input."""
    which = draw(st.sampled_from(["csv", "ratings", "pairs"]))
    if which == "csv":
        rows = draw(st.lists(st.lists(st.sampled_from(["1", "2.5", "", "x", "nan", "inf", "1e308", "-3", "1e-320",
                                                        "\"1\"", "é"]), min_size=1, max_size=5),
                             min_size=1, max_size=6))
        text = "\n".join(draw(st.sampled_from([",", "\t", ";", " "])).join(r) for r in rows) + "\n"
        if draw(st.booleans()):
            return Case(["factorize", "-:csv", "-r", "1", "--max-iter", "2", "-o", "out.h5"], "bad-csv",
                        outputs=["out.h5"], stdin=text.encode())
        (folder / "t.csv").write_text(text, encoding="utf-8")
        return Case([draw(st.sampled_from(["info", "estimate-rank"])), "t.csv"], "bad-csv")
    if which == "ratings":
        text = draw(ratings_text())
        model = draw(st.sampled_from(["als", "baseline", "svd", "wals", "sgd"]))
        out, outputs = output_path(draw, folder, "model.h5")
        if draw(st.booleans()):
            return Case(["complete", "-", "-m", model, "--epochs", "2", "-o", out], "ratings", outputs=outputs,
                        stdin=text.encode())
        (folder / "r.csv").write_text(text, encoding="utf-8")
        return Case(["complete", "r.csv", "-m", model, "--epochs", "2", "-o", out], "ratings", outputs=outputs)
    text = draw(ratings_text())
    (folder / "pairs.csv").write_text(text, encoding="utf-8")
    return Case(["predict", "MODEL", "pairs.csv"], "pairs")


@st.composite
def result_cases(draw, folder: Path, results: dict[str, Path]) -> Case:
    """Commands over result files: valid ones, damaged ones, with bad layers and outputs."""
    which = draw(st.sampled_from(sorted(results)))
    name = "result.h5"
    shutil.copy(results[which], folder / name)
    kind = "result"
    how = draw(st.sampled_from(["none", "none", "truncate", "zero", "flip", "random", "missing-W"]))
    if how == "missing-W":
        import h5py

        with h5py.File(folder / name, "a") as f:
            del f["layers/1/W"]
        kind = "damaged:result"
    elif how != "none":
        damage(folder / name, how, np.random.default_rng(draw(st.integers(0, 2 ** 32 - 1))))
        kind = "damaged:result"
    layer = draw(st.sampled_from(["-1", "1", "2", "0", "9", "x"]))
    if which == "model":
        (folder / "pairs.csv").write_text("0,0\n1,1\n2,5\n9,9\n")
        command = draw(st.sampled_from(["predict", "recommend", "info"]))
        if command == "predict":
            return Case(["predict", name, "pairs.csv"], kind)
        if command == "recommend":
            return Case(["recommend", name, "--user", draw(st.sampled_from(["0", "1", "zz", "-1"]))], kind)
        return Case(["info", name], kind)
    command = draw(st.sampled_from(["info", "export", "tree", "transform", "evaluate", "export-file"]))
    if command == "info":
        return Case(["info", "--json", name], kind)
    if command == "export":
        return Case(["export", name, "--factor", draw(st.sampled_from(["W", "H", "basis", "abundances"])),
                     "--layer", layer], kind)
    if command == "export-file":
        out, outputs = output_path(draw, folder, "W" + draw(st.sampled_from([".csv", ".npy", ".mat", ".h5"])))
        return Case(["export", name, "--layer", layer, "-o", out], kind, outputs=outputs)
    if command == "tree":
        return Case(["tree", name, "--format", draw(st.sampled_from(["json", "newick", "dot"]))], kind)
    if command == "transform":
        np.save(folder / "new.npy", np.abs(draw(matrices(allow_bad=False))))
        out, outputs = output_path(draw, folder, "tr.h5")
        return Case(["transform", name, "new.npy", "--layer", layer, "-o", out], kind, outputs=outputs)
    np.save(folder / "truth.npy", np.abs(draw(matrices())))
    truths = ["--truth", "truth.npy"] * draw(st.integers(1, 3))
    return Case(["evaluate", name, *truths, "--layer", layer], kind)


@st.composite
def existing_output_cases(draw, folder: Path) -> Case:
    """An output that exists already, without --force: it must be refused and left as it was."""
    np.save(folder / "X.npy", np.random.default_rng(0).random((6, 8)))
    target = draw(st.sampled_from(["out.h5", "outdir"]))
    if target == "outdir":
        (folder / "outdir").mkdir()
        (folder / "outdir" / "mine.txt").write_text("mine\n")
        protected = {"outdir/mine.txt": b"mine\n"}
        args = ["unmix", "X.npy", "--ranks", "2,1", "--max-iter", "1", "--no-plots", "-o", "outdir"]
    else:
        (folder / "out.h5").write_bytes(b"mine\n")
        protected = {"out.h5": b"mine\n"}
        args = ["factorize", "X.npy", "-r", "2", "--max-iter", "2", "-o", "out.h5"]
    return Case(args, "existing-output", protected=protected)


@st.composite
def cli_cases(draw, folder: Path, results: dict[str, Path]) -> Case:
    """Any case (see the module docstring), its files written into ``folder``."""
    family = draw(st.sampled_from(["data"] * 5 + ["text"] * 2 + ["result"] * 2 + ["existing"]))
    if family == "data":
        return draw(data_file_cases(folder))
    if family == "text":
        case = draw(text_cases(folder))
        if case.args[0] == "predict":
            shutil.copy(results["model"], folder / "MODEL")
        return case
    if family == "result":
        return draw(result_cases(folder, results))
    return draw(existing_output_cases(folder))


# --------------------------------------------------------------------------- running and judging

@dataclass
class Run:
    exit_code: int
    stdout: bytes
    stderr: str
    escaped: BaseException | None = None  # an exception that escaped the command (in-process runs)
    timed_out: bool = False


def run_in_process(case: Case, folder: Path) -> Run:
    """Run ``case`` in this process with click's CliRunner, in ``folder``."""
    from click.testing import CliRunner

    from mfcli.cli.main import cli

    runner = CliRunner()
    previous = os.getcwd()
    os.chdir(folder)
    try:
        result = runner.invoke(cli, ["-q", *case.args], input=case.stdin, catch_exceptions=True)
    finally:
        os.chdir(previous)
    escaped = result.exception if result.exception is not None and not isinstance(result.exception, SystemExit) \
        else None
    return Run(result.exit_code, result.stdout_bytes, result.stderr, escaped)


def snapshot(folder: Path) -> dict[str, bytes | None]:
    """Every file under ``folder`` (relative name -> bytes; None for folders)."""
    out: dict[str, bytes | None] = {}
    for path in sorted(folder.rglob("*")):
        name = str(path.relative_to(folder))
        out[name] = None if path.is_dir() else path.read_bytes()
    return out


def judge(case: Case, run: Run, before: dict[str, bytes | None], after: dict[str, bytes | None],
          folder: Path) -> tuple[str, str]:
    """(outcome, detail) of a finished case; see the module docstring."""
    stderr = run.stderr
    if run.timed_out:
        return "hang", " ".join(case.args)
    if run.escaped is not None or "Traceback (most recent call last)" in stderr:
        return "crash", repr(run.escaped) if run.escaped is not None else stderr[-400:]
    if "internal error" in stderr:
        return "internal-error", stderr.strip()[-400:]
    if run.exit_code not in (0, 1, 2):
        return "bad-exit", f"exit {run.exit_code}: {stderr.strip()[-300:]}"
    for name, content in case.protected.items():
        if after.get(name) != content:
            return "clobbered", name
    for name, content in before.items():
        if content is not None and name in after and after[name] != content and name not in case.outputs:
            return "clobbered", name
    new = [name for name in after if name not in before]
    temporaries = [name for name in new if name.rsplit("/", 1)[-1].startswith(".")]
    if temporaries:
        return "leftover", ", ".join(temporaries)
    if run.exit_code != 0:
        errors = [line for line in stderr.splitlines() if line.startswith("Error:")]
        if len(errors) != 1:
            return "messy-error", stderr.strip()[-300:]
        stray = [name for name in new if not any(name == o or name.startswith(o.rstrip("/") + "/")
                                                 for o in case.outputs)]
        made = [name for name in new if name not in stray]
        if stray or made:
            return "leftover", ", ".join(stray or made)
        return "rejected", errors[0]
    stray = [name for name in new if not any(name == o or name.startswith(o.rstrip("/") + "/") for o in case.outputs)]
    if stray:
        return "leftover", ", ".join(stray)
    problem = _bad_result(case, run, folder, after)
    if problem:
        return "bad-result", problem
    return "success", ""


def _bad_result(case: Case, run: Run, folder: Path, after: dict[str, bytes | None]) -> str | None:
    """Why a run that exited 0 did not give a complete, finite result (None when it did)."""
    import h5py

    from mfcli.io.result import read_result

    for name in case.outputs:
        if name not in after:
            continue
        path = folder / name
        if path.is_dir():
            path = path / "result.h5"
            if not path.is_file():
                return f"{name}/ has no result.h5"
        if after.get(str(path.relative_to(folder))) == b"":
            return f"{name} is empty"
        if path.suffix == ".h5":
            with h5py.File(path, "r") as f:
                is_result = f.attrs.get("format") in (b"mfcli-result", "mfcli-result")
            if is_result:
                result = read_result(path)
                for number, layer in enumerate(result.layers, start=1):
                    W, H = np.asarray(layer.W), np.asarray(layer.H)
                    if W.shape[0] == 0 or H.shape[-1] == 0:  # rank 0 is a completion baseline's: no factors
                        return f"{name}: layer {number} is empty (W {W.shape}, H {H.shape})"
                    for label, array in (("W", W), ("H", H)):
                        if array.dtype.kind == "f" and not np.isfinite(array).all():
                            return f"{name}: layer {number} {label} is not finite"
                    if layer.relative_error is not None and not np.isfinite(layer.relative_error):
                        return f"{name}: layer {number} relative error {layer.relative_error}"
    if "--json" in case.args and case.args[0] != "info":
        try:
            document = json.loads(run.stdout or b"null")
        except ValueError:
            return "--json printed no JSON document"
        error = document.get("relative_error") if isinstance(document, dict) else None
        if isinstance(document, dict) and "relative_error" in document and error is None:
            return "--json relative_error is null (not finite)"
    if case.args[0] in ("predict", "estimate-rank") and b"nan" in run.stdout.lower():
        return "a non-finite value on stdout"
    return None
