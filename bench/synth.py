"""Synthetic inputs for the benchmark: a parity stack of N services and the
equivalent kustomize base + overlay tree.

Both trees describe the same N workloads (svc-0000 is the edge, the rest are
HTTP services). The parity tree is shaped like the repository:

    base/stack.yaml, base/secrets.yaml, base/parity-policy.yaml (copied)
    base/services/svc-NNNN.yaml       ports, env with ${service:...}/${host:...}/
                                      ${route:...} references and a secret, readiness,
                                      depends_on a previous service, a route on every 5th
    overlays/modes/kind.yaml          replicas + resources for EVERY service (the
                                      per-service overlay shape)
    overlays/modes/compose.yaml       {}
    overlays/phases/2.yaml            every 10th service starts in phase 2; its consumer
                                      learns its address and waits for it
    overlays/images/default.yaml      {}

The kustomize tree has, per service, a Deployment + Service + ConfigMap in the base,
and overlays that set a namespace, add a common label (selectors included, as
commonLabels does) and make the change the kind mode overlay makes (replicas +
resources for every Deployment), in three forms with byte-identical output:

    smp-file     one multi-document strategic-merge patch file, listed once under
                 ``patches:`` (the way a kustomize user writes per-service values;
                 the headline comparison)
    json6902     one JSON 6902 patch for every Deployment (``target: kind:
                 Deployment``); possible only because every service gets the same values
    per-service  degenerate: one ``patches:`` entry per Deployment, each with its own
                 ``target:`` selector, so kustomize scans every resource per patch
"""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def name(i: int) -> str:
    return f"svc-{i:04d}"


def phase_of(i: int) -> int:
    return 2 if i % 10 == 9 else 1


def has_route(i: int) -> bool:
    return i % 5 == 1


def dependency(i: int) -> int | None:
    """The previous phase-1 application service (never the edge, never phase 2)."""
    j = i - 1
    while j >= 1 and phase_of(j) != 1:
        j -= 1
    return j if j >= 1 else None


def route_ref(i: int) -> int | None:
    """The newest earlier service that owns a route (always phase 1)."""
    j = i - 1
    while j >= 1 and not has_route(j):
        j -= 1
    return j if j >= 1 else None


# --------------------------------------------------------------------------- parity

STACK = """\
stack:
  name: synth
  domain: synth.localhost
  namespace: synth
  internal_dns: "{service}"
  routing: gateway
  edge:
    bind: 127.0.0.1
    http_port: 80
    https_port: 443
"""

SECRETS = """\
secrets:
  synth-db:
    description: database credentials shared by the synthetic services
    keys:
      username: {value: synth}
      password: {generate: 32}
  synth-session:
    keys:
      signing-key: {generate: 48}
"""

EDGE = """\
services:
  svc-0000:
    description: the edge of the synthetic stack
    phase: 1
    role: edge
    image: nginx:1.27.3-bookworm
    ports:
      - {name: http, port: 80, protocol: http}
      - {name: https, port: 443, protocol: http}
    readiness:
      http: {port: http, path: /healthz}
"""


def service_yaml(i: int) -> str:
    n = name(i)
    lines = [
        "services:",
        f"  {n}:",
        f"    description: synthetic service {i}",
        f"    phase: {phase_of(i)}",
        f"    image: registry.example/synth/{n}:1.0.{i % 7}",
        "    replicas: 1",
        "    ports:",
        "      - {name: http, port: 8080, protocol: http}",
        "      - {name: metrics, port: 9090}",
        "    env:",
        "      LOG_LEVEL: info",
        f"      SERVICE_NAME: {n}",
        "      DB_USER: {secret: synth-db, key: username}",
        "      DB_PASSWORD: {secret: synth-db, key: password}",
        "      SESSION_KEY: {secret: synth-session, key: signing-key}",
        "      STACK_NAMESPACE: ${stack:namespace}",
    ]
    dep = dependency(i)
    if dep is not None:
        d = name(dep)
        lines += [f"      UPSTREAM_URL: http://${{service:{d}.http}}/api",
                  f"      UPSTREAM_HOST: ${{host:{d}}}",
                  f"      UPSTREAM_METRICS_PORT: ${{port:{d}.metrics}}"]
    ref = route_ref(i)
    if ref is not None:
        lines.append(f"      PUBLIC_URL: ${{route:{name(ref)}}}")
    lines += ["    readiness:",
              "      http: {port: http, path: /readyz}"]
    if dep is not None:
        lines.append(f"    depends_on: [{name(dep)}]")
    if has_route(i):
        lines += ["    routes:",
                  f"      - {{name: {n}, host: {n}, path: /, port: http}}"]
    return "\n".join(lines) + "\n"


