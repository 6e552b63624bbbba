"""The stack model: defaults, validation (schema and semantic rules, every problem
collected with file:line), and the typed view the renderers read.

``load(root, selection)`` is the entry point: layers -> merged tree -> defaults ->
validation -> :class:`Stack` for the chosen mode and phase.
"""

from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from .. import identity as idp
from . import schema, templates
from ..errors import InputError, InputErrors, ParityError, did_you_mean
from .layers import ENV_VARS, Layer, Selection, describe, environ_subset, load_layer, merged_tree, plan_layers  # noqa
from ..nodes import ListKey, Loc, Map, Node, Scalar, Seq, format_path, to_plain

DEFAULT_LOC = Loc("(default)", 0, "default")


# --------------------------------------------------------------------------- typed view

@dataclass(frozen=True)
class Port:
    name: str
    port: int
    protocol: str = "tcp"


@dataclass(frozen=True)
class SecretRef:
    secret: str
    key: str


@dataclass(frozen=True)
class Readiness:
    kind: str                   # http | tcp | exec | completion
    port: str | None = None     # http/tcp: port name
    path: str | None = None     # http
    command: tuple[str, ...] = ()
    period_seconds: int = 5
    timeout_seconds: int = 3
    failure_threshold: int = 30
    initial_delay_seconds: int = 0
    completion_timeout_seconds: int | None = None


@dataclass(frozen=True)
class Route:
    name: str
    host: str        # label under the stack domain
    path: str
    port: str        # port name on the owning service
    service: str


@dataclass(frozen=True)
class Storage:
    name: str
    path: str
    size: str
    storage_class: str | None = None


@dataclass(frozen=True)
class SecretFile:
    name: str
    secret: str
    key: str
    path: str


@dataclass(frozen=True)
class File:
    name: str
    path: str
    content: str     # templates not yet resolved


@dataclass(frozen=True)
class Build:
    context: str
    dockerfile: str | None = None
    target: str | None = None
    args: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class RuntimeImage:
    """An image the kind lane runs besides the services (``stack.kind.node`` and
    ``stack.kind.edge``), and its build where the profile builds it."""

    name: str        # the model path, e.g. stack.kind.node
    image: str
    build: Build | None = None


@dataclass(frozen=True)
class Service:
    name: str
    phase: int
    workload: str
    role: str
    image: str
    build: Build | None
    command: tuple[str, ...]
    args: tuple[str, ...]
    working_dir: str | None
    user: str | None
    ports: tuple[Port, ...]
    env: tuple[tuple[str, Any], ...]        # value: str | int | bool | SecretRef
    secret_files: tuple[SecretFile, ...]
    files: tuple[File, ...]
    storage: tuple[Storage, ...]
    readiness: Readiness | None
    depends_on: tuple[str, ...]
    routes: tuple[Route, ...]
    replicas: int
    resources: dict
    description: str = ""
    ca_bundle: str | None = None

    def port(self, name: str) -> Port:
        for p in self.ports:
            if p.name == name:
                return p
        raise KeyError(name)


@dataclass(frozen=True)
class SecretKey:
    name: str
    generate: int | None = None
    value: str | None = None


@dataclass(frozen=True)
class Secret:
    name: str
    keys: tuple[SecretKey, ...]
    description: str = ""


class Origins:
    """Locations in the merged tree, looked up by dotted model path."""

    __slots__ = ("tree",)

    def __init__(self, tree: Map):
        self.tree = tree

    def where(self, path_text: str) -> str | None:
        _, loc = locate(self.tree, parse_path(path_text))
        return None if loc is None or loc is DEFAULT_LOC else str(loc)


@dataclass(frozen=True)
class Stack:
    """The model of one mode and phase: only the services enabled in that phase."""

    name: str
    domain: str
    namespace: str
    internal_dns: str
    routing: str
    edge_bind: str
    http_port: int
    https_port: int
    mode: str
    phase: int
    profile: str
    services: dict[str, Service]
    secrets: dict[str, Secret]
    layers: tuple[str, ...] = field(default=())
    #: The kind lane's node image and edge controller image (placement).
    kind_node: RuntimeImage = RuntimeImage("stack.kind.node", schema.KIND_NODE_IMAGE)
    kind_edge: RuntimeImage = RuntimeImage("stack.kind.edge", schema.KIND_EDGE_IMAGE)
    #: The identity contract (realm, clients, users), or None without identity:.
    identity: "idp.Identity | None" = None
    #: Where each model path was set (file:line), for errors found after loading,
    #: e.g. by a renderer. Not part of the model: ignored by ==.
    origins: "Origins | None" = field(default=None, compare=False, repr=False)

    def where(self, path_text: str) -> str | None:
        """``file:line`` of a dotted model path, or None when unknown."""
        return self.origins.where(path_text) if self.origins else None

    @property
    def transport(self) -> templates.Transport:
        return templates.Transport(self.internal_dns, self.namespace, self.domain, self.name,
                                   self.https_port)

    def routes(self) -> dict[str, Route]:
        return {r.name: r for s in self.services.values() for r in s.routes}

    def resolve(self, value: str) -> str:
        """Resolve reference templates in ``value`` for this mode."""
        return templates.resolve(value, *self._ref_maps)

    @cached_property
    def _ref_maps(self) -> tuple[templates.Transport, dict, dict, dict]:
        """What references resolve against, built once per stack (rebuilding it for
        every value made rendering and diffing quadratic in the number of services).
        A Stack is immutable; ``dataclasses.replace`` makes a new one, with no cache."""
        ports = {s.name: {p.name: p.port for p in s.ports} for s in self.services.values()}
        routes = {r.name: (r.host, r.path) for r in self.routes().values()}
        ident = {}
        if self.identity is not None:
            ident = {"issuer": self.identity.issuer_template, "realm": self.identity.realm}
        return self.transport, ports, routes, ident

    def edge(self) -> Service | None:
        for s in self.services.values():
            if s.role == "edge":
                return s
        return None

    def order(self) -> list[list[str]]:
        """Dependency waves: each wave depends only on earlier ones (stable order)."""
        return waves({n: list(s.depends_on) for n, s in self.services.items()})


