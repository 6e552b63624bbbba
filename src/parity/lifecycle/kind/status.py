"""What the kind cluster runs now: the status table, the cluster's nodes, and the
live checks (a container's delivered environment, a command run in it).

:class:`KindStatus` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import json

from ... import docker
from ...errors import CheckFailed
from .. import Delivered, Exec, ServiceStatus, env_list
from . import readiness


class KindStatus:
    """Reading the cluster: status rows and live checks."""

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
        rows = []
        for name, svc in self.stack.services.items():
            if svc.role == "edge":
                rows.append(self.edge_status(name, svc.phase))
                continue
            kind = {"stateless": "Deployment", "stateful": "StatefulSet",
                    "job": "Job"}[svc.workload]
            v = self.verdict(kind, name)
            rows.append(readiness.service_status(name, svc.phase, svc.workload, v,
                                                  urls.get(name, "")))
        return rows

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

    #: Keys kubelet adds to every container by itself (the API server's Service and
    #: the pod's name): the platform's transport, never the stack's contract.
    PLATFORM_KEYS = frozenset({"HOSTNAME", "KUBERNETES_SERVICE_HOST", "KUBERNETES_SERVICE_PORT",
                               "KUBERNETES_SERVICE_PORT_HTTPS", "KUBERNETES_PORT",
                               "KUBERNETES_PORT_443_TCP", "KUBERNETES_PORT_443_TCP_PROTO",
                               "KUBERNETES_PORT_443_TCP_PORT", "KUBERNETES_PORT_443_TCP_ADDR"})

    def _container(self, service: str) -> tuple[str, str, str] | None:
        """(pod, containerd ID, image) of a running, ready container of the service."""
        pods = readiness.pods_for({"app.kubernetes.io/name": service,
                                    "app.kubernetes.io/part-of": self.stack.name},
                                   self.kube.list("v1", "Pod", self.stack.namespace))
        for pod in sorted(pods, key=lambda p: p["metadata"]["name"]):
            if (pod.get("status") or {}).get("phase") != "Running":
                continue
            for cs in (pod.get("status") or {}).get("containerStatuses") or []:
                if cs.get("name") == service and cs.get("ready") and cs.get("containerID"):
                    return (pod["metadata"]["name"], cs["containerID"].split("://", 1)[-1],
                            cs.get("imageID") or cs.get("image", ""))
        return None

    def _crictl(self, *args: str, timeout: float = 60):
        return docker.run(["docker", "exec", self.node(), "crictl", *args], check=False,
                          timeout=timeout)

    def delivered(self, service: str) -> Delivered | None:
        """The environment containerd started the service's container with (its OCI
        spec, read on the node), and the image's own (None: no ready container)."""
        found = self._container(service)
        if found is None:
            return None
        pod, cid, _ = found
        spec = self._crictl("inspect", "-o", "json", cid)
        if spec.returncode == 0:
            info = json.loads(spec.stdout)
            img = self._crictl("inspecti", "-o", "json", info["status"]["image"]["image"])
        if spec.returncode != 0 or img.returncode != 0:
            raise CheckFailed(f"cannot inspect {service}'s container {cid[:12]} on the node: "
                              + (spec.stderr or img.stderr).strip()[-200:])
        env = info["info"]["runtimeSpec"]["process"].get("env")
        image_env = (json.loads(img.stdout).get("info", {}).get("imageSpec", {})
                     .get("config", {}).get("Env"))
        return Delivered(env_list(env), env_list(image_env), self.PLATFORM_KEYS, f"pod {pod}")

    def exec(self, service: str, argv: list[str], timeout: float = 60) -> Exec:
        """Run ``argv`` inside a ready container of the service (on the node, through
        the container runtime: the same process namespace kubectl exec reaches)."""
        found = self._container(service)
        if found is None:
            raise CheckFailed(f"{service} has no ready pod to run a command in")
        proc = self._crictl("exec", found[1], *argv, timeout=timeout)
        return Exec(proc.returncode, proc.stdout, proc.stderr)