def kind_overlay(n: int) -> str:
    lines = ["# kind: placement for every service (one entry per service)",
             "stack:",
             '  internal_dns: "{service}.{namespace}.svc.cluster.local"',
             "services:"]
    for i in range(n):
        lines += [f"  {name(i)}:",
                  "    replicas: 2",
                  "    resources:",
                  "      requests: {cpu: 100m, memory: 128Mi}",
                  "      limits: {memory: 512Mi}"]
    return "\n".join(lines) + "\n"


def phase2_overlay(n: int) -> str:
    lines = ["# phase 2: every 10th service starts; its consumer learns where it is",
             "services:"]
    for j in range(n):
        if phase_of(j) != 2 or j + 1 >= n:
            continue
        consumer, producer = name(j + 1), name(j)
        lines += [f"  {consumer}:",
                  "    env: !merge(children_missing_ok)",
                  f"      ASYNC_ADDRESS: ${{service:{producer}.http}}",
                  "    depends_on:",
                  f"      - !append {producer}"]
    if len(lines) == 2:
        return "{}\n"
    return "\n".join(lines) + "\n"


def write_parity(root: Path, n: int) -> Path:
    """A repository-shaped parity tree of ``n`` services under ``root``."""
    if root.exists():
        shutil.rmtree(root)
    (root / "base" / "services").mkdir(parents=True)
    for d in ("modes", "phases", "images"):
        (root / "overlays" / d).mkdir(parents=True)
    (root / "base" / "stack.yaml").write_text(STACK)
    (root / "base" / "secrets.yaml").write_text(SECRETS)
    shutil.copy(ROOT / "base" / "parity-policy.yaml", root / "base" / "parity-policy.yaml")
    (root / "base" / "services" / f"{name(0)}.yaml").write_text(EDGE)
    for i in range(1, n):
        (root / "base" / "services" / f"{name(i)}.yaml").write_text(service_yaml(i))
    (root / "overlays" / "modes" / "kind.yaml").write_text(kind_overlay(n))
    (root / "overlays" / "modes" / "compose.yaml").write_text("{}\n")
    (root / "overlays" / "phases" / "2.yaml").write_text(phase2_overlay(n))
    (root / "overlays" / "images" / "default.yaml").write_text("{}\n")
    return root


# --------------------------------------------------------------------------- kustomize