def waves(deps: dict[str, list[str]]) -> list[list[str]]:
    """Kahn's algorithm by levels, linear in services + edges (a dependency chain of
    N services is N waves; rescanning every remaining service per wave was quadratic).
    Dependencies outside ``deps`` are ignored; a cycle ends the list with every
    service left (validation reports the cycle)."""
    waiting: dict[str, int] = {}
    dependents: dict[str, list[str]] = {n: [] for n in deps}
    for n, ds in deps.items():
        inner = {d for d in ds if d in deps}
        waiting[n] = len(inner)
        for d in inner:
            dependents[d].append(n)
    out: list[list[str]] = []
    wave = sorted(n for n, count in waiting.items() if count == 0)
    placed = 0
    while wave:
        out.append(wave)
        placed += len(wave)
        nxt = []
        for n in wave:
            for m in dependents[n]:
                waiting[m] -= 1
                if waiting[m] == 0:
                    nxt.append(m)
        wave = sorted(nxt)
    if placed < len(deps):  # a cycle; validation reports it, here just stop
        done = {n for w in out for n in w}
        out.append(sorted(n for n in deps if n not in done))
    return out


@dataclass
class Resolved:
    """Everything :func:`load` knows: the merged tree (all phases, with provenance),
    the typed stack of the chosen phase, and the layers applied."""

    tree: Map
    stack: Stack
    layers: list[Layer]
    selection: Selection

    @property
    def layer_order(self) -> str:
        return describe(self.layers)


# --------------------------------------------------------------------------- defaults

def _with_defaults(node: Map, defaults: dict) -> Map:
    entries = dict(node.entries)
    keylocs = dict(node.keylocs)
    for k, v in defaults.items():
        if k not in entries:
            entries[k] = _from_plain(v)
            keylocs[k] = DEFAULT_LOC
        elif isinstance(v, dict) and isinstance(entries[k], Map):
            entries[k] = _with_defaults(entries[k], v)  # type: ignore[arg-type]
    return Map(entries, keylocs, node.hist)


def _from_plain(v: Any) -> Node:
    if isinstance(v, dict):
        return Map({k: _from_plain(x) for k, x in v.items()}, {k: DEFAULT_LOC for k in v},
                   (DEFAULT_LOC,))
    if isinstance(v, list):
        return Seq(tuple(_from_plain(x) for x in v), (DEFAULT_LOC,))
    return Scalar(v, (DEFAULT_LOC,))


def _map_items(node: Node | None, fn) -> Node | None:
    if not isinstance(node, Seq):
        return node
    return Seq(tuple(fn(i) if isinstance(i, Map) else i for i in node.items), node.hist)


def apply_defaults(tree: Map) -> Map:
    entries = dict(tree.entries)
    stack = entries.get("stack")
    if isinstance(stack, Map):
        entries["stack"] = _with_defaults(stack, schema.STACK_DEFAULTS)
    services = entries.get("services")
    if isinstance(services, Map):
        new_services = {}
        for name, svc in services.entries.items():
            if not isinstance(svc, Map):
                new_services[name] = svc
                continue
            s = _with_defaults(svc, schema.SERVICE_DEFAULTS)
            se = dict(s.entries)
            se["ports"] = _map_items(se.get("ports"),
                                     lambda m: _with_defaults(m, schema.PORT_DEFAULTS))
            se["routes"] = _map_items(se.get("routes"),
                                      lambda m: _with_defaults(m, schema.ROUTE_DEFAULTS))
            se["storage"] = _map_items(se.get("storage"),
                                       lambda m: _with_defaults(m, schema.STORAGE_DEFAULTS))
            if isinstance(se.get("readiness"), Map):
                se["readiness"] = _with_defaults(se["readiness"],  # type: ignore[arg-type]
                                                 schema.READINESS_DEFAULTS)
            se = {k: v for k, v in se.items() if v is not None}
            new_services[name] = Map(se, s.keylocs, s.hist)
        entries["services"] = Map(new_services, services.keylocs, services.hist)
    identity = entries.get("identity")
    if isinstance(identity, Map):
        ident = _with_defaults(identity, schema.IDENTITY_DEFAULTS)
        ie = dict(ident.entries)
        for part, defaults in (("clients", schema.IDENTITY_CLIENT_DEFAULTS),
                               ("users", schema.IDENTITY_USER_DEFAULTS)):
            group = ie.get(part)
            if isinstance(group, Map):
                ie[part] = Map({k: _with_defaults(v, defaults) if isinstance(v, Map) else v
                                for k, v in group.entries.items()}, group.keylocs, group.hist)
        entries["identity"] = Map(ie, ident.keylocs, ident.hist)
    return Map(entries, tree.keylocs, tree.hist)


# --------------------------------------------------------------------------- as written

def as_written(node: Node, sch: dict | None = None) -> Node:
    """Where the schema takes a string, a number keeps the text it was written in
    (``0755`` stays ``0755``, ``1.10`` stays ``1.10``; an env value, an arg, a build
    arg), and so does a boolean where no boolean is allowed. YAML would otherwise
    have turned it into a number and back into different text."""
    if sch is None:
        sch = schema.STACK
    if isinstance(node, Scalar):
        if node.text is None or node.value is None:
            return node
        types = schema.allowed_types(sch)
        if "string" not in types or (isinstance(node.value, bool) and "boolean" in types):
            return node
        return Scalar(node.text, node.hist, node.op)
    branches = schema.child_schemas(sch)
    if isinstance(node, Map):
        changed = {}
        for key, child in node.entries.items():
            sub = None
            for b in branches:
                if b.get("type") != "object" and "properties" not in b:
                    continue
                props = b.get("properties", {})
                extra = b.get("additionalProperties")
                sub = props.get(key) if key in props else (
                    extra if isinstance(extra, dict) else None)
                if sub is not None:
                    break
            if sub is not None:
                new = as_written(child, sub)
                if new is not child:
                    changed[key] = new
        if not changed:
            return node
        return Map({**node.entries, **changed}, node.keylocs, node.hist, node.op)
    if isinstance(node, Seq):
        items = next((b["items"] for b in branches if isinstance(b.get("items"), dict)), None)
        if items is None:
            return node
        new_items = tuple(as_written(i, items) for i in node.items)
        if all(a is b for a, b in zip(new_items, node.items)):
            return node
        return Seq(new_items, node.hist, node.op)
    return node


