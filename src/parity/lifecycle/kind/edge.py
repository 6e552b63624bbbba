"""The edge of the kind cluster: the Gateway API CRDs and the edge controller,
the CoreDNS rewrite of the browser domain, and the wait until the Gateway is
programmed, every route accepted and served through the edge.

:class:`KindEdge` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import hashlib
import time

from ... import tls
from ...edgehttp import session
from ...errors import CheckFailed, ParityError
from ...render import RenderContext, render
from ...render.edge import gateway_api_crds
from ...render.names import EDGE_DEPLOYMENT, EDGE_NAMESPACE, GATEWAY_NAME
from ...yamlio import load_docs
from .. import ServiceStatus
from . import readiness

#: How long the edge may take to program the Gateway and accept every route; never
#: more than --timeout.
EDGE_READY_SECONDS = 300
#: Rounds in a row (a second apart) in which every route must be served after the
#: edge had to be waited for; see :meth:`KindEdge.wait_served`.
SERVED_ROUNDS = 3


class KindEdge:
    """Install, check and wait for the edge."""

    def edge_digest(self, crds: str | None = None) -> str:
        """What the edge was installed from: edge.yaml and the vendored CRDs (``crds``:
        their digest, when the caller has already read them)."""
        if crds is None:
            _, crds = gateway_api_crds()
        return hashlib.sha256((self.files["edge.yaml"] + crds).encode()).hexdigest()

    def _controller_available(self) -> bool:
        return readiness.evaluate(self.kube.get("apps/v1", "Deployment", EDGE_DEPLOYMENT,
                                                 EDGE_NAMESPACE)).ready

    def ensure_edge(self) -> str:
        action = self._action("edge")
        if action == "keep":
            return "kept"
        crds, crds_digest = gateway_api_crds()
        docs = [d for _, raw in crds for d in load_docs(raw.decode("utf-8"))]
        for doc in docs:
            self.kube.apply(doc)
        self.wait_for(lambda: all(self._established(d) for d in docs),
                      "the Gateway API CRDs", 120)
        self._kube = None  # rediscover the new API groups
        edge = [self.with_image_ids(d) for d in self.docs("edge.yaml")]
        for doc in edge:
            self.kube.apply(doc)
        deployment = next(d for d in edge if d["kind"] == "Deployment")
        self.wait_workloads("edge", [deployment], namespace=EDGE_NAMESPACE)
        self.observed.edge_digest = self.edge_digest(crds_digest)
        self.record()
        return f"{action}ed {len(docs)} CRDs and {len(edge)} objects ({self.stack.kind_edge.image})"

    def _established(self, crd: dict) -> bool:
        got = self.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                            crd["metadata"]["name"])
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in ((got or {}).get("status") or {}).get("conditions") or [])

    def ensure_dns(self) -> str:
        corefile_doc = next(d for d in self.docs() if d["kind"] == "ConfigMap"
                            and d["metadata"]["name"] == "coredns")
        self.kube.apply(corefile_doc)
        digest = hashlib.sha256(corefile_doc["data"]["Corefile"].encode()).hexdigest()[:16]
        # restart CoreDNS only when the Corefile changed (a deterministic annotation)
        self.kube.apply({"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {
            "name": "coredns", "namespace": "kube-system"}, "spec": {"template": {
                "metadata": {"annotations": {"parity.dev/corefile-hash": digest}}}}})
        return f"Corefile {digest}"

    def edge_objects(self) -> list[tuple[str, str]]:
        """(kind, name) of the rendered Gateway and HTTPRoutes."""
        return [(d["kind"], d["metadata"]["name"]) for d in self.docs()
                if d["kind"] in ("Gateway", "HTTPRoute")]

    def edge_verdicts(self, objects: list[tuple[str, str]] | None = None) -> dict[str, "object"]:
        """``Gateway/<name>`` and ``HTTPRoute/<name>`` -> verdict, for what is rendered."""
        gateway = GATEWAY_NAME
        ns = self.stack.namespace
        out = {}
        for kind, name in self.edge_objects() if objects is None else objects:
            if kind == "Gateway":
                out[f"Gateway/{name}"] = readiness.gateway_verdict(
                    self.kube.get("gateway.networking.k8s.io/v1", kind, name, ns))
            elif kind == "HTTPRoute":
                out[f"HTTPRoute/{name}"] = readiness.route_verdict(
                    self.kube.get("gateway.networking.k8s.io/v1", kind, name, ns), gateway)
        return out

    def wait_edge(self) -> str:
        """Workloads being ready is not the stack being reachable: wait for the
        controller to program the Gateway and accept every route, and fail with its
        reason (a route no listener takes, a backend it cannot resolve)."""
        if self.stack.routing != "gateway":
            return "Ingress routing: no route status to wait for"
        seconds = min(self.timeout, EDGE_READY_SECONDS)
        started = time.monotonic()
        hint = (f"kubectl --kubeconfig {self.kubeconfig.relative_to(self.root)} -n "
                f"{self.stack.namespace} describe gateway,httproute; inv lint --mode kind "
                "names broken references")
        objects = self.edge_objects()  # parsed once, polled many times
        with self.ui.status("routes: waiting") as status:
            while True:
                verdicts = self.edge_verdicts(objects)
                failed = {n: v for n, v in verdicts.items() if v.state == "failed"}
                if failed:
                    raise CheckFailed("edge: " + "; ".join(f"{n}: {v.reason}"
                                                           for n, v in failed.items()), hint=hint)
                pending = {n: v for n, v in verdicts.items() if not v.ready}
                if not pending:
                    routes = sum(1 for n in verdicts if n.startswith("HTTPRoute/"))
                    served = self.wait_served(started + seconds, status)
                    return f"Gateway programmed, {routes} routes accepted, {served}"
                if time.monotonic() - started > seconds:
                    raise CheckFailed(f"edge: not ready after {seconds:.0f} s: " + "; ".join(
                        f"{n}: {v.reason}" for n, v in pending.items()), hint=hint)
                status.update("routes: waiting for " + ", ".join(
                    f"{n} ({v.reason})" for n, v in pending.items()))
                time.sleep(1)

    def wait_served(self, deadline: float, status) -> str:
        """Accepted is not served: the controller programs a route's backends from
        the EndpointSlices a moment after the pods became ready, and until then the
        edge answers 503 "no available server". Ask each route through the edge, as
        a browser would, until its service answers. Where a route had to be waited
        for, the edge was still being programmed: every route must then answer in
        :data:`SERVED_ROUNDS` rounds in a row (a second apply's EndpointSlices can take
        a served route away again); a steady edge answers at once and costs one round."""
        try:
            nodes = self.node_containers()
        except ParityError:
            nodes = []
        if not nodes:
            # no node container publishes the edge on this machine (the k8s suite's
            # stand-in kind): nothing to ask through the edge
            return "no node container publishes the edge here"
        http = session("127.0.0.1", self.stack.http_port, self.stack.https_port,
                       str(tls.ca_paths(self.state)[0]))
        routes = {e["route"]: e["url"] for e in self.endpoints()}
        waiting = dict(routes)
        last: dict[str, str] = {}
        waited = False
        clean_rounds = 0
        while True:
            for route, url in list(waiting.items()):
                try:
                    r = http.get(url, timeout=5, allow_redirects=False)
                    answer = f"{r.status_code} {r.text[:40].strip()}"
                    # the edge's own answers: no backend yet, or no route for the host
                    if not (r.status_code in (502, 503) and "no available server" in r.text
                            or r.status_code == 404 and r.text.strip() == "404 page not found"):
                        del waiting[route]
                        continue
                except Exception as exc:  # noqa: BLE001 - connection refused while it starts
                    answer = exc.__class__.__name__
                last[route] = answer
            if waiting:
                waited, clean_rounds = True, 0
            else:
                clean_rounds += 1
                if not waited or clean_rounds >= SERVED_ROUNDS:
                    http.close()
                    return "every route served"
                waiting = dict(routes)   # ask them all again: served, and still served
                time.sleep(1)
                continue
            if time.monotonic() > deadline:
                http.close()
                raise CheckFailed("edge: routes accepted but not served: " + "; ".join(
                    f"{r} ({waiting[r]}): {last.get(r, '?')}" for r in sorted(waiting)),
                    hint=f"kubectl --kubeconfig {self.kubeconfig.relative_to(self.root)} -n "
                         f"{self.stack.namespace} get endpointslices; inv status --mode kind")
            status.update("routes: waiting for the edge to serve " + ", ".join(sorted(waiting)))
            time.sleep(1)

    def edge_status(self, name: str, phase: int) -> ServiceStatus:
        """The edge's row: the Gateway's verdict, else the first route that is not
        served (a ready Gateway with a rejected route is not a working edge)."""
        if not self.files:
            self.files = render(self.stack, RenderContext.for_output(self.root, self.out))
        verdicts = self.edge_verdicts()
        gateway = next((v for n, v in verdicts.items() if n.startswith("Gateway/")), None)
        if gateway is None:  # Ingress routing
            return ServiceStatus(name, phase, "ingress", "applied", "healthy", True, "")
        if not gateway.ready:
            return ServiceStatus(name, phase, "gateway", gateway.state, gateway.health, False,
                                 gateway.reason)
        bad = [(n, v) for n, v in verdicts.items() if not v.ready]
        if bad:
            n, v = bad[0]
            more = f" (and {len(bad) - 1} more)" if len(bad) > 1 else ""
            return ServiceStatus(name, phase, "gateway", v.state, v.health, False,
                                 f"{n}: {v.reason}{more}")
        return ServiceStatus(name, phase, "gateway", "programmed", "healthy", True, "")
