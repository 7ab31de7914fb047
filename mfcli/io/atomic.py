"""Atomic outputs: write to a temporary sibling, then commit it under the final name in one step.

- An interrupted or failed run leaves nothing behind: the temporary is removed (and, should a
  signal arrive during that clean-up, :func:`remove_leftovers` removes it at exit).
- The commit is one rename, run with signals deferred (:mod:`mfcli.interrupts`): an interrupt
  before it aborts the output, one after it leaves the output complete.
- Without ``force`` the commit never replaces anything: an output that another process created
  meanwhile makes this one fail with "already exists" (``renameat2(RENAME_NOREPLACE)``, else a
  hard link, else an exclusive claim of the name). With ``force`` the last writer wins and the
  output is always one complete result (a folder is swapped in with ``RENAME_EXCHANGE``).
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import tempfile
from collections.abc import Iterator
from pathlib import Path

from mfcli import interrupts
from mfcli.errors import OutputError

RENAME_NOREPLACE = 1  # linux/fs.h
RENAME_EXCHANGE = 2
_AT_FDCWD = -100
_TEMPORARY_NAME_BYTES = 200  # the output's name in a temporary's name is cut to this
_live: set[Path] = set()  # temporaries that exist now, for remove_leftovers()


def _name_max(folder: Path) -> int:
    try:
        return os.pathconf(folder, "PC_NAME_MAX")
    except (OSError, ValueError, AttributeError):
        return 255


def _check_name_lengths(text: str, kind: str) -> None:
    """An OutputError for a path, or a part of it, longer than the file system allows (checked
    first: the system refuses even to look such a path up)."""
    longest = 255
    for part in Path(text).parts:
        size = len(os.fsencode(part))
        if size > longest:
            raise OutputError(f"output {kind} name '{part[:40]}...' is {size} bytes long but the file system "
                              f"allows {longest}; choose a shorter name")
    if len(os.fsencode(text)) >= 4096:
        raise OutputError(f"output {kind} path '{text[:40]}...' is longer than the file system allows (4096 bytes); "
                          "choose a shorter one")


def check_output_path(path: str | os.PathLike, force: bool = False, kind: str = "file",
                      marker: str | None = None) -> Path:
    """The output as a Path, or an OutputError saying what is wrong with it: an empty name, a
    file name ending in '/', a name too long for the file system, an existing output without
    ``force``, a folder where a file goes (or the reverse), a missing or unwritable folder.
    With ``marker`` (a folder output), ``force`` replaces only an empty folder or one holding
    ``marker``: a folder of the user's own is never replaced."""
    text = os.fspath(path)
    if not text.strip():
        raise OutputError(f"the output {kind} name is empty; give a name with -o")
    if kind == "file" and text.endswith(("/", os.sep)):
        raise OutputError(f"output '{text}' ends with '/', which names a folder, but a file is written here; "
                          "give a file name")
    path = Path(text)
    if path.name in ("", ".", "..") or text.rstrip("/").endswith(("/.", "/..")) or text.rstrip("/") in (".", ".."):
        raise OutputError(f"output '{text}' names a folder that exists, not a new {kind}; give a new name")
    _check_name_lengths(text, kind)
    parent = path.parent if str(path.parent) else Path(".")
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"'{parent}' is a file, not a folder, so output '{path}' cannot be written in it; "
                          "choose another output")
    if parent.is_dir():
        longest = _name_max(parent)
        if len(os.fsencode(path.name)) > longest:
            raise OutputError(f"output {kind} name '{path.name[:40]}...' is {len(os.fsencode(path.name))} bytes "
                              f"long but this file system allows {longest}; choose a shorter name")
    if path.exists() and not force:
        raise OutputError(f"output {kind} '{path}' already exists; use --force to overwrite it")
    if path.exists() and force and kind == "file" and path.is_dir():
        raise OutputError(f"output '{path}' is a folder, not a file; choose another name")
    if path.exists() and force and kind == "folder" and not path.is_dir():
        raise OutputError(f"output '{path}' exists and is not a folder; choose another name")
    if marker and force and path.is_dir() and any(path.iterdir()) and not (path / marker).exists():
        raise OutputError(f"folder '{path}' holds no {marker}, so mfcli did not write it; --force replaces only "
                          "mfcli's own output folders: choose another name")
    if not parent.exists():
        raise OutputError(f"folder '{parent}' of output '{path}' does not exist; create it first")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputError(f"folder '{parent}' of output '{path}' is not writable; choose another output")
    return path


