"""Named checks and what they found: the lanes' ``preflight()`` returns them, ``inv
doctor`` shows them all (``up`` stops at the first failure instead)."""

from __future__ import annotations

import socket
from dataclasses import dataclass

from .errors import ParityError

OK, WARN, FAIL = "ok", "warn", "fail"


@dataclass
class Finding:
    check: str
    status: str   # ok, warn, fail
    detail: str
    hint: str = ""


def attempt(check: str, fn, ok_detail) -> Finding:
    """Run one of the lanes' own checks; its error message becomes the finding."""
    try:
        value = fn()
    except ParityError as exc:
        return Finding(check, FAIL, exc.message, exc.hint or "")
    return Finding(check, OK, ok_detail(value))


def version_text(version) -> str:
    return ".".join(map(str, version))


def registry_of(image: str) -> str:
    """The registry (host or host:port) an image reference is pulled from, by
    Docker's rules: a first path component with a dot, a port or ``localhost``."""
    first, sep, _ = image.partition("/")
    if sep and ("." in first or ":" in first or first == "localhost"):
        return first
    return "registry-1.docker.io"


def reachable(registry: str, seconds: float = 3.0) -> str | None:
    """None when a TCP connection to the registry opens within ``seconds``, else why
    not. Nothing is sent: it only tells whether a pull could start."""
    host, _, port_text = registry.rpartition(":") if registry.count(":") == 1 \
        else (registry, "", "")
    port = int(port_text) if port_text.isdigit() else 443
    try:
        with socket.create_connection((host, port), timeout=seconds):
            return None
    except socket.gaierror:
        return f"{host} does not resolve"
    except OSError as exc:
        return f"{host}:{port} does not answer ({exc.strerror or exc})"


def pull_finding(check: str, images_to_pull: list[str], detail: str, who: str) -> Finding:
    """A finding for images that must be pulled: FAIL when their registry cannot even
    be reached from here (up would fail), else WARN (a pull may still be refused)."""
    hosts = sorted({registry_of(i) for i in images_to_pull})
    down = {h: why for h in hosts if (why := reachable(h))}
    hint = ("where no container registry is reachable use the offline profile "
            "(PROFILE=offline), which builds every image")
    if down:
        return Finding(check, FAIL, f"{detail}; {who} pulls {images_to_pull[0]}"
                       + (f" and {len(images_to_pull) - 1} more" if len(images_to_pull) > 1
                          else "") + " from " + ", ".join(hosts) + ", which cannot be "
                       "reached: " + "; ".join(down.values()), hint)
    return Finding(check, WARN, f"{detail}; {who} pulls {images_to_pull[0]}"
                   + (f" and {len(images_to_pull) - 1} more" if len(images_to_pull) > 1
                      else "") + f" from {', '.join(hosts)}", hint)
