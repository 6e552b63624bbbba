"""The kind lane's manifests against a real control plane (tests/k8s/conftest.py):
kube-apiserver, kube-controller-manager, kube-scheduler and etcd built from source,
kwok simulating the node and the pods, the Gateway API v1.4.0 CRDs installed.

What this proves beyond schema validation: the real API server accepts every
rendered object by server-side apply (CRD schemas and CEL rules included, the
namespace created before what lives in it, nothing immutable changed from one
phase to the next), and the real controllers take the workloads to ready.

Objects the kind driver provides at apply time are not in the render
(:data:`parity.render.kind.DRIVER_PROVIDED`). Nothing in the API server resolves
those references (no Gateway controller runs here, and kwok mounts no volumes),
so apply would pass without them; the tests still create stand-ins - the
GatewayClass ``parity-edge``, the TLS Secret ``parity-edge-tls``, the ConfigMap
``parity-local-ca`` - so the namespace looks as it will under the driver. The
CoreDNS ConfigMap exists in a kind cluster before parity applies its own (kubeadm
made it); :func:`kind_like` recreates that, owned by the field manager ``kubeadm``,
so the adopted object's conflict is real.
"""

from __future__ import annotations

import base64
import copy
import json
import time
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
import yaml

from parity.model import Selection
from parity.model import load
from parity.render import RenderContext
from parity.render.kind import EDGE_TLS_SECRET, GATEWAY_CLASS, LOCAL_CA_CONFIGMAP, render_kind

if TYPE_CHECKING:  # tests/k8s/conftest.py's helper; conftest modules are not imported
    from conftest import ControlPlane  # by name at run time (tests/ has no packages)

pytestmark = pytest.mark.k8s

ROOT = Path(__file__).resolve().parents[2]
NAMESPACE = "parity"
READY_TIMEOUT_S = 180

# kubeadm's Corefile (what kind's CoreDNS ConfigMap holds before parity adopts it).
KUBEADM_COREFILE = (Path(__file__).parent / "fakes" / "kubeadm-corefile").read_text(
    encoding="utf-8")


def manifests(phase: int) -> str:
    stack = load(ROOT, Selection("kind", phase)).stack
    return render_kind(stack, RenderContext())["manifests.yaml"]


def docs_of(text: str) -> list[dict]:
    return [d for d in yaml.safe_load_all(text) if d]


def dump(docs: list[dict]) -> str:
    return yaml.safe_dump_all(docs, sort_keys=False)


def is_adopted(doc: dict) -> bool:
    return (doc["metadata"].get("annotations") or {}).get("parity.dev/adopted") == "true"


# ------------------------------------------------------------------ object paths and readiness

_PLURAL = {"Namespace": "namespaces", "Secret": "secrets", "ConfigMap": "configmaps",
           "Service": "services", "Deployment": "deployments", "StatefulSet": "statefulsets",
           "Job": "jobs", "PersistentVolumeClaim": "persistentvolumeclaims",
           "Gateway": "gateways", "HTTPRoute": "httproutes", "Ingress": "ingresses"}


def api_path(doc: dict) -> str:
    group_version = doc["apiVersion"]
    prefix = f"/api/{group_version}" if "/" not in group_version else f"/apis/{group_version}"
    meta = doc["metadata"]
    ns = f"/namespaces/{meta['namespace']}" if meta.get("namespace") else ""
    return f"{prefix}{ns}/{_PLURAL[doc['kind']]}/{meta['name']}"


def _conditions(obj: dict) -> dict[str, str]:
    return {c["type"]: c["status"] for c in obj.get("status", {}).get("conditions", []) or []}


def workload_ready(obj: dict) -> bool:
    """The readiness the kind driver waits for, per kind."""
    spec, status, meta = obj.get("spec", {}), obj.get("status", {}), obj["metadata"]
    if status.get("observedGeneration", 0) < meta.get("generation", 1) and obj["kind"] != "Job":
        return False
    if obj["kind"] == "Deployment":
        want = spec.get("replicas", 1)
        return (_conditions(obj).get("Available") == "True" and status.get("readyReplicas", 0) == want
                and status.get("updatedReplicas", 0) == want)
    if obj["kind"] == "StatefulSet":
        want = spec.get("replicas", 1)
        return (status.get("readyReplicas", 0) == want and status.get("availableReplicas", 0) == want
                and status.get("currentRevision") == status.get("updateRevision"))
    if obj["kind"] == "Job":
        return _conditions(obj).get("Complete") == "True"
    raise AssertionError(f"not a workload: {obj['kind']}")


