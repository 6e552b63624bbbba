"""``manifests.yaml`` in its order: the Namespace, the (empty) Secrets, the coredns
ConfigMap, the edge's Gateway, then per service its ConfigMaps, PVCs, Services,
workload and routes (see :mod:`parity.render.kind`)."""

from __future__ import annotations

import hashlib
import json

from ...model import SecretRef, Service
from ..names import ANNOTATION_SECRET_KEYS, REDIRECT_ROUTE
from .base import Renderer
from .checks import check_edge, check_names
from .cluster import coredns
from .network import gateway, ingress, http_route, k8s_service
from .workloads import claim_spec, workload


def _env_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _digest(data) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


def manifests(r: Renderer) -> list[dict]:
    st = r.stack
    docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                         "metadata": r.meta(st.namespace, 1, namespace=None)}]
    services = [s for name, s in sorted(st.services.items()) if s.role != "edge"]
    docs += _secrets(r, services)
    docs.append(coredns(r))
    edge = st.edge()
    if edge is not None:
        check_edge(r, edge)
        if st.routing == "gateway":
            docs += gateway(r, edge)
    route_names = {REDIRECT_ROUTE} if st.routing == "gateway" else set()
    for svc in services:
        docs += _service_docs(r, svc, route_names)
    return docs


def _secrets(r: Renderer, services: list[Service]) -> list[dict]:
    users: dict[str, int] = {}
    for svc in services:
        refs = [v.secret for _, v in svc.env if isinstance(v, SecretRef)]
        refs += [f.secret for f in svc.secret_files]
        for name in refs:
            users[name] = min(users.get(name, svc.phase), svc.phase)
    out = []
    for name in sorted(users):
        keys = ",".join(sorted(k.name for k in r.stack.secrets[name].keys))
        out.append({"apiVersion": "v1", "kind": "Secret",
                    "metadata": r.meta(name, users[name],
                                       annotations={ANNOTATION_SECRET_KEYS: keys}),
                    "type": "Opaque"})
    return out


def _service_docs(r: Renderer, svc: Service, route_names: set[str]) -> list[dict]:
    check_names(r, svc)
    st = r.stack
    docs: list[dict] = []
    env_data = {k: r.resolve(v) if isinstance(v, str) else _env_text(v)
                for k, v in svc.env if not isinstance(v, SecretRef)}
    env_data = dict(sorted(env_data.items()))
    files_data = {f.name: r.resolve(f.content) for f in svc.files}
    if env_data:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": r.meta(f"{svc.name}-env", svc.phase, svc.name),
                     "data": env_data})
    if files_data:
        docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                     "metadata": r.meta(f"{svc.name}-files", svc.phase, svc.name),
                     "data": files_data})
    if svc.workload != "stateful":
        for s in svc.storage:
            docs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                         "metadata": r.meta(f"{svc.name}-{s.name}", svc.phase,
                                            svc.name),
                         "spec": claim_spec(s)})
    if svc.workload == "stateful":
        docs.append(k8s_service(r, svc, headless=True))
    if svc.ports:
        docs.append(k8s_service(r, svc))
    config_hash = _digest({"env": env_data, "files": files_data}) \
        if env_data or files_data else None
    docs.append(workload(r, svc, bool(env_data), config_hash))
    for route in svc.routes:
        if route.name in route_names:
            r.error(f"services.{svc.name}.routes[{route.name}]", f"route name "
                    f"'{route.name}' is reserved in kind", "rename the route")
        route_names.add(route.name)
        docs.append(http_route(r, svc, route) if st.routing == "gateway"
                    else ingress(r, svc, route))
    return docs
