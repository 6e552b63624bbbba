"""Identity rules: OIDC clients, origins, redirects and cookies against the realm
and the routes."""

from __future__ import annotations

import re

from ..errors import did_you_mean
from .base import Ctx, outside_refs, rule


ORIGIN_KEY = re.compile(r"ORIGINS?$", re.I)


@rule("origin-shape", "an origin with a path, or an open redirect")
def origin_shape(c: Ctx):
    resolve = c.stack.resolve
    checks: list[tuple[tuple, str]] = []
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if isinstance(value, str) and ORIGIN_KEY.search(key):
                checks.append((("services", name, "env", key), value))
    for cid, client in ((c.data.get("identity") or {}).get("clients") or {}).items():
        for i, value in enumerate((client or {}).get("web_origins") or []):
            checks.append((("identity", "clients", cid, "web_origins", i), value))
        for field_name in ("redirect_uris", "post_logout_redirect_uris"):
            for i, value in enumerate((client or {}).get(field_name) or []):
                v = str(value).strip()
                if v in ("*", "/*", "+") and field_name == "post_logout_redirect_uris" \
                        and v == "+":
                    continue
                if v in ("*", "/*") or re.match(r"https?://\*", v):
                    yield ("identity", "clients", cid, field_name, i), (
                        f"'{v}' lets the provider send codes (or users) to any site: an "
                        "open redirect"), "list the app's own URLs: ${route:web}/*"
    for path, value in checks:
        for item in str(value).split(","):
            item = item.strip()
            if not item or item in ("+",):
                continue
            if item == "*":
                yield path, ("'*' allows every origin: with credentials a browser refuses "
                             "it, without them any site may call"), \
                    "list the origins: ${route:web}"
                break
            try:
                resolved = resolve(item)
            except (KeyError, ValueError):
                continue
            if not re.fullmatch(r"https?://[^/\s]+", resolved):
                yield path, (f"'{item}' is not an origin ({resolved}): a browser sends "
                             "scheme://host[:port] and nothing else, so it never matches"), \
                    "drop the path and the trailing slash: ${route:web}"
                break


@rule("identity-reference", "an OIDC value that does not match the realm (identity:)")
def identity_reference(c: Ctx):
    ident = c.data.get("identity")
    if not ident:
        return
    clients = ident.get("clients") or {}
    carried = {a for cid, cl in clients.items() for a in (cl or {}).get("audiences") or []}
    realms = re.compile(r"/realms(/|\s|$)")
    for name, svc in c.services.items():
        if name == ident.get("provider"):
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str):
                continue
            path = ("services", name, "env", key)
            text = outside_refs(value)
            if realms.search(text) or "/protocol/openid-connect" in text:
                yield path, (f"'{value}' builds an identity URL by hand (realm path, "
                             f"Keycloak layout): it breaks when the realm or the route "
                             "changes"), \
                    "write ${identity:issuer} (and let the client discover the endpoints)"
                continue
            if re.search(r"CLIENT_?ID$", key) and "${" not in value and \
                    value not in clients:
                yield path, (f"{key} is '{value}', which is not a client of realm "
                             f"'{ident.get('realm')}'{did_you_mean(value, clients)}: every "
                             "login or token request with it fails"), \
                    f"use one of {', '.join(clients) or 'no clients'} or add it to " \
                    "identity.clients"
            elif re.search(r"AUDIENCE$", key) and "${" not in value:
                if value not in clients:
                    yield path, (f"{key} is '{value}', which is not a client of realm "
                                 f"'{ident.get('realm')}'{did_you_mean(value, clients)}: "
                                 "no token will carry it"), \
                        "name a client of identity.clients (the API's own client id)"
                elif value not in carried:
                    yield path, (f"{key} is '{value}', but no client of the realm puts it in "
                                 "its tokens' audiences, so every token is refused"), \
                        f"add {value} to the audiences of the clients that call {name}"
    for cid, cl in clients.items():
        cl = cl or {}
        if cl.get("type") == "public" and cl.get("standard_flow", True) and \
                cl.get("pkce") != "S256":
            what = "PKCE 'plain'" if cl.get("pkce") == "plain" else "no PKCE"
            yield ("identity", "clients", cid, "pkce") if cl.get("pkce") else \
                ("identity", "clients", cid), (
                f"public client {cid} logs users in with {what}: anyone who sees the "
                "redirect can redeem its code"), "pkce: S256"
    yield from _token_paths(c, ident)