def wait_workloads_ready(cp: ControlPlane, docs: list[dict], timeout: float = READY_TIMEOUT_S) -> float:
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet", "Job")]
    assert workloads, "the render has no workloads"
    t0 = time.monotonic()

    def not_ready() -> list[str]:
        return [f"{d['kind']}/{d['metadata']['name']}" for d in workloads
                if not workload_ready(cp.get(api_path(d)) or {"kind": d["kind"], "metadata": {}})]

    try:
        cp.wait_for(f"{len(workloads)} workloads ready", lambda: not not_ready(), timeout=timeout,
                    interval=0.5)
    except AssertionError:
        pods = cp.kubectl("get", "pods,pvc,events", "-n", NAMESPACE, "-o", "wide", check=False)
        raise AssertionError(f"not ready after {timeout}s: {not_ready()}\n{pods.stdout}{pods.stderr}"
                             f"\nprovisioner errors: {cp.provisioner.errors[-5:]}") from None
    return time.monotonic() - t0


# ------------------------------------------------------------------ cluster state like kind's

@pytest.fixture(scope="module")
def kind_like(control_plane: ControlPlane) -> ControlPlane:
    """What a kind cluster holds before parity applies anything: CoreDNS's ConfigMap,
    owned by kubeadm; plus the driver's GatewayClass stand-in."""
    cp = control_plane
    kubeadm_coredns(cp)
    cp.apply(yaml.safe_dump({
        "apiVersion": "gateway.networking.k8s.io/v1", "kind": "GatewayClass",
        "metadata": {"name": GATEWAY_CLASS},
        "spec": {"controllerName": "parity.dev/test-stand-in"}}))
    return cp


def kubeadm_coredns(cp: ControlPlane) -> None:
    """CoreDNS's ConfigMap as kubeadm leaves it in a new kind cluster (recreated, so
    parity owns nothing of it)."""
    path = "/api/v1/namespaces/kube-system/configmaps/coredns"
    if cp.get(path) is not None:
        cp.api("DELETE", path).raise_for_status()
    cp.create("/api/v1/namespaces/kube-system/configmaps?fieldManager=kubeadm", {
        "apiVersion": "v1", "kind": "ConfigMap",
        "metadata": {"name": "coredns", "namespace": "kube-system"},
        "data": {"Corefile": KUBEADM_COREFILE}})


def driver_stand_ins(cp: ControlPlane) -> None:
    """The namespaced objects the kind driver makes from the local CA (stand-ins:
    a throwaway self-signed pair; the API server checks the TLS Secret's keys)."""
    pki = cp.workdir / "pki"
    crt, key = (pki / "serving.crt").read_bytes(), (pki / "serving.key").read_bytes()
    cp.apply(dump([
        {"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
         "metadata": {"name": EDGE_TLS_SECRET, "namespace": NAMESPACE},
         "data": {"tls.crt": base64.b64encode(crt).decode(), "tls.key": base64.b64encode(key).decode()}},
        {"apiVersion": "v1", "kind": "ConfigMap",
         "metadata": {"name": LOCAL_CA_CONFIGMAP, "namespace": NAMESPACE},
         "data": {"ca.crt": (pki / "ca.crt").read_text()}},
    ]), "--field-manager", "parity-driver-stand-in")


def reset_namespace(cp: ControlPlane) -> None:
    """Delete the stack's namespace (if any) and wait until it is gone: the namespace
    controller, kwok's pod-delete stage and the PVC-protection controller do the
    work (~12 s for phase 3 here, most of it the namespace controller's own pace)."""
    cp.kubectl("delete", "namespace", NAMESPACE, "--ignore-not-found", "--wait=false")
    cp.wait_for(f"namespace {NAMESPACE} deleted",
                lambda: cp.get(f"/api/v1/namespaces/{NAMESPACE}") is None, timeout=120, interval=0.5)


def apply_phase(cp: ControlPlane, phase: int) -> list[dict]:
    """Apply the phase's render as the driver will: by server-side apply, field
    manager ``parity``; the adopted object (CoreDNS) with conflicts forced."""
    docs = docs_of(manifests(phase))
    own = [d for d in docs if not is_adopted(d)]
    adopted = [d for d in docs if is_adopted(d)]
    cp.apply(dump(own))
    if adopted:
        cp.apply(dump(adopted), "--force-conflicts")
    driver_stand_ins(cp)
    return docs


