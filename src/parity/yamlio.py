"""Reading hand-written YAML with line numbers, and writing output YAML fast.

Input: libyaml (PyYAML's C parser) composes the node graph (it keeps marks for
every node) and this module turns it into :mod:`parity.nodes` trees. Doing the
conversion here, rather than through a library's constructors, is what lets parity
refuse duplicate keys, count alias expansion (alias bombs), read overlay tags, and
keep ``file:line`` on every key and value. ruamel.yaml (pure Python, YAML 1.2) is
the reference reader: libyaml reads a file only where it provably reads it as ruamel
does (scalars are resolved here by ruamel's YAML 1.2 rules, overlay tags are escaped
for libyaml and checked token by token, empty values get ruamel's line); a file with
an error, or with what the two read differently (tabs, %-directives, …), is read by
ruamel, so every result and message is ruamel's (tests/test_yamlio_fast.py pins it).

Output: renderers produce plain dicts/lists; :func:`dump_all` emits them with
PyYAML's libyaml dumper (10-15x faster than ruamel round-trip, see
docs/performance.md), block style, indented sequences, no folding, so the result
is byte-stable and yamllint-clean. Files are written atomically.
"""

from __future__ import annotations

import math
import os
import re
import stat
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from . import fastemit
from .nodes import Loc, Map, Node, Scalar, Seq

#: Hand-written inputs larger than this are refused (they are not hand-written).
MAX_INPUT_BYTES = 2 * 1024 * 1024
#: A document may expand to at most this many nodes once aliases are followed.
MAX_NODES = 200_000
#: Mappings and lists may nest at most this deep (the stack model needs 7 levels);
#: deeper input is refused before any recursive walk could exhaust the stack.
MAX_DEPTH = 64
#: Integers must fit a signed 64-bit integer (what Kubernetes and Compose accept).
INT_MIN, INT_MAX = -(2 ** 63), 2 ** 63 - 1

_STD = "tag:yaml.org,2002:"
#: The standard tags a value may carry, by node kind; anything else is refused.
_SCALAR_TAGS = frozenset(_STD + t for t in ("str", "int", "float", "bool", "null"))

_yaml = None
_scalar_constructor = None


def _tag_scanner(base):
    """ruamel's scanner, except that an overlay tag's parenthesised parameters may
    contain spaces: ``!merge(by=port, expects=2+)`` is one tag, as the docs write it
    (YAML ends a tag at a space; the parameters end at the balancing ``)`` on the
    same line, and the spaces inside are dropped)."""

    class Scanner(base):  # type: ignore[misc, valid-type]
        def scan_tag_uri(self, name, start_mark):
            value = super().scan_tag_uri(name, start_mark)
            depth = value.count("(") - value.count(")")
            if name != "tag" or depth <= 0:
                return value
            srp = self.reader.peek
            n = 0
            ahead = depth
            while True:  # find the balancing ')' on this line, or leave the tag as is
                ch = srp(n)
                if ch in "\0\r\n\x85\u2028\u2029":
                    return value
                if ch == "(":
                    ahead += 1
                elif ch == ")":
                    ahead -= 1
                    if ahead == 0:
                        break
                n += 1
            rest = self.reader.prefix(n + 1)
            self.reader.forward(n + 1)
            return value + re.sub(r"\s+", "", rest)

    return Scanner


def _ruamel():
    global _yaml, _scalar_constructor
    if _yaml is None:
        from ruamel.yaml import YAML

        yaml = YAML(typ="rt")
        yaml.Scanner = _tag_scanner(yaml.Scanner)
        yaml.max_depth = MAX_DEPTH
        safe = YAML(typ="safe", pure=True)
        _scalar_constructor = safe.constructor
        _yaml = yaml
    return _yaml, _scalar_constructor


TagParser = Callable[[str, Loc], Any]


class ValueRefused(InputError):
    """A scalar parity refuses wherever it appears (NaN, infinity, an integer beyond
    64 bits): unlike a syntax error, quoting it is the user's call, not parity's."""


def load_file(path: Path, rel: str, layer: str, *, tag_parser: TagParser | None = None,
              text: str | None = None) -> Map:
    """Load one single-document YAML file into a :class:`Map` (empty file -> empty map).

    ``tag_parser`` turns a local tag such as ``!replace`` into an overlay operation;
    when it is ``None`` (base files) any tag is an error."""
    if text is None:
        text = decode(read_input(path, rel), rel)
    elif len(text.encode()) > MAX_INPUT_BYTES:
        raise InputError(f"input is more than {MAX_INPUT_BYTES} bytes", where=rel)
    return parse_text(text, rel, layer, tag_parser=tag_parser)


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


def parse_text(text: str, rel: str, layer: str, *, tag_parser: TagParser | None = None) -> Map:
    """One single-document YAML text as a :class:`Map` (see load_file).

    libyaml reads it when it reads it as the reference reader (ruamel, below) would;
    any other file, and any file with an error, is read by the reference reader, so
    the result and every message are the reference's."""
    fast = _fast_docs(text)
    if fast is not None:
        try:
            return _root(fast[0], rel, layer, _FastConverter(rel, layer, tag_parser, fast[1]))
        except (InputError, _Unsure):
            pass  # the reference reader finds the error again and words it
    return _parse_reference(text, rel, layer, tag_parser)


