"""The compose renderer: a :class:`~parity.model.Stack` -> ``docker-compose.yaml`` (the
Compose Specification as ``docker compose`` v2 reads it) and ``edge/nginx.conf``.

It owns how each model feature is expressed in compose, and nothing else:

* contract (env, files, secrets, image, health, dependencies) maps one to one;
* transport: services reach each other by compose service name (plus a network
  alias when ``internal_dns`` says otherwise); only the edge publishes host ports,
  on the loopback address; the edge answers every route hostname through network
  aliases, so an in-network client and a browser see the same URLs;
* what compose has no field for is recorded, never dropped: storage size and
  class under the top-level ``x-parity`` extension, a job's completion timeout as
  a container label.

Compose interpolates ``$`` everywhere in the file, so every string is escaped
once, at the end (:func:`_escape`); the values built before that are the exact
text the container must see. Secret values never enter the file: env secrets come
from ``env_file`` and file secrets from ``secrets:``, both pointing into
``.parity/secrets/``. Anything compose cannot express raises
:class:`~parity.errors.InputError` naming ``services.<name>.<field>``.

The function is pure: no disk, clock or environment access, so equal stacks give
byte-identical output.
"""

from __future__ import annotations

import hashlib
import posixpath
import re
from decimal import Decimal
from typing import Any

from ..model import schema
from .. import secrets as secret_store
from .. import yamlio
from ..errors import InputError
from ..model import Readiness, SecretRef, Service, Stack
from ..nodes import ListKey, format_path
from . import RenderContext
from .names import LABEL_MANAGED, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK

COMPOSE_FILE = "docker-compose.yaml"
NGINX_CONF = "edge/nginx.conf"

#: A job's completion timeout (compose has no field; the lane enforces it).
LABEL_COMPLETION_TIMEOUT = "parity.dev/completion-timeout-seconds"
#: A digest of the files a container reads from configs or from a bind-mounted
#: nginx.conf. Compose recreates a container when its labels change, but not when
#: only an inline config's content or a bind-mounted file changes.
LABEL_CONFIG_HASH = "parity.dev/config-hash"
#: Top-level extension holding what compose cannot apply (storage size and class).
EXTENSION = "x-parity"

#: Where the edge container finds its configuration and the wildcard certificate.
EDGE_CONF_PATH = "/etc/nginx/nginx.conf"
EDGE_TLS_DIR = "/etc/nginx/tls"

#: yamllint's default line-length limit; see :func:`_fit_lines`.
MAX_LINE = 80

CONFIG_MODE = "0444"
SCRIPT_MODE = "0555"    # init scripts the postgres entrypoint executes (not sources)

# A route path goes into nginx.conf unquoted: letters, digits and the RFC 3986
# path characters nginx's parser does not treat specially.
_ROUTE_PATH = re.compile(r"^/[A-Za-z0-9._~/%:@+,=-]*$")
# A readiness path goes into a single-quoted shell word and an HTTP request line:
# any RFC 3986 path or query character but the single quote.
_PROBE_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&()*+,;=:@/?-]*$")


def render_compose(stack: Stack, ctx: RenderContext) -> dict[str, str]:
    """``{"docker-compose.yaml": ..., "edge/nginx.conf": ...}`` for ``stack``."""
    nginx_conf = _nginx_conf(stack, _edge(stack))
    services = {name: _service(stack, stack.services[name], ctx, nginx_conf)
                for name in sorted(stack.services)}
    doc: dict[str, Any] = {"name": stack.name, "services": services}
    sections = (("volumes", _volumes(stack)), ("networks", _networks(stack)),
                ("secrets", _secrets(stack, ctx)), ("configs", _configs(stack)),
                (EXTENSION, _not_applied(stack)))
    doc.update((key, value) for key, value in sections if value)
    text = _fit_lines(yamlio.dump(_escape(doc)))
    return {COMPOSE_FILE: text, NGINX_CONF: nginx_conf}