def assert_applied(cp: ControlPlane, docs: list[dict]) -> None:
    """Every rendered object exists, and parity's apply owns fields of it."""
    problems = []
    for d in docs:
        obj = cp.get(api_path(d))
        if obj is None:
            problems.append(f"missing {d['kind']}/{d['metadata']['name']}")
            continue
        managers = {(m["manager"], m["operation"]) for m in obj["metadata"].get("managedFields", [])}
        if ("parity", "Apply") not in managers:
            problems.append(f"{d['kind']}/{d['metadata']['name']} not applied by parity: {managers}")
    assert not problems, "\n".join(problems)


def assert_pods_and_claims(cp: ControlPlane, docs: list[dict]) -> None:
    """Behind "ready": every pod of the stack runs on kwok's node (a Job's pod has
    Succeeded), and every StatefulSet claim is Bound to a provisioned volume."""
    pods = cp.get(f"/api/v1/namespaces/{NAMESPACE}/pods")["items"]
    live = [p for p in pods if not p["metadata"].get("deletionTimestamp")]
    want = sum(d["spec"].get("replicas", 1) for d in docs if d["kind"] in ("Deployment", "StatefulSet")) \
        + sum(1 for d in docs if d["kind"] == "Job")
    assert len(live) == want, [p["metadata"]["name"] for p in live]
    for pod in live:
        owner = pod["metadata"]["ownerReferences"][0]["kind"]
        assert pod["spec"]["nodeName"] == cp.node_name
        assert pod["status"]["phase"] == ("Succeeded" if owner == "Job" else "Running"), pod["status"]
    claims = cp.get(f"/api/v1/namespaces/{NAMESPACE}/persistentvolumeclaims")["items"]
    want_claims = sum(len(d["spec"].get("volumeClaimTemplates", [])) * d["spec"].get("replicas", 1)
                      for d in docs if d["kind"] == "StatefulSet") \
        + sum(1 for d in docs if d["kind"] == "PersistentVolumeClaim")
    assert len(claims) == want_claims
    for claim in claims:
        assert claim["status"]["phase"] == "Bound", claim["status"]
        assert claim["spec"]["storageClassName"] == "standard"  # kind's default class, defaulted


# ------------------------------------------------------------------ tests

def test_control_plane_is_real_and_starts_within_budget(control_plane: ControlPlane):
    cp = control_plane
    stamp = dict(line.split("=", 1) for line in
                 (cp.bindir.parent / ".complete").read_text().splitlines() if "=" in line)
    version = cp.get("/version")
    assert version["gitVersion"] == stamp["kubernetes"], (version, stamp)
    assert cp.start_seconds < cp.start_budget, (
        f"fixture start took {cp.start_seconds}s (budget {cp.start_budget}s): {cp.timings}")
    assert cp.kubeconfig.is_relative_to(cp.workdir)
    crds = cp.get("/apis/apiextensions.k8s.io/v1/customresourcedefinitions")["items"]
    assert {c["metadata"]["name"] for c in crds} >= {
        "gateways.gateway.networking.k8s.io", "httproutes.gateway.networking.k8s.io",
        "gatewayclasses.gateway.networking.k8s.io"}
    for crd in crds:
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/bundle-version"] == "v1.4.0"
        assert crd["metadata"]["annotations"]["gateway.networking.k8s.io/channel"] == "standard"


def test_deployment_reaches_available_through_controllers_and_kwok(control_plane: ControlPlane):
    cp = control_plane
    cp.apply(dump([
        {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "smoke"}},
        {"apiVersion": "apps/v1", "kind": "Deployment",
         "metadata": {"name": "hello", "namespace": "smoke"},
         "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "hello"}},
                  "template": {"metadata": {"labels": {"app": "hello"}}, "spec": {
                      "containers": [{"name": "hello", "image": "registry.invalid/hello:1",
                                      "readinessProbe": {"httpGet": {"path": "/", "port": 8080}}}]}}}},
    ]))
    cp.kubectl("wait", "-n", "smoke", "--for=condition=Available", "--timeout=90s", "deployment/hello")
    dep = cp.get("/apis/apps/v1/namespaces/smoke/deployments/hello")
    assert dep["status"]["readyReplicas"] == 2
    # The deployment controller made a ReplicaSet, the ReplicaSet controller the pods,
    # the scheduler bound them to kwok's node, and kwok ran them.
    pods = cp.get("/api/v1/namespaces/smoke/pods?labelSelector=app%3Dhello")["items"]
    assert len(pods) == 2
    for pod in pods:
        assert pod["spec"]["nodeName"] == cp.node_name
        assert pod["status"]["phase"] == "Running"
        assert _conditions(pod)["Ready"] == "True"
        assert pod["metadata"]["ownerReferences"][0]["kind"] == "ReplicaSet"
    cp.kubectl("delete", "namespace", "smoke", "--wait=false")


