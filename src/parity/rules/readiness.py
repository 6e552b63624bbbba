"""Readiness rules: start order (depends_on) and the probes that say a service is
ready (a probe on the wrong port, protocol or endpoint, a dependency with no
replica)."""

from __future__ import annotations

import re

from ..model import templates
from ..model import locate
from ..nodes import ListKey
from .base import Ctx, rule
from .sources import source_match


def closure(services: dict) -> dict[str, set[str]]:
    """Every service each service reaches through depends_on, itself excluded.
    Iterative, so a chain of thousands of services cannot exhaust the recursion
    limit."""
    out: dict[str, set[str]] = {}

    def direct(n: str) -> list:
        ds = (services.get(n) or {}).get("depends_on") or []
        return list(ds) if isinstance(ds, list) else []

    for n in services:
        found: set = set()
        todo = direct(n)
        while todo:
            d = todo.pop()
            if d == n or d in found:
                continue
            found.add(d)
            if d in out:  # already complete: take it whole
                found |= out[d] - {n}
                continue
            todo.extend(direct(d))
        out[n] = found
    return out


@rule("undeclared-dependency", "a service reaches another without depending on it")
def undeclared_dependency(c: Ctx):
    reach = closure(c.services)
    for name in c.services:
        for path, value in c.strings(name):
            try:
                refs = templates.parse(value)
            except templates.TemplateError:
                continue  # reported by the model's validation
            for ref in refs:
                if ref.kind not in ("service", "host", "port") or ref.target == name:
                    continue
                if ref.target in c.services and ref.target not in reach[name]:
                    deps = c.where(("services", name, "depends_on"))
                    note = f" (its depends_on is set at {deps})" if deps else ""
                    yield path, (f"{name} reaches {ref.target} ({ref.text}) but does not "
                                 f"depend on it, so it may start first in either mode"
                                 f"{note}"), \
                        (f"add {ref.target} to services.{name}.depends_on (in the layer of "
                         f"the phase that adds {ref.target})")
                    break


@rule("probe-protocol", "an http probe on a port that does not speak http")
def probe_protocol(c: Ctx):
    for name, svc in c.services.items():
        http = (svc.get("readiness") or {}).get("http")
        if not http:
            continue
        port = next((p for p in svc.get("ports") or [] if p["name"] == http.get("port")), None)
        if port is None:
            continue
        node, loc = locate(c.tree, ("services", name, "ports", ListKey(port["name"]),
                                    "protocol"))
        declared = node is not None and loc.layer != "default"
        http_ports = [p["name"] for p in svc.get("ports") or [] if p.get("protocol") == "http"]
        if port.get("protocol") != "http" and (declared or http_ports):
            yield ("services", name, "readiness", "http", "port"), (
                f"the http probe targets port '{port['name']}' (protocol "
                f"{port['protocol']}): the probe never gets an HTTP answer, so "
                f"{name} never becomes ready"), \
                (f"probe {' or '.join(http_ports)} (the port that speaks http)" if http_ports
                 else "probe a port that speaks http, or use readiness: {tcp: {port: …}}")


@rule("dependency-scaled-to-zero", "a dependency with no replica", modes=("kind",))
def dependency_scaled_to_zero(c: Ctx):
    for name, svc in c.services.items():
        if svc.get("workload") == "job" or not svc.get("replicas"):
            continue
        for dep in svc.get("depends_on") or []:
            d = c.services.get(dep)
            if d and d.get("workload") != "job" and d.get("replicas") == 0:
                yield ("services", dep, "replicas"), (
                    f"{dep} has 0 replicas but {name} depends on it: up waits for it forever "
                    "and the cluster never starts it"), \
                    f"give {dep} at least 1 replica, or remove it from {name}'s depends_on"


LIVENESS_PATHS = {"/healthz", "/livez", "/health", "/ping", "/alive", "/status"}
_READY_ROUTE = re.compile(r"""["'](/readyz|/ready|/health/ready)["']""")