# --------------------------------------------------------------------------- errors

def _error(svc: Service | str, field: tuple, message: str, hint: str) -> InputError:
    name = svc if isinstance(svc, str) else svc.name
    return InputError(message, path=format_path(("services", name) + field), hint=hint)


# --------------------------------------------------------------------------- labels

def _labels(stack: Stack, service: str | None = None, phase: int | None = None,
            **extra: str) -> dict[str, str]:
    out = {LABEL_MANAGED: "true", LABEL_STACK: stack.name}
    if service is not None:
        out[LABEL_SERVICE] = service
    if phase is not None:
        out[LABEL_PHASE] = str(phase)
    out.update(extra)
    return out


# --------------------------------------------------------------------------- services

def _service(stack: Stack, svc: Service, ctx: RenderContext,
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
                ("healthcheck", _healthcheck(svc)), ("depends_on", _depends_on(stack, svc)))
    out.update((key, value) for key, value in optional if value)
    out["restart"] = "no" if _is_job(svc) else "unless-stopped"
    deploy = _deploy(svc)
    if deploy:
        out["deploy"] = deploy
    extra = {}
    if _is_job(svc) and svc.readiness and svc.readiness.completion_timeout_seconds:
        extra[LABEL_COMPLETION_TIMEOUT] = str(svc.readiness.completion_timeout_seconds)
    mounted = [(f.path, stack.resolve(f.content)) for f in svc.files]
    if svc.role == "edge":
        mounted.append((EDGE_CONF_PATH, nginx_conf))
    if mounted:
        extra[LABEL_CONFIG_HASH] = _digest(mounted)
    out["labels"] = _labels(stack, svc.name, svc.phase, **extra)
    return out


def _digest(files: list[tuple[str, str]]) -> str:
    h = hashlib.sha256()
    for path, content in sorted(files):
        h.update(f"{path}\0{len(content.encode())}\0".encode())
        h.update(content.encode())
    return h.hexdigest()[:16]


def _is_job(svc: Service) -> bool:
    return svc.workload == "job" or (svc.readiness is not None
                                     and svc.readiness.kind == "completion")


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
        out.append({"source": _config_name(svc.name, f.name), "target": f.path,
                    "mode": SCRIPT_MODE if script else CONFIG_MODE})
    return out


def _service_secrets(svc: Service) -> list[dict[str, Any]]:
    # No 'mode': compose bind-mounts a file secret and ignores uid/gid/mode outside
    # swarm (with a warning on every up); the store's own 0600 applies.
    return [{"source": _secret_name(sf.secret, sf.key), "target": sf.path}
            for sf in svc.secret_files]


def _mounts(svc: Service, ctx: RenderContext) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {"type": "volume", "source": _volume_name(svc.name, s.name), "target": s.path}
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
        out.append({"target": _edge_port(svc, name), "host_ip": host_ip,
                    "published": str(published), "protocol": "tcp"})
    return out


def _edge_port(edge: Service, name: str) -> int:
    try:
        return edge.port(name).port
    except KeyError:
        raise _error(edge, ("ports",), f"the edge has no port named '{name}'",
                     "give the edge two ports named http and https") from None


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
            raise _error(svc, ("depends_on",), f"depends on '{dep}', which is not enabled "
                         f"in phase {stack.phase}", "enable it or remove the dependency")
        if _is_job(target):
            condition = "service_completed_successfully"
        elif target.readiness is not None:
            condition = "service_healthy"
        else:
            raise _error(dep, ("readiness",), f"'{svc.name}' waits for '{dep}', which has "
                         "no readiness definition", "add readiness: http, tcp or exec")
        out[dep] = {"condition": condition, "required": True}
    return out


# --------------------------------------------------------------------------- health

