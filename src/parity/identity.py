"""The identity contract: one realm definition in the model (``identity:``), rendered
into the realm import file that the identity provider reads.

The default image profile runs Keycloak, which imports the file with
``--import-realm``; the offline profile runs the substitute
(``apps/oidc-substitute``), which reads the same file. So the
clients, redirect URIs, audiences and users a browser meets are the same in every
mode and profile, and they are model values: a mode that changes one is contract
drift in ``inv diff`` (docs/identity.md).

Secrets never enter the file: a user's password and a confidential client's secret
are written as Keycloak placeholders (``${PARITY_IDP_USER_DEV_PASSWORD}``) that the
provider substitutes from its environment, and parity delivers that environment as
secret references like any other service's.

This module knows nothing of the model's classes; :mod:`parity.model` builds an
:class:`Identity` from plain data and passes its ``SecretRef`` type in.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from .errors import did_you_mean
from .nodes import format_path

#: Where Keycloak's ``--import-realm`` reads realm files (the substitute too).
IMPORT_DIR = "/opt/keycloak/data/import"
#: The files[] entry parity adds to the provider service.
FILE_NAME = "realm"
#: ``${identity:FIELD}`` reference fields.
FIELDS = ("issuer", "realm")


@dataclass(frozen=True)
class Client:
    client_id: str
    type: str                     # public, confidential, bearer-only
    secret: Any                   # SecretRef or None
    redirect_uris: tuple[str, ...]
    web_origins: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    pkce: str | None
    audiences: tuple[str, ...]
    service_accounts: bool
    standard_flow: bool
    enabled: bool


@dataclass(frozen=True)
class User:
    username: str
    email: str
    first_name: str
    last_name: str
    enabled: bool
    password: Any                 # SecretRef


@dataclass(frozen=True)
class Identity:
    provider: str
    route: str
    realm: str
    realm_file: str
    users: tuple[User, ...]
    clients: tuple[Client, ...]

    @property
    def issuer_template(self) -> str:
        """The issuer as a reference template (resolved per mode like any URL)."""
        return f"${{route:{self.route}}}/realms/{self.realm}"

    def client(self, client_id: str) -> Client | None:
        return next((c for c in self.clients if c.client_id == client_id), None)

    def env(self) -> list[tuple[str, Any]]:
        """The provider's secret environment the realm file's placeholders name."""
        out = [(user_env(u.username), u.password) for u in self.users]
        out += [(client_env(c.client_id), c.secret) for c in self.clients
                if c.secret is not None]
        return out

    def realm_json(self) -> str:
        """The realm import (Keycloak's RealmRepresentation), with reference
        templates left in (resolved per mode at render) and secrets as placeholders."""
        realm = {
            "realm": self.realm,
            "enabled": True,
            "sslRequired": "external",
            "users": [_user(u) for u in self.users],
            "clients": [_client(c) for c in self.clients],
        }
        return json.dumps(realm, indent=2) + "\n"


def _placeholder(name: str) -> str:
    # "$${" is parity's escape for a literal "${": the provider sees ${NAME}
    return f"$${{{name}}}"


def _env_part(text: str) -> str:
    return re.sub(r"[^A-Z0-9]", "_", text.upper())


def user_env(username: str) -> str:
    return f"PARITY_IDP_USER_{_env_part(username)}_PASSWORD"


def client_env(client_id: str) -> str:
    return f"PARITY_IDP_CLIENT_{_env_part(client_id)}_SECRET"


def _user(u: User) -> dict:
    return {
        "username": u.username, "enabled": u.enabled, "email": u.email,
        "emailVerified": bool(u.email), "firstName": u.first_name,
        "lastName": u.last_name,
        "credentials": [{"type": "password", "value": _placeholder(user_env(u.username)),
                         "temporary": False}],
    }


def _client(c: Client) -> dict:
    out: dict[str, Any] = {"clientId": c.client_id, "enabled": c.enabled,
                           "protocol": "openid-connect"}
    if c.type == "bearer-only":
        out["bearerOnly"] = True
        return out
    out.update({
        "publicClient": c.type == "public",
        "standardFlowEnabled": c.standard_flow,
        "implicitFlowEnabled": False,
        "directAccessGrantsEnabled": False,
        "serviceAccountsEnabled": c.service_accounts,
    })
    if c.secret is not None:
        out["secret"] = _placeholder(client_env(c.client_id))
    if c.redirect_uris:
        out["redirectUris"] = list(c.redirect_uris)
    if c.web_origins:
        out["webOrigins"] = list(c.web_origins)
    attributes = {}
    if c.pkce:
        attributes["pkce.code.challenge.method"] = c.pkce
    if c.post_logout_redirect_uris:
        attributes["post.logout.redirect.uris"] = "##".join(c.post_logout_redirect_uris)
    if attributes:
        out["attributes"] = attributes
    if c.audiences:
        out["protocolMappers"] = [{
            "name": f"audience-{aud}", "protocol": "openid-connect",
            "protocolMapper": "oidc-audience-mapper", "consentRequired": False,
            "config": {"included.client.audience": aud, "access.token.claim": "true",
                       "id.token.claim": "false", "introspection.token.claim": "true"},
        } for aud in c.audiences]
    return out


def build(data: dict | None, secret_ref) -> Identity | None:
    """An :class:`Identity` from the plain, validated ``identity:`` mapping."""
    if not data:
        return None

    def ref(v):
        return secret_ref(v["secret"], v["key"]) if isinstance(v, dict) else None

    users = tuple(User(name, u.get("email", ""), u.get("first_name", ""),
                       u.get("last_name", ""), u.get("enabled", True), ref(u["password"]))
                  for name, u in (data.get("users") or {}).items())
    clients = tuple(Client(
        client_id=cid, type=c["type"], secret=ref(c.get("secret")),
        redirect_uris=tuple(c.get("redirect_uris") or ()),
        web_origins=tuple(c.get("web_origins") or ()),
        post_logout_redirect_uris=tuple(c.get("post_logout_redirect_uris") or ()),
        pkce=c.get("pkce"), audiences=tuple(c.get("audiences") or ()),
        service_accounts=bool(c.get("service_accounts", False)),
        standard_flow=bool(c.get("standard_flow", c["type"] != "bearer-only")),
        enabled=bool(c.get("enabled", True)),
    ) for cid, c in (data.get("clients") or {}).items())
    realm = data["realm"]
    return Identity(data["provider"], data["route"], realm,
                    data.get("realm_file") or f"{IMPORT_DIR}/{realm}-realm.json",
                    users, clients)


def validate(data: dict, services: dict, phase: int, err, check_secret, check_refs,
             route_owner: dict[str, str]) -> None:
    """Rules of ``identity:`` a schema cannot state; ``err(path, message, hint)``."""
    base = ("identity",)
    provider = data.get("provider")
    svc = services.get(provider)
    if svc is None:
        err(base + ("provider",), f"unknown service '{provider}'"
            f"{did_you_mean(provider, services)}", "name the service that runs the "
            "identity provider (keycloak)")
        return
    route = data.get("route")
    if route_owner.get(route) != provider:
        own = sorted(r["name"] for r in svc.get("routes") or [])
        err(base + ("route",), f"'{route}' is not a route of {provider}",
            f"routes of {provider}: {', '.join(own) or 'none'}; the issuer is that "
            "route's browser URL")
    if svc.get("phase", 1) > 1:
        err(base + ("provider",), f"{provider} starts in phase {svc.get('phase')}; the "
            "identity provider must run from phase 1", "set its phase: 1")
    realm_file = data.get("realm_file") or f"{IMPORT_DIR}/{data.get('realm')}-realm.json"
    for kind in ("files", "storage", "secret_files"):
        for item in svc.get(kind) or []:
            if item.get("path") == realm_file or (kind == "files" and
                                                  item.get("name") == FILE_NAME):
                err(base + ("realm_file",), f"{provider} already mounts "
                    f"{kind} '{item.get('name')}' at {item.get('path')}", "parity "
                    "renders the realm file from identity:; remove the hand-written one")
    env_names: list[tuple[str, tuple]] = []
    users = data.get("users") or {}
    clients = data.get("clients") or {}
    for name, u in users.items():
        path = base + ("users", name)
        check_secret(u["password"], path + ("password",))
        env_names.append((user_env(name), path))
    for cid, c in clients.items():
        path = base + ("clients", cid)
        kind = c["type"]
        if kind == "confidential" and not c.get("secret"):
            err(path, f"confidential client '{cid}' has no secret",
                "add secret: {secret: NAME, key: KEY} (declared in base/secrets.yaml)")
        if kind != "confidential" and c.get("secret"):
            err(path + ("secret",), f"a {kind} client has no secret", "remove it, or "
                "make the client type: confidential")
        if c.get("secret"):
            check_secret(c["secret"], path + ("secret",))
            env_names.append((client_env(cid), path))
        if kind == "bearer-only":
            for field in ("redirect_uris", "web_origins", "post_logout_redirect_uris"):
                if c.get(field):
                    err(path + (field,), "a bearer-only client never sees a browser",
                        f"remove {field}, or make the client type: public")
        elif c.get("standard_flow", True) and not c.get("redirect_uris") \
                and not c.get("service_accounts"):
            err(path + ("redirect_uris",), f"client '{cid}' can log users in but has no "
                "redirect URI", "add redirect_uris (e.g. ${route:web}/*) or set "
                "standard_flow: false")
        for i, aud in enumerate(c.get("audiences") or []):
            if aud not in clients:
                err(path + ("audiences", i), f"audience '{aud}' is not a client of the "
                    f"realm{did_you_mean(aud, clients)}", "an audience names a client "
                    "(Keycloak's audience mapper includes a client id)")
        for field in ("redirect_uris", "web_origins", "post_logout_redirect_uris"):
            for i, value in enumerate(c.get(field) or []):
                check_refs(value, path + (field, i))
    seen: dict[str, tuple] = {}
    for name, path in env_names:
        if name in (svc.get("env") or {}):
            err(path, f"{provider} already sets {name} in its env", "remove that env "
                "entry: parity delivers it from identity:")
        if name in seen:
            err(path, f"env name {name} is also used by {format_path(seen[name])}",
                "rename one: names differ only in characters an env name cannot hold")
        seen[name] = path
