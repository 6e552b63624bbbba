"""References from one part of the model to another: secret references
(``{secret: NAME, key: KEY}``) and reference templates (``${service:NAME.PORT}``,
``${route:NAME}``...), checked against what the model declares and the chosen phase.
"""

from __future__ import annotations

from .. import identity as idp
from ..errors import did_you_mean
from ..secrets import env_unsafe
from . import templates


def check_env_secret(ref: dict, secrets: dict, path: tuple, err) -> None:
    """A declared secret value delivered as env must fit compose's raw env file
    (one line) as the kind lane's Secret delivers it. Names the secret and key,
    never the value."""
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


def check_secret(ref: dict, secrets: dict, path: tuple, err) -> None:
    name, key = ref.get("secret"), ref.get("key")
    if name not in secrets:
        err(path + ("secret",), f"unknown secret '{name}'{did_you_mean(name, secrets)}",
            "declare it under secrets: in base/secrets.yaml")
    elif key not in (secrets[name].get("keys") or {}):
        keys = secrets[name].get("keys") or {}
        err(path + ("key",), f"secret '{name}' has no key '{key}'{did_you_mean(key, keys)}",
            f"keys of {name}: {', '.join(sorted(keys))}")


def route_owners(services: dict) -> dict[str, str]:
    """route name -> the service that declares it (duplicates are reported elsewhere)."""
    owners: dict[str, str] = {}
    for n, s in services.items():
        for r in s.get("routes") or []:
            owners[r["name"]] = n
    return owners


def check_refs(value: str, path: tuple, services: dict, phase: int, err,
                routes: dict[str, str] | None = None, identity: dict | None = None) -> None:
    try:
        refs = templates.parse(value)
    except templates.TemplateError as exc:
        err(path, str(exc), "see docs/overlays.md#reference-templates")
        return
    if routes is None:
        routes = route_owners(services)
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
