"""Resource rules: requests and limits (units, limits below requests, requests no
kind node can satisfy)."""

from __future__ import annotations

import os
from pathlib import Path

from ..model.schema import quantity as exact_quantity
from .base import Ctx, rule


def quantity(text: str) -> float:
    """A quantity in base units (cores, bytes); NaN when it is not one (the schema
    refuses those first)."""
    try:
        return float(exact_quantity(text))
    except ValueError:
        return float("nan")


@rule("resource-units", "a resource quantity in a unit nobody means")
def resource_units(c: Ctx):
    for name, svc in c.services.items():
        res = svc.get("resources") or {}
        for part in ("requests", "limits"):
            mem = (res.get(part) or {}).get("memory")
            if mem is None:
                continue
            path = ("services", name, "resources", part, "memory")
            if str(mem).endswith("m"):
                yield path, (f"memory '{mem}' is in millibytes (m), a thousandth of a "
                             "byte"), f"write {str(mem)[:-1]}Mi (mebibytes) or {str(mem)[:-1]}M"
            elif quantity(mem) < 4 * 1024 ** 2:
                yield path, (f"memory '{mem}' is under 4 MiB: no container starts in it "
                             "(a unit is missing?)"), "write the unit: Mi or Gi"


@rule("limits-below-requests", "a resource limit below its request", modes=("kind",))
def limits_below_requests(c: Ctx):
    for name, svc in c.services.items():
        res = svc.get("resources") or {}
        for r, req in (res.get("requests") or {}).items():
            lim = (res.get("limits") or {}).get(r)
            if lim is not None and quantity(lim) < quantity(req):
                yield ("services", name, "resources", "limits", r), (
                    f"the {r} limit {lim} is below the request {req}: the API server "
                    "refuses the pod"), \
                    f"raise limits.{r} to at least {req}, or lower requests.{r}"


def machine() -> tuple[float, float]:
    """CPUs and bytes of memory of this machine (the kind node runs here)."""
    mem = float("inf")
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = float(line.split()[1]) * 1024
    except OSError:
        pass
    return float(os.cpu_count() or 1), mem


@rule("requests-exceed-node", "requests no kind node can satisfy", modes=("kind",))
def requests_exceed_node(c: Ctx):
    cpus, mem = machine()
    for name, svc in c.services.items():
        req = (svc.get("resources") or {}).get("requests") or {}
        reps = max(1, svc.get("replicas") or 1)
        for r, cap, shown in (("cpu", cpus, f"{cpus:g} CPUs"),
                              ("memory", mem, f"{mem / 1024 ** 3:.1f} GiB")):
            if r in req and quantity(req[r]) > cap:
                yield ("services", name, "resources", "requests", r), (
                    f"{name} requests {r} {req[r]} per replica ({reps}), more than the "
                    f"kind node has ({shown} on this machine): the pod stays Pending"), \
                    f"lower requests.{r} (cpu in cores or millicores: 500m is half a core)"
