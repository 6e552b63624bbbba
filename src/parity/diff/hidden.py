"""Differences the shared local overlays (``overlays/local/*.yaml``) hide: the two
selections compared again without them; what differs only without them, or in
another class, is reported as a warning naming the local file that hides it."""

from __future__ import annotations

from dataclasses import dataclass
from dataclasses import replace as dc_replace
from pathlib import Path
from typing import Any

from .. import model
from ..model import load_layer
from ..model import enabled_tree, locate
from ..nodes import Map
from .difference import Difference, Source, show
from .model_level import diff_resolved
from .policy import Rule


@dataclass(frozen=True)
class Hidden:
    """A difference between two modes that the shared local overlays hide (or
    reclassify): it exists without ``overlays/local/*.yaml``, not (or not so) with it."""

    path: str
    from_value: Any
    to_value: Any
    cls: str                    # the class without the shared local layers
    cls_with_local: str | None  # the class with them; None: no difference at all
    local: Source | None        # the shared local entry that sets the path, if direct
    local_files: tuple[str, ...]
    introduced_by: tuple[Source, ...]
    labels: tuple[str, str]

    def message(self) -> str:
        if self.local is not None:
            who = f"{_where(self.local)} sets {self.path} for both modes"
        else:
            who = (f"{', '.join(self.local_files)} change(s) {self.path} for both modes "
                   "through another value")
        intro = " and ".join(_where(s) for s in self.introduced_by)
        text = (f"WARNING: {who} and hides a difference {intro} introduced "
                f"({self.labels[0]} {show(self.from_value)}, "
                f"{self.labels[1]} {show(self.to_value)})")
        if self.cls_with_local is not None:
            text += f": {self.cls} without the shared local layers, {self.cls_with_local} with them"
        return text

    def as_json(self) -> dict:
        return {"path": self.path, "from": self.from_value, "to": self.to_value,
                "class": self.cls, "class_with_local": self.cls_with_local,
                "local_source": self.local.as_json() if self.local else None,
                "introduced_by": [s.as_json() for s in self.introduced_by],
                "message": self.message()}


def _where(src: Source) -> str:
    if src.file is None:
        return "a schema default"
    return f"{src.file}:{src.line}" if src.line else src.file


def _introducers(d: Difference) -> tuple[Source, ...]:
    """The side(s) whose value makes the difference: the mode-specific layers
    (mode:X, local:X) when they are the source, else every side that has one."""
    sides = [s for s in (d.from_source, d.to_source) if s is not None]
    if len(sides) == 2 and sides[0] == sides[1]:
        return (sides[0],)
    present = [s for s in sides if not s.absent] or sides
    specific = [s for s in present if s.layer.startswith(("mode:", "local:"))]
    return tuple(specific or present)


def _local_entry(local_layers: list, trees: tuple[Map, ...], parts: tuple) -> Source | None:
    """Where a shared local overlay sets (or removes) the value at ``parts``: the
    newest local file that names the path, or replaces or removes a parent of it;
    else the newest local entry in the merged node's history. None when the value
    changed only through another one (e.g. a reference's resolution)."""
    for layer in reversed(local_layers):
        overlay = load_layer(layer)
        for depth in range(len(parts), 0, -1):
            node, _ = locate(overlay, parts[:depth])
            if node is None:
                continue
            if depth == len(parts) or (node.op is not None
                                       and node.op.name in ("replace", "remove")):
                return Source.of(node.loc)
            break
    for tree in trees:
        node, _ = locate(tree, parts)
        if node is not None:
            loc = next((x for x in reversed(node.hist) if x.layer == "local"), None)
            if loc is not None:
                return Source.of(loc)
    return None


def hidden_by_local(root: Path, a, b, diffs: list[Difference], rules: list[Rule],
                    labels: tuple[str, str]) -> list[Hidden]:
    """Compare two loaded selections again without the shared local overlays
    (``overlays/local/*.yaml``); every path that differs without them but not with
    them, or differs in another class, is a difference they hide. Loads nothing when
    no shared local overlay applies."""
    local_layers = [layer for layer in a.layers if layer.name == "local"]
    local_files = tuple(layer.rel for layer in local_layers)
    if not local_files:
        return []
    bare = diff_resolved(model.load(root, dc_replace(a.selection, shared_local=False)),
                         model.load(root, dc_replace(b.selection, shared_local=False)), rules)
    now = {d.path: d for d in diffs}
    trees = (enabled_tree(a), enabled_tree(b))
    out: list[Hidden] = []
    for d in bare:
        hit = now.get(d.path)
        if hit is not None and hit.cls == d.cls:
            continue
        local = _local_entry(local_layers, trees, d.parts)
        out.append(Hidden(d.path, d.from_value, d.to_value, d.cls,
                          hit.cls if hit is not None else None, local, local_files,
                          _introducers(d), labels))
    return out
