"""The parity diff: align two renders of the stack by identity, list every
difference, and classify each as transport, placement or contract with the policy
rule that decided it (``base/parity-policy.yaml``). A difference no rule covers is
contract: the policy fails closed.

Two levels:

- **model**: the merged models of two selections, service by service, with
  reference templates resolved (so a value that differs only because the same
  ``${host:postgres}`` resolves differently is recognisably transport);
- **rendered**: the rendered documents, aligned by ``apiVersion/kind/namespace/name``
  (kind manifests) or ``services/<name>`` (compose file), for comparing two phases
  of one mode or a render against a saved directory (``--against DIR``).

Secret values are never compared or printed: the model carries only references,
and rendered ``Secret`` data is masked before comparison.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from .errors import InputError, did_you_mean
from . import yamlio
from .nodes import ListKey, Loc, Map, Scalar, Seq

CLASSES = ("transport", "placement", "contract")
ABSENT = "(absent)"
MASK = "********"
NO_RULE = "no rule covers it (contract by default)"


@dataclass(frozen=True)
class Rule:
    id: str
    path: str
    cls: str
    reason: str
    when: str | None = None
    level: str = "model"
    where: str = ""

    def matches(self, path: str, level: str) -> bool:
        return level == self.level and glob_pattern(self.path).fullmatch(path) is not None


@dataclass(frozen=True)
class Acceptance:
    """A known contract difference the team accepts until a date, with a reason:
    shown on every diff, never silent, and failing again once it expires."""

    id: str
    path: str
    reason: str
    until: date
    level: str = "model"
    where: str = ""

    def matches(self, path: str, level: str) -> bool:
        return level == self.level and glob_pattern(self.path).fullmatch(path) is not None

    def as_json(self) -> dict:
        return {"id": self.id, "until": self.until.isoformat(), "reason": self.reason}


@dataclass(frozen=True)
class Policy:
    rules: list[Rule]
    accepted: list[Acceptance] = field(default_factory=list)

    def accept(self, diffs: list["Difference"], today: date,
               level: str = "model") -> tuple[list["Difference"], list[Acceptance]]:
        """Mark the contract differences an acceptance covers; return them and the
        acceptances that matched nothing (shown, so stale ones get removed)."""
        used: set[str] = set()
        out = []
        for d in diffs:
            if d.cls == "contract":
                hit = next((a for a in self.accepted if a.matches(d.path, level)), None)
                if hit is not None:
                    used.add(hit.id)
                    d = replace(d, accepted=hit) if today <= hit.until \
                        else replace(d, expired=hit)
            out.append(d)
        return out, [a for a in self.accepted if a.id not in used]


@dataclass(frozen=True)
class Source:
    """Where one side's value comes from: the newest entry of the node's history
    (the layer, file and line that last set it). ``absent``: the path does not exist
    on that side, and the location is its nearest existing parent's."""

    layer: str
    file: str | None
    line: int | None
    absent: bool = False
    #: for an absent path, what the location is (text output only)
    why: str = field(default="parent last changed", compare=False)

    @classmethod
    def of(cls, loc: Loc, absent: bool = False, why: str = "parent last changed") -> "Source":
        if loc.layer == "default":
            return cls("default", None, None, absent, why)
        return cls(loc.layer, loc.file, loc.line or None, absent, why)

    def __str__(self) -> str:
        if self.file is None:
            where = "schema default"
        else:
            where = (f"{self.file}:{self.line}" if self.line else self.file) + f" ({self.layer})"
        return f"absent; {self.why} at {where}" if self.absent else where

    def as_json(self) -> dict:
        return {"layer": self.layer, "file": self.file, "line": self.line,
                "absent": self.absent}