# --------------------------------------------------------------------------- locating

def locate(tree: Map, path: tuple) -> tuple[Node | None, Loc]:
    """The node at ``path`` (keys, list indexes or ListKey names) and the best
    location to report: the node's own, or its nearest existing parent's key."""
    node: Node | None = tree
    loc = tree.loc
    for part in path:
        if isinstance(node, Map) and isinstance(part, str) and not isinstance(part, ListKey):
            if part not in node.entries:
                return None, loc
            loc = node.keylocs.get(part, loc)
            node = node.entries[part]
        elif isinstance(node, Seq):
            if isinstance(part, int) and 0 <= part < len(node.items):
                node = node.items[part]
            else:
                match = [i for i in node.items if isinstance(i, Map) and isinstance(
                    i.entries.get("name"), Scalar) and str(i.entries["name"].value) == part]
                if not match and isinstance(part, ListKey):
                    # a list of scalars (depends_on) names its items by their value
                    match = [i for i in node.items
                             if isinstance(i, Scalar) and str(i.value) == part]
                if not match:
                    return None, loc
                node = match[0]
            loc = node.loc
        else:
            return None, loc
    if node is not None and isinstance(node, Scalar):
        loc = node.loc
    return node, loc


def _display_path(tree: Map, parts: list) -> tuple:
    """jsonschema paths use list indexes; show list items by name when they have one."""
    out: list = []
    node: Node | None = tree
    for p in parts:
        if isinstance(node, Seq) and isinstance(p, int) and p < len(node.items):
            item = node.items[p]
            name = item.entries.get("name") if isinstance(item, Map) else None
            out.append(ListKey(str(name.value)) if isinstance(name, Scalar) else p)
            node = item
        else:
            out.append(p)
            node = node.entries.get(p) if isinstance(node, Map) else None
    return tuple(out)


# --------------------------------------------------------------------------- schema

_validator = None


def _schema_validator():
    global _validator
    if _validator is None:
        from jsonschema import Draft202012Validator

        _validator = Draft202012Validator(schema.STACK)
    return _validator


def _schema_message(err) -> tuple[str, str, list]:
    """(message, hint, extra path) for one jsonschema error, in parity's words."""
    v = err.validator
    inst = err.instance
    if v == "additionalProperties":
        allowed = list(err.schema.get("properties", {}))
        extra = sorted(set(inst) - set(allowed))
        key = extra[0]
        return (f"unknown key '{key}'{did_you_mean(key, allowed)}",
                f"allowed keys here: {', '.join(allowed)}", [key])
    if v == "required":
        missing = err.message.split("'")[1]
        return f"missing required key '{missing}'", "add it", []
    if v == "enum":
        opts = ", ".join(str(o) for o in err.validator_value)
        return (f"'{inst}' is not one of: {opts}{did_you_mean(inst, err.validator_value)}",
                "use one of the listed values", [])
    if v == "type":
        want = err.validator_value
        want = " or ".join(want) if isinstance(want, list) else want
        got = {dict: "a mapping", list: "a list", str: "a string", bool: "a boolean",
               int: "an integer", float: "a number", type(None): "empty (null)"}.get(
            type(inst), type(inst).__name__)
        return f"expected {want}, got {got}", "fix the value's type", []
    if v == "pattern":
        if err.validator_value == schema.DNS_LABEL:
            return (f"'{inst}' is not a DNS-1035 label (lowercase letters, digits and '-', "
                    "starting with a letter, ending with a letter or digit, at most 63 "
                    "characters)",
                    "rename it, e.g. 'my-service'", [])
        if err.validator_value == schema.SECRET_KEY:
            return (f"'{inst}' is not a valid secret key (letters, digits, '-', '_' and '.', "
                    "at most 253 characters, not '.' and not starting with '..'): it names "
                    "a file under .parity/secrets/<secret>/ and a key of a Kubernetes Secret",
                    "rename the key, e.g. 'password'", [])
        if err.validator_value == schema.PORT_NAME:
            return (f"'{inst}' is not a valid port name (at most 15 lowercase letters, digits "
                    "and single '-', with at least one letter)",
                    "use a short lowercase name such as 'http'", [])
        return f"'{inst}' does not match {err.validator_value}", "fix the value", []
    if v == "propertyNames":
        return (f"'{inst}' is not a valid name here", "use a DNS-1035 label (services, "
                "secrets) or an identifier (env keys)", [])
    if v == "anyOf":
        return ("expected a string, number, boolean or {secret: NAME, key: KEY}",
                "quote the value, or give a secret reference", [])
    if v in ("minimum", "maximum"):
        return f"{inst} is out of range ({err.message.split(' is ', 1)[1]})", "fix it", []
    if v in ("minProperties", "maxProperties") and isinstance(inst, dict):
        keys = ", ".join(map(str, inst)) or "none"
        if v == "maxProperties":
            return (f"give at most {err.validator_value} of these keys (found {keys})",
                    "keep one", [])
        return (f"give at least {err.validator_value} key (found {keys})",
                "add one (a secret key takes generate: N or value: TEXT)", [])
    if list(err.absolute_path)[:1] == ["secrets"]:
        # jsonschema's own messages quote the instance, which may hold a secret value
        return f"the value does not satisfy '{v}'", "fix the value", []
    return err.message, "fix the value", []


