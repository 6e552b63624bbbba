"""The workload of a service: a ``Deployment``, ``StatefulSet`` or ``Job`` with one
container (command/args escaped for Kubernetes, env from ConfigMaps and Secrets,
readiness probe, numeric user), its volumes and mounts (storage, files, file
secrets, the local CA) and its PVCs."""

from __future__ import annotations

import re

from ...model import SecretRef, Service
from ..names import ANNOTATION_CONFIG_HASH, ANNOTATION_DEPENDS_ON, LOCAL_CA_CONFIGMAP, LOCAL_CA_KEY
from .base import Renderer
from .network import HEADLESS_SUFFIX

JOB_BACKOFF_LIMIT = 0
FILE_MODE = 0o444
SCRIPT_MODE = 0o555           # init scripts the postgres/mysql entrypoints execute
INITDB_DIR = "/docker-entrypoint-initdb.d/"
SECRET_FILE_MODE = 0o444

FILES_VOLUME = "parity-files"
CA_VOLUME = "parity-local-ca"
SECRET_VOLUME_PREFIX = "secret-"

_K8S_EXPANDS = re.compile(r"\$(?=[($])")


def escape_k8s(text: str) -> str:
    """Escape ``$`` where Kubernetes would expand it in command/args: before ``(``
    (a ``$(VAR)`` reference) and before ``$`` (``$$`` collapses to ``$``)."""
    return _K8S_EXPANDS.sub("$$", text)


def _file_mode(path: str) -> int:
    return SCRIPT_MODE if path.startswith(INITDB_DIR) and path.endswith(".sh") else FILE_MODE


def claim_spec(storage) -> dict:
    spec: dict = {"accessModes": ["ReadWriteOnce"],
                  "resources": {"requests": {"storage": storage.size}}}
    if storage.storage_class:
        spec["storageClassName"] = storage.storage_class
    return spec


def workload(r: Renderer, svc: Service, has_env: bool, config_hash: str | None) -> dict:
    annotations = {}
    if svc.depends_on:
        annotations[ANNOTATION_DEPENDS_ON] = ",".join(svc.depends_on)
    meta = r.meta(svc.name, svc.phase, svc.name, annotations)
    template_meta: dict = {"labels": {**r.labels(svc.phase, svc.name)}}
    if config_hash:
        # Config changes roll the pods (a ConfigMap change alone would not).
        template_meta["annotations"] = {ANNOTATION_CONFIG_HASH: config_hash}
    volumes, mounts, claims = _volumes(r, svc)
    container = _container(r, svc, has_env, mounts)
    pod: dict = {}
    if svc.workload == "job":
        pod["restartPolicy"] = "Never"
    pod.update({"enableServiceLinks": False, "automountServiceAccountToken": False,
                "containers": [container]})
    if volumes:
        pod["volumes"] = volumes
    template = {"metadata": template_meta, "spec": pod}
    if svc.workload == "job":
        spec: dict = {"backoffLimit": JOB_BACKOFF_LIMIT}
        rd = svc.readiness
        if rd is not None and rd.completion_timeout_seconds:
            spec["activeDeadlineSeconds"] = rd.completion_timeout_seconds
        spec["template"] = template
        return {"apiVersion": "batch/v1", "kind": "Job", "metadata": meta, "spec": spec}
    spec = {"replicas": svc.replicas,
            "selector": {"matchLabels": r.selector(svc.name)}}
    if svc.workload == "stateful":
        spec["serviceName"] = svc.name + HEADLESS_SUFFIX
    spec["template"] = template
    if svc.workload == "stateful" and claims:
        spec["volumeClaimTemplates"] = claims
    kind = "StatefulSet" if svc.workload == "stateful" else "Deployment"
    return {"apiVersion": "apps/v1", "kind": kind, "metadata": meta, "spec": spec}


