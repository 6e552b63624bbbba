"""The kind renderer: a :class:`~parity.model.Stack` (mode ``kind``) to
``kind-config.yaml`` (kind ``v1alpha4``), ``manifests.yaml`` (multi-document) and
``edge.yaml`` (the edge controller, :mod:`parity.render.edge`).

This module owns what the kind lane's objects look like: their names, labels,
annotations and order. It does not touch a cluster; the kind driver applies the
output. Pure: equal stacks give byte-identical text.

**kind-config.yaml.** One control-plane node of image ``stack.kind.node.image``
(the image profile decides it: upstream ``kindest/node`` by digest, or parity's
offline node image), labelled ``ingress-ready`` and ``parity.dev/edge`` (plus
parity's own labels, so the driver can tell its node from any other cluster's),
with ``extraPortMappings`` from ``stack.edge_bind`` (loopback, never 0.0.0.0): host
``http_port`` -> node port :data:`EDGE_NODEPORT_HTTP` and host ``https_port`` ->
:data:`EDGE_NODEPORT_HTTPS`. The edge controller of ``edge.yaml`` exposes its proxy
as a NodePort Service on exactly those two node ports; that is the contract between
the two files.

**manifests.yaml**, in this order:

1. the ``Namespace``;
2. one ``Secret`` (``Opaque``) per model secret that an enabled service uses, with
   **no data**: values never appear in rendered output. The annotation
   ``parity.dev/secret-keys`` lists the keys; the driver fills the values from
   ``.parity/secrets`` at apply time and the lint checks references against it;
3. the ``coredns`` ConfigMap in ``kube-system``: kubeadm's default Corefile plus a
   rewrite of every ``*.<domain>`` name to :data:`EDGE_PROXY_SERVICE`, so a pod
   that calls ``https://auth.<domain>`` reaches the edge exactly as a browser does
   (one OIDC issuer for both). It replaces an object the cluster created, so it is
   annotated ``parity.dev/adopted: "true"``: ``down`` must not delete it, and the
   driver must apply it with conflicts forced (kubeadm owns the field);
4. the edge: a Gateway API ``Gateway`` (class :data:`GATEWAY_CLASS`) and an
   ``HTTPRoute`` redirecting http to https. The ``role: edge`` service itself is
   not rendered as a workload: the edge controller replaces its container, so its
   image, ports, env, files and readiness describe the compose proxy only
   (transport). Its ``routes`` and ``storage`` cannot be represented and are errors;
5. per service, sorted by name: ``ConfigMap <svc>-env`` (non-secret env, resolved),
   ``ConfigMap <svc>-files``, PVCs (stateless services with storage), Services
   (a headless ``<svc>-headless`` governing Service for StatefulSets, a ClusterIP
   ``<svc>`` for any service with ports), the workload (``Deployment`` /
   ``StatefulSet`` / ``Job``) and one ``HTTPRoute`` (``routing: gateway``) or
   ``Ingress`` (``routing: ingress``) per route.

**Provided by the driver, deliberately not rendered** (:data:`DRIVER_PROVIDED`; the
lint knows them): the ``ConfigMap`` :data:`LOCAL_CA_CONFIGMAP` (key ``ca.crt``,
mounted at each ``ca_bundle`` path) and the TLS ``Secret`` :data:`EDGE_TLS_SECRET`,
both made from the local CA; the ``GatewayClass`` :data:`GATEWAY_CLASS` and the
controller behind it (``edge.yaml``, applied before ``manifests.yaml``). A ``kubernetes.io/tls`` Secret without ``tls.crt``/``tls.key``
is rejected by the API server, so unlike Opaque secrets it cannot be rendered
empty and filled later.

**Ordering.** Every object a service owns is annotated ``parity.dev/wave: "N"``, its
index in :meth:`Stack.order`; workloads also carry ``parity.dev/depends-on``. The
driver applies the stack-level objects (no wave) first, then wave by wave, waiting
for readiness in between. No initContainers: compose has no equivalent, and one
ordering mechanism (the driver's waves) is easier to reason about than two.

**Fidelity rules** (each one removes a difference from compose):

- ``enableServiceLinks: false``: Kubernetes would otherwise inject
  ``<SERVICE>_PORT=tcp://...`` variables into every pod (a Service named
  ``temporal`` sets ``TEMPORAL_PORT``, which Temporal reads): hidden env.
- ``automountServiceAccountToken: false``: no workload of the stack talks to the
  API server; a token would be an input compose does not give.
- ``$`` in ``command``/``args`` is escaped where Kubernetes would expand it
  (``$(`` and ``$$``), so the container gets the model's text. Env values travel
  through ConfigMaps (``envFrom``), which Kubernetes does not expand.
- ``imagePullPolicy: IfNotPresent`` everywhere: images are loaded into the node
  (docs/decisions/0001), and no registry is reachable.
- A Job runs once (``backoffLimit`` :data:`JOB_BACKOFF_LIMIT`, as compose's
  ``restart: "no"``): a retry in kind would hide a failure that compose shows.
- Pod templates carry ``parity.dev/config-hash`` of their service's ConfigMaps, so a
  config change rolls the pods, as compose recreates a container whose config
  changed (a ConfigMap change alone restarts nothing).

Anything the model holds that kind cannot represent raises
:class:`~parity.errors.InputError` naming ``services.<name>.<field>``.

The package, by part: :mod:`.manifests` (the order of ``manifests.yaml``),
:mod:`.cluster` (``kind-config.yaml``, CoreDNS), :mod:`.checks` (what kind refuses),
:mod:`.network` (Services, Gateway, routes), :mod:`.workloads` (workloads, volumes,
containers) and :mod:`.base` (the :class:`~.base.Renderer` state, labels, metadata,
collected errors). Every label, annotation and edge name is in
:mod:`parity.render.names`.
"""