_fast_check = None


def validate_schema(tree: Map, order: str, plain: dict | None = None) -> list[ParityError]:
    """Schema errors of the merged tree, with file:line. A compiled check
    (schema.compile_check) clears a valid model without jsonschema, which is
    imported and run only to find and word the errors of an invalid one."""
    global _fast_check
    if plain is None:
        plain = to_plain(tree)
    if _fast_check is None:
        _fast_check = schema.compile_check(schema.STACK)
    if _fast_check(plain):
        return []
    errors: list[ParityError] = []
    for err in sorted(_schema_validator().iter_errors(plain), key=lambda e: list(
            map(str, e.absolute_path))):
        if "propertyNames" in err.relative_schema_path:
            # jsonschema reports a bad key at its parent; point at the key itself
            path = list(err.absolute_path) + [err.instance]
        else:
            path = list(err.absolute_path)
        message, hint, extra = _schema_message(err)
        full = _display_path(tree, path + extra)
        _, loc = locate(tree, full)
        errors.append(InputError(message, where=str(loc), path=format_path(full), hint=hint,
                                 layers=order))
    return errors


# --------------------------------------------------------------------------- semantics

_IP = re.compile(r"^\d{1,3}(\.\d{1,3}){3}$")


def validate_semantics(tree: Map, phase: int, order: str,
                       root: Path | None = None, plain: dict | None = None) -> list[ParityError]:
    """Rules a schema cannot state: references, cycles, phases, uniqueness; with
    ``root``, that every build context and Dockerfile is inside the repository."""
    data = to_plain(tree) if plain is None else plain
    services: dict[str, dict] = data.get("services", {})
    secrets: dict[str, dict] = data.get("secrets", {}) or {}
    errors: list[ParityError] = []

    def err(path: tuple, message: str, hint: str) -> None:
        _, loc = locate(tree, path)
        errors.append(InputError(message, where=str(loc), path=format_path(path), hint=hint,
                                 layers=order))

    edge_bind = data.get("stack", {}).get("edge", {}).get("bind", "127.0.0.1")
    if edge_bind not in ("127.0.0.1", "::1"):
        err(("stack", "edge", "bind"), f"'{edge_bind}' is not a loopback address",
            "parity binds host ports to 127.0.0.1 only; remove the override")

    edge = data.get("stack", {}).get("edge", {})
    http_port, https_port = edge.get("http_port", 80), edge.get("https_port", 443)
    if http_port == https_port:
        err(("stack", "edge", "https_port"), f"http and https would both use host port "
            f"{https_port}", "give them different ports, e.g. PARITY_HTTP_PORT=8080 "
            "PARITY_HTTPS_PORT=8443")
    elif https_port == 80:
        # the edge serves plain http on 80 inside the network/cluster in both modes,
        # and answers on the browser's https port there too
        err(("stack", "edge", "https_port"), "https cannot use port 80: the edge serves "
            "plain http on 80 inside the stack", "pick another port, e.g. "
            "PARITY_HTTPS_PORT=8443")

    _check_dns(data.get("stack") or {}, services, err)
    _check_secret_names(secrets, err)
    _check_images(data, err, root)

    route_names: dict[str, tuple] = {}
    route_hosts: dict[tuple[str, str], tuple] = {}
    edges = [n for n, s in services.items() if s.get("role") == "edge"]
    if len(edges) != 1:
        err(("services",), f"expected exactly one service with role: edge, found "
            f"{len(edges)}{' (' + ', '.join(edges) + ')' if edges else ''}",
            "mark the ingress/edge service with 'role: edge'")
    route_owner = _route_owners(services)  # once: per reference it was quadratic
    for name, svc in services.items():
        base = ("services", name)
        sphase = svc.get("phase", 1)
        # unique names in keyed lists
        for listname in ("ports", "routes", "storage", "secret_files", "files"):
            seen: dict[str, int] = {}
            for i, item in enumerate(svc.get(listname) or []):
                n = item.get("name")
                if n in seen:
                    err(base + (listname, i), f"duplicate {listname[:-1] if listname != 'storage' else 'storage'} name '{n}' (also item {seen[n] + 1})",
                        "give each item its own name")
                seen.setdefault(n, i)
        port_names = {p["name"] for p in svc.get("ports") or []}
        numbers: dict[int, str] = {}
        for p in svc.get("ports") or []:
            if p["port"] in numbers and numbers[p["port"]] != p["name"]:
                err(base + ("ports", ListKey(p["name"]), "port"),
                    f"port {p['port']} is also used by '{numbers[p['port']]}'",
                    "each named port needs its own number")
            numbers.setdefault(p["port"], p["name"])
        # readiness
        rd = svc.get("readiness")
        workload = svc.get("workload", "stateless")
        if rd is None:
            err(base, "no readiness definition", "add readiness: http, tcp or exec "
                "(completion for jobs): parity waits on it in both modes")
        else:
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
        # routes
        for r in svc.get("routes") or []:
            rp = base + ("routes", ListKey(r["name"]))
            why = route_path_problem(r.get("path", "/"))
            if why:
                err(rp + ("path",), f"'{r.get('path')}' {why}", "use a plain absolute path "
                    "of letters, digits and . _ ~ / % : @ + , = -")
            if r["port"] not in port_names:
                err(rp + ("port",), f"no port named '{r['port']}'"
                    f"{did_you_mean(r['port'], port_names)}",
                    f"ports of {name}: {', '.join(sorted(port_names)) or 'none'}")
            if r["name"] in route_names:
                err(rp, f"route name '{r['name']}' is also used at "
                    f"{format_path(route_names[r['name']])}", "route names are global")
            route_names.setdefault(r["name"], rp)
            hp = (r["host"], r.get("path", "/"))
            if hp in route_hosts:
                err(rp + ("host",), f"host '{r['host']}' path '{hp[1]}' is also routed by "
                    f"{format_path(route_hosts[hp])}", "each host+path goes to one service")
            route_hosts.setdefault(hp, rp)
        mounts: dict[str, tuple] = {}
        for field_name in ("storage", "files", "secret_files"):
            for item in svc.get(field_name) or []:
                where = base + (field_name, ListKey(item["name"]), "path")
                if item["path"] in mounts:
                    err(where, f"mount path {item['path']} is also used by "
                        f"{format_path(mounts[item['path']])}", "give each mount its own path")
                mounts.setdefault(item["path"], where)
        if svc.get("ca_bundle") in mounts:
            err(base + ("ca_bundle",), f"mount path {svc['ca_bundle']} is also used by "
                f"{format_path(mounts[svc['ca_bundle']])}", "give each mount its own path")
        if workload == "job" and svc.get("routes"):
            err(base + ("routes",), "a job cannot serve routes", "remove the routes")
        if svc.get("role") == "edge" and sphase != 1:
            err(base + ("phase",), "the edge must be in phase 1", "set phase: 1")
        # dependencies
        for i, dep in enumerate(svc.get("depends_on") or []):
            dpath = base + ("depends_on", i)
            if dep == name:
                err(dpath, "a service cannot depend on itself", "remove it")
            elif dep not in services:
                err(dpath, f"depends on unknown service '{dep}'"
                    f"{did_you_mean(dep, services)}", "fix the name")
            elif services[dep].get("phase", 1) > phase and sphase <= phase:
                err(dpath, f"depends on '{dep}', which starts in phase "
                    f"{services[dep].get('phase')}, later than the chosen phase {phase}",
                    f"add the dependency in overlays/phases/{services[dep].get('phase')}.yaml")
            elif services[dep].get("phase", 1) > sphase and sphase <= phase:
                pass  # added by a phase overlay at or after the dependency's phase
        # secrets
        enabled = sphase <= phase  # references of a disabled service are not resolved
        for key, value in (svc.get("env") or {}).items():
            epath = base + ("env", key)
            if isinstance(value, dict):
                _check_secret(value, secrets, epath, err)
                _check_env_secret(value, secrets, epath, err)
            elif isinstance(value, str):
                if "\0" in value:
                    err(epath, "the value holds a NUL byte, which no environment variable "
                        "can carry", "remove it; deliver binary data as a file (files:)")
                if enabled:
                    _check_refs(value, epath, services, phase, err, route_owner,
                                data.get("identity"))
        for i, sf in enumerate(svc.get("secret_files") or []):
            _check_secret(sf, secrets, base + ("secret_files", ListKey(sf["name"])), err)
        for f in (svc.get("files") or []) if enabled else []:
            _check_refs(f["content"], base + ("files", ListKey(f["name"]), "content"),
                        services, phase, err, route_owner, data.get("identity"))
    if isinstance(data.get("identity"), dict):
        idp.validate(data["identity"], services, phase, err,
                     # each password and client secret reaches the provider as env
                     lambda ref, path: (_check_secret(ref, secrets, path, err),
                                        _check_env_secret(ref, secrets, path, err)),
                     lambda value, path: _check_refs(value, path, services, phase, err,
                                                     route_owner, data.get("identity")),
                     route_owner)
    for path in _cycles(services):
        err(("services", path[0], "depends_on"), "dependency cycle: " + " -> ".join(path),
            "break the cycle: one of these must not wait for the other")
    return errors


