"""Reading a hand-written input safely, and the limits parity holds it to: a FIFO,
device or directory is refused without blocking, at most MAX_INPUT_BYTES are read,
the text must be UTF-8; nesting, node count and integer range are bounded. The
messages both YAML readers (reference.py, fastconvert.py) share live here too."""

from __future__ import annotations

import os
import re
import stat
from pathlib import Path
from typing import Any, Callable

from ..errors import InputError
from ..nodes import Loc

#: Hand-written inputs larger than this are refused (they are not hand-written).
MAX_INPUT_BYTES = 2 * 1024 * 1024
#: A document may expand to at most this many nodes once aliases are followed.
MAX_NODES = 200_000
#: Mappings and lists may nest at most this deep (the stack model needs 7 levels);
#: deeper input is refused before any recursive walk could exhaust the stack.
MAX_DEPTH = 64
#: Integers must fit a signed 64-bit integer (what Kubernetes and Compose accept).
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1

STD = "tag:yaml.org,2002:"
#: The standard tags a value may carry, by node kind; anything else is refused.
SCALAR_TAGS = frozenset(STD + t for t in ("str", "int", "float", "bool", "null"))

TagParser = Callable[[str, Loc], Any]


class ValueRefused(InputError):
    """A scalar parity refuses wherever it appears (NaN, infinity, an integer beyond
    64 bits): unlike a syntax error, quoting it is the user's call, not parity's."""


def read_input(path: Path, rel: str, limit: int | None = None) -> bytes:
    """The bytes of a hand-written input file, read safely: a FIFO, device or
    directory is refused without blocking (the file is opened non-blocking and
    checked with fstat), and at most ``limit`` (MAX_INPUT_BYTES) + 1 bytes are ever
    read."""
    limit = MAX_INPUT_BYTES if limit is None else limit
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        raise InputError(f"cannot read file: {exc.strerror}", where=rel,
                         hint="check that it exists and that you may read it") from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise InputError(f"not a regular file (a {file_type(info.st_mode)})", where=rel,
                             hint="parity reads only regular files; remove it or replace "
                                  "it with a file")
        if info.st_size > limit:
            raise _too_large(info.st_size, rel, limit=limit)
        chunks: list[bytes] = []
        left = limit + 1
        while left > 0:
            try:
                chunk = os.read(fd, min(left, 1 << 20))
            except BlockingIOError:  # pragma: no cover - regular files do not block
                break
            except OSError as exc:
                raise InputError(f"cannot read file: {exc.strerror}", where=rel) from None
            if not chunk:
                break
            chunks.append(chunk)
            left -= len(chunk)
        data = b"".join(chunks)
    finally:
        os.close(fd)
    if len(data) > limit:  # it grew after fstat
        raise _too_large(len(data), rel, more=True, limit=limit)
    return data


def _too_large(size: int, rel: str, more: bool = False,
               limit: int = MAX_INPUT_BYTES) -> InputError:
    return InputError(
        f"file is {'more than ' if more else ''}{size} bytes, more than the {limit} "
        "bytes parity reads from a hand-written input", where=rel,
        hint="split it into smaller files; inputs this large are not hand-written")


def file_type(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "directory"), (stat.S_ISFIFO, "named pipe"),
                       (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"),
                       (stat.S_ISSOCK, "socket")):
        if test(mode):
            return name
    return "special file"


def decode(data: bytes, rel: str) -> str:
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InputError(f"not UTF-8 text ({exc.reason})", where=rel) from None


def too_big(text: str) -> str:
    # the digits are not echoed: the value may be meant as a secret
    digits = sum(c.isdigit() for c in text)
    return f"an integer of {digits} digits does not fit in 64 bits"


#: What constructing an int, float or bool from its text may raise.
CONSTRUCT_ERRORS = (ValueError, KeyError, TypeError, AttributeError, IndexError)


def not_of_type(std_tag: str, text: str, exc: Exception, where: str) -> InputError:
    """The refusal of a scalar whose int/float/bool construction failed (both readers):
    an integer too long for Python's int(), or text that is not of an explicit tag's
    type (``!!bool maybe``, ``!!float x``, ``!!int 1.5``)."""
    kind = std_tag.removeprefix(STD)
    if kind == "int" and isinstance(exc, ValueError) and \
            re.fullmatch(r"[-+]?[0-9_]+", text.strip()):
        # Python refuses int() of more than 4300 digits
        return ValueRefused(too_big(text), where=where, hint="quote it if you mean the text")
    return InputError(f"'{text[:40]}' is not a YAML {kind}", where=where,
                      hint=f"write a {kind} after !!{kind}, or drop the tag "
                           "(quote the value to make it a string)")


def too_deep(where: str) -> InputError:
    return InputError(f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
                      where=where, hint="flatten the structure; the stack model needs a "
                                        "handful of levels")