def _root(docs: list, rel: str, layer: str, conv) -> Map:
    docs = [d for d in docs if d is not None]
    if not docs:
        return Map({}, {}, (Loc(rel, 1, layer),))
    if len(docs) > 1:
        line = docs[1].start_mark.line + 1
        raise InputError("more than one YAML document in a file parity reads",
                         where=f"{rel}:{line}", hint="put each document in its own file")
    root = conv.convert(docs[0])
    if not isinstance(root, Map):
        raise InputError(f"the top level must be a mapping, not a {root.kind}",
                         where=f"{rel}:{root.loc.line}")
    return root


def _parse_reference(text: str, rel: str, layer: str, tag_parser: TagParser | None) -> Map:
    """The reference reader: ruamel.yaml (pure Python, YAML 1.2)."""
    yaml, _ = _ruamel()
    from ruamel.yaml.composer import MaxDepthExceededError
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    composer = getattr(yaml, "_composer", None)
    if composer is not None:  # a failed parse leaves its depth and anchors behind
        composer.depth = 0
        composer.anchors = {}
    try:
        docs = list(yaml.compose_all(text))
    except MaxDepthExceededError as exc:
        mark = exc.problem_mark or exc.context_mark
        raise _too_deep(f"{rel}:{mark.line + 1 if mark else 0}") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or exc.context or "malformed YAML"
        raise InputError(f"malformed YAML: {problem}", where=f"{rel}:{line}",
                         hint="fix the YAML syntax at that line (yamllint shows more)") from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors in practice
        raise InputError(f"malformed YAML: {exc}", where=rel) from None
    return _root(docs, rel, layer, _Converter(rel, layer, tag_parser))


def _too_big(text: str) -> str:
    # the digits are not echoed: the value may be meant as a secret
    digits = sum(c.isdigit() for c in text)
    return f"an integer of {digits} digits does not fit in 64 bits"


def _too_deep(where: str) -> InputError:
    return InputError(f"mappings and lists are nested more than {MAX_DEPTH} levels deep",
                      where=where, hint="flatten the structure; the stack model needs a "
                                        "handful of levels")


def _tag_text(node) -> str:
    ctag = getattr(node, "ctag", None)
    handle = getattr(ctag, "handle", None)
    suffix = getattr(ctag, "suffix", None)
    if handle == "!!" and suffix is not None:
        return "!!" + str(suffix)
    tag = getattr(node, "tag", None)
    return str(getattr(tag, "value", tag))


def _explicit(node) -> bool:
    """Whether the node's tag was written in the source (not resolved from the value)."""
    return getattr(getattr(node, "ctag", None), "handle", None) is not None


