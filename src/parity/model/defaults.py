"""What the loader does to the merged tree before validating it: fill in the
schema's defaults (provenance ``(default)``), and keep numbers written where a
string is expected as the text they were written in.
"""

from __future__ import annotations

from typing import Any

from ..nodes import Map, Node, Scalar, Seq
from . import schema
from .locate import DEFAULT_LOC


def _with_defaults(node: Map, defaults: dict) -> Map:
    entries = dict(node.entries)
    keylocs = dict(node.keylocs)
    for k, v in defaults.items():
        if k not in entries:
            entries[k] = _from_plain(v)
            keylocs[k] = DEFAULT_LOC
        elif isinstance(v, dict) and isinstance(entries[k], Map):
            entries[k] = _with_defaults(entries[k], v)  # type: ignore[arg-type]
    return Map(entries, keylocs, node.hist)


def _from_plain(v: Any) -> Node:
    if isinstance(v, dict):
        return Map({k: _from_plain(x) for k, x in v.items()}, {k: DEFAULT_LOC for k in v},
                   (DEFAULT_LOC,))
    if isinstance(v, list):
        return Seq(tuple(_from_plain(x) for x in v), (DEFAULT_LOC,))
    return Scalar(v, (DEFAULT_LOC,))


def _map_items(node: Node | None, fn) -> Node | None:
    if not isinstance(node, Seq):
        return node
    return Seq(tuple(fn(i) if isinstance(i, Map) else i for i in node.items), node.hist)


def apply_defaults(tree: Map) -> Map:
    entries = dict(tree.entries)
    stack = entries.get("stack")
    if isinstance(stack, Map):
        entries["stack"] = _with_defaults(stack, schema.STACK_DEFAULTS)
    services = entries.get("services")
    if isinstance(services, Map):
        new_services = {}
        for name, svc in services.entries.items():
            if not isinstance(svc, Map):
                new_services[name] = svc
                continue
            s = _with_defaults(svc, schema.SERVICE_DEFAULTS)
            se = dict(s.entries)
            se["ports"] = _map_items(se.get("ports"),
                                     lambda m: _with_defaults(m, schema.PORT_DEFAULTS))
            se["routes"] = _map_items(se.get("routes"),
                                      lambda m: _with_defaults(m, schema.ROUTE_DEFAULTS))
            se["storage"] = _map_items(se.get("storage"),
                                       lambda m: _with_defaults(m, schema.STORAGE_DEFAULTS))
            if isinstance(se.get("readiness"), Map):
                se["readiness"] = _with_defaults(se["readiness"],  # type: ignore[arg-type]
                                                 schema.READINESS_DEFAULTS)
            se = {k: v for k, v in se.items() if v is not None}
            new_services[name] = Map(se, s.keylocs, s.hist)
        entries["services"] = Map(new_services, services.keylocs, services.hist)
    identity = entries.get("identity")
    if isinstance(identity, Map):
        ident = _with_defaults(identity, schema.IDENTITY_DEFAULTS)
        ie = dict(ident.entries)
        for part, defaults in (("clients", schema.IDENTITY_CLIENT_DEFAULTS),
                               ("users", schema.IDENTITY_USER_DEFAULTS)):
            group = ie.get(part)
            if isinstance(group, Map):
                ie[part] = Map({k: _with_defaults(v, defaults) if isinstance(v, Map) else v
                                for k, v in group.entries.items()}, group.keylocs, group.hist)
        entries["identity"] = Map(ie, ident.keylocs, ident.hist)
    return Map(entries, tree.keylocs, tree.hist)


def as_written(node: Node, sch: dict | None = None) -> Node:
    """Where the schema takes a string, a number keeps the text it was written in
    (``0755`` stays ``0755``, ``1.10`` stays ``1.10``; an env value, an arg, a build
    arg), and so does a boolean where no boolean is allowed. YAML would otherwise
    have turned it into a number and back into different text."""
    if sch is None:
        sch = schema.STACK
    if isinstance(node, Scalar):
        if node.text is None or node.value is None:
            return node
        types = schema.allowed_types(sch)
        if "string" not in types or (isinstance(node.value, bool) and "boolean" in types):
            return node
        return Scalar(node.text, node.hist, node.op)
    branches = schema.child_schemas(sch)
    if isinstance(node, Map):
        changed = {}
        for key, child in node.entries.items():
            sub = None
            for b in branches:
                if b.get("type") != "object" and "properties" not in b:
                    continue
                props = b.get("properties", {})
                extra = b.get("additionalProperties")
                sub = props.get(key) if key in props else (
                    extra if isinstance(extra, dict) else None)
                if sub is not None:
                    break
            if sub is not None:
                new = as_written(child, sub)
                if new is not child:
                    changed[key] = new
        if not changed:
            return node
        return Map({**node.entries, **changed}, node.keylocs, node.hist, node.op)
    if isinstance(node, Seq):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), None)
        if items is None:
            return node
        new_items = tuple(as_written(i, items) for i in node.items)
        if all(a is b for a, b in zip(new_items, node.items)):
            return node
        return Seq(new_items, node.hist, node.op)
    return node
