"""Applying one overlay tree onto a target tree: dispatch by node kind.

Every function returns a new node; unchanged subtrees are shared, inputs are never
mutated. Provenance: a node the overlay changes gets the overlay's location added
to its chain; a node the overlay adds starts a new chain.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from ...errors import InputError, did_you_mean, existing
from ...nodes import ListKey, Map, Node, Scalar, Seq, format_path, kind_of
from .match import check_count, item_key, match_items
from .ops import MERGE, Op


@dataclass(frozen=True)
class Policy:
    """What the engine needs to know about the tree it works on.

    ``strict(path)``: whether a key absent from the target mapping at ``path`` is an
    error (collections such as ``services`` or ``env``) or may simply be added (a
    field the schema checks). ``list_key(path)``: the field list items at ``path``
    are matched by."""

    strict: Callable[[tuple], bool] = lambda path: True
    list_key: Callable[[tuple], str] = lambda path: "name"
    #: ``item_defaults(path)``: the defaults the schema fills into the items of the
    #: list at ``path`` later; matching by a field reads them where an item lacks it
    item_defaults: Callable[[tuple], dict] = lambda path: {}


@dataclass(frozen=True)
class Context:
    policy: Policy
    layers: str = ""


def apply(target: Map, overlay: Map, ctx: Context) -> Map:
    """Apply ``overlay`` to ``target`` and return the result."""
    op = overlay.op or MERGE
    if op.name != "merge":
        raise InputError(f"!{op.name} cannot apply to a whole file", where=str(overlay.loc),
                         layers=ctx.layers, hint="tag the keys inside the file instead")
    if op.missing_ok or op.expects is not None or op.by is not None:
        raise InputError("missing_ok, expects= and by= cannot apply to a whole file: it "
                         "always matches the model once", where=str(overlay.loc),
                         layers=ctx.layers, hint="tag the keys inside the file instead")
    return _merge_map(target, overlay, (), ctx, overlay.op)


def materialize(node: Node, path: tuple, ctx: Context, *, own_op_done: bool = False) -> Node:
    """An overlay node that is added as-is: drop operations, refuse ones that need a
    target (there is none inside new content). ``own_op_done``: the node's own
    operation (an insert) is being carried out by the caller."""
    op = None if own_op_done else node.op
    if op is not None and op.name in ("remove", "insert"):
        raise InputError(f"!{op.name} has nothing to act on: its parent is new in this "
                         "overlay", where=str(node.loc), path=format_path(path),
                         layers=ctx.layers, hint="remove the tag, or fix the parent's name")
    if isinstance(node, Map):
        return Map({k: materialize(v, path + (k,), ctx) for k, v in node.entries.items()},
                   node.keylocs, node.hist)
    if isinstance(node, Seq):
        return Seq(tuple(materialize(v, path + (i,), ctx) for i, v in enumerate(node.items)),
                   node.hist)
    return Scalar(node.value, node.hist, None, node.text)  # type: ignore[attr-defined]


def _conflict(target: Node, ov: Node, path: tuple, ctx: Context) -> InputError:
    return InputError(
        f"type conflict: the overlay gives a {kind_of(ov)}, but the target "
        f"(set at {target.loc}) is a {kind_of(target)}", where=str(ov.loc),
        path=format_path(path), layers=ctx.layers,
        hint="tag the overlay value !replace to change the type on purpose")


def _merge(target: Node, ov: Node, path: tuple, ctx: Context) -> Node:
    if isinstance(target, Scalar) and target.value is None and not isinstance(ov, Scalar):
        # a null (an empty value) takes whatever a later layer gives it, as in ytt
        return _replace(target, ov, path, ctx)
    if isinstance(ov, Map):
        if not isinstance(target, Map):
            raise _conflict(target, ov, path, ctx)
        return _merge_map(target, ov, path, ctx, ov.op)
    if isinstance(ov, Seq):
        if not isinstance(target, Seq):
            raise _conflict(target, ov, path, ctx)
        return _merge_seq(target, ov, path, ctx)
    if not isinstance(target, Scalar):
        raise _conflict(target, ov, path, ctx)
    return Scalar(ov.value, target.hist + ov.hist, None, ov.text)  # type: ignore[attr-defined]


def _replace(target: Node, ov: Node, path: tuple, ctx: Context) -> Node:
    new = materialize(ov, path, ctx)
    new.hist = target.hist + ov.hist
    return new


def _merge_map(target: Map, ov: Map, path: tuple, ctx: Context, own: Op | None) -> Map:
    entries = dict(target.entries)
    keylocs = dict(target.keylocs)
    strict = ctx.policy.strict(path)
    child_default_missing_ok = bool(own and own.children_missing_ok)
    for key, node in ov.entries.items():
        op = node.op or MERGE
        sub = path + (key,)
        if op.name in ("append", "insert"):
            what = "the list itself" if isinstance(node, Seq) else f"the mapping key '{key}'"
            raise InputError(f"!{op.name} tags list items, not {what}", where=str(node.loc),
                             path=format_path(sub), layers=ctx.layers,
                             hint="tag each new item, e.g. '- !append nats'"
                             if isinstance(node, Seq) else "use !merge, !replace or !remove")
        present = key in entries
        missing_ok = op.missing_ok or child_default_missing_ok
        if op.expects is not None:
            check_count(int(present), op, node, sub, ctx.layers, list(entries),
                        what="keys")
        elif not present and (op.name == "remove" or strict) and not missing_ok:
            raise InputError(
                f"Expected 1 match, but was 0; existing keys: {existing(entries)}"
                f"{did_you_mean(key, entries)}", where=str(node.loc),
                path=format_path(sub), layers=ctx.layers,
                hint=f"fix the name, or tag it !{op.name}(missing_ok) if it is new or may "
                     "be absent")
        if not present:
            if op.name != "remove":
                entries[key] = materialize(node, sub, ctx)
                keylocs[key] = ov.keylocs[key]
            continue
        if op.name == "remove":
            del entries[key]
            del keylocs[key]
        elif op.name == "replace":
            entries[key] = _replace(entries[key], node, sub, ctx)
        else:
            entries[key] = _merge(entries[key], node, sub, ctx)
    return Map(entries, keylocs, target.hist + ov.hist)


def _merge_seq(target: Seq, ov: Seq, path: tuple, ctx: Context) -> Seq:
    own = ov.op or MERGE
    items = list(target.items)
    default_by = own.by or ctx.policy.list_key(path)
    defaults = ctx.policy.item_defaults(path)
    for index, node in enumerate(ov.items):
        op = node.op or MERGE
        if own.children_missing_ok and not op.missing_ok and op.expects is None:
            op = Op(**{**op.__dict__, "missing_ok": True})
        by = op.by or default_by
        if op.name == "append":
            items.append(materialize(node, path + (len(items),), ctx))
            continue
        if op.name == "insert":
            items = _insert(items, node, op, by, path, ctx, defaults)
            continue
        current = Seq(tuple(items), target.hist)
        hits = match_items(current, node, op, by, path, ctx.layers, defaults)
        label = item_key(node, by)
        sub = path + (ListKey(str(label)),)
        if not hits:
            if op.name != "remove":
                items.append(materialize(node, sub, ctx))
            continue
        if op.name == "remove":
            items = [t for i, t in enumerate(items) if i not in set(hits)]
            continue
        for i in hits:
            if op.name == "replace":
                items[i] = _replace(items[i], node, sub, ctx)
            else:
                items[i] = _merge(items[i], node, sub, ctx)
    return Seq(tuple(items), target.hist + ov.hist)


def _insert(items: list[Node], node: Node, op: Op, by: str, path: tuple,
            ctx: Context, defaults: dict | None = None) -> list[Node]:
    """Insert ``node`` next to each item whose key is the anchor: exactly one unless
    ``expects=``/``missing_ok`` say otherwise (as ytt inserts at every match)."""
    anchor = op.before if op.before is not None else op.after
    keys = [item_key(t, by, defaults) for t in items]
    hits = [i for i, k in enumerate(keys) if k is not None and _text(k) == anchor]
    lo, hi = op.expected()
    if not (len(hits) >= lo and (hi is None or len(hits) <= hi)):
        names = [_text(k) for k in keys if k is not None]
        plural = "" if op.describe() == "1" else "s"
        raise InputError(
            f"Expected {op.describe()} item{plural} with {by}={anchor} to insert next to, "
            f"but was {len(hits)}; existing: {existing(names)}", where=str(node.loc),
            path=format_path(path + (ListKey(f"{by}={anchor}"),)), layers=ctx.layers,
            hint=f"fix the anchor{did_you_mean(anchor, names)}" if not hits else
                 f"say expects={len(hits)} if {len(hits)} is right, or anchor on a more "
                 f"specific field with by=FIELD")
    label = item_key(node, by, defaults)
    if label is not None and isinstance(node, Map) and label in keys:
        raise InputError(f"an item with {by}={label} already exists", where=str(node.loc),
                         path=format_path(path + (ListKey(str(label)),)), layers=ctx.layers,
                         hint="merge into it instead of inserting another")
    for pos in sorted(hits, reverse=True):  # from the end, so earlier indexes hold
        at = pos if op.before is not None else pos + 1
        new = materialize(node, path + (at,), ctx, own_op_done=True)
        items = items[:at] + [new] + items[at:]
    return items


def _text(key: object) -> str:
    """A match key as the text an anchor is written in (``true``, not ``True``)."""
    if isinstance(key, bool):
        return "true" if key else "false"
    return str(key)
