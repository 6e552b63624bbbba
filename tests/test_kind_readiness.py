"""Readiness verdicts (:mod:`parity.lifecycle.kind.readiness`) on recorded status documents.

Each file in ``tests/fixtures/k8s-status/`` is one case: a ``kind: List`` as
``kubectl get <workload> pods pvc -o yaml`` prints it, holding the workload object,
its pods and its claims, with full status blocks (conditions, observedGeneration,
revisions, container states, timestamps). They are recorded status documents,
written after real API output (Kubernetes v1.31, kind) and checked here against
the Kubernetes 1.31 schemas with unknown fields rejected; the test asserts the exact
verdict (ready, state, health, reason) for each.

They pin down the interpretation; they cannot show that a real controller produces
these documents. The tests against a real control plane (``tests/k8s/``: the API
server and controllers built from source, kwok for the node) complement them by
driving real objects to ready.
"""

from __future__ import annotations

import copy
from pathlib import Path

import pytest
import yaml

from parity.lifecycle.kind.readiness import (Verdict, evaluate, pods_for, pvcs_for,
                                             service_status, workload_kind)
from parity.lifecycle import ServiceStatus
from parity.validators import K8S_OLDEST, k8s_validate

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "k8s-status"
WORKLOADS = ("Deployment", "StatefulSet", "Job")

#: case -> the exact verdict.
CASES = {
    "deployment-available":
        Verdict(True, "available", "healthy", "2 of 2 available"),
    "deployment-rolling-out":
        Verdict(False, "rolling out", "starting", "1 of 2 updated"),
    "deployment-progress-deadline":
        Verdict(False, "failed", "unhealthy", "progress deadline exceeded: keycloak: readiness "
                "probe failing (running since 2025-01-14T10:02:11Z)"),
    "deployment-crashloop":
        Verdict(False, "progressing", "failed", "api: CrashLoopBackOff (restarts 5): back-off "
                "2m40s restarting failed container; last exit code 1"),
    "deployment-image-pull-backoff":
        Verdict(False, "progressing", "failed", 'notification-worker: ImagePullBackOff: '
                'Back-off pulling image "parity/worker:0.1.0"'),
    "deployment-create-container-config-error":
        Verdict(False, "progressing", "failed", "api: CreateContainerConfigError: couldn't find "
                "key signing-key in Secret parity/api-session"),
    "deployment-oomkilled":
        Verdict(False, "progressing", "failed",
                "api: OOMKilled (restarts 3): exit code 137, memory limit 512Mi"),
    "deployment-unschedulable":
        Verdict(False, "pending", "starting", "unschedulable: 0/1 nodes are available: 1 "
                "Insufficient memory. preemption: 0/1 nodes are available: 1 No preemption "
                "victims found for incoming pod."),
    "deployment-not-ready":
        Verdict(False, "progressing", "unhealthy",
                "vault: readiness probe failing (running since 2025-01-14T10:02:11Z)"),
    "statefulset-ready":
        Verdict(True, "available", "healthy", "1 of 1 ready"),
    "statefulset-rolling-update":
        Verdict(False, "rolling out", "starting", "1 of 3 updated to revision nats-5f7b8c6d9"),
    "statefulset-pending-pvc":
        Verdict(False, "pending", "starting",
                "pending PVC data-postgres-0: waiting for a volume to be provisioned"),
    "statefulset-init-crashloop":
        Verdict(False, "progressing", "failed", "init container migrate: CrashLoopBackOff "
                "(restarts 2): back-off 20s restarting failed container; last exit code 2"),
    "job-complete":
        Verdict(True, "complete", "completed", "completed in 14s"),
    "job-failed":
        Verdict(False, "failed", "failed", "BackoffLimitExceeded: Job has reached the specified "
                "backoff limit; bootstrap-artifacts: exited with code 1 (Error)"),
    "job-running":
        Verdict(False, "running", "running", "running: 1 active, 0 failed"),
    "deployment-scaled-to-zero":
        Verdict(True, "available", "none", "scaled to 0 replicas"),
    "object-missing":
        Verdict(False, "missing", "none", "not created yet"),
    "deployment-stale-generation":
        Verdict(False, "pending", "starting",
                "waiting for the controller to observe generation 4 (observed 3)"),
}


def items(case: str) -> list[dict]:
    doc = yaml.safe_load((FIXTURES / f"{case}.yaml").read_text(encoding="utf-8"))
    assert doc["kind"] == "List"
    return doc["items"]


def load(case: str) -> tuple[dict | None, list[dict], list[dict]]:
    """The workload, and its pods and claims selected as the kind lane does."""
    docs = items(case)
    workloads = [d for d in docs if d["kind"] in WORKLOADS]
    assert len(workloads) <= 1
    obj = workloads[0] if workloads else None
    pods = [d for d in docs if d["kind"] == "Pod"]
    pvcs = [d for d in docs if d["kind"] == "PersistentVolumeClaim"]
    if obj is None:
        return None, [], []
    return obj, pods_for(obj["spec"]["selector"], pods), pvcs_for(obj, pvcs)


