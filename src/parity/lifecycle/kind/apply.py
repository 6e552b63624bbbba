"""Applying the stack to the kind cluster: secrets, server-side apply wave by wave
with a wait for each wave's workloads, Jobs that must run again, and prune.

:class:`KindApply` is one part of :class:`~parity.lifecycle.kind.lane.KindLane`.
"""

from __future__ import annotations

import base64
import time

from ... import secrets, tls
from ...errors import CheckFailed
from ...render.names import (ANNOTATION_ADOPTED, ANNOTATION_WAVE, EDGE_TLS_SECRET, LABEL_MANAGED,
                             LABEL_STACK, LOCAL_CA_CONFIGMAP, LOCAL_CA_KEY)
from . import readiness

WORKLOAD_KINDS = {"Deployment": "apps/v1", "StatefulSet": "apps/v1", "Job": "batch/v1"}
#: Kinds parity renders into the namespace; prune looks for stale ones of these.
#: Not PersistentVolumeClaims: like compose's named volumes, data outlives a service
#: leaving the phase (``inv down`` removes it with the cluster).
PRUNABLE = (("apps/v1", "Deployment"), ("apps/v1", "StatefulSet"), ("batch/v1", "Job"),
            ("v1", "Service"), ("v1", "ConfigMap"), ("v1", "Secret"),
            ("networking.k8s.io/v1", "Ingress"),
            ("gateway.networking.k8s.io/v1", "HTTPRoute"),
            ("gateway.networking.k8s.io/v1", "Gateway"))