def _token_paths(c: Ctx, ident: dict):
    """A service that logs in with client C and calls the browser URL of a service
    that checks audience A: C's tokens must carry A."""
    clients = ident.get("clients") or {}
    audience_of: dict[str, tuple[str, str]] = {}   # route -> (service, audience)
    routes = {r.name: r.service for r in c.stack.routes().values()}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if re.search(r"AUDIENCE$", key) and isinstance(value, str) and value in clients:
                for rname, owner in routes.items():
                    if owner == name:
                        audience_of[rname] = (name, value)
    for name, svc in c.services.items():
        env = svc.get("env") or {}
        cid = next((v for k, v in env.items() if re.search(r"CLIENT_?ID$", k)
                    and isinstance(v, str) and v in clients), None)
        if cid is None:
            continue
        for key, value in env.items():
            if not isinstance(value, str):
                continue
            for ref in re.findall(r"\$\{route:([^}]+)\}", value):
                if ref in audience_of:
                    target, aud = audience_of[ref]
                    if aud != cid and aud not in ((clients[cid] or {}).get("audiences") or []):
                        yield ("identity", "clients", cid, "audiences"), (
                            f"{name} logs in as {cid} and calls {target} ({key}), which "
                            f"accepts only tokens for '{aud}'; {cid}'s tokens do not carry "
                            "it, so every call is refused"), \
                            f"add {aud} to identity.clients.{cid}.audiences"
                        return


COOKIE_DOMAIN = re.compile(r"COOKIE_?DOMAIN$", re.I)


@rule("cookie-domain", "a cookie domain the service's own host cannot set")
def cookie_domain(c: Ctx):
    hosts: dict[str, list[str]] = {}
    for r in c.stack.routes().values():
        hosts.setdefault(r.service, []).append(f"{r.host}.{c.stack.domain}".lower())
    for name, svc in c.services.items():
        own = hosts.get(name)
        if not own:
            continue
        for key, value in (svc.get("env") or {}).items():
            if not isinstance(value, str) or not COOKIE_DOMAIN.search(key):
                continue
            v = value.replace("${stack:domain}", c.stack.domain).strip().lstrip(".").lower()
            if not v or "${" in v:
                continue
            bad = [h for h in own if h != v and not h.endswith("." + v)]
            if bad:
                yield ("services", name, "env", key), (
                    f"{key} is '{v}', but {name} answers on {', '.join(bad)}: a browser "
                    "drops a cookie whose domain does not contain the host that sets it, in "
                    "every mode"), \
                    "use ${stack:domain} (shared by every route) or the service's own host"


@rule("client-without-secret", "a service given a confidential client without its secret")
def client_without_secret(c: Ctx):
    clients = (c.data.get("identity") or {}).get("clients") or {}
    provider = (c.data.get("identity") or {}).get("provider")
    for name, svc in c.services.items():
        if name == provider:
            continue
        env = svc.get("env") or {}
        for key, value in env.items():
            if not (isinstance(value, str) and re.search(r"CLIENT_?ID$", key)
                    and value in clients):
                continue
            cl = clients[value] or {}
            if cl.get("type") != "confidential":
                continue
            secret = cl.get("secret") or {}
            given = any(isinstance(v, dict) and v.get("secret") == secret.get("secret")
                        and v.get("key") == secret.get("key") for v in env.values())
            given |= any(f.get("secret") == secret.get("secret")
                         for f in svc.get("secret_files") or [])
            if not given:
                routed = any(r.service == name for r in c.stack.routes().values())
                why = (" and a browser cannot keep one: a browser app needs a public client"
                       if routed else "")
                yield ("services", name, "env", key), (
                    f"{name} uses client {value}, a confidential client, but is not given "
                    f"its secret ({secret.get('secret')}/{secret.get('key')}){why}: every "
                    "token request fails in every mode"), \
                    (f"use a public client with PKCE for {name}" if routed else
                     f"add the client secret: {{secret: {secret.get('secret')}, key: "
                     f"{secret.get('key')}}}")


@rule("redirect-on-another-host", "a client's redirect URI on a host its app does not serve")
def redirect_on_another_host(c: Ctx):
    ident = c.data.get("identity") or {}
    clients = ident.get("clients") or {}
    routes = c.stack.routes()
    owner = {r.name: r.service for r in routes.values()}
    users: dict[str, set[str]] = {}
    for name, svc in c.services.items():
        for key, value in (svc.get("env") or {}).items():
            if re.search(r"CLIENT_?ID$", key) and isinstance(value, str) and value in clients:
                users.setdefault(value, set()).add(name)
    for cid, cl in clients.items():
        apps = {n for n in users.get(cid, set()) if n in owner.values()}
        if not apps:
            continue
        for f in ("redirect_uris", "post_logout_redirect_uris", "web_origins"):
            for i, value in enumerate((cl or {}).get(f) or []):
                for r in re.findall(r"\$\{route:([^}/]+)\}", str(value)):
                    if r in owner and owner[r] not in apps:
                        yield ("identity", "clients", cid, f, i), (
                            f"client {cid} is used by {', '.join(sorted(apps))}, but its "
                            f"{f} entry '{value}' is on {owner[r]}'s route: the provider "
                            "refuses the app's own origin, in every mode"), \
                            f"use ${{route:{next(k for k, v in owner.items() if v in apps)}}}"
