"""One compose service entry per model service: the contract (image, build, command,
env, files, secrets, storage), transport (expose, the edge's published ports,
network aliases), ordering (``depends_on``), health and placement, and parity's
labels."""

from __future__ import annotations

import hashlib
import posixpath
from typing import Any

from ... import secrets as secret_store
from ...model import SecretRef, Service, Stack
from .. import RenderContext
from .common import (CONFIG_MODE, EDGE_CONF_PATH, EDGE_TLS_DIR, LABEL_COMPLETION_TIMEOUT,
                     LABEL_CONFIG_HASH, NGINX_CONF, SCRIPT_MODE, config_name, edge_port,
                     error, is_job, labels, secret_name, volume_name)
from .health import healthcheck
from .placement import deploy_spec


# --------------------------------------------------------------------------- services

def service(stack: Stack, svc: Service, ctx: RenderContext,
            nginx_conf: str) -> dict[str, Any]:
    """One service, keys in a fixed, readable order."""
    out: dict[str, Any] = {"image": svc.image}
    if svc.build:
        out["build"] = _build(svc, ctx)
    # K8s semantics: the model's command replaces the image ENTRYPOINT, args its CMD.
    if svc.command:
        out["entrypoint"] = list(svc.command)
    if svc.args:
        out["command"] = list(svc.args)
    if svc.working_dir:
        out["working_dir"] = svc.working_dir
    if svc.user:
        out["user"] = svc.user
    env = _environment(stack, svc)
    if env:
        out["environment"] = env
    if any(isinstance(v, SecretRef) for _, v in svc.env):
        # format raw: compose takes each value verbatim (no quote, '#' or '$'
        # processing), as a Kubernetes Secret delivers it.
        out["env_file"] = [{"path": posixpath.join(ctx.state_rel,
                                                   secret_store.env_file_name(svc.name)),
                            "required": True, "format": "raw"}]
    optional = (("configs", _service_configs(svc)), ("secrets", _service_secrets(svc)),
                ("volumes", _mounts(svc, ctx)), ("expose", _expose(svc)),
                ("ports", _ports(stack, svc)),
                ("networks", _service_networks(stack, svc)),
                ("healthcheck", healthcheck(svc)), ("depends_on", _depends_on(stack, svc)))
    out.update((key, value) for key, value in optional if value)
    out["restart"] = "no" if is_job(svc) else "unless-stopped"
    deploy = deploy_spec(svc)
    if deploy:
        out["deploy"] = deploy
    extra = {}
    if is_job(svc) and svc.readiness and svc.readiness.completion_timeout_seconds:
        extra[LABEL_COMPLETION_TIMEOUT] = str(svc.readiness.completion_timeout_seconds)
    mounted = [(f.path, stack.resolve(f.content)) for f in svc.files]
    if svc.role == "edge":
        mounted.append((EDGE_CONF_PATH, nginx_conf))
    if mounted:
        extra[LABEL_CONFIG_HASH] = _digest(mounted)
    out["labels"] = labels(stack, svc.name, svc.phase, **extra)
    return out


