"""Reference templates in env values and files, resolved per mode.

    ${service:NAME.PORT}   host:port of a service's named port (internal transport)
    ${host:NAME}           the service's internal hostname
    ${port:NAME.PORT}      the port number
    ${route:ROUTE}         the browser-facing URL of a route: https://HOST.DOMAIN[:PORT][PATH]
                           (PORT only when the edge's https port is not 443)
    ${stack:FIELD}         name, domain or namespace of the stack
    ${identity:issuer}     the OIDC issuer: the browser URL of identity.route + /realms/REALM
    ${identity:realm}      the realm name
    $${                    a literal "${"

The *meaning* of a reference is the same in every mode (that is the contract);
only what it resolves to differs (that is transport). Secrets are never
interpolated: a secret is delivered whole, by a ``{secret: NAME, key: KEY}`` value.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from ..errors import did_you_mean

KINDS = ("service", "host", "port", "route", "stack", "identity")
STACK_FIELDS = ("name", "domain", "namespace")
#: The placeholders of ``stack.internal_dns`` (nothing else is substituted).
DNS_PLACEHOLDERS = ("service", "namespace")

_PLACEHOLDER = re.compile(r"\{([^{}]*)\}")
_DNS_LABEL = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
MAX_DNS_NAME = 253


def dns_name_problem(name: str) -> str | None:
    """Why ``name`` is not an RFC 1123 DNS name (lowercase labels of letters, digits
    and inner '-', 1 to 63 characters each, joined by '.', at most 253 in all), or
    None when it is one. Such a name needs no quoting in nginx.conf, a Compose
    network alias, a Kubernetes object or a URL."""
    if not name:
        return "it is empty"
    if len(name) > MAX_DNS_NAME:
        return f"it is {len(name)} characters long (at most {MAX_DNS_NAME})"
    for label in name.split("."):
        if not label:
            return "it has an empty label (a leading, trailing or doubled '.')"
        if not _DNS_LABEL.fullmatch(label):
            shown = label if len(label) <= 70 else label[:67] + "..."
            return (f"label '{shown}' is not an RFC 1123 label (lowercase letters, digits "
                    "and '-', not at either end, at most 63 characters)")
    return None


def dns_pattern_problem(pattern: str) -> str | None:
    """Why ``pattern`` (``stack.internal_dns``) is not a pattern of DNS names with
    only the placeholders of :data:`DNS_PLACEHOLDERS`, or None. The names it gives
    are checked by :func:`dns_name_problem`."""
    for m in _PLACEHOLDER.finditer(pattern):
        if m.group(1) not in DNS_PLACEHOLDERS:
            close = did_you_mean(m.group(1), DNS_PLACEHOLDERS)
            return (f"unknown placeholder '{m.group(0)}'{close}"
                    f"; internal_dns knows {' and '.join('{%s}' % p for p in DNS_PLACEHOLDERS)}")
    rest = _PLACEHOLDER.sub("", pattern)
    if "{" in rest or "}" in rest:
        return "it has a '{' or '}' that is not part of {service} or {namespace}"
    return None


def expand_dns(pattern: str, service: str, namespace: str) -> str:
    """``pattern`` with its placeholders replaced, one pass, nothing else
    interpreted (never ``str.format``: the pattern is user text)."""
    values = {"service": service, "namespace": namespace}
    return _PLACEHOLDER.sub(lambda m: values.get(m.group(1), m.group(0)), pattern)

_REF = re.compile(r"\$\$\{|\$\{([^}]*)\}")


@dataclass(frozen=True)
class Ref:
    kind: str
    target: str  # service or route name, or stack field
    port: str | None = None
    text: str = ""


class TemplateError(ValueError):
    """A malformed or unknown reference; :mod:`parity.model.references` adds file:line."""


def parse(value: str) -> list[Ref]:
    """All references in ``value`` (syntax only; names are checked by the model)."""
    refs: list[Ref] = []
    for m in _REF.finditer(value):
        if m.group(0) == "$${":
            continue
        body = m.group(1)
        kind, sep, arg = body.partition(":")
        if not sep:
            raise TemplateError(f"'${{{body}}}' is not a reference; write ${{KIND:NAME}} with "
                                f"KIND one of {', '.join(KINDS)}")
        if kind == "secret":
            raise TemplateError("secrets are never interpolated into strings; give the value "
                                "as {secret: NAME, key: KEY} and let the app compose it")
        if kind not in KINDS:
            raise TemplateError(f"unknown reference kind '{kind}' in '${{{body}}}'"
                                f"{did_you_mean(kind, KINDS)}")
        if kind in ("service", "port"):
            name, dot, port = arg.partition(".")
            if not dot or not name or not port:
                raise TemplateError(f"'${{{body}}}' needs SERVICE.PORT, as in "
                                    f"${{{kind}:postgres.pg}}")
            refs.append(Ref(kind, name, port, m.group(0)))
        else:
            if not arg:
                raise TemplateError(f"'${{{body}}}' names nothing")
            refs.append(Ref(kind, arg, None, m.group(0)))
    return refs


@dataclass(frozen=True)
class Transport:
    """What references resolve to in one mode."""

    internal_dns: str  # pattern with {service} and {namespace}
    namespace: str
    domain: str
    name: str
    https_port: int = 443  # the browser's https port; part of every browser URL

    def browser_url(self, host: str, path: str) -> str:
        port = "" if self.https_port == 443 else f":{self.https_port}"
        return f"https://{host}.{self.domain}{port}{'' if path == '/' else path.rstrip('/')}"

    def host(self, service: str) -> str:
        return expand_dns(self.internal_dns, service, self.namespace)


def resolve(value: str, transport: Transport, ports: dict[str, dict[str, int]],
            routes: dict[str, tuple[str, str]], identity: dict[str, str] | None = None) -> str:
    """Substitute every reference; ``ports[service][port_name]``,
    ``routes[route] = (host, path)`` and ``identity[field]`` (fields as reference
    templates) come from the model (already validated)."""

    def sub(m: re.Match) -> str:
        if m.group(0) == "$${":
            return "${"
        kind, _, arg = m.group(1).partition(":")
        if kind == "stack":
            return str(getattr(transport, arg))
        if kind == "identity":
            return resolve((identity or {})[arg], transport, ports, routes)
        if kind == "route":
            host, path = routes[arg]
            return transport.browser_url(host, path)
        if kind == "host":
            return transport.host(arg)
        name, _, port = arg.partition(".")
        number = ports[name][port]
        return str(number) if kind == "port" else f"{transport.host(name)}:{number}"

    return _REF.sub(sub, value)
