"""The reference reader: ruamel.yaml (pure Python, YAML 1.2) composes the node graph
and :class:`Converter` turns it into :mod:`parity.nodes` trees, refusing duplicate
keys, merge keys, alias bombs and unsupported tags with ``file:line``. Every file the
fast reader (fast.py) is not sure about, and every file with an error, is read here,
so every result and message is this reader's."""

from __future__ import annotations

import math
import re
from typing import Any

from ..errors import InputError
from ..nodes import Loc, Map, Node, Scalar, Seq
from .inputs import (CONSTRUCT_ERRORS, INT_MAX, INT_MIN, MAX_DEPTH, MAX_NODES, SCALAR_TAGS, STD,
                     TagParser, ValueRefused, not_of_type, too_big, too_deep)

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
        # lazy: ruamel costs ~40 ms; only the reference reader needs it
        from ruamel.yaml import YAML

        yaml = YAML(typ="rt")
        yaml.Scanner = _tag_scanner(yaml.Scanner)
        yaml.max_depth = MAX_DEPTH
        safe = YAML(typ="safe", pure=True)
        _scalar_constructor = safe.constructor
        _yaml = yaml
    return _yaml, _scalar_constructor


def root_map(docs: list, rel: str, layer: str, conv) -> Map:
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


def parse_reference(text: str, rel: str, layer: str, tag_parser: TagParser | None) -> Map:
    """The reference reader: ruamel.yaml (pure Python, YAML 1.2)."""
    yaml, _ = _ruamel()
    # lazy: ruamel costs ~40 ms; only the reference reader needs it
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
        raise too_deep(f"{rel}:{mark.line + 1 if mark else 0}") from None
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark else 0
        problem = exc.problem or exc.context or "malformed YAML"
        raise InputError(f"malformed YAML: {problem}", where=f"{rel}:{line}",
                         hint="fix the YAML syntax at that line (yamllint shows more)") from None
    except YAMLError as exc:  # pragma: no cover - ruamel raises marked errors in practice
        raise InputError(f"malformed YAML: {exc}", where=rel) from None
    return root_map(docs, rel, layer, Converter(rel, layer, tag_parser))


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


class Converter:
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
        if tag.startswith(STD):
            allowed = {"scalar": SCALAR_TAGS, "mapping": {STD + "map"},
                       "list": {STD + "seq"}}[kind]
            # a date is resolved as a timestamp and read as the text written
            implicit_ok = not _explicit(node) and tag == STD + "timestamp"
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
        from ruamel.yaml.nodes import MappingNode, ScalarNode, SequenceNode  # lazy: as above

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
            raise too_deep(str(loc))
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
            if ktag == STD + "merge":
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
            raise ValueRefused(too_big(node.value), where=str(loc),
                             hint="quote it if you mean the text")
        return value, node.value

    def _value(self, node, std_tag) -> Any:
        _, constructor = _ruamel()
        if std_tag is None:
            # a custom (overlay) tag: resolve the plain scalar as if it were untagged
            if node.style in ("'", '"'):
                return node.value
            from ruamel.yaml.nodes import ScalarNode  # lazy: as above

            yaml, _ = _ruamel()
            implicit = yaml.resolver.resolve(ScalarNode, node.value, (True, False))
            node = ScalarNode(implicit, node.value, node.start_mark, node.end_mark, node.style)
            std_tag = str(getattr(implicit, "value", implicit))
        if std_tag == STD + "timestamp":
            # YAML 1.2's core schema has no timestamps: a date stays the text written
            # (the parity policy's `until: 2027-01-31` is read as a date where needed)
            return node.value
        if std_tag == STD + "str":
            # ruamel marks the fold points of a folded (>) scalar with \a
            return node.value.replace("\a", "") if node.style == ">" else node.value
        if std_tag == STD + "null":
            return None
        if std_tag in (STD + "int", STD + "float", STD + "bool"):
            try:
                return constructor.construct_object(node, deep=True)
            except CONSTRUCT_ERRORS as exc:
                raise not_of_type(std_tag, node.value, exc, str(self.loc(node))) from None
        raise InputError(f"unsupported YAML type {std_tag.removeprefix(STD)!s} "
                         f"for value {node.value!r}", where=str(self.loc(node)),
                         hint="quote the value to make it a string")