from __future__ import annotations

from ...model import Stack
from ...yamlio import dump_all
from .. import RenderContext
from ..edge import edge_docs
# Re-exported for the tests of this renderer; new code imports them from ..names.
from ..names import (ANNOTATION_ADOPTED, ANNOTATION_CONFIG_HASH, ANNOTATION_DEPENDS_ON,
                     ANNOTATION_SECRET_KEYS, ANNOTATION_WAVE, DRIVER_PROVIDED,
                     EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS, EDGE_PROXY_SERVICE,
                     EDGE_TLS_SECRET, GATEWAY_CLASS, GATEWAY_NAME, HTTPS_HOST_LISTENER,
                     KIND_DATA_HOST_DIR, KIND_DATA_NODE_DIR, LABEL_COMPONENT, LABEL_MANAGED,
                     LABEL_MANAGED_BY, LABEL_PART_OF, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK,
                     LOCAL_CA_CONFIGMAP, LOCAL_CA_KEY, REDIRECT_ROUTE)
from .base import Renderer
from .cluster import KIND_API_VERSION, cluster_config
from .manifests import manifests
from .network import GATEWAY_API_GROUP_VERSION
from .workloads import escape_k8s

__all__ = ["GATEWAY_API_GROUP_VERSION", "KIND_API_VERSION", "escape_k8s", "manifest_docs",
           "render_kind", "ANNOTATION_ADOPTED", "ANNOTATION_CONFIG_HASH",
           "ANNOTATION_DEPENDS_ON", "ANNOTATION_SECRET_KEYS", "ANNOTATION_WAVE",
           "DRIVER_PROVIDED", "EDGE_NODEPORT_HTTP", "EDGE_NODEPORT_HTTPS",
           "EDGE_PROXY_SERVICE", "EDGE_TLS_SECRET", "GATEWAY_CLASS", "GATEWAY_NAME",
           "HTTPS_HOST_LISTENER", "KIND_DATA_HOST_DIR", "KIND_DATA_NODE_DIR",
           "LABEL_COMPONENT", "LABEL_MANAGED", "LABEL_MANAGED_BY", "LABEL_PART_OF",
           "LABEL_PHASE", "LABEL_SERVICE", "LABEL_STACK", "LOCAL_CA_CONFIGMAP", "LOCAL_CA_KEY",
           "REDIRECT_ROUTE"]


# --------------------------------------------------------------------------- entry

def render_kind(stack: Stack, ctx: RenderContext) -> dict[str, str]:
    """``{"kind-config.yaml": ..., "manifests.yaml": ..., "edge.yaml": ...}`` for
    ``stack`` (``edge.yaml``: the edge controller, :mod:`parity.render.edge`).

    ``ctx`` is accepted for the common renderer signature; nothing in the kind
    output refers to a path."""
    del ctx
    r = Renderer(stack)
    config = cluster_config(r)
    docs = manifests(r)
    r.raise_errors()
    return {"kind-config.yaml": dump_all([config]), "manifests.yaml": dump_all(docs),
            "edge.yaml": dump_all(edge_docs(stack))}


def manifest_docs(stack: Stack) -> list[dict]:
    """The documents of ``manifests.yaml`` as plain data (for the lint and the driver)."""
    r = Renderer(stack)
    docs = manifests(r)
    r.raise_errors()
    return docs