def _digest(files: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for path, content in sorted(files):
        h.update(f"{path}\0{len(content.encode())}\0".encode())
        h.update(content.encode())
    return h.hexdigest()[:16]


def _build(svc: Service, ctx: RenderContext) -> dict[str, Any]:
    b = svc.build
    assert b is not None
    # Relative to the output directory, so the file does not depend on where the
    # repository is checked out.
    out: dict[str, Any] = {"context": posixpath.normpath(posixpath.join(ctx.root_rel,
                                                                        b.context))}
    if b.dockerfile:
        out["dockerfile"] = b.dockerfile
    if b.target:
        out["target"] = b.target
    if b.args:
        out["args"] = dict(b.args)
    return out


def env_text(stack: Stack, value: Any) -> str:
    """An env value as the container sees it: references resolved for this mode,
    booleans lower-case (YAML's ``true``, not Python's ``True``)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return stack.resolve(value)
    return str(value)


def _environment(stack: Stack, svc: Service) -> dict[str, str]:
    return {k: env_text(stack, v) for k, v in sorted(svc.env)
            if not isinstance(v, SecretRef)}


def _service_configs(svc: Service) -> list[dict[str, Any]]:
    out = []
    for f in svc.files:
        script = f.path.startswith("/docker-entrypoint-initdb.d/") and f.path.endswith(".sh")
        out.append({"source": config_name(svc.name, f.name), "target": f.path,
                    "mode": SCRIPT_MODE if script else CONFIG_MODE})
    return out


def _service_secrets(svc: Service) -> list[dict[str, Any]]:
    # No 'mode': compose bind-mounts a file secret and ignores uid/gid/mode outside
    # swarm (with a warning on every up); the store's own 0600 applies.
    return [{"source": secret_name(sf.secret, sf.key), "target": sf.path}
            for sf in svc.secret_files]


def _mounts(svc: Service, ctx: RenderContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "volume", "source": volume_name(svc.name, s.name), "target": s.path}
        for s in svc.storage]
    if svc.ca_bundle:
        out.append(_bind(posixpath.join(ctx.state_rel, "ca", "ca.crt"), svc.ca_bundle))
    if svc.role == "edge":
        out.append(_bind("./" + NGINX_CONF, EDGE_CONF_PATH))
        # The directory, not its two files: the certificate is replaced by a
        # rename when reissued, and a file mount would keep showing the old one.
        out.append(_bind(posixpath.join(ctx.state_rel, "tls"), EDGE_TLS_DIR))
    return out


def _bind(source: str, target: str) -> dict[str, Any]:
    # Long syntax: a missing source is an error at 'up' instead of an empty
    # directory docker would create in its place.
    return {"type": "bind", "source": source, "target": target, "read_only": True}


def _expose(svc: Service) -> list[str]:
    """The ports a service listens on, unpublished (container metadata only: every
    port is reachable on the network anyway); the edge's are in ``ports``."""
    if svc.role == "edge":
        return []
    return [f"{p.port}/{'udp' if p.protocol == 'udp' else 'tcp'}" for p in svc.ports]


def _ports(stack: Stack, svc: Service) -> list[dict[str, Any]]:
    """Only the edge publishes, and only on the (validated) loopback address."""
    if svc.role != "edge":
        return []
    host_ip = "127.0.0.1" if stack.edge_bind == "localhost" else stack.edge_bind
    out = []
    for name, published in (("http", stack.http_port), ("https", stack.https_port)):
        out.append({"target": edge_port(svc, name), "host_ip": host_ip,
                    "published": str(published), "protocol": "tcp"})
    return out


def _service_networks(stack: Stack, svc: Service) -> dict[str, Any]:
    aliases = set()
    host = stack.transport.host(svc.name)
    if host != svc.name:  # internal_dns names it differently from compose's DNS
        aliases.add(host)
    if svc.role == "edge":
        # in-network clients resolve browser hostnames to the edge, like a browser
        aliases.update(_route_hosts(stack))
    return {"default": {"aliases": sorted(aliases)}} if aliases else {}


def _route_hosts(stack: Stack) -> list[str]:
    return sorted({f"{r.host}.{stack.domain}" for r in stack.routes().values()})


def _depends_on(stack: Stack, svc: Service) -> dict[str, Any]:
    out = {}
    for dep in sorted(svc.depends_on):
        target = stack.services.get(dep)
        if target is None:
            raise error(svc, ("depends_on",), f"depends on '{dep}', which is not enabled "
                        f"in phase {stack.phase}", "enable it or remove the dependency")
        if is_job(target):
            condition = "service_completed_successfully"
        elif target.readiness is not None:
            condition = "service_healthy"
        else:
            raise error(dep, ("readiness",), f"'{svc.name}' waits for '{dep}', which has "
                        "no readiness definition", "add readiness: http, tcp or exec")
        out[dep] = {"condition": condition, "required": True}
    return out
