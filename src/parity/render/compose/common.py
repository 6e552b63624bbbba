"""What every part of the compose renderer shares: the file names and labels of the
output, the paths inside the edge container, the names compose objects get, and
the one way a refusal is raised (:func:`error`, naming ``services.<name>.<field>``)."""

from __future__ import annotations

from ...errors import InputError
from ...model import Service, Stack
from ...nodes import format_path
from ..names import LABEL_MANAGED, LABEL_PHASE, LABEL_SERVICE, LABEL_STACK

COMPOSE_FILE = "docker-compose.yaml"
NGINX_CONF = "edge/nginx.conf"

#: A job's completion timeout (compose has no field; the lane enforces it).
LABEL_COMPLETION_TIMEOUT = "parity.dev/completion-timeout-seconds"
#: A digest of the files a container reads from configs or from a bind-mounted
#: nginx.conf. Compose recreates a container when its labels change, but not when
#: only an inline config's content or a bind-mounted file changes.
LABEL_CONFIG_HASH = "parity.dev/config-hash"
#: Top-level extension holding what compose cannot apply (storage size and class).
EXTENSION = "x-parity"

#: Where the edge container finds its configuration and the wildcard certificate.
EDGE_CONF_PATH = "/etc/nginx/nginx.conf"
EDGE_TLS_DIR = "/etc/nginx/tls"

CONFIG_MODE = "0444"
SCRIPT_MODE = "0555"    # init scripts the postgres entrypoint executes (not sources)


# --------------------------------------------------------------------------- errors

def error(svc: Service | str, field: tuple, message: str, hint: str) -> InputError:
    name = svc if isinstance(svc, str) else svc.name
    return InputError(message, path=format_path(("services", name) + field), hint=hint)


# --------------------------------------------------------------------------- labels

def labels(stack: Stack, service: str | None = None, phase: int | None = None,
           **extra: str) -> dict[str, str]:
    out = {LABEL_MANAGED: "true", LABEL_STACK: stack.name}
    if service is not None:
        out[LABEL_SERVICE] = service
    if phase is not None:
        out[LABEL_PHASE] = str(phase)
    out.update(extra)
    return out


def is_job(svc: Service) -> bool:
    return svc.workload == "job" or (svc.readiness is not None
                                     and svc.readiness.kind == "completion")


def edge_port(edge: Service, name: str) -> int:
    try:
        return edge.port(name).port
    except KeyError:
        raise error(edge, ("ports",), f"the edge has no port named '{name}'",
                    "give the edge two ports named http and https") from None


# --------------------------------------------------------------------------- object names

def volume_name(service: str, storage: str) -> str:
    return f"{service}-{storage}"


def config_name(service: str, file: str) -> str:
    return f"{service}-{file}"


def secret_name(secret: str, key: str) -> str:
    return f"{secret}__{key}"