def _healthcheck(svc: Service) -> dict[str, Any]:
    r = svc.readiness
    if r is None or _is_job(svc):
        return {}  # a job is ready when it exits 0 (depends_on says so)
    if r.kind == "exec":
        test = ["CMD", *r.command]
    elif r.kind in ("http", "tcp"):
        port = _readiness_port(svc, r)
        script = _http_probe(port, _probe_path(svc, r)) if r.kind == "http" \
            else _tcp_probe(port)
        test = ["CMD-SHELL", script]
    else:
        raise _error(svc, ("readiness",), f"readiness '{r.kind}' has no compose "
                     "healthcheck", "use http, tcp or exec")
    return {"test": test, "interval": f"{r.period_seconds}s",
            "timeout": f"{r.timeout_seconds}s", "retries": r.failure_threshold,
            "start_period": f"{r.initial_delay_seconds}s"}


def _readiness_port(svc: Service, r: Readiness) -> int:
    try:
        return svc.port(r.port or "").port
    except KeyError:
        raise _error(svc, ("readiness", r.kind, "port"), f"no port named '{r.port}'",
                     "name one of the service's ports") from None


def _probe_path(svc: Service, r: Readiness) -> str:
    path = r.path or "/"
    if not _PROBE_PATH.fullmatch(path):
        raise _error(svc, ("readiness", "http", "path"), f"'{path}' is not a URL path "
                     "the compose healthcheck can send as is",
                     "percent-encode other characters (a space is %20); no single quotes")
    return path


def _http_probe(port: int, path: str) -> str:
    """A shell probe that works with curl, with (busybox) wget, or with bash alone
    (raw HTTP over /dev/tcp); success is a 2xx/3xx status, as for a readinessProbe.
    The path is set once so that every line stays short."""
    return (
        f"p='{path}'\n"
        "if command -v curl >/dev/null 2>&1; then\n"
        f"  curl -fsS -o /dev/null \"http://127.0.0.1:{port}$p\"\n"
        "elif command -v wget >/dev/null 2>&1; then\n"
        f"  wget -q -O /dev/null \"http://127.0.0.1:{port}$p\"\n"
        "else\n"
        f"  bash -c 'exec 3<>/dev/tcp/127.0.0.1/{port} || exit 1\n"
        "    printf \"GET %s HTTP/1.0\\r\\nHost: 127.0.0.1\\r\\n\\r\\n\" \"$0\" >&3\n"
        "    IFS= read -r status <&3\n"
        "    case $status in \"HTTP/1.\"?\" \"[23]*) exit 0 ;; esac\n"
        "    exit 1' \"$p\"\n"
        "fi\n"
    )


def _tcp_probe(port: int) -> str:
    return (
        "if command -v bash >/dev/null 2>&1; then\n"
        f"  bash -c '</dev/tcp/127.0.0.1/{port}'\n"
        "else\n"
        f"  nc -z 127.0.0.1 {port}\n"
        "fi\n"
    )


# --------------------------------------------------------------------------- placement

_RESOURCE_SECTIONS = {"limits": "limits", "requests": "reservations"}


def _deploy(svc: Service) -> dict[str, Any]:
    """Replicas and resources: K8s requests are compose reservations."""
    out: dict[str, Any] = {}
    if svc.replicas != 1:
        if svc.role == "edge":
            raise _error(svc, ("replicas",), f"compose publishes the edge's host ports "
                         f"from one container; {svc.replicas} replicas cannot share them",
                         "keep the edge at replicas: 1 in compose")
        out["replicas"] = svc.replicas
    resources = {}
    for section, values in sorted((svc.resources or {}).items(),
                                  key=lambda kv: (kv[0] != "limits", kv[0])):
        if section not in _RESOURCE_SECTIONS:
            raise _error(svc, ("resources", section), f"compose has no resources "
                         f"'{section}'", "use limits or requests")
        converted = {}
        for field, value in sorted((values or {}).items()):
            fpath = ("resources", section, field)
            if field == "cpu":
                converted["cpus"] = _cpus(svc, fpath, str(value))
            elif field == "memory":
                converted["memory"] = _memory(svc, fpath, str(value))
            else:
                raise _error(svc, fpath, f"compose has no resource '{field}'",
                             "use cpu or memory")
        if converted:
            resources[_RESOURCE_SECTIONS[section]] = converted
    if resources:
        out["resources"] = resources
    return out