def _volumes(r: Renderer, svc: Service) -> tuple[list[dict], list[dict], list[dict]]:
    base = f"services.{svc.name}"
    volumes: list[dict] = []
    mounts: list[tuple[str, dict]] = []   # (model path of the field, mount)
    claims: list[dict] = []
    for s in svc.storage:
        if svc.workload == "stateful":
            claims.append({"metadata": {"name": s.name,
                                        "labels": r.labels(svc.phase, svc.name)},
                           "spec": claim_spec(s)})
        else:
            volumes.append({"name": s.name, "persistentVolumeClaim": {
                "claimName": f"{svc.name}-{s.name}"}})
        mounts.append((f"{base}.storage[{s.name}].path",
                       {"name": s.name, "mountPath": s.path}))
    if svc.files:
        volumes.append({"name": FILES_VOLUME, "configMap": {
            "name": f"{svc.name}-files", "defaultMode": FILE_MODE,
            "items": [{"key": f.name, "path": f.name, "mode": _file_mode(f.path)}
                      for f in svc.files]}})
        for f in svc.files:
            mounts.append((f"{base}.files[{f.name}].path",
                           {"name": FILES_VOLUME, "mountPath": f.path,
                            "subPath": f.name, "readOnly": True}))
    for sf in svc.secret_files:
        vname = SECRET_VOLUME_PREFIX + sf.name
        if len(vname) > 63:
            r.error(f"{base}.secret_files[{sf.name}].name", f"the volume name "
                    f"'{vname}' is longer than 63 characters", "shorten the name")
        volumes.append({"name": vname, "secret": {
            "secretName": sf.secret, "defaultMode": SECRET_FILE_MODE,
            "items": [{"key": sf.key, "path": sf.key}]}})
        mounts.append((f"{base}.secret_files[{sf.name}].path",
                       {"name": vname, "mountPath": sf.path, "subPath": sf.key,
                        "readOnly": True}))
    if svc.ca_bundle:
        volumes.append({"name": CA_VOLUME, "configMap": {
            "name": LOCAL_CA_CONFIGMAP, "items": [{"key": LOCAL_CA_KEY,
                                                   "path": LOCAL_CA_KEY}]}})
        mounts.append((f"{base}.ca_bundle", {"name": CA_VOLUME, "mountPath": svc.ca_bundle,
                                             "subPath": LOCAL_CA_KEY, "readOnly": True}))
    names: dict[str, str] = {}
    for v in volumes + [c["metadata"] for c in claims]:
        if v["name"] in names:
            r.error(f"{base}.storage[{v['name']}].name", f"volume name "
                    f"'{v['name']}' is also used by parity in kind", "rename it")
        names[v["name"]] = v["name"]
    seen: dict[str, str] = {}
    for where, m in mounts:
        if m["mountPath"] in seen:
            r.error(where, f"path {m['mountPath']} is also mounted by "
                    f"{seen[m['mountPath']]}", "each mount needs its own path")
        seen.setdefault(m["mountPath"], where)
    return volumes, [m for _, m in mounts], claims


def _container(r: Renderer, svc: Service, has_env: bool, mounts: list[dict]) -> dict:
    c: dict = {"name": svc.name, "image": svc.image, "imagePullPolicy": "IfNotPresent"}
    if svc.command:
        c["command"] = [escape_k8s(x) for x in svc.command]
    if svc.args:
        c["args"] = [escape_k8s(x) for x in svc.args]
    if svc.working_dir:
        c["workingDir"] = svc.working_dir
    if svc.ports:
        c["ports"] = [{"name": p.name, "containerPort": p.port,
                       "protocol": "UDP" if p.protocol == "udp" else "TCP"}
                      for p in svc.ports]
    if has_env:
        c["envFrom"] = [{"configMapRef": {"name": f"{svc.name}-env"}}]
    secret_env = [{"name": k, "valueFrom": {"secretKeyRef": {"name": v.secret,
                                                             "key": v.key}}}
                  for k, v in svc.env if isinstance(v, SecretRef)]
    if secret_env:
        c["env"] = secret_env
    if svc.resources:
        c["resources"] = {k: dict(v) for k, v in svc.resources.items()}
    if mounts:
        c["volumeMounts"] = mounts
    probe = _probe(svc)
    if probe:
        c["readinessProbe"] = probe
    if svc.user is not None and re.fullmatch(r"\d+(:\d+)?", svc.user):
        uid, _, gid = svc.user.partition(":")
        sc = {"runAsUser": int(uid)}
        if gid:
            sc["runAsGroup"] = int(gid)
        c["securityContext"] = sc
    return c


def _probe(svc: Service) -> dict | None:
    rd = svc.readiness
    if rd is None or rd.kind == "completion":
        return None
    probe: dict
    if rd.kind == "http":
        probe = {"httpGet": {"path": rd.path, "port": rd.port}}
    elif rd.kind == "tcp":
        probe = {"tcpSocket": {"port": rd.port}}
    else:
        probe = {"exec": {"command": list(rd.command)}}
    probe.update({"initialDelaySeconds": rd.initial_delay_seconds,
                  "periodSeconds": rd.period_seconds,
                  "timeoutSeconds": rd.timeout_seconds,
                  "failureThreshold": rd.failure_threshold})
    return probe