# A route path is written unquoted into nginx.conf (compose) and into HTTPRoute and
# Ingress paths (kind): the RFC 3986 path characters neither treats specially.
_ROUTE_PATH = re.compile(r"/[A-Za-z0-9._~/%:@+,=-]*")


def route_path_problem(path: str) -> str | None:
    """Why a route path cannot be routed the same way in both lanes, or None."""
    if not _ROUTE_PATH.fullmatch(path):
        return ("has characters nginx.conf would need quoted (only letters, digits and "
                ". _ ~ / % : @ + , = - may follow the leading '/')")
    if any(s in path for s in ("//", "/./", "/../", "%2f", "%2F")) or \
            path.endswith(("/..", "/.")):
        return "is not a path Gateway API and Ingress accept ('//', '.' or '..' segments, %2f)"
    return None


# A readiness path goes into a single-quoted shell word and an HTTP request line
# (the compose healthcheck) and an httpGet probe (kind): RFC 3986 path and query
# characters but the single quote. The edge's also goes into nginx.conf.
_PROBE_PATH = re.compile(r"/[A-Za-z0-9._~%!$&()*+,;=:@/?-]*")


def readiness_path_problem(path: str, edge: bool = False) -> str | None:
    if edge:
        return route_path_problem(path)
    if not _PROBE_PATH.fullmatch(path):
        return ("is not a URL path the probes can send as is (RFC 3986 path and query "
                "characters, no quote, space or control character)")
    return None


def _check_dns(st: dict, services: dict, err) -> None:
    """The stack's domain and every name ``internal_dns`` gives must be DNS names:
    they are written into nginx.conf, Compose network aliases, Kubernetes objects and
    URLs unquoted. The pattern is substituted, never interpreted."""
    domain = st.get("domain")
    if isinstance(domain, str):
        why = templates.dns_name_problem(domain)
        if why:
            err(("stack", "domain"), f"'{domain}' is not a DNS name: {why}",
                "use a name such as parity.localhost")
    pattern = st.get("internal_dns")
    if not isinstance(pattern, str):
        return
    hint = ("write a DNS name with the placeholders {service} and {namespace}, e.g. "
            "{service} or {service}.{namespace}.svc.cluster.local")
    why = templates.dns_pattern_problem(pattern)
    if why is None:
        namespace = str(st.get("namespace") or "parity")
        # a short probe first (what the pattern itself adds), then the real names
        for name in ["svc", *sorted(services, key=lambda n: (-len(n), n))]:
            host = templates.expand_dns(pattern, name, namespace)
            problem = templates.dns_name_problem(host)
            if problem:
                why = f"for a service '{name}' it gives '{host}', and {problem}"
                break
    if why:
        err(("stack", "internal_dns"), f"'{pattern}' is not a pattern of DNS names: {why}",
            hint)


