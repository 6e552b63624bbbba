"""The kind lane: create, update, check and remove parity's kind cluster.

``up`` is an ordered list of steps (kind's own create is one too):

    preflight   Docker reachable and its memory, kind and kubectl at minimum versions,
                host ports free or ours. No Kubernetes API is contacted here.
    render      kind-config.yaml and manifests.yaml
    observe     what exists: the cluster, the config it was created from (recorded in
                ConfigMap kube-system/parity-cluster), the edge controller, the images
                on the node
    plan        computed from what was observed (:func:`plan`), printed before anything
                is changed; a cluster whose config drifted is recreated only with
                --recreate
    cluster     kind create cluster, writing .parity/kind/kubeconfig (never ~/.kube)
    edge        Envoy Gateway (pinned) with its proxy on node ports 30080/30443, which
                kind-config maps to 127.0.0.1:80/443; GatewayClass parity-edge
    dns         the CoreDNS rewrite of *.<domain> to the edge proxy
    secrets     local CA ConfigMap, edge TLS Secret, secret values from .parity/secrets
    images      build, then kind load only images whose ID the node does not have
    apply       server-side apply (field manager parity) wave by wave, waiting for
                each wave's workloads before the next
    routes      wait until the controller has programmed the Gateway and accepted
                every HTTPRoute with its references resolved; fail with its reason
    prune       delete parity-labelled objects that are no longer rendered
    report      endpoints

Every API call goes through :class:`parity.kubeaccess.Kube`, which refuses any
kubeconfig context but the parity cluster's.
"""

from __future__ import annotations

import difflib
import hashlib
import json
import os
import re
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

from .. import docker
from ..errors import CheckFailed, InputError, PrerequisiteMissing
from ..render import LABEL_MANAGED, LABEL_STACK, default_out
from . import UI, ServiceStatus, Step, run_steps

KIND_MIN = (0, 24, 0)
KUBECTL_MIN = (1, 29, 0)
MIN_DOCKER_MEMORY = 6 * 1024**3
#: How long the edge may take to program the Gateway (its proxy image is pulled on
#: the first run) and accept every route; never more than --timeout.
EDGE_READY_SECONDS = 600
EDGE_VERSION = "v1.5.0"
EDGE_URL = ("https://github.com/envoyproxy/gateway/releases/download/"
            f"{EDGE_VERSION}/install.yaml")
EDGE_NAMESPACE = "envoy-gateway-system"
EDGE_CONTROLLER = "gateway.envoyproxy.io/gatewayclass-controller"
STATE_CONFIGMAP = "parity-cluster"
INSTALL_KIND = ("install kind >= 0.24: go install sigs.k8s.io/kind@v0.24.0 (or a release "
                "binary: https://kind.sigs.k8s.io/docs/user/quick-start/#installation)")
INSTALL_KUBECTL = ("install kubectl >= 1.29: https://kubernetes.io/docs/tasks/tools/ "
                   "(Debian/Ubuntu: the kubernetes apt repository)")
WORKLOAD_KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1"}
#: Kinds parity renders into the namespace; prune looks for stale ones of these.
#: Not PersistentVolumeClaims: like compose's named volumes, data outlives a service
#: leaving the phase (``inv down`` removes it with the cluster).
PRUNABLE = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"),
            ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
            ("networking.k8s.io/v1", "Ingress"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("gateway.networking.k8s.io/v1", "Gateway"))


# --------------------------------------------------------------------------- plan

@dataclass
class Observed:
    """What exists before ``up`` changes anything."""

    cluster_exists: bool = False
    applied_config: str | None = None        # kind-config.yaml the cluster was made from
    edge_ready: bool = False
    node_images: dict[str, str] = field(default_factory=dict)   # name -> image ID
    local_images: dict[str, str] = field(default_factory=dict)  # name -> image ID
    #: stateful service -> the image its existing StatefulSet runs (wrote its PVCs)
    data_images: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Action:
    step: str
    action: str      # create, keep, recreate, install, load, skip, apply, prune
    detail: str = ""
    target: str = ""  # the image, for image actions


def config_diff(old: str, new: str) -> str:
    return "".join(difflib.unified_diff(old.splitlines(True), new.splitlines(True),
                                        "cluster (applied)", "kind-config.yaml (rendered)"))


