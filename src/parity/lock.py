"""One writer at a time: the locks that keep two parity commands of one checkout
from changing the same state at once.

    .parity/locks/<name>.lock    held with flock(2) by the process that writes; the
                                 kernel releases it when that process ends, however
                                 it ends, so a lock of a dead process never blocks
    .parity/locks/<name>.json    who holds it: pid, command, host, since (written
                                 after taking the lock, removed before releasing it)

Locks, always taken in this order (so two commands never wait on each other):

    compose, kind     the environment of one mode: ``up``, ``down``, ``reset``. A
                      second command waits :data:`WAIT_SECONDS`, then fails (exit 3)
                      naming the holder.
    render-<digest>   one output directory of ``inv render`` / the render step
    tls               the local CA, the edge certificate and the secret values: held
                      only while they are checked, created or read

(Image builds have their own lock, ``.parity/images.lock``: :mod:`parity.images`.)
Read-only commands (``status``, ``config``, ``diff``, ``render`` to stdout) take none.
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import fcntl
import hashlib
import json
import os
import shlex
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

from .errors import PrerequisiteMissing
from .fsio import ensure_dir, write_error
from .yamlio import write_atomic

#: How long a lifecycle command waits for another one on the same environment.
WAIT_SECONDS = 10.0
#: How long a short section (render, TLS material) waits: the holder is quick.
SHORT_WAIT_SECONDS = 60.0
POLL_SECONDS = 0.05

_held: dict[Path, tuple[int, int]] = {}   # lock file -> (fd, depth), this process only
_guard = threading.Lock()


class Busy(PrerequisiteMissing):
    """Another parity process holds the lock: exit 3, naming the holder."""


def lock_dir(state: Path) -> Path:
    return state / "locks"


def command_line() -> str:
    """What this process was started as, short: ``inv up --mode kind``."""
    argv = list(sys.argv) or ["python"]
    argv[0] = Path(argv[0]).name
    if argv[0] in ("-c", "-m", ""):          # python -c …, python -m …
        argv.insert(0, Path(sys.executable).name)
    text = shlex.join(argv)
    return text if len(text) <= 200 else text[:199] + "…"


def holder(state: Path, name: str) -> dict | None:
    """The recorded holder of a lock (None: not recorded, or unreadable)."""
    try:
        info = json.loads((lock_dir(state) / f"{name}.json").read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    return info if isinstance(info, dict) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def describe(info: dict | None) -> str:
    if not info:
        return "another parity process (it has not recorded itself yet)"
    since = str(info.get("since", "?"))
    try:
        started = _dt.datetime.fromisoformat(since)
        age = (_dt.datetime.now(_dt.timezone.utc) - started).total_seconds()
        since += f", {age:.0f} s ago"
    except ValueError:
        pass
    return (f"`{info.get('command', '?')}` (pid {info.get('pid', '?')} on "
            f"{info.get('host', '?')}, since {since})")


@contextlib.contextmanager
def hold(state: Path, name: str, what: str, *, wait: float | None = None,
         say: Callable[[str], None] | None = None) -> Iterator[None]:
    """Hold lock ``name`` of the checkout whose state directory is ``state``.

    Re-entrant within one process (``reset`` holds the environment lock across its
    ``down`` and ``up``). Waits up to ``wait`` seconds (default :data:`WAIT_SECONDS`)
    for another holder, then raises :class:`Busy` naming it. ``what`` names what
    the lock protects, for that message ("the compose environment of this checkout").
    """
    path = (lock_dir(state) / f"{name}.lock").absolute()
    with _guard:
        if path in _held:
            fd, depth = _held[path]
            _held[path] = (fd, depth + 1)
            reentered = True
        else:
            reentered = False
    if reentered:
        try:
            yield
        finally:
            with _guard:
                fd, depth = _held[path]
                _held[path] = (fd, depth - 1)
        return

    ensure_dir(path.parent)
    try:
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as exc:
        raise write_error(exc, path) from None
    try:
        _acquire(fd, state, name, what, WAIT_SECONDS if wait is None else wait, say)
    except BaseException:
        os.close(fd)
        raise
    info_path = path.with_suffix(".json")
    try:
        _write_holder(info_path)
        with _guard:
            _held[path] = (fd, 1)
        yield
    finally:
        with _guard:
            _held.pop(path, None)
        with contextlib.suppress(OSError):
            info_path.unlink()
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)


def _acquire(fd: int, state: Path, name: str, what: str, wait: float,
             say: Callable[[str], None] | None) -> None:
    deadline = time.monotonic() + wait
    told = False
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except OSError as exc:
            if exc.errno not in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise
        if time.monotonic() >= deadline:
            break
        if say and not told:
            say(f"waiting up to {wait:.0f} s for {describe(holder(state, name))}, "
                f"which is changing {what}")
            told = True
        time.sleep(POLL_SECONDS)
    info = holder(state, name)
    pid = (info or {}).get("pid")
    if isinstance(pid, int) and info.get("host") == socket.gethostname() and not _alive(pid):
        info = None  # a record left by a holder that ended; the new holder writes its own
    kill = f"kill {pid}" if isinstance(pid, int) else "stop it"
    raise Busy(
        f"{what} is busy: {describe(info)} is changing it "
        f"(lock {_rel(lock_dir(state) / f'{name}.lock')}); waited {wait:.0f} s",
        hint=f"let it finish, then run this command again; if that process hangs, {kill} "
             "(a lock is released when its process ends: there is nothing to delete)")


def _write_holder(path: Path) -> None:
    now = _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0)
    write_atomic(path, json.dumps({"pid": os.getpid(), "command": command_line(),
                                   "host": socket.gethostname(),
                                   "since": now.isoformat()}) + "\n")


def _rel(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd().resolve()))
    except ValueError:
        return str(path)


# --------------------------------------------------------------------------- named locks

def environment(root: Path, mode: str, say: Callable[[str], None] | None = None,
                wait: float | None = None):
    """The lock of one mode's environment of the checkout at ``root``."""
    return hold(Path(root) / ".parity", mode,
                f"the {mode} environment of this checkout ({Path(root).resolve()})",
                wait=wait, say=say)


def render_dir(root: Path, out: Path):
    """The lock of one render output directory (a whole set of files is written
    under it, so a reader never sees files of two renders mixed)."""

    digest = hashlib.sha256(str(Path(out).resolve()).encode()).hexdigest()[:16]
    return hold(Path(root) / ".parity", f"render-{digest}",
                f"the render directory {Path(out)}", wait=SHORT_WAIT_SECONDS)


def material(state: Path):
    """The lock of the local CA, the edge certificate and the secret values."""
    return hold(Path(state), "tls", f"the local CA and certificates in {state}",
                wait=SHORT_WAIT_SECONDS)