class _Converter:
    def __init__(self, rel: str, layer: str, tag_parser: TagParser | None):
        self.rel = rel
        self.layer = layer
        self.tag_parser = tag_parser
        self.count = 0
        self.depth = 0
        self.active: set[int] = set()

    def loc(self, node) -> Loc:
        return Loc(self.rel, node.start_mark.line + 1, self.layer)

    def op_of(self, node, loc: Loc, kind: str):
        """(overlay operation, standard tag) of a node; a standard tag that does not
        fit the node (``!!python/object``, ``!!set``, ``!!binary``, …) is refused."""
        tag = node.tag
        tag = getattr(tag, "value", tag)
        if tag is None:
            return None, tag
        tag = str(tag)
        if tag.startswith(_STD):
            allowed = {"scalar": _SCALAR_TAGS, "mapping": {_STD + "map"},
                       "list": {_STD + "seq"}}[kind]
            # a date is resolved as a timestamp and read as the text written
            implicit_ok = not _explicit(node) and tag == _STD + "timestamp"
            if tag not in allowed and not implicit_ok:
                raise InputError(
                    f"YAML tag '{_tag_text(node)}' is not supported on a {kind}",
                    where=str(loc),
                    hint="remove the tag: parity reads plain strings, numbers, booleans, "
                         "null, mappings and lists" + ("; quote the value to make it a string"
                                                       if kind == "scalar" else ""))
            return None, tag
        if self.tag_parser is None:
            raise InputError(f"YAML tag '{tag}' is not allowed here", where=str(loc),
                             hint="overlay operations such as !replace belong in overlays/, "
                                  "not in base/")
        return self.tag_parser(tag, loc), None

    def convert(self, node) -> Node:
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode

        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(
                f"the document expands to more than {MAX_NODES} nodes once YAML aliases are "
                "followed (an alias bomb?)", where=f"{self.rel}:{node.start_mark.line + 1}",
                hint="remove the nested anchors/aliases; write the values out")
        loc = self.loc(node)
        if isinstance(node, ScalarNode):
            op, std_tag = self.op_of(node, loc, "scalar")
            value, text = self.scalar(node, std_tag, loc)
            return Scalar(value, (loc,), op, text)
        if not isinstance(node, (SequenceNode, MappingNode)):
            raise InputError(f"unsupported YAML node {type(node).__name__}", where=str(loc))
        ident = id(node)
        if ident in self.active:
            raise InputError("a YAML alias refers to one of its own parents (recursive alias)",
                             where=str(loc), hint="remove the recursive anchor")
        # the composer limits nesting too, but aliases can nest a deep node deeper
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _too_deep(str(loc))
        self.active.add(ident)
        try:
            if isinstance(node, SequenceNode):
                op, _ = self.op_of(node, loc, "list")
                return Seq(tuple(self.convert(n) for n in node.value), (loc,), op)
            op, _ = self.op_of(node, loc, "mapping")
            return self.mapping(node, (loc,), op)
        finally:
            self.active.discard(ident)
            self.depth -= 1

    def mapping(self, node, hist, op) -> Map:
        entries: dict[str, Node] = {}
        keylocs: dict[str, Loc] = {}
        for knode, vnode in node.value:
            kloc = self.loc(knode)
            ktag = str(getattr(knode.tag, "value", knode.tag))
            if ktag == _STD + "merge":
                raise InputError("YAML merge keys ('<<') are not supported", where=str(kloc),
                                 hint="write the keys out, or move shared values into an overlay")
            if knode.__class__.__name__ != "ScalarNode":
                raise InputError("mapping keys must be plain strings", where=str(kloc))
            key = str(knode.value)
            if _explicit(knode) and _tag_text(knode) != "!!str":
                tag = _tag_text(knode)
                raise InputError(
                    f"YAML tag '{tag}' on the mapping key '{key}': a tag on a key is not "
                    "read", where=str(kloc),
                    hint=f"put it on the value ('{key}: {tag} ...') or on the list item "
                         f"('- {tag} ...')" if tag.startswith("!") and not tag.startswith("!!")
                    else "remove the tag; keys are plain strings")
            if key in entries:
                raise InputError(f"duplicate key '{key}' (first at line {keylocs[key].line})",
                                 where=str(kloc), hint="remove one of the two keys")
            keylocs[key] = kloc
            entries[key] = self.convert(vnode)
        return Map(entries, keylocs, hist, op)

    def scalar(self, node, std_tag, loc: Loc) -> tuple[Any, str | None]:
        """(value, the text written when the value is a number or boolean)."""
        value = self._value(node, std_tag)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            return value, (node.value if isinstance(value, bool) else None)
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueRefused(f"'{node.value}' is not a finite number", where=str(loc),
                             hint="quote it if you mean the text; parity accepts no NaN or "
                                  "infinity")
        if isinstance(value, int) and not INT_MIN <= value <= INT_MAX:
            raise ValueRefused(_too_big(node.value), where=str(loc),
                             hint="quote it if you mean the text")
        return value, node.value

    def _value(self, node, std_tag) -> Any:
        _, constructor = _ruamel()
        if std_tag is None:
            # a custom (overlay) tag: resolve the plain scalar as if it were untagged
            if node.style in ("'", '"'):
                return node.value
            from ruamel.yaml.nodes import ScalarNode

            yaml, _ = _ruamel()
            implicit = yaml.resolver.resolve(ScalarNode, node.value, (True, False))
            node = ScalarNode(implicit, node.value, node.start_mark, node.end_mark, node.style)
            std_tag = str(getattr(implicit, "value", implicit))
        if std_tag == _STD + "timestamp":
            # YAML 1.2's core schema has no timestamps: a date stays the text written
            # (the parity policy's `until: 2027-01-31` is read as a date where needed)
            return node.value
        if std_tag == _STD + "str":
            # ruamel marks the fold points of a folded (>) scalar with \a
            return node.value.replace("\a", "") if node.style == ">" else node.value
        if std_tag == _STD + "null":
            return None
        if std_tag in (_STD + "int", _STD + "float", _STD + "bool"):
            kind = std_tag.removeprefix(_STD)
            try:
                return constructor.construct_object(node, deep=True)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                if std_tag == _STD + "int" and isinstance(exc, ValueError) and \
                        re.fullmatch(r"[-+]?[0-9_]+", node.value.strip()):
                    # Python refuses int() of more than 4300 digits
                    raise ValueRefused(_too_big(node.value),
                                       where=str(self.loc(node)),
                                       hint="quote it if you mean the text") from None
                # an explicit !!bool maybe / !!float x / !!int 1.5: not that type
                raise InputError(f"'{node.value[:40]}' is not a YAML {kind}",
                                 where=str(self.loc(node)),
                                 hint=f"write a {kind} after !!{kind}, or drop the tag "
                                      "(quote the value to make it a string)") from None
        raise InputError(f"unsupported YAML type {std_tag.removeprefix(_STD)!s} "
                         f"for value {node.value!r}", where=str(self.loc(node)),
                         hint="quote the value to make it a string")


# ------------------------------------------------------------------ fast path (libyaml)
#
# libyaml (PyYAML's C parser) composes the node graph about 40x faster than ruamel.
# It is used whenever it provably reads a file as the reference reader (ruamel, below)
# does; anything else (an error, a %-directive, a tag libyaml would read otherwise)
# goes to the reference reader, so results and messages stay the same.

_PLAIN = "?plain"    # an untagged plain scalar: resolved here, by YAML 1.2's rules
_QUOTED = "?quoted"  # an untagged quoted or block scalar: a string
_MAP = _STD + "map"
_SEQ = _STD + "seq"