def plan(obs: Observed, desired_config: str, images: list[str], recreate: bool,
         cluster: str) -> list[Action]:
    """The steps ``up`` will take, from what was observed. Pure: tests feed it
    observations; the driver feeds it the real ones."""
    out: list[Action] = []
    fresh = False
    if not obs.cluster_exists:
        out.append(Action("cluster", "create", f"no kind cluster named {cluster}"))
        fresh = True
    elif obs.applied_config is None:
        raise InputError(
            f"a kind cluster named {cluster} exists, but parity has no record of creating it",
            hint="parity does not adopt clusters it did not create: delete it with "
                 f"kind delete cluster --name {cluster} if it is yours to delete")
    elif obs.applied_config != desired_config:
        diff = config_diff(obs.applied_config, desired_config)
        if not recreate:
            raise InputError(
                f"the cluster {cluster} was created from another kind-config.yaml; a kind "
                f"cluster cannot change it in place:\n{diff.rstrip()}",
                hint="recreate it (its data is lost): inv up --mode kind --recreate")
        out.append(Action("cluster", "recreate", "kind-config.yaml changed"))
        fresh = True
    else:
        out.append(Action("cluster", "keep", "exists, created from the same kind-config.yaml"))
    if fresh or not obs.edge_ready:
        out.append(Action("edge", "install", f"Envoy Gateway {EDGE_VERSION}"))
    else:
        out.append(Action("edge", "keep", f"Envoy Gateway {EDGE_VERSION} ready"))
    out += image_actions(obs, images, fresh)
    out.append(Action("apply", "apply", "server-side apply, wave by wave"))
    out.append(Action("prune", "prune", "objects no longer rendered"))
    return out


# --------------------------------------------------------------------------- driver

def image_actions(obs: Observed, images: list[str], fresh: bool) -> list[Action]:
    """Load an image only when the node lacks that exact build (compare image IDs;
    ``kind load`` re-tars every image every time, kubernetes-sigs/kind#380)."""
    out = []
    for image in sorted(images):
        local = obs.local_images.get(image)
        on_node = None if fresh else obs.node_images.get(image)
        if local and on_node == local:
            out.append(Action("images", "skip", f"{image}: the node has {local[:19]}", image))
        else:
            out.append(Action("images", "load", f"{image}: " + (
                "not on the node" if not on_node else "the node has another build"), image))
    return out


def _version(text: str) -> tuple[int, int, int] | None:
    m = re.search(r"v?(\d+)\.(\d+)\.(\d+)", text or "")
    return tuple(int(x) for x in m.groups()) if m else None  # type: ignore[return-value]