@dataclass(frozen=True)
class Difference:
    path: str
    from_value: Any
    to_value: Any
    cls: str
    rule: str
    reason: str
    #: the acceptance that lets this contract difference pass, while it lasts
    accepted: "Acceptance | None" = None
    #: an acceptance that matched but has expired (the difference fails again)
    expired: "Acceptance | None" = None
    #: where each side's value was last set (model level; None where no source exists)
    from_source: Source | None = None
    to_source: Source | None = None
    #: the path as the tuple the merged tree is walked by (model level)
    parts: tuple = field(default=(), compare=False, repr=False)

    @property
    def failing(self) -> bool:
        return self.cls == "contract" and self.accepted is None

    def as_json(self) -> dict:
        d = {"path": self.path, "from": self.from_value, "to": self.to_value,
             "class": self.cls, "rule": self.rule, "reason": self.reason,
             "from_source": self.from_source.as_json() if self.from_source else None,
             "to_source": self.to_source.as_json() if self.to_source else None}
        if self.accepted is not None:
            d["accepted"] = self.accepted.as_json()
        if self.expired is not None:
            d["expired_acceptance"] = self.expired.as_json()
        return d


_pattern_cache: dict[str, re.Pattern] = {}


def glob_pattern(glob: str) -> re.Pattern:
    """``services.*.storage[*].size`` -> a regex; ``*`` is one key, ``**`` any depth."""
    hit = _pattern_cache.get(glob)
    if hit is None:
        out = ""
        i = 0
        while i < len(glob):
            if glob.startswith("**", i):
                out += r".+"
                i += 2
            elif glob.startswith("[*]", i):
                out += r"\[[^\]]+\]"
                i += 3
            elif glob[i] == "*":
                out += r"[^.\[\]]+"
                i += 1
            else:
                out += re.escape(glob[i])
                i += 1
        hit = _pattern_cache[glob] = re.compile(out)
    return hit


# --------------------------------------------------------------------------- policy

POLICY_FILE = Path("base") / "parity-policy.yaml"
_RULE_KEYS = ("id", "path", "class", "reason", "when", "level")
_WHEN = ("same-reference", "edge")


def load_policy(root: Path) -> list[Rule]:
    from .yamlio import load_file

    path = root / POLICY_FILE
    rel = str(POLICY_FILE)
    if not path.exists():
        raise InputError("the parity policy is missing", where=rel,
                         hint="restore base/parity-policy.yaml from git")
    tree = load_file(path, rel, "policy")
    rules_node = tree.entries.get("rules")
    # waivers: of the model rules, read by parity.rules.load_waivers
    if set(tree.entries) - {"rules", "accepted", "waivers"}:
        key = sorted(set(tree.entries) - {"rules", "accepted", "waivers"})[0]
        raise InputError(f"unknown key '{key}'"
                         f"{did_you_mean(key, ['rules', 'accepted', 'waivers'])}",
                         where=str(tree.keylocs[key]),
                         hint="the policy has three keys: rules, accepted and waivers")
    if not isinstance(rules_node, Seq):
        raise InputError("'rules' must be a list", where=str(tree.loc))
    rules: list[Rule] = []
    seen: set[str] = set()
    for i, item in enumerate(rules_node.items):
        where = str(item.loc)
        if not isinstance(item, Map):
            raise InputError("each rule is a mapping", where=where, path=f"rules[{i}]")
        data = {}
        for k, v in item.entries.items():
            if k not in _RULE_KEYS:
                raise InputError(f"unknown key '{k}'{did_you_mean(k, _RULE_KEYS)}",
                                 where=str(item.keylocs[k]), path=f"rules[{i}]",
                                 hint=f"rule keys: {', '.join(_RULE_KEYS)}")
            if not isinstance(v, Scalar) or not isinstance(v.value, str):
                raise InputError(f"'{k}' must be a string", where=str(v.loc),
                                 path=f"rules[{i}].{k}")
            data[k] = v.value
        for k in ("id", "path", "class", "reason"):
            if k not in data:
                raise InputError(f"missing required key '{k}'", where=where, path=f"rules[{i}]")
        if data["class"] not in CLASSES:
            raise InputError(f"class '{data['class']}' is not one of {', '.join(CLASSES)}"
                             f"{did_you_mean(data['class'], CLASSES)}",
                             where=str(item.keylocs["class"]), path=f"rules[{i}].class")
        if "when" in data and data["when"] not in _WHEN:
            raise InputError(f"when '{data['when']}' is not one of {', '.join(_WHEN)}",
                             where=str(item.keylocs["when"]), path=f"rules[{i}].when")
        if data["id"] in seen:
            raise InputError(f"duplicate rule id '{data['id']}'", where=where,
                             path=f"rules[{i}].id")
        seen.add(data["id"])
        rules.append(Rule(data["id"], data["path"], data["class"], data["reason"],
                          data.get("when"), data.get("level", "model"), where))
    return Policy(rules, _load_accepted(tree.entries.get("accepted"), seen))