def _quantity(svc: Service, fpath: tuple, text: str) -> Decimal:
    """A Kubernetes quantity as an exact number."""
    try:
        return schema.quantity(text)
    except ValueError:
        raise _error(svc, fpath, f"'{text}' is not a quantity",
                     "write e.g. 500m or 2 (cpu), 512Mi or 1Gi (memory)") from None


def _cpus(svc: Service, fpath: tuple, text: str) -> str:
    cores = _quantity(svc, fpath, text)
    if cores * 10**9 != int(cores * 10**9):  # docker counts nano-CPUs
        raise _error(svc, fpath, f"cpu '{text}' is finer than the nano-CPU docker counts",
                     "round it to at most 9 decimal places")
    return format(cores.normalize(), "f")


def _memory(svc: Service, fpath: tuple, text: str) -> str:
    """Bytes, in compose's binary units (compose reads M as MiB) where exact."""
    size = _quantity(svc, fpath, text)
    if size != int(size):
        raise _error(svc, fpath, f"memory '{text}' is not a whole number of bytes "
                     "(in a Kubernetes quantity 'm' means milli)",
                     f"write {text[:-1]}Mi for mebibytes" if text.endswith("m")
                     else "give a whole number of bytes")
    n = int(size)
    for unit, factor in (("G", 2**30), ("M", 2**20), ("K", 2**10)):
        if n and n % factor == 0:
            return f"{n // factor}{unit}"
    return str(n)


# --------------------------------------------------------------------------- top level

def _volume_name(service: str, storage: str) -> str:
    return f"{service}-{storage}"


def _config_name(service: str, file: str) -> str:
    return f"{service}-{file}"


def _secret_name(secret: str, key: str) -> str:
    return f"{secret}__{key}"


def _volumes(stack: Stack) -> dict[str, Any]:
    # Labels that never change for a volume's life: compose compares a volume's
    # labels with the file and offers to recreate it (losing its data) on any change.
    out: dict[str, Any] = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for s in svc.storage:
            name = _volume_name(svc.name, s.name)
            _unique(out, name, svc, ("storage", ListKey(s.name)), "volume")
            out[name] = {"labels": _labels(stack, svc.name, svc.phase)}
    return dict(sorted(out.items()))


def _not_applied(stack: Stack) -> dict[str, Any]:
    """Placement compose has no field for (a named volume has neither size nor
    class), recorded in the file rather than dropped. It sits in a top-level
    extension so that a change to it does not alter the volume itself."""
    volumes = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for s in svc.storage:
            entry = {"size": s.size}
            if s.storage_class:
                entry["storage_class"] = s.storage_class
            volumes[_volume_name(svc.name, s.name)] = entry
    return {"not_applied": {"volumes": dict(sorted(volumes.items()))}} if volumes else {}


def _unique(seen: dict, name: str, svc: Service, field: tuple, what: str) -> None:
    if name in seen:
        raise _error(svc, field, f"compose {what} name '{name}' is also produced by "
                     "another service", "rename the service or the item")


def _networks(stack: Stack) -> dict[str, Any]:
    # Phase 1 for every phase: a label change would make compose recreate the
    # network (and every container on it) when moving between phases.
    return {"default": {"labels": _labels(stack, phase=1)}}


