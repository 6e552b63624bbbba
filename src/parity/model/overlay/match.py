"""Finding the target of an overlay node: map keys, list items by key or value.

Kept apart from the operations (as in ytt) so the strictness rules live in one
place: a match must hit the number of nodes the overlay expects (exactly one unless
told otherwise), and an error says how many it found and which keys do exist.
"""

from __future__ import annotations

from ...errors import InputError, did_you_mean, existing
from ...nodes import ListKey, Map, Node, Scalar, Seq, format_path
from .ops import Op


def item_key(item: Node, by: str, defaults: dict | None = None) -> object:
    """The value a list item is matched on: ``item[by]`` for mappings (or the
    schema default of that field, which is filled in later), the value itself for
    scalars; ``None`` when it has none."""
    if isinstance(item, Map):
        k = item.entries.get(by)
        if k is None and defaults:
            return defaults.get(by)
        return k.value if isinstance(k, Scalar) else None
    if isinstance(item, Scalar):
        return item.value
    return None


def match_items(target: Seq, ov_item: Node, op: Op, by: str, path: tuple,
                layers: str, defaults: dict | None = None) -> list[int]:
    """Indexes of the target items ``ov_item`` matches, checked against ``op``."""
    if isinstance(ov_item, Map):
        want = item_key(ov_item, by)
        if want is None:
            raise InputError(
                f"this list item has no '{by}' key to match by",
                where=str(ov_item.loc), path=format_path(path), layers=layers,
                hint=f"add '{by}: ...' to the item, tag it !append, or match by another "
                     f"field with !merge(by=FIELD)")
    elif isinstance(ov_item, Scalar):
        want = ov_item.value
    else:
        raise InputError("a list of lists cannot be matched item by item",
                         where=str(ov_item.loc), path=format_path(path), layers=layers,
                         hint="use !replace on the list")
    hits = [i for i, t in enumerate(target.items)
            if _same(item_key(t, by, defaults), want)]
    check_count(len(hits), op, ov_item, path + (ListKey(f"{by}={want}") if isinstance(
        ov_item, Map) else ListKey(str(want)),), layers,
        [item_key(t, by, defaults) for t in target.items], what=f"list items matching by {by}"
        if isinstance(ov_item, Map) else "list items matching by value")
    return hits


def _same(a: object, b: object) -> bool:
    """Match keys are equal: same value and same kind (``1`` is not ``true``)."""
    return a == b and isinstance(a, bool) == isinstance(b, bool)


def check_count(found: int, op: Op, ov: Node, path: tuple, layers: str,
                candidates: list, what: str) -> None:
    lo, hi = op.expected()
    if found >= lo and (hi is None or found <= hi):
        return
    names = [str(c) for c in candidates if c is not None]
    want = path[-1]
    want_text = str(want).split("=", 1)[-1] if isinstance(want, ListKey) else str(want)
    hint = "fix the name"
    if found == 0:
        hint = (f"fix the name{did_you_mean(want_text, names)}, or tag the node "
                f"!{op.name}(missing_ok) if it may be absent")
    else:
        hint = "match by a more specific field (by=FIELD), or say expects=N"
    plural = "" if op.describe() == "1" else "es"
    if found == 0:
        message = (f"Expected {op.describe()} match{plural}, but was 0; "
                   f"existing {what}: {existing(names)}")
    else:
        message = f"Expected {op.describe()} match{plural}, but was {found} {what}"
    raise InputError(message, where=str(ov.loc), path=format_path(path), layers=layers,
                     hint=hint)
