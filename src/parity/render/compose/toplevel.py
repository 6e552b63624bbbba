"""The top-level sections of ``docker-compose.yaml`` besides ``services``: named
volumes, the default network, file secrets, inline configs, and the ``x-parity``
extension recording what compose cannot apply."""

from __future__ import annotations

import posixpath
from typing import Any

from ...model import Service, Stack
from ...nodes import ListKey
from .. import RenderContext
from .common import config_name, error, labels, secret_name, volume_name


def volumes(stack: Stack) -> dict[str, Any]:
    # Labels that never change for a volume's life: compose compares a volume's
    # labels with the file and offers to recreate it (losing its data) on any change.
    out: dict[str, Any] = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for s in svc.storage:
            name = volume_name(svc.name, s.name)
            _unique(out, name, svc, ("storage", ListKey(s.name)), "volume")
            out[name] = {"labels": labels(stack, svc.name, svc.phase)}
    return dict(sorted(out.items()))


def not_applied(stack: Stack) -> dict[str, Any]:
    """Placement compose has no field for (a named volume has neither size nor
    class), recorded in the file rather than dropped. It sits in a top-level
    extension so that a change to it does not alter the volume itself."""
    volumes = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for s in svc.storage:
            entry = {"size": s.size}
            if s.storage_class:
                entry["storage_class"] = s.storage_class
            volumes[volume_name(svc.name, s.name)] = entry
    return {"not_applied": {"volumes": dict(sorted(volumes.items()))}} if volumes else {}


def _unique(seen: dict, name: str, svc: Service, field: tuple, what: str) -> None:
    if name in seen:
        raise error(svc, field, f"compose {what} name '{name}' is also produced by "
                    "another service", "rename the service or the item")


def networks(stack: Stack) -> dict[str, Any]:
    # Phase 1 for every phase: a label change would make compose recreate the
    # network (and every container on it) when moving between phases.
    return {"default": {"labels": labels(stack, phase=1)}}


def secrets(stack: Stack, ctx: RenderContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for svc in stack.services.values():
        for sf in svc.secret_files:
            out[secret_name(sf.secret, sf.key)] = {
                "file": posixpath.join(ctx.state_rel, "secrets", sf.secret, sf.key),
                "labels": labels(stack)}
    return dict(sorted(out.items()))


def configs(stack: Stack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for f in svc.files:
            name = config_name(svc.name, f.name)
            _unique(out, name, svc, ("files", ListKey(f.name)), "config")
            # inline content: compose copies it into the container with the
            # mount's mode (a file: config would be a bind mount with host modes)
            out[name] = {"content": stack.resolve(f.content),
                         "labels": labels(stack, svc.name, svc.phase)}
    return dict(sorted(out.items()))