_ACCEPT_KEYS = ("id", "path", "reason", "until", "level")


def parse_until(value, item, base: str) -> date:
    """The ``until:`` of a policy entry (an accepted difference or a waiver) as a
    date; anything else is an InputError at its line."""
    until = value
    if isinstance(until, str):
        try:
            until = date.fromisoformat(until)
        except ValueError:
            until = None
    if not isinstance(until, date):
        raise InputError(f"until '{value}' is not a date",
                         where=str(item.entries["until"].loc), path=f"{base}.until",
                         hint="write the last day it holds as YYYY-MM-DD")
    return until


def _load_accepted(node, seen: set[str]) -> list[Acceptance]:
    if node is None:
        return []
    if not isinstance(node, Seq):
        raise InputError("'accepted' must be a list", where=str(node.loc), path="accepted")
    out: list[Acceptance] = []
    for i, item in enumerate(node.items):
        where, base = str(item.loc), f"accepted[{i}]"
        if not isinstance(item, Map):
            raise InputError("each accepted difference is a mapping", where=where, path=base)
        data: dict[str, Any] = {}
        for k, v in item.entries.items():
            if k not in _ACCEPT_KEYS:
                raise InputError(f"unknown key '{k}'{did_you_mean(k, _ACCEPT_KEYS)}",
                                 where=str(item.keylocs[k]), path=base,
                                 hint=f"keys of an accepted difference: "
                                      f"{', '.join(_ACCEPT_KEYS)}")
            data[k] = v.value if isinstance(v, Scalar) else v
        for k in ("id", "path", "reason", "until"):
            if k not in data:
                raise InputError(f"missing required key '{k}'", where=where, path=base,
                                 hint="an accepted difference needs an id, a path, the "
                                      "reason and the date it ends (until: YYYY-MM-DD)")
        for k in ("id", "path", "reason", "level"):
            if k in data and not isinstance(data[k], str):
                raise InputError(f"'{k}' must be a string", where=str(item.entries[k].loc),
                                 path=f"{base}.{k}")
        until = parse_until(data["until"], item, base)
        if data.get("level", "model") not in ("model", "rendered"):
            raise InputError(f"level '{data['level']}' is not one of model, rendered",
                             where=str(item.entries["level"].loc), path=f"{base}.level")
        if data["id"] in seen:
            raise InputError(f"duplicate id '{data['id']}' (rules and accepted differences "
                             "share one set of ids)", where=where, path=f"{base}.id")
        seen.add(data["id"])
        out.append(Acceptance(data["id"], data["path"], data["reason"], until,
                              data.get("level", "model"), where))
    return out


def classify(rules: list[Rule], path: str, level: str, same_reference: bool,
             edge: bool = False) -> tuple[str, str, str]:
    """The first rule that matches ``path`` and whose condition holds: ``same-reference``
    (both sides wrote the same reference template) or ``edge`` (the service in the
    path has ``role: edge`` on both sides)."""
    for rule in rules:
        if not rule.matches(path, level):
            continue
        if rule.when == "same-reference" and not same_reference:
            continue
        if rule.when == "edge" and not edge:
            continue
        return rule.cls, rule.id, rule.reason
    return "contract", "(none)", NO_RULE


# --------------------------------------------------------------------------- flattening

