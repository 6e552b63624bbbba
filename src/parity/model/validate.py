"""Rules a schema cannot state: references, cycles, phases, uniqueness; with
``root``, that every build context and Dockerfile is inside the repository.

One small function per rule. :func:`validate_semantics` runs them in a fixed
order: :data:`STACK_RULES` once, :data:`SERVICE_RULES` for each service in turn,
then :data:`FINAL_RULES`; the order of the rules is the order of the errors.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from .. import identity as idp
from ..errors import InputError, ParityError, did_you_mean
from ..nodes import ListKey, Map, format_path, to_plain
from . import schema
from .formats import check_dns, check_images, readiness_path_problem, route_path_problem
from .locate import locate
from .references import check_env_secret, check_refs, check_secret, route_owners



@dataclass
class Context:
    """What every rule reads: the plain model, the chosen phase, the repository
    root (or None), and ``err(path, message, hint)`` to report a problem."""

    data: dict
    phase: int
    root: Path | None
    err: Callable[[tuple, str, str], None]
    services: dict[str, dict] = field(init=False)
    secrets: dict[str, dict] = field(init=False)
    #: route name -> its service, once (per reference it was quadratic)
    route_owner: dict[str, str] = field(init=False)
    #: routes seen so far, by name and by (host, path): both are global
    route_names: dict[str, tuple] = field(default_factory=dict)
    route_hosts: dict[tuple[str, str], tuple] = field(default_factory=dict)

    def __post_init__(self) -> None:
        self.services = self.data.get("services", {})
        self.secrets = self.data.get("secrets", {}) or {}
        self.route_owner = route_owners(self.services)

    def refs(self, value: str, path: tuple) -> None:
        """Check the reference templates in ``value``."""
        check_refs(value, path, self.services, self.phase, self.err, self.route_owner,
                   self.data.get("identity"))

    def secret_ref(self, ref: dict, path: tuple) -> None:
        """Check a secret reference delivered as an environment variable."""
        check_secret(ref, self.secrets, path, self.err)
        check_env_secret(ref, self.secrets, path, self.err)


# --------------------------------------------------------------------------- the stack

def edge_bind_is_loopback(cx: Context) -> None:
    edge_bind = cx.data.get("stack", {}).get("edge", {}).get("bind", "127.0.0.1")
    if edge_bind not in ("127.0.0.1", "::1"):
        cx.err(("stack", "edge", "bind"), f"'{edge_bind}' is not a loopback address",
               "parity binds host ports to 127.0.0.1 only; remove the override")


def edge_ports_differ(cx: Context) -> None:
    edge = cx.data.get("stack", {}).get("edge", {})
    http_port, https_port = edge.get("http_port", 80), edge.get("https_port", 443)
    if http_port == https_port:
        cx.err(("stack", "edge", "https_port"), f"http and https would both use host port "
               f"{https_port}", "give them different ports, e.g. PARITY_HTTP_PORT=8080 "
               "PARITY_HTTPS_PORT=8443")
    elif https_port == 80:
        # the edge serves plain http on 80 inside the network/cluster in both modes,
        # and answers on the browser's https port there too
        cx.err(("stack", "edge", "https_port"), "https cannot use port 80: the edge serves "
               "plain http on 80 inside the stack", "pick another port, e.g. "
               "PARITY_HTTPS_PORT=8443")


def dns_names(cx: Context) -> None:
    check_dns(cx.data.get("stack") or {}, cx.services, cx.err)


def secret_names(cx: Context) -> None:
    """Secret names share .parity/secrets/ with the env files parity writes there."""
    err = cx.err
    for name, spec in cx.secrets.items():
        # the schema's patterns are searched with '$', which also matches before a
        # final line feed: a name that is a file name must match in full
        if not re.fullmatch(schema.DNS_LABEL[1:-1], name):
            err(("secrets", name), f"{name!r} is not a DNS-1035 label", "rename it")
        for key in (spec.get("keys") or {}) if isinstance(spec, dict) else ():
            if not re.fullmatch(schema.SECRET_KEY[1:-1], key):
                err(("secrets", name, "keys", key), f"{key!r} is not a valid secret key "
                    "(letters, digits, '-', '_' and '.', at most 253 characters, not '.' "
                    "and not starting with '..')", "rename the key, e.g. 'password'")
        if name in schema.RESERVED_SECRET_NAMES:
            err(("secrets", name), f"the secret name '{name}' is reserved: parity keeps "
                f"the compose env files in .parity/secrets/{name}/",
                f"rename the secret, e.g. 'app-{name}'")


def images(cx: Context) -> None:
    check_images(cx.data, cx.err, cx.root)


def one_edge(cx: Context) -> None:
    edges = [n for n, s in cx.services.items() if s.get("role") == "edge"]
    if len(edges) != 1:
        cx.err(("services",), f"expected exactly one service with role: edge, found "
               f"{len(edges)}{' (' + ', '.join(edges) + ')' if edges else ''}",
               "mark the ingress/edge service with 'role: edge'")


# --------------------------------------------------------------------------- each service

def _port_names(svc: dict) -> set[str]:
    return {p["name"] for p in svc.get("ports") or []}


def unique_item_names(cx: Context, name: str, svc: dict) -> None:
    """Unique names in keyed lists."""
    base = ("services", name)
    for listname in ("ports", "routes", "storage", "secret_files", "files"):
        seen: dict[str, int] = {}
        for i, item in enumerate(svc.get(listname) or []):
            n = item.get("name")
            if n in seen:
                what = listname[:-1] if listname != 'storage' else 'storage'
                cx.err(base + (listname, i), f"duplicate {what} name '{n}' (also item "
                       f"{seen[n] + 1})", "give each item its own name")
            seen.setdefault(n, i)


def unique_port_numbers(cx: Context, name: str, svc: dict) -> None:
    numbers: dict[int, str] = {}
    for p in svc.get("ports") or []:
        if p["port"] in numbers and numbers[p["port"]] != p["name"]:
            cx.err(("services", name, "ports", ListKey(p["name"]), "port"),
                   f"port {p['port']} is also used by '{numbers[p['port']]}'",
                   "each named port needs its own number")
        numbers.setdefault(p["port"], p["name"])


def readiness(cx: Context, name: str, svc: dict) -> None:
    base = ("services", name)
    err = cx.err
    rd = svc.get("readiness")
    workload = svc.get("workload", "stateless")
    port_names = _port_names(svc)
    if rd is None:
        err(base, "no readiness definition", "add readiness: http, tcp or exec "
            "(completion for jobs): parity waits on it in both modes")
        return
    kinds = [k for k in ("http", "tcp", "exec", "completion") if k in rd]
    if len(kinds) != 1:
        err(base + ("readiness",), f"give exactly one of http, tcp, exec, completion "
            f"(found {', '.join(kinds) or 'none'})", "keep one")
    elif kinds[0] == "completion" and workload != "job":
        err(base + ("readiness", "completion"), "completion readiness is for jobs",
            "use http, tcp or exec, or set workload: job")
    elif workload == "job" and kinds[0] != "completion":
        err(base + ("readiness", kinds[0]), "a job is ready when it completes",
            "use readiness: {completion: {}}")
    elif kinds[0] == "http" and readiness_path_problem(
            rd["http"]["path"], svc.get("role") == "edge"):
        err(base + ("readiness", "http", "path"), f"'{rd['http']['path']}' "
            + readiness_path_problem(rd["http"]["path"], svc.get("role") == "edge"),
            "percent-encode other characters (a space is %20)")
    elif kinds[0] in ("http", "tcp") and rd[kinds[0]]["port"] not in port_names:
        p = rd[kinds[0]]["port"]
        err(base + ("readiness", kinds[0], "port"), f"no port named '{p}'"
            f"{did_you_mean(p, port_names)}", f"ports of {name}: "
            f"{', '.join(sorted(port_names)) or 'none'}")


def routes(cx: Context, name: str, svc: dict) -> None:
    err = cx.err
    port_names = _port_names(svc)
    for r in svc.get("routes") or []:
        rp = ("services", name, "routes", ListKey(r["name"]))
        why = route_path_problem(r.get("path", "/"))
        if why:
            err(rp + ("path",), f"'{r.get('path')}' {why}", "use a plain absolute path "
                "of letters, digits and . _ ~ / % : @ + , = -")
        if r["port"] not in port_names:
            err(rp + ("port",), f"no port named '{r['port']}'"
                f"{did_you_mean(r['port'], port_names)}",
                f"ports of {name}: {', '.join(sorted(port_names)) or 'none'}")
        if r["name"] in cx.route_names:
            err(rp, f"route name '{r['name']}' is also used at "
                f"{format_path(cx.route_names[r['name']])}", "route names are global")
        cx.route_names.setdefault(r["name"], rp)
        hp = (r["host"], r.get("path", "/"))
        if hp in cx.route_hosts:
            err(rp + ("host",), f"host '{r['host']}' path '{hp[1]}' is also routed by "
                f"{format_path(cx.route_hosts[hp])}", "each host+path goes to one service")
        cx.route_hosts.setdefault(hp, rp)


def mount_paths(cx: Context, name: str, svc: dict) -> None:
    base = ("services", name)
    mounts: dict[str, tuple] = {}
    for field_name in ("storage", "files", "secret_files"):
        for item in svc.get(field_name) or []:
            where = base + (field_name, ListKey(item["name"]), "path")
            if item["path"] in mounts:
                cx.err(where, f"mount path {item['path']} is also used by "
                       f"{format_path(mounts[item['path']])}", "give each mount its own path")
            mounts.setdefault(item["path"], where)
    if svc.get("ca_bundle") in mounts:
        cx.err(base + ("ca_bundle",), f"mount path {svc['ca_bundle']} is also used by "
               f"{format_path(mounts[svc['ca_bundle']])}", "give each mount its own path")


def job_serves_no_routes(cx: Context, name: str, svc: dict) -> None:
    if svc.get("workload", "stateless") == "job" and svc.get("routes"):
        cx.err(("services", name, "routes"), "a job cannot serve routes", "remove the routes")


def edge_in_phase_one(cx: Context, name: str, svc: dict) -> None:
    if svc.get("role") == "edge" and svc.get("phase", 1) != 1:
        cx.err(("services", name, "phase"), "the edge must be in phase 1", "set phase: 1")


def dependencies(cx: Context, name: str, svc: dict) -> None:
    services, phase = cx.services, cx.phase
    sphase = svc.get("phase", 1)
    for i, dep in enumerate(svc.get("depends_on") or []):
        dpath = ("services", name, "depends_on", i)
        if dep == name:
            cx.err(dpath, "a service cannot depend on itself", "remove it")
        elif dep not in services:
            cx.err(dpath, f"depends on unknown service '{dep}'"
                   f"{did_you_mean(dep, services)}", "fix the name")
        elif services[dep].get("phase", 1) > phase and sphase <= phase:
            cx.err(dpath, f"depends on '{dep}', which starts in phase "
                   f"{services[dep].get('phase')}, later than the chosen phase {phase}",
                   f"add the dependency in overlays/phases/{services[dep].get('phase')}.yaml")
        elif services[dep].get("phase", 1) > sphase and sphase <= phase:
            pass  # added by a phase overlay at or after the dependency's phase


def _enabled(cx: Context, svc: dict) -> bool:
    """References of a service the chosen phase does not run are not resolved."""
    return svc.get("phase", 1) <= cx.phase


def env_values(cx: Context, name: str, svc: dict) -> None:
    enabled = _enabled(cx, svc)
    for key, value in (svc.get("env") or {}).items():
        epath = ("services", name, "env", key)
        if isinstance(value, dict):
            cx.secret_ref(value, epath)
        elif isinstance(value, str):
            if "\0" in value:
                cx.err(epath, "the value holds a NUL byte, which no environment variable "
                       "can carry", "remove it; deliver binary data as a file (files:)")
            if enabled:
                cx.refs(value, epath)


def secret_files(cx: Context, name: str, svc: dict) -> None:
    for sf in svc.get("secret_files") or []:
        check_secret(sf, cx.secrets, ("services", name, "secret_files", ListKey(sf["name"])),
                     cx.err)


def file_references(cx: Context, name: str, svc: dict) -> None:
    for f in (svc.get("files") or []) if _enabled(cx, svc) else []:
        cx.refs(f["content"], ("services", name, "files", ListKey(f["name"]), "content"))


# --------------------------------------------------------------------------- after the services

def identity(cx: Context) -> None:
    if isinstance(cx.data.get("identity"), dict):
        idp.validate(cx.data["identity"], cx.services, cx.phase, cx.err,
                     # each password and client secret reaches the provider as env
                     cx.secret_ref, cx.refs, cx.route_owner)


def dependency_cycles(cx: Context) -> None:
    for path in _cycles(cx.services):
        cx.err(("services", path[0], "depends_on"), "dependency cycle: " + " -> ".join(path),
               "break the cycle: one of these must not wait for the other")


def _cycles(services: dict) -> list[list[str]]:
    """Every dependency cycle, found by a depth-first search with an explicit stack
    (a chain of thousands of services must not exhaust Python's recursion)."""
    found: list[list[str]] = []
    state: dict[str, int] = {}
    path: list[str] = []

    def deps(n: str) -> list[str]:
        ds = services[n].get("depends_on") or []
        return [d for d in ds if isinstance(d, str) and d in services] \
            if isinstance(ds, list) else []

    for start in sorted(services):
        if start in state:
            continue
        state[start] = 1
        path.append(start)
        todo = [iter(deps(start))]
        while todo:
            d = next(todo[-1], None)
            if d is None:
                todo.pop()
                state[path.pop()] = 2
            elif state.get(d) == 1:
                found.append(path[path.index(d):] + [d])
            elif d not in state:
                state[d] = 1
                path.append(d)
                todo.append(iter(deps(d)))
    return found


# --------------------------------------------------------------------------- the order

#: Run once, before the services.
STACK_RULES: tuple[Callable[[Context], None], ...] = (
    edge_bind_is_loopback, edge_ports_differ, dns_names, secret_names, images, one_edge)
#: Run for each service in turn (all of one service's errors before the next's).
SERVICE_RULES: tuple[Callable[[Context, str, dict], None], ...] = (
    unique_item_names, unique_port_numbers, readiness, routes, mount_paths,
    job_serves_no_routes, edge_in_phase_one, dependencies, env_values, secret_files,
    file_references)
#: Run once, after the services.
FINAL_RULES: tuple[Callable[[Context], None], ...] = (identity, dependency_cycles)


def validate_semantics(tree: Map, phase: int, order: str,
                       root: Path | None = None, plain: dict | None = None) -> list[ParityError]:
    """Every problem the rules find, in rule order, with file:line."""
    data = to_plain(tree) if plain is None else plain
    errors: list[ParityError] = []

    def err(path: tuple, message: str, hint: str) -> None:
        _, loc = locate(tree, path)
        errors.append(InputError(message, where=str(loc), path=format_path(path), hint=hint,
                                 layers=order))

    cx = Context(data, phase, root, err)
    for rule in STACK_RULES:
        rule(cx)
    for name, svc in cx.services.items():
        for service_rule in SERVICE_RULES:
            service_rule(cx, name, svc)
    for rule in FINAL_RULES:
        rule(cx)
    return errors