# The Docker reference grammar (github.com/distribution/reference, regexp.go):
# [domain[:port]/]path[:tag][@digest], path components lowercase.
_ALNUM = r"[a-z0-9]+"
_SEPARATOR = r"(?:[._]|__|[-]+)"
_PATH_COMPONENT = rf"{_ALNUM}(?:{_SEPARATOR}{_ALNUM})*"
_DOMAIN_COMPONENT = r"(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])"
_HOST = rf"(?:{_DOMAIN_COMPONENT}(?:\.{_DOMAIN_COMPONENT})*|\[[a-fA-F0-9:]+\])"
_IMAGE_REF = re.compile(
    rf"(?P<name>(?:{_HOST}(?::[0-9]+)?/)?{_PATH_COMPONENT}(?:/{_PATH_COMPONENT})*)"
    r"(?::(?P<tag>[A-Za-z0-9_][A-Za-z0-9_.-]{0,127}))?"
    r"(?:@(?P<algorithm>[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*):"
    r"(?P<hex>[0-9a-fA-F]{32,}))?")
#: go-digest's registered algorithms and the length of their (lowercase) hex.
_DIGEST_HEX = {"sha256": 64, "sha384": 96, "sha512": 128}
MAX_IMAGE_NAME = 255


def image_ref_problem(ref: str) -> str | None:
    """Why ``ref`` is not a Docker image reference, or None."""
    m = _IMAGE_REF.fullmatch(ref)
    if not m:
        return ("it is not NAME[:TAG][@DIGEST] (NAME: lowercase path components of "
                "letters, digits and . _ -, separated by '/', optionally after a "
                "registry host[:port]/; TAG: up to 128 letters, digits, _ . -)")
    if len(m.group("name")) > MAX_IMAGE_NAME:
        return f"its name is longer than {MAX_IMAGE_NAME} characters"
    if m.group("algorithm"):
        algorithm, hexpart = m.group("algorithm"), m.group("hex")
        if algorithm not in _DIGEST_HEX:
            return (f"digest algorithm '{algorithm}' is not one of "
                    f"{', '.join(_DIGEST_HEX)}")
        if len(hexpart) != _DIGEST_HEX[algorithm]:
            return (f"a {algorithm} digest has {_DIGEST_HEX[algorithm]} hex digits, "
                    f"this one {len(hexpart)}")
        if hexpart != hexpart.lower():
            return f"a {algorithm} digest is written in lowercase hex"
    if re.fullmatch(r"[a-f0-9]{64}", m.group("name")):
        return "a 64-digit hex name is an image ID, which Docker refuses as a name"
    return None


def _check_images(data: dict, err, root: Path | None) -> None:
    """Image references (services and the kind lane's node and edge) against the
    Docker grammar; build contexts and Dockerfiles inside the repository."""
    images: list[tuple[tuple, dict]] = [
        (("services", n), s) for n, s in (data.get("services") or {}).items()]
    kind = (data.get("stack") or {}).get("kind") or {}
    images += [(("stack", "kind", part), kind[part]) for part in ("node", "edge")
               if isinstance(kind.get(part), dict)]
    repo = root.resolve() if root is not None else None
    for base, spec in images:
        image = spec.get("image")
        if isinstance(image, str):
            why = image_ref_problem(image)
            if why:
                err(base + ("image",), f"'{image}' is not an image reference: {why}",
                    "write e.g. postgres:16.4-bookworm or "
                    "registry.example:5000/team/app:1.2@sha256:<64 hex digits>")
        b = spec.get("build")
        if repo is None or not isinstance(b, dict) or not isinstance(b.get("context"), str):
            continue
        context = _inside(repo, repo, b["context"])
        if context is None:
            err(base + ("build", "context"), f"build context '{b['context']}' is outside "
                "the repository (after following symlinks): a fresh clone cannot build "
                "it, and the build could read anything there",
                "use a directory under the repository root (apps/, overlays/images/); "
                "paths are relative to the root")
        elif isinstance(b.get("dockerfile"), str) and \
                _inside(repo, context, b["dockerfile"]) is None:
            err(base + ("build", "dockerfile"), f"Dockerfile '{b['dockerfile']}' is "
                "outside the repository (after following symlinks)",
                "keep the Dockerfile in the repository; build.dockerfile is relative "
                "to build.context")


def _inside(repo: Path, base: Path, rel: str) -> Path | None:
    """``base / rel`` with symlinks resolved, or None when that leaves ``repo``."""
    if "\0" in rel:
        return None
    try:
        resolved = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable path
        return None
    return resolved if resolved.is_relative_to(repo) else None


def _check_env_secret(ref: dict, secrets: dict, path: tuple, err) -> None:
    """A declared secret value delivered as env must fit compose's raw env file
    (one line) as the kind lane's Secret delivers it. Names the secret and key,
    never the value."""
    from ..secrets import env_unsafe

    spec = ((secrets.get(ref.get("secret")) or {}).get("keys") or {}).get(ref.get("key"))
    declared = spec.get("value") if isinstance(spec, dict) else None
    why = env_unsafe(declared) if isinstance(declared, str) else None
    if why:
        err(path + ("secret",), f"the declared value of secret {ref['secret']}/"
            f"{ref['key']} holds {why}, which an environment variable cannot carry "
            "unchanged in both modes "
            "(compose's env file is one line per variable)",
            f"deliver it as a file instead (secret_files: with secret: {ref['secret']}, "
            f"key: {ref['key']}), or declare a value without line breaks")


def _check_secret_names(secrets: dict, err) -> None:
    """Secret names share .parity/secrets/ with the env files parity writes there."""
    for name, spec in secrets.items():
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