def flatten(value: Any, prefix: str = "", parts: dict[str, tuple] | None = None
            ) -> dict[str, Any]:
    """Leaves by path. Lists of named mappings are keyed by name, lists of scalars
    compare as sets of items (``depends_on[nats]``), other lists whole. ``parts``, if
    given, receives each path as the tuple :func:`parity.model.locate` walks (a key
    may itself contain a dot, so the text alone is ambiguous)."""
    out: dict[str, Any] = {}

    def put(path: str, key: tuple, v: Any) -> None:
        out[path] = v
        if parts is not None:
            parts[path] = key

    def walk(value: Any, prefix: str, key: tuple) -> None:
        if isinstance(value, dict):
            if not value and prefix:
                put(prefix, key, {})
            for k, v in value.items():
                walk(v, f"{prefix}.{k}" if prefix else str(k), key + (k,))
        elif isinstance(value, list):
            if value and all(isinstance(i, dict) and "name" in i for i in value):
                for item in value:
                    walk({k: v for k, v in item.items() if k != "name"},
                         f"{prefix}[{item['name']}]", key + (ListKey(str(item["name"])),))
            elif value and all(not isinstance(i, (dict, list)) for i in value) and \
                    prefix.endswith("depends_on"):
                for item in value:
                    put(f"{prefix}[{item}]", key + (ListKey(str(item)),), True)
            else:
                put(prefix, key, value)
        else:
            put(prefix, key, value)

    walk(value, prefix, ())
    return out


# --------------------------------------------------------------------------- model level

class Masked:
    """A secret value: compared by a keyed digest, shown as ********."""

    _key = __import__("os").urandom(16)
    __slots__ = ("digest",)

    def __init__(self, value: str):
        import hashlib
        import hmac

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
    from .nodes import to_plain

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
    from .model import masked_plain

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
    from .model import locate

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
    from .model import enabled_tree

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
    from . import model

    rules = load_policy(root).rules if rules is None else rules
    return diff_resolved(model.load(root, sel_a), model.load(root, sel_b), rules)


# --------------------------------------------------------------------------- hidden by local

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
                f"({self.labels[0]} {_show(self.from_value)}, "
                f"{self.labels[1]} {_show(self.to_value)})")
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
    from .model import load_layer
    from .model import locate

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
    from dataclasses import replace as dc_replace

    from . import model
    from .model import enabled_tree

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


# --------------------------------------------------------------------------- rendered level

def identities(files: dict[str, str]) -> dict[str, Any]:
    """``{identity: document}`` for every document of a render; Secret data masked."""
    out: dict[str, Any] = {}
    for fname in sorted(files):
        if not fname.endswith((".yaml", ".yml")):
            out[f"file/{fname}"] = files[fname]
            continue
        for doc in yamlio.load_docs(files[fname]):
            if fname == "docker-compose.yaml" or "services" in doc and "kind" not in doc:
                for section in ("services", "volumes", "networks", "secrets", "configs"):
                    for name, body in (doc.get(section) or {}).items():
                        out[f"compose/{section}/{name}"] = body
                continue
            meta = doc.get("metadata") or {}
            ident = "/".join(str(x) for x in (doc.get("apiVersion"), doc.get("kind"),
                                              meta.get("namespace", ""), meta.get("name"))
                             if x != "")
            if doc.get("kind") == "Secret":
                doc = {**doc, **{k: {kk: MASK for kk in (doc.get(k) or {})}
                                 for k in ("data", "stringData") if k in doc}}
            out[ident] = doc
    return out


def rendered_diff(files_a: dict[str, str], files_b: dict[str, str],
                  rules: list[Rule]) -> list[Difference]:
    ia, ib = identities(files_a), identities(files_b)
    out: list[Difference] = []
    for ident in sorted(set(ia) | set(ib)):
        if ident not in ia or ident not in ib:
            cls, rule, reason = classify(rules, ident, "rendered", False)
            out.append(Difference(ident, "(present)" if ident in ia else ABSENT,
                                  "(present)" if ident in ib else ABSENT, cls, rule, reason))
            continue
        fa, fb = flatten(ia[ident]), flatten(ib[ident])
        for path in sorted(set(fa) | set(fb)):
            va, vb = fa.get(path, ABSENT), fb.get(path, ABSENT)
            if va != vb:
                full = f"{ident}:{path}"
                cls, rule, reason = classify(rules, full, "rendered", False)
                out.append(Difference(full, va, vb, cls, rule, reason))
    return out


