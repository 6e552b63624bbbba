"""The one way parity writes files: atomically (a temporary file next to the target,
then a rename; the temporary file removed on any failure), and never with a
traceback: an ``OSError`` becomes a :class:`~parity.errors.PrerequisiteMissing`
(exit 3) that names the path, what went wrong and the next step. A full disk
(ENOSPC), a read-only file system (EROFS) or missing permissions (EACCES/EPERM)
on ``.parity/`` are prerequisites of every command that writes there.

:func:`write_all` stages every file of a batch before renaming any of them, so a
batch that fails while writing leaves every target as it was.
"""

from __future__ import annotations

import errno
import os
import tempfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from .errors import PrerequisiteMissing

_WHY = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is exhausted",
    errno.EROFS: "the file system is read-only",
    errno.EACCES: "permission denied",
    errno.EPERM: "operation not permitted",
    errno.ENOTDIR: "a part of the path is a file, not a directory",
    errno.EISDIR: "it is a directory",
}


class WriteFailed(PrerequisiteMissing):
    """parity could not write one of its files: exit 3, nothing half-written."""


def _shown(path: Path) -> str:
    try:
        return str(Path(path).resolve().relative_to(Path.cwd().resolve()))
    except (ValueError, OSError):
        return str(path)


def write_error(exc: OSError, path: Path | str) -> WriteFailed:
    """The error to raise for ``exc`` while writing ``path``."""
    path = Path(path)
    why = _WHY.get(exc.errno or 0) or exc.strerror or str(exc)
    if exc.errno in (errno.ENOSPC, errno.EDQUOT):
        hint = ("free space on that file system (docker system prune, or remove "
                ".parity/build/), then run the command again")
    elif exc.errno == errno.EROFS:
        hint = ("parity keeps its state in .parity/ of the repository: make it writable "
                "(or render elsewhere with --out DIR), then run the command again")
    elif exc.errno in (errno.EACCES, errno.EPERM):
        hint = (f"make {_shown(path.parent)} writable for this user (e.g. sudo chown -R "
                "\"$USER\" .parity), then run the command again")
    else:
        hint = "remove or fix what is in the way at that path, then run the command again"
    return WriteFailed(f"cannot write {_shown(path)}: {why}", hint=hint)


def is_write_problem(exc: OSError) -> bool:
    """An OSError of the kind :func:`write_error` explains (for a last-resort net)."""
    return exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM)


def ensure_dir(path: Path, mode: int | None = None) -> None:
    """``mkdir -p`` (and ``chmod mode``), or :class:`WriteFailed`."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
        if mode is not None and (path.stat().st_mode & 0o777) != mode:
            os.chmod(path, mode)
    except OSError as exc:
        raise write_error(exc, Path(exc.filename) if exc.filename else path) from None


@dataclass(frozen=True)
class Entry:
    """One file of a batch: its content, its mode, and the mode of directories
    created for it (None: the umask's)."""

    path: Path
    data: bytes | str
    mode: int = 0o644
    dir_mode: int | None = None

    def raw(self) -> bytes:
        return self.data.encode("utf-8") if isinstance(self.data, str) else self.data


def write_all(entries: Iterable[Entry]) -> list[Path]:
    """Write every entry whose content differs from what is on disk; return their
    paths. Each file is first written to a temporary file next to it; only when all
    are written are they renamed into place. On failure every temporary file is
    removed and :class:`WriteFailed` is raised."""
    staged: list[tuple[str, Path]] = []
    current: Path | None = None
    try:
        for e in entries:
            current = Path(e.path)
            data = e.raw()
            try:
                if current.read_bytes() == data:
                    continue
            except OSError:
                pass
            ensure_dir(current.parent, e.dir_mode)
            fd, tmp = tempfile.mkstemp(dir=current.parent, prefix=f".{current.name}.",
                                       suffix=".tmp")
            staged.append((tmp, current))
            with os.fdopen(fd, "wb") as fh:
                fh.write(data)
            os.chmod(tmp, e.mode)
        for tmp, target in staged:
            current = target
            os.replace(tmp, target)
        return [target for _, target in staged]
    except OSError as exc:
        _remove(tmp for tmp, _ in staged)
        raise write_error(exc, current if current is not None else Path(".")) from None
    except BaseException:
        _remove(tmp for tmp, _ in staged)
        raise


def _remove(paths: Iterable[str]) -> None:
    for tmp in paths:
        try:
            os.unlink(tmp)
        except OSError:
            pass


def write_atomic(path: Path, data: bytes | str, mode: int = 0o644,
                 dir_mode: int | None = None) -> bool:
    """Write one file atomically; False (nothing written) when it already holds
    exactly ``data``."""
    return bool(write_all([Entry(Path(path), data, mode, dir_mode)]))


def append_text(path: Path, text: str) -> None:
    """Append to a log-like file (not atomic by nature), or :class:`WriteFailed`."""
    try:
        ensure_dir(Path(path).parent)
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(text)
    except OSError as exc:
        raise write_error(exc, path) from None
