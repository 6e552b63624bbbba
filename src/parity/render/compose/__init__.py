"""The compose renderer: a :class:`~parity.model.Stack` -> ``docker-compose.yaml`` (the
Compose Specification as ``docker compose`` v2 reads it) and ``edge/nginx.conf``.

It owns how each model feature is expressed in compose, and nothing else:

* contract (env, files, secrets, image, health, dependencies) maps one to one;
* transport: services reach each other by compose service name (plus a network
  alias when ``internal_dns`` says otherwise); only the edge publishes host ports,
  on the loopback address; the edge answers every route hostname through network
  aliases, so an in-network client and a browser see the same URLs;
* what compose has no field for is recorded, never dropped: storage size and
  class under the top-level ``x-parity`` extension, a job's completion timeout as
  a container label.

Compose interpolates ``$`` everywhere in the file, so every string is escaped
once, at the end (:func:`.text.escape`); the values built before that are the exact
text the container must see. Secret values never enter the file: env secrets come
from ``env_file`` and file secrets from ``secrets:``, both pointing into
``.parity/secrets/``. Anything compose cannot express raises
:class:`~parity.errors.InputError` naming ``services.<name>.<field>``.

The function is pure: no disk, clock or environment access, so equal stacks give
byte-identical output.

The package, by part: :mod:`.services` (one service entry each), :mod:`.health`
(healthchecks), :mod:`.placement` (replicas and resources), :mod:`.toplevel`
(volumes, network, secrets, configs, ``x-parity``), :mod:`.nginx` (the edge's
``nginx.conf``), :mod:`.text` (escaping and line folding) and :mod:`.common`
(names, labels and errors they share).
"""

from __future__ import annotations

from typing import Any

from ... import yamlio
from ...model import Stack
from .. import RenderContext
from . import nginx, toplevel
from .common import (COMPOSE_FILE, EDGE_CONF_PATH, EDGE_TLS_DIR, EXTENSION,  # noqa: F401
                     LABEL_COMPLETION_TIMEOUT, LABEL_CONFIG_HASH, NGINX_CONF)  # (re-exported)
from .services import env_text, service
from .text import escape, fit_lines

__all__ = ["COMPOSE_FILE", "EDGE_CONF_PATH", "EDGE_TLS_DIR", "EXTENSION",
           "LABEL_COMPLETION_TIMEOUT", "LABEL_CONFIG_HASH", "NGINX_CONF", "env_text",
           "render_compose"]


def render_compose(stack: Stack, ctx: RenderContext) -> dict[str, str]:
    """``{"docker-compose.yaml": ..., "edge/nginx.conf": ...}`` for ``stack``."""
    nginx_conf = nginx.nginx_conf(stack, nginx.edge_service(stack))
    services = {name: service(stack, stack.services[name], ctx, nginx_conf)
                for name in sorted(stack.services)}
    doc: dict[str, Any] = {"name": stack.name, "services": services}
    sections = (("volumes", toplevel.volumes(stack)), ("networks", toplevel.networks(stack)),
                ("secrets", toplevel.secrets(stack, ctx)), ("configs", toplevel.configs(stack)),
                (EXTENSION, toplevel.not_applied(stack)))
    doc.update((key, value) for key, value in sections if value)
    text = fit_lines(yamlio.dump(escape(doc)))
    return {COMPOSE_FILE: text, NGINX_CONF: nginx_conf}
