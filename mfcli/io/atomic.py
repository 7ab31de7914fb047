"""Atomic outputs: write to a temporary sibling, then rename over the final name.

An interrupted or failed run leaves nothing behind, and an existing output is never
overwritten unless ``force`` is given.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mfcli.errors import OutputError


def check_output_path(path: str | os.PathLike, force: bool = False, kind: str = "file") -> Path:
    """Raise OutputError if ``path`` exists (and ``force`` is false) or its folder is missing."""
    path = Path(path)
    if path.exists() and not force:
        raise OutputError(f"output {kind} '{path}' already exists; use --force to overwrite it")
    if path.exists() and force and kind == "file" and path.is_dir():
        raise OutputError(f"output '{path}' is a folder, not a file; choose another name")
    if path.exists() and force and kind == "folder" and not path.is_dir():
        raise OutputError(f"output '{path}' exists and is not a folder; choose another name")
    parent = path.parent if str(path.parent) else Path(".")
    if not parent.exists():
        raise OutputError(f"folder '{parent}' of output '{path}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder '{parent}' of output '{path}' is not writable; choose another output")
    return path


def _unwritable(folder: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or " ".join(str(exc).split())
    return OutputError(f"cannot write into folder '{folder}' ({reason}); choose another output")


def current_umask() -> int:
    """The process umask (read without changing it where /proc allows)."""
    try:
        with open("/proc/self/status") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success rename it to ``path``.

    On any exception the temporary file is removed and ``path`` is untouched.
    """
    final = check_output_path(path, force)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent or ".")
    except OSError as exc:
        raise _unwritable(final.parent, exc) from None
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give the output the usual permissions.
        os.chmod(tmp, 0o666 & ~current_umask())
        os.replace(tmp, final)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it replaces ``path``.

    With ``force`` an existing folder is replaced only after the new one is complete.
    """
    final = check_output_path(path, force, kind="folder")
    try:
        tmp = Path(tempfile.mkdtemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent or "."))
    except OSError as exc:
        raise _unwritable(final.parent, exc) from None
    try:
        yield tmp
        os.chmod(tmp, 0o777 & ~current_umask())
        if final.exists():
            old = final.with_name(f".{final.name}.old-{os.getpid()}")
            os.replace(final, old)
            os.replace(tmp, final)
            shutil.rmtree(old, ignore_errors=True)
        else:
            os.replace(tmp, final)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
