"""Readiness as a compose ``healthcheck``: exec as is, http and tcp as shell probes
that work with curl, wget or bash alone. A job has none: it is ready when it exits 0."""

from __future__ import annotations

import re
from typing import Any

from ...model import Readiness, Service
from .common import error, is_job


# A readiness path goes into a single-quoted shell word and an HTTP request line:
# any RFC 3986 path or query character but the single quote.
_PROBE_PATH = re.compile(r"^/[A-Za-z0-9._~%!$&()*+,;=:@/?-]*$")


# --------------------------------------------------------------------------- health

def healthcheck(svc: Service) -> dict[str, Any]:
    r = svc.readiness
    if r is None or is_job(svc):
        return {}  # a job is ready when it exits 0 (depends_on says so)
    if r.kind == "exec":
        test = ["CMD", *r.command]
    elif r.kind in ("http", "tcp"):
        port = _readiness_port(svc, r)
        script = _http_probe(port, _probe_path(svc, r)) if r.kind == "http" \
            else _tcp_probe(port)
        test = ["CMD-SHELL", script]
    else:
        raise error(svc, ("readiness",), f"readiness '{r.kind}' has no compose "
                    "healthcheck", "use http, tcp or exec")
    return {"test": test, "interval": f"{r.period_seconds}s",
            "timeout": f"{r.timeout_seconds}s", "retries": r.failure_threshold,
            "start_period": f"{r.initial_delay_seconds}s"}


def _readiness_port(svc: Service, r: Readiness) -> int:
    try:
        return svc.port(r.port or "").port
    except KeyError:
        raise error(svc, ("readiness", r.kind, "port"), f"no port named '{r.port}'",
                    "name one of the service's ports") from None


def _probe_path(svc: Service, r: Readiness) -> str:
    path = r.path or "/"
    if not _PROBE_PATH.fullmatch(path):
        raise error(svc, ("readiness", "http", "path"), f"'{path}' is not a URL path "
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
