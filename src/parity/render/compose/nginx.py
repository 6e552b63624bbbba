"""The compose edge: ``edge/nginx.conf`` for the ``role: edge`` service, an nginx
proxy with a plain-HTTP server (readiness, redirect to HTTPS), a TLS default server
(404) and one TLS server per route host."""

from __future__ import annotations

import re

from ...errors import InputError
from ...model import Service, Stack
from ...nodes import ListKey
from .common import EDGE_TLS_DIR, edge_port, error

# A route path goes into nginx.conf unquoted: letters, digits and the RFC 3986
# path characters nginx's parser does not treat specially.
_ROUTE_PATH = re.compile(r"^/[A-Za-z0-9._~/%:@+,=-]*$")


def edge_service(stack: Stack) -> Service:
    edge = stack.edge()
    if edge is None:
        raise InputError("no service has role: edge", path="services",
                         hint="mark the ingress/edge service with 'role: edge'")
    repo = edge.image.split("@")[0].rsplit("/", 1)[-1].split(":")[0]
    if "nginx" not in repo:
        raise error(edge, ("image",), f"compose renders the edge as an nginx proxy with "
                    f"a generated nginx.conf; '{edge.image}' is not an nginx image",
                    "use an nginx image for the edge (e.g. nginx:1.27.3-bookworm)")
    return edge


# --------------------------------------------------------------------------- nginx

def nginx_conf(stack: Stack, edge: Service) -> str:
    """The edge's whole configuration: shared proxy settings, a plain-HTTP server
    (readiness, redirect to HTTPS), a TLS default server (404), one TLS server per
    route host."""
    https_port = edge_port(edge, "https")
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
            raise error(edge, ("readiness", "http", "port"), "the compose edge answers "
                        "readiness on its 'http' port", "use readiness: {http: {port: http}}")
        health = r.path or health
        _check_path(edge, ("readiness", "http", "path"), health)
    # the browser's https port: 443 unless the host port was moved
    redirect_port = "" if stack.https_port == 443 else f":{stack.https_port}"
    return ["", "    server {",
            f"        listen {edge_port(edge, 'http')} default_server;",
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
        raise error(svc, field + ("port",), f"no port named '{route.port}'",
                    "name one of the service's ports") from None
    if port.protocol not in ("http", "tcp"):
        raise error(svc, field + ("port",), f"the compose edge proxies HTTP; port "
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
        raise error(svc, field, f"'{path}' has characters nginx.conf would need "
                    "quoted", "use letters, digits and . _ ~ / % : @ + , = -")