def _check_secret(ref: dict, secrets: dict, path: tuple, err) -> None:
    name, key = ref.get("secret"), ref.get("key")
    if name not in secrets:
        err(path + ("secret",), f"unknown secret '{name}'{did_you_mean(name, secrets)}",
            "declare it under secrets: in base/secrets.yaml")
    elif key not in (secrets[name].get("keys") or {}):
        keys = secrets[name].get("keys") or {}
        err(path + ("key",), f"secret '{name}' has no key '{key}'{did_you_mean(key, keys)}",
            f"keys of {name}: {', '.join(sorted(keys))}")


def _route_owners(services: dict) -> dict[str, str]:
    """route name -> the service that declares it (duplicates are reported elsewhere)."""
    owners: dict[str, str] = {}
    for n, s in services.items():
        for r in s.get("routes") or []:
            owners[r["name"]] = n
    return owners


def _check_refs(value: str, path: tuple, services: dict, phase: int, err,
                routes: dict[str, str] | None = None, identity: dict | None = None) -> None:
    try:
        refs = templates.parse(value)
    except templates.TemplateError as exc:
        err(path, str(exc), "see docs/overlays.md#reference-templates")
        return
    if routes is None:
        routes = _route_owners(services)
    for ref in refs:
        if ref.kind == "stack":
            if ref.target not in templates.STACK_FIELDS:
                err(path, f"unknown stack field in {ref.text}"
                    f"{did_you_mean(ref.target, templates.STACK_FIELDS)}",
                    f"use one of {', '.join(templates.STACK_FIELDS)}")
            continue
        if ref.kind == "identity":
            if not isinstance(identity, dict):
                err(path, f"{ref.text} but the model has no identity:", "declare the "
                    "realm under identity: (base/identity.yaml)")
            elif ref.target not in idp.FIELDS:
                err(path, f"unknown identity field in {ref.text}"
                    f"{did_you_mean(ref.target, idp.FIELDS)}",
                    f"use one of {', '.join(idp.FIELDS)}")
            continue
        if ref.kind == "route":
            if ref.target not in routes:
                err(path, f"unknown route '{ref.target}' in {ref.text}"
                    f"{did_you_mean(ref.target, routes)}", "routes are declared under a "
                    "service's routes:")
                continue
            owner = routes[ref.target]
        else:
            owner = ref.target
            if owner not in services:
                err(path, f"unknown service '{owner}' in {ref.text}"
                    f"{did_you_mean(owner, services)}", "fix the service name")
                continue
            if ref.port is not None:
                ports = {p["name"] for p in services[owner].get("ports") or []}
                if ref.port not in ports:
                    err(path, f"service '{owner}' has no port '{ref.port}' in {ref.text}"
                        f"{did_you_mean(ref.port, ports)}",
                        f"ports of {owner}: {', '.join(sorted(ports)) or 'none'}")
                    continue
        if services[owner].get("phase", 1) > phase:
            err(path, f"{ref.text} refers to '{owner}', which starts in phase "
                f"{services[owner].get('phase')}, later than the chosen phase {phase}",
                f"set this value in overlays/phases/{services[owner].get('phase')}.yaml")


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


# --------------------------------------------------------------------------- build

def _build(b: dict | None) -> Build | None:
    if not b:
        return None
    return Build(b["context"], b.get("dockerfile"), b.get("target"),
                 tuple(sorted((b.get("args") or {}).items())))


def _build_stack(data: dict, sel: Selection, layers: list[Layer]) -> Stack:
    st = data["stack"]
    secrets = {
        n: Secret(n, tuple(SecretKey(k, v.get("generate"), v.get("value"))
                           for k, v in s["keys"].items()), s.get("description", ""))
        for n, s in (data.get("secrets") or {}).items()
    }
    services: dict[str, Service] = {}
    for name in sorted(data["services"]):
        s = data["services"][name]
        if s["phase"] > sel.phase:
            continue
        rd = s.get("readiness")
        readiness = None
        if rd:
            kind = next(k for k in ("http", "tcp", "exec", "completion") if k in rd)
            body = rd[kind]
            readiness = Readiness(
                kind, body.get("port"), body.get("path"), tuple(body.get("command", ())),
                rd["period_seconds"], rd["timeout_seconds"], rd["failure_threshold"],
                rd["initial_delay_seconds"], body.get("timeout_seconds", 600)
                if kind == "completion" else None)
        b = s.get("build")
        env = []
        for k, v in (s.get("env") or {}).items():
            env.append((k, SecretRef(v["secret"], v["key"]) if isinstance(v, dict) else v))
        services[name] = Service(
            name=name, phase=s["phase"], workload=s["workload"], role=s["role"],
            image=s["image"],
            build=_build(b),
            command=tuple(s.get("command") or ()), args=tuple(s.get("args") or ()),
            working_dir=s.get("working_dir"), user=s.get("user"),
            ports=tuple(Port(p["name"], p["port"], p["protocol"]) for p in s.get("ports") or []),
            env=tuple(env),
            secret_files=tuple(SecretFile(f["name"], f["secret"], f["key"], f["path"])
                               for f in s.get("secret_files") or []),
            files=tuple(File(f["name"], f["path"], f["content"]) for f in s.get("files") or []),
            storage=tuple(Storage(v["name"], v["path"], v["size"], v.get("storage_class"))
                          for v in s.get("storage") or []),
            readiness=readiness,
            depends_on=tuple(s.get("depends_on") or ()),
            routes=tuple(Route(r["name"], r["host"], r["path"], r["port"], name)
                         for r in s.get("routes") or []),
            replicas=s["replicas"], resources=s.get("resources") or {},
            description=s.get("description", ""), ca_bundle=s.get("ca_bundle"),
        )
    identity = idp.build(data.get("identity"), SecretRef)
    if identity is not None and identity.provider in services:
        svc = services[identity.provider]
        services[identity.provider] = dataclasses.replace(
            svc, env=svc.env + tuple(identity.env()),
            files=svc.files + (File(idp.FILE_NAME, identity.realm_file,
                                    identity.realm_json()),))
    edge = st["edge"]
    return Stack(
        name=st["name"], domain=st["domain"], namespace=st["namespace"],
        internal_dns=st["internal_dns"], routing=st["routing"], edge_bind=edge["bind"],
        http_port=edge["http_port"], https_port=edge["https_port"], mode=sel.mode,
        phase=sel.phase, profile=sel.effective_profile(), services=services, secrets=secrets,
        layers=tuple(describe(layers).split(" -> ")),
        kind_node=RuntimeImage("stack.kind.node", st["kind"]["node"]["image"],
                               _build(st["kind"]["node"].get("build"))),
        kind_edge=RuntimeImage("stack.kind.edge", st["kind"]["edge"]["image"],
                               _build(st["kind"]["edge"].get("build"))),
        identity=identity,
    )