# --------------------------------------------------------------------------- the cases

def test_every_fixture_is_a_case():
    assert {p.stem for p in FIXTURES.glob("*.yaml")} == set(CASES)


@pytest.mark.parametrize("case", sorted(CASES))
def test_verdict(case):
    assert evaluate(*load(case)) == CASES[case]


@pytest.mark.parametrize("case", sorted(CASES))
def test_fixture_is_valid_kubernetes(case):
    """Strict: a misspelt status field would be a fixture the API never returns."""
    for doc in items(case):
        k8s_validate(doc, K8S_OLDEST)


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "object-missing"))
def test_selection_finds_every_pod_and_claim_of_the_case(case):
    docs = items(case)
    obj, pods, pvcs = load(case)
    assert pods == [d for d in docs if d["kind"] == "Pod"]
    assert pvcs == [d for d in docs if d["kind"] == "PersistentVolumeClaim"]


@pytest.mark.parametrize("case", sorted(c for c in CASES if c != "object-missing"))
def test_list_items_without_kind(case):
    """The API server leaves kind/apiVersion out of list items: the shape tells."""
    obj, pods, pvcs = load(case)
    bare = {k: v for k, v in obj.items() if k not in ("kind", "apiVersion")}
    assert workload_kind(bare) == obj["kind"]
    assert evaluate(bare, pods, pvcs) == CASES[case]


# --------------------------------------------------------------------------- Deployment

def test_deadline_without_pods_gives_the_condition_message():
    obj, _, _ = load("deployment-progress-deadline")
    assert evaluate(obj) == Verdict(
        False, "failed", "failed",
        'progress deadline exceeded: ReplicaSet "keycloak-5c9f8d7b6f" has timed out progressing.')


def test_generic_reason_without_pod_problems():
    obj, _, _ = load("deployment-crashloop")
    assert evaluate(obj) == Verdict(False, "progressing", "starting", "0 of 1 available")


def test_terminating_pods_are_ignored():
    obj, pods, _ = load("deployment-crashloop")
    pods[0]["metadata"]["deletionTimestamp"] = "2025-01-14T10:09:00Z"
    assert evaluate(obj, pods) == Verdict(False, "progressing", "starting", "0 of 1 available")


def test_old_replicas_pending_termination():
    obj, pods, _ = load("deployment-available")
    obj["status"]["replicas"] = 3
    assert evaluate(obj, pods) == Verdict(False, "rolling out", "starting",
                                          "1 old replica pending termination")
    obj["status"]["replicas"] = 4
    assert evaluate(obj, pods).reason == "2 old replicas pending termination"


def test_new_deployment_not_yet_observed():
    obj, _, _ = load("deployment-available")
    del obj["status"]
    assert evaluate(obj) == Verdict(False, "pending", "starting",
                                    "waiting for the controller to observe it")


def test_a_ready_deployment_does_not_look_at_pods():
    obj, _, _ = load("deployment-available")
    _, crashing, _ = load("deployment-crashloop")
    assert evaluate(obj, crashing) == CASES["deployment-available"]


def test_evicted_pod():
    obj, pods, _ = load("deployment-not-ready")
    pods[0]["status"].update({"phase": "Failed", "reason": "Evicted",
                              "message": "The node was low on resource: memory. "})
    assert evaluate(obj, pods) == Verdict(
        False, "progressing", "failed",
        "pod vault-6f4c8d9b7-r5k8j Evicted: The node was low on resource: memory.")


def test_err_image_pull_message_is_kept_on_one_line():
    obj, pods, _ = load("deployment-image-pull-backoff")
    pods[0]["status"]["containerStatuses"][0]["state"]["waiting"] = {
        "reason": "ErrImagePull",
        "message": 'failed to pull and unpack image "docker.io/parity/worker:0.1.0":\n'
                   "failed to resolve reference: pull access denied"}
    assert evaluate(obj, pods).reason == (
        'notification-worker: ErrImagePull: failed to pull and unpack image '
        '"docker.io/parity/worker:0.1.0": failed to resolve reference: pull access denied')


def test_container_errors_outrank_waits():
    """A crashing container says more than an unschedulable sibling or a pending claim."""
    obj, crashing, _ = load("deployment-crashloop")
    _, unschedulable, _ = load("deployment-unschedulable")
    _, _, pending = load("statefulset-pending-pvc")
    verdict = evaluate(obj, unschedulable + crashing, pending)
    assert verdict == CASES["deployment-crashloop"]
    verdict = evaluate(obj, unschedulable, pending)
    assert (verdict.state, verdict.reason.split(":")[0]) == ("pending",
                                                            "pending PVC data-postgres-0")


