"""Loading: layers -> merged tree -> defaults -> validation -> the typed
:class:`~parity.model.types.Stack` of the chosen mode and phase.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

from .. import identity as idp
from ..errors import InputErrors
from ..nodes import to_plain
from .check import validate_schema
from .defaults import apply_defaults, as_written
from .layers import Layer, Selection, describe
from .merge import merged_tree
from .types import (Build, File, Origins, Port, Readiness, Resolved, Route, RuntimeImage,
                    Secret, SecretFile, SecretKey, SecretRef, Service, Stack, Storage)
from .validate import validate_semantics


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