class KindLane:
    def __init__(self, root: Path, resolved, ui: UI | None = None, timeout: float = 900,
                 recreate: bool = False):
        self.root = root
        self.resolved = resolved
        self.stack = resolved.stack
        self.ui = ui or UI()
        self.timeout = timeout
        self.recreate = recreate
        self.state = root / ".parity"
        self.kind_dir = self.state / "kind"
        self.kubeconfig = self.kind_dir / "kubeconfig"
        self.out = default_out(root, "kind", self.stack.phase)
        self.cluster = f"parity-{self.stack.name}"
        self.files: dict[str, str] = {}
        self.observed = Observed()
        self.actions: list[Action] = []
        self.report: dict = {}
        self._kube = None

    # ------------------------------------------------------------------ helpers

    @property
    def kube(self):
        if self._kube is None:
            from ..kubeaccess import Kube

            self._kube = Kube(self.kubeconfig, self.cluster)
        return self._kube

    def kind(self, *args: str, check: bool = True, timeout: float = 900):
        return docker.run(["kind", *args], check=check, timeout=timeout)

    def node(self) -> str:
        return f"{self.cluster}-control-plane"

    def cluster_exists(self) -> bool:
        if shutil.which("kind") is None:
            return False
        proc = self.kind("get", "clusters", check=False, timeout=60)
        return self.cluster in proc.stdout.split()

    def docs(self) -> list[dict]:
        from ..diff import _load_docs

        return _load_docs(self.files["manifests.yaml"])

    # ------------------------------------------------------------------ up

    def up(self) -> dict:
        steps = [
            Step("preflight", "preflight: Docker, kind, kubectl, ports, memory", self.preflight),
            Step("render", "render kind-config.yaml and manifests.yaml", self.render),
            Step("observe", "observe the cluster, the edge and the node's images",
                 self.observe),
            Step("plan", "plan", self.make_plan),
            Step("cluster", f"cluster {self.cluster}", self.ensure_cluster),
            Step("edge", f"edge controller (Envoy Gateway {EDGE_VERSION})", self.ensure_edge),
            Step("dns", "CoreDNS rewrite of the browser domain to the edge", self.ensure_dns),
            Step("secrets", "local CA, edge certificate and secret values", self.ensure_secrets),
            Step("images", "images: build, load what the node lacks", self.ensure_images),
            Step("apply", "apply and wait, wave by wave", self.apply_waves),
            Step("routes", "wait until the Gateway is programmed and every route accepted",
                 self.wait_edge),
            Step("prune", "prune objects no longer rendered", self.prune),
        ]
        run_steps(steps, self.ui)
        self.report["endpoints"] = self.endpoints()
        return self.report

    def preflight(self) -> str:
        docker.engine_ok()
        kind_v = self.check_kind()
        kubectl_v = self.check_kubectl()
        memory = self.check_memory()
        self.check_ports()
        return (f"kind {'.'.join(map(str, kind_v))}, kubectl {'.'.join(map(str, kubectl_v))}, "
                f"Docker memory {memory / 1024**3:.0f} GiB")

    def check_kind(self) -> tuple[int, ...]:
        if shutil.which("kind") is None:
            raise PrerequisiteMissing("kind is not installed; the kind lane needs kind "
                                      f"{'.'.join(map(str, KIND_MIN))} or newer",
                                      hint=INSTALL_KIND)
        kind_v = _version(self.kind("version", timeout=30).stdout)
        if kind_v is None or kind_v < KIND_MIN:
            raise PrerequisiteMissing(f"kind {kind_v} is too old", hint=INSTALL_KIND)
        return kind_v

    @staticmethod
    def check_kubectl() -> tuple[int, ...]:
        if shutil.which("kubectl") is None:
            raise PrerequisiteMissing("kubectl is not installed", hint=INSTALL_KUBECTL)
        # --kubeconfig: never the user's current context, not even to ask the client's
        # version (Google Cloud SDK's kubectl dispatcher connects to it to pick a version)
        out = docker.run(["kubectl", "version", "--client", "-o", "json", "--kubeconfig",
                          os.devnull], timeout=30).stdout
        kubectl_v = _version(json.loads(out).get("clientVersion", {}).get("gitVersion", ""))
        if kubectl_v is None or kubectl_v < KUBECTL_MIN:
            raise PrerequisiteMissing(f"kubectl {kubectl_v} is too old", hint=INSTALL_KUBECTL)
        return kubectl_v

    @staticmethod
    def check_memory() -> int:
        memory = int(docker.run(["docker", "info", "--format", "{{.MemTotal}}"],
                                timeout=30).stdout.strip() or 0)
        if memory and memory < MIN_DOCKER_MEMORY:
            raise PrerequisiteMissing(
                f"Docker has {memory / 1024**3:.1f} GiB of memory; the kind lane needs 6 GiB",
                hint="Docker Desktop: Settings -> Resources -> Memory, then restart Docker")
        return memory

    def check_ports(self) -> None:
        from .compose import ComposeLane

        for port, var in ((self.stack.http_port, "PARITY_HTTP_PORT"),
                          (self.stack.https_port, "PARITY_HTTPS_PORT")):
            if ComposeLane._port_free(self.stack.edge_bind, port):
                continue
            ours = docker.json_lines(docker.run(
                ["docker", "ps", "--format", "{{json .}}", "--filter",
                 f"label=io.x-k8s.kind.cluster={self.cluster}", "--filter", f"publish={port}"],
                timeout=30).stdout)
            if ours:
                continue
            raise PrerequisiteMissing(
                f"{self.stack.edge_bind}:{port} is in use by another process"
                f"{ComposeLane._who_listens(port)}",
                hint=f"stop it (the compose lane? inv down), or move the port: {var}="
                     f"{port + 8000} inv up --mode kind (a kind port change recreates the "
                     "cluster)")

    def render(self) -> str:
        from ..render import RenderContext, render, write

        self.files = render(self.stack, RenderContext.for_output(self.root, self.out))
        changed = write(self.files, self.out)
        return f"{self.out.relative_to(self.root)}/ ({'changed' if changed else 'unchanged'})"

    def observe(self) -> str:
        obs = Observed(cluster_exists=self.cluster_exists())
        if obs.cluster_exists and self.kubeconfig.exists():
            cm = self.kube.get("v1", "ConfigMap", STATE_CONFIGMAP, "kube-system")
            obs.applied_config = ((cm or {}).get("data") or {}).get("kind-config.yaml")
            obs.edge_ready = self._edge_ready()
            obs.node_images = self.node_images()
            obs.data_images = self.data_images()
        elif obs.cluster_exists:
            self.kind("export", "kubeconfig", "--name", self.cluster, "--kubeconfig",
                      str(self.kubeconfig), timeout=60)
            return self.observe()
        obs.local_images = self.local_images()
        self.observed = obs
        return ("cluster exists" if obs.cluster_exists else "no cluster") + (
            ", edge ready" if obs.edge_ready else "")

    def data_images(self) -> dict[str, str]:
        out = {}
        for svc in self.stack.services.values():
            if svc.workload != "stateful" or not svc.storage:
                continue
            sts = self.kube.get("apps/v1", "StatefulSet", svc.name, self.stack.namespace)
            containers = (((sts or {}).get("spec") or {}).get("template") or {}).get(
                "spec", {}).get("containers") or []
            image = next((c.get("image") for c in containers if c.get("name") == svc.name),
                         None)
            if image:
                out[svc.name] = image
        return out

    def built_images(self) -> list[str]:
        return sorted({s.image for s in self.stack.services.values()
                       if s.build is not None and s.role != "edge"})

    def local_images(self) -> dict[str, str]:
        out = {}
        for image in self.built_images():
            proc = docker.run(["docker", "image", "inspect", "--format", "{{.Id}}", image],
                              check=False, timeout=30)
            if proc.returncode == 0:
                out[image] = proc.stdout.strip()
        return out

    def node_images(self) -> dict[str, str]:
        """Image name -> ID as the node's containerd has it (the same ID Docker shows
        for an image kind loaded)."""
        proc = docker.run(["docker", "exec", self.node(), "crictl", "images", "-o", "json"],
                          check=False, timeout=60)
        if proc.returncode != 0:
            return {}
        out = {}
        for img in json.loads(proc.stdout or "{}").get("images") or []:
            for tag in img.get("repoTags") or []:
                name = tag.removeprefix("docker.io/library/").removeprefix("docker.io/")
                out[name] = img.get("id", "")
        return out

    def make_plan(self) -> str:
        self.actions = plan(self.observed, self.files["kind-config.yaml"],
                            self.built_images(), self.recreate, self.cluster)
        if self._action("cluster") == "keep":  # a new cluster starts without data
            from ..datacompat import Written, check

            check([Written(name, f"the PVCs of StatefulSet {name}", image)
                   for name, image in sorted(self.observed.data_images.items())],
                  self.stack, f"inv reset --mode kind --phase {self.stack.phase} "
                              f"--profile {self.stack.profile}")
        for a in self.actions:
            self.ui.line(f"    {a.step:<8} {a.action:<9} {a.detail}")
        changes = [a for a in self.actions if a.action not in ("keep", "skip")]
        return f"{len(changes)} actions"

    def _action(self, step: str) -> str:
        return next((a.action for a in self.actions if a.step == step), "keep")

    def ensure_cluster(self) -> str:
        action = self._action("cluster")
        if action == "keep":
            return "kept"
        if action == "recreate":
            self.kind("delete", "cluster", "--name", self.cluster, "--kubeconfig",
                      str(self.kubeconfig), timeout=300)
        self.kind_dir.mkdir(parents=True, exist_ok=True)
        self.kind("create", "cluster", "--name", self.cluster, "--config",
                  str(self.out / "kind-config.yaml"), "--kubeconfig", str(self.kubeconfig),
                  "--wait", "180s", timeout=900)
        self._kube = None
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": STATE_CONFIGMAP, "namespace": "kube-system",
            "labels": {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}},
            "data": {"kind-config.yaml": self.files["kind-config.yaml"]}})
        return f"{action}d"

    # ------------------------------------------------------------------ edge

    def _edge_ready(self) -> bool:
        dep = self.kube.get("apps/v1", "Deployment", "envoy-gateway", EDGE_NAMESPACE)
        gc = self.kube.get("gateway.networking.k8s.io/v1", "GatewayClass",
                           self._render_const("GATEWAY_CLASS"))
        available = any(c.get("type") == "Available" and c.get("status") == "True"
                        for c in ((dep or {}).get("status") or {}).get("conditions") or [])
        return bool(available and gc)

    @staticmethod
    def _render_const(name: str):
        from ..render import kind as kind_render

        return getattr(kind_render, name)

    def edge_manifest(self) -> list[dict]:
        """The pinned Envoy Gateway release manifest, downloaded once and verified
        against the checksum recorded at first download (trust on first use)."""
        import requests

        from ..diff import _load_docs

        cache = self.state / "cache" / "edge" / f"envoy-gateway-{EDGE_VERSION}.yaml"
        lock = cache.with_suffix(".sha256")
        if not cache.exists():
            try:
                resp = requests.get(EDGE_URL, timeout=120)
                resp.raise_for_status()
            except requests.RequestException as exc:
                raise PrerequisiteMissing(
                    f"cannot download Envoy Gateway {EDGE_VERSION}: {exc}",
                    hint=f"download {EDGE_URL} to {cache} by hand and run inv up again")
            cache.parent.mkdir(parents=True, exist_ok=True)
            cache.write_bytes(resp.content)
        digest = hashlib.sha256(cache.read_bytes()).hexdigest()
        if lock.exists() and lock.read_text().strip() != digest:
            raise CheckFailed(f"{cache} does not match its recorded checksum",
                              hint=f"delete {cache} and {lock} to download it again")
        lock.write_text(digest + "\n")
        return _load_docs(cache.read_text(encoding="utf-8"))

    def edge_config(self) -> list[dict]:
        """EnvoyProxy naming the proxy Service and pinning its node ports (the
        contract with kind-config's extraPortMappings), and the GatewayClass."""
        nodeports = [{"name": "http-80", "port": 80,
                      "nodePort": self._render_const("EDGE_NODEPORT_HTTP")},
                     {"name": "https-443", "port": 443,
                      "nodePort": self._render_const("EDGE_NODEPORT_HTTPS")}]
        labels = {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}
        proxy_service = self._render_const("EDGE_PROXY_SERVICE").split(".")[0]
        return [
            {"apiVersion": "gateway.envoyproxy.io/v1alpha1", "kind": "EnvoyProxy",
             "metadata": {"name": "parity-edge", "namespace": EDGE_NAMESPACE, "labels": labels},
             "spec": {"provider": {"type": "Kubernetes", "kubernetes": {"envoyService": {
                 "name": proxy_service, "type": "NodePort",
                 "patch": {"type": "StrategicMerge",
                           "value": {"spec": {"ports": nodeports}}}}}}}},
            {"apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
             "metadata": {"name": self._render_const("GATEWAY_CLASS"), "labels": labels},
             "spec": {"controllerName": EDGE_CONTROLLER, "parametersRef": {
                 "group": "gateway.envoyproxy.io", "kind": "EnvoyProxy",
                 "name": "parity-edge", "namespace": EDGE_NAMESPACE}}},
        ]

    def ensure_edge(self) -> str:
        if self._action("edge") == "keep":
            return "kept"
        docs = self.edge_manifest()
        crds = [d for d in docs if d.get("kind") == "CustomResourceDefinition"]
        for doc in crds:
            self.kube.apply(doc)
        self.wait_for(lambda: all(self._established(d) for d in crds), "edge CRDs", 120)
        for doc in docs:
            if doc.get("kind") != "CustomResourceDefinition":
                self.kube.apply(doc)
        self.wait_for(self._controller_available, "the Envoy Gateway controller", 300)
        self._kube = None  # rediscover the new API groups
        for doc in self.edge_config():
            self.kube.apply(doc)
        return f"installed {len(docs)} objects"

    def _established(self, crd: dict) -> bool:
        got = self.kube.get("apiextensions.k8s.io/v1", "CustomResourceDefinition",
                            crd["metadata"]["name"])
        return any(c.get("type") == "Established" and c.get("status") == "True"
                   for c in ((got or {}).get("status") or {}).get("conditions") or [])

    def _controller_available(self) -> bool:
        dep = self.kube.get("apps/v1", "Deployment", "envoy-gateway", EDGE_NAMESPACE)
        return any(c.get("type") == "Available" and c.get("status") == "True"
                   for c in ((dep or {}).get("status") or {}).get("conditions") or [])

    # ------------------------------------------------------------------ dns, secrets

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

    def ensure_secrets(self) -> str:
        import base64

        from .. import secrets, tls

        secrets.ensure(self.stack, self.state)
        tls.ensure_cert(self.state, self.stack.domain)
        ns = self.stack.namespace
        labels = {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": labels}})
        ca_crt = tls.ca_paths(self.state)[0].read_text(encoding="utf-8")
        crt, key = tls.cert_paths(self.state)
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": self._render_const("LOCAL_CA_CONFIGMAP"), "namespace": ns, "labels": labels},
            "data": {self._render_const("LOCAL_CA_KEY"): ca_crt}})
        self.kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": self._render_const("EDGE_TLS_SECRET"),
                                      "namespace": ns, "labels": labels},
                         "data": {"tls.crt": base64.b64encode(crt.read_bytes()).decode(),
                                  "tls.key": base64.b64encode(key.read_bytes()).decode()}})
        return "CA, certificate and secret store ready"

    def with_secret_values(self, doc: dict) -> dict:
        """A rendered Secret (names and keys only) filled from the local store, in
        the same apply (a separate one would let SSA drop the data)."""
        from .. import secrets

        if doc.get("kind") != "Secret" or doc.get("type", "Opaque") != "Opaque":
            return doc
        secret = self.stack.secrets.get(doc["metadata"]["name"])
        if secret is None:
            return doc
        return {**doc, "stringData": secrets.values(self.state, secret)}

    # ------------------------------------------------------------------ images

    def ensure_images(self) -> str:
        from .. import images

        images.build(self.stack, self.root, progress=self.ui.line)
        # a build may have changed an image since the plan: compare again
        self.observed.local_images = self.local_images()
        fresh = self._action("cluster") != "keep"
        actions = image_actions(self.observed, self.built_images(), fresh)
        for a in actions:
            if a.action == "load":
                self.kind("load", "docker-image", "--name", self.cluster, a.target, timeout=900)
        loaded = sum(a.action == "load" for a in actions)
        return f"{loaded} loaded, {len(actions) - loaded} already on the node"

    # ------------------------------------------------------------------ apply

    def waves(self) -> list[tuple[str, list[dict]]]:
        """Stack-level objects first, then each dependency wave in order."""
        wave_key = self._render_const("ANNOTATION_WAVE")
        first, by_wave = [], {}
        for doc in self.docs():
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "coredns":
                continue  # applied by the dns step
            wave = (doc["metadata"].get("annotations") or {}).get(wave_key)
            if wave is None:
                first.append(doc)
            else:
                by_wave.setdefault(int(wave), []).append(doc)
        return [("stack", first)] + [(f"wave {w}", by_wave[w]) for w in sorted(by_wave)]

    def apply_waves(self) -> str:
        total = 0
        for name, docs in self.waves():
            for doc in docs:
                self.kube.apply(self.with_secret_values(doc))
            total += len(docs)
            workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
            if workloads:
                self.wait_workloads(name, workloads)
        return f"{total} objects in {len(self.waves())} groups"

    def deadline_for(self, name: str) -> float:
        """Seconds a workload may take: a job its completion timeout; a service the
        time its readiness probe may fail (delay + period x threshold) plus time to
        pull and start; never more than --timeout."""
        svc = self.stack.services.get(name)
        r = svc.readiness if svc else None
        if r is None:
            return self.timeout
        if r.kind == "completion":
            seconds = float(r.completion_timeout_seconds or self.timeout)
        else:
            seconds = r.initial_delay_seconds + r.period_seconds * r.failure_threshold + 180
        return min(self.timeout, seconds)

    def wait_workloads(self, wave: str, workloads: list[dict]) -> None:
        started = time.monotonic()
        deadlines = {d["metadata"]["name"]: self.deadline_for(d["metadata"]["name"])
                     for d in workloads}
        with self.ui.status(f"{wave}: waiting") as status:
            while True:
                verdicts = {d["metadata"]["name"]: self.verdict(d["kind"], d["metadata"]["name"])
                            for d in workloads}
                failed = {n: v for n, v in verdicts.items() if v.state == "failed"}
                if failed:
                    raise CheckFailed(f"{wave}: " + "; ".join(
                        f"{n}: {v.reason}" for n, v in failed.items()),
                        hint="inv status --mode kind shows every service with its reason")
                pending = {n: v for n, v in verdicts.items() if not v.ready}
                if not pending:
                    return
                elapsed = time.monotonic() - started
                late = {n: v for n, v in pending.items() if elapsed > deadlines[n]}
                if late:
                    raise CheckFailed(f"{wave}: not ready in time: " + "; ".join(
                        f"{n} (after {deadlines[n]:.0f} s): {v.reason or v.state}"
                        for n, v in late.items()), hint="inv status --mode kind")
                status.update(f"{wave}: waiting for " + ", ".join(
                    f"{n} ({v.reason or v.state})" for n, v in pending.items()))
                time.sleep(2)

    def verdict(self, kind: str, name: str):
        from .. import kreadiness

        ns = self.stack.namespace
        obj = self.kube.get(WORKLOAD_KINDS[kind], kind, name, ns)
        if obj is None:
            return kreadiness.evaluate(None)
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if kind == "Job":
            selector = {"job-name": name}
        pods = kreadiness.pods_for(selector, self.kube.list("v1", "Pod", ns))
        pvcs = []
        if kind == "StatefulSet":
            pvcs = kreadiness.pvcs_for(obj, self.kube.list("v1", "PersistentVolumeClaim", ns))
        return kreadiness.evaluate(obj, pods, pvcs)

    def prune(self) -> str:
        rendered = {(d["kind"], (d["metadata"].get("namespace") or ""), d["metadata"]["name"])
                    for d in self.docs()}
        selector = f"{LABEL_MANAGED}=true,{LABEL_STACK}={self.stack.name}"
        keep_names = {self._render_const("LOCAL_CA_CONFIGMAP"),
                      self._render_const("EDGE_TLS_SECRET")}
        removed = []
        for api_version, kind in PRUNABLE:
            for obj in self.kube.list(api_version, kind, self.stack.namespace, selector):
                meta = obj["metadata"]
                ident = (kind, meta.get("namespace") or "", meta["name"])
                if ident in rendered or meta["name"] in keep_names:
                    continue
                if (meta.get("annotations") or {}).get(self._render_const("ANNOTATION_ADOPTED")):
                    continue
                self.kube.delete(api_version, kind, meta["name"], meta.get("namespace"))
                removed.append(f"{kind}/{meta['name']}")
        return f"removed {len(removed)}" + (f": {', '.join(removed)}" if removed else "")

    def edge_objects(self) -> list[tuple[str, str]]:
        """(kind, name) of the rendered Gateway and HTTPRoutes."""
        return [(d["kind"], d["metadata"]["name"]) for d in self.docs()
                if d["kind"] in ("Gateway", "HTTPRoute")]

    def edge_verdicts(self, objects: list[tuple[str, str]] | None = None) -> dict[str, "object"]:
        """``Gateway/<name>`` and ``HTTPRoute/<name>`` -> verdict, for what is rendered."""
        from .. import kreadiness

        gateway = self._render_const("GATEWAY_NAME")
        ns = self.stack.namespace
        out = {}
        for kind, name in self.edge_objects() if objects is None else objects:
            if kind == "Gateway":
                out[f"Gateway/{name}"] = kreadiness.gateway_verdict(
                    self.kube.get("gateway.networking.k8s.io/v1", kind, name, ns))
            elif kind == "HTTPRoute":
                out[f"HTTPRoute/{name}"] = kreadiness.route_verdict(
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
                    return f"Gateway programmed, {routes} routes accepted"
                if time.monotonic() - started > seconds:
                    raise CheckFailed(f"edge: not ready after {seconds:.0f} s: " + "; ".join(
                        f"{n}: {v.reason}" for n, v in pending.items()), hint=hint)
                status.update("routes: waiting for " + ", ".join(
                    f"{n} ({v.reason})" for n, v in pending.items()))
                time.sleep(1)

    def wait_for(self, fn, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not fn():
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what} not ready after {seconds:.0f} s",
                                  hint="inv status --mode kind; kubectl --kubeconfig "
                                       f"{self.kubeconfig} get pods -A")
            time.sleep(2)

    # ------------------------------------------------------------------ status

    def endpoints(self) -> list[dict]:
        return [{"route": r.name, "service": r.service,
                 "url": self.stack.transport.browser_url(r.host, r.path)}
                for r in sorted(self.stack.routes().values(), key=lambda r: r.name)]

    def status(self, logs: bool = False) -> list[ServiceStatus]:
        urls = {}
        for e in self.endpoints():
            urls.setdefault(e["service"], e["url"])
        if not self.cluster_exists() or not self.kubeconfig.exists():
            return [ServiceStatus(n, s.phase, s.workload, "missing", "none", False,
                                  f"no cluster {self.cluster}", urls.get(n, ""))
                    for n, s in self.stack.services.items()]
        self.kube  # the context guard runs before anything else
        from .. import kreadiness

        rows = []
        for name, svc in self.stack.services.items():
            if svc.role == "edge":
                rows.append(self.edge_status(name, svc.phase))
                continue
            kind = {"stateless": "Deployment", "stateful": "StatefulSet",
                    "job": "Job"}[svc.workload]
            v = self.verdict(kind, name)
            rows.append(kreadiness.service_status(name, svc.phase, svc.workload, v,
                                                  urls.get(name, "")))
        return rows

    def edge_status(self, name: str, phase: int) -> ServiceStatus:
        """The edge's row: the Gateway's verdict, else the first route that is not
        served (a ready Gateway with a rejected route is not a working edge)."""
        if not self.files:
            from ..render import RenderContext, render

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

    def cluster_summary(self) -> dict:
        """The cluster and its nodes, for the head of ``status``."""
        if not self.cluster_exists() or not self.kubeconfig.exists():
            return {"cluster": self.cluster, "exists": False, "nodes": []}
        nodes = []
        for node in self.kube.list("v1", "Node"):
            ready = next((c for c in (node.get("status") or {}).get("conditions") or []
                          if c.get("type") == "Ready"), {})
            nodes.append({"name": node["metadata"]["name"],
                          "ready": ready.get("status") == "True",
                          "reason": "" if ready.get("status") == "True"
                          else ready.get("message") or ready.get("reason") or "no Ready condition"})
        return {"cluster": self.cluster, "exists": True, "nodes": nodes}

    # ------------------------------------------------------------------ down

    def down(self, dry_run: bool = False) -> str:
        """Delete parity's cluster and the local artifacts made for it, nothing else
        (``dry_run``: name them, delete nothing)."""
        removed = []
        if self.cluster_exists():
            if not self.kubeconfig.exists():
                self.kind("export", "kubeconfig", "--name", self.cluster, "--kubeconfig",
                          str(self.kubeconfig), timeout=60)
            record = self.kube.get("v1", "ConfigMap", STATE_CONFIGMAP, "kube-system")
            if record is None:
                raise InputError(
                    f"the kind cluster {self.cluster} has no parity record; parity only "
                    "deletes clusters it created", hint=f"kind delete cluster --name "
                    f"{self.cluster} if it is yours to delete")
            if not dry_run:
                self.kind("delete", "cluster", "--name", self.cluster, "--kubeconfig",
                          str(self.kubeconfig), timeout=300)
            removed.append(f"cluster {self.cluster} (with its volumes)")
        if self.kind_dir.exists():
            if not dry_run:
                shutil.rmtree(self.kind_dir)
            removed.append(str(self.kind_dir.relative_to(self.root)))
        if dry_run:
            return ("would remove (nothing removed yet): " + ", ".join(removed)) if removed \
                else "would remove nothing (no cluster)"
        return "removed " + (", ".join(removed) if removed else "nothing (no cluster)")
