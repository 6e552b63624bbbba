"""Reading the layers and merging them, in :func:`~parity.model.layers.plan_layers`
order, into one tree with provenance: base files as a union (a leaf written twice
is an error), every other layer applied as an overlay; ``--set`` and ``PARITY_*``
items become one-leaf overlay trees.
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from ..errors import InputError
from ..nodes import Loc, Map, Node, Scalar, Seq, format_path
from ..yamlio import ValueRefused, decode, load_file, parse_text, read_input
from . import schema
from .layers import Layer, Selection, describe, plan_layers
from .overlay import Context, Policy, apply, parse_tag

POLICY = Policy(strict=schema.is_collection, list_key=schema.list_key,
                item_defaults=schema.item_defaults)


_cache: dict[tuple[str, str, str], Map] = {}


def load_layer(layer: Layer) -> Map:
    """Parse a file layer; parsed trees are cached by content hash (they are
    immutable, so every render in the process can share them)."""
    assert layer.file is not None
    data = read_input(layer.file, layer.rel)
    key = (layer.rel, layer.name, hashlib.sha256(data).hexdigest())
    hit = _cache.get(key)
    if hit is None:
        parser = None if layer.is_base else parse_tag
        text = decode(data, layer.rel)
        hit = load_file(layer.file, layer.rel, layer.name, tag_parser=parser, text=text)
        _cache[key] = hit
    return hit


_PATH_PART = re.compile(r"([^.\[\]]+)|\[([^\]]+)\]")


def assignment_tree(item: str, layer: Layer) -> Map:
    """``services.api.ports[http].port=8081`` -> an overlay tree setting that leaf."""
    loc = Loc(layer.rel, 0, layer.name)
    path_text, sep, raw = item.partition("=")
    if not sep or not path_text.strip():
        raise InputError(f"'{item}' is not PATH=VALUE", where=layer.rel,
                         hint="for example --set services.api.replicas=2")
    parts: list[tuple[str, bool]] = []
    pos = 0
    text = path_text.strip()
    while pos < len(text):
        if text[pos] == ".":
            pos += 1
            continue
        m = _PATH_PART.match(text, pos)
        if not m:
            raise InputError(f"cannot read the path '{text}'", where=layer.rel,
                             hint="write keys with dots and list items as [name]")
        parts.append((m.group(1), False) if m.group(1) else (m.group(2), True))
        pos = m.end()
    value, text = _scalar(raw, layer)
    node: Node = Scalar(value, (loc,), None, text)
    for name, is_item in reversed(parts):
        if is_item:
            node = Seq((Map({"name": Scalar(name, (loc,)), **(
                node.entries if isinstance(node, Map) else {})},
                {"name": loc, **(node.keylocs if isinstance(node, Map) else {})}, (loc,)),),
                (loc,))
        else:
            node = Map({name: node}, {name: loc}, (loc,))
    if not isinstance(node, Map):
        raise InputError(f"'{item}' does not start with a key", where=layer.rel)
    return node


def _scalar(raw: str, layer: Layer) -> tuple[object, str | None]:
    """(value, text as written) of a --set or PARITY_* value: a YAML scalar, else the
    text itself; a number parity refuses (NaN, beyond 64 bits) is an error."""
    if any(c in raw for c in "\n\r\x85\u2028\u2029"):
        return raw, None  # one line, or it would be read as more keys
    try:
        tree = parse_text(f"v: {raw}", "--set", "set")
    except ValueRefused as exc:
        raise InputError(exc.message, where=layer.rel, hint=exc.hint) from None
    except InputError:
        return raw, None
    v = tree.entries.get("v")
    if isinstance(v, Scalar) and len(tree.entries) == 1:
        return v.value, v.text
    return raw, None


def union(a: Map, b: Map, path: tuple = ()) -> Map:
    """Base files together form one tree; the same leaf written twice is an error."""
    entries = dict(a.entries)
    keylocs = dict(a.keylocs)
    for k, v in b.entries.items():
        if k in entries:
            mine = entries[k]
            if isinstance(mine, Map) and isinstance(v, Map):
                entries[k] = union(mine, v, path + (k,))
                continue
            raise InputError(f"defined twice in base/: first at {a.keylocs[k]}",
                             where=str(b.keylocs[k]), path=format_path(path + (k,)),
                             hint="keep one definition; change values in overlays/")
        entries[k] = v
        keylocs[k] = b.keylocs[k]
    return Map(entries, keylocs, a.hist)


def merged_tree(root: Path, sel: Selection) -> tuple[Map, list[Layer]]:
    """Load every layer in :func:`plan_layers` order and apply them."""
    layers = plan_layers(root, sel)
    order = describe(layers)
    tree: Map | None = None
    ctx = Context(POLICY, order)
    for layer in layers:
        if layer.is_base:
            node = load_layer(layer)
            tree = node if tree is None else union(tree, node)
            continue
        assert tree is not None
        if layer.file is not None:
            if not layer.file.exists():
                raise InputError("the layer file is missing", where=layer.rel,
                                 hint="create it (it may be empty)")
            overlay = load_layer(layer)
        else:
            overlay = assignment_tree(layer.text or "", layer)
        tree = apply(tree, overlay, ctx)
    assert tree is not None
    return tree, layers
