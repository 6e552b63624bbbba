"""Replicas and resources as compose ``deploy``: Kubernetes quantities converted
exactly (nano-CPUs, binary memory units), requests as reservations."""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from ...model import Service, schema
from .common import error


# --------------------------------------------------------------------------- placement

_RESOURCE_SECTIONS = {"limits": "limits", "requests": "reservations"}


def deploy_spec(svc: Service) -> dict[str, Any]:
    """Replicas and resources: K8s requests are compose reservations."""
    out: dict[str, Any] = {}
    if svc.replicas != 1:
        if svc.role == "edge":
            raise error(svc, ("replicas",), f"compose publishes the edge's host ports "
                        f"from one container; {svc.replicas} replicas cannot share them",
                        "keep the edge at replicas: 1 in compose")
        out["replicas"] = svc.replicas
    resources = {}
    for section, values in sorted((svc.resources or {}).items(),
                                  key=lambda kv: (kv[0] != "limits", kv[0])):
        if section not in _RESOURCE_SECTIONS:
            raise error(svc, ("resources", section), f"compose has no resources "
                        f"'{section}'", "use limits or requests")
        converted = {}
        for field, value in sorted((values or {}).items()):
            fpath = ("resources", section, field)
            if field == "cpu":
                converted["cpus"] = _cpus(svc, fpath, str(value))
            elif field == "memory":
                converted["memory"] = _memory(svc, fpath, str(value))
            else:
                raise error(svc, fpath, f"compose has no resource '{field}'",
                            "use cpu or memory")
        if converted:
            resources[_RESOURCE_SECTIONS[section]] = converted
    if resources:
        out["resources"] = resources
    return out


def _quantity(svc: Service, fpath: tuple, text: str) -> Decimal:
    """A Kubernetes quantity as an exact number."""
    try:
        return schema.quantity(text)
    except ValueError:
        raise error(svc, fpath, f"'{text}' is not a quantity",
                    "write e.g. 500m or 2 (cpu), 512Mi or 1Gi (memory)") from None


def _cpus(svc: Service, fpath: tuple, text: str) -> str:
    cores = _quantity(svc, fpath, text)
    if cores * 10**9 != int(cores * 10**9):  # docker counts nano-CPUs
        raise error(svc, fpath, f"cpu '{text}' is finer than the nano-CPU docker counts",
                    "round it to at most 9 decimal places")
    return format(cores.normalize(), "f")


def _memory(svc: Service, fpath: tuple, text: str) -> str:
    """Bytes, in compose's binary units (compose reads M as MiB) where exact."""
    size = _quantity(svc, fpath, text)
    if size != int(size):
        raise error(svc, fpath, f"memory '{text}' is not a whole number of bytes "
                    "(in a Kubernetes quantity 'm' means milli)",
                    f"write {text[:-1]}Mi for mebibytes" if text.endswith("m")
                    else "give a whole number of bytes")
    n = int(size)
    for unit, factor in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)
