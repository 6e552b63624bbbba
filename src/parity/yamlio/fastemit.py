"""A block-style YAML writer for the plain data renderers produce (dict, list, str,
int, bool, None), byte-identical to the libyaml path of :func:`parity.yamlio.dump_all`
(PyYAML's emitter plus its sequence re-indentation), and several times faster: the C
emitter is fast, but PyYAML first builds a node per value and asks the Python
resolver twice per scalar.

The writer decides only what is certain: a plain ASCII word-like string, an int, a
bool, null, an empty collection. Every other scalar is written once by libyaml itself
(memoized per process), so its quoting and block style are libyaml's. Anything else
(a shared dict or list, which libyaml would write as an alias; a list directly in a
list; a non-mapping document; another type) makes :func:`dump_all_fast` return None
and the caller takes the libyaml path for the whole batch.
"""

from __future__ import annotations

import re
from typing import Any, Callable

#: Strings the YAML 1.1 resolver (PyYAML's) reads as something else than a string,
#: among those starting with a letter: every other letter-led string resolves to str.
_NOT_STR = frozenset("yes Yes YES no No NO true True TRUE false False FALSE on On ON off "
                     "Off OFF null Null NULL".split())
#: Letter-led printable ASCII without an indicator libyaml refuses in a block plain
#: scalar (": " and a trailing ":" or space are checked apart).
_PLAIN = re.compile(r"[A-Za-z][A-Za-z0-9_./@=+ :-]*")
_MAX_PLAIN = 120   # a simple key stops at 128 characters; width is far beyond
#: Line breaks libyaml knows besides "\n" (NEL, LS, PS, CR): they change the layout of
#: the lines around them, so a scalar holding one takes the libyaml path.
_ODD_BREAKS = re.compile("[\r\x85\u2028\u2029]")
_LOOKS_LIKE_HEADER = re.compile(r"[|>][0-9+-]*$")


class _Fallback(Exception):
    """This batch takes the libyaml path."""


def _plain(s: str) -> bool:
    return (len(s) <= _MAX_PLAIN and _PLAIN.fullmatch(s) is not None and s not in _NOT_STR
            and s[-1] not in " :" and ": " not in s)


class Writer:
    """One writer per dumper; ``libyaml(value, is_key)`` returns the single-key dump of
    ``{value: 0}`` or ``{"k": value}`` that libyaml writes, for scalars it decides."""

    def __init__(self, libyaml: Callable[[Any], str]) -> None:
        self._libyaml = libyaml
        self._values: dict[Any, tuple[str, list[str] | None]] = {}
        self._keys: dict[Any, str] = {}

    # -- scalars ------------------------------------------------------------------
    def key(self, k: Any) -> str:
        cls = k.__class__
        if cls is str:
            if _plain(k):
                return k
        elif cls is int:
            return str(k)
        elif cls is not bool and k is not None:
            raise _Fallback
        hit = self._keys.get((cls, k))
        if hit is None:
            text = self._libyaml({k: 0})
            if _ODD_BREAKS.search(text) or not text.endswith(": 0\n") or "\n" in text[:-1] or text.startswith("?"):
                raise _Fallback
            hit = self._keys[(cls, k)] = text[:-4]
        return hit

    def value(self, v: Any) -> tuple[str, list[str] | None]:
        """(text on the key's line, body lines of a block scalar or None)."""
        cls = v.__class__
        if cls is str:
            if _plain(v):
                return v, None
        elif cls is int:
            return str(v), None
        elif cls is bool:
            return ("true" if v else "false"), None
        elif v is None:
            return "null", None
        elif cls is not float:
            raise _Fallback
        hit = self._values.get((cls, v))
        if hit is None:
            text = self._libyaml({"k": v})
            if _ODD_BREAKS.search(text):
                raise _Fallback
            lines = text.split("\n")
            if not lines[0].startswith("k: ") or lines[-1] != "":
                raise _Fallback
            head = lines[0][3:]
            if len(lines) == 2:
                if _LOOKS_LIKE_HEADER.search(head):
                    raise _Fallback   # the re-indentation would take it for a block
                hit = (head, None)
            elif head[:1] == "|" and "+" not in head:
                hit = (head, lines[1:-1])   # each body line starts with two spaces
            else:
                raise _Fallback
            self._values[(cls, v)] = hit
        return hit

    # -- collections ----------------------------------------------------------------
    # Columns are those of the final text: libyaml's, with every block sequence moved
    # two columns right of its key, as yamlio's re-indentation does. One quirk of that
    # re-indentation is kept: after a block scalar on a list item's first line
    # ("- key: |"), the rest of that item keeps libyaml's layout (its lists stay flush
    # with their keys), moved as a whole; ``flush`` carries that.
    def document(self, doc: Any) -> str:
        if doc.__class__ is not dict or not doc:
            raise _Fallback
        out = ["---\n"]
        self._mapping(doc, 0, out, "", set(), False)
        return "".join(out)

    def _mapping(self, d: dict, col: int, out: list[str], lead: str, seen: set,
                 flush: bool) -> None:
        if id(d) in seen:
            raise _Fallback
        seen.add(id(d))
        pad = " " * col
        first_of_item = lead != pad
        for k, v in d.items():
            out.append(lead)
            out.append(self.key(k))
            lead = pad
            cls = v.__class__
            if cls is dict:
                if v:
                    out.append(":\n")
                    self._mapping(v, col + 2, out, " " * (col + 2), seen, flush)
                else:
                    out.append(": {}\n")
            elif cls is list:
                if v:
                    out.append(":\n")
                    self._sequence(v, col if flush else col + 2, out, seen, flush)
                else:
                    out.append(": []\n")
            else:
                text, body = self.value(v)
                out.append(": ")
                out.append(text)
                out.append("\n")
                if body is not None:
                    _block_body(out, pad, body)
                    if first_of_item:
                        flush = True
            first_of_item = False

    def _sequence(self, items: list, col: int, out: list[str], seen: set,
                  flush: bool) -> None:
        if id(items) in seen:
            raise _Fallback
        seen.add(id(items))
        dash = " " * col + "- "
        for v in items:
            cls = v.__class__
            if cls is dict:
                if v:
                    self._mapping(v, col + 2, out, dash, seen, flush)
                else:
                    out.append(dash + "{}\n")
            elif cls is list:
                if v:
                    raise _Fallback
                out.append(dash + "[]\n")
            else:
                text, body = self.value(v)
                out.append(dash)
                out.append(text)
                out.append("\n")
                if body is not None:
                    _block_body(out, " " * col, body)


def _block_body(out: list[str], pad: str, body: list[str]) -> None:
    """A block scalar's lines (each already two spaces in) under a line at ``pad``;
    an empty line stays empty, as libyaml writes it."""
    for line in body:
        out.append(pad + line + "\n" if line else "\n")


def dump_all_fast(writer: Writer, docs: list[Any]) -> str | None:
    """The documents as ``dump_all`` writes them, or None where the writer is not sure."""
    try:
        return "".join([writer.document(d) for d in docs])
    except _Fallback:
        return None