#: YAML 1.2 implicit resolution, as ruamel's VersionedResolver does it (same regular
#: expressions, same order, selected by the first character).
_BOOL12 = re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$")
_FLOAT12 = re.compile(r"""^(?:
         [-+]?(?:[0-9][0-9_]*)\.[0-9_]*(?:[eE][-+]?[0-9]+)?
        |[-+]?(?:[0-9][0-9_]*)(?:[eE][-+]?[0-9]+)
        |[-+]?\.[0-9_]+(?:[eE][-+][0-9]+)?
        |[-+]?\.(?:inf|Inf|INF)
        |\.(?:nan|NaN|NAN))$""", re.X)
_INT12 = re.compile(r"""^(?:[-+]?0b[0-1_]+
        |[-+]?0o?[0-7_]+
        |[-+]?[0-9_]+
        |[-+]?0x[0-9a-fA-F_]+)$""", re.X)
_MERGE = re.compile(r"^(?:<<)$")
_NULL = re.compile(r"""^(?: ~
        |null|Null|NULL
        | )$""", re.X)
_TIMESTAMP = re.compile(r"""^(?:[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9]
        |[0-9][0-9][0-9][0-9] -[0-9][0-9]? -[0-9][0-9]?
        (?:[Tt]|[ \t]+)[0-9][0-9]?
        :[0-9][0-9] :[0-9][0-9] (?:\.[0-9]*)?
        (?:[ \t]*(?:Z|[-+][0-9][0-9]?(?::[0-9][0-9])?))?)$""", re.X)
_VALUE = re.compile(r"^(?:=)$")
_YAML = re.compile(r"^(?:!|&|\*)$")


def _resolvers() -> dict[str, list[tuple[str, re.Pattern]]]:
    table: dict[str, list[tuple[str, re.Pattern]]] = {}
    for tag, rx, first in (("bool", _BOOL12, "tTfF"), ("float", _FLOAT12, "-+0123456789."),
                           ("int", _INT12, "-+0123456789"), ("merge", _MERGE, "<"),
                           ("null", _NULL, ["~", "n", "N", ""]),
                           ("timestamp", _TIMESTAMP, "0123456789"), ("value", _VALUE, "="),
                           ("yaml", _YAML, "!&*")):
        for ch in first:
            table.setdefault(ch, []).append((_STD + tag, rx))
    return table


_RESOLVERS = _resolvers()
_STR = _STD + "str"


def _resolve(value: str) -> str:
    """The tag of a plain scalar (YAML 1.2 core schema, plus timestamps)."""
    for tag, rx in _RESOLVERS.get(value[:1], ()):
        if rx.match(value):
            return tag
    return _STR


_BOOL_VALUES = {"yes": True, "no": False, "y": True, "n": False, "true": True,
                "false": False, "on": True, "off": False}
_INF = float("inf")
_NAN = float("nan")


def _construct(tag: str, value_s: str) -> Any:
    """An int, float or bool from its text, as ruamel's SafeConstructor (YAML 1.2)
    builds it: the same steps, so the same values and the same failures."""
    if tag == _STD + "bool":
        return _BOOL_VALUES[value_s.lower()]
    if tag == _STD + "int":
        value_s = value_s.replace("_", "")
        sign = +1
        if value_s[0] == "-":
            sign = -1
        if value_s[0] in "+-":
            value_s = value_s[1:]
        if value_s == "0":
            return 0
        if value_s.startswith("0b"):
            return sign * int(value_s[2:], 2)
        if value_s.startswith("0x"):
            return sign * int(value_s[2:], 16)
        if value_s.startswith("0o"):
            return sign * int(value_s[2:], 8)
        return sign * int(value_s)
    value_s = value_s.replace("_", "").lower()
    sign = +1
    if value_s[0] == "-":
        sign = -1
    if value_s[0] in "+-":
        value_s = value_s[1:]
    if value_s == ".inf":
        return sign * _INF
    if value_s == ".nan":
        return _NAN
    return sign * float(value_s)


_Loader = None


def _loader():
    """PyYAML's C parser and composer; the resolver only marks what was untagged."""
    global _Loader
    if _Loader is None:
        import yaml

        try:
            from yaml._yaml import CParser
        except ImportError:  # PyYAML without libyaml: the reference reader reads
            _Loader = False
            return _Loader
        scalar = yaml.ScalarNode

        class Loader(CParser):  # type: ignore[misc, valid-type]
            def resolve(self, kind, value, implicit):
                if kind is scalar:
                    return _PLAIN if implicit[0] else _QUOTED
                return _MAP if kind is yaml.MappingNode else _SEQ

            def descend_resolver(self, parent, index):
                pass

            def ascend_resolver(self):
                pass

        _Loader = Loader
    return _Loader


#: What ruamel reads as a tag's URI characters (YAML 1.2: '#' included) ...
_RUAMEL_URI = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                        "-;/?:@&=+$,_.!~*'()[]%#")
#: ... and what libyaml takes in a tag unescaped; the rest is %-escaped for it.
_LIBYAML_URI = frozenset("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
                         "-_;/?:@&=+$.!~*'()")
_BREAKS = "\0\r\n\x85\u2028\u2029"
_TAG_ENDS = "\0 \r\n\x85\u2028\u2029"