def read_dir(directory: Path) -> dict[str, str]:
    if not directory.is_dir():
        raise InputError(f"{directory} is not a directory",
                         hint="give --against a directory written by inv render --out")
    from .yamlio import decode, read_input

    files = {}
    for p in sorted(directory.rglob("*")):
        if p.is_symlink() or not p.is_file():
            if p.is_symlink() or not p.is_dir():
                raise InputError(f"{p} is not a regular file",
                                 hint="--against reads a directory inv render --out wrote; "
                                      "remove what parity did not write there")
            continue
        rel = str(p.relative_to(directory))
        files[rel] = decode(read_input(p, str(p), limit=RENDER_LIMIT), str(p))
    if not files:
        raise InputError(f"{directory} holds no rendered files", hint="render into it first")
    for name, text in files.items():
        if name.endswith((".yaml", ".yml")):
            try:
                yamlio.load_docs(text)
            except (RecursionError, Exception) as exc:  # yaml.YAMLError and its kin
                first = str(exc).splitlines()[0] if str(exc) else exc.__class__.__name__
                raise InputError(f"{directory / name} is not a render parity can read: "
                                 f"{first[:200]}",
                                 hint="render into it again: inv render --out DIR") from None
    return files


#: a saved render read by ``--against`` (renders of thousands of services are large)
RENDER_LIMIT = 64 * 1024 * 1024


# --------------------------------------------------------------------------- output

def summary(diffs: list[Difference]) -> dict[str, int]:
    """Counts by class; ``contract`` counts only what fails (not accepted)."""
    out = {c: sum(1 for d in diffs if d.cls == c and d.accepted is None) for c in CLASSES}
    out["accepted"] = sum(1 for d in diffs if d.accepted is not None)
    return out


def _show(v: Any) -> str:
    import json

    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= 70 else s[:67] + "..."


def format_text(diffs: list[Difference], title: str,
                unused: list[Acceptance] = (), labels: tuple[str, str] = ("from", "to"),
                hidden: list[Hidden] = ()) -> str:
    counts = summary(diffs)
    accepted = f"{counts['accepted']} accepted, " if counts["accepted"] else ""
    lines = [f"{title}: {len(diffs)} differences "
             f"({counts['contract']} contract, {accepted}{counts['transport']} transport, "
             f"{counts['placement']} placement)"]
    groups = (("CONTRACT (not allowed between modes)", lambda d: d.failing),
              ("ACCEPTED CONTRACT (allowed until the date shown)",
               lambda d: d.accepted is not None),
              ("TRANSPORT", lambda d: d.cls == "transport"),
              ("PLACEMENT", lambda d: d.cls == "placement"))
    for heading, member in groups:
        group = [d for d in diffs if member(d)]
        if not group:
            continue
        lines.append(f"\n{heading}")
        for d in group:
            lines.append(f"  {d.path}")
            lines.append(f"      {_show(d.from_value)}  ->  {_show(d.to_value)}")
            if d.from_source is not None and d.to_source is not None:
                lines.append(f"      {labels[0]}: {d.from_source}   {labels[1]}: {d.to_source}")
            lines.append(f"      rule: {d.rule} — {d.reason}")
            if d.accepted is not None:
                a = d.accepted
                lines.append(f"      accepted: {a.id} until {a.until} — {a.reason}")
            if d.expired is not None:
                a = d.expired
                lines.append(f"      accepted: {a.id} expired on {a.until} ({a.where}): "
                             "fix the drift, or renew the date in review")
    if unused:
        lines.append("\nACCEPTED, BUT MATCHED NOTHING HERE (remove them once the drift is "
                     "fixed)")
        lines += [f"  {a.id}: {a.path} ({a.where})" for a in unused]
    if hidden:
        lines.append("")
        lines += [h.message() for h in hidden]
        lines.append("  (overlays/local/*.yaml applies to every mode; a change for one mode "
                     "goes in overlays/local/<mode>/. The exit code ignores these warnings.)")
    return "\n".join(lines)


def format_json(diffs: list[Difference], title: str,
                unused: list[Acceptance] = (), hidden: list[Hidden] = ()) -> str:
    import json

    counts = summary(diffs)
    return json.dumps({"comparison": title, "contract_differences": counts["contract"],
                       "counts": counts, "differences": [d.as_json() for d in diffs],
                       "unused_acceptances": [a.id for a in unused],
                       "hidden_by_local": [h.as_json() for h in hidden]},
                      indent=2, default=str)
