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
"""

from __future__ import annotations

import hashlib
import ipaddress
import json
import re

from ..errors import InputError, InputErrors
from ..model import SecretRef, Service, Stack
from ..yamlio import dump_all
from . import RenderContext
from .edge import edge_docs
# Re-exported for the tests of this renderer; new code imports them from .names.
from .names import (ANNOTATION_ADOPTED, ANNOTATION_CONFIG_HASH, DRIVER_PROVIDED,  # noqa: F401
                    ANNOTATION_DEPENDS_ON, ANNOTATION_SECRET_KEYS, ANNOTATION_WAVE,
                    EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS, EDGE_PROXY_SERVICE, EDGE_TLS_SECRET,
                    GATEWAY_CLASS, GATEWAY_NAME, HTTPS_HOST_LISTENER, KIND_DATA_HOST_DIR,
                    KIND_DATA_NODE_DIR, LABEL_COMPONENT, LABEL_MANAGED, LABEL_MANAGED_BY,
                    LABEL_PART_OF, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK, LOCAL_CA_CONFIGMAP,
                    LOCAL_CA_KEY, REDIRECT_ROUTE)

KIND_API_VERSION = "kind.x-k8s.io/v1alpha4"
GATEWAY_API_VERSION = "gateway.networking.k8s.io/v1"



JOB_BACKOFF_LIMIT = 0
FILE_MODE = 0o444
SCRIPT_MODE = 0o555           # init scripts the postgres/mysql entrypoints execute
INITDB_DIR = "/docker-entrypoint-initdb.d/"
SECRET_FILE_MODE = 0o444

FILES_VOLUME = "parity-files"
CA_VOLUME = "parity-local-ca"
SECRET_VOLUME_PREFIX = "secret-"
HEADLESS_SUFFIX = "-headless"
#: A StatefulSet's pods carry ``controller-revision-hash: <name>-<10 chars>``, a
#: label value limited to 63 characters.
MAX_STATEFUL_NAME = 52

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

_IANA_SVC_NAME = re.compile(r"^[a-z0-9]([a-z0-9-]*[a-z0-9])?$")
_GATEWAY_PATH = re.compile(r"^(?:[-A-Za-z0-9/._~!$&'()*+,;=:@]|%[0-9a-fA-F]{2})+$")
_K8S_EXPANDS = re.compile(r"\$(?=[($])")


# --------------------------------------------------------------------------- entry

def render_kind(stack: Stack, ctx: RenderContext) -> dict[str, str]:
    """``{"kind-config.yaml": ..., "manifests.yaml": ..., "edge.yaml": ...}`` for
    ``stack`` (``edge.yaml``: the edge controller, :mod:`parity.render.edge`).

    ``ctx`` is accepted for the common renderer signature; nothing in the kind
    output refers to a path."""
    del ctx
    r = _Renderer(stack)
    config = r.cluster_config()
    docs = r.manifests()
    r.raise_errors()
    return {"kind-config.yaml": dump_all([config]), "manifests.yaml": dump_all(docs),
            "edge.yaml": dump_all(edge_docs(stack))}


def manifest_docs(stack: Stack) -> list[dict]:
    """The documents of ``manifests.yaml`` as plain data (for the lint and the driver)."""
    r = _Renderer(stack)
    docs = r.manifests()
    r.raise_errors()
    return docs


# --------------------------------------------------------------------------- helpers

def escape_k8s(text: str) -> str:
    """Escape ``$`` where Kubernetes would expand it in command/args: before ``(``
    (a ``$(VAR)`` reference) and before ``$`` (``$$`` collapses to ``$``)."""
    return _K8S_EXPANDS.sub("$$", text)


def _env_text(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _file_mode(path: str) -> int:
    return SCRIPT_MODE if path.startswith(INITDB_DIR) and path.endswith(".sh") else FILE_MODE


def _digest(data) -> str:
    raw = json.dumps(data, sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:16]


class _Renderer:
    def __init__(self, stack: Stack):
        self.stack = stack
        self.errors: list[InputError] = []
        self.wave = {name: i for i, wave in enumerate(stack.order()) for name in wave}
        self.resolve = stack.resolve  # reference maps built once per stack

    # ---------------------------------------------------------------- errors

    def error(self, path: str, message: str, hint: str) -> None:
        self.errors.append(InputError(message, path=path, hint=hint,
                                      layers=" -> ".join(self.stack.layers) or None))

    def raise_errors(self) -> None:
        if len(self.errors) == 1:
            raise self.errors[0]
        if self.errors:
            raise InputErrors(self.errors)

    # ---------------------------------------------------------------- metadata

    def labels(self, phase: int, service: str | None = None) -> dict[str, str]:
        out = {LABEL_MANAGED_BY: "parity", LABEL_MANAGED: "true", LABEL_PHASE: str(phase),
               LABEL_STACK: self.stack.name}
        if service is not None:
            out.update({LABEL_COMPONENT: service, LABEL_PART_OF: self.stack.name,
                        LABEL_SERVICE: service})
        return dict(sorted(out.items()))

    def selector(self, service: str) -> dict[str, str]:
        return {LABEL_COMPONENT: service, LABEL_PART_OF: self.stack.name}

    def meta(self, name: str, phase: int, service: str | None = None,
             annotations: dict[str, str] | None = None, namespace: str | None = "") -> dict:
        out: dict = {"name": name}
        if namespace is not None:
            out["namespace"] = namespace or self.stack.namespace
        out["labels"] = self.labels(phase, service)
        notes = dict(annotations or {})
        if service is not None and service in self.wave:
            notes[ANNOTATION_WAVE] = str(self.wave[service])
        if notes:
            out["annotations"] = dict(sorted(notes.items()))
        return out

    # ---------------------------------------------------------------- kind-config

    def cluster_config(self) -> dict:
        st = self.stack
        try:
            ipaddress.ip_address(st.edge_bind)
        except ValueError:
            self.error("stack.edge.bind", f"'{st.edge_bind}' is not an IP address, which "
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

    # ---------------------------------------------------------------- manifests

    def manifests(self) -> list[dict]:
        st = self.stack
        docs: list[dict] = [{"apiVersion": "v1", "kind": "Namespace",
                             "metadata": self.meta(st.namespace, 1, namespace=None)}]
        services = [s for name, s in sorted(st.services.items()) if s.role != "edge"]
        docs += self.secrets(services)
        docs.append(self.coredns())
        edge = st.edge()
        if edge is not None:
            self.check_edge(edge)
            if st.routing == "gateway":
                docs += self.gateway(edge)
        route_names = {REDIRECT_ROUTE} if st.routing == "gateway" else set()
        for svc in services:
            docs += self.service_docs(svc, route_names)
        return docs

    def secrets(self, services: list[Service]) -> list[dict]:
        users: dict[str, int] = {}
        for svc in services:
            refs = [v.secret for _, v in svc.env if isinstance(v, SecretRef)]
            refs += [f.secret for f in svc.secret_files]
            for name in refs:
                users[name] = min(users.get(name, svc.phase), svc.phase)
        out = []
        for name in sorted(users):
            keys = ",".join(sorted(k.name for k in self.stack.secrets[name].keys))
            out.append({"apiVersion": "v1", "kind": "Secret",
                        "metadata": self.meta(name, users[name],
                                              annotations={ANNOTATION_SECRET_KEYS: keys}),
                        "type": "Opaque"})
        return out

    def coredns(self) -> dict:
        domain = self.stack.domain.replace(".", r"\.")
        # Anchored on the absolute name: a search-path query such as
        # auth.<domain>.parity.svc.cluster.local must stay NXDOMAIN, not hit the edge.
        rewrite = (f"rewrite name regex ^(.+)\\.{domain}\\.$ {EDGE_PROXY_SERVICE} "
                   "answer auto")
        return {"apiVersion": "v1", "kind": "ConfigMap",
                "metadata": self.meta("coredns", 1, namespace="kube-system",
                                      annotations={ANNOTATION_ADOPTED: "true"}),
                "data": {"Corefile": COREFILE.format(rewrite=rewrite)}}

    def check_edge(self, edge: Service) -> None:
        base = f"services.{edge.name}"
        if edge.routes:
            self.error(f"{base}.routes", "kind replaces the edge with a Gateway, so a route "
                       "cannot point at the edge service itself", "route to a service "
                       "behind the edge")
        if edge.storage:
            self.error(f"{base}.storage", "kind replaces the edge with a Gateway, which "
                       "has no storage", "remove the edge's storage")

    def gateway(self, edge: Service) -> list[dict]:
        st = self.stack

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
        gw = {"apiVersion": GATEWAY_API_VERSION, "kind": "Gateway",
              "metadata": self.meta(GATEWAY_NAME, edge.phase, edge.name),
              "spec": {"gatewayClassName": GATEWAY_CLASS, "listeners": listeners}}
        # The browser-facing https port is the host port, not the listener's 443.
        redirect = {"apiVersion": GATEWAY_API_VERSION, "kind": "HTTPRoute",
                    "metadata": self.meta(REDIRECT_ROUTE, edge.phase, edge.name),
                    "spec": {"parentRefs": [{"name": GATEWAY_NAME, "sectionName": "http"}],
                             "rules": [{"filters": [{
                                 "type": "RequestRedirect",
                                 "requestRedirect": {"scheme": "https",
                                                     "port": st.https_port,
                                                     "statusCode": 301}}]}]}}
        return [gw, redirect]

    # ---------------------------------------------------------------- one service

    def check_names(self, svc: Service) -> None:
        base = f"services.{svc.name}"
        needs_service = bool(svc.ports) or svc.workload == "stateful"
        if needs_service and not svc.name[0].isalpha():
            self.error(base, f"'{svc.name}' does not start with a letter; a Kubernetes "
                       "Service name must (DNS-1035)", "rename the service")
        if svc.workload == "stateful" and len(svc.name) > MAX_STATEFUL_NAME:
            self.error(base, f"'{svc.name}' is {len(svc.name)} characters; a StatefulSet "
                       f"name may have at most {MAX_STATEFUL_NAME}", "shorten the name")
        for p in svc.ports:
            if not re.search("[a-z]", p.name) or "--" in p.name \
                    or not _IANA_SVC_NAME.fullmatch(p.name):
                self.error(f"{base}.ports[{p.name}].name", f"'{p.name}' is not a valid "
                           "Kubernetes port name (it needs a letter, and no '--')",
                           "rename the port, e.g. 'http'")
        if svc.workload == "job" and svc.replicas != 1:
            self.error(f"{base}.replicas", f"a job runs once; replicas {svc.replicas} "
                       "cannot be represented", "remove replicas")
        if svc.user is not None and not re.fullmatch(r"\d+(:\d+)?", svc.user):
            self.error(f"{base}.user", f"'{svc.user}' is not a numeric UID[:GID]; "
                       "Kubernetes runs containers by number only", "use e.g. '999:999'")
        for r in svc.routes:
            bad = [s for s in ("//", "/./", "/../", "%2f", "%2F", "#") if s in r.path]
            if bad or r.path.endswith(("/..", "/.")) or not _GATEWAY_PATH.fullmatch(r.path):
                self.error(f"{base}.routes[{r.name}].path", f"'{r.path}' is not a path "
                           "Gateway API and Ingress accept", "use a plain absolute path")

    def service_docs(self, svc: Service, route_names: set[str]) -> list[dict]:
        self.check_names(svc)
        st = self.stack
        docs: list[dict] = []
        env_data = {k: self.resolve(v) if isinstance(v, str) else _env_text(v)
                    for k, v in svc.env if not isinstance(v, SecretRef)}
        env_data = dict(sorted(env_data.items()))
        files_data = {f.name: self.resolve(f.content) for f in svc.files}
        if env_data:
            docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": self.meta(f"{svc.name}-env", svc.phase, svc.name),
                         "data": env_data})
        if files_data:
            docs.append({"apiVersion": "v1", "kind": "ConfigMap",
                         "metadata": self.meta(f"{svc.name}-files", svc.phase, svc.name),
                         "data": files_data})
        if svc.workload != "stateful":
            for s in svc.storage:
                docs.append({"apiVersion": "v1", "kind": "PersistentVolumeClaim",
                             "metadata": self.meta(f"{svc.name}-{s.name}", svc.phase,
                                                   svc.name),
                             "spec": self.claim_spec(s)})
        if svc.workload == "stateful":
            docs.append(self.k8s_service(svc, headless=True))
        if svc.ports:
            docs.append(self.k8s_service(svc))
        config_hash = _digest({"env": env_data, "files": files_data}) \
            if env_data or files_data else None
        docs.append(self.workload(svc, bool(env_data), config_hash))
        for route in svc.routes:
            if route.name in route_names:
                self.error(f"services.{svc.name}.routes[{route.name}]", f"route name "
                           f"'{route.name}' is reserved in kind", "rename the route")
            route_names.add(route.name)
            docs.append(self.http_route(svc, route) if st.routing == "gateway"
                        else self.ingress(svc, route))
        return docs

    def claim_spec(self, storage) -> dict:
        spec: dict = {"accessModes": ["ReadWriteOnce"],
                      "resources": {"requests": {"storage": storage.size}}}
        if storage.storage_class:
            spec["storageClassName"] = storage.storage_class
        return spec

    def k8s_service(self, svc: Service, headless: bool = False) -> dict:
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
        spec["selector"] = self.selector(svc.name)
        if ports:
            spec["ports"] = ports
        name = svc.name + (HEADLESS_SUFFIX if headless else "")
        if len(name) > 63:
            self.error(f"services.{svc.name}", f"the governing Service name '{name}' is "
                       "longer than 63 characters", "shorten the service name")
        return {"apiVersion": "v1", "kind": "Service",
                "metadata": self.meta(name, svc.phase, svc.name), "spec": spec}

    # ---------------------------------------------------------------- workload

    def workload(self, svc: Service, has_env: bool, config_hash: str | None) -> dict:
        annotations = {}
        if svc.depends_on:
            annotations[ANNOTATION_DEPENDS_ON] = ",".join(svc.depends_on)
        meta = self.meta(svc.name, svc.phase, svc.name, annotations)
        template_meta: dict = {"labels": {**self.labels(svc.phase, svc.name)}}
        if config_hash:
            # Config changes roll the pods (a ConfigMap change alone would not).
            template_meta["annotations"] = {ANNOTATION_CONFIG_HASH: config_hash}
        volumes, mounts, claims = self.volumes(svc)
        container = self.container(svc, has_env, mounts)
        pod: dict = {}
        if svc.workload == "job":
            pod["restartPolicy"] = "Never"
        pod.update({"enableServiceLinks": False, "automountServiceAccountToken": False,
                    "containers": [container]})
        if volumes:
            pod["volumes"] = volumes
        template = {"metadata": template_meta, "spec": pod}
        if svc.workload == "job":
            spec: dict = {"backoffLimit": JOB_BACKOFF_LIMIT}
            rd = svc.readiness
            if rd is not None and rd.completion_timeout_seconds:
                spec["activeDeadlineSeconds"] = rd.completion_timeout_seconds
            spec["template"] = template
            return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
        spec = {"replicas": svc.replicas,
                "selector": {"matchLabels": self.selector(svc.name)}}
        if svc.workload == "stateful":
            spec["serviceName"] = svc.name + HEADLESS_SUFFIX
        spec["template"] = template
        if svc.workload == "stateful" and claims:
            spec["volumeClaimTemplates"] = claims
        kind = "StatefulSet" if svc.workload == "stateful" else "Deployment"
        return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}

    def volumes(self, svc: Service) -> tuple[list[dict], list[dict], list[dict]]:
        base = f"services.{svc.name}"
        volumes: list[dict] = []
        mounts: list[tuple[str, dict]] = []   # (model path of the field, mount)
        claims: list[dict] = []
        for s in svc.storage:
            if svc.workload == "stateful":
                claims.append({"metadata": {"name": s.name,
                                            "labels": self.labels(svc.phase, svc.name)},
                               "spec": self.claim_spec(s)})
            else:
                volumes.append({"name": s.name, "persistentVolumeClaim": {
                    "claimName": f"{svc.name}-{s.name}"}})
            mounts.append((f"{base}.storage[{s.name}].path",
                           {"name": s.name, "mountPath": s.path}))
        if svc.files:
            volumes.append({"name": FILES_VOLUME, "configMap": {
                "name": f"{svc.name}-files", "defaultMode": FILE_MODE,
                "items": [{"key": f.name, "path": f.name, "mode": _file_mode(f.path)}
                          for f in svc.files]}})
            for f in svc.files:
                mounts.append((f"{base}.files[{f.name}].path",
                               {"name": FILES_VOLUME, "mountPath": f.path,
                                "subPath": f.name, "readOnly": True}))
        for sf in svc.secret_files:
            vname = SECRET_VOLUME_PREFIX + sf.name
            if len(vname) > 63:
                self.error(f"{base}.secret_files[{sf.name}].name", f"the volume name "
                           f"'{vname}' is longer than 63 characters", "shorten the name")
            volumes.append({"name": vname, "secret": {
                "secretName": sf.secret, "defaultMode": SECRET_FILE_MODE,
                "items": [{"key": sf.key, "path": sf.key}]}})
            mounts.append((f"{base}.secret_files[{sf.name}].path",
                           {"name": vname, "mountPath": sf.path, "subPath": sf.key,
                            "readOnly": True}))
        if svc.ca_bundle:
            volumes.append({"name": CA_VOLUME, "configMap": {
                "name": LOCAL_CA_CONFIGMAP, "items": [{"key": LOCAL_CA_KEY,
                                                       "path": LOCAL_CA_KEY}]}})
            mounts.append((f"{base}.ca_bundle", {"name": CA_VOLUME, "mountPath": svc.ca_bundle,
                                                 "subPath": LOCAL_CA_KEY, "readOnly": True}))
        names: dict[str, str] = {}
        for v in volumes + [c["metadata"] for c in claims]:
            if v["name"] in names:
                self.error(f"{base}.storage[{v['name']}].name", f"volume name "
                           f"'{v['name']}' is also used by parity in kind", "rename it")
            names[v["name"]] = v["name"]
        seen: dict[str, str] = {}
        for where, m in mounts:
            if m["mountPath"] in seen:
                self.error(where, f"path {m['mountPath']} is also mounted by "
                           f"{seen[m['mountPath']]}", "each mount needs its own path")
            seen.setdefault(m["mountPath"], where)
        return volumes, [m for _, m in mounts], claims

    def container(self, svc: Service, has_env: bool, mounts: list[dict]) -> dict:
        c: dict = {"name": svc.name, "image": svc.image, "imagePullPolicy": "IfNotPresent"}
        if svc.command:
            c["command"] = [escape_k8s(x) for x in svc.command]
        if svc.args:
            c["args"] = [escape_k8s(x) for x in svc.args]
        if svc.working_dir:
            c["workingDir"] = svc.working_dir
        if svc.ports:
            c["ports"] = [{"name": p.name, "containerPort": p.port,
                           "protocol": "UDP" if p.protocol == "udp" else "TCP"}
                          for p in svc.ports]
        if has_env:
            c["envFrom"] = [{"configMapRef": {"name": f"{svc.name}-env"}}]
        secret_env = [{"name": k, "valueFrom": {"secretKeyRef": {"name": v.secret,
                                                                 "key": v.key}}}
                      for k, v in svc.env if isinstance(v, SecretRef)]
        if secret_env:
            c["env"] = secret_env
        if svc.resources:
            c["resources"] = {k: dict(v) for k, v in svc.resources.items()}
        if mounts:
            c["volumeMounts"] = mounts
        probe = self.probe(svc)
        if probe:
            c["readinessProbe"] = probe
        if svc.user is not None and re.fullmatch(r"\d+(:\d+)?", svc.user):
            uid, _, gid = svc.user.partition(":")
            sc = {"runAsUser": int(uid)}
            if gid:
                sc["runAsGroup"] = int(gid)
            c["securityContext"] = sc
        return c

    def probe(self, svc: Service) -> dict | None:
        rd = svc.readiness
        if rd is None or rd.kind == "completion":
            return None
        probe: dict
        if rd.kind == "http":
            probe = {"httpGet": {"path": rd.path, "port": rd.port}}
        elif rd.kind == "tcp":
            probe = {"tcpSocket": {"port": rd.port}}
        else:
            probe = {"exec": {"command": list(rd.command)}}
        probe.update({"initialDelaySeconds": rd.initial_delay_seconds,
                      "periodSeconds": rd.period_seconds,
                      "timeoutSeconds": rd.timeout_seconds,
                      "failureThreshold": rd.failure_threshold})
        return probe

    # ---------------------------------------------------------------- routes

    def https_sections(self) -> list[str]:
        """The Gateway listeners a route attaches to: 443, and the moved browser port."""
        return ["https"] if self.stack.https_port == 443 else ["https", HTTPS_HOST_LISTENER]

    def http_route(self, svc: Service, route) -> dict:
        return {"apiVersion": GATEWAY_API_VERSION, "kind": "HTTPRoute",
                "metadata": self.meta(route.name, svc.phase, svc.name),
                "spec": {
                    "parentRefs": [{"name": GATEWAY_NAME, "sectionName": section}
                                   for section in self.https_sections()],
                    "hostnames": [f"{route.host}.{self.stack.domain}"],
                    "rules": [{
                        "matches": [{"path": {"type": "PathPrefix", "value": route.path}}],
                        "backendRefs": [{"name": svc.name,
                                         "port": svc.port(route.port).port}],
                    }]}}

    def ingress(self, svc: Service, route) -> dict:
        host = f"{route.host}.{self.stack.domain}"
        return {"apiVersion": "networking.k8s.io/v1", "kind": "Ingress",
                "metadata": self.meta(route.name, svc.phase, svc.name),
                "spec": {
                    "ingressClassName": GATEWAY_CLASS,
                    "tls": [{"hosts": [host], "secretName": EDGE_TLS_SECRET}],
                    "rules": [{"host": host, "http": {"paths": [{
                        "path": route.path, "pathType": "Prefix",
                        "backend": {"service": {"name": svc.name, "port": {
                            "number": svc.port(route.port).port}}},
                    }]}}]}}