def _unwritable(folder: Path, exc: OSError) -> OutputError:
    reason = exc.strerror or " ".join(str(exc).split())
    return OutputError(f"cannot write into folder '{folder}' ({reason}); choose another output")


def _exists_error(final: Path, kind: str) -> OutputError:
    return OutputError(f"output {kind} '{final}' already exists (another process created it meanwhile); "
                       "use --force to overwrite it")


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


def _temporary_prefix(final: Path) -> str:
    """``.NAME.`` with NAME cut so that the temporary's name fits where the output's does."""
    name = final.name
    while len(os.fsencode(name)) > _TEMPORARY_NAME_BYTES:
        name = name[:-1]
    return f".{name}."


def _new_temporary(final: Path, folder: bool) -> Path:
    """A new temporary file or folder beside ``final``, registered for clean-up before any
    signal can interrupt between its creation and its registration."""
    parent = final.parent if str(final.parent) else Path(".")
    with interrupts.deferred():
        try:
            if folder:
                tmp = Path(tempfile.mkdtemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=parent))
            else:
                fd, name = tempfile.mkstemp(prefix=_temporary_prefix(final), suffix=".tmp", dir=parent)
                os.close(fd)
                tmp = Path(name)
        except OSError as exc:
            raise _unwritable(parent, exc) from None
        _live.add(tmp)
    return tmp


def _remove(tmp: Path) -> None:
    """Remove a temporary file or folder (signals deferred) and forget it."""
    with interrupts.deferred(raise_after=False):
        if tmp.is_dir() and not tmp.is_symlink():
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
        _live.discard(tmp)


def remove_leftovers() -> None:
    """Remove every temporary this process still holds (at exit: the last line of defence when a
    signal interrupted a clean-up)."""
    for tmp in list(_live):
        _remove(tmp)


