"""The forms a value must have to be written unquoted into every lane's files:
route and probe paths, DNS names (the stack domain and ``internal_dns``), Docker
image references; and build contexts that stay inside the repository.

The ``*_problem`` functions say why a value is wrong (or None); the ``check_*``
functions are rules of :mod:`parity.model.validate`, reporting through ``err``.
"""

from __future__ import annotations

import re
from pathlib import Path

from . import templates


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


def check_dns(st: dict, services: dict, err) -> None:
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


def check_images(data: dict, err, root: Path | None) -> None:
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
        context = inside(repo, repo, b["context"])
        if context is None:
            err(base + ("build", "context"), f"build context '{b['context']}' is outside "
                "the repository (after following symlinks): a fresh clone cannot build "
                "it, and the build could read anything there",
                "use a directory under the repository root (apps/, overlays/images/); "
                "paths are relative to the root")
        elif isinstance(b.get("dockerfile"), str) and \
                inside(repo, context, b["dockerfile"]) is None:
            err(base + ("build", "dockerfile"), f"Dockerfile '{b['dockerfile']}' is "
                "outside the repository (after following symlinks)",
                "keep the Dockerfile in the repository; build.dockerfile is relative "
                "to build.context")


def inside(repo: Path, base: Path, rel: str) -> Path | None:
    """``base / rel`` with symlinks resolved, or None when that leaves ``repo``."""
    if "\0" in rel:
        return None
    try:
        resolved = (base / rel).resolve()
    except (OSError, RuntimeError, ValueError):  # a symlink loop, an unreadable path
        return None
    return resolved if resolved.is_relative_to(repo) else None
