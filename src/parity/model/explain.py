"""Views of a loaded model for people: the merged tree of the enabled services,
secret values masked, and :func:`explain`, the value at a path and the chain of
layers that set it.
"""

from __future__ import annotations

from typing import Any

from .. import identity as idp
from ..errors import InputError, did_you_mean
from ..nodes import ListKey, Map, Node, Scalar, Seq, format_path, to_plain
from .locate import locate, parse_path
from .types import Resolved


MASK = "********"


def enabled_tree(resolved: Resolved) -> Map:
    """The merged tree restricted to the services enabled in the chosen phase."""
    tree = resolved.tree
    services = tree.entries["services"]
    assert isinstance(services, Map)
    keep = {n: v for n, v in services.entries.items() if n in resolved.stack.services}
    entries = dict(tree.entries)
    entries["services"] = Map(keep, {k: services.keylocs[k] for k in keep}, services.hist)
    return Map(entries, tree.keylocs, tree.hist)


def masked_plain(resolved: Resolved) -> dict:
    """The merged model as plain data with every secret value masked."""
    return mask_secret_values(to_plain(enabled_tree(resolved)))


def is_secret_path(path: tuple) -> bool:
    return len(path) >= 5 and path[0] == "secrets" and path[2] == "keys" and path[4] == "value"


def mask_secret_values(value: Any, path: tuple = ()) -> Any:
    """``value`` (plain data found at model ``path``) with every secret value in it
    masked, however short and however deep: ``secrets``, one secret, its keys,
    one key or the value itself."""
    if is_secret_path(path):
        return MASK
    if isinstance(value, dict):
        return {k: mask_secret_values(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secret_values(v, path + (i,)) for i, v in enumerate(value)]
    return value


def _identity_source(resolved: Resolved, path: tuple) -> str | None:
    """The identity: path a value parity adds to the provider service comes from."""
    ident = resolved.stack.identity
    if ident is None or len(path) < 4 or path[:2] != ("services", ident.provider):
        return None
    if path[2] == "env":
        for u in ident.users:
            if idp.user_env(u.username) == path[3]:
                return f"identity.users.{u.username}.password"
        for c in ident.clients:
            if c.secret is not None and idp.client_env(c.client_id) == path[3]:
                return f"identity.clients.{c.client_id}.secret"
    if path[2] == "files" and path[3] == ListKey(idp.FILE_NAME):
        return "identity"
    return None


def explain(resolved: Resolved, path_text: str) -> dict:
    """The value at a path and the chain of layers that set it."""
    path = parse_path(path_text)
    node, _ = locate(resolved.tree, path)
    if node is None:
        source = _identity_source(resolved, path)
        if source is not None:
            # what parity adds to the provider from identity: (env, the realm file)
            return explain(resolved, source) | {"path": format_path(path),
                                                 "rendered_from": source}
        # report at the first part of the path that does not exist
        depth = 0
        parent: Node | None = resolved.tree
        while depth < len(path):
            child, _ = locate(resolved.tree, path[:depth + 1])
            if child is None:
                break
            parent, depth = child, depth + 1
        names: list[str] = []
        if isinstance(parent, Map):
            names = list(parent.entries)
        elif isinstance(parent, Seq):
            names = [str(i.entries["name"].value) for i in parent.items
                     if isinstance(i, Map) and isinstance(i.entries.get("name"), Scalar)]
        missing = str(path[depth]) if depth < len(path) else ""
        where = format_path(path[:depth]) or "the top level"
        raise InputError(f"no '{missing}' under {where}{did_you_mean(missing, names)}",
                         path=path_text, hint=f"keys under {where}: {', '.join(names) or 'none'}"
                         if names else "see inv config for what exists")
    value = mask_secret_values(to_plain(node), path)
    chain = [{"layer": loc.layer, "location": str(loc)} for loc in node.hist]
    return {"path": format_path(path), "value": value, "chain": chain,
            "layer_order": resolved.layer_order}