class KindApply:
    """Secrets, apply and wait, prune."""

    def ensure_secrets(self) -> str:
        secrets.ensure(self.stack, self.state)
        material = tls.ensure(self.state, self.stack.domain)  # checked, read under its lock
        for note in material.notes:
            self.ui.line(f"    {note}")
        ns = self.stack.namespace
        labels = {LABEL_MANAGED: "true", LABEL_STACK: self.stack.name}
        self.kube.apply({"apiVersion": "v1", "kind": "Namespace",
                         "metadata": {"name": ns, "labels": labels}})
        ca_crt = material.ca_pem.decode("ascii")
        self.kube.apply({"apiVersion": "v1", "kind": "ConfigMap", "metadata": {
            "name": LOCAL_CA_CONFIGMAP, "namespace": ns, "labels": labels},
            "data": {LOCAL_CA_KEY: ca_crt}})
        self.kube.apply({"apiVersion": "v1", "kind": "Secret", "type": "kubernetes.io/tls",
                         "metadata": {"name": EDGE_TLS_SECRET, "namespace": ns,
                                      "labels": labels},
                         "data": {"tls.crt": base64.b64encode(material.cert_pem).decode(),
                                  "tls.key": base64.b64encode(material.key_pem).decode()}})
        return "CA, certificate and secret store ready"

    def with_secret_values(self, doc: dict) -> dict:
        """A rendered Secret (names and keys only) filled from the local store, in
        the same apply (a separate one would let SSA drop the data)."""
        if doc.get("kind") != "Secret" or doc.get("type", "Opaque") != "Opaque":
            return doc
        secret = self.stack.secrets.get(doc["metadata"]["name"])
        if secret is None:
            return doc
        return {**doc, "stringData": secrets.values(self.state, secret)}

    def waves(self) -> list[tuple[str, list[dict]]]:
        """Stack-level objects first, then each dependency wave in order."""
        first, by_wave = [], {}
        for doc in self.docs():
            if doc["kind"] == "ConfigMap" and doc["metadata"]["name"] == "coredns":
                continue  # applied by the dns step
            wave = (doc["metadata"].get("annotations") or {}).get(ANNOTATION_WAVE)
            if wave is None:
                first.append(doc)
            else:
                by_wave.setdefault(int(wave), []).append(doc)
        return [("stack", first)] + [(f"wave {w}", by_wave[w]) for w in sorted(by_wave)]

    def apply_waves(self) -> str:
        self.ensure_data_volumes()  # before any StatefulSet makes its PVCs
        total = 0
        waves = self.waves()
        for name, docs in waves:
            for doc in docs:
                doc = self.with_image_ids(self.with_secret_values(doc))
                if doc["kind"] == "Job":
                    self.replace_changed_job(doc)
                self.kube.apply(doc)
            total += len(docs)
            workloads = [d for d in docs if d["kind"] in WORKLOAD_KINDS]
            if workloads:
                self.wait_workloads(name, workloads)
        return f"{total} objects in {len(waves)} groups"

    def replace_changed_job(self, doc: dict) -> None:
        """A Job's pod template cannot change: when its config or image did, delete the
        old Job (and its pods) so the apply creates it anew and it runs again, as
        compose reruns a one-off whose config changed. An unchanged Job is left alone
        (it does not run again)."""
        meta = doc["metadata"]
        old = self.kube.get("batch/v1", "Job", meta["name"], meta["namespace"])
        if old is None:
            return
        def notes(obj: dict) -> dict:
            return {k: v for k, v in ((((obj.get("spec") or {}).get("template") or {})
                                       .get("metadata") or {}).get("annotations") or {}).items()
                    if k.startswith("parity.dev/")}
        if notes(old) == notes(doc):
            return
        self.ui.line(f"    {meta['name']}: its config or image changed; the Job runs again")
        self.kube.delete("batch/v1", "Job", meta["name"], meta["namespace"],
                         propagation="Foreground")
        self.wait_for(lambda: self.kube.get("batch/v1", "Job", meta["name"],
                                            meta["namespace"]) is None,
                      f"deleting Job {meta['name']}", 120)

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

    def wait_workloads(self, wave: str, workloads: list[dict],
                       namespace: str | None = None) -> None:
        started = time.monotonic()
        deadlines = {d["metadata"]["name"]: self.deadline_for(d["metadata"]["name"])
                     for d in workloads}
        with self.ui.status(f"{wave}: waiting") as status:
            while True:
                verdicts = {d["metadata"]["name"]: self.verdict(d["kind"], d["metadata"]["name"],
                                                                namespace)
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

    def verdict(self, kind: str, name: str, namespace: str | None = None):
        ns = namespace or self.stack.namespace
        obj = self.kube.get(WORKLOAD_KINDS[kind], kind, name, ns)
        if obj is None:
            return readiness.evaluate(None)
        selector = ((obj.get("spec") or {}).get("selector") or {}).get("matchLabels") or {}
        if kind == "Job":
            selector = {"job-name": name}
        pods = readiness.pods_for(selector, self.kube.list("v1", "Pod", ns))
        pvcs = []
        if kind == "StatefulSet":
            pvcs = readiness.pvcs_for(obj, self.kube.list("v1", "PersistentVolumeClaim", ns))
        return readiness.evaluate(obj, pods, pvcs)

    def prune(self) -> str:
        rendered = {(d["kind"], (d["metadata"].get("namespace") or ""), d["metadata"]["name"])
                    for d in self.docs()}
        selector = f"{LABEL_MANAGED}=true,{LABEL_STACK}={self.stack.name}"
        keep_names = {LOCAL_CA_CONFIGMAP, EDGE_TLS_SECRET}
        removed = []
        for api_version, kind in PRUNABLE:
            for obj in self.kube.list(api_version, kind, self.stack.namespace, selector):
                meta = obj["metadata"]
                ident = (kind, meta.get("namespace") or "", meta["name"])
                if ident in rendered or meta["name"] in keep_names:
                    continue
                if (meta.get("annotations") or {}).get(ANNOTATION_ADOPTED):
                    continue
                self.kube.delete(api_version, kind, meta["name"], meta.get("namespace"))
                removed.append(f"{kind}/{meta['name']}")
        return f"removed {len(removed)}" + (f": {', '.join(removed)}" if removed else "")

    def wait_for(self, fn, what: str, seconds: float) -> None:
        deadline = time.monotonic() + seconds
        while not fn():
            if time.monotonic() > deadline:
                raise CheckFailed(f"{what} not ready after {seconds:.0f} s",
                                  hint="inv status --mode kind; kubectl --kubeconfig "
                                       f"{self.kubeconfig} get pods -A")
            time.sleep(2)
