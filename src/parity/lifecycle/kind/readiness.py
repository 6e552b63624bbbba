"""Readiness verdicts for the kind lane: Kubernetes object status in, a verdict out.

This module owns one question: given what the API server says about a workload
(a ``apps/v1`` Deployment or StatefulSet, or a ``batch/v1`` Job) and about its pods
and PersistentVolumeClaims, is the service ready, and if not, why? The answer is a
:class:`Verdict` (``ready``, ``state``, ``health``, a one-line human ``reason``),
and :func:`service_status` turns it into the :class:`~parity.lifecycle.ServiceStatus`
row both lanes print. Everything here is a pure function of plain dicts (the JSON
the API returns, camelCase keys): no I/O, no Kubernetes client. Listing the objects,
waiting and timing out belong to the kind driver.

**Controller verdict.** Deployments and StatefulSets follow ``kubectl rollout
status`` (``k8s.io/kubectl/pkg/polymorphichelpers/rollout_status.go``) check for
check, in its order:

- Deployment: ``metadata.generation > status.observedGeneration`` -> not observed
  yet (``pending``); condition ``Progressing`` with reason
  ``ProgressDeadlineExceeded`` -> ``failed``; ``status.updatedReplicas <
  spec.replicas`` -> ``rolling out``; ``status.replicas > updatedReplicas`` -> old
  replicas pending termination (``rolling out``); ``availableReplicas <
  updatedReplicas`` -> ``progressing``; otherwise ``available`` (``replicas: 0``
  included).
- StatefulSet: ``observedGeneration`` 0 or behind -> ``pending``; ``readyReplicas <
  spec.replicas`` -> ``progressing``; with ``RollingUpdate`` and a ``partition``,
  ``updatedReplicas < spec.replicas - partition`` -> ``rolling out``; with
  ``RollingUpdate`` and no ``rollingUpdate`` block, ``currentRevision !=
  updateRevision`` -> ``rolling out``; otherwise ``available``. The API server
  defaults ``rollingUpdate.partition`` to 0, so on real objects the partition check
  is the one that applies (as in kubectl); an object without ``updateStrategy`` is
  read with that default. ``OnDelete`` has no rollout: ready pods are enough (kubectl
  refuses to judge it).
- Job: condition ``Complete`` -> ``complete``; ``Failed`` (or the interim
  ``FailureTarget`` the controller sets first) -> ``failed`` with the condition's
  reason and message; otherwise ``running`` with the active/failed counts.

**Pod and volume diagnosis.** When the controller verdict is not ready, the pods and
PVCs passed in are searched for the most telling problem (:mod:`.diagnosis`), which
replaces the generic reason. A failed verdict keeps its own state and gets the
problem appended.

**Vocabulary.** ``state``: ``available``, ``progressing``, ``rolling out``,
``pending``, ``running`` (a Job), ``complete``, ``failed``, ``missing``. ``health``,
as in the compose lane's table: ``healthy``, ``starting``, ``unhealthy``,
``completed``, ``failed``, ``none`` (nothing to check: missing, scaled to zero), and
``running`` for a Job still running (the compose lane says the same).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime

from .. import ServiceStatus
from .diagnosis import Problem, condition, diagnose, one_line

__all__ = ["Verdict", "evaluate", "service_status", "pods_for", "pvcs_for", "workload_kind"]


@dataclass(frozen=True)
class Verdict:
    ready: bool
    state: str
    health: str
    reason: str


MISSING = Verdict(False, "missing", "none", "not created yet")


# --------------------------------------------------------------------------- selection

def pods_for(selector: dict | None, pods: Iterable[dict]) -> list[dict]:
    """The pods a selector selects, in input order.

    ``selector`` is a ``LabelSelector`` (``matchLabels`` and ``matchExpressions``
    with ``In``/``NotIn``/``Exists``/``DoesNotExist``, as in ``spec.selector``) or a
    plain label map. As in Kubernetes, ``None`` selects nothing and ``{}`` everything.
    """
    if selector is None:
        return []
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels = selector.get("matchLabels") or {}
        expressions = selector.get("matchExpressions") or []
    else:
        match_labels, expressions = selector, []
    out = []
    for pod in pods:
        labels = (pod.get("metadata") or {}).get("labels") or {}
        if all(labels.get(k) == v for k, v in match_labels.items()) and \
                all(_expression_matches(e, labels) for e in expressions):
            out.append(pod)
    return out


def _expression_matches(expr: dict, labels: dict) -> bool:
    key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
    if op == "In":
        return key in labels and labels[key] in values
    if op == "NotIn":
        return key not in labels or labels[key] not in values
    if op == "Exists":
        return key in labels
    if op == "DoesNotExist":
        return key not in labels
    raise ValueError(f"unknown label selector operator {op!r}")


def pvcs_for(statefulset: dict, pvcs: Iterable[dict]) -> list[dict]:
    """The PVCs a workload's pods need, in input order.

    For a StatefulSet, the claims its controller makes from ``volumeClaimTemplates``:
    ``<template>-<statefulset>-<ordinal>`` for the ordinals in use
    (``spec.ordinals.start`` up to ``spec.replicas`` of them; claims kept from a
    scale-down are not needed). For any workload, also the claims its pod template
    names in ``persistentVolumeClaim.claimName`` volumes (a Deployment's storage).
    """
    meta = statefulset.get("metadata") or {}
    spec = statefulset.get("spec") or {}
    name = meta.get("name", "")
    wanted: set[str] = set()
    templates = spec.get("volumeClaimTemplates") or []
    if templates:
        start = (spec.get("ordinals") or {}).get("start") or 0
        replicas = _replicas(spec)
        for tmpl in templates:
            tname = (tmpl.get("metadata") or {}).get("name", "")
            wanted.update(f"{tname}-{name}-{i}" for i in range(start, start + replicas))
    pod_spec = ((spec.get("template") or {}).get("spec")) or {}
    for vol in pod_spec.get("volumes") or []:
        claim = (vol.get("persistentVolumeClaim") or {}).get("claimName")
        if claim:
            wanted.add(claim)
    return [p for p in pvcs if (p.get("metadata") or {}).get("name") in wanted]


# --------------------------------------------------------------------------- verdicts

def workload_kind(obj: dict) -> str:
    """``Deployment``, ``StatefulSet`` or ``Job``: from ``kind``, or, when the object
    came from a list (the API server leaves ``kind`` out of list items), from the
    shape of its spec."""
    kind = obj.get("kind")
    if kind in ("Deployment", "StatefulSet", "Job"):
        return kind
    if kind:
        raise ValueError(f"no readiness rule for {obj.get('apiVersion', '?')} {kind}")
    spec = obj.get("spec") or {}
    if {"serviceName", "volumeClaimTemplates", "updateStrategy",
            "podManagementPolicy"} & spec.keys():
        return "StatefulSet"
    if {"backoffLimit", "completions", "parallelism", "activeDeadlineSeconds",
            "completionMode", "manualSelector"} & spec.keys():
        return "Job"
    if {"strategy", "progressDeadlineSeconds", "minReadySeconds", "replicas"} & spec.keys():
        return "Deployment"
    raise ValueError("cannot tell the kind of an object without 'kind'")


def evaluate(obj: dict | None, pods: Iterable[dict] = (), pvcs: Iterable[dict] = ()) -> Verdict:
    """The verdict for one workload object (``None``: not created yet).

    ``pods`` are the workload's pods (:func:`pods_for` with its ``spec.selector``) and
    ``pvcs`` its claims (:func:`pvcs_for`); they are only read when the controller's
    status says "not ready", to say why.
    """
    if obj is None:
        return MISSING
    kind = workload_kind(obj)
    pods, pvcs = list(pods), list(pvcs)
    if kind == "Deployment":
        return _deployment(obj, pods, pvcs)
    if kind == "StatefulSet":
        return _statefulset(obj, pods, pvcs)
    return _job(obj, pods, pvcs)


# --------------------------------------------------------------------------- edge

def gateway_verdict(gw: dict | None) -> Verdict:
    """A Gateway API ``Gateway``: ready when the controller reports ``Programmed``
    for the current generation. ``Accepted=False`` is final (the controller rejected
    the spec); anything else is a wait, with the controller's own reason."""
    if gw is None:
        return MISSING
    generation = (gw.get("metadata") or {}).get("generation") or 0
    status = gw.get("status") or {}
    accepted = condition(status, "Accepted")
    if accepted and accepted.get("status") == "False":
        return Verdict(False, "failed", "failed", "Gateway not accepted: "
                       f"{_reason_of(accepted)}")
    programmed = condition(status, "Programmed")
    if programmed is None or _stale(programmed, generation):
        return Verdict(False, "pending", "starting", "waiting for the Gateway controller")
    if programmed.get("status") != "True":
        return Verdict(False, "pending", "starting", "Gateway not programmed: "
                       f"{_reason_of(programmed)}")
    return Verdict(True, "programmed", "healthy", "")


def route_verdict(route: dict | None, gateway: str) -> Verdict:
    """An ``HTTPRoute``: ready when the parent ``gateway`` reports it ``Accepted``
    with ``ResolvedRefs`` for the current generation. ``Accepted=False`` is final
    (no listener takes it: hostname, section or namespace mismatch);
    ``ResolvedRefs=False`` (e.g. ``BackendNotFound``) may still resolve while the
    backend Service is created, so it is a wait that names the reason."""
    if route is None:
        return MISSING
    generation = (route.get("metadata") or {}).get("generation") or 0
    parents = [p for p in (route.get("status") or {}).get("parents") or []
               if (p.get("parentRef") or {}).get("name") == gateway]
    if not parents:
        return Verdict(False, "pending", "starting",
                       f"not yet accepted by Gateway {gateway}")
    for parent in parents:  # one entry per listener section the route attaches to
        accepted = condition(parent, "Accepted")
        resolved = condition(parent, "ResolvedRefs")
        section = (parent.get("parentRef") or {}).get("sectionName")
        where = f" (listener {section})" if section else ""
        if accepted is None or _stale(accepted, generation):
            return Verdict(False, "pending", "starting",
                           f"not yet accepted by Gateway {gateway}{where}")
        if accepted.get("status") != "True":
            return Verdict(False, "failed", "failed",
                           f"not accepted{where}: {_reason_of(accepted)}")
        if resolved is not None and resolved.get("status") != "True":
            return Verdict(False, "pending", "starting",
                           f"references not resolved{where}: {_reason_of(resolved)}")
    return Verdict(True, "accepted", "healthy", "")


def _stale(cond: dict, generation: int) -> bool:
    observed = cond.get("observedGeneration")
    return observed is not None and observed < generation


def _reason_of(cond: dict) -> str:
    reason = cond.get("reason") or "no reason given"
    message = one_line(cond.get("message") or "")
    return f"{reason} ({message})" if message and message != reason else reason


def service_status(service: str, phase: int, workload: str, verdict: Verdict,
                   endpoint: str = "") -> ServiceStatus:
    """The status row for ``service`` (the same row the compose lane prints)."""
    return ServiceStatus(service=service, phase=phase, workload=workload,
                         state=verdict.state, health=verdict.health, ready=verdict.ready,
                         reason=verdict.reason, endpoint=endpoint)


def _deployment(obj: dict, pods: list[dict], pvcs: list[dict]) -> Verdict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    stale = _not_observed(obj, strict_zero=False)
    if stale:
        return stale
    want = _replicas(spec)
    progressing = condition(status, "Progressing")
    if progressing and progressing.get("reason") == "ProgressDeadlineExceeded":
        # The condition's message ("ReplicaSet ... has timed out progressing") is
        # generic: a pod's problem, when there is one, says more.
        problem = diagnose(pods, pvcs)
        detail = problem.reason if problem else \
            one_line(progressing.get("message") or "no progress")
        return _failed(f"progress deadline exceeded: {detail}", problem)
    updated = status.get("updatedReplicas") or 0
    current = status.get("replicas") or 0
    available = status.get("availableReplicas") or 0
    if updated < want:
        return _waiting("rolling out", f"{updated} of {want} updated", pods, pvcs)
    if current > updated:
        old = current - updated
        return _waiting("rolling out",
                        f"{old} old replica{'s' if old != 1 else ''} pending termination",
                        pods, pvcs)
    if available < updated:
        return _waiting("progressing", f"{available} of {updated} available", pods, pvcs)
    if want == 0:
        return Verdict(True, "available", "none", "scaled to 0 replicas")
    return Verdict(True, "available", "healthy", f"{available} of {want} available")


def _statefulset(obj: dict, pods: list[dict], pvcs: list[dict]) -> Verdict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    if "updateStrategy" in spec:
        strategy = spec.get("updateStrategy") or {}
        kind = strategy.get("type", "RollingUpdate")
        rolling = strategy.get("rollingUpdate")
    else:  # the API server's default
        kind, rolling = "RollingUpdate", {"partition": 0}
    stale = _not_observed(obj, strict_zero=True)
    if stale:
        return stale
    want = _replicas(spec)
    ready = status.get("readyReplicas") or 0
    if ready < want:
        return _waiting("progressing", f"{ready} of {want} ready", pods, pvcs)
    updated = status.get("updatedReplicas") or 0
    revision = status.get("updateRevision", "")
    note = ""
    if kind == "RollingUpdate":
        if rolling is not None:
            partition = rolling.get("partition")
            if partition is not None:
                target = want - partition
                part = f" (partition {partition})" if partition else ""
                if updated < target:
                    return _waiting("rolling out", f"{updated} of {target} updated to revision "
                                    f"{revision}{part}", pods, pvcs)
                note = part and f", {updated} updated{part}"
        elif status.get("currentRevision") != revision:
            return _waiting("rolling out", f"{updated} of {want} pods at revision {revision}",
                            pods, pvcs)
    if want == 0:
        return Verdict(True, "available", "none", "scaled to 0 replicas")
    return Verdict(True, "available", "healthy", f"{ready} of {want} ready{note}")


def _job(obj: dict, pods: list[dict], pvcs: list[dict]) -> Verdict:
    spec, status = obj.get("spec") or {}, obj.get("status") or {}
    done = condition(status, "Complete", "True")
    if done:
        took = _duration(status.get("startTime"), status.get("completionTime"))
        return Verdict(True, "complete", "completed", f"completed in {took}" if took
                       else "completed")
    failed = condition(status, "Failed", "True") or condition(status, "FailureTarget", "True")
    if failed:
        text = ": ".join(t for t in (failed.get("reason"), one_line(failed.get("message") or ""))
                         if t) or "failed"
        problem = diagnose(pods, pvcs)
        return _failed(f"{text}; {problem.reason}" if problem else text, problem)
    if spec.get("suspend"):
        return Verdict(False, "pending", "none", "suspended")
    active, failures = status.get("active") or 0, status.get("failed") or 0
    return _waiting("running", f"running: {active} active, {failures} failed", pods, pvcs,
                    health="running")


# --------------------------------------------------------------------------- helpers

def _waiting(state: str, generic: str, pods: list[dict], pvcs: list[dict],
             health: str = "starting") -> Verdict:
    problem = diagnose(pods, pvcs)
    if problem is None:
        return Verdict(False, state, health, generic)
    return Verdict(False, problem.state or state, problem.health, problem.reason)


def _failed(text: str, problem: Problem | None) -> Verdict:
    """A terminal verdict; a problem that is only a wait (pending) still reads failed."""
    health = problem.health if problem and problem.health in ("failed", "unhealthy") \
        else "failed"
    return Verdict(False, "failed", health, text)


def _not_observed(obj: dict, strict_zero: bool) -> Verdict | None:
    generation = (obj.get("metadata") or {}).get("generation") or 0
    observed = (obj.get("status") or {}).get("observedGeneration") or 0
    if generation > observed or (strict_zero and observed == 0):
        if observed == 0:
            text = "waiting for the controller to observe it"
        else:
            text = f"waiting for the controller to observe generation {generation} " \
                   f"(observed {observed})"
        return Verdict(False, "pending", "starting", text)
    return None


def _replicas(spec: dict) -> int:
    value = spec.get("replicas")
    return 1 if value is None else int(value)   # the API server's default



def _parse_time(value) -> datetime | None:
    if isinstance(value, datetime):
        return value
    if not value:
        return None
    try:
        return datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None


def _duration(start, end) -> str:
    a, b = _parse_time(start), _parse_time(end)
    if a is None or b is None:
        return ""
    seconds = max(0, int((b - a).total_seconds()))
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{hours}h{minutes}m"
    if minutes:
        return f"{minutes}m{secs}s"
    return f"{secs}s"
