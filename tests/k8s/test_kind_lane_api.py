"""The kind lane's driver (:class:`parity.lifecycle.kind.KindLane`) against the real
control plane of tests/k8s/conftest.py (issue 7: up applies every phase in waves,
waits, reports status with reasons, prunes what is no longer rendered, and down
leaves nothing of parity's).

The driver runs in-process on a copy of the repository's inputs (base/, overlays/,
checks/, apps/ in tmp), so ``.parity/`` is written there, never in the work tree.
Every API call it makes goes through :class:`parity.lifecycle.kind.kube.Kube` to the real
kube-apiserver; the controllers, the scheduler and kwok take the workloads to ready.

**kind is a fake here**, so that every driver step can be checked against the API
server's own record with kwok's speed and without a node (the real kind lane runs
end to end in ``nox -s e2e_kind``). ``tests/k8s/fakes/kind`` (with ``fake_kind.py``) is put first on PATH: it
answers ``kind version``, ``get clusters``, ``create cluster`` (writes the kubeconfig
the driver asked for, context ``kind-<name>``, pointing at the real control plane with
the fixture's credentials), ``export kubeconfig``, ``load docker-image`` (logged, so
the tests see which images were loaded) and ``delete cluster``. A kind cluster
vanishes with everything in it; the fake **simulates** that by deleting, through
the API, the namespace ``parity`` and every object labelled
``parity.dev/managed=true`` (and kubeadm's CoreDNS objects, which its ``create``
makes again). A second, foreign kind cluster ("dev") is listed by the fake all along:
parity must never touch it.

**Other stand-ins** for what a real machine would provide:

- the edge: the driver installs the vendored Gateway API CRDs and ``edge.yaml`` (the
  Traefik Deployment, its RBAC, NodePort Service and GatewayClass) for real; kwok
  makes the Traefik pod Ready, but no container runs, so no controller reports
  status (see the Gateway controller stand-in below). ``nox -s e2e_kind`` runs the
  real Traefik on a real kind cluster;
- ``docker run --privileged``: preflight's probe is replaced by a stand-in that says
  it works (kind is a fake here: no node container is ever started);
- images: ``parity.images.build`` is a no-op and ``KindLane.local_images`` returns
  fixed image IDs (no Docker build); ``node_images`` is the real method on a first
  ``up`` (``docker exec <node> crictl`` fails: there is no node, so the node has
  nothing) and is replaced by the same fixed IDs where a test says the node has them;
- preflight runs for real: it needs the Docker engine (CI installs it; ``docker
  info`` only) and kubectl (for its client version); ports 80/443 are moved to free
  high ports through ``PARITY_HTTP_PORT``/``PARITY_HTTPS_PORT`` so that another
  process on this machine cannot make the tests fail;
- the Gateway controller's status reporting: :class:`GatewayController`, a thread
  that reports on the Gateway and every HTTPRoute what a conformant controller
  reports (``Accepted``/``Programmed``; per parent ``Accepted``, False when no
  listener has the route's section, and ``ResolvedRefs``, False when a backend
  Service is missing). ``up`` waits for these, so the stand-in runs throughout; it
  routes no traffic;
- the CrashLoopBackOff of test 3 is written into a pod's status by the test (kwok runs
  no container that could crash); the pending PVC next to it is real (a claim of a
  StorageClass that no provisioner serves, as the real scheduler and controllers
  leave it).

Throughout the module ``HOME`` and ``KUBECONFIG`` name a kubeconfig whose current
context points at a live listener on 127.0.0.1 that counts connections (someone
else's API server): it must never receive one.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import requests
import yaml

from foreign import ForeignAPI  # tests/foreign.py
from parity import images as parity_images
from parity import secrets as parity_secrets
from parity import tls
from parity.errors import CheckFailed, InputError
from parity.lifecycle.kind import edge as kind_edge_module
from parity.lifecycle.kind import FIELD_MANAGER, Kube
from parity.model import Selection
from parity.lifecycle import UI
from parity import docker as parity_docker
from parity.lifecycle.kind import STATE_CONFIGMAP, KindLane
from parity.render.edge import (CONTROLLER_NAME, EDGE_DEPLOYMENT, EDGE_NAMESPACE,
                                EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS, EDGE_SERVICE,
                                GATEWAY_API_VERSION)
from parity.model import load
from parity.model.schema import KIND_NODE_IMAGE
from parity.render.kind import (ANNOTATION_WAVE, EDGE_TLS_SECRET, GATEWAY_CLASS, GATEWAY_NAME,
                                LOCAL_CA_CONFIGMAP, LOCAL_CA_KEY)

if TYPE_CHECKING:  # tests/k8s/conftest.py's helper (conftest is not importable by name)
    from conftest import ControlPlane

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
FAKES = Path(__file__).resolve().parent / "fakes"
KUBECTL = os.environ.get("PARITY_KUBECTL", "kubectl")
CLUSTER = "parity-parity"
OTHER_CLUSTER = "dev"           # someone else's kind cluster, listed by the fake kind
NAMESPACE = "parity"
LABEL = "parity.dev/managed=true"
LANE_TIMEOUT = 150              # the driver's per-wave wait, seconds

#: A CRD of the tests' own, for the guarded client's "kind not there" answers.
WIDGET_CRD = {
    "apiVersion": "apiextensions.k8s.io/v1", "kind": "CustomResourceDefinition",
    "metadata": {"name": "widgets.parity.test"},
    "spec": {"group": "parity.test", "scope": "Namespaced",
             "names": {"plural": "widgets", "singular": "widget", "kind": "Widget"},
             "versions": [{"name": "v1", "served": True, "storage": True,
                           "schema": {"openAPIV3Schema": {"type": "object",
                                                          "x-kubernetes-preserve-unknown-fields": True}}}]}}

#: What ``docker image inspect`` would say for the images parity builds (stand-in).
IMAGE_IDS = {
    "parity/api:0.1.0": "sha256:" + "a1" * 32,
    "parity/web:0.1.0": "sha256:" + "b2" * 32,
    "parity/worker:0.1.0": "sha256:" + "c3" * 32,
}

_PLURALS = {"Namespace": "namespaces", "Secret": "secrets", "ConfigMap": "configmaps",
            "Service": "services", "Deployment": "deployments", "StatefulSet": "statefulsets",
            "Job": "jobs", "PersistentVolumeClaim": "persistentvolumeclaims",
            "Gateway": "gateways", "HTTPRoute": "httproutes", "Ingress": "ingresses",
            "GatewayClass": "gatewayclasses", "Pod": "pods",
            "ServiceAccount": "serviceaccounts", "ClusterRole": "clusterroles",
            "ClusterRoleBinding": "clusterrolebindings"}
_GROUPS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1",
           "Gateway": "gateway.networking.k8s.io/v1", "HTTPRoute": "gateway.networking.k8s.io/v1",
           "GatewayClass": "gateway.networking.k8s.io/v1", "Ingress": "networking.k8s.io/v1",
           "ClusterRole": "rbac.authorization.k8s.io/v1",
           "ClusterRoleBinding": "rbac.authorization.k8s.io/v1"}


# --------------------------------------------------------------------------- API helpers

def path_of(kind: str, name: str, namespace: str | None = None) -> str:
    gv = _GROUPS.get(kind, "v1")
    prefix = f"/api/{gv}" if "/" not in gv else f"/apis/{gv}"
    ns = f"/namespaces/{namespace}" if namespace else ""
    return f"{prefix}{ns}/{_PLURALS[kind]}/{name}"


def doc_path(doc: dict) -> str:
    meta = doc["metadata"]
    return path_of(doc["kind"], meta["name"], meta.get("namespace"))


def ident(doc: dict) -> tuple[str, str, str]:
    meta = doc["metadata"]
    return doc["kind"], meta.get("namespace") or "", meta["name"]


def applied_by_parity(obj: dict) -> bool:
    return any(m.get("manager") == FIELD_MANAGER and m.get("operation") == "Apply"
               for m in obj["metadata"].get("managedFields") or [])


def conditions(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in (obj.get("status") or {}).get("conditions") or []}


def sts_ready(cp: ControlPlane, name: str) -> bool:
    sts = cp.get(path_of("StatefulSet", name, NAMESPACE))
    if not sts:
        return False
    status = sts.get("status") or {}
    return (status.get("observedGeneration", 0) >= sts["metadata"]["generation"]
            and status.get("readyReplicas", 0) == sts["spec"].get("replicas", 1))


def digest(values: dict[str, str]) -> str:
    """Compare secret values without ever showing them in an assertion message."""
    return hashlib.sha256(json.dumps(values, sort_keys=True).encode()).hexdigest()


def labelled_leftovers(cp: ControlPlane) -> list[str]:
    """Every object of every kind labelled parity.dev/managed=true, as kind/name."""
    kinds = cp.kubectl("api-resources", "--verbs=list", "-o", "name").stdout.split()
    out = cp.kubectl("get", ",".join(kinds), "--all-namespaces", "-l", LABEL, "-o", "name",
                     "--ignore-not-found").stdout.split()
    return out


class GatewayController:
    """Stand-in for the Gateway controller's status reporting (kwok runs no container,
    so Traefik's pod is Ready but nothing in it runs). It reports what a conformant
    controller reports, from the objects in the API server: the Gateway ``Accepted``
    and ``Programmed``; for each HTTPRoute parentRef of it, ``Accepted`` (False,
    ``NoMatchingParent``, when the Gateway has no listener of that sectionName) and
    ``ResolvedRefs`` (False, ``BackendNotFound``, when a backend Service does not
    exist), each with the observed generation. It does not route traffic."""

    GW = "gateway.networking.k8s.io/v1"

    def __init__(self, cp: ControlPlane):
        self.cp = cp
        self.session = requests.Session()  # its own: a Session is not shared across threads
        self.session.trust_env = False
        self.session.verify, self.session.cert = cp.session.verify, cp.session.cert
        self.errors: list[str] = []  # what the stand-in could not do, for failing tests
        self.paused = threading.Event()
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self.run, name="gateway-stand-in", daemon=True)
        self.thread.start()

    def get(self, path: str) -> dict | None:
        r = self.session.get(self.cp.server + path, timeout=10)
        if not r.ok and r.status_code != 404:
            self.errors.append(f"GET {path}: {r.status_code} {r.text[:300]}")
        return r.json() if r.ok else None

    def patch_status(self, path: str, status: dict) -> None:
        r = self.session.patch(self.cp.server + path + "/status", json={"status": status},
                               headers={"Content-Type": "application/merge-patch+json"},
                               timeout=10)
        if not r.ok:
            self.errors.append(f"PATCH {path}/status: {r.status_code} {r.text[:300]}")

    @staticmethod
    def cond(kind: str, ok: bool, reason: str, generation: int, message: str = "") -> dict:
        return {"type": kind, "status": "True" if ok else "False", "reason": reason,
                "message": message or reason, "observedGeneration": generation,
                "lastTransitionTime": "2026-01-01T00:00:00Z"}

    @staticmethod
    def key(conds) -> list:
        return sorted((c["type"], c["status"], c["reason"], c.get("observedGeneration"))
                      for c in conds or [])

    def same_parents(self, a: list, b: list) -> bool:
        return [(p.get("parentRef"), self.key(p.get("conditions"))) for p in a] == \
               [(p.get("parentRef"), self.key(p.get("conditions"))) for p in b]

    def step(self) -> None:
        gw_path = path_of("Gateway", GATEWAY_NAME, NAMESPACE)
        gw = self.get(gw_path)
        if gw is None:
            return
        gen = gw["metadata"]["generation"]
        want = [self.cond(t, True, t, gen) for t in ("Accepted", "Programmed")]
        if self.key((gw.get("status") or {}).get("conditions")) != self.key(want):
            self.patch_status(gw_path, {"conditions": want})
        listeners = {x["name"] for x in gw["spec"]["listeners"]}
        routes = (self.get(f"/apis/{self.GW}/namespaces/{NAMESPACE}/httproutes") or {}).get(
            "items") or []
        services = {x["metadata"]["name"] for x in (self.get(
            f"/api/v1/namespaces/{NAMESPACE}/services") or {}).get("items") or []}
        for route in routes:
            rgen = route["metadata"]["generation"]
            missing = [b["name"] for rule in route["spec"].get("rules") or []
                       for b in rule.get("backendRefs") or [] if b["name"] not in services]
            parents = []
            for ref in route["spec"].get("parentRefs") or []:
                if ref.get("name") != GATEWAY_NAME:
                    continue
                section = ref.get("sectionName")
                ok = section is None or section in listeners
                parents.append({"parentRef": ref, "controllerName": CONTROLLER_NAME,
                                "conditions": [
                    self.cond("Accepted", ok, "Accepted" if ok else "NoMatchingParent", rgen,
                              "" if ok else f"no listener named {section}"),
                    self.cond("ResolvedRefs", not missing,
                              "ResolvedRefs" if not missing else "BackendNotFound", rgen,
                              "" if not missing else f"service {NAMESPACE}/{missing[0]} not "
                                                     "found")]})
            if not self.same_parents((route.get("status") or {}).get("parents") or [],
                                     parents):
                self.patch_status(f"/apis/{self.GW}/namespaces/{NAMESPACE}/httproutes/"
                                  f"{route['metadata']['name']}", {"parents": parents})

    def run(self) -> None:
        while not self.stopped.wait(0.3):
            if self.paused.is_set():
                continue
            try:
                self.step()
            except (requests.RequestException, KeyError, ValueError) as exc:
                # objects come and go while clusters are created and deleted
                self.errors.append(f"{type(exc).__name__}: {exc}")
                del self.errors[:-20]

    def close(self) -> None:
        self.stopped.set()
        self.thread.join(5)


def wait_gone(cp: ControlPlane, paths: list[str], timeout: float = 120) -> None:
    cp.wait_for(f"{len(paths)} objects gone",
                lambda: not [p for p in paths if cp.get(p) is not None],
                timeout=timeout, interval=0.5)


# --------------------------------------------------------------------------- stand-ins

def copy_inputs(dst: Path) -> Path:
    dst.mkdir(parents=True)
    for name in ("base", "overlays", "images", "checks", "apps"):
        shutil.copytree(ROOT / name, dst / name, ignore=shutil.ignore_patterns(
            "local", "__pycache__", "*.egg-info"))
    return dst


def free_port_pair() -> tuple[int, int]:
    socks = []
    try:
        for _ in range(2):
            s = socket.socket()
            s.bind(("127.0.0.1", 0))
            socks.append(s)
        return socks[0].getsockname()[1], socks[1].getsockname()[1]
    finally:
        for s in socks:
            s.close()


def fresh_cluster(cp: ControlPlane) -> None:
    """The control plane as a new kind cluster has it: nothing of parity's and no edge
    (other test modules of the session leave their objects behind)."""
    cp.kubectl("delete", "namespace", NAMESPACE, EDGE_NAMESPACE, "--ignore-not-found",
               "--wait=false")
    cp.kubectl("delete", "gatewayclass", GATEWAY_CLASS, "--ignore-not-found")
    cp.kubectl("delete", "clusterrole,clusterrolebinding", EDGE_DEPLOYMENT, "--ignore-not-found")
    cp.kubectl("delete", "-n", "kube-system", f"configmap/{STATE_CONFIGMAP}", "configmap/coredns",
               "deployment/coredns", "--ignore-not-found")
    wait_gone(cp, [path_of("Namespace", NAMESPACE), path_of("Namespace", EDGE_NAMESPACE)], 150)


# --------------------------------------------------------------------------- the world

@dataclass
class World:
    cp: ControlPlane
    root: Path
    fake_state: Path
    foreign: ForeignAPI
    foreign_kubeconfig: Path
    ports: dict[str, str] = field(default_factory=dict)
    gateway: "GatewayController | None" = None

    @property
    def state(self) -> Path:
        return self.root / ".parity"

    @property
    def kubeconfig(self) -> Path:
        return self.state / "kind" / "kubeconfig"

    def lane(self, phase: int = 1, *, recreate: bool = False, environ: dict | None = None,
             timeout: float = LANE_TIMEOUT, profile: str = "default",
             sets: tuple[str, ...] = ()) -> KindLane:
        sel = Selection("kind", phase, profile=profile, sets=sets,
                        environ={**self.ports, **(environ or {})})
        return KindLane(self.root, load(self.root, sel), UI(quiet=True), timeout=timeout,
                        recreate=recreate)

    def up(self, phase: int = 1) -> KindLane:
        lane = self.lane(phase)
        lane.up()
        return lane

    def calls(self) -> list[list[str]]:
        f = self.fake_state / "calls.jsonl"
        return [json.loads(line) for line in f.read_text().splitlines()] if f.exists() else []

    def loads(self) -> list[str]:
        f = self.fake_state / "loads.log"
        return f.read_text().splitlines() if f.exists() else []

    def deletes(self) -> list[str]:
        f = self.fake_state / "deletes.log"
        return f.read_text().splitlines() if f.exists() else []

    def clusters(self) -> set[str]:
        return {p.name for p in (self.fake_state / "clusters").iterdir()}

    def kind(self, *args: str) -> subprocess.CompletedProcess:
        """The fake kind, run by the test itself (as a person at a shell would)."""
        proc = subprocess.run(["kind", *args], capture_output=True, text=True, timeout=300)
        assert proc.returncode == 0, proc.stderr
        return proc


@pytest.fixture(scope="module")
def world(control_plane: ControlPlane, tmp_path_factory) -> World:
    cp = control_plane
    base = tmp_path_factory.mktemp("kind-lane")
    root = copy_inputs(base / "repo")

    fake_state = base / "fake-kind"
    (fake_state / "clusters").mkdir(parents=True)
    (fake_state / "clusters" / OTHER_CLUSTER).write_text("{}")

    foreign = ForeignAPI()
    home = base / "home"
    foreign_cfg = home / ".kube" / "config"
    foreign_cfg.parent.mkdir(parents=True)
    foreign_cfg.write_text(yaml.safe_dump({
        "apiVersion": "v1", "kind": "Config", "current-context": "prod-admin",
        "contexts": [{"name": "prod-admin", "context": {"cluster": "prod", "user": "admin"}}],
        "clusters": [{"name": "prod", "cluster": {"server": foreign.url,
                                                  "insecure-skip-tls-verify": True}}],
        "users": [{"name": "admin", "user": {"token": "not-a-real-token"}}]}))

    http, https = free_port_pair()
    mp = pytest.MonkeyPatch()
    mp.setenv("PATH", f"{FAKES}{os.pathsep}{os.environ.get('PATH', '')}")
    mp.setenv("FAKE_KIND_STATE", str(fake_state))
    mp.setenv("FAKE_KIND_UPSTREAM", str(cp.kubeconfig))
    mp.setenv("FAKE_KIND_PYTHON", sys.executable)
    mp.setenv("FAKE_KIND_KUBECTL", shutil.which(KUBECTL) or KUBECTL)
    mp.setenv("HOME", str(home))
    mp.setenv("KUBECONFIG", str(foreign_cfg))
    mp.setattr(parity_images, "build", lambda *a, **k: [])
    mp.setattr(parity_docker, "privileged_probe", lambda: (True, "stand-in: kind is a fake"))
    mp.setattr(KindLane, "local_images",  # the offline profile's images: not built here
               lambda self: {i: IMAGE_IDS[i] for i in self.built_images() if i in IMAGE_IDS})
    fresh_cluster(cp)
    w = World(cp, root, fake_state, foreign, foreign_cfg,
              {"PARITY_HTTP_PORT": str(http), "PARITY_HTTPS_PORT": str(https)})
    w.gateway = GatewayController(cp)
    try:
        yield w
    finally:
        w.gateway.close()
        if CLUSTER in w.clusters():
            subprocess.run(["kind", "delete", "cluster", "--name", CLUSTER], capture_output=True,
                           timeout=300)
        fresh_cluster(cp)
        mp.undo()
        foreign.close()


@pytest.fixture(autouse=True)
def _stand_in_errors(world: World):
    """Show what the Gateway stand-in could not do (printed: pytest shows it on failure)."""
    yield
    if world.gateway is not None and world.gateway.errors:
        print("Gateway stand-in errors:", *world.gateway.errors[-5:], sep="\n  ")


def ensure_no_cluster(world: World) -> None:
    if CLUSTER in world.clusters():
        world.kind("delete", "cluster", "--name", CLUSTER)
    shutil.rmtree(world.state / "kind", ignore_errors=True)


# --------------------------------------------------------------------------- 1. up from nothing

def test_up_phase1_from_nothing_applies_in_waves_and_reports_ready(world: World, monkeypatch):
    cp = world.cp
    ensure_no_cluster(world)
    applied: list[dict] = []
    waited: list[tuple[str, list[str], dict[str, bool]]] = []
    real_apply, real_wait = Kube.apply, KindLane.wait_workloads

    def recording_apply(self, doc, force=True):
        entry = {"id": ident(doc)}
        if ident(doc) == ("Deployment", NAMESPACE, "api"):
            entry["deps_ready"] = {n: sts_ready(cp, n) for n in ("postgres", "redis")}
        applied.append(entry)
        return real_apply(self, doc, force)

    def recording_wait(self, wave, workloads, namespace=None):
        real_wait(self, wave, workloads, namespace)
        names = sorted(d["metadata"]["name"] for d in workloads)
        waited.append((wave, names, {n: self.verdict(d["kind"], n, namespace).ready
                                     for n, d in zip(names, sorted(
                                         workloads, key=lambda d: d["metadata"]["name"]))}))

    monkeypatch.setattr(Kube, "apply", recording_apply)
    monkeypatch.setattr(KindLane, "wait_workloads", recording_wait)
    calls_before = len(world.calls())

    lane = world.lane(1)
    report = lane.up()

    # the plan, from what was observed: no cluster, so create, install, load all
    assert [(a.step, a.action) for a in lane.actions] == [
        ("cluster", "create"), ("edge", "install"), ("images", "load"), ("images", "load"),
        ("apply", "apply"), ("prune", "prune")]
    assert lane.observed.cluster_exists is False and lane.observed.node_images == {}
    calls = world.calls()[calls_before:]
    creates = [c for c in calls if c[:2] == ["create", "cluster"]]
    assert creates == [["create", "cluster", "--name", CLUSTER, "--config",
                        str(lane.out / "kind-config.yaml"), "--kubeconfig", str(world.kubeconfig),
                        "--wait", "180s"]]
    assert not [c for c in calls if c[:1] == ["delete"]]
    assert world.loads() == [f"{CLUSTER} parity/api:0.1.0", f"{CLUSTER} parity/web:0.1.0"]
    assert world.clusters() == {CLUSTER, OTHER_CLUSTER}
    kc = yaml.safe_load(world.kubeconfig.read_text())
    assert kc["current-context"] == f"kind-{CLUSTER}"
    assert {e["service"] for e in report["endpoints"]} >= {"api", "web", "keycloak"}

    # the record of what the cluster was created from, and of the edge installed
    record = cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system"))
    assert record["data"]["kind-config.yaml"] == lane.files["kind-config.yaml"]
    assert record["data"]["edge.sha256"] == lane.edge_digest()
    assert applied_by_parity(record)

    # the edge: the vendored Gateway API CRDs, then edge.yaml (Traefik), applied by parity
    for plural in ("gatewayclasses", "gateways", "httproutes", "grpcroutes",
                   "referencegrants", "backendtlspolicies"):
        crd = cp.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions/"
                     f"{plural}.gateway.networking.k8s.io")
        assert conditions(crd).get("Established") == "True", plural
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == \
            GATEWAY_API_VERSION
    for d in lane.docs("edge.yaml"):
        assert applied_by_parity(cp.get(doc_path(d))), ident(d)
    gc = cp.get(path_of("GatewayClass", GATEWAY_CLASS))
    assert gc["spec"]["controllerName"] == CONTROLLER_NAME
    edge = cp.get(path_of("Deployment", EDGE_DEPLOYMENT, EDGE_NAMESPACE))
    assert conditions(edge).get("Available") == "True"
    assert edge["spec"]["template"]["spec"]["containers"][0]["image"] == "traefik:v3.6.12"
    service = cp.get(path_of("Service", EDGE_SERVICE, EDGE_NAMESPACE))
    assert (service["spec"]["type"], sorted(p["nodePort"] for p in service["spec"]["ports"])[:2]) \
        == ("NodePort", [EDGE_NODEPORT_HTTP, EDGE_NODEPORT_HTTPS])

    # every rendered object exists, applied by parity (server-side apply)
    docs = lane.docs()
    missing = [ident(d) for d in docs if cp.get(doc_path(d)) is None]
    assert not missing, missing
    not_ours = [ident(d) for d in docs if not applied_by_parity(cp.get(doc_path(d)))]
    assert not not_ours, not_ours

    # Secrets carry the values of .parity/secrets (compared by digest: never shown)
    stack = lane.stack
    opaque = [d for d in docs if d["kind"] == "Secret"]
    assert len(opaque) == 8 and {d["metadata"]["name"] for d in opaque} <= set(stack.secrets)
    for d in opaque:
        obj = cp.get(doc_path(d))
        got = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        want = parity_secrets.values(world.state, stack.secrets[d["metadata"]["name"]])
        assert want and digest(got) == digest(want), \
            f"Secret {d['metadata']['name']}: values differ from .parity/secrets (not shown)"
    tls_secret = cp.get(path_of("Secret", EDGE_TLS_SECRET, NAMESPACE))
    crt, key = tls.cert_paths(world.state)
    assert tls_secret["type"] == "kubernetes.io/tls"
    assert base64.b64decode(tls_secret["data"]["tls.crt"]) == crt.read_bytes()
    assert digest({"k": tls_secret["data"]["tls.key"]}) == \
        digest({"k": base64.b64encode(key.read_bytes()).decode()})
    ca = cp.get(path_of("ConfigMap", LOCAL_CA_CONFIGMAP, NAMESPACE))
    assert ca["data"][LOCAL_CA_KEY] == tls.ca_paths(world.state)[0].read_text()

    # CoreDNS: the adopted Corefile with the rewrite, and the restart annotation
    rendered_corefile = next(d for d in docs if ident(d) == ("ConfigMap", "kube-system", "coredns"))
    corefile = cp.get(path_of("ConfigMap", "coredns", "kube-system"))
    assert corefile["data"]["Corefile"] == rendered_corefile["data"]["Corefile"]
    assert "rewrite" in corefile["data"]["Corefile"] and applied_by_parity(corefile)
    coredns = cp.get(path_of("Deployment", "coredns", "kube-system"))
    want_hash = hashlib.sha256(rendered_corefile["data"]["Corefile"].encode()).hexdigest()[:16]
    assert coredns["spec"]["template"]["metadata"]["annotations"]["parity.dev/corefile-hash"] \
        == want_hash

    # waves: stack-level objects, then wave 0, then wave 1; each wave waited for
    wave_of = {ident(d): int((d["metadata"].get("annotations") or {}).get(ANNOTATION_WAVE, -1))
               for d in docs if ident(d) != ("ConfigMap", "kube-system", "coredns")}
    first_wave_apply = next(i for i, e in enumerate(applied) if e["id"] == ("Gateway", NAMESPACE, "edge"))
    stack_start = max(i for i, e in enumerate(applied[:first_wave_apply])
                      if e["id"] == ("Namespace", "", NAMESPACE))
    sequence = [wave_of[e["id"]] for e in applied[stack_start:] if e["id"] in wave_of]
    assert sequence == sorted(sequence), sequence
    assert {e["id"] for e in applied[stack_start:]} >= set(wave_of)
    api_apply = next(e for e in applied if e["id"] == ("Deployment", NAMESPACE, "api"))
    assert api_apply["deps_ready"] == {"postgres": True, "redis": True}
    assert waited == [("edge", [EDGE_DEPLOYMENT], {EDGE_DEPLOYMENT: True}),
                      ("wave 0", ["postgres", "redis", "web"],
                       {"postgres": True, "redis": True, "web": True}),
                      ("wave 1", ["api", "keycloak"], {"api": True, "keycloak": True})]

    # prune kept everything it must: the StatefulSets' claims are bound and alive
    for sts in ("postgres", "redis"):
        pvc = cp.get(path_of("PersistentVolumeClaim", f"data-{sts}-0", NAMESPACE))
        assert pvc is not None, f"data-{sts}-0 was deleted"
        assert not pvc["metadata"].get("deletionTimestamp"), f"prune deleted data-{sts}-0"
        assert pvc["status"]["phase"] == "Bound"

    # up waited for the edge: the Gateway programmed, every route accepted on every
    # listener it attaches to (443, and the moved browser port these tests use)
    for name in ("api", "web", "auth", "edge-https-redirect"):
        route = cp.get(path_of("HTTPRoute", name, NAMESPACE))
        assert {(p["parentRef"].get("sectionName"), c["type"], c["status"])
                for p in route["status"]["parents"] for c in p["conditions"]} == {
            (section, t, "True") for section in
            (("http",) if name == "edge-https-redirect" else ("https", "https-host"))
            for t in ("Accepted", "ResolvedRefs")}, name
    rows = {r.service: r for r in lane.status()}
    assert set(rows) == {"api", "edge", "keycloak", "postgres", "redis", "web"}
    assert all(r.ready for r in rows.values()), {n: (r.state, r.reason) for n, r in rows.items()}
    assert {n: (r.state, r.health, r.reason) for n, r in rows.items() if n != "edge"} == {
        "api": ("available", "healthy", "2 of 2 available"),
        "web": ("available", "healthy", "2 of 2 available"),
        "keycloak": ("available", "healthy", "1 of 1 available"),
        "postgres": ("available", "healthy", "1 of 1 ready"),
        "redis": ("available", "healthy", "1 of 1 ready")}
    assert (rows["edge"].state, rows["edge"].health) == ("programmed", "healthy")
    assert rows["api"].endpoint.startswith("https://")
    summary = lane.cluster_summary()
    assert summary["exists"] and summary["nodes"] == [
        {"name": cp.node_name, "ready": True, "reason": ""}]


def test_second_up_keeps_the_cluster_and_loads_nothing(world: World, monkeypatch):
    cp = world.cp
    if CLUSTER not in world.clusters():
        world.up(1)
    monkeypatch.setattr(KindLane, "node_images",
                        lambda self: {i: IMAGE_IDS[i] for i in self.built_images()})
    loads_before, calls_before = world.loads(), len(world.calls())
    lane = world.lane(1)
    lane.up()
    assert [(a.step, a.action) for a in lane.actions] == [
        ("cluster", "keep"), ("edge", "keep"), ("images", "skip"), ("images", "skip"),
        ("apply", "apply"), ("prune", "prune")]
    assert world.loads() == loads_before
    assert not [c for c in world.calls()[calls_before:] if c[0] in ("create", "delete", "load")]
    # re-applied Secrets keep their values (stringData in the same apply)
    rendered = {d["metadata"]["name"] for d in lane.docs() if d["kind"] == "Secret"}
    assert rendered
    for name in sorted(rendered):
        secret = lane.stack.secrets[name]
        obj = cp.get(path_of("Secret", name, NAMESPACE))
        got = {k: base64.b64decode(v).decode() for k, v in (obj.get("data") or {}).items()}
        assert digest(got) == digest(parity_secrets.values(world.state, secret)), name
    for sts in ("postgres", "redis"):
        pvc = cp.get(path_of("PersistentVolumeClaim", f"data-{sts}-0", NAMESPACE))
        assert pvc and not pvc["metadata"].get("deletionTimestamp"), f"data-{sts}-0 pruned"


def test_a_changed_edge_is_upgraded_in_place(world: World, monkeypatch):
    """An edge installed from other manifests (an older parity, another Traefik build)
    is re-applied and recorded anew; the cluster and the stack stay."""
    cp = world.cp
    if CLUSTER not in world.clusters():
        world.up(1)
    record_path = path_of("ConfigMap", STATE_CONFIGMAP, "kube-system")
    r = cp.api("PATCH", record_path, json={"data": {"edge.sha256": "an-older-edge"}},
               headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text
    calls_before = len(world.calls())
    lane = world.lane(1)
    lane.up()
    assert [(a.step, a.action) for a in lane.actions][:2] == [("cluster", "keep"),
                                                              ("edge", "upgrade")]
    assert cp.get(record_path)["data"]["edge.sha256"] == lane.edge_digest()
    assert not [c for c in world.calls()[calls_before:] if c[0] in ("create", "delete")]
    again = world.lane(1)
    again.up()
    assert ("edge", "keep") in [(a.step, a.action) for a in again.actions]


def test_a_job_whose_config_changed_runs_again_and_an_unchanged_one_does_not(world: World):
    """A Job's pod template cannot change: up replaces a Job whose config changed
    (it runs again, as compose reruns it) and leaves an unchanged one alone."""
    cp = world.cp
    world.up(3)
    path = path_of("Job", "bootstrap-artifacts", NAMESPACE)
    first = cp.get(path)["metadata"]["uid"]
    world.up(3)
    assert cp.get(path)["metadata"]["uid"] == first            # unchanged: not rerun
    lane = world.lane(3, sets=("services.bootstrap-artifacts.env.WORKER_ROLE=bootstrap-again",))
    lane.up()
    job = cp.get(path)
    assert job["metadata"]["uid"] != first and conditions(job).get("Complete") == "True"
    world.up(1)


# --------------------------------------------------------------------------- 3. status reasons

def test_status_reports_reasons_from_real_objects(world: World):
    cp = world.cp
    lane = world.up(1)

    # (a) a pod of web in CrashLoopBackOff (the waiting state is written by the test:
    #     kwok runs no container that could crash)
    pods = cp.get(f"/api/v1/namespaces/{NAMESPACE}/pods?labelSelector="
                  "app.kubernetes.io%2Fname%3Dweb")["items"]
    pod = sorted(pods, key=lambda p: p["metadata"]["name"])[0]
    pname, uid = pod["metadata"]["name"], pod["metadata"]["uid"]
    image = pod["spec"]["containers"][0]["image"]
    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    patch = {"status": {
        "conditions": [
            {"type": "Ready", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [web]", "lastTransitionTime": now},
            {"type": "ContainersReady", "status": "False", "reason": "ContainersNotReady",
             "message": "containers with unready status: [web]", "lastTransitionTime": now}],
        "containerStatuses": [{
            "name": "web", "image": image, "imageID": "", "ready": False, "started": False,
            "restartCount": 4,
            "state": {"waiting": {"reason": "CrashLoopBackOff", "message":
                                  f"back-off 1m20s restarting failed container=web "
                                  f"pod={pname}_{NAMESPACE}({uid})"}},
            "lastState": {"terminated": {"exitCode": 1, "reason": "Error",
                                         "startedAt": now, "finishedAt": now}}}]}}
    r = cp.api("PATCH", path_of("Pod", pname, NAMESPACE) + "/status", json=patch,
               headers={"Content-Type": "application/strategic-merge-patch+json"})
    assert r.status_code == 200, r.text

    # (b) redis scaled to 2: its second claim is of a StorageClass no provisioner
    #     serves, so it stays Pending (real controllers and scheduler)
    cp.create(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims", {
        "apiVersion": "v1", "kind": "PersistentVolumeClaim",
        "metadata": {"name": "data-redis-1", "namespace": NAMESPACE},
        "spec": {"accessModes": ["ReadWriteOnce"], "storageClassName": "no-provisioner",
                 "resources": {"requests": {"storage": "1Gi"}}}})
    r = cp.api("PATCH", path_of("StatefulSet", "redis", NAMESPACE), json={"spec": {"replicas": 2}},
               headers={"Content-Type": "application/merge-patch+json"})
    assert r.status_code == 200, r.text

    def rows():
        got = {r.service: r for r in lane.status()}
        return got if not got["web"].ready and not got["redis"].ready \
            and got["redis"].state == "pending" else None

    got = cp.wait_for("web and redis reported not ready", rows, timeout=60, interval=0.5)
    web, redis = got["web"], got["redis"]
    assert (web.state, web.health) == ("progressing", "failed")
    assert web.reason == ("web: CrashLoopBackOff (restarts 4): back-off 1m20s restarting "
                          "failed container; last exit code 1")
    assert (redis.state, redis.health) == ("pending", "starting")
    assert redis.reason == "pending PVC data-redis-1: waiting for a volume to be provisioned"
    # the real scheduler agrees: redis-1 cannot be placed while its claim is unbound
    pod1 = cp.get(path_of("Pod", "redis-1", NAMESPACE))
    assert pod1["status"]["phase"] == "Pending"
    assert conditions(pod1).get("PodScheduled") == "False"
    assert all(r.ready for n, r in got.items() if n not in ("web", "redis", "edge"))

    # up puts it right again (replicas back to 1; the broken pod replaced)
    cp.api("DELETE", path_of("Pod", pname, NAMESPACE)).raise_for_status()
    lane = world.up(1)
    cp.api("DELETE", path_of("PersistentVolumeClaim", "data-redis-1", NAMESPACE))
    rows_after = {r.service: r for r in lane.status()}
    assert all(r.ready for r in rows_after.values()), \
        {n: r.reason for n, r in rows_after.items() if not r.ready}


# --------------------------------------------------------------------------- 2. prune

def test_up_phase3_then_phase1_prunes_what_is_no_longer_rendered(world: World):
    cp = world.cp
    world.up(1)
    lane3 = world.up(3)
    docs3 = lane3.docs()
    missing = [ident(d) for d in docs3 if cp.get(doc_path(d)) is None]
    assert not missing, missing
    job = cp.get(path_of("Job", "bootstrap-artifacts", NAMESPACE))
    assert conditions(job).get("Complete") == "True"   # kwok completed the Job's pod
    rows = {r.service: r for r in lane3.status()}
    assert all(r.ready for r in rows.values()), {n: r.reason for n, r in rows.items()}
    assert rows["bootstrap-artifacts"].state == "complete"
    assert re.fullmatch(r"completed in \d+s", rows["bootstrap-artifacts"].reason)
    phase3_claims = [c["metadata"]["name"] for c in cp.get(
        f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")["items"]
        if not c["metadata"]["name"].startswith(("data-postgres-", "data-redis-"))]
    assert phase3_claims, "phase 3's StatefulSets have no claims"

    lane1 = world.up(1)
    docs1 = lane1.docs()
    only3 = {ident(d) for d in docs3} - {ident(d) for d in docs1}
    assert {n for k, _, n in only3 if k in ("Deployment", "StatefulSet", "Job")} == {
        "nats", "temporal", "app-runtime-worker", "notification-worker", "provisioning-worker",
        "registry", "vault", "bootstrap-artifacts"}
    assert ("Secret", NAMESPACE, "vault-dev") in only3
    assert ("HTTPRoute", NAMESPACE, "temporal-ui") in only3
    # the workloads, their ConfigMaps, Services, routes and Secrets are gone; their
    # claims stay (data outlives a phase change, as compose's volumes do)
    def alive(kind: str, name: str, namespace: str | None) -> bool:
        obj = cp.get(path_of(kind, name, namespace))
        return obj is not None and not obj["metadata"].get("deletionTimestamp")

    still = sorted(i for i in only3 if alive(i[0], i[2], i[1] or None))
    assert not still, f"not pruned: {still}"
    wait_gone(cp, [path_of(k, n, ns or None) for k, ns, n in only3])
    for claim in phase3_claims:
        assert alive("PersistentVolumeClaim", claim, NAMESPACE), claim
    # phase 1 stays, the adopted CoreDNS ConfigMap and the driver's objects included
    for d in docs1:
        obj = cp.get(doc_path(d))
        assert obj is not None and not obj["metadata"].get("deletionTimestamp"), ident(d)
    assert "rewrite" in cp.get(path_of("ConfigMap", "coredns", "kube-system"))["data"]["Corefile"]
    for kind, name in (("Secret", EDGE_TLS_SECRET), ("ConfigMap", LOCAL_CA_CONFIGMAP),
                       ("PersistentVolumeClaim", "data-postgres-0"),
                       ("PersistentVolumeClaim", "data-redis-0")):
        obj = cp.get(path_of(kind, name, NAMESPACE))
        assert obj is not None and not obj["metadata"].get("deletionTimestamp"), name
    assert cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system")) is not None
    assert all(r.ready for r in lane1.status())


# --------------------------------------------------------------------------- 4. drifted config

def _with_route(monkeypatch, change) -> None:
    """Render as usual, then ``change`` the api HTTPRoute (what a broken overlay or a
    hand edit could do: the renderer itself never writes these)."""
    real = KindLane.docs

    def docs(self, name="manifests.yaml"):
        out = real(self, name)
        for d in out:
            if d["kind"] == "HTTPRoute" and d["metadata"]["name"] == "api":
                change(d)
        return out

    monkeypatch.setattr(KindLane, "docs", docs)


def test_up_waits_for_the_routes_and_names_a_backend_that_does_not_resolve(world: World,
                                                                           monkeypatch):
    def gone(d):
        d["spec"]["rules"][0]["backendRefs"][0]["name"] = "api-gone"

    _with_route(monkeypatch, gone)
    monkeypatch.setattr(kind_edge_module, "EDGE_READY_SECONDS", 6)
    lane = world.lane(1)
    with pytest.raises(CheckFailed) as exc:
        lane.up()
    assert exc.value.exit_code == 1
    assert exc.value.message == (
        "edge: not ready after 6 s: HTTPRoute/api: references not resolved (listener "
        "https): BackendNotFound (service parity/api-gone not found)")
    assert exc.value.hint.startswith("kubectl --kubeconfig .parity/kind/kubeconfig -n parity "
                                     "describe gateway,httproute")
    edge = {r.service: r for r in lane.status()}["edge"]
    assert (edge.ready, edge.reason) == (False, "HTTPRoute/api: references not resolved "
                                         "(listener https): BackendNotFound (service "
                                         "parity/api-gone not found)")
    monkeypatch.undo()
    world.up(1)  # the rendered route again: resolved, and up completes
    assert {r.service: r for r in world.lane(1).status()}["edge"].ready


def test_a_route_no_listener_takes_fails_up_at_once(world: World, monkeypatch):
    def elsewhere(d):
        d["spec"]["parentRefs"] = [{"name": "edge", "sectionName": "admin"}]

    _with_route(monkeypatch, elsewhere)
    started = time.monotonic()
    with pytest.raises(CheckFailed) as exc:
        world.lane(1).up()
    assert exc.value.message == ("edge: HTTPRoute/api: not accepted (listener admin): "
                                 "NoMatchingParent (no listener named admin)")
    assert time.monotonic() - started < kind_edge_module.EDGE_READY_SECONDS
    monkeypatch.undo()
    world.up(1)


def test_status_says_the_edge_waits_for_its_controller(world: World):
    world.up(1)
    world.gateway.paused.set()
    try:
        path = path_of("Gateway", GATEWAY_NAME, NAMESPACE)
        r = world.cp.api("PATCH", path + "/status", json={"status": {"conditions": []}},
                         headers={"Content-Type": "application/merge-patch+json"})
        assert r.status_code == 200, r.text
        edge = {r.service: r for r in world.lane(1).status()}["edge"]
        assert (edge.ready, edge.state, edge.reason) == (
            False, "pending", "waiting for the Gateway controller")
    finally:
        world.gateway.paused.clear()
    world.cp.wait_for("the stand-in controller to program the Gateway again", lambda: {
        r.service: r for r in world.lane(1).status()}["edge"].ready, timeout=30)


def test_another_profile_on_existing_data_is_refused_before_anything_changes(world: World):
    # default pins postgres:16.4 and redis:7.4.1; offline builds Debian's 15 and 7.0,
    # which cannot open those data files. The observed StatefulSets are the record.
    cp = world.cp
    world.up(1)
    sts_before = {n: cp.get(path_of("StatefulSet", n, NAMESPACE))["metadata"]["resourceVersion"]
                  for n in ("postgres", "redis")}
    calls_before = len(world.calls())
    # the offline profile's own node image would need a new cluster (refused as a
    # drifted kind-config, test below); keep the node so the data guard is what speaks
    keep_node = (f"stack.kind.node.image={KIND_NODE_IMAGE}",)
    with pytest.raises(InputError) as exc:
        world.lane(1, profile="offline", sets=keep_node).up()
    assert exc.value.exit_code == 2
    lines = exc.value.render().splitlines()
    assert lines[0] == "2 problems found:"
    assert lines[1] == (
        "overlays/images/offline.yaml:22: services.postgres.image: the data in the PVCs of "
        "StatefulSet postgres was written by postgres:16.4-bookworm; this up would start "
        "parity-offline/postgres:15-bookworm on it (another image repository), which cannot "
        "be assumed to read it")
    assert "services.redis.image: the data in the PVCs of StatefulSet redis" in lines[3]
    assert "inv reset --mode kind --phase 1 --profile offline" in exc.value.render()
    assert not [c for c in world.calls()[calls_before:] if c[0] in ("create", "delete", "load")]
    for name, version in sts_before.items():
        assert cp.get(path_of("StatefulSet", name, NAMESPACE))["metadata"][
            "resourceVersion"] == version


def test_drifted_kind_config_is_refused_unless_recreate(world: World):
    cp = world.cp
    world.up(1)
    old_port = world.ports["PARITY_HTTP_PORT"]
    new_port = str(free_port_pair()[0])
    record_before = cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system"))
    calls_before = len(world.calls())

    with pytest.raises(InputError) as exc:
        world.lane(1, environ={"PARITY_HTTP_PORT": new_port}).up()
    assert exc.value.exit_code == 2
    text = exc.value.render()
    assert text.startswith(f"the cluster {CLUSTER} was created from another kind-config.yaml; "
                           "a kind cluster cannot change it in place:")
    assert f"-        hostPort: {old_port}\n" in text and f"+        hostPort: {new_port}\n" in text
    assert text.endswith("next: recreate it (its data is lost): inv up --mode kind --recreate")
    assert not [c for c in world.calls()[calls_before:] if c[0] in ("create", "delete", "load")]
    record = cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system"))
    assert record["metadata"]["resourceVersion"] == record_before["metadata"]["resourceVersion"]

    loads_before = len(world.loads())
    lane = world.lane(1, environ={"PARITY_HTTP_PORT": new_port}, recreate=True)
    try:
        lane.up()
    finally:  # the tests after this one talk to the recreated cluster
        if any(c[:2] == ["create", "cluster"] for c in world.calls()[calls_before:]):
            world.ports["PARITY_HTTP_PORT"] = new_port
    assert [(a.step, a.action) for a in lane.actions][:2] == [("cluster", "recreate"),
                                                              ("edge", "install")]
    lifecycle = [c[:4] for c in world.calls()[calls_before:] if c[0] in ("create", "delete")]
    assert lifecycle == [["delete", "cluster", "--name", CLUSTER],
                         ["create", "cluster", "--name", CLUSTER]]
    assert world.loads()[loads_before:] == [f"{CLUSTER} parity/api:0.1.0",
                                            f"{CLUSTER} parity/web:0.1.0"]  # a new node has none
    record = cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system"))
    assert f"hostPort: {new_port}" in record["data"]["kind-config.yaml"]
    assert record["metadata"]["uid"] != record_before["metadata"]["uid"]
    assert all(r.ready for r in lane.status())


# --------------------------------------------------------------------------- 5. down

def test_down_deletes_only_parity_cluster_and_leaves_nothing(world: World, tmp_path):
    cp = world.cp
    if CLUSTER not in world.clusters():
        world.up(1)
    calls_before, deletes_before = len(world.calls()), len(world.deletes())
    lane = world.lane(1)
    data = world.state / "data" / "kind"
    kept = sorted(p.name for p in data.iterdir())
    assert "parity_data-postgres-0" in kept  # parity's PVs, pre-bound (decision 0016)
    keep = (f"{len(kept)} data volumes: " + ", ".join(f".parity/data/kind/{d}" for d in kept)
            + "; `inv reset --mode kind` or `inv down --mode kind --volumes` removes them")
    assert lane.down(dry_run=True) == (f"would remove (nothing removed yet): cluster {CLUSTER}"
                                       f", .parity/kind\nwould keep {keep}")
    assert not [c for c in world.calls()[calls_before:] if c[0] == "delete"]
    assert CLUSTER in world.clusters() and (world.state / "kind").exists()
    assert lane.down() == f"removed cluster {CLUSTER}, .parity/kind\nkept {keep}"
    assert data.is_dir() and sorted(p.name for p in data.iterdir()) == kept
    # who wrote the data is remembered for the next up's check (decision 0011)
    assert (world.state / "data" / "writers-kind.json").is_file()
    deletes = [c for c in world.calls()[calls_before:] if c[0] == "delete"]
    assert deletes == [["delete", "cluster", "--name", CLUSTER, "--kubeconfig",
                        str(world.kubeconfig)]]
    assert world.deletes()[deletes_before:] == [CLUSTER]
    assert world.clusters() == {OTHER_CLUSTER}          # someone else's cluster untouched
    assert not (world.state / "kind").exists()
    assert world.state.joinpath("secrets").is_dir()      # down removes .parity/kind only
    assert cp.get(path_of("Namespace", NAMESPACE)) is None
    assert labelled_leftovers(cp) == []
    assert cp.get(path_of("GatewayClass", GATEWAY_CLASS)) is None
    assert cp.get(path_of("ConfigMap", STATE_CONFIGMAP, "kube-system")) is None
    rows = lane.status()
    assert {(r.state, r.reason) for r in rows} == {("missing", f"no cluster {CLUSTER}")}
    assert lane.down() == f"removed nothing (no cluster)\nkept {keep}"
    assert lane.down(dry_run=True) == f"would remove nothing (no cluster)\nwould keep {keep}"
    assert lane.down(dry_run=True, volumes=True) == (
        f"would remove (nothing removed yet): {len(kept)} data volumes (.parity/data/kind/)")

    # a cluster of parity's name that parity did not create (no record): refused
    own = tmp_path / "users-own-kubeconfig"
    world.kind("create", "cluster", "--name", CLUSTER, "--kubeconfig", str(own))
    calls_before = len(world.calls())
    try:
        with pytest.raises(InputError) as exc:
            world.lane(1).down()
        assert exc.value.exit_code == 2
        assert f"the kind cluster {CLUSTER} has no parity record" in exc.value.render()
        calls = world.calls()[calls_before:]
        assert ["export", "kubeconfig", "--name", CLUSTER, "--kubeconfig",
                str(world.kubeconfig)] in calls
        assert not [c for c in calls if c[0] == "delete"]
        assert CLUSTER in world.clusters()
    finally:
        world.kind("delete", "cluster", "--name", CLUSTER, "--kubeconfig", str(own))
        shutil.rmtree(world.state / "kind", ignore_errors=True)


def _tree(path: Path) -> dict[str, tuple]:
    """Every file and directory under ``path`` with its type, size and mtime."""
    if not path.exists():
        return {}
    return {str(p.relative_to(path)): (p.is_dir(), p.lstat().st_size, p.lstat().st_mtime_ns)
            for p in [path, *path.rglob("*")]}


def test_down_dry_run_writes_nothing_even_without_parity_kubeconfig(world: World):
    """A dry run whose kubeconfig is gone reads the cluster's record through a
    kubeconfig kind prints (held in memory): it writes no file, not in .parity, not in
    HOME (~/.kube), not the kubernetes client's discovery cache in the temp dir."""
    import tempfile

    if CLUSTER not in world.clusters():
        world.up(1)
    world.kubeconfig.unlink()
    home = Path(os.environ["HOME"])
    tmp = Path(tempfile.gettempdir())
    osrcp = {p.name for p in tmp.glob("osrcp-*.json")}
    before = (_tree(world.state), _tree(home))
    calls_before = len(world.calls())
    out = world.lane(1).down(dry_run=True)
    assert out.startswith(f"would remove (nothing removed yet): cluster {CLUSTER}, "
                          ".parity/kind\nwould keep "), out  # down keeps data (0016)
    assert (_tree(world.state), _tree(home)) == before
    assert {p.name for p in tmp.glob("osrcp-*.json")} == osrcp
    calls = world.calls()[calls_before:]
    assert ["get", "kubeconfig", "--name", CLUSTER] in calls
    assert not [c for c in calls if c[0] in ("export", "delete")]
    assert CLUSTER in world.clusters()
    assert world.foreign.count == 0