def test_adopted_coredns_conflicts_without_force(kind_like: ControlPlane):
    """The render's CoreDNS ConfigMap replaces kubeadm's: without --force-conflicts
    server-side apply refuses it (the kind driver must force exactly these)."""
    cp = kind_like
    adopted = [d for d in docs_of(manifests(1)) if is_adopted(d)]
    assert [(d["kind"], d["metadata"]["name"]) for d in adopted] == [("ConfigMap", "coredns")]
    kubeadm_coredns(cp)
    result = cp.apply(dump(adopted), check=False)
    assert result.returncode != 0
    assert "conflict" in (result.stdout + result.stderr).lower()
    cp.apply(dump(adopted), "--force-conflicts")
    cm = cp.get("/api/v1/namespaces/kube-system/configmaps/coredns")
    owners = {m["manager"]: m["operation"] for m in cm["metadata"]["managedFields"]}
    assert owners.get("parity") == "Apply" and "rewrite" in cm["data"]["Corefile"], owners


@pytest.mark.parametrize("phase", [1, 2, 3])
def test_phase_manifests_accepted_by_server_side_apply_and_ready(kind_like: ControlPlane, phase: int):
    """From an empty namespace: the whole render of one phase, HTTPRoutes and the
    Gateway included, is accepted; then every Deployment is Available, every
    StatefulSet ready (its claims bound by the stand-in provisioner) and every Job
    complete, by the real controllers and kwok."""
    cp = kind_like
    reset_namespace(cp)
    docs = apply_phase(cp, phase)
    assert_applied(cp, docs)
    kinds = {d["kind"] for d in docs}
    assert {"Gateway", "HTTPRoute", "Deployment", "StatefulSet"} <= kinds
    took = wait_workloads_ready(cp, docs)
    print(f"\nphase {phase}: {len(docs)} objects applied; workloads ready in {took:.1f}s")
    assert_pods_and_claims(cp, docs)
    corefile = cp.get("/api/v1/namespaces/kube-system/configmaps/coredns")["data"]["Corefile"]
    assert "rewrite" in corefile


def test_phases_upgrade_in_place(kind_like: ControlPlane):
    """up phase 1, then 2, then 3 over it: no change between phases touches an
    immutable field (StatefulSet selectors and claim templates, Job templates...)."""
    cp = kind_like
    reset_namespace(cp)
    for phase in (1, 2, 3):
        docs = apply_phase(cp, phase)
        assert_applied(cp, docs)
    took = wait_workloads_ready(cp, docs)
    print(f"\nphases 1->2->3 in place: ready in {took:.1f}s")
    assert_pods_and_claims(cp, docs)


def _api_route() -> dict:
    routes = [d for d in docs_of(manifests(1)) if d["kind"] == "HTTPRoute"
              and any(r.get("matches") for r in d["spec"]["rules"])]
    assert routes, "the phase-1 render has no HTTPRoute with path matches"
    route = copy.deepcopy(routes[0])
    route["metadata"]["namespace"] = "gw-negative"
    return route


def _prefix_path_type(route: dict) -> None:
    route["spec"]["rules"][0]["matches"][0]["path"]["type"] = "Prefix"  # Ingress's word, not Gateway's


def _relative_path(route: dict) -> None:
    route["spec"]["rules"][0]["matches"][0]["path"]["value"] = "api"  # CEL: must start with '/'


def _too_many_hostnames(route: dict) -> None:
    route["spec"]["hostnames"] = [f"h{i}.parity.localhost" for i in range(17)]  # maxItems 16


@pytest.mark.parametrize("break_it, expected", [
    (_prefix_path_type, 'Unsupported value: "Prefix"'),
    (_relative_path, "must be an absolute path"),
    (_too_many_hostnames, "must have at most 16 items"),
], ids=["enum-path-type", "cel-absolute-path", "max-items"])
def test_invalid_httproute_rejected_by_crd_schema(control_plane: ControlPlane, break_it, expected):
    cp = control_plane
    cp.apply(yaml.safe_dump({"apiVersion": "v1", "kind": "Namespace",
                             "metadata": {"name": "gw-negative"}}))
    good = _api_route()
    accepted = cp.apply(yaml.safe_dump(good), "--dry-run=server")  # the control: valid as rendered
    assert accepted.returncode == 0
    bad = copy.deepcopy(good)
    break_it(bad)
    result = cp.apply(yaml.safe_dump(bad), check=False)
    out = result.stdout + result.stderr
    assert result.returncode != 0, f"the API server accepted an invalid HTTPRoute:\n{json.dumps(bad)}"
    assert expected in out, out