@rule("readiness-on-liveness", "a readiness probe on the liveness endpoint of an app that has a readiness one")
def readiness_on_liveness(c: Ctx):
    for name, b, ctx in c.build_contexts():
        http = ((c.services[name].get("readiness") or {}).get("http") or {})
        path = str(http.get("path") or "")
        if path.rstrip("/") not in LIVENESS_PATHS:
            continue
        df = ctx / (b.get("dockerfile") or "Dockerfile")
        found = source_match(c, ctx, df, _READY_ROUTE)
        if found:
            what, where = found
            yield ("services", name, "readiness", "http", "path"), (
                f"{name}'s readiness asks {path}, which answers as soon as the process "
                f"runs; its code serves {what} ({b['context']}/{where}), which checks its "
                "dependencies: it is reported ready before it can serve, in every mode"), \
                f"path: {what}"


HEALTH_PORT = re.compile(r"(health|management|admin|monitor|metrics|status|probe)", re.I)


@rule("readiness-port-unused", "readiness on a port no dependent uses")
def readiness_port_unused(c: Ctx):
    used: dict[str, set[str]] = {}
    for name, svc in c.services.items():
        for _, value in c.strings(name):
            for m in re.finditer(r"\$\{(?:service|port):([a-z0-9][-a-z0-9]*)\.([a-z0-9][-a-z0-9]*)\}",
                                 value):
                if m.group(1) != name:
                    used.setdefault(m.group(1), set()).add(m.group(2))
    for name, svc in c.services.items():
        rd = svc.get("readiness") or {}
        probe = (rd.get("http") or rd.get("tcp") or {}).get("port")
        if not probe or HEALTH_PORT.search(str(probe)) or name not in used:
            continue
        protocol = {p["name"]: p.get("protocol") for p in svc.get("ports") or []}
        # only where the port dependents use speaks a protocol with its own readiness
        # (grpc, http); a mail or cache server's plain tcp port says no more than its UI
        app = {u for u in used[name] if protocol.get(u) in ("grpc", "http")}
        if probe not in used[name] and app:
            yield ("services", name, "readiness"), (
                f"{name} is ready when port '{probe}' answers, but the services that depend "
                f"on it use {', '.join(sorted(used[name]))}: they are started before what "
                "they call serves, in every mode"), \
                f"probe {' or '.join(sorted(used[name]))} (the port its dependents use)"


@rule("tcp-readiness-on-http", "readiness by an open socket where the port speaks http")
def tcp_readiness_on_http(c: Ctx):
    for name, svc in c.services.items():
        tcp = (svc.get("readiness") or {}).get("tcp")
        if not tcp:
            continue
        proto = {p["name"]: p.get("protocol") for p in svc.get("ports") or []}
        if proto.get(tcp.get("port")) == "http":
            yield ("services", name, "readiness", "tcp"), (
                f"{name}'s readiness only checks that port '{tcp['port']}' accepts a "
                "connection; an HTTP server opens its socket before it can answer (imports, "
                "migrations, a realm import), so dependents start against it too early"), \
                f"use readiness: {{http: {{port: {tcp['port']}, path: /…}}}} (its health path)"


_PROBE_PORT = re.compile(r"(?:^|\s)(?:-p|--port)(?:=|\s+)(\d{2,5})\b|(?:localhost|127\.0\.0\.1):(\d{2,5})\b")


@rule("probe-port-undeclared", "a readiness command that checks a port the service does not declare")
def probe_port_undeclared(c: Ctx):
    for name, svc in c.services.items():
        cmd = ((svc.get("readiness") or {}).get("exec") or {}).get("command") or []
        ports = {p["port"] for p in svc.get("ports") or []}
        if not ports:
            continue
        for item in [" ".join(str(x) for x in cmd)]:  # [pg_isready, -p, "5433"] too
            for m in _PROBE_PORT.finditer(item):
                port = int(m.group(1) or m.group(2))
                if port not in ports:
                    yield ("services", name, "readiness", "exec", "command"), (
                        f"the readiness command checks port {port}, but {name} declares "
                        f"{', '.join(str(p) for p in sorted(ports))}: it never succeeds (or "
                        "checks something else), in every mode"), \
                        f"probe {sorted(ports)[0]}, or ${{port:{name}.NAME}}"
                    return
