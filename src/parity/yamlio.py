"""Reading hand-written YAML with line numbers, and writing output YAML fast.

Input: ruamel.yaml composes the node graph (it keeps marks for every node) and this
module turns it into :mod:`parity.nodes` trees. Doing the conversion here, rather
than through ruamel's constructors, is what lets parity refuse duplicate keys,
count alias expansion (alias bombs), read overlay tags, and keep ``file:line`` on
every key and value.

Output: renderers produce plain dicts/lists; :func:`dump_all` emits them with
PyYAML's libyaml dumper (10-15x faster than ruamel round-trip, see
docs/performance.md), block style, indented sequences, no folding, so the result
is byte-stable and yamllint-clean. Files are written atomically.
"""

from __future__ import annotations

import os
import re
import tempfile
from pathlib import Path
from typing import Any, Callable

from .errors import InputError
from .nodes import Loc, Map, Node, Scalar, Seq

#: Hand-written inputs larger than this are refused (they are not hand-written).
MAX_INPUT_BYTES = 2 * 1024 * 1024
#: A document may expand to at most this many nodes once aliases are followed.
MAX_NODES = 200_000

_STD = "tag:yaml.org,2002:"

_yaml = None
_scalar_constructor = None


def _ruamel():
    global _yaml, _scalar_constructor
    if _yaml is None:
        from ruamel.yaml import YAML

        _yaml = YAML(typ="rt")
        safe = YAML(typ="safe", pure=True)
        _scalar_constructor = safe.constructor
    return _yaml, _scalar_constructor


TagParser = Callable[[str, Loc], Any]


def load_file(path: Path, rel: str, layer: str, *, tag_parser: TagParser | None = None,
              text: str | None = None) -> Map:
    """Load one single-document YAML file into a :class:`Map` (empty file -> empty map).

    ``tag_parser`` turns a local tag such as ``!replace`` into an overlay operation;
    when it is ``None`` (base files) any tag is an error."""
    if text is None:
        try:
            size = path.stat().st_size
        except OSError as exc:
            raise InputError(f"cannot read file: {exc.strerror}", where=rel) from None
        if size > MAX_INPUT_BYTES:
            raise InputError(
                f"file is {size} bytes, more than the {MAX_INPUT_BYTES} bytes parity reads "
                "from a hand-written input", where=rel,
                hint="split it into smaller files; inputs this large are not hand-written")
        try:
            text = path.read_text(encoding="utf-8")
        except UnicodeDecodeError as exc:
            raise InputError(f"not UTF-8 text ({exc.reason})", where=rel) from None
    elif len(text.encode()) > MAX_INPUT_BYTES:
        raise InputError(f"input is more than {MAX_INPUT_BYTES} bytes", where=rel)
    return parse_text(text, rel, layer, tag_parser=tag_parser)


def parse_text(text: str, rel: str, layer: str, *, tag_parser: TagParser | None = None) -> Map:
    yaml, _ = _ruamel()
    from ruamel.yaml.error import MarkedYAMLError, YAMLError

    try:
        docs = list(yaml.compose_all(text))
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or exc.context or "malformed YAML"
        raise InputError(f"malformed YAML: {problem}", where=f"{rel}:{line}",
                         hint="fix the YAML syntax at that line (yamllint shows more)") from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors in practice
        raise InputError(f"malformed YAML: {exc}", where=rel) from None
    docs = [d for d in docs if d is not None]
    if not docs:
        return Map({}, {}, (Loc(rel, 1, layer),))
    if len(docs) > 1:
        line = docs[1].start_mark.line + 1
        raise InputError("more than one YAML document in a file parity reads",
                         where=f"{rel}:{line}", hint="put each document in its own file")
    conv = _Converter(rel, layer, tag_parser)
    root = conv.convert(docs[0])
    if not isinstance(root, Map):
        raise InputError(f"the top level must be a mapping, not a {root.kind}",
                         where=f"{rel}:{root.loc.line}")
    return root


class _Converter:
    def __init__(self, rel: str, layer: str, tag_parser: TagParser | None):
        self.rel = rel
        self.layer = layer
        self.tag_parser = tag_parser
        self.count = 0
        self.active: set[int] = set()

    def loc(self, node) -> Loc:
        return Loc(self.rel, node.start_mark.line + 1, self.layer)

    def op_of(self, node, loc: Loc):
        tag = node.tag
        tag = getattr(tag, "value", tag)
        if tag is None or str(tag).startswith(_STD):
            return None, tag
        tag = str(tag)
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
        op, std_tag = self.op_of(node, loc)
        hist = (loc,)
        if isinstance(node, ScalarNode):
            return Scalar(self.scalar(node, std_tag), hist, op)
        ident = id(node)
        if ident in self.active:
            raise InputError("a YAML alias refers to one of its own parents (recursive alias)",
                             where=str(loc), hint="remove the recursive anchor")
        self.active.add(ident)
        try:
            if isinstance(node, SequenceNode):
                return Seq(tuple(self.convert(n) for n in node.value), hist, op)
            if isinstance(node, MappingNode):
                return self.mapping(node, hist, op)
        finally:
            self.active.discard(ident)
        raise InputError(f"unsupported YAML node {type(node).__name__}", where=str(loc))

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
            if key in entries:
                raise InputError(f"duplicate key '{key}' (first at line {keylocs[key].line})",
                                 where=str(kloc), hint="remove one of the two keys")
            keylocs[key] = kloc
            entries[key] = self.convert(vnode)
        return Map(entries, keylocs, hist, op)

    def scalar(self, node, std_tag) -> Any:
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
            return constructor.construct_object(node, deep=True)
        raise InputError(f"unsupported YAML type {std_tag.removeprefix(_STD)!s} "
                         f"for value {node.value!r}", where=str(self.loc(node)),
                         hint="quote the value to make it a string")


# --------------------------------------------------------------------------- output

_Dumper = None


def _dumper():
    global _Dumper
    if _Dumper is None:
        import yaml

        base = getattr(yaml, "CSafeDumper", yaml.SafeDumper)

        class Dumper(base):  # type: ignore[misc, valid-type]
            pass

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


def dump_all(docs: list[Any]) -> str:
    """Multi-document YAML, each document starting with ``---``; stable for equal input."""
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