def _k8s_service(i: int) -> str:
    n = name(i)
    env = {"LOG_LEVEL": "info", "SERVICE_NAME": n, "STACK_NAMESPACE": "synth"}
    dep = dependency(i) if i else None
    if dep is not None:
        d = name(dep)
        env.update({"UPSTREAM_URL": f"http://{d}.synth.svc.cluster.local:8080/api",
                    "UPSTREAM_HOST": f"{d}.synth.svc.cluster.local",
                    "UPSTREAM_METRICS_PORT": "9090"})
    ref = route_ref(i) if i else None
    if ref is not None:
        env["PUBLIC_URL"] = f"https://{name(ref)}.synth.localhost"
    port, metrics = (80, 443) if i == 0 else (8080, 9090)
    second = "https" if i == 0 else "metrics"
    data = "\n".join(f'  {k}: "{v}"' for k, v in env.items())
    return f"""\
apiVersion: v1
kind: ConfigMap
metadata:
  name: {n}-env
  labels:
    app.kubernetes.io/name: {n}
data:
{data}
---
apiVersion: v1
kind: Service
metadata:
  name: {n}
  labels:
    app.kubernetes.io/name: {n}
spec:
  selector:
    app.kubernetes.io/name: {n}
  ports:
    - name: http
      port: {port}
      targetPort: http
    - name: {second}
      port: {metrics}
      targetPort: {second}
---
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
  labels:
    app.kubernetes.io/name: {n}
spec:
  replicas: 1
  selector:
    matchLabels:
      app.kubernetes.io/name: {n}
  template:
    metadata:
      labels:
        app.kubernetes.io/name: {n}
    spec:
      containers:
        - name: {n}
          image: registry.example/synth/{n}:1.0.{i % 7}
          ports:
            - name: http
              containerPort: {port}
            - name: {second}
              containerPort: {metrics}
          envFrom:
            - configMapRef:
                name: {n}-env
          env:
            - name: DB_USER
              valueFrom:
                secretKeyRef: {{name: synth-db, key: username}}
            - name: DB_PASSWORD
              valueFrom:
                secretKeyRef: {{name: synth-db, key: password}}
            - name: SESSION_KEY
              valueFrom:
                secretKeyRef: {{name: synth-session, key: signing-key}}
          readinessProbe:
            httpGet:
              path: /readyz
              port: http
            periodSeconds: 5
            timeoutSeconds: 3
            failureThreshold: 30
"""


def _smp(i: int, indent: str = "") -> str:
    """The strategic-merge patch of one Deployment (replicas + resources)."""
    n = name(i)
    body = f"""\
apiVersion: apps/v1
kind: Deployment
metadata:
  name: {n}
spec:
  replicas: 2
  template:
    spec:
      containers:
        - name: {n}
          resources:
            requests: {{cpu: 100m, memory: 128Mi}}
            limits: {{memory: 512Mi}}
"""
    return "".join(indent + line + "\n" for line in body.splitlines())


def _patch(i: int) -> str:
    """Degenerate form: one ``patches:`` entry with its own target per Deployment."""
    return (f"  - target:\n      kind: Deployment\n      name: {name(i)}\n"
            "    patch: |-\n" + _smp(i, "      "))


JSON6902 = """\
- op: replace
  path: /spec/replicas
  value: 2
- op: add
  path: /spec/template/spec/containers/0/resources
  value:
    requests: {cpu: 100m, memory: 128Mi}
    limits: {memory: 512Mi}
"""

FORMS = {
    "smp-file": "kustomize, one strategic-merge patch file",
    "json6902": "kustomize, one JSON 6902 patch for all",
    "per-service": "kustomize, degenerate: one patch entry per target",
}


def write_kustomize(root: Path, n: int) -> dict[str, Path]:
    """The equivalent kustomize tree. Returns the overlay of each form in FORMS."""
    if root.exists():
        shutil.rmtree(root)
    base = root / "base"
    base.mkdir(parents=True)
    files = []
    for i in range(n):
        f = f"{name(i)}.yaml"
        (base / f).write_text(_k8s_service(i))
        files.append(f)
    (base / "kustomization.yaml").write_text(
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n"
        + "".join(f"  - {f}\n" for f in files))
    head = ("apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"
            "namespace: synth\n"
            "resources:\n  - ../../base\n"
            "labels:\n  - pairs:\n      app.kubernetes.io/part-of: synth\n"
            "    includeSelectors: true\n"
            "patches:\n")
    patch_files = {
        "smp-file": ("deployments-patch.yaml", "  - path: deployments-patch.yaml\n",
                     "---\n".join(_smp(i) for i in range(n))),
        "json6902": ("deployments-json6902.yaml",
                     "  - path: deployments-json6902.yaml\n    target:\n"
                     "      kind: Deployment\n", JSON6902),
        "per-service": (None, "".join(_patch(i) for i in range(n)), None),
    }
    out = {}
    for key, (fname, entries, content) in patch_files.items():
        overlay = root / "overlays" / key
        overlay.mkdir(parents=True)
        (overlay / "kustomization.yaml").write_text(head + entries)
        if fname:
            (overlay / fname).write_text(content)
        out[key] = overlay
    return out
