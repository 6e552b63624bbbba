"""One difference between two renders of the stack (:class:`Difference`), where
each side's value comes from (:class:`Source`), and :func:`flatten`, which turns a
model or a rendered document into leaves by path for comparison."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..nodes import ListKey, Loc

if TYPE_CHECKING:  # annotations only: policy.py imports this module
    from .policy import Acceptance

ABSENT = "(absent)"
MASK = "********"


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


def show(v: Any) -> str:
    s = v if isinstance(v, str) else json.dumps(v, sort_keys=True, default=str)
    return s if len(s) <= 70 else s[:67] + "..."