# --------------------------------------------------------------------------- 6. the guard

def test_guard_no_connection_to_the_current_foreign_context(world: World):
    """HOME and KUBECONFIG (set for the whole module) name a kubeconfig whose current
    context is a live foreign listener; up, status and down against the real control
    plane as the parity cluster must not connect to it once."""
    before = world.foreign_kubeconfig.read_bytes()
    assert yaml.safe_load(before)["current-context"] == "prod-admin"
    assert os.environ["KUBECONFIG"] == str(world.foreign_kubeconfig)
    lane = world.up(1)
    assert all(r.ready for r in lane.status())
    assert lane.down().startswith(f"removed cluster {CLUSTER}")
    assert world.foreign.count == 0
    assert world.foreign_kubeconfig.read_bytes() == before
    assert sorted(p.name for p in world.foreign_kubeconfig.parent.iterdir()) == ["config"]


def test_kube_get_and_list_of_a_kind_the_cluster_lacks(world: World):
    """A partial earlier run can leave the cluster without an API group the driver
    asks for (the edge's CRDs not installed yet), and a CRD can go after the client
    discovered it: the guarded client answers "not there", as for a missing object,
    instead of raising the client library's exception."""
    cp = world.cp
    ensure_no_cluster(world)
    kc = world.fake_state / "kubeconfig-probe"
    world.kind("create", "cluster", "--name", CLUSTER, "--kubeconfig", str(kc))
    group = "parity.test/v1"
    crd = WIDGET_CRD["metadata"]["name"]
    try:
        r = cp.api("POST", "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
                   json=WIDGET_CRD)
        assert r.status_code in (201, 409), r.text
        cp.wait_for("the Widget CRD Established", lambda: conditions(cp.get(
            f"/apis/apiextensions.k8s.io/v1/customresourcedefinitions/{crd}") or {})
            .get("Established") == "True", timeout=30)
        kube = Kube(kc, CLUSTER)
        assert kube.list(group, "Widget", NAMESPACE) == []                 # discovered
        assert kube.get(group, "Gadget", "x", NAMESPACE) is None           # never installed
        assert kube.list(group, "Gadget", NAMESPACE) == []
        cp.kubectl("delete", "crd", crd, "--wait=true")                    # removed after
        cp.wait_for("Widget gone from discovery", lambda: group not in cp.kubectl(
            "api-versions").stdout.split(), timeout=30)
        assert kube.get(group, "Widget", "x", NAMESPACE) is None
        assert kube.list(group, "Widget", NAMESPACE) == []
    finally:
        world.kind("delete", "cluster", "--name", CLUSTER, "--kubeconfig", str(kc))
        cp.kubectl("delete", "crd", crd, "--ignore-not-found")
    assert world.foreign.count == 0