# --------------------------------------------------------------------------- StatefulSet

def test_statefulset_partition():
    obj, pods, pvcs = load("statefulset-rolling-update")
    obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 1
    assert evaluate(obj, pods, pvcs) == Verdict(
        False, "rolling out", "starting", "1 of 2 updated to revision nats-5f7b8c6d9 (partition 1)")
    obj["spec"]["updateStrategy"]["rollingUpdate"]["partition"] = 2
    assert evaluate(obj, pods, pvcs) == Verdict(
        True, "available", "healthy", "3 of 3 ready, 1 updated (partition 2)")


def test_statefulset_without_rolling_update_block_compares_revisions():
    """kubectl's last check, reached when ``rollingUpdate`` is absent (not defaulted)."""
    obj, pods, pvcs = load("statefulset-rolling-update")
    del obj["spec"]["updateStrategy"]["rollingUpdate"]
    assert evaluate(obj, pods, pvcs) == Verdict(False, "rolling out", "starting",
                                                "1 of 3 pods at revision nats-5f7b8c6d9")
    obj["status"]["currentRevision"] = obj["status"]["updateRevision"]
    assert evaluate(obj, pods, pvcs).ready


def test_statefulset_on_delete_needs_ready_pods_only():
    obj, pods, pvcs = load("statefulset-rolling-update")
    obj["spec"]["updateStrategy"] = {"type": "OnDelete"}
    assert evaluate(obj, pods, pvcs) == Verdict(True, "available", "healthy", "3 of 3 ready")


def test_statefulset_not_observed():
    obj, pods, pvcs = load("statefulset-ready")
    obj["status"] = {"replicas": 0, "availableReplicas": 0}
    assert evaluate(obj, pods, pvcs) == Verdict(False, "pending", "starting",
                                                "waiting for the controller to observe it")


def test_statefulset_waits_for_ready_pods():
    obj, pods, pvcs = load("statefulset-ready")
    obj["status"]["readyReplicas"] = 0
    assert evaluate(obj) == Verdict(False, "progressing", "starting", "0 of 1 ready")


# --------------------------------------------------------------------------- Job

def test_job_deadline_exceeded():
    obj, _, _ = load("job-failed")
    for cond in obj["status"]["conditions"]:
        cond.update(reason="DeadlineExceeded",
                    message="Job was active longer than specified deadline")
    assert evaluate(obj) == Verdict(False, "failed", "failed", "DeadlineExceeded: Job was "
                                    "active longer than specified deadline")


def test_job_failure_target_is_already_failed():
    obj, pods, _ = load("job-failed")
    obj["status"]["conditions"] = obj["status"]["conditions"][:1]
    assert evaluate(obj, pods) == CASES["job-failed"]


def test_job_pod_problem_replaces_the_counts():
    obj, _, _ = load("job-running")
    _, pods, _ = load("deployment-create-container-config-error")
    assert evaluate(obj, pods) == Verdict(False, "running", "failed", CASES[
        "deployment-create-container-config-error"].reason)


def test_job_suspended():
    obj, _, _ = load("job-running")
    obj["spec"]["suspend"] = True
    obj["status"] = {}
    assert evaluate(obj) == Verdict(False, "pending", "none", "suspended")


# --------------------------------------------------------------------------- selection

def test_pods_for():
    pods = [{"metadata": {"name": "a", "labels": {"app": "x", "tier": "web"}}},
            {"metadata": {"name": "b", "labels": {"app": "x"}}},
            {"metadata": {"name": "c", "labels": {"app": "y"}}},
            {"metadata": {"name": "d"}}]

    def names(sel):
        return [p["metadata"]["name"] for p in pods_for(sel, pods)]

    assert names({"matchLabels": {"app": "x"}}) == ["a", "b"]
    assert names({"app": "x", "tier": "web"}) == ["a"]
    assert names({"matchExpressions": [{"key": "app", "operator": "In", "values": ["y"]}]}) == ["c"]
    assert names({"matchExpressions": [{"key": "tier", "operator": "Exists"}]}) == ["a"]
    assert names({"matchLabels": {"app": "x"},
                  "matchExpressions": [{"key": "tier", "operator": "DoesNotExist"}]}) == ["b"]
    assert names({"matchExpressions": [{"key": "app", "operator": "NotIn",
                                        "values": ["x"]}]}) == ["c", "d"]
    assert names({}) == ["a", "b", "c", "d"]
    assert names(None) == []


def test_pvcs_for_statefulset_ordinals_in_use():
    obj, _, _ = load("statefulset-rolling-update")
    claims = [d for d in items("statefulset-rolling-update")
              if d["kind"] == "PersistentVolumeClaim"]
    obj["spec"]["replicas"] = 2
    assert [p["metadata"]["name"] for p in pvcs_for(obj, claims)] == ["data-nats-0", "data-nats-1"]
    foreign = copy.deepcopy(claims[0])
    foreign["metadata"]["name"] = "data-natsx-0"
    assert pvcs_for(obj, [foreign]) == []


