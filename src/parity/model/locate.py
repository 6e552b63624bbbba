"""Provenance in the merged tree: where a model path was set.

:func:`locate` walks a path (keys, list indexes or ``[name]`` items) to its node and
the best ``file:line`` to report; :func:`parse_path` reads the dotted paths users
write (``services.api.ports[http].port``); :data:`DEFAULT_LOC` marks a value the
defaults filled in.
"""

from __future__ import annotations

import json
import re

from ..nodes import ListKey, Loc, Map, Node, Scalar, Seq

DEFAULT_LOC = Loc("(default)", 0, "default")


def locate(tree: Map, path: tuple) -> tuple[Node | None, Loc]:
    """The node at ``path`` (keys, list indexes or ListKey names) and the best
    location to report: the node's own, or its nearest existing parent's key."""
    node: Node | None = tree
    loc = tree.loc
    for part in path:
        if isinstance(node, Map) and isinstance(part, str) and not isinstance(part, ListKey):
            if part not in node.entries:
                return None, loc
            loc = node.keylocs.get(part, loc)
            node = node.entries[part]
        elif isinstance(node, Seq):
            if isinstance(part, int) and 0 <= part < len(node.items):
                node = node.items[part]
            else:
                match = [i for i in node.items if isinstance(i, Map) and isinstance(
                    i.entries.get("name"), Scalar) and str(i.entries["name"].value) == part]
                if not match and isinstance(part, ListKey):
                    # a list of scalars (depends_on) names its items by their value
                    match = [i for i in node.items
                             if isinstance(i, Scalar) and str(i.value) == part]
                if not match:
                    return None, loc
                node = match[0]
            loc = node.loc
        else:
            return None, loc
    if node is not None and isinstance(node, Scalar):
        loc = node.loc
    return node, loc


def parse_path(text: str) -> tuple:
    """``services.api.ports[http].port`` -> ('services', 'api', 'ports', ListKey('http'),
    'port')."""
    out: list = []
    for m in re.finditer(r'([^.\[\]]+)|\[("(?:[^"\\]|\\.)*")\]|\[([^\]]+)\]', text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:  # ["a.b"]: a mapping key with a dot (format_path)
            out.append(json.loads(m.group(2)))
        else:
            g = m.group(3)
            out.append(int(g) if g.isdigit() else ListKey(g))
    return tuple(out)
