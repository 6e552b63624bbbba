"""The kind lane's edge controller: ``edge.yaml``, the Gateway API implementation
that realises the ``role: edge`` service in kind (docs/decisions/0012).

The controller is Traefik (``stack.kind.edge.image``; the offline profile builds it
from source), run as one Deployment in :data:`EDGE_NAMESPACE` and exposed by the
NodePort Service :data:`EDGE_SERVICE` on exactly the node ports that
``kind-config.yaml`` maps to ``127.0.0.1:80/443`` (:data:`EDGE_NODEPORT_HTTP`,
:data:`EDGE_NODEPORT_HTTPS`). The same Service is where CoreDNS sends every
``*.<domain>`` name, so pods reach browser URLs through the same edge.

Traefik maps a Gateway listener to the entry point that listens on the listener's
port, so the entry points are the Gateway's listener ports: ``web`` :80 (http),
``websecure`` :443 and, when the browser-facing https port moved, ``websecure-host``
on that port (the ``https-host`` listener). ``ping`` answers readiness on
:data:`PING_PORT`. The controller watches only the stack's namespace, reports
``stack.edge.bind`` as the Gateway's address, and never calls home.

The Gateway API CRDs it serves are vendored byte for byte with their SHA-256 sums
(``schemas/gateway-api-v1.4.0/crds``, :func:`gateway_api_crds`) and applied by the
driver before this file. Pure, like every renderer.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..errors import CheckFailed
from ..model import Stack
from .names import (CONTROLLER_NAME, EDGE_DEPLOYMENT, EDGE_NAMESPACE,  # noqa: F401  (re-exported)
                    EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS, EDGE_PROXY_SERVICE, EDGE_SERVICE,
                    GATEWAY_CLASS, LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_STACK)

PING_PORT = 9000
#: Gateway API CRDs this controller version implements (its docs: "Standard v1.4.0").
GATEWAY_API_VERSION = "v1.4.0"
CRD_DIR = Path(__file__).resolve().parent.parent / "schemas" / \
    f"gateway-api-{GATEWAY_API_VERSION}" / "crds"


def gateway_api_crds() -> tuple[list[tuple[str, bytes]], str]:
    """The vendored standard-channel CRDs as (file name, bytes), each checked against
    ``SHA256SUMS``, and one digest over all of them (what the driver records)."""
    sums = {}
    for line in (CRD_DIR / "SHA256SUMS").read_text(encoding="utf-8").splitlines():
        if line and not line.startswith("#"):
            digest, name = line.split()
            sums[name] = digest
    out = []
    for name in sorted(sums):
        raw = (CRD_DIR / name).read_bytes()
        if hashlib.sha256(raw).hexdigest() != sums[name]:
            raise CheckFailed(f"{CRD_DIR / name} does not match its pinned SHA-256",
                              hint="restore it: git checkout -- src/parity/schemas "
                                   "(or regenerate with schemas/vendor_gateway_api.py)")
        out.append((name, raw))
    whole = hashlib.sha256("".join(f"{sums[n]}  {n}\n" for n in sorted(sums)).encode())
    return out, whole.hexdigest()


def _meta(stack: Stack, name: str, namespace: str | None = EDGE_NAMESPACE) -> dict:
    out: dict = {"name": name}
    if namespace:
        out["namespace"] = namespace
    out["labels"] = dict(sorted({"app.kubernetes.io/component": "edge",
                                 "app.kubernetes.io/name": EDGE_DEPLOYMENT,
                                 LABEL_MANAGED_BY: "parity", LABEL_MANAGED: "true",
                                 LABEL_STACK: stack.name}.items()))
    return out


def entry_points(stack: Stack) -> list[tuple[str, int]]:
    """(name, port) of Traefik's entry points: one per Gateway listener port."""
    out = [("web", 80), ("websecure", 443)]
    if stack.https_port != 443:
        out.append(("websecure-host", stack.https_port))
    return out


