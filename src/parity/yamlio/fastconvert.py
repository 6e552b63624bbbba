"""The fast reader's back half: libyaml's nodes into :mod:`parity.nodes` trees, with
the reference reader's checks in the same order (reference.py ``Converter``) and
untagged scalars resolved by scalars.py."""

from __future__ import annotations

import math

from ..errors import InputError
from ..nodes import Loc, Map, Node, Scalar, Seq
from .fast import MAP, PLAIN, QUOTED, SEQ, Unsure
from .inputs import (CONSTRUCT_ERRORS, INT_MAX, INT_MIN, MAX_DEPTH, MAX_NODES, SCALAR_TAGS, STD,
                     TagParser, ValueRefused, not_of_type, too_big, too_deep)
from .scalars import STR, construct, resolve


class FastConverter:
    """:class:`Converter` for libyaml's nodes: the same checks in the same order,
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
        if not tag.startswith(STD):
            if self.tag_parser is None:
                raise InputError(f"YAML tag '{tag}' is not allowed here", where=str(loc),
                                 hint="overlay operations such as !replace belong in "
                                      "overlays/, not in base/")
            return self.tag_parser(tag, loc)
        raise InputError(
            f"YAML tag '!!{tag[len(STD):]}' is not supported on a {kind}", where=str(loc),
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
            raise too_deep(str(loc))
        self.active.add(ident)
        try:
            if node.id == "sequence":
                op = None if tag == SEQ else self.refuse_tag(tag, "list", loc)
                return Seq(tuple([self.convert(n) for n in value]), (loc,), op)
            op = None if tag == MAP else self.refuse_tag(tag, "mapping", loc)
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
            if ktag == PLAIN:
                if key == "<<":
                    raise InputError("YAML merge keys ('<<') are not supported",
                                     where=str(kloc), hint="write the keys out, or move "
                                                           "shared values into an overlay")
            elif ktag != QUOTED:
                if ktag == STD + "merge":
                    raise InputError("YAML merge keys ('<<') are not supported",
                                     where=str(kloc), hint="write the keys out, or move "
                                                           "shared values into an overlay")
                if type(key) is not str:
                    raise InputError("mapping keys must be plain strings", where=str(kloc))
                if ktag != STR:
                    tag = "!!" + ktag[len(STD):] if ktag.startswith(STD) else ktag
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
            if vnode.value == "" and vnode.tag == PLAIN and \
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
            raise Unsure  # the reference reader words it
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
            raise Unsure  # the reference reader words it
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
            raise Unsure  # the end of a text without a final line break
        if comment:
            if bol < 0:
                raise Unsure
            col = i - bol
            marker = col == 0 and text[i:i + 3] in ("---", "...") and \
                text[i + 3:i + 4] in ("", " ", "\n", "\r")
            if i < n and col == indent and not marker:
                line = at_line  # the next key: the comment stays on the ':'
            elif i < n and col > indent:
                raise Unsure
        return Scalar(None, (Loc(self.rel, line, self.layer),))

    def scalar(self, node, tag: str, value: str, loc: Loc) -> Scalar:
        op = None
        if tag == PLAIN:
            std = resolve(value) if value else STD + "null"
            if std == STR:
                return Scalar(value, (loc,))
            if std not in SCALAR_TAGS and std != STD + "timestamp":
                raise InputError(
                    f"YAML tag '{std}' is not supported on a scalar", where=str(loc),
                    hint="remove the tag: parity reads plain strings, numbers, booleans, "
                         "null, mappings and lists; quote the value to make it a string")
        elif tag == QUOTED:
            return Scalar(value, (loc,))
        elif tag.startswith(STD):
            if tag not in SCALAR_TAGS:
                self.refuse_tag(tag, "scalar", loc)
            std = tag
        else:
            op = self.refuse_tag(tag, "scalar", loc)
            if node.style in ("'", '"'):
                return Scalar(value, (loc,), op)
            std = resolve(value)
        if std == STR or std == STD + "timestamp":
            return Scalar(value, (loc,), op)
        if std == STD + "null":
            return Scalar(None, (loc,), op)
        if std == STD + "int" or std == STD + "float" or std == STD + "bool":
            try:
                got = construct(std, value)
            except CONSTRUCT_ERRORS as exc:
                raise not_of_type(std, value, exc, str(loc)) from None
            if got.__class__ is float and not math.isfinite(got):
                raise ValueRefused(f"'{value}' is not a finite number", where=str(loc),
                                   hint="quote it if you mean the text; parity accepts no "
                                        "NaN or infinity")
            if got.__class__ is int and not INT_MIN <= got <= INT_MAX:
                raise ValueRefused(too_big(value), where=str(loc),
                                   hint="quote it if you mean the text")
            return Scalar(got, (loc,), op, value)
        raise InputError(f"unsupported YAML type {std.removeprefix(STD)!s} "
                         f"for value {value!r}", where=str(loc),
                         hint="quote the value to make it a string")