class _Unsure(Exception):
    """The fast reader cannot tell that it reads this file as the reference does."""


def _ruamel_tag(text: str, i: int) -> tuple[str, str, int]:
    """(handle, suffix, end) of the tag the reference reader scans at ``text[i]``
    ('!'), with its parenthesised parameters (spaces dropped, see _tag_scanner);
    _Unsure for the forms this does not model (named handles, verbatim and
    non-specific tags, %-escapes, what the reference refuses)."""
    n = len(text)
    j = i + 1
    handle = "!"
    if j < n and text[j] == "!":
        handle, j = "!!", j + 1
    if j >= n or text[j] in "<\0 \t\r\n\x85\u2028\u2029":
        raise _Unsure
    k = j
    while k < n and text[k] not in _TAG_ENDS:
        if text[k] == "!":  # a named handle (!e!x)
            raise _Unsure
        k += 1
    k = j
    while k < n and text[k] in _RUAMEL_URI:
        k += 1
    suffix = text[j:k]
    if not suffix or "%" in suffix:
        raise _Unsure
    depth = suffix.count("(") - suffix.count(")")
    if depth > 0:
        m, ahead = k, depth
        while m < n and text[m] not in _BREAKS:
            if text[m] == "(":
                ahead += 1
            elif text[m] == ")":
                ahead -= 1
                if ahead == 0:
                    rest = text[k:m + 1]
                    if "%" in rest:
                        raise _Unsure
                    suffix += re.sub(r"\s+", "", rest)
                    k = m + 1
                    break
            m += 1
    if k < n and text[k] not in _TAG_ENDS:
        raise _Unsure  # the reference refuses it ("expected ' '")
    return handle, suffix, k


def _escaped(suffix: str) -> str:
    if all(c in _LIBYAML_URI for c in suffix):
        return suffix
    return "".join(c if c in _LIBYAML_URI else "".join(f"%{b:02X}" for b in c.encode())
                   for c in suffix)


def _tags_for_libyaml(text: str) -> str:
    """``text`` with its tags written so libyaml reads them as the reference reader
    does (``!merge(by=port, expects=2+)`` -> ``!merge(by=port%2Cexpects=2+)``);
    _Unsure when that cannot be shown: every tag libyaml then scans must be one the
    reference scans, with the same value."""
    import yaml

    # every '!' that would be a tag needing a rewrite if it were a tag
    wanted: dict[int, tuple[str, str, int]] = {}
    pos = text.find("!")
    while pos >= 0:
        nxt = pos + 1
        try:
            handle, suffix, end = _ruamel_tag(text, pos)
        except _Unsure:
            pass
        else:
            if end != pos + len(handle) + len(suffix) or _escaped(suffix) != suffix:
                wanted[pos] = (handle, suffix, end)
            nxt = end
        pos = text.find("!", nxt)
    for _ in range(3):
        # write the rewrites, remembering where each original offset went
        parts, shifts, last, delta = [], [], 0, 0
        for p in sorted(wanted):
            handle, suffix, end = wanted[p]
            new = handle + _escaped(suffix)
            parts.append(text[last:p])
            parts.append(new)
            shifts.append((p + delta, p, end, len(new)))
            delta += len(new) - (end - p)
            last = end
        parts.append(text[last:])
        out = "".join(parts)
        starts = {s[0]: s for s in shifts}
        seen: set[int] = set()
        loader = _loader()(out)
        try:
            while loader.check_token():
                tok = loader.get_token()
                if type(tok) is not yaml.TagToken:
                    continue
                at = tok.start_mark.index
                if at in starts:
                    new_at, p, end, _ = starts[at]
                    seen.add(p)
                else:
                    if out[at:at + 1] != "!":
                        raise _Unsure
                    p = _original(at, shifts)
                    end = None
                try:
                    handle, suffix, r_end = _ruamel_tag(text, p)
                except _Unsure:
                    raise _Unsure from None
                if tok.value != (handle, suffix) or (end is not None and r_end != end):
                    raise _Unsure
                if end is None and p in wanted:
                    raise _Unsure
                if end is None and r_end - p != tok.end_mark.index - at:
                    raise _Unsure
        except yaml.YAMLError:
            raise _Unsure from None
        finally:
            loader.dispose()
        missed = set(wanted) - seen
        if not missed:
            return out
        for p in missed:  # in a comment or a string: not a tag, leave it as written
            del wanted[p]
    raise _Unsure


def _original(at: int, shifts: list[tuple[int, int, int, int]]) -> int:
    """The offset in the original text of offset ``at`` of the rewritten one (not
    inside a rewritten tag)."""
    delta = 0
    for new_at, p, end, new_len in shifts:
        if new_at >= at:
            break
        delta = (end - p) - new_len + delta
    return at + delta


#: What the fast reader leaves to the reference reader, which reads these otherwise
#: than libyaml: a %-directive, tabs, a byte order mark, the Unicode line breaks, a
#: block scalar header with a comment glued to it (``|#``) or followed by leading
#: blank lines that hold spaces.
_UNSURE_TEXT = re.compile("[\t\x85\u2028\u2029\ufeff]|^%|[|>][-+0-9]*#"
                          "|[|>][-+0-9]* *(?:#[^\r\n]*)?(?:\r\n?|\n)(?: *(?:\r\n?|\n))*? +(?:\r\n?|\n)",
                          re.M)


