"""The vocabulary of overlay operations, written as YAML tags on overlay nodes.

    !merge                 (the default) merge into the matched node
    !replace               replace the matched node
    !remove                remove the matched node
    !append                list item: add at the end, no matching
    !insert(before=KEY)    list item: add before the item whose key is KEY
    !insert(after=KEY)     list item: add after the item whose key is KEY

Parameters, in parentheses after the operation, comma- or semicolon-separated:

    missing_ok             the target may be absent (merge/replace then add it)
    children_missing_ok    the same, for every direct child of this node
    expects=N | N+ | N-M   how many nodes must match (default exactly 1): N exactly,
                           N+ at least N, N-M between N and M; for !insert, how
                           many anchors (the item is inserted next to each)
    by=FIELD               match list items by FIELD instead of ``name``

Parameters are separated by commas or semicolons; spaces around them are allowed
(``!merge(by=port, expects=2+)``: the YAML reader keeps a tag's parenthesised
parameters together). Only these words are accepted, each at most once; anything
else is an error naming the file and line.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ...errors import InputError, did_you_mean
from ...nodes import Loc

OPERATIONS = ("merge", "replace", "remove", "append", "insert")
PARAMETERS = ("missing_ok", "children_missing_ok", "expects", "by", "before", "after")

_TAG = re.compile(r"^!([a-z_-]+)(?:\((.*)\))?$")


@dataclass(frozen=True)
class Op:
    name: str = "merge"
    missing_ok: bool = False
    children_missing_ok: bool = False
    expects: tuple[int, int | None] | None = None  # (min, max or None for "or more")
    by: str | None = None
    before: str | None = None
    after: str | None = None
    loc: Loc | None = None

    def expected(self) -> tuple[int, int | None]:
        if self.expects is not None:
            return self.expects
        return (0, 1) if self.missing_ok else (1, 1)

    def describe(self) -> str:
        lo, hi = self.expected()
        if hi is None:
            return f"{lo} or more"
        return str(lo) if lo == hi else f"{lo} to {hi}"


MERGE = Op()


def _expects(text: str, loc: Loc) -> tuple[int, int | None]:
    m = re.fullmatch(r"(\d+)(\+)?|(\d+)-(\d+)", text.strip())
    if not m:
        raise InputError(f"expects='{text}' is not a count", where=str(loc),
                         hint="write expects=2, expects=1+ or expects=0-3")
    if m.group(1) is not None:
        n = int(m.group(1))
        return (n, None) if m.group(2) else (n, n)
    lo, hi = int(m.group(3)), int(m.group(4))
    if hi < lo:
        raise InputError(f"expects='{text}': the upper bound is below the lower",
                         where=str(loc))
    return (lo, hi)


def parse_tag(tag: str, loc: Loc) -> Op:
    """``!insert(before=web)`` -> ``Op('insert', before='web')``; errors name file:line."""
    m = _TAG.match(tag)
    if not m:
        raise InputError(f"'{tag}' is not an overlay operation", where=str(loc),
                         hint="use one of " + ", ".join("!" + o for o in OPERATIONS)
                              + " (see docs/overlays.md)")
    name = m.group(1).replace("-", "_")
    if name not in OPERATIONS:
        raise InputError(f"unknown overlay operation '!{m.group(1)}'"
                         + did_you_mean(name, OPERATIONS), where=str(loc),
                         hint="use one of " + ", ".join("!" + o for o in OPERATIONS))
    kwargs: dict = {}
    for raw in re.split(r"[;,]", m.group(2) or ""):
        raw = raw.strip()
        if not raw:
            continue
        key, sep, value = raw.partition("=")
        key = key.strip().replace("-", "_")
        if key not in PARAMETERS:
            raise InputError(f"unknown parameter '{key}' in '{tag}'"
                             + did_you_mean(key, PARAMETERS), where=str(loc),
                             hint="parameters are " + ", ".join(PARAMETERS))
        if key in kwargs:
            raise InputError(f"parameter '{key}' given twice in '{tag}'", where=str(loc),
                             hint="keep one")
        if key in ("missing_ok", "children_missing_ok"):
            if sep and value.strip().lower() not in ("true", "yes", "1"):
                raise InputError(f"{key} takes no value (or =true)", where=str(loc))
            kwargs[key] = True
        elif not sep or not value.strip():
            raise InputError(f"parameter '{key}' needs a value, as in {key}=...",
                             where=str(loc))
        elif key == "expects":
            kwargs[key] = _expects(value, loc)
        else:
            kwargs[key] = value.strip()
    op = Op(name=name, loc=loc, **kwargs)
    if op.name == "insert" and (op.before is None) == (op.after is None):
        raise InputError("!insert needs exactly one of before=KEY or after=KEY",
                         where=str(loc), hint="for example !insert(before=http)")
    if op.name != "insert" and (op.before or op.after):
        raise InputError(f"before=/after= belong to !insert, not !{op.name}", where=str(loc))
    if op.missing_ok and op.expects is not None:
        raise InputError("use either missing_ok or expects=, not both", where=str(loc))
    if op.name == "append" and (op.missing_ok or op.expects is not None):
        raise InputError(f"!append matches nothing, so "
                         f"{'expects=' if op.expects is not None else 'missing_ok'} has no "
                         "meaning on it", where=str(loc),
                         hint="drop the parameter, or use !insert(after=KEY, expects=N) to "
                              "add next to matched items")
    return op
