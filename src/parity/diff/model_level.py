"""The model-level diff: the merged models of two selections, service by service,
with reference templates resolved (so a value that differs only because the same
``${host:postgres}`` resolves differently is recognisably transport), each
difference with the provenance of both sides. Secret values are compared by a
keyed digest and shown masked."""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import model
from .difference import ABSENT, MASK, Difference, Source, flatten
from ..model import enabled_tree, locate, masked_plain
from ..nodes import Map, Scalar, to_plain
from .policy import Rule, classify, load_policy


class Masked:
    """A secret value: compared by a keyed digest, shown as ********."""

    _key = __import__("os").urandom(16)
    __slots__ = ("digest",)

    def __init__(self, value: str):
        self.digest = hmac.new(self._key, value.encode(), hashlib.sha256).digest()

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Masked) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    def __str__(self) -> str:
        return MASK

    __repr__ = __str__


def _mask_secrets(data: dict, resolved) -> None:
    """Replace declared secret values (already masked text) with comparable masks."""
    plain = to_plain(resolved.tree).get("secrets") or {}
    for name, secret in (data.get("secrets") or {}).items():
        for key, spec in (secret.get("keys") or {}).items():
            if "value" in spec:
                spec["value"] = Masked(str(plain[name]["keys"][key]["value"]))


def _resolved_strings(value: Any, resolve) -> Any:
    """``value`` with reference templates in every string resolved for the mode."""
    if isinstance(value, str):
        return resolve(value)
    if isinstance(value, dict):
        return {k: _resolved_strings(v, resolve) for k, v in value.items()}
    if isinstance(value, list):
        return [_resolved_strings(v, resolve) for v in value]
    return value


def model_view(resolved) -> tuple[dict, dict]:
    """(resolved view, raw view) of one selection: enabled services only; env and
    file references resolved in the first, as written in the second."""
    raw = masked_plain(resolved)
    _mask_secrets(raw, resolved)
    stack = resolved.stack
    view = {"stack": raw["stack"], "secrets": raw.get("secrets", {}), "services": {}}
    if raw.get("identity"):
        view["identity"] = _resolved_strings(raw["identity"], stack.resolve)
    for name, svc in raw["services"].items():
        s = dict(svc)
        env = {}
        for k, v in (svc.get("env") or {}).items():
            env[k] = stack.resolve(v) if isinstance(v, str) else v
        if env:
            s["env"] = env
        if svc.get("files"):
            s["files"] = [{**f, "content": stack.resolve(f["content"])} for f in svc["files"]]
        view["services"][name] = s
    return view, raw


_SERVICE = re.compile(r"services\.([^.\[\]]+)")


def diff_views(a: dict, b: dict, raw_a: dict, raw_b: dict, rules: list[Rule],
               level: str = "model") -> list[Difference]:
    out: list[Difference] = []
    sa, sb = a.get("services", {}), b.get("services", {})
    # a service present on one side only is one difference, not one per field
    for name in sorted(set(sa) | set(sb)):
        if name not in sa or name not in sb:
            path = f"services.{name}"
            cls, rule, reason = classify(rules, path, level, False)
            out.append(Difference(path, "(present)" if name in sa else ABSENT,
                                  "(present)" if name in sb else ABSENT, cls, rule, reason,
                                  parts=("services", name)))
    common = set(sa) & set(sb)
    edges = {n for n in common if sa[n].get("role") == "edge" == sb[n].get("role")}
    parts: dict[str, tuple] = {}
    fa = flatten({**{k: v for k, v in a.items() if k != "services"},
                  "services": {k: v for k, v in sa.items() if k in common}}, parts=parts)
    fb = flatten({**{k: v for k, v in b.items() if k != "services"},
                  "services": {k: v for k, v in sb.items() if k in common}}, parts=parts)
    ra, rb = flatten(raw_a), flatten(raw_b)
    for path in sorted(set(fa) | set(fb)):
        va, vb = fa.get(path, ABSENT), fb.get(path, ABSENT)
        if va == vb:
            continue
        same_ref = path in ra and path in rb and ra[path] == rb[path]
        svc = _SERVICE.match(path)
        edge = svc is not None and svc.group(1) in edges
        cls, rule, reason = classify(rules, path, level, same_ref, edge)
        out.append(Difference(path, va, vb, cls, rule, reason, parts=parts[path]))
    return out


def source(tree: Map, parts: tuple, full: Map | None = None) -> Source:
    """The provenance of the value at ``parts`` in ``tree`` (the enabled services):
    the newest entry of its node's history; when the path is absent, that of its
    nearest existing parent, or, for a service of a later phase (in ``full``, the
    tree of every phase), its ``phase:``."""
    node, _ = locate(tree, parts)
    if node is not None:
        return Source.of(node.loc)
    if full is not None and len(parts) >= 2 and parts[0] == "services" \
            and locate(tree, parts[:2])[0] is None:
        phase, _ = locate(full, ("services", parts[1], "phase"))
        if isinstance(phase, Scalar):
            return Source.of(phase.loc, absent=True, why=f"starts in phase {phase.value}")
    for depth in range(len(parts) - 1, -1, -1):
        parent, _ = locate(tree, parts[:depth])
        if parent is not None:
            return Source.of(parent.loc, absent=True)
    return Source.of(tree.loc, absent=True)  # pragma: no cover - the root always exists


def with_sources(diffs: list[Difference], a, b) -> list[Difference]:
    """Each difference with the provenance of both sides (:class:`parity.model.Resolved`),
    looked up once per path and side."""
    ta, tb = enabled_tree(a), enabled_tree(b)
    return [replace(d, from_source=source(ta, d.parts, a.tree),
                    to_source=source(tb, d.parts, b.tree)) for d in diffs]


def diff_resolved(a, b, rules: list[Rule]) -> list[Difference]:
    """The classified differences of two loaded selections (:class:`parity.model.Resolved`),
    each with where both sides' values come from."""
    va, raw_a = model_view(a)
    vb, raw_b = model_view(b)
    return with_sources(diff_views(va, vb, raw_a, raw_b, rules), a, b)


def model_diff(root: Path, sel_a, sel_b, rules: list[Rule] | None = None) -> list[Difference]:
    rules = load_policy(root).rules if rules is None else rules
    return diff_resolved(model.load(root, sel_a), model.load(root, sel_b), rules)