def _fast_docs(text: str) -> tuple[list, str] | None:
    """(the documents of ``text`` composed by libyaml, the text libyaml read), or None
    when the reference reader must read it."""
    Loader = _loader()
    if not Loader or _UNSURE_TEXT.search(text):
        return None
    try:
        if "!" in text:
            text = _tags_for_libyaml(text)
        loader = Loader(text)
        try:
            docs = []
            while loader.check_node():
                docs.append(loader.get_node())
            return docs, text
        finally:
            loader.dispose()
    except _Unsure:
        return None
    except Exception as exc:  # a YAMLError: the reference reader words the message
        import yaml

        if isinstance(exc, yaml.YAMLError):
            return None
        raise


class _FastConverter:
    """:class:`_Converter` for libyaml's nodes: the same checks in the same order,
    with tags as the fast loader marks them (untagged scalars resolved here)."""

    def __init__(self, rel: str, layer: str, tag_parser: TagParser | None, text: str):
        self.rel = rel
        self.layer = layer
        self.tag_parser = tag_parser
        self.text = text
        self.count = 0
        self.depth = 0
        self.active: set[int] = set()

    def refuse_tag(self, tag: str, kind: str, loc: Loc):
        if not tag.startswith(_STD):
            if self.tag_parser is None:
                raise InputError(f"YAML tag '{tag}' is not allowed here", where=str(loc),
                                 hint="overlay operations such as !replace belong in "
                                      "overlays/, not in base/")
            return self.tag_parser(tag, loc)
        raise InputError(
            f"YAML tag '!!{tag[len(_STD):]}' is not supported on a {kind}", where=str(loc),
            hint="remove the tag: parity reads plain strings, numbers, booleans, "
                 "null, mappings and lists" + ("; quote the value to make it a string"
                                               if kind == "scalar" else ""))

    def convert(self, node) -> Node:
        self.count += 1
        if self.count > MAX_NODES:
            raise InputError(
                f"the document expands to more than {MAX_NODES} nodes once YAML aliases are "
                "followed (an alias bomb?)", where=f"{self.rel}:{node.start_mark.line + 1}",
                hint="remove the nested anchors/aliases; write the values out")
        loc = Loc(self.rel, node.start_mark.line + 1, self.layer)
        tag = node.tag
        value = node.value
        if type(value) is str:
            return self.scalar(node, tag, value, loc)
        ident = id(node)
        if ident in self.active:
            raise InputError("a YAML alias refers to one of its own parents (recursive alias)",
                             where=str(loc), hint="remove the recursive anchor")
        self.depth += 1
        if self.depth > MAX_DEPTH:
            raise _too_deep(str(loc))
        self.active.add(ident)
        try:
            if node.id == "sequence":
                op = None if tag == _SEQ else self.refuse_tag(tag, "list", loc)
                return Seq(tuple([self.convert(n) for n in value]), (loc,), op)
            op = None if tag == _MAP else self.refuse_tag(tag, "mapping", loc)
            return self.mapping(value, (loc,), op, node.flow_style, node.start_mark.column)
        finally:
            self.active.discard(ident)
            self.depth -= 1

    def mapping(self, pairs, hist, op, flow: bool, indent: int) -> Map:
        entries: dict[str, Node] = {}
        keylocs: dict[str, Loc] = {}
        rel, layer = self.rel, self.layer
        for knode, vnode in pairs:
            kloc = Loc(rel, knode.start_mark.line + 1, layer)
            ktag = knode.tag
            key = knode.value
            if ktag == _PLAIN:
                if key == "<<":
                    raise InputError("YAML merge keys ('<<') are not supported",
                                     where=str(kloc), hint="write the keys out, or move "
                                                           "shared values into an overlay")
            elif ktag != _QUOTED:
                if ktag == _STD + "merge":
                    raise InputError("YAML merge keys ('<<') are not supported",
                                     where=str(kloc), hint="write the keys out, or move "
                                                           "shared values into an overlay")
                if type(key) is not str:
                    raise InputError("mapping keys must be plain strings", where=str(kloc))
                if ktag != _STR:
                    tag = "!!" + ktag[len(_STD):] if ktag.startswith(_STD) else ktag
                    raise InputError(
                        f"YAML tag '{tag}' on the mapping key '{key}': a tag on a key is "
                        "not read", where=str(kloc),
                        hint=f"put it on the value ('{key}: {tag} ...') or on the list item "
                             f"('- {tag} ...')" if tag.startswith("!") and not
                        tag.startswith("!!") else "remove the tag; keys are plain strings")
            if type(key) is not str:
                raise InputError("mapping keys must be plain strings", where=str(kloc))
            if key in entries:
                raise InputError(f"duplicate key '{key}' (first at line {keylocs[key].line})",
                                 where=str(kloc), hint="remove one of the two keys")
            keylocs[key] = kloc
            if vnode.value == "" and vnode.tag == _PLAIN and \
                    vnode.start_mark.index == vnode.end_mark.index:
                entries[key] = (self.flow_empty_value(knode, vnode) if flow
                                else self.empty_value(vnode, indent))
            else:
                entries[key] = self.convert(vnode)
        return Map(entries, keylocs, hist, op)

    def flow_empty_value(self, knode, node) -> Scalar:
        """The null of ``{key:}`` or ``[key:]``: libyaml marks it at the next token,
        the reference reader where the ':' is, when there is one."""
        self.count += 1
        if self.count > MAX_NODES:
            raise _Unsure  # the reference reader words it
        text, i, line = self.text, knode.end_mark.index, knode.end_mark.line + 1
        n = len(text)
        while i < n:
            c = text[i]
            if c == " ":
                i += 1
            elif c == "\n" or c == "\r":
                line += 1
                i += 2 if c == "\r" and text[i + 1:i + 2] == "\n" else 1
            elif c == "#":
                while i < n and text[i] not in "\r\n":
                    i += 1
            else:
                break
        if i >= n or text[i] != ":":
            line = node.start_mark.line + 1
        return Scalar(None, (Loc(self.rel, line, self.layer),))

    def empty_value(self, node, indent: int) -> Scalar:
        """The null of ``key:`` with nothing after it in a block mapping whose keys
        start at column ``indent``. libyaml marks it where the ':' ends; the reference
        reader where the next token is, unless a comment follows the ':' and the next
        token is another key of the same mapping (see ruamel's
        parse_block_mapping_value). Provenance keeps the reference's line."""
        self.count += 1
        if self.count > MAX_NODES:
            raise _Unsure  # the reference reader words it
        text, i, line = self.text, node.start_mark.index, node.start_mark.line + 1
        n = len(text)
        while i < n and text[i] == " ":
            i += 1
        comment = i < n and text[i] == "#"
        at_line = line
        bol = -1
        while i < n:
            c = text[i]
            if c == " ":
                i += 1
            elif c == "\n" or c == "\r":
                line += 1
                i += 2 if c == "\r" and text[i + 1:i + 2] == "\n" else 1
                bol = i
            elif c == "#":
                while i < n and text[i] not in "\r\n":
                    i += 1
            else:
                break
        if i >= n and text[-1:] not in ("\n", "\r"):
            raise _Unsure  # the end of a text without a final line break
        if comment:
            if bol < 0:
                raise _Unsure
            col = i - bol
            marker = col == 0 and text[i:i + 3] in ("---", "...") and \
                text[i + 3:i + 4] in ("", " ", "\n", "\r")
            if i < n and col == indent and not marker:
                line = at_line  # the next key: the comment stays on the ':'
            elif i < n and col > indent:
                raise _Unsure
        return Scalar(None, (Loc(self.rel, line, self.layer),))

    def scalar(self, node, tag: str, value: str, loc: Loc) -> Scalar:
        op = None
        if tag == _PLAIN:
            std = _resolve(value) if value else _STD + "null"
            if std == _STR:
                return Scalar(value, (loc,))
            if std not in _SCALAR_TAGS and std != _STD + "timestamp":
                raise InputError(
                    f"YAML tag '{std}' is not supported on a scalar", where=str(loc),
                    hint="remove the tag: parity reads plain strings, numbers, booleans, "
                         "null, mappings and lists; quote the value to make it a string")
        elif tag == _QUOTED:
            return Scalar(value, (loc,))
        elif tag.startswith(_STD):
            if tag not in _SCALAR_TAGS:
                self.refuse_tag(tag, "scalar", loc)
            std = tag
        else:
            op = self.refuse_tag(tag, "scalar", loc)
            if node.style in ("'", '"'):
                return Scalar(value, (loc,), op)
            std = _resolve(value)
        if std == _STR or std == _STD + "timestamp":
            return Scalar(value, (loc,), op)
        if std == _STD + "null":
            return Scalar(None, (loc,), op)
        if std == _STD + "int" or std == _STD + "float" or std == _STD + "bool":
            try:
                got = _construct(std, value)
            except (ValueError, KeyError, TypeError, AttributeError, IndexError) as exc:
                kind = std.removeprefix(_STD)
                if std == _STD + "int" and isinstance(exc, ValueError) and \
                        re.fullmatch(r"[-+]?[0-9_]+", value.strip()):
                    # Python refuses int() of more than 4300 digits
                    raise ValueRefused(_too_big(value), where=str(loc),
                                       hint="quote it if you mean the text") from None
                # an explicit !!bool maybe / !!float x / !!int 1.5: not that type
                raise InputError(f"'{value[:40]}' is not a YAML {kind}", where=str(loc),
                                 hint=f"write a {kind} after !!{kind}, or drop the tag "
                                      "(quote the value to make it a string)") from None
            if got.__class__ is float and not math.isfinite(got):
                raise ValueRefused(f"'{value}' is not a finite number", where=str(loc),
                                   hint="quote it if you mean the text; parity accepts no "
                                        "NaN or infinity")
            if got.__class__ is int and not INT_MIN <= got <= INT_MAX:
                raise ValueRefused(_too_big(value), where=str(loc),
                                   hint="quote it if you mean the text")
            return Scalar(got, (loc,), op, value)
        raise InputError(f"unsupported YAML type {std.removeprefix(_STD)!s} "
                         f"for value {value!r}", where=str(loc),
                         hint="quote the value to make it a string")


