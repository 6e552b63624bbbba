"""The names parity gives what it creates: labels, annotations, and the edge's and
the kind lane's well-known objects. Renderers write them, lanes select on them,
lint checks them; this module is the one place they are spelled.
"""

from __future__ import annotations

#: Labels every object parity creates carries; down/reset/prune select on them.
LABEL_MANAGED = "parity.dev/managed"        # "true"
LABEL_STACK = "parity.dev/stack"            # stack name
LABEL_SERVICE = "parity.dev/service"        # service name
LABEL_PHASE = "parity.dev/phase"            # phase the service starts in
LABEL_COMPONENT = "app.kubernetes.io/name"  # service name (K8s convention)
LABEL_PART_OF = "app.kubernetes.io/part-of"  # stack name
LABEL_MANAGED_BY = "app.kubernetes.io/managed-by"  # "parity"

#: Annotations of the kind render, read back by the kind lane and by lint.
ANNOTATION_DEPENDS_ON = "parity.dev/depends-on"
ANNOTATION_WAVE = "parity.dev/wave"
ANNOTATION_SECRET_KEYS = "parity.dev/secret-keys"
ANNOTATION_CONFIG_HASH = "parity.dev/config-hash"
ANNOTATION_ADOPTED = "parity.dev/adopted"

#: The edge controller (Traefik) in the kind lane: its namespace, Service and
#: Deployment, the node ports kind-config.yaml maps, its GatewayClass.
EDGE_NAMESPACE = "parity-system"
EDGE_SERVICE = "parity-edge"
EDGE_DEPLOYMENT = "parity-edge"
EDGE_PROXY_SERVICE = f"{EDGE_SERVICE}.{EDGE_NAMESPACE}.svc.cluster.local"
EDGE_NODEPORT_HTTP = 30080
EDGE_NODEPORT_HTTPS = 30443
GATEWAY_CLASS = "parity-edge"
CONTROLLER_NAME = "traefik.io/gateway-controller"

#: The stack's Gateway, its objects the kind driver provides, and their keys.
GATEWAY_NAME = "edge"
HTTPS_HOST_LISTENER = "https-host"   # the listener on a moved browser https port
REDIRECT_ROUTE = "edge-https-redirect"
EDGE_TLS_SECRET = "parity-edge-tls"
LOCAL_CA_CONFIGMAP = "parity-local-ca"
LOCAL_CA_KEY = "ca.crt"
#: Objects referenced by the render but created by the kind driver.
DRIVER_PROVIDED = frozenset({("ConfigMap", LOCAL_CA_CONFIGMAP), ("Secret", EDGE_TLS_SECRET),
                             ("GatewayClass", GATEWAY_CLASS)})

#: Where the kind lane keeps its data, relative to the checkout (kind resolves a
#: relative hostPath against its working directory, which parity sets to the
#: checkout), and where the node sees it: local-path-provisioner's storage path.
#: The directory outlives the cluster, so ``inv down`` keeps the data (decision 0016).
KIND_DATA_HOST_DIR = ".parity/data/kind"
KIND_DATA_NODE_DIR = "/var/local-path-provisioner"
