"""The cross-reference lint of a compose file (as a dict): dependencies, healthchecks,
declared secrets, configs, volumes and networks, env files, and host ports (only
the edge publishes them, on the bind address parity chose)."""

from __future__ import annotations

from typing import Any

from ..secrets import env_file_name
from .finding import Finding, name_list


def _host_ip(entry: Any) -> tuple[str, str]:
    """(host ip, text) of one compose ``ports`` entry; ip "" means every interface."""
    if isinstance(entry, dict):
        text = f"{entry.get('host_ip', '')}:{entry.get('published', '')}:{entry.get('target')}"
        return str(entry.get("host_ip") or ""), text
    text = str(entry)
    spec = text.split("/", 1)[0]
    if spec.startswith("["):
        return spec[1:spec.index("]")], text
    parts = spec.split(":")
    return (parts[0] if len(parts) == 3 else ""), text


def _volume_source(entry: Any) -> tuple[str | None, str]:
    """(named volume or None for bind/tmpfs, text) of one service ``volumes`` entry."""
    if isinstance(entry, dict):
        if entry.get("type", "volume") != "volume":
            return None, str(entry.get("source"))
        return entry.get("source"), str(entry.get("source"))
    source = str(entry).split(":", 1)[0]
    if ":" not in str(entry) or source.startswith((".", "/", "~", "$")):
        return None, source  # an anonymous volume or a bind mount
    return source, source


def lint_compose(compose: dict, stack) -> list[Finding]:
    """Every broken cross-reference in a compose file (as a dict)."""
    findings: list[Finding] = []
    services: dict = compose.get("services") or {}
    edge = stack.edge()
    edge_name = edge.name if edge is not None else None
    declared = {kind: set((compose.get(kind) or {}).keys())
                for kind in ("secrets", "configs", "volumes", "networks")}
    env_files = {name: env_file_name(name) for name in services}

    def add(name: str, field: str, message: str) -> None:
        findings.append(Finding(f"service/{name}", field, message))

    for name, svc in sorted(services.items()):
        svc = svc or {}
        deps = svc.get("depends_on") or []
        for dep in (deps if isinstance(deps, list) else list(deps)):
            if dep not in services:
                add(name, f"depends_on.{dep}", f"'{dep}' is not a service of this file "
                    f"(services: {name_list(services)})")
        model = stack.services.get(name)
        is_job = model is not None and model.workload == "job"
        health = svc.get("healthcheck") or {}
        test = health.get("test")
        disabled = health.get("disable") or test == "NONE" or (
            isinstance(test, list) and test[:1] == ["NONE"])
        if not is_job and (not health or disabled):
            add(name, "healthcheck", "missing: dependents wait for service_healthy, and "
                "parity waits for readiness")
        for kind in ("secrets", "configs"):
            for entry in svc.get(kind) or []:
                source = entry.get("source") if isinstance(entry, dict) else entry
                if source not in declared[kind]:
                    add(name, f"{kind}.{source}", f"'{source}' is not declared under "
                        f"top-level {kind}: (declared: {name_list(declared[kind])})")
        for entry in svc.get("volumes") or []:
            source, _ = _volume_source(entry)
            if source is not None and source not in declared["volumes"]:
                add(name, f"volumes.{source}", f"named volume '{source}' is not declared "
                    f"under top-level volumes: (declared: {name_list(declared['volumes'])})")
        nets = svc.get("networks") or []
        for net in (nets if isinstance(nets, list) else list(nets)):
            if net != "default" and net not in declared["networks"]:
                add(name, f"networks.{net}", f"'{net}' is not declared under top-level "
                    f"networks: (declared: {name_list(declared['networks'])})")
        files = svc.get("env_file") or []
        for entry in ([files] if isinstance(files, (str, dict)) else files):
            path = entry.get("path") if isinstance(entry, dict) else entry
            path = str(path)
            if path.startswith("/"):
                add(name, "env_file", f"'{path}' is absolute; renders refer to files "
                    "relative to the output directory")
            for other, rel in env_files.items():
                if other != name and path.endswith(rel):
                    add(name, "env_file", f"'{path}' is the secret env file of service "
                        f"'{other}'; a service reads only its own")
        for entry in svc.get("ports") or []:
            ip, text = _host_ip(entry)
            if name != edge_name:
                add(name, "ports", f"publishes {text}; only the edge ({edge_name}) "
                    "publishes host ports")
            elif ip != stack.edge_bind:
                add(name, "ports", f"publishes {text} on {ip or 'every interface'}; "
                    f"parity binds host ports to {stack.edge_bind} only")
    return findings