# --------------------------------------------------------------------------- output

_Dumper = None


def _dumper():
    global _Dumper
    if _Dumper is None:
        import yaml

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        scalar, mapping, sequence = yaml.ScalarNode, yaml.MappingNode, yaml.SequenceNode
        std = "tag:yaml.org,2002:"

        class Dumper(base):  # type: ignore[misc, valid-type]
            def represent_data(self, data):
                """SafeRepresenter.represent_data for the types renderers produce,
                without its per-node lookups: the same nodes (a dict or list met twice
                is still an alias), so libyaml writes the same bytes; anything else
                goes the usual way."""
                cls = data.__class__
                if cls is str:
                    return scalar(std + "str", data, style="|" if "\n" in data else None)
                if (cls is dict or cls is list) and self.default_flow_style is False \
                        and not self.sort_keys:
                    key = id(data)
                    node = self.represented_objects.get(key)
                    if node is not None:
                        return node
                    self.object_keeper.append(data)
                    value: list = []
                    rep = self.represent_data
                    if cls is dict:
                        node = mapping(std + "map", value, flow_style=self.default_flow_style)
                        self.represented_objects[key] = node
                        for k, v in data.items():
                            value.append((rep(k), rep(v)))
                    else:
                        node = sequence(std + "seq", value, flow_style=self.default_flow_style)
                        self.represented_objects[key] = node
                        for v in data:
                            value.append(rep(v))
                    return node
                if cls is int:
                    return scalar(std + "int", str(data))
                if cls is bool:
                    return scalar(std + "bool", "true" if data else "false")
                if data is None:
                    return scalar(std + "null", "null")
                return super().represent_data(data)

        def str_repr(dumper, data: str):
            style = "|" if "\n" in data else None
            return dumper.represent_scalar("tag:yaml.org,2002:str", data, style=style)

        Dumper.add_representer(str, str_repr)
        _Dumper = Dumper
    return _Dumper


