"""The cross-reference lint of a kind render (the documents of ``manifests.yaml``):
selectors, ports, probes, secret and config references, routes, labels and the
annotations parity's own kind driver reads. Objects the kind driver creates itself
(:data:`parity.render.names.DRIVER_PROVIDED`) count as present."""

from __future__ import annotations

from typing import Any

from ..render.names import (ANNOTATION_DEPENDS_ON, ANNOTATION_SECRET_KEYS, ANNOTATION_WAVE,
                            DRIVER_PROVIDED, LABEL_MANAGED, LABEL_MANAGED_BY, LABEL_PHASE,
                            LABEL_SERVICE, LABEL_STACK)
from .finding import Finding, name_list

WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job")


def _pairs(labels: dict) -> str:
    return ",".join(f"{k}={v}" for k, v in labels.items())


class _KindLint:
    def __init__(self, docs: list[dict], stack):
        self.docs = [d for d in docs if isinstance(d, dict)]
        self.stack = stack
        self.findings: list[Finding] = []
        self.objects: dict[tuple[str, str, str], dict] = {}
        self.pods: list[tuple[str, str, dict, dict]] = []  # (ref, namespace, labels, podspec)
        self.pod_index: dict[tuple[str, str, str], list[int]] = {}  # (ns, key, value) -> pods
        self.workloads: dict[str, dict] = {}   # service name -> workload
        self.has_gateway = any(d.get("kind") == "Gateway" for d in self.docs)
        for d in self.docs:
            meta = d.get("metadata") or {}
            ns = meta.get("namespace", "")
            if d.get("kind") in WORKLOAD_KINDS:
                service = (meta.get("labels") or {}).get(LABEL_SERVICE, meta.get("name"))
                self.workloads[service] = d
            self.objects[(d.get("kind", ""), ns, meta.get("name", ""))] = d
            if d.get("kind") in WORKLOAD_KINDS:
                tmpl = (d.get("spec") or {}).get("template") or {}
                labels = (tmpl.get("metadata") or {}).get("labels") or {}
                for key, value in labels.items():
                    self.pod_index.setdefault((ns, key, value), []).append(len(self.pods))
                self.pods.append((self.ref(d), ns, labels, tmpl.get("spec") or {}))

    @staticmethod
    def ref(doc: dict) -> str:
        return f"{doc.get('kind')}/{(doc.get('metadata') or {}).get('name')}"

    def add(self, doc: dict | str, field: str, message: str) -> None:
        obj = doc if isinstance(doc, str) else self.ref(doc)
        self.findings.append(Finding(obj, field, message))

    def exists(self, kind: str, ns: str, name: str) -> bool:
        return (kind, ns, name) in self.objects or (kind, name) in DRIVER_PROVIDED

    def run(self) -> list[Finding]:
        for d in self.docs:
            self.labels(d)
            kind = d.get("kind")
            if kind == "Service":
                self.service(d)
            elif kind in WORKLOAD_KINDS:
                self.workload(d)
            elif kind == "HTTPRoute":
                self.http_route(d)
            elif kind == "Ingress":
                self.ingress(d)
            elif kind == "Gateway":
                self.gateway(d)
        self.unique_routes()
        return self.findings

    # ---------------------------------------------------------------- labels

    def labels(self, d: dict) -> None:
        labels = (d.get("metadata") or {}).get("labels") or {}
        want = {LABEL_MANAGED: "true", LABEL_MANAGED_BY: "parity",
                LABEL_STACK: self.stack.name}
        for key, value in want.items():
            if labels.get(key) != value:
                self.add(d, "metadata.labels", f"missing label {key}={value}"
                         if key not in labels else f"label {key} is '{labels[key]}', "
                         f"expected '{value}'")
        if LABEL_PHASE not in labels:
            self.add(d, "metadata.labels", f"missing label {LABEL_PHASE}")
        if d.get("kind") in WORKLOAD_KINDS and LABEL_SERVICE not in labels:
            self.add(d, "metadata.labels", f"missing label {LABEL_SERVICE}")

    # ---------------------------------------------------------------- services

    def selected_pods(self, ns: str, selector: dict) -> list[tuple[str, str, dict, dict]]:
        """Pod templates carrying every pair of ``selector`` (through the label index:
        no scan over all pods per Service)."""
        chosen: set[int] | None = None
        for key, value in selector.items():
            hits = set(self.pod_index.get((ns, key, value), ()))
            chosen = hits if chosen is None else chosen & hits
        return [self.pods[i] for i in sorted(chosen or ())]

    def service(self, d: dict) -> None:
        spec = d.get("spec") or {}
        ns = (d.get("metadata") or {}).get("namespace", "")
        selector = spec.get("selector") or {}
        if not selector:
            return  # endpoints managed by hand; nothing to resolve
        pods = self.selected_pods(ns, selector)
        if not pods:
            unknown = {k: v for k, v in selector.items() if (ns, k, v) not in self.pod_index}
            if unknown:
                self.add(d, "spec.selector", f"selects {_pairs(unknown)}, which no pod "
                         "template carries")
            else:
                self.add(d, "spec.selector", f"selects {_pairs(selector)}, which no single "
                         "pod template carries")
            return
        for port in spec.get("ports") or []:
            target = port.get("targetPort", port.get("port"))
            for ref, _, _, podspec in pods:
                declared = [cp for c in podspec.get("containers") or []
                            for cp in c.get("ports") or []]
                if isinstance(target, str):
                    ok = any(cp.get("name") == target for cp in declared)
                    shown = name_list(cp.get("name") for cp in declared if cp.get("name"))
                else:
                    ok = any(cp.get("containerPort") == target for cp in declared)
                    shown = name_list(cp.get("containerPort") for cp in declared)
                if not ok:
                    self.add(d, f"spec.ports[{port.get('name', port.get('port'))}].targetPort",
                             f"port {target!r} is not declared by the pods of {ref} "
                             f"(ports: {shown})")

    # ---------------------------------------------------------------- workloads

    def workload(self, d: dict) -> None:
        spec = d.get("spec") or {}
        meta = d.get("metadata") or {}
        ns = meta.get("namespace", "")
        tmpl = spec.get("template") or {}
        tlabels = (tmpl.get("metadata") or {}).get("labels") or {}
        podspec = tmpl.get("spec") or {}
        kind = d.get("kind")
        if kind != "Job":
            match = (spec.get("selector") or {}).get("matchLabels") or {}
            missing = {k: v for k, v in match.items() if tlabels.get(k) != v}
            if not match:
                self.add(d, "spec.selector.matchLabels", "is empty")
            elif missing:
                self.add(d, "spec.selector.matchLabels", f"selects {_pairs(missing)}, which "
                         "its own pod template does not carry")
        if kind == "StatefulSet":
            governing = spec.get("serviceName")
            svc = self.objects.get(("Service", ns, governing or ""))
            if not governing or svc is None:
                self.add(d, "spec.serviceName", f"Service/{governing} does not exist")
            elif (svc.get("spec") or {}).get("clusterIP") != "None":
                self.add(d, "spec.serviceName", f"Service/{governing} is not headless "
                         "(clusterIP: None)")
        volumes = {v.get("name"): v for v in podspec.get("volumes") or []}
        claims = {(c.get("metadata") or {}).get("name")
                  for c in spec.get("volumeClaimTemplates") or []} if kind == "StatefulSet" \
            else set()
        base = "spec.template.spec"
        for i, v in enumerate(podspec.get("volumes") or []):
            self.volume(d, ns, f"{base}.volumes[{v.get('name', i)}]", v)
        for group in ("initContainers", "containers"):
            for c in podspec.get(group) or []:
                self.container(d, ns, f"{base}.{group}[{c.get('name')}]", c, volumes, claims,
                               probe_required=(kind != "Job" and group == "containers"))
        self.depends_on(d)

    def volume(self, d: dict, ns: str, field: str, v: dict) -> None:
        if "configMap" in v:
            cm = v["configMap"]
            self.keyed_ref(d, ns, f"{field}.configMap", "ConfigMap", cm.get("name"),
                           [i.get("key") for i in cm.get("items") or []], cm.get("optional"))
        if "secret" in v:
            sec = v["secret"]
            self.keyed_ref(d, ns, f"{field}.secret", "Secret", sec.get("secretName"),
                           [i.get("key") for i in sec.get("items") or []], sec.get("optional"))
        if "persistentVolumeClaim" in v:
            claim = v["persistentVolumeClaim"].get("claimName")
            if not self.exists("PersistentVolumeClaim", ns, claim):
                self.add(d, f"{field}.persistentVolumeClaim.claimName",
                         f"PersistentVolumeClaim/{claim} does not exist")

    def keyed_ref(self, d: dict, ns: str, field: str, kind: str, name: str | None,
                  keys: list, optional: bool | None) -> None:
        """A reference to a ConfigMap or Secret, and optionally to keys in it."""
        if optional:
            return
        name_field = f"{field}.{'secretName' if field.endswith('.secret') else 'name'}"
        if not self.exists(kind, ns, name or ""):
            self.add(d, name_field, f"{kind}/{name} does not exist")
            return
        if (kind, name) in DRIVER_PROVIDED:
            return
        have = self.keys_of(kind, ns, name or "")
        for key in keys:
            if key not in have:
                self.add(d, f"{field}.items[{key}].key" if not field.endswith("KeyRef")
                         else f"{field}.key",
                         f"{kind}/{name} has no key '{key}' (keys: {name_list(have)})")

    def keys_of(self, kind: str, ns: str, name: str) -> set[str]:
        obj = self.objects[(kind, ns, name)]
        if kind == "Secret":
            notes = (obj.get("metadata") or {}).get("annotations") or {}
            listed = notes.get(ANNOTATION_SECRET_KEYS, "")
            return {k for k in listed.split(",") if k} | set(obj.get("data") or {}) \
                | set(obj.get("stringData") or {})
        return set(obj.get("data") or {}) | set(obj.get("binaryData") or {})

    def container(self, d: dict, ns: str, field: str, c: dict, volumes: dict, claims: set,
                  probe_required: bool) -> None:
        port_names = {p.get("name") for p in c.get("ports") or [] if p.get("name")}
        for i, ef in enumerate(c.get("envFrom") or []):
            if "configMapRef" in ef:
                ref = ef["configMapRef"]
                if not ref.get("optional") and not self.exists("ConfigMap", ns, ref.get("name")):
                    self.add(d, f"{field}.envFrom[{i}].configMapRef.name",
                             f"ConfigMap/{ref.get('name')} does not exist")
            if "secretRef" in ef:
                ref = ef["secretRef"]
                if not ref.get("optional") and not self.exists("Secret", ns, ref.get("name")):
                    self.add(d, f"{field}.envFrom[{i}].secretRef.name",
                             f"Secret/{ref.get('name')} does not exist")
        for e in c.get("env") or []:
            source = e.get("valueFrom") or {}
            efield = f"{field}.env[{e.get('name')}].valueFrom"
            if "secretKeyRef" in source:
                ref = source["secretKeyRef"]
                self.keyed_ref(d, ns, f"{efield}.secretKeyRef", "Secret", ref.get("name"),
                               [ref.get("key")], ref.get("optional"))
            if "configMapKeyRef" in source:
                ref = source["configMapKeyRef"]
                self.keyed_ref(d, ns, f"{efield}.configMapKeyRef", "ConfigMap",
                               ref.get("name"), [ref.get("key")], ref.get("optional"))
        for m in c.get("volumeMounts") or []:
            if m.get("name") not in volumes and m.get("name") not in claims:
                self.add(d, f"{field}.volumeMounts[{m.get('mountPath')}].name",
                         f"no volume or volumeClaimTemplate named '{m.get('name')}' "
                         f"(volumes: {name_list(list(volumes) + list(claims))})")
        probe = c.get("readinessProbe")
        if probe is None:
            if probe_required:
                self.add(d, f"{field}.readinessProbe", "missing: parity waits for readiness "
                         "before it starts the next wave")
            return
        for action in ("httpGet", "tcpSocket", "grpc"):
            port = (probe.get(action) or {}).get("port")
            if isinstance(port, str) and port not in port_names:
                self.add(d, f"{field}.readinessProbe.{action}.port",
                         f"port '{port}' is not a port of container {c.get('name')} "
                         f"(ports: {name_list(port_names)})")

    def depends_on(self, d: dict) -> None:
        notes = (d.get("metadata") or {}).get("annotations") or {}
        listed = notes.get(ANNOTATION_DEPENDS_ON)
        if not listed:
            return
        workloads = self.workloads
        edge = self.stack.edge()
        edge_name = edge.name if edge is not None else None
        field = f'metadata.annotations["{ANNOTATION_DEPENDS_ON}"]'
        my_wave = notes.get(ANNOTATION_WAVE)
        for target in listed.split(","):
            if target == edge_name and (self.stack.routing == "ingress" or self.has_gateway):
                continue  # the edge is the Gateway (or the Ingress controller) in kind
            if target not in workloads:
                self.add(d, field, f"depends on '{target}', which is not a workload in "
                         f"this render (workloads: {name_list(workloads)})")
                continue
            their = ((workloads[target].get("metadata") or {}).get("annotations") or {}) \
                .get(ANNOTATION_WAVE)
            if my_wave is not None and their is not None and int(their) >= int(my_wave):
                self.add(d, f'metadata.annotations["{ANNOTATION_WAVE}"]',
                         f"wave {my_wave} is not after wave {their} of its dependency "
                         f"'{target}'")

    # ---------------------------------------------------------------- routing

    def backend(self, d: dict, ns: str, field: str, name: str, port: Any) -> None:
        svc = self.objects.get(("Service", ns, name))
        if svc is None:
            self.add(d, f"{field}.name", f"Service/{name} does not exist")
            return
        ports = (svc.get("spec") or {}).get("ports") or []
        if isinstance(port, str):
            if not any(p.get("name") == port for p in ports):
                self.add(d, f"{field}.port", f"Service/{name} has no port named '{port}' "
                         f"(ports: {name_list(p.get('name') for p in ports)})")
        elif not any(p.get("port") == port for p in ports):
            self.add(d, f"{field}.port", f"Service/{name} has no port {port} "
                     f"(ports: {name_list(p.get('port') for p in ports)})")

    def http_route(self, d: dict) -> None:
        spec = d.get("spec") or {}
        ns = (d.get("metadata") or {}).get("namespace", "")
        for i, parent in enumerate(spec.get("parentRefs") or []):
            if parent.get("kind", "Gateway") != "Gateway":
                continue
            gw = self.objects.get(("Gateway", parent.get("namespace", ns), parent.get("name")))
            if gw is None:
                self.add(d, f"spec.parentRefs[{i}].name",
                         f"Gateway/{parent.get('name')} does not exist")
                continue
            listeners = {l.get("name") for l in (gw.get("spec") or {}).get("listeners") or []}
            section = parent.get("sectionName")
            if section is not None and section not in listeners:
                self.add(d, f"spec.parentRefs[{i}].sectionName", f"Gateway/{parent.get('name')} "
                         f"has no listener '{section}' (listeners: {name_list(listeners)})")
        for r, rule in enumerate(spec.get("rules") or []):
            for b, ref in enumerate(rule.get("backendRefs") or []):
                if ref.get("kind", "Service") != "Service" or ref.get("group", "") != "":
                    continue
                self.backend(d, ref.get("namespace", ns), f"spec.rules[{r}].backendRefs[{b}]",
                             ref.get("name"), ref.get("port"))

    def ingress(self, d: dict) -> None:
        spec = d.get("spec") or {}
        ns = (d.get("metadata") or {}).get("namespace", "")
        for t, tls in enumerate(spec.get("tls") or []):
            name = tls.get("secretName")
            if name and not self.exists("Secret", ns, name):
                self.add(d, f"spec.tls[{t}].secretName", f"Secret/{name} does not exist")
        for r, rule in enumerate(spec.get("rules") or []):
            for p, path in enumerate((rule.get("http") or {}).get("paths") or []):
                svc = (path.get("backend") or {}).get("service")
                if not svc:
                    continue
                port = svc.get("port") or {}
                self.backend(d, ns, f"spec.rules[{r}].http.paths[{p}].backend.service",
                             svc.get("name"), port.get("name", port.get("number")))

    def gateway(self, d: dict) -> None:
        ns = (d.get("metadata") or {}).get("namespace", "")
        for listener in (d.get("spec") or {}).get("listeners") or []:
            for c, cert in enumerate((listener.get("tls") or {}).get("certificateRefs") or []):
                if cert.get("kind", "Secret") == "Secret" and not self.exists(
                        "Secret", cert.get("namespace", ns), cert.get("name")):
                    self.add(d, f"spec.listeners[{listener.get('name')}].tls."
                             f"certificateRefs[{c}].name", f"Secret/{cert.get('name')} does "
                             "not exist")

    def unique_routes(self) -> None:
        """Two routes for the same host and path: the edge would pick one silently."""
        seen: dict[tuple[str, str], str] = {}
        for d in self.docs:
            spec = d.get("spec") or {}
            pairs: list[tuple[str, str, str]] = []
            if d.get("kind") == "HTTPRoute":
                paths = [((m.get("path") or {}).get("value", "/"))
                         for rule in spec.get("rules") or [] for m in rule.get("matches")
                         or [{}]]
                pairs = [(h, p, "spec.hostnames") for h in spec.get("hostnames") or []
                         for p in paths]
            elif d.get("kind") == "Ingress":
                pairs = [(rule.get("host", "*"), path.get("path", "/"), "spec.rules")
                         for rule in spec.get("rules") or []
                         for path in (rule.get("http") or {}).get("paths") or []]
            for host, path, field in pairs:
                key = (host, path)
                if key in seen and seen[key] != self.ref(d):
                    self.add(d, field, f"{host} path {path} is also routed by {seen[key]}")
                seen.setdefault(key, self.ref(d))


def lint_kind(docs: list[dict], stack) -> list[Finding]:
    """Every broken cross-reference in the documents of a kind render."""
    return _KindLint(docs, stack).run()