def load(root: Path, sel: Selection) -> Resolved:
    """Layers -> merged tree -> defaults -> validation -> typed stack."""
    tree, layers = merged_tree(root, sel)
    tree = as_written(apply_defaults(tree))
    order = describe(layers)
    plain = to_plain(tree)  # read, never changed, by the three below
    errors = validate_schema(tree, order, plain)
    if not errors:
        errors = validate_semantics(tree, sel.phase, order, root, plain)
    if errors:
        raise InputErrors(errors)
    stack = dataclasses.replace(_build_stack(plain, sel, layers),
                                origins=Origins(tree))
    return Resolved(tree, stack, layers, sel)


# --------------------------------------------------------------------------- views

MASK = "********"


def enabled_tree(resolved: Resolved) -> Map:
    """The merged tree restricted to the services enabled in the chosen phase."""
    tree = resolved.tree
    services = tree.entries["services"]
    assert isinstance(services, Map)
    keep = {n: v for n, v in services.entries.items() if n in resolved.stack.services}
    entries = dict(tree.entries)
    entries["services"] = Map(keep, {k: services.keylocs[k] for k in keep}, services.hist)
    return Map(entries, tree.keylocs, tree.hist)


def masked_plain(resolved: Resolved) -> dict:
    """The merged model as plain data with every secret value masked."""
    return mask_secret_values(to_plain(enabled_tree(resolved)))


def parse_path(text: str) -> tuple:
    """``services.api.ports[http].port`` -> ('services', 'api', 'ports', ListKey('http'),
    'port')."""
    out: list = []
    for m in re.finditer(r'([^.\[\]]+)|\[("(?:[^"\\]|\\.)*")\]|\[([^\]]+)\]', text):
        if m.group(1) is not None:
            out.append(m.group(1))
        elif m.group(2) is not None:  # ["a.b"]: a mapping key with a dot (format_path)
            import json

            out.append(json.loads(m.group(2)))
        else:
            g = m.group(3)
            out.append(int(g) if g.isdigit() else ListKey(g))
    return tuple(out)


def is_secret_path(path: tuple) -> bool:
    return len(path) >= 5 and path[0] == "secrets" and path[2] == "keys" and path[4] == "value"


def mask_secret_values(value: Any, path: tuple = ()) -> Any:
    """``value`` (plain data found at model ``path``) with every secret value in it
    masked, however short and however deep: ``secrets``, one secret, its keys,
    one key or the value itself."""
    if is_secret_path(path):
        return MASK
    if isinstance(value, dict):
        return {k: mask_secret_values(v, path + (k,)) for k, v in value.items()}
    if isinstance(value, list):
        return [mask_secret_values(v, path + (i,)) for i, v in enumerate(value)]
    return value


def _identity_source(resolved: Resolved, path: tuple) -> str | None:
    """The identity: path a value parity adds to the provider service comes from."""
    ident = resolved.stack.identity
    if ident is None or len(path) < 4 or path[:2] != ("services", ident.provider):
        return None
    if path[2] == "env":
        for u in ident.users:
            if idp.user_env(u.username) == path[3]:
                return f"identity.users.{u.username}.password"
        for c in ident.clients:
            if c.secret is not None and idp.client_env(c.client_id) == path[3]:
                return f"identity.clients.{c.client_id}.secret"
    if path[2] == "files" and path[3] == ListKey(idp.FILE_NAME):
        return "identity"
    return None


def explain(resolved: Resolved, path_text: str) -> dict:
    """The value at a path and the chain of layers that set it."""
    path = parse_path(path_text)
    node, _ = locate(resolved.tree, path)
    if node is None:
        source = _identity_source(resolved, path)
        if source is not None:
            # what parity adds to the provider from identity: (env, the realm file)
            return explain(resolved, source) | {"path": format_path(path),
                                                 "rendered_from": source}
        # report at the first part of the path that does not exist
        depth = 0
        parent: Node | None = resolved.tree
        while depth < len(path):
            child, _ = locate(resolved.tree, path[:depth + 1])
            if child is None:
                break
            parent, depth = child, depth + 1
        names: list[str] = []
        if isinstance(parent, Map):
            names = list(parent.entries)
        elif isinstance(parent, Seq):
            names = [str(i.entries["name"].value) for i in parent.items
                     if isinstance(i, Map) and isinstance(i.entries.get("name"), Scalar)]
        missing = str(path[depth]) if depth < len(path) else ""
        where = format_path(path[:depth]) or "the top level"
        raise InputError(f"no '{missing}' under {where}{did_you_mean(missing, names)}",
                         path=path_text, hint=f"keys under {where}: {', '.join(names) or 'none'}"
                         if names else "see inv config for what exists")
    value = mask_secret_values(to_plain(node), path)
    chain = [{"layer": loc.layer, "location": str(loc)} for loc in node.hist]
    return {"path": format_path(path), "value": value, "chain": chain,
            "layer_order": resolved.layer_order}
