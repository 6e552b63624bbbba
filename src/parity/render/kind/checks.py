"""What kind cannot represent, found before anything is rendered for it: names
Kubernetes refuses, an edge with routes or storage, a job with replicas, a
non-numeric user, a route path Gateway API and Ingress do not accept."""

from __future__ import annotations

import re

from ...model import Service
from .base import Renderer

#: A StatefulSet's pods carry ``controller-revision-hash: <name>-<10 chars>``, a
#: label value limited to 63 characters.
MAX_STATEFUL_NAME = 52

_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_GATEWAY_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")


def check_edge(r: Renderer, edge: Service) -> None:
    base = f"services.{edge.name}"
    if edge.routes:
        r.error(f"{base}.routes", "kind replaces the edge with a Gateway, so a route "
                "cannot point at the edge service itself", "route to a service "
                "behind the edge")
    if edge.storage:
        r.error(f"{base}.storage", "kind replaces the edge with a Gateway, which "
                "has no storage", "remove the edge's storage")


def check_names(r: Renderer, svc: Service) -> None:
    base = f"services.{svc.name}"
    needs_service = bool(svc.ports) or svc.workload == "stateful"
    if needs_service and not svc.name[0].isalpha():
        r.error(base, f"'{svc.name}' does not start with a letter; a Kubernetes "
                "Service name must (DNS-1035)", "rename the service")
    if svc.workload == "stateful" and len(svc.name) > MAX_STATEFUL_NAME:
        r.error(base, f"'{svc.name}' is {len(svc.name)} characters; a StatefulSet "
                f"name may have at most {MAX_STATEFUL_NAME}", "shorten the name")
    for p in svc.ports:
        if not re.search("[a-z]", p.name) or "--" in p.name \
                or not _IANA_SVC_NAME.fullmatch(p.name):
            r.error(f"{base}.ports[{p.name}].name", f"'{p.name}' is not a valid "
                    "Kubernetes port name (it needs a letter, and no '--')",
                    "rename the port, e.g. 'http'")
    if svc.workload == "job" and svc.replicas != 1:
        r.error(f"{base}.replicas", f"a job runs once; replicas {svc.replicas} "
                "cannot be represented", "remove replicas")
    if svc.user is not None and not re.fullmatch(r"\d+(:\d+)?", svc.user):
        r.error(f"{base}.user", f"'{svc.user}' is not a numeric UID[:GID]; "
                "Kubernetes runs containers by number only", "use e.g. '999:999'")
    for route in svc.routes:
        bad = [s for s in ("//", "/./", "/../", "%2f", "%2F", "#") if s in route.path]
        if bad or route.path.endswith(("/..", "/.")) \
                or not _GATEWAY_PATH.fullmatch(route.path):
            r.error(f"{base}.routes[{route.name}].path", f"'{route.path}' is not a path "
                    "Gateway API and Ingress accept", "use a plain absolute path")
