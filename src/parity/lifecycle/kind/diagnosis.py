"""Pod and volume diagnosis for the kind lane's readiness verdicts.

When the controller verdict (:mod:`.readiness`) is not ready, the pods and
PVCs passed in are searched for the most telling problem, which replaces the
generic reason ("0 of 1 available" says nothing a person can act on). In order:
container errors (``CreateContainerConfigError`` such as a missing secret key,
``CreateContainerError``, ``InvalidImageName``, ``ErrImagePull``/``ImagePullBackOff``,
``OOMKilled``, ``CrashLoopBackOff``, a non-zero exit, an evicted pod; init containers
first), then a ``Pending`` or ``Lost`` PVC, then an unschedulable pod, then a running
container that is not ready (its readiness probe fails). Terminating pods are
ignored. A failed verdict keeps its own state and gets the problem appended.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

#: Waiting reasons that mean the container cannot start as things stand, ranked
#: (lower is more telling). ``CrashLoopBackOff`` is handled apart (OOMKilled first).
_WAITING_RANK = {
    "CreateContainerConfigError": 0,
    "CreateContainerError": 0,
    "InvalidImageName": 0,
    "ErrImageNeverPull": 1,
    "ErrImagePull": 1,
    "ImagePullBackOff": 1,
    "RunContainerError": 3,
}
_RANK_OOM = 2
_RANK_CRASH = 3
_RANK_PVC = 4
_RANK_UNSCHEDULABLE = 5
_RANK_NOT_READY = 6

#: kubelet's back-off message ends with ``container=<name> pod=<pod>_<ns>(<uid>)``:
#: noise next to a reason that already names the container ("... restarting failed
#: container" is kept).
_BACKOFF_TAIL = re.compile(r"(\bcontainer)=\S+\s+pod=\S+\s*$")


@dataclass(frozen=True)
class Problem:
    rank: int
    health: str
    reason: str
    state: str | None = None   # overrides the controller's state (pending)



def condition(status: dict, kind: str, value: str | None = None) -> dict | None:
    for cond in status.get("conditions") or []:
        if cond.get("type") == kind and (value is None or cond.get("status") == value):
            return cond
    return None


def diagnose(pods: list[dict], pvcs: list[dict]) -> Problem | None:
    """The most telling problem among the pods and claims (lowest rank; the first
    one found among equals)."""
    found: list[Problem] = []
    for pvc in pvcs:
        found.extend(pvc_problems(pvc))
    for pod in pods:
        found.extend(pod_problems(pod))
    return min(found, key=lambda p: p.rank) if found else None


def pvc_problems(pvc: dict) -> list[Problem]:
    name = (pvc.get("metadata") or {}).get("name", "?")
    phase = (pvc.get("status") or {}).get("phase")
    if phase == "Pending":
        return [Problem(_RANK_PVC, "starting",
                         f"pending PVC {name}: waiting for a volume to be provisioned",
                         state="pending")]
    if phase == "Lost":
        volume = (pvc.get("spec") or {}).get("volumeName") or "?"
        return [Problem(0, "failed", f"PVC {name} lost its volume {volume}")]
    return []


def pod_problems(pod: dict) -> list[Problem]:
    meta, spec, status = pod.get("metadata") or {}, pod.get("spec") or {}, pod.get("status") or {}
    if meta.get("deletionTimestamp"):
        return []   # going away: an old replica, or a Job's pod being cleaned up
    found: list[Problem] = []
    if status.get("phase") == "Failed" and status.get("reason"):
        # Evicted, or a pod-level deadline: the containers' states say less.
        found.append(Problem(_RANK_CRASH, "failed", f"pod {meta.get('name', '?')} "
                              f"{status['reason']}: {one_line(status.get('message') or '')}"
                              .rstrip(": ")))
    limits = {c.get("name"): ((c.get("resources") or {}).get("limits") or {}).get("memory")
              for c in (spec.get("initContainers") or []) + (spec.get("containers") or [])}
    for cs in status.get("initContainerStatuses") or []:
        p = container_problem(cs, f"init container {cs.get('name', '?')}",
                               limits.get(cs.get("name")), init=True)
        if p:
            found.append(p)
    for cs in status.get("containerStatuses") or []:
        p = container_problem(cs, cs.get("name", "?"), limits.get(cs.get("name")),
                               init=False, pod_running=status.get("phase") == "Running")
        if p:
            found.append(p)
    scheduled = condition(status, "PodScheduled", "False")
    if status.get("phase") == "Pending" and scheduled:
        found.append(Problem(_RANK_UNSCHEDULABLE, "starting", "unschedulable: " + one_line(
            scheduled.get("message") or scheduled.get("reason") or "no node fits"),
            state="pending"))
    return found


def container_problem(cs: dict, label: str, memory_limit: str | None, init: bool,
                       pod_running: bool = False) -> Problem | None:
    if cs.get("ready"):
        return None
    state = cs.get("state") or {}
    waiting = state.get("waiting") or {}
    terminated = state.get("terminated") or {}
    last = (cs.get("lastState") or {}).get("terminated") or {}
    restarts = cs.get("restartCount") or 0
    counted = f" (restarts {restarts})" if restarts else ""
    why = waiting.get("reason")
    if why in _WAITING_RANK:
        message = one_line(_BACKOFF_TAIL.sub(r"\1", waiting.get("message") or ""))
        return Problem(_WAITING_RANK[why], "failed",
                        f"{label}: {why}{counted}" + (f": {message}" if message else ""))
    oom = terminated if terminated.get("reason") == "OOMKilled" else \
        last if last.get("reason") == "OOMKilled" else None
    if oom is not None:
        text = f"{label}: OOMKilled{counted}: exit code {oom.get('exitCode', 137)}"
        if memory_limit:
            text += f", memory limit {memory_limit}"
        return Problem(_RANK_OOM, "failed", text)
    if why == "CrashLoopBackOff":
        message = one_line(_BACKOFF_TAIL.sub(r"\1", waiting.get("message") or ""))
        text = f"{label}: CrashLoopBackOff{counted}" + (f": {message}" if message else "")
        if last.get("exitCode") is not None:
            text += f"; last exit code {last['exitCode']}"
        return Problem(_RANK_CRASH, "failed", text)
    if terminated and terminated.get("exitCode", 0) != 0:
        text = f"{label}: exited with code {terminated['exitCode']}"
        if terminated.get("reason"):
            text += f" ({terminated['reason']})"
        detail = last_line(terminated.get("message") or "")
        if detail:
            text += f": {detail}"
        return Problem(_RANK_CRASH, "failed", text)
    if "running" in state and not init and pod_running:
        since = timestamp(state["running"].get("startedAt"))
        text = f"{label}: readiness probe failing{counted}"
        if since:
            text += f" (running since {since})"
        return Problem(_RANK_NOT_READY, "unhealthy", text)
    return None


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def last_line(text: str, limit: int = 160) -> str:
    lines = [ln.strip() for ln in str(text).splitlines() if ln.strip()]
    return lines[-1][:limit] if lines else ""


def timestamp(value) -> str:
    if isinstance(value, datetime):
        return value.isoformat().replace("+00:00", "Z")
    return str(value) if value else ""
