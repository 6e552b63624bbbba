"""The schema of the stack model (JSON Schema, draft 2020-12), its defaults, and
which mappings are collections.

The schema is the single statement of what a stack file may contain; it is also
written to ``docs/schema.json`` (``inv schema``) so editors can complete and check
``base/`` files. Unknown keys are errors everywhere (``additionalProperties:
false``); :mod:`parity.model.check` turns schema errors into messages with
file:line and a did-you-mean.
"""

from __future__ import annotations

import re
from decimal import Decimal

# DNS-1035 label: what Kubernetes requires of Service names (starts with a letter)
DNS_LABEL = r"^[a-z]([-a-z0-9]{0,61}[a-z0-9])?$"
# IANA service name: <= 15 chars, at least one letter, no '--'
PORT_NAME = r"^(?=.*[a-z])(?!.*--)[a-z0-9]([-a-z0-9]{0,13}[a-z0-9])?$"
ENV_KEY = r"^[A-Za-z_][A-Za-z0-9_]*$"
#: A secret key names a file (``.parity/secrets/<secret>/<key>``) and a key of a
#: Kubernetes Secret: Kubernetes' IsConfigMapKey (letters, digits, '-', '_', '.', at
#: most 253 characters, not '.', not starting with '..'), so never a path.
SECRET_KEY = r"^(?!\.\.)(?!\.$)[-._a-zA-Z0-9]{1,253}$"
#: Names under .parity/secrets/ that are not secrets (the compose env files).
RESERVED_SECRET_NAMES = ("env",)
QUANTITY = r"^[0-9]+(\.[0-9]+)?(m|Ki|Mi|Gi|Ti|k|M|G|T)?$"
_FACTORS = {None: 1, "m": "0.001", "k": 10**3, "M": 10**6, "G": 10**9, "T": 10**12,
            "Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40}


_QUANTITY = re.compile(r"^([0-9]+(?:\.[0-9]+)?)(m|k|M|G|T|Ki|Mi|Gi|Ti)?$")


def quantity(text: str) -> Decimal:
    """A Kubernetes quantity (``500m``, ``2``, ``512Mi``) as an exact Decimal;
    ValueError when ``text`` is not one."""
    m = _QUANTITY.match(str(text))
    if not m:
        raise ValueError(f"'{text}' is not a quantity")
    return Decimal(m.group(1)) * Decimal(_FACTORS[m.group(2)])

_name = {"type": "string", "pattern": DNS_LABEL}
_port_ref = {"type": "string", "pattern": PORT_NAME}
_str_list = {"type": "array", "items": {"type": "string"}}
_scalar = {"type": ["string", "integer", "number", "boolean"]}


def _obj(props: dict, required: tuple[str, ...] = (), **extra) -> dict:
    out = {"type": "object", "additionalProperties": False, "properties": props}
    if required:
        out["required"] = list(required)
    out.update(extra)
    return out


_resources = _obj({
    "cpu": {"type": "string", "pattern": QUANTITY},
    "memory": {"type": "string", "pattern": QUANTITY},
})

_readiness = _obj({
    "http": _obj({"port": _port_ref, "path": {"type": "string", "pattern": "^/"}},
                 ("port", "path")),
    "tcp": _obj({"port": _port_ref}, ("port",)),
    "exec": _obj({"command": {**_str_list, "minItems": 1}}, ("command",)),
    "completion": _obj({"timeout_seconds": {"type": "integer", "minimum": 1}}),
    "period_seconds": {"type": "integer", "minimum": 1},
    "timeout_seconds": {"type": "integer", "minimum": 1},
    "failure_threshold": {"type": "integer", "minimum": 1},
    "initial_delay_seconds": {"type": "integer", "minimum": 0},
}, minProperties=1)

_build = _obj({
    "context": {"type": "string"},
    "dockerfile": {"type": "string"},
    "target": {"type": "string"},
    "args": {"type": "object", "additionalProperties": {"type": "string"}},
}, ("context",))

#: An image the kind lane runs outside the stack's services (its node, its edge
#: controller): the image, and how to build it where it is built locally.
_runtime_image = _obj({"image": {"type": "string", "minLength": 1}, "build": _build},
                      ("image",))

SERVICE = _obj({
    "description": {"type": "string"},
    "phase": {"type": "integer", "enum": [1, 2, 3]},
    "workload": {"enum": ["stateless", "stateful", "job"]},
    "role": {"enum": ["service", "edge"]},
    "image": {"type": "string", "minLength": 1},
    "build": _build,
    "command": _str_list,
    "args": _str_list,
    "working_dir": {"type": "string"},
    "ca_bundle": {"type": "string", "pattern": "^/"},
    "user": {"type": "string"},
    "ports": {"type": "array", "items": _obj({
        "name": _port_ref,
        "port": {"type": "integer", "minimum": 1, "maximum": 65535},
        "protocol": {"enum": ["tcp", "udp", "http", "grpc"]},
    }, ("name", "port"))},
    "env": {"type": "object", "propertyNames": {"pattern": ENV_KEY},
            "additionalProperties": {"anyOf": [
                _scalar,
                _obj({"secret": _name, "key": {"type": "string"}}, ("secret", "key")),
            ]}},
    "secret_files": {"type": "array", "items": _obj({
        "name": _name, "secret": _name, "key": {"type": "string"},
        "path": {"type": "string", "pattern": "^/"},
    }, ("name", "secret", "key", "path"))},
    "files": {"type": "array", "items": _obj({
        "name": _name,
        "path": {"type": "string", "pattern": "^/"},
        "content": {"type": "string"},
    }, ("name", "path", "content"))},
    "storage": {"type": "array", "items": _obj({
        "name": _name,
        "path": {"type": "string", "pattern": "^/"},
        "size": {"type": "string", "pattern": QUANTITY},
        "storage_class": {"type": ["string", "null"]},
    }, ("name", "path"))},
    "readiness": _readiness,
    "depends_on": {"type": "array", "items": _name},
    "routes": {"type": "array", "items": _obj({
        "name": _name,
        "host": _name,
        "path": {"type": "string", "pattern": "^/"},
        "port": _port_ref,
    }, ("name", "host", "port"))},
    "replicas": {"type": "integer", "minimum": 0},
    "resources": _obj({"requests": _resources, "limits": _resources}),
}, ("phase", "image"))

_secret_ref = _obj({"secret": _name, "key": {"type": "string"}}, ("secret", "key"))
#: Keycloak client ids and usernames (what a realm import accepts, kept URL-safe)
CLIENT_ID = r"^[A-Za-z0-9][-._A-Za-z0-9]{0,127}$"
USERNAME = r"^[a-z0-9][-._@a-z0-9]{0,127}$"

#: The identity contract (docs/identity.md): one realm definition that parity
#: renders into the provider's realm import (Keycloak, or the offline substitute
#: that reads the same file). Issuer, clients, audiences and redirect URIs are
#: model values, so a mode that changes one is contract drift.
IDENTITY = _obj({
    "provider": _name,
    "route": _name,
    "realm": {"type": "string", "pattern": r"^[A-Za-z0-9][-_A-Za-z0-9]{0,63}$"},
    "realm_file": {"type": "string", "pattern": "^/"},
    "users": {"type": "object", "propertyNames": {"pattern": USERNAME},
              "additionalProperties": _obj({
                  "email": {"type": "string"},
                  "first_name": {"type": "string"},
                  "last_name": {"type": "string"},
                  "enabled": {"type": "boolean"},
                  "password": _secret_ref,
              }, ("password",))},
    "clients": {"type": "object", "propertyNames": {"pattern": CLIENT_ID},
                "additionalProperties": _obj({
                    "type": {"enum": ["public", "confidential", "bearer-only"]},
                    "secret": _secret_ref,
                    "redirect_uris": _str_list,
                    "web_origins": _str_list,
                    "post_logout_redirect_uris": _str_list,
                    "pkce": {"enum": ["S256", "plain", None]},
                    "audiences": _str_list,
                    "service_accounts": {"type": "boolean"},
                    "standard_flow": {"type": "boolean"},
                    "enabled": {"type": "boolean"},
                }, ("type",))},
}, ("provider", "route", "realm"))

STACK = _obj({
    "identity": IDENTITY,
    "stack": _obj({
        "name": _name,
        "domain": {"type": "string", "pattern": r"^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"},
        "namespace": _name,
        "internal_dns": {"type": "string"},
        "routing": {"enum": ["gateway", "ingress"]},
        "edge": _obj({
            "bind": {"type": "string"},
            "http_port": {"type": "integer", "minimum": 1, "maximum": 65535},
            "https_port": {"type": "integer", "minimum": 1, "maximum": 65535},
        }),
        # the kind lane's runtime: its node image and the Gateway API controller
        # that realises the edge there (placement, never contract)
        "kind": _obj({"node": _runtime_image, "edge": _runtime_image}),
    }, ("name", "domain")),
    "secrets": {"type": "object", "propertyNames": {"pattern": DNS_LABEL},
                "additionalProperties": _obj({
                    "description": {"type": "string"},
                    "keys": {"type": "object", "minProperties": 1,
                             "propertyNames": {"pattern": SECRET_KEY},
                             "additionalProperties": _obj({
                                 "generate": {"type": "integer", "minimum": 8,
                                              "maximum": 256},
                                 "value": {"type": "string"},
                             }, minProperties=1, maxProperties=1)},
                }, ("keys",))},
    "services": {"type": "object", "propertyNames": {"pattern": DNS_LABEL},
                 "additionalProperties": SERVICE},
}, ("stack", "services"))

#: The node image of the kind CLI parity pins (kind v0.30.0's own default, by digest).
KIND_NODE_IMAGE = ("kindest/node:v1.34.0@sha256:"
                   "7416a61b42b1662ca6ca89f02028ac133a309a2a30ba309614e8ec94d976dc5a")
#: The kind lane's Gateway API controller (docs/decisions/0012).
KIND_EDGE_IMAGE = "traefik:v3.6.12"

#: Values filled in where a layer did not set them; provenance says "(default)".
STACK_DEFAULTS = {
    "namespace": "parity",
    "internal_dns": "{service}",
    "routing": "gateway",
    "edge": {"bind": "127.0.0.1", "http_port": 80, "https_port": 443},
    "kind": {"node": {"image": KIND_NODE_IMAGE}, "edge": {"image": KIND_EDGE_IMAGE}},
}
SERVICE_DEFAULTS = {"workload": "stateless", "role": "service", "replicas": 1}
PORT_DEFAULTS = {"protocol": "tcp"}
ROUTE_DEFAULTS = {"path": "/"}
STORAGE_DEFAULTS = {"size": "1Gi"}
IDENTITY_DEFAULTS = {"users": {}, "clients": {}}
IDENTITY_CLIENT_DEFAULTS = {"redirect_uris": [], "web_origins": [],
                            "post_logout_redirect_uris": [], "audiences": [],
                            "service_accounts": False, "enabled": True}
IDENTITY_USER_DEFAULTS = {"enabled": True}
READINESS_DEFAULTS = {"period_seconds": 5, "timeout_seconds": 3, "failure_threshold": 30,
                      "initial_delay_seconds": 0}

#: Mappings whose keys are names the user chose (a missing key in an overlay is a
#: typo unless marked missing_ok); every other mapping is a field set the schema
#: checks. ``*`` stands for any one key.
COLLECTIONS = (
    ("services",),
    ("secrets",),
    ("secrets", "*", "keys"),
    ("services", "*", "env"),
    ("services", "*", "build", "args"),
    ("identity", "users"),
    ("identity", "clients"),
)


def is_collection(path: tuple) -> bool:
    if len(path) not in {len(c) for c in COLLECTIONS}:
        return False
    for pattern in COLLECTIONS:
        if len(pattern) == len(path) and all(p == "*" or p == q
                                             for p, q in zip(pattern, path)):
            return True
    return False


def list_key(path: tuple) -> str:
    """Lists of mappings in the model are all keyed by ``name``."""
    return "name"


#: Lists whose items get defaults (``parity.model.defaults.apply_defaults``), by path.
ITEM_DEFAULTS = (
    (("services", "*", "ports"), PORT_DEFAULTS),
    (("services", "*", "routes"), ROUTE_DEFAULTS),
    (("services", "*", "storage"), STORAGE_DEFAULTS),
)


def item_defaults(path: tuple) -> dict:
    """The defaults the items of the list at ``path`` will get: an overlay that
    matches items by a defaulted field (``!merge(by=path)``) sees them already."""
    for pattern, defaults in ITEM_DEFAULTS:
        if len(pattern) == len(path) and all(p == "*" or p == q
                                             for p, q in zip(pattern, path)):
            return defaults
    return {}


def allowed_types(sch: dict) -> set[str]:
    """The JSON types a schema node admits (``anyOf`` branches included)."""
    out: set[str] = set()
    t = sch.get("type")
    if isinstance(t, str):
        out.add(t)
    elif isinstance(t, list):
        out.update(t)
    for branch in sch.get("anyOf", ()):
        out |= allowed_types(branch)
    return out


def child_schemas(sch: dict) -> list[dict]:
    return [sch, *sch.get("anyOf", ())]
