"""How traffic reaches a service in kind: its ClusterIP Service (and a StatefulSet's
headless governing Service), the Gateway with the http-to-https redirect, and one
HTTPRoute (``routing: gateway``) or Ingress (``routing: ingress``) per route."""

from __future__ import annotations

from ...model import Service
from ..names import (EDGE_TLS_SECRET, GATEWAY_CLASS, GATEWAY_NAME, HTTPS_HOST_LISTENER,
                     REDIRECT_ROUTE)
from .base import Renderer

#: The apiVersion of the Gateway API objects parity writes (Gateway, HTTPRoute).
GATEWAY_API_GROUP_VERSION = "gateway.networking.k8s.io/v1"
HEADLESS_SUFFIX = "-headless"


def gateway(r: Renderer, edge: Service) -> list[dict]:
    st = r.stack

    def same_ns() -> dict:  # a fresh dict each time: a shared one dumps as a YAML alias
        return {"namespaces": {"from": "Same"}}

    def https(name: str, port: int) -> dict:
        return {"name": name, "protocol": "HTTPS", "port": port,
                "hostname": f"*.{st.domain}",
                "tls": {"mode": "Terminate", "certificateRefs": [
                    {"kind": "Secret", "name": EDGE_TLS_SECRET}]},
                "allowedRoutes": same_ns()}

    listeners = [{"name": "http", "protocol": "HTTP", "port": 80,
                  "allowedRoutes": same_ns()}, https("https", 443)]
    # A moved https port is part of every browser URL (the OIDC issuer
    # included), and pods reach those URLs through the CoreDNS rewrite: the
    # Gateway must answer on that port inside the cluster too, as the compose
    # edge does inside its network.
    if st.https_port != 443:  # never 80: the model refuses that
        listeners.append(https(HTTPS_HOST_LISTENER, st.https_port))
    gw = {"apiVersion": GATEWAY_API_GROUP_VERSION, "kind": "Gateway",
          "metadata": r.meta(GATEWAY_NAME, edge.phase, edge.name),
          "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners}}
    # The browser-facing https port is the host port, not the listener's 443.
    redirect = {"apiVersion": GATEWAY_API_GROUP_VERSION, "kind": "HTTPRoute",
                "metadata": r.meta(REDIRECT_ROUTE, edge.phase, edge.name),
                "spec": {"parentRefs": [{"name": GATEWAY_NAME, "sectionName": "http"}],
                         "rules": [{"filters": [{
                             "type": "RequestRedirect",
                             "requestRedirect": {"scheme": "https",
                                                 "port": st.https_port,
                                                 "statusCode": 301}}]}]}}
    return [gw, redirect]


def k8s_service(r: Renderer, svc: Service, headless: bool = False) -> dict:
    ports = []
    for p in svc.ports:
        port = {"name": p.name, "port": p.port, "targetPort": p.name,
                "protocol": "UDP" if p.protocol == "udp" else "TCP"}
        # appProtocol tells the edge how to speak to the backend; gRPC is
        # cleartext HTTP/2, whose standard name is kubernetes.io/h2c (GEP-1911).
        if p.protocol == "http":
            port["appProtocol"] = "http"
        elif p.protocol == "grpc":
            port["appProtocol"] = "kubernetes.io/h2c"
        ports.append(port)
    spec: dict = {}
    if headless:
        # publishNotReadyAddresses: peers of a StatefulSet find each other by
        # DNS before they are ready (the governing Service's purpose).
        spec = {"clusterIP": "None", "publishNotReadyAddresses": True}
    else:
        spec = {"type": "ClusterIP"}
    spec["selector"] = r.selector(svc.name)
    if ports:
        spec["ports"] = ports
    name = svc.name + (HEADLESS_SUFFIX if headless else "")
    if len(name) > 63:
        r.error(f"services.{svc.name}", f"the governing Service name '{name}' is "
                "longer than 63 characters", "shorten the service name")
    return {"apiVersion": "v1", "kind": "Service",
            "metadata": r.meta(name, svc.phase, svc.name), "spec": spec}


def _https_sections(r: Renderer) -> list[str]:
    """The Gateway listeners a route attaches to: 443, and the moved browser port."""
    return ["https"] if r.stack.https_port == 443 else ["https", HTTPS_HOST_LISTENER]


def http_route(r: Renderer, svc: Service, route) -> dict:
    return {"apiVersion": GATEWAY_API_GROUP_VERSION, "kind": "HTTPRoute",
            "metadata": r.meta(route.name, svc.phase, svc.name),
            "spec": {
                "parentRefs": [{"name": GATEWAY_NAME, "sectionName": section}
                               for section in _https_sections(r)],
                "hostnames": [f"{route.host}.{r.stack.domain}"],
                "rules": [{
                    "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                    "backendRefs": [{"name": svc.name,
                                     "port": svc.port(route.port).port}],
                }]}}


def ingress(r: Renderer, svc: Service, route) -> dict:
    host = f"{route.host}.{r.stack.domain}"
    return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
            "metadata": r.meta(route.name, svc.phase, svc.name),
            "spec": {
                "ingressClassName": GATEWAY_CLASS,
                "tls": [{"hosts": [host], "secretName": EDGE_TLS_SECRET}],
                "rules": [{"host": host, "http": {"paths": [{
                    "path": route.path, "pathType": "Prefix",
                    "backend": {"service": {"name": svc.name, "port": {
                        "number": svc.port(route.port).port}}},
                }]}}]}}
