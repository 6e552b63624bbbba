"""The typed view the renderers read: one :class:`Stack` of typed services and
secrets per mode and phase, and :class:`Resolved`, everything a load knows.

The classes are frozen dataclasses built once by :mod:`parity.model.build`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from .. import identity as idp
from ..nodes import Map
from . import schema, templates
from .layers import Layer, Selection, describe
from .locate import DEFAULT_LOC, locate, parse_path


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