def _secrets(stack: Stack, ctx: RenderContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for svc in stack.services.values():
        for sf in svc.secret_files:
            out[_secret_name(sf.secret, sf.key)] = {
                "file": posixpath.join(ctx.state_rel, "secrets", sf.secret, sf.key),
                "labels": _labels(stack)}
    return dict(sorted(out.items()))


def _configs(stack: Stack) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for svc in (stack.services[n] for n in sorted(stack.services)):
        for f in svc.files:
            name = _config_name(svc.name, f.name)
            _unique(out, name, svc, ("files", ListKey(f.name)), "config")
            # inline content: compose copies it into the container with the
            # mount's mode (a file: config would be a bind mount with host modes)
            out[name] = {"content": stack.resolve(f.content),
                         "labels": _labels(stack, svc.name, svc.phase)}
    return dict(sorted(out.items()))


def _edge(stack: Stack) -> Service:
    edge = stack.edge()
    if edge is None:
        raise InputError("no service has role: edge", path="services",
                         hint="mark the ingress/edge service with 'role: edge'")
    repo = edge.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    if "nginx" not in repo:
        raise _error(edge, ("image",), f"compose renders the edge as an nginx proxy with "
                     f"a generated nginx.conf; '{edge.image}' is not an nginx image",
                     "use an nginx image for the edge (e.g. nginx:1.27.3-bookworm)")
    return edge


# --------------------------------------------------------------------------- escaping

def _escape(node: Any) -> Any:
    """Every string with ``$`` doubled: compose interpolates ``$VAR``/``${VAR}`` in
    every value of the file, and the values here are already final."""
    if isinstance(node, str):
        return node.replace("$", "$$")
    if isinstance(node, dict):
        return {k: _escape(v) for k, v in node.items()}
    if isinstance(node, list):
        return [_escape(v) for v in node]
    return node


# --------------------------------------------------------------------------- nginx

def _nginx_conf(stack: Stack, edge: Service) -> str:
    """The edge's whole configuration: shared proxy settings, a plain-HTTP server
    (readiness, redirect to HTTPS), a TLS default server (404), one TLS server per
    route host."""
    https_port = _edge_port(edge, "https")
    out = [f"# Rendered by parity for stack '{stack.name}' (compose, phase {stack.phase}).",
           "# Do not edit: change the model and run inv render.",
           *_NGINX_MAIN, "", "http {", *_NGINX_HTTP,
           f"    ssl_certificate {EDGE_TLS_DIR}/tls.crt;",
           f"    ssl_certificate_key {EDGE_TLS_DIR}/tls.key;",
           "    ssl_protocols TLSv1.2 TLSv1.3;",
           *_plain_server(stack, edge), *_tls_default_server(https_port)]
    # Browser URLs carry the host's https port when it is not 443; listening on it
    # inside the network too keeps those URLs valid for services calling them.
    extra = [f"        listen {stack.https_port} ssl;"] if stack.https_port != https_port else []
    for host, routes in _routes_by_host(stack):
        out += ["", "    server {", f"        listen {https_port} ssl;", *extra,
                f"        server_name {host};"]
        for route in routes:
            out += _locations(stack, route)
        out.append("    }")
    out.append("}")
    return "\n".join(out) + "\n"


_NGINX_MAIN = (
    "worker_processes auto;",
    "pid /tmp/nginx.pid;",
    "error_log /dev/stderr warn;",
    "",
    "events {",
    "    worker_connections 1024;",
    "}",
)

_NGINX_HTTP = (
    "    access_log /dev/stdout;",
    "    server_tokens off;",
    "    # Docker's embedded DNS, asked per request (proxy_pass takes a variable):",
    "    # nginx starts before its upstreams exist and follows their restarts.",
    "    resolver 127.0.0.11 valid=10s ipv6=off;",
    "    resolver_timeout 5s;",
    "",
    "    map $http_upgrade $connection_upgrade {",
    "        default upgrade;",
    "        '' close;",
    "    }",
    "    # The port the client addressed: 443 inside the network, the published",
    "    # https port from the host (it may be moved off 443).",
    "    map $http_host $forwarded_port {",
    "        ~:(?<port>[0-9]+)$ $port;",
    "        default 443;",
    "    }",
    "",
    "    proxy_http_version 1.1;",
    "    proxy_set_header Host $host;",
    "    proxy_set_header X-Forwarded-For $proxy_add_x_forwarded_for;",
    "    proxy_set_header X-Forwarded-Proto https;",
    "    proxy_set_header X-Forwarded-Host $host;",
    "    proxy_set_header X-Forwarded-Port $forwarded_port;",
    "    proxy_set_header Upgrade $http_upgrade;",
    "    proxy_set_header Connection $connection_upgrade;",
    "    proxy_read_timeout 300s;",
    "    # image pushes to the registry route are large and streamed",
    "    client_max_body_size 0;",
    "    proxy_request_buffering off;",
    "",
)


def _plain_server(stack: Stack, edge: Service) -> list[str]:
    """Port http answers the edge's own readiness path and redirects the rest."""
    r = edge.readiness
    health = "/healthz"
    if r is not None and r.kind == "http":
        if r.port != "http":
            raise _error(edge, ("readiness", "http", "port"), "the compose edge answers "
                         "readiness on its 'http' port", "use readiness: {http: {port: http}}")
        health = r.path or health
        _check_path(edge, ("readiness", "http", "path"), health)
    # the browser's https port: 443 unless the host port was moved
    redirect_port = "" if stack.https_port == 443 else f":{stack.https_port}"
    return ["", "    server {",
            f"        listen {_edge_port(edge, 'http')} default_server;",
            f"        location = {health} {{",
            "            access_log off;",
            "            default_type text/plain;",
            '            return 200 "ok\\n";',
            "        }",
            "        location / {",
            f"            return 308 https://$host{redirect_port}$request_uri;",
            "        }",
            "    }"]


def _tls_default_server(https_port: int) -> list[str]:
    """A host without a route gets a 404, not some other route's backend."""
    return ["", "    server {", f"        listen {https_port} ssl default_server;",
            "        return 404;", "    }"]


def _routes_by_host(stack: Stack) -> list[tuple[str, list]]:
    by_host: dict[str, list] = {}
    for r in stack.routes().values():
        by_host.setdefault(f"{r.host}.{stack.domain}", []).append(r)
    return [(h, sorted(by_host[h], key=lambda r: (r.path, r.name))) for h in sorted(by_host)]


def _locations(stack: Stack, route) -> list[str]:
    svc = stack.services[route.service]
    field = ("routes", ListKey(route.name))
    _check_path(svc, field + ("path",), route.path)
    try:
        port = svc.port(route.port)
    except KeyError:
        raise _error(svc, field + ("port",), f"no port named '{route.port}'",
                     "name one of the service's ports") from None
    if port.protocol not in ("http", "tcp"):
        raise _error(svc, field + ("port",), f"the compose edge proxies HTTP; port "
                     f"'{port.name}' speaks {port.protocol}", "route an http port")
    upstream = f"http://{stack.transport.host(svc.name)}:{port.port}"
    # A path prefix matches whole segments, as a Gateway API PathPrefix does:
    # /api matches /api and /api/x, not /apix.
    prefix = route.path.rstrip("/")
    matches = ["/"] if not prefix else [f"= {prefix}", f"{prefix}/"]
    out = []
    for match in matches:
        out += [f"        location {match} {{",
                f"            set $upstream {upstream};",
                "            proxy_pass $upstream;",
                "        }"]
    return out


def _check_path(svc: Service, field: tuple, path: str) -> None:
    if not _ROUTE_PATH.fullmatch(path):
        raise _error(svc, field, f"'{path}' has characters nginx.conf would need "
                     "quoted", "use letters, digits and . _ ~ / % : @ + , = -")


# --------------------------------------------------------------------------- line length

def _fit_lines(text: str) -> str:
    """Keep every line within yamllint's default limit of 80 characters.

    yamlio never folds (a folded plain scalar would break its sequence
    re-indentation), so a long value, typically a line of a config file's content,
    gives a long line. Each value that covers such a line is re-emitted as a
    double-quoted scalar broken with escaped line breaks: the same string, in the
    one YAML form that may break anywhere. Positions come from the YAML parser.
    """
    lines = text.split("\n")
    long = {i for i, line in enumerate(lines) if len(line) > MAX_LINE}
    if not long:
        return text
    import yaml

    loader = getattr(yaml, "CSafeLoader", yaml.SafeLoader)
    spans = []
    for node, indent in _value_scalars(yaml.compose(text, Loader=loader)):
        first, end = node.start_mark, node.end_mark
        last = end.line if end.column else end.line - 1  # a block scalar ends at col 0
        if long.intersection(range(first.line, last + 1)):
            spans.append((first.line, last, first.column, indent, node.value))
    for first_line, last, column, indent, value in sorted(spans, reverse=True):
        head = lines[first_line][:column]
        folded = _double_quoted(value, MAX_LINE - column, MAX_LINE - indent)
        lines[first_line:last + 1] = [head + folded[0]] + [" " * indent + f
                                                           for f in folded[1:]]
    return "\n".join(lines)


def _value_scalars(node, indent: int = 0):
    """(scalar node, indentation its continuation lines need) for every scalar
    value (not key): more than the enclosing mapping's keys, or at the item's column
    in a sequence."""
    import yaml

    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            yield from _value_scalars(value, key.start_mark.column + 2)
    elif isinstance(node, yaml.SequenceNode):
        for item in node.value:
            yield from _value_scalars(item, item.start_mark.column)
    elif isinstance(node, yaml.ScalarNode):
        yield node, indent


_ESCAPES = {"\\": "\\\\", '"': '\\"', "\n": "\\n", "\t": "\\t", "\r": "\\r", "\0": "\\0"}


def _escaped(ch: str) -> str:
    if ch in _ESCAPES:
        return _ESCAPES[ch]
    if ch == " " or ch.isprintable():
        return ch
    code = ord(ch)
    return f"\\x{code:02x}" if code < 0x100 else f"\\u{code:04x}" if code < 0x10000 \
        else f"\\U{code:08x}"


def _double_quoted(value: str, first_room: int, room: int) -> list[str]:
    """``value`` as a YAML double-quoted scalar in lines of at most ``first_room``
    (the first) and ``room`` characters. A line ends with an escaped line break
    (``\\``, which adds nothing to the value) after each ``\\n`` of the value, and
    after the last space that fits when the room runs out (or anywhere, in a long
    word). A space that would start a line is escaped: YAML drops it otherwise."""
    out: list[str] = []
    line: list[str] = ['"']   # escaped pieces, one per character of the value
    budget = first_room

    def flush(keep: int) -> None:
        nonlocal line, budget
        out.append("".join(line[:keep]) + "\\")
        line, budget = line[keep:], room
        if line and line[0] == " ":
            line[0] = "\\ "

    for ch in value:
        piece = _escaped(ch)
        while len("".join(line)) + len(piece) + 1 > budget and line not in ([], ['"']):
            flush(_break(line, budget))
        line.append("\\ " if not line and piece == " " else piece)
        if piece == "\\n":  # one line of the value per line of YAML
            flush(len(line))
    if not line:  # the value ended with a newline: close the last line instead
        return out[:-1] + [out[-1][:-1] + '"']
    return out + ["".join(line) + '"']


def _break(line: list[str], budget: int) -> int:
    """How many pieces of ``line`` go on this line: up to the last space that fits
    (with room for the closing backslash), else as many as fit, at least one."""
    fit, width = 0, 0
    for i, piece in enumerate(line):
        if width + len(piece) + 1 > budget:
            break
        width, fit = width + len(piece), i + 1
    spaces = [i + 1 for i in range(fit) if line[i] == " "]
    return spaces[-1] if spaces else max(fit, 1)