def test_pvcs_for_deployment_claims():
    obj, _, _ = load("deployment-available")
    obj["spec"]["template"]["spec"]["volumes"].append(
        {"name": "data", "persistentVolumeClaim": {"claimName": "api-data"}})
    claim = {"metadata": {"name": "api-data"}, "status": {"phase": "Pending"}}
    other = {"metadata": {"name": "web-data"}, "status": {"phase": "Pending"}}
    assert pvcs_for(obj, [other, claim]) == [claim]


# --------------------------------------------------------------------------- rows

def test_service_status():
    row = service_status("api", 1, "stateless", CASES["deployment-crashloop"],
                         endpoint="https://api.parity.localhost/")
    assert row == ServiceStatus("api", 1, "stateless", "progressing", "failed", False,
                                CASES["deployment-crashloop"].reason,
                                "https://api.parity.localhost/")
    assert row.as_json()["logs"] == []


def test_unknown_kind():
    with pytest.raises(ValueError, match="DaemonSet"):
        evaluate({"apiVersion": "apps/v1", "kind": "DaemonSet", "spec": {}, "status": {}})


# --------------------------------------------------------------------------- the edge

def _cond(kind: str, status: str, reason: str, gen: int | None = 1, message: str = "") -> dict:
    out = {"type": kind, "status": status, "reason": reason, "message": message}
    if gen is not None:
        out["observedGeneration"] = gen
    return out


def _gateway(*conds, generation: int = 1) -> dict:
    return {"kind": "Gateway", "metadata": {"name": "edge", "generation": generation},
            "status": {"conditions": list(conds)}}


def _route(*parents, generation: int = 1) -> dict:
    return {"kind": "HTTPRoute", "metadata": {"name": "api", "generation": generation},
            "status": {"parents": [{"parentRef": {"name": gw, "sectionName": section},
                                    "conditions": conds} for gw, section, conds in parents]}}


def test_gateway_verdicts():
    from parity.lifecycle.kind.readiness import gateway_verdict

    # what the Gateway API CRD defaults a new Gateway's status to
    pending = _gateway(_cond("Accepted", "Unknown", "Pending", None, "Waiting for controller"),
                       _cond("Programmed", "Unknown", "Pending", None,
                             "Waiting for controller"))
    assert gateway_verdict(pending) == Verdict(False, "pending", "starting",
                                               "Gateway not programmed: Pending (Waiting for "
                                               "controller)")
    assert gateway_verdict(None).state == "missing"
    ok = _gateway(_cond("Accepted", "True", "Accepted"), _cond("Programmed", "True",
                                                               "Programmed"))
    assert gateway_verdict(ok) == Verdict(True, "programmed", "healthy", "")
    stale = _gateway(_cond("Accepted", "True", "Accepted"),
                     _cond("Programmed", "True", "Programmed"), generation=2)
    assert gateway_verdict(stale).reason == "waiting for the Gateway controller"
    rejected = _gateway(_cond("Accepted", "False", "InvalidParameters", 1,
                              "EnvoyProxy parity-edge not found"))
    assert gateway_verdict(rejected) == Verdict(
        False, "failed", "failed", "Gateway not accepted: InvalidParameters (EnvoyProxy "
                                   "parity-edge not found)")


def test_route_verdicts():
    from parity.lifecycle.kind.readiness import route_verdict

    good = [_cond("Accepted", "True", "Accepted"), _cond("ResolvedRefs", "True", "ResolvedRefs")]
    assert route_verdict(_route(("edge", "https", good), ("edge", "https-host", good)),
                         "edge") == Verdict(True, "accepted", "healthy", "")
    assert route_verdict(_route(("other", "https", good)), "edge").reason == \
        "not yet accepted by Gateway edge"
    unresolved = [_cond("Accepted", "True", "Accepted"),
                  _cond("ResolvedRefs", "False", "BackendNotFound", 1,
                        "service parity/api-gone not found")]
    assert route_verdict(_route(("edge", "https", good), ("edge", "https-host", unresolved)),
                         "edge") == Verdict(
        False, "pending", "starting", "references not resolved (listener https-host): "
                                      "BackendNotFound (service parity/api-gone not found)")
    refused = [_cond("Accepted", "False", "NotAllowedByListeners")]
    assert route_verdict(_route(("edge", "https", refused)), "edge") == Verdict(
        False, "failed", "failed", "not accepted (listener https): NotAllowedByListeners")
    assert route_verdict(_route(("edge", "https", good), generation=3), "edge").reason == \
        "not yet accepted by Gateway edge (listener https)"
