"""Where a file is about to be written: checks made before writing, and a clear error when writing fails.

:func:`check_destination` finds what would make a write fail before anything runs (a folder on the way that is a
file, a name longer than the file system allows, a device or pipe where a file should go). :func:`write_error`
turns the ``OSError`` of a failed write into a :class:`WriteError` naming the file and saying what to do: free
some space, choose a shorter name, move the file that is in the way.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from desktop.api.errors import DiskFullError, StudioloError

__all__ = ["DISK_FULL_ERRNOS", "WriteError", "DiskFullWriteError", "check_destination", "name_max", "write_error"]

DISK_FULL_ERRNOS = frozenset(code for code in (errno.ENOSPC, getattr(errno, "EDQUOT", None)) if code is not None)
"""The ``errno`` values that mean "no space left": ENOSPC and, where the platform has it, EDQUOT."""
_NOT_ALLOWED = frozenset((errno.EACCES, errno.EPERM, errno.EROFS))


class WriteError(StudioloError, OSError):
    """A file could not be written (or cannot be, checked beforehand). Also an ``OSError`` with the original
    ``errno``, so code that catches ``OSError`` around a write keeps working."""

    def __init__(self, message: str, *, hint: str | None = None, code: int | None = None) -> None:
        super().__init__(message, hint=hint)
        self.errno = code
        self.strerror = message


class DiskFullWriteError(DiskFullError, WriteError):
    """Not enough space to write the file; nothing partial was left behind."""


def name_max(folder: Path) -> int:
    """The longest file name, in bytes, the file system holding ``folder`` allows (255 when it cannot say)."""
    try:
        return int(os.pathconf(folder, "PC_NAME_MAX"))
    except (OSError, ValueError):
        return 255


def check_destination(path: Path, *, what: str | None = None, folder_ok: bool = False) -> None:
    """Raise :class:`WriteError` when a file cannot be written at ``path``: a folder on the way is a file, a
    name is too long, or ``path`` is a device, a pipe or (unless ``folder_ok``) a folder. Missing folders are
    fine (writers create them). Nothing is created."""
    path = Path(path)
    subject = f"{what} ({path})" if what else str(path)
    existing = _deepest_existing(path)
    if existing == path:
        mode = os.stat(path).st_mode
        if stat.S_ISDIR(mode):
            if not folder_ok:
                raise WriteError(f"Cannot write {subject}: it is a folder.", hint="Give a file name.",
                                 code=errno.EISDIR)
            return
        if not stat.S_ISREG(mode):
            raise WriteError(f"Cannot write {subject}: it is not a regular file (a device, a pipe or a socket).",
                             hint="Give the path of a file or a folder.")
        return
    if not existing.is_dir():
        raise WriteError(f"Cannot write {subject}: {existing} is a file, not a folder.",
                         hint=f"Move or rename {existing}, or choose another place.", code=errno.ENOTDIR)
    longest = name_max(existing)
    for part in path.relative_to(existing).parts:
        if len(os.fsencode(part)) > longest:
            raise _name_too_long(part, longest, subject)
    if not os.access(existing, os.W_OK | os.X_OK):
        raise WriteError(f"Cannot write {subject}: the folder {existing} is not writable.",
                         hint="Choose a folder you can write to.", code=errno.EACCES)


def write_file(path: Path, data: bytes, *, what: str | None = None) -> Path:
    """Write ``data`` to ``path`` atomically (never half a file), after :func:`check_destination`; a failure is the
    :func:`write_error` naming the file (``what`` names it for people). Returns ``path``. Blocking: off the GUI
    thread."""
    from desktop.api.files import atomic_write_bytes

    check_destination(path, what=what)
    try:
        atomic_write_bytes(path, data)
    except OSError as exc:
        raise write_error(exc, path, what=what) from exc
    return path


def write_error(exc: OSError, path: Path, *, what: str | None = None) -> WriteError:
    """The error to show for ``exc``, raised while writing ``path`` (``what`` names it for people: "the
    settings"). The message names the file; the hint says what to do."""
    path = Path(path)
    subject = f"{what} ({path})" if what else str(path)
    code = exc.errno
    if code in DISK_FULL_ERRNOS:
        return DiskFullWriteError(f"Not enough disk space to write {subject}; nothing was written.",
                                  hint=f"Free some disk space on the drive holding {path.parent}, then try again.",
                                  code=code)
    if code == errno.ENAMETOOLONG:
        longest = name_max(_deepest_existing(path.parent))
        part = next((p for p in path.parts if len(os.fsencode(p)) > longest), None)
        if part is not None:
            return _name_too_long(part, longest, subject)
        return WriteError(f"Cannot write {subject}: the path is too long ({len(os.fsencode(str(path)))} bytes).",
                          hint="Choose a shorter name, or a folder with a shorter path.", code=code)
    if code in (errno.ENOTDIR, errno.EEXIST):
        blocker = _file_on_the_way(path)
        if blocker is not None:
            return WriteError(f"Cannot write {subject}: {blocker} is a file, not a folder.",
                              hint=f"Move or rename {blocker}, or choose another place.", code=code)
    if code == errno.EISDIR:
        return WriteError(f"Cannot write {subject}: it is a folder.", hint="Give a file name.", code=code)
    reason = exc.strerror or str(exc) or type(exc).__name__
    if code in _NOT_ALLOWED:
        return WriteError(f"Cannot write {subject}: {reason}.", hint="Choose a place you can write to.", code=code)
    return WriteError(f"Could not write {subject}: {reason}.", hint="Check the destination, or choose another one.",
                      code=code)


def _name_too_long(part: str, longest: int, subject: str) -> WriteError:
    shown = part if len(part) <= 40 else part[:20] + "…" + part[-12:]
    subject = subject.replace(part, shown)
    return WriteError(f"Cannot write {subject}: the name {shown!r} is too long ({len(os.fsencode(part))} bytes; "
                      f"this file system allows {longest}).", hint="Choose a shorter name.", code=errno.ENAMETOOLONG)


def _deepest_existing(path: Path) -> Path:
    """``path`` itself or its nearest ancestor that exists."""
    for candidate in (path, *path.parents):
        try:
            os.stat(candidate)
            return candidate
        except FileNotFoundError:
            continue
        except OSError:  # an ancestor is a file, or the name is too long to look up: found further up
            continue
    return Path(path.anchor or ".")


def _file_on_the_way(path: Path) -> Path | None:
    """The nearest ancestor of ``path`` that exists but is not a folder, if any."""
    for parent in path.parents:
        if os.path.lexists(parent):
            return None if parent.is_dir() else parent
    return None