def edge_docs(stack: Stack) -> list[dict]:
    """Namespace, RBAC, the controller, its Service and the GatewayClass, in apply order."""
    selector = {"app.kubernetes.io/name": EDGE_DEPLOYMENT}
    args = ["--global.checknewversion=false", "--global.sendanonymoususage=false",
            "--log.level=INFO", "--ping=true", "--ping.entrypoint=ping",
            f"--entrypoints.ping.address=:{PING_PORT}"]
    args += [f"--entrypoints.{name}.address=:{port}" for name, port in entry_points(stack)]
    args += ["--providers.kubernetesgateway=true",
             f"--providers.kubernetesgateway.namespaces={stack.namespace}",
             f"--providers.kubernetesgateway.statusaddress.ip={stack.edge_bind}"]
    ports = [{"name": name, "containerPort": port, "protocol": "TCP"}
             for name, port in entry_points(stack)]
    ports.append({"name": "ping", "containerPort": PING_PORT, "protocol": "TCP"})
    probe = {"httpGet": {"path": "/ping", "port": "ping"}, "periodSeconds": 2,
             "timeoutSeconds": 2, "failureThreshold": 3}
    service_ports = [
        {"name": "http", "port": 80, "targetPort": "web", "nodePort": EDGE_NODEPORT_HTTP,
         "protocol": "TCP"},
        {"name": "https", "port": 443, "targetPort": "websecure",
         "nodePort": EDGE_NODEPORT_HTTPS, "protocol": "TCP"},
    ]
    if stack.https_port != 443:
        # in-cluster callers of browser URLs use the moved port (no node port needed,
        # but a NodePort Service gives every port one: pin it next to the others)
        service_ports.append({"name": "https-host", "port": stack.https_port,
                              "targetPort": "websecure-host",
                              "nodePort": EDGE_NODEPORT_HTTPS + 1, "protocol": "TCP"})
    gateway_api = ["gatewayclasses", "gateways", "httproutes", "grpcroutes",
                   "referencegrants", "backendtlspolicies"]
    return [
        {"apiVersion": "v1", "kind": "Namespace",
         "metadata": _meta(stack, EDGE_NAMESPACE, namespace=None)},
        {"apiVersion": "v1", "kind": "ServiceAccount",
         "metadata": _meta(stack, EDGE_DEPLOYMENT), "automountServiceAccountToken": True},
        # Traefik's documented RBAC for the Gateway provider
        # (docs/content/reference/dynamic-configuration/kubernetes-gateway-rbac.yml),
        # without the pod read it needs only for OpenTelemetry.
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRole",
         "metadata": _meta(stack, EDGE_DEPLOYMENT, namespace=None),
         "rules": [
             {"apiGroups": [""], "resources": ["namespaces"], "verbs": ["list", "watch"]},
             {"apiGroups": [""], "resources": ["services", "secrets", "configmaps"],
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["discovery.k8s.io"], "resources": ["endpointslices"],
              "verbs": ["list", "watch"]},
             {"apiGroups": ["gateway.networking.k8s.io"], "resources": gateway_api,
              "verbs": ["get", "list", "watch"]},
             {"apiGroups": ["gateway.networking.k8s.io"],
              "resources": [f"{r}/status" for r in gateway_api], "verbs": ["update"]},
         ]},
        {"apiVersion": "rbac.authorization.k8s.io/v1", "kind": "ClusterRoleBinding",
         "metadata": _meta(stack, EDGE_DEPLOYMENT, namespace=None),
         "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole",
                     "name": EDGE_DEPLOYMENT},
         "subjects": [{"kind": "ServiceAccount", "name": EDGE_DEPLOYMENT,
                       "namespace": EDGE_NAMESPACE}]},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": _meta(stack, EDGE_DEPLOYMENT),
         "spec": {
             "replicas": 1,
             "selector": {"matchLabels": selector},
             "strategy": {"type": "Recreate"},  # one node: the new pod needs the ports
             "template": {
                 "metadata": {"labels": {**selector, LABEL_MANAGED: "true",
                                         LABEL_STACK: stack.name}},
                 "spec": {
                     "serviceAccountName": EDGE_DEPLOYMENT,
                     "enableServiceLinks": False,
                     "nodeSelector": {"ingress-ready": "true"},
                     "tolerations": [{"key": "node-role.kubernetes.io/control-plane",
                                      "operator": "Exists", "effect": "NoSchedule"}],
                     "terminationGracePeriodSeconds": 10,
                     "containers": [{
                         "name": "traefik",
                         "image": stack.kind_edge.image,
                         "imagePullPolicy": "IfNotPresent",
                         "args": args,
                         "ports": ports,
                         "readinessProbe": probe,
                         "livenessProbe": {**probe, "failureThreshold": 10},
                         "resources": {"requests": {"cpu": "50m", "memory": "64Mi"},
                                       "limits": {"memory": "256Mi"}},
                         "securityContext": {
                             "allowPrivilegeEscalation": False,
                             "readOnlyRootFilesystem": True,
                             "capabilities": {"drop": ["ALL"],
                                              "add": ["NET_BIND_SERVICE"]},
                         },
                         "volumeMounts": [{"name": "tmp", "mountPath": "/tmp"}],
                     }],
                     "volumes": [{"name": "tmp", "emptyDir": {}}],
                 },
             },
         }},
        {"apiVersion": "v1", "kind": "Service",
         "metadata": _meta(stack, EDGE_SERVICE),
         "spec": {"type": "NodePort", "selector": selector, "ports": service_ports}},
        {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
         "metadata": _meta(stack, GATEWAY_CLASS, namespace=None),
         "spec": {"controllerName": CONTROLLER_NAME,
                  "description": "parity's kind edge: Traefik's Gateway API provider"}},
    ]
