"""What every rule is made of: the violation it reports, the waiver that may cover
it, the rule record (``RuleDef``, made by the ``@rule`` decorator), the context a
rule reads (``Ctx``) and ``outside_refs``, which the value-scanning rules share.

The order the rules run in, are reported and documented in is the explicit list
``RULES`` in registry.py, not the order of definition.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Any, Callable, Iterator

from ..diff import glob_pattern
from ..model import locate
from ..nodes import ListKey, Map


@dataclass(frozen=True)
class Violation:
    rule: str
    path: str            # dotted model path
    where: str           # file:line of the value (or of its nearest parent)
    message: str
    fix: str
    waiver: "Waiver | None" = None

    @property
    def failing(self) -> bool:
        return self.waiver is None or self.waiver.expired

    def __str__(self) -> str:
        return f"{self.where}: {self.path}: [{self.rule}] {self.message}"

    def render(self) -> str:
        text = f"{self}\n  next: {self.fix}"
        if self.waiver is not None:
            w = self.waiver
            state = f"EXPIRED on {w.until}" if w.expired else f"until {w.until}"
            text += f"\n  waived by {w.where} ({state}): {w.reason}"
        return text

    def as_json(self) -> dict:
        out = {"rule": self.rule, "path": self.path, "where": self.where,
               "message": self.message, "fix": self.fix, "failing": self.failing}
        if self.waiver is not None:
            out["waiver"] = {"where": self.waiver.where, "until": self.waiver.until.isoformat(),
                             "reason": self.waiver.reason, "expired": self.waiver.expired}
        return out


@dataclass(frozen=True)
class Waiver:
    rule: str
    path: str
    reason: str
    until: date
    where: str
    expired: bool = False

    def matches(self, v: Violation) -> bool:
        return v.rule == self.rule and glob_pattern(self.path).fullmatch(v.path) is not None


@dataclass(frozen=True)
class RuleDef:
    id: str
    title: str
    fn: Callable[["Ctx"], Iterator[tuple[tuple, str, str]]]
    modes: tuple[str, ...] = ("compose", "kind")
    waivable: bool = True


def rule(id: str, title: str, modes: tuple[str, ...] = ("compose", "kind"),
         waivable: bool = True) -> Callable[[Callable], RuleDef]:
    """Make the decorated function a rule: its name is bound to the ``RuleDef``.
    A rule runs once it is listed in registry.RULES."""
    def make(fn: Callable) -> RuleDef:
        return RuleDef(id, title, fn, modes, waivable)

    return make


@dataclass
class Ctx:
    """What a rule reads: the merged tree (provenance), its plain data restricted to
    the enabled services, the typed stack and the repository root."""

    root: Path
    tree: Map
    data: dict
    stack: Any
    services: dict = field(default_factory=dict)
    layers: list = field(default_factory=list)
    #: (context, Dockerfile) -> the source lines it copies, read once per check
    sources: dict = field(default_factory=dict)

    def where(self, path: tuple) -> str | None:
        """file:line of ``path`` in the merged tree, or None when absent."""
        node, loc = locate(self.tree, path)
        if node is None:
            return None
        return str(node.loc if node.loc.layer != "default" else loc)

    def build_contexts(self) -> Iterator[tuple[str, dict, Path]]:
        """(service, build, resolved context) of every build whose context is a
        directory inside the repository (the model refuses the others:
        model.formats.check_images)."""
        root = self.root.resolve()
        for name, svc in self.services.items():
            b = svc.get("build")
            if not b:
                continue
            ctx = (root / b["context"]).resolve()
            if ctx.is_relative_to(root) and ctx.is_dir():
                yield name, b, ctx

    def strings(self, name: str) -> Iterator[tuple[tuple, str]]:
        """(path, raw string) of every env value and file content of a service."""
        svc = self.services[name]
        for key, value in (svc.get("env") or {}).items():
            if isinstance(value, str):
                yield ("services", name, "env", key), value
        for f in svc.get("files") or []:
            yield ("services", name, "files", ListKey(f["name"]), "content"), f["content"]


_REF = re.compile(r"\$\$\{|\$\{[^}]*\}")


def outside_refs(text: str) -> str:
    """``text`` with reference templates and ``$${`` escapes blanked out."""
    return _REF.sub(lambda m: " " * len(m.group(0)), text)