_BLOCK_HEADER = re.compile(r"(^|: |- )[|>][0-9+-]*$")


def _indent_sequences(text: str) -> str:
    """libyaml writes block sequences flush with their parent key; yamllint's default
    (``indent-sequences: true``) wants them indented. Re-indent line by line: exact
    for libyaml's block output, where plain scalars never span lines; the bodies of
    literal blocks move with their header and are not looked into."""
    out: list[str] = []
    stack: list[tuple[int, int]] = []  # (column of a '- ' run, columns added to it)
    block_indent = -1
    block_extra = 0
    for line in text.split("\n"):
        stripped = line.lstrip(" ")
        indent = len(line) - len(stripped)
        if block_indent >= 0:
            if not stripped or indent > block_indent:
                out.append(" " * block_extra + line if stripped else line)
                continue
            block_indent = -1
        if not stripped:
            out.append(line)
            continue
        while stack and indent < stack[-1][0]:
            stack.pop()
        if stripped.startswith("- ") or stripped == "-":
            if not stack or stack[-1][0] != indent:
                stack.append((indent, (stack[-1][1] if stack else 0) + 2))
            extra = stack[-1][1]
        else:
            if stack and indent == stack[-1][0]:
                stack.pop()
            extra = stack[-1][1] if stack else 0
        out.append(" " * (indent + extra) + stripped)
        if _BLOCK_HEADER.search(stripped):
            block_indent, block_extra = indent, extra
    return "\n".join(out)


def dump(data: Any) -> str:
    return dump_all([data])


_writer = None


def _libyaml_one(data: Any) -> str:
    """One small mapping as libyaml writes it: the writer asks for the scalars it does
    not decide itself."""
    import yaml

    return yaml.dump(data, Dumper=_dumper(), default_flow_style=False, sort_keys=False,
                     width=4096, allow_unicode=True)


def dump_all(docs: list[Any]) -> str:
    """Multi-document YAML, each document starting with ``---``; stable for equal input.

    The plain-data writer (:mod:`parity.fastemit`) writes the same bytes as the libyaml
    path below, faster; where it is not sure, it declines and libyaml writes."""
    global _writer
    if _writer is None:
        _writer = fastemit.Writer(_libyaml_one)
    text = fastemit.dump_all_fast(_writer, docs)
    if text is not None:
        return text
    import yaml

    raw = yaml.dump_all(docs, Dumper=_dumper(), default_flow_style=False, sort_keys=False,
                        explicit_start=True, width=4096, allow_unicode=True)
    return _indent_sequences(raw)


def write_atomic(path: Path, text: str, mode: int = 0o644) -> bool:
    """Write ``text`` to ``path`` atomically (temp file + rename). Returns False, and
    writes nothing, when the file already holds exactly that text. An OSError
    becomes :class:`parity.fsio.WriteFailed` (exit 3)."""
    from .fsio import write_atomic as _write

    return _write(path, text, mode)


def load_docs(text: str) -> list[dict]:
    """The non-empty documents of rendered YAML (parity's own output), as plain data,
    with libyaml: no provenance, no overlay tags."""
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    return [d for d in yaml.load_all(text, Loader=loader) if d]