def _renameat2(source: Path, target: Path, flags: int) -> bool:
    """``renameat2(source, target, flags)``; False where the system or file system lacks it."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        function = libc.renameat2
    except (OSError, AttributeError, ImportError):
        return False
    function.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    if function(_AT_FDCWD, os.fsencode(source), _AT_FDCWD, os.fsencode(target), flags) == 0:
        return True
    code = ctypes.get_errno()
    if code in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(code, os.strerror(code), str(source), None, str(target))


def _link_file(source: Path, target: Path) -> bool:
    """Hard-link ``source`` as ``target`` (no replace) and drop ``source``; False where the file
    system has no hard links."""
    try:
        os.link(source, target)
    except OSError as exc:
        if exc.errno in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EXDEV, errno.EMLINK, errno.ENOSYS):
            return False
        raise
    with contextlib.suppress(FileNotFoundError):
        source.unlink()
    return True


def _claim_and_rename(source: Path, target: Path) -> None:
    """The last resort: claim ``target`` exclusively (an empty file or folder), then rename over it."""
    if source.is_dir():
        os.mkdir(target)
    else:
        os.close(os.open(target, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    os.replace(source, target)


def rename_no_replace(source: Path, target: Path) -> None:
    """Move ``source`` to ``target``, raising FileExistsError if ``target`` exists, in one step."""
    try:
        if _renameat2(source, target, RENAME_NOREPLACE):
            return
        if not source.is_dir() and _link_file(source, target):
            return
        _claim_and_rename(source, target)
    except OSError as exc:
        if exc.errno in (errno.EEXIST, errno.ENOTEMPTY):
            raise FileExistsError(errno.EEXIST, "File exists", str(target)) from None
        raise


@contextlib.contextmanager
def _folder_lock(folder: Path) -> Iterator[None]:
    """An exclusive flock on ``folder`` among mfcli processes (best effort: nothing where the
    system has no flock), so that two commits of several names do not interleave."""
    try:
        import fcntl

        fd = os.open(folder, os.O_RDONLY)
    except (ImportError, OSError):
        yield
        return
    try:
        with contextlib.suppress(OSError):
            fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def _replace_folder(source: Path, target: Path) -> None:
    """Put the folder ``source`` at ``target``, replacing whatever folder is there, so that
    ``target`` always holds one complete folder; the old one is removed."""
    parent = target.parent if str(target.parent) else Path(".")
    with _folder_lock(parent):
        for attempt in range(100):
            try:
                rename_no_replace(source, target)
                return
            except FileExistsError:
                pass
            try:
                if _renameat2(source, target, RENAME_EXCHANGE):  # source now holds the old folder
                    shutil.rmtree(source, ignore_errors=True)
                    return
            except FileNotFoundError:
                continue  # removed meanwhile: the plain rename again
            # No RENAME_EXCHANGE here: move the old folder aside, then rename.
            aside = parent / f"{_temporary_prefix(target)}{os.getpid()}.{attempt}.old"
            try:
                os.rename(target, aside)
            except FileNotFoundError:
                continue
            _live.add(aside)
            try:
                rename_no_replace(source, target)
                return
            except FileExistsError:
                continue
            finally:
                _remove(aside)
    raise OutputError(f"could not replace folder '{target}': other processes keep writing it")


def commit(tmp: Path, final: Path, force: bool, kind: str = "file", check: bool = True) -> None:
    """Make the finished temporary ``tmp`` the output ``final`` (see the module docstring): an
    interrupt received before this aborts the output (``check``); one received during it is
    raised after."""
    with interrupts.deferred():
        if check:
            interrupts.check()
        try:
            if tmp.is_dir():
                os.chmod(tmp, 0o777 & ~current_umask())
                if force:
                    _replace_folder(tmp, final)
                else:
                    rename_no_replace(tmp, final)
            else:
                # mkstemp makes the file private (0600); give the output the usual permissions.
                os.chmod(tmp, 0o666 & ~current_umask())
                if force:
                    os.replace(tmp, final)
                else:
                    rename_no_replace(tmp, final)
        except FileExistsError:
            raise _exists_error(final, kind) from None
        except IsADirectoryError:
            raise OutputError(f"output '{final}' is now a folder (created meanwhile); choose another name") from None
        _live.discard(tmp)


@contextlib.contextmanager
def atomic_file(path: str | os.PathLike, force: bool = False) -> Iterator[Path]:
    """Yield a temporary path in the same folder; on success commit it as ``path``.

    On any exception (an interrupt included) the temporary file is removed and ``path`` is
    untouched.
    """
    final = check_output_path(path, force)
    tmp = _new_temporary(final, folder=False)
    try:
        yield tmp
        commit(tmp, final, force)
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_directory(path: str | os.PathLike, force: bool = False, marker: str | None = None) -> Iterator[Path]:
    """Yield a temporary folder beside ``path``; on success it becomes ``path``.

    With ``force`` an existing folder (an empty one, or one holding ``marker``: see
    :func:`check_output_path`) is replaced only once the new one is complete.
    """
    final = check_output_path(path, force, kind="folder", marker=marker)
    tmp = _new_temporary(final, folder=True)
    try:
        yield tmp
        commit(tmp, final, force, kind="folder")
    except BaseException:
        _remove(tmp)
        raise


@contextlib.contextmanager
def atomic_files(paths: list[Path], force: bool = False) -> Iterator[Path]:
    """Several files that appear together or not at all (an ENVI header and its data file):
    yield a temporary folder beside the first; the caller writes each file there under its
    final name; they are then committed, the first last (so that a reader finding it finds the
    others)."""
    finals = [check_output_path(p, force) for p in paths]
    folder = _new_temporary(finals[0], folder=True)
    parent = finals[0].parent if str(finals[0].parent) else Path(".")
    try:
        yield folder
        committed: list[Path] = []
        with interrupts.deferred(), _folder_lock(parent):
            interrupts.check()
            try:
                for final in reversed(finals):
                    commit(folder / final.name, final, force, check=False)
                    committed.append(final)
            except BaseException:
                if not force:  # those were new: take them back
                    for final in committed:
                        with contextlib.suppress(FileNotFoundError):
                            final.unlink()
                raise
        _remove(folder)
    except BaseException:
        _remove(folder)
        raise
