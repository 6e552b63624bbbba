"""The cluster itself: ``kind-config.yaml`` (one control-plane node mapping the host's
http/https ports to the edge controller's node ports) and the adopted ``coredns``
ConfigMap that sends every ``*.<domain>`` name to the edge."""

from __future__ import annotations

import ipaddress

from ..names import (ANNOTATION_ADOPTED, EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS,
                     EDGE_PROXY_SERVICE, KIND_DATA_HOST_DIR, KIND_DATA_NODE_DIR, LABEL_MANAGED,
                     LABEL_STACK)
from .base import Renderer

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"

#: kubeadm's default Corefile (cmd/kubeadm/app/phases/addons/dns/manifests.go,
#: Kubernetes 1.32+, what current kind node images run). Kubernetes 1.31 ships the
#: same without the ``cache`` block (kubernetes/kubernetes#128359); the block is
#: valid on 1.31's CoreDNS 1.11 too. ``{rewrite}`` is parity's one addition.
COREFILE = """\
.:53 {{
    errors
    health {{
       lameduck 5s
    }}
    ready
    {rewrite}
    kubernetes cluster.local in-addr.arpa ip6.arpa {{
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }}
    prometheus :9153
    forward . /etc/resolv.conf {{
       max_concurrent 1000
    }}
    cache 30 {{
       disable success cluster.local
       disable denial cluster.local
    }}
    loop
    reload
    loadbalance
}}
"""


def cluster_config(r: Renderer) -> dict:
    st = r.stack
    try:
        ipaddress.ip_address(st.edge_bind)
    except ValueError:
        r.error("stack.edge.bind", f"'{st.edge_bind}' is not an IP address, which "
                "kind's extraPortMappings.listenAddress needs", "use 127.0.0.1")

    def mapping(host_port: int, node_port: int) -> dict:
        return {"containerPort": node_port, "hostPort": host_port,
                "listenAddress": st.edge_bind, "protocol": "TCP"}

    return {
        "kind": "Cluster",
        "apiVersion": KIND_API_VERSION,
        "name": f"parity-{st.name}",
        "nodes": [{
            "role": "control-plane",
            "image": st.kind_node.image,
            "labels": {"ingress-ready": "true", "parity.dev/edge": "true",
                       LABEL_MANAGED: "true", LABEL_STACK: st.name},
            "extraPortMappings": [mapping(st.http_port, EDGE_NODEPORT_HTTP),
                                  mapping(st.https_port, EDGE_NODEPORT_HTTPS)],
            "extraMounts": [{"hostPath": KIND_DATA_HOST_DIR,
                             "containerPath": KIND_DATA_NODE_DIR}],
        }],
    }


def coredns(r: Renderer) -> dict:
    domain = r.stack.domain.replace(".", r"\.")
    # Anchored on the absolute name: a search-path query such as
    # auth.<domain>.parity.svc.cluster.local must stay NXDOMAIN, not hit the edge.
    rewrite = (f"rewrite name regex ^(.+)\\.{domain}\\.$ {EDGE_PROXY_SERVICE} "
               "answer auto")
    return {"apiVersion": "v1", "kind": "ConfigMap",
            "metadata": r.meta("coredns", 1, namespace="kube-system",
                               annotations={ANNOTATION_ADOPTED: "true"}),
            "data": {"Corefile": COREFILE.format(rewrite=rewrite)}}
