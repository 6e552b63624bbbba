"""The parity policy (``base/parity-policy.yaml``): the rules that classify a
difference as transport, placement or contract, the accepted differences (a known
contract difference the team accepts until a date), and :func:`classify`, which
picks the first rule that matches. A difference no rule covers is contract: the
policy fails closed."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from datetime import date
from pathlib import Path
from typing import Any

from ..errors import InputError, did_you_mean
from ..nodes import Map, Scalar, Seq
from ..yamlio import load_file
from .difference import Difference

CLASSES = ("transport", "placement", "contract")
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


POLICY_FILE = Path("base") / "parity-policy.yaml"
_RULE_KEYS = ("id", "path", "class", "reason", "when", "level")
_WHEN = ("same-reference", "edge")


def load_policy(root: Path) -> list[Rule]:
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
