"""The tree every layer is loaded into: mappings, sequences and scalars that know
where they came from.

Each node carries ``hist``, the chain of locations (``file:line`` + layer) that set
it, oldest first. Overlay operations build new nodes and never change existing
ones, so a tree loaded once can be shared by every render that uses it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any


class Loc:
    """Where a node was set: a repo-relative file, a 1-based line, and the layer."""

    __slots__ = ("file", "line", "layer")

    def __init__(self, file: str, line: int, layer: str):
        self.file = file
        self.line = line
        self.layer = layer

    def __str__(self) -> str:
        return f"{self.file}:{self.line}" if self.line else self.file

    def __repr__(self) -> str:
        return f"Loc({self.file!r}, {self.line}, {self.layer!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Loc) and (self.file, self.line, self.layer) == (
            other.file, other.line, other.layer)

    def __hash__(self) -> int:
        return hash((self.file, self.line, self.layer))


class Node:
    """Common part: the provenance chain and, in overlay files, the operation."""

    __slots__ = ("hist", "op")

    def __init__(self, hist: tuple[Loc, ...], op: Any = None):
        self.hist = hist
        self.op = op

    @property
    def loc(self) -> Loc:
        return self.hist[-1]

    @property
    def kind(self) -> str:
        raise NotImplementedError


class Map(Node):
    """A mapping with string keys; ``keylocs`` remembers where each key was written."""

    __slots__ = ("entries", "keylocs")

    def __init__(self, entries: dict[str, Node], keylocs: dict[str, Loc],
                 hist: tuple[Loc, ...], op: Any = None):
        super().__init__(hist, op)
        self.entries = entries
        self.keylocs = keylocs

    kind = "mapping"  # type: ignore[assignment]

    def get(self, key: str) -> Node | None:
        return self.entries.get(key)


class Seq(Node):
    __slots__ = ("items",)

    def __init__(self, items: tuple[Node, ...], hist: tuple[Loc, ...], op: Any = None):
        super().__init__(hist, op)
        self.items = items

    kind = "list"  # type: ignore[assignment]


class Scalar(Node):
    """A leaf. ``text`` is the source text of a number or boolean as written
    (``0755``, ``1.10``, ``True``), so a field that wants a string can take it
    verbatim instead of a re-stringified number; None for everything else."""

    __slots__ = ("value", "text")

    def __init__(self, value: Any, hist: tuple[Loc, ...], op: Any = None,
                 text: str | None = None):
        super().__init__(hist, op)
        self.value = value
        self.text = text

    kind = "scalar"  # type: ignore[assignment]


def to_plain(node: Node) -> Any:
    """The data of a tree, without provenance: dicts, lists and scalars."""
    if isinstance(node, Map):
        return {k: to_plain(v) for k, v in node.entries.items()}
    if isinstance(node, Seq):
        return [to_plain(v) for v in node.items]
    return node.value  # type: ignore[attr-defined]


def kind_of(node: Node) -> str:
    if isinstance(node, Map):
        return "mapping"
    if isinstance(node, Seq):
        return "list"
    return "scalar"


def format_path(parts: tuple[Any, ...] | list[Any]) -> str:
    """``('services', 'api', 'ports', 'http')`` -> ``services.api.ports[http]``.

    List elements appear in brackets by their key (or index)."""
    out = ""
    for p in parts:
        if isinstance(p, ListKey):
            out += f"[{p}]"
        elif isinstance(p, int):
            out += f"[{p}]"
        elif not str(p).strip(".") or any(c in str(p) for c in '[]"') or \
                not str(p).isprintable():
            # a mapping key a dotted path would make unreadable ('..', '', 'a[b]')

            out += f"[{json.dumps(str(p))}]"
        else:
            out += ("." if out else "") + str(p)
    return out


class ListKey(str):
    """A path element naming a list item by its match key (shown as ``[name]``)."""

    __slots__ = ()


def walk_leaves(node: Node, path: tuple = ()) -> Iterator[tuple[tuple, Node]]:
    """Every scalar leaf (and empty container) with its path; list items of
    mappings are addressed by their ``name`` when they have one."""
    if isinstance(node, Map):
        if not node.entries:
            yield path, node
        for k, v in node.entries.items():
            yield from walk_leaves(v, path + (k,))
    elif isinstance(node, Seq):
        if not node.items:
            yield path, node
        for i, v in enumerate(node.items):
            key: Any = i
            if isinstance(v, Map):
                name = v.entries.get("name")
                if isinstance(name, Scalar):
                    key = ListKey(str(name.value))
            yield from walk_leaves(v, path + (key,))
    else:
        yield path, node
