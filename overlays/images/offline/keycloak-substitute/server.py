#!/usr/bin/env python3
"""keycloak-substitute-oidc: a small OpenID Provider for parity's offline image
profile, where no Keycloak distribution can be downloaded. It is NOT Keycloak: it
serves the part of Keycloak's interface the stack and its checks use, so the same
model config works unchanged.

What it reads, as Keycloak does:

* the realm import files ``/opt/keycloak/data/import/*.json`` (``--import-dir``),
  with ``${VAR}`` / ``${VAR:default}`` placeholders taken from the environment;
* ``KC_HOSTNAME``: the browser-facing base URL (``https://auth.parity.localhost``);
  each realm's issuer is ``KC_HOSTNAME/realms/<realm>`` and every endpoint is under
  it. Without it the URL comes from the request (``X-Forwarded-*`` when
  ``KC_PROXY_HEADERS`` is set).
* Keycloak's own arguments (``start-dev --import-realm`` ...) are accepted and
  ignored, so the model's ``args`` need not change.

What it serves, per realm (http port 8080):

* ``/realms/R/.well-known/openid-configuration`` — discovery
* ``/realms/R/protocol/openid-connect/certs`` — JWKS (an RS256 key made at start)
* ``/realms/R/protocol/openid-connect/token`` — ``client_credentials`` for
  confidential clients with ``serviceAccountsEnabled`` (client_secret_basic or
  client_secret_post), ``authorization_code`` (PKCE S256/plain) and
  ``refresh_token``
* ``/realms/R/protocol/openid-connect/auth`` — authorization code flow that
  approves the fixed dev user ``dev`` without a login page
* ``/realms/R/protocol/openid-connect/userinfo``, ``.../token/introspect``,
  ``.../logout``, and ``/realms/R`` (realm public info)

and on the management port 9000: ``/health/ready`` (200 ``{"status": "UP"}`` once
every realm is loaded), ``/health/live``, ``/health/started``, ``/health``.

Access tokens are RS256 JWTs with iss, sub (``service-account-<clientId>`` for a
client's service account), aud (the client's ``oidc-audience-mapper`` audiences,
else its clientId), azp, exp, iat, jti, scope and typ=Bearer. Errors are RFC 6749
JSON. One log line per request; secrets, tokens and codes are never logged.
State (keys, codes, refresh tokens) lives in memory: a restart invalidates tokens.

Needs Python 3.9+, PyJWT and cryptography (Debian: python3-jwt, python3-cryptography).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import glob
import hashlib
import hmac
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, quote, unquote, unquote_plus, urlencode, urlsplit

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

NAME = "keycloak-substitute-oidc"
VERSION = "0.1.0"
DEFAULT_IMPORT_DIR = "/opt/keycloak/data/import"
#: Keycloak's defaults (seconds)
ACCESS_TOKEN_LIFESPAN = 300
ACCESS_CODE_LIFESPAN = 60
SSO_SESSION_IDLE = 1800
STANDARD_SCOPES = ("openid", "profile", "email", "roles", "web-origins", "acr", "basic",
                   "address", "phone", "offline_access", "microprofile-jwt",
                   "organization")
DEFAULT_TOKEN_SCOPES = ("profile", "email")
MAX_BODY = 64 * 1024
#: realm-relative paths (for 405 vs 404)
KNOWN_PATHS = frozenset({"", "/", "/.well-known/openid-configuration"} | {
    f"/protocol/openid-connect/{p}" for p in
    ("certs", "token", "token/introspect", "userinfo", "auth", "logout")})
_PKCE_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} {message}\n")
    sys.stderr.flush()


# --------------------------------------------------------------------------- realm model

class OAuthError(Exception):
    """An RFC 6749 error response."""

    def __init__(self, error: str, description: str = "", status: int = 400,
                 headers: dict[str, str] | None = None):
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}

    def body(self) -> dict:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


@dataclass
class Client:
    client_id: str
    secret: str | None
    public: bool
    bearer_only: bool
    service_accounts: bool
    standard_flow: bool
    enabled: bool
    redirect_uris: tuple[str, ...]
    web_origins: tuple[str, ...]
    post_logout_redirect_uris: tuple[str, ...]
    audiences: tuple[str, ...]
    scopes: tuple[str, ...]

    @property
    def confidential(self) -> bool:
        return not self.public and not self.bearer_only

    def redirect_allowed(self, uri: str) -> bool:
        return _uri_allowed(uri, self.redirect_uris)


@dataclass
class User:
    username: str
    user_id: str
    email: str
    first_name: str
    last_name: str


@dataclass
class Realm:
    name: str
    enabled: bool
    clients: dict[str, Client]
    user: User
    access_token_lifespan: int = ACCESS_TOKEN_LIFESPAN
    access_code_lifespan: int = ACCESS_CODE_LIFESPAN
    session_idle: int = SSO_SESSION_IDLE
    key: rsa.RSAPrivateKey | None = None
    kid: str = ""
    source: str = ""

    def jwk(self) -> dict:
        assert self.key is not None
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        data.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return data


def _uri_allowed(uri: str, patterns: tuple[str, ...]) -> bool:
    for p in patterns:
        if p == "*" or p == uri:
            return True
        if p.endswith("*") and uri.startswith(p[:-1]):
            return True
    return False


def substitute(text: str, env: dict[str, str]) -> tuple[str, list[str]]:
    """Replace ``${VAR}`` / ``${VAR:default}`` from ``env`` (as Keycloak's import does);
    an unknown variable without a default stays as written. Returns the names of
    those left unresolved."""
    missing: list[str] = []

    def repl(m: re.Match) -> str:
        name, default = m.group(1), m.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        missing.append(name)
        return m.group(0)

    return _PLACEHOLDER.sub(repl, text), missing


def _str_list(value, where: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if not isinstance(value, list) or not all(isinstance(v, str) for v in value):
        raise ValueError(f"{where} must be a list of strings")
    return tuple(value)


def _audiences(mappers: list | None) -> list[str]:
    out: list[str] = []
    for m in mappers or []:
        if not isinstance(m, dict) or m.get("protocolMapper") != "oidc-audience-mapper":
            continue
        cfg = m.get("config") or {}
        if str(cfg.get("access.token.claim", "true")).lower() != "true":
            continue
        for key in ("included.client.audience", "included.custom.audience"):
            if cfg.get(key):
                out.append(str(cfg[key]))
    return out


def parse_realm(data: dict, source: str) -> Realm:
    if not isinstance(data, dict) or not isinstance(data.get("realm"), str) \
            or not data["realm"]:
        raise ValueError(f"{source}: not a realm representation (no 'realm' name)")
    name = data["realm"]
    # client scopes with audience mappers, applied to clients that list them
    scope_audiences: dict[str, list[str]] = {}
    for cs in data.get("clientScopes") or []:
        if isinstance(cs, dict) and cs.get("name"):
            scope_audiences[cs["name"]] = _audiences(cs.get("protocolMappers"))
    clients: dict[str, Client] = {}
    for i, c in enumerate(data.get("clients") or []):
        where = f"{source}: clients[{i}]"
        if not isinstance(c, dict) or not isinstance(c.get("clientId"), str):
            raise ValueError(f"{where}: no clientId")
        public = bool(c.get("publicClient", False))
        bearer_only = bool(c.get("bearerOnly", False))
        secret = c.get("secret")
        if secret is not None and not isinstance(secret, str):
            raise ValueError(f"{where}: secret must be a string")
        if not public and not bearer_only and not secret:
            secret = secrets.token_urlsafe(32)  # Keycloak generates one; nobody knows it
        default_scopes = _str_list(c.get("defaultClientScopes"), f"{where}.defaultClientScopes")
        optional_scopes = _str_list(c.get("optionalClientScopes"),
                                    f"{where}.optionalClientScopes")
        aud = _audiences(c.get("protocolMappers"))
        for s in default_scopes:
            aud += scope_audiences.get(s, [])
        attrs = c.get("attributes") or {}
        post_logout = tuple(u for u in str(attrs.get("post.logout.redirect.uris", "+"))
                            .split("##") if u)
        redirect = _str_list(c.get("redirectUris"), f"{where}.redirectUris")
        if "+" in post_logout:
            post_logout = tuple(u for u in post_logout if u != "+") + redirect
        clients[c["clientId"]] = Client(
            client_id=c["clientId"], secret=secret, public=public, bearer_only=bearer_only,
            service_accounts=bool(c.get("serviceAccountsEnabled", False)),
            standard_flow=bool(c.get("standardFlowEnabled", True)),
            enabled=bool(c.get("enabled", True)),
            redirect_uris=redirect,
            web_origins=_str_list(c.get("webOrigins"), f"{where}.webOrigins"),
            post_logout_redirect_uris=post_logout,
            audiences=tuple(dict.fromkeys(aud)),
            scopes=tuple(dict.fromkeys((*default_scopes, *optional_scopes,
                                        *scope_audiences))),
        )
    user = User("dev", str(uuid.uuid5(uuid.NAMESPACE_URL, f"parity-oidc/{name}/dev")),
                "dev@parity.localhost", "Dev", "User")
    for u in data.get("users") or []:
        if isinstance(u, dict) and u.get("username") == "dev":
            user = User("dev", str(u.get("id") or user.user_id), str(u.get("email") or
                        user.email), str(u.get("firstName") or "Dev"),
                        str(u.get("lastName") or "User"))
    return Realm(
        name=name, enabled=bool(data.get("enabled", True)), clients=clients, user=user,
        access_token_lifespan=int(data.get("accessTokenLifespan") or ACCESS_TOKEN_LIFESPAN),
        access_code_lifespan=int(data.get("accessCodeLifespan") or ACCESS_CODE_LIFESPAN),
        session_idle=int(data.get("ssoSessionIdleTimeout") or SSO_SESSION_IDLE),
        source=source,
    )


def load_realms(import_dir: str, env: dict[str, str]) -> dict[str, Realm]:
    realms: dict[str, Realm] = {}
    files = sorted(glob.glob(os.path.join(import_dir, "*.json")))
    for path in files:
        with open(path, encoding="utf-8") as fh:
            text, missing = substitute(fh.read(), env)
        for name in sorted(set(missing)):
            log(f"warning: {path}: ${{{name}}} is not set in the environment; kept as written")
        try:
            data = json.loads(text)
        except json.JSONDecodeError as exc:
            raise ValueError(f"{path}: not JSON ({exc.msg} at line {exc.lineno})") from None
        for item in data if isinstance(data, list) else [data]:
            realm = parse_realm(item, path)
            if realm.name in realms:
                raise ValueError(f"{path}: realm '{realm.name}' is also in "
                                 f"{realms[realm.name].source}")
            realm.key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
            realm.kid = secrets.token_urlsafe(16)
            realms[realm.name] = realm
    return realms


# --------------------------------------------------------------------------- provider

@dataclass
class Grant:
    realm: str
    client_id: str
    scope: str
    sid: str
    expires: float
    auth_time: int
    redirect_uri: str | None = None
    nonce: str | None = None
    challenge: str | None = None
    method: str | None = None


@dataclass
class Provider:
    realms: dict[str, Realm]
    hostname: str | None = None         # KC_HOSTNAME
    proxy_headers: bool = False         # KC_PROXY_HEADERS set: trust X-Forwarded-*
    codes: dict[str, Grant] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    lock: threading.Lock = field(default_factory=threading.Lock)

    # ---- URLs

    def base_url(self, headers) -> str:
        if self.hostname:
            h = self.hostname.rstrip("/")
            if "://" in h:
                return h
            return f"{self._scheme(headers)}://{h}"
        host = headers.get("Host", "localhost")
        if self.proxy_headers and headers.get("X-Forwarded-Host"):
            host = headers["X-Forwarded-Host"].split(",")[0].strip()
        return f"{self._scheme(headers)}://{host}"

    def _scheme(self, headers) -> str:
        if self.proxy_headers and headers.get("X-Forwarded-Proto"):
            return headers["X-Forwarded-Proto"].split(",")[0].strip()
        return "http"

    def issuer(self, realm: Realm, headers) -> str:
        return f"{self.base_url(headers)}/realms/{quote(realm.name, safe='')}"

    def discovery(self, realm: Realm, headers) -> dict:
        iss = self.issuer(realm, headers)
        oidc = f"{iss}/protocol/openid-connect"
        return {
            "issuer": iss,
            "authorization_endpoint": f"{oidc}/auth",
            "token_endpoint": f"{oidc}/token",
            "introspection_endpoint": f"{oidc}/token/introspect",
            "userinfo_endpoint": f"{oidc}/userinfo",
            "end_session_endpoint": f"{oidc}/logout",
            "jwks_uri": f"{oidc}/certs",
            "grant_types_supported": ["authorization_code", "client_credentials",
                                      "refresh_token"],
            "response_types_supported": ["code"],
            "response_modes_supported": ["query", "fragment"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "token_endpoint_auth_methods_supported": ["client_secret_basic",
                                                      "client_secret_post", "none"],
            "introspection_endpoint_auth_methods_supported": ["client_secret_basic",
                                                              "client_secret_post"],
            "code_challenge_methods_supported": ["S256", "plain"],
            "scopes_supported": list(STANDARD_SCOPES),
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                                 "azp", "preferred_username", "email", "email_verified",
                                 "name", "given_name", "family_name"],
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": f"{NAME} {VERSION} (parity offline profile; not "
                                     "Keycloak)",
        }

    # ---- clients

    def authenticate(self, realm: Realm, headers, form: dict[str, str], *,
                     allow_public: bool) -> Client:
        """RFC 6749 2.3: client_secret_basic, client_secret_post, or (public
        clients, where allowed) client_id alone."""
        basic = None
        auth = headers.get("Authorization", "")
        if auth[:6].lower() == "basic ":
            try:
                raw = base64.b64decode(auth[6:].strip(), validate=True).decode("utf-8")
                cid, sep, secret = raw.partition(":")
                if not sep:
                    raise ValueError
                basic = (unquote_plus(cid), unquote_plus(secret))
            except (binascii.Error, UnicodeDecodeError, ValueError):
                raise self._invalid_client(realm, True, "malformed Basic credentials")
        if basic and "client_secret" in form:
            raise OAuthError("invalid_request", "more than one client authentication "
                             "method was used")
        if basic:
            cid, secret = basic
            if form.get("client_id") not in (None, cid):
                raise OAuthError("invalid_request", "client_id does not match the "
                                 "authenticated client")
        else:
            cid, secret = form.get("client_id"), form.get("client_secret")
        if not cid:
            raise self._invalid_client(realm, False, "client authentication is required")
        client = realm.clients.get(cid)
        if client is None or not client.enabled:
            raise self._invalid_client(realm, basic is not None,
                                       "Invalid client or Invalid client credentials")
        if client.bearer_only:
            raise OAuthError("unauthorized_client", "bearer-only clients cannot obtain "
                             "tokens")
        if client.public:
            if secret and not allow_public:
                raise self._invalid_client(realm, basic is not None,
                                           "Invalid client or Invalid client credentials")
            if not allow_public:
                raise OAuthError("unauthorized_client", "public clients cannot use this "
                                 "grant")
            return client
        if secret is None or client.secret is None or not hmac.compare_digest(
                secret.encode(), client.secret.encode()):
            raise self._invalid_client(realm, basic is not None,
                                       "Invalid client or Invalid client credentials")
        return client

    @staticmethod
    def _invalid_client(realm: Realm, basic: bool, description: str) -> OAuthError:
        headers = {"WWW-Authenticate": f'Basic realm="{realm.name}"'} if basic else {}
        return OAuthError("invalid_client", description, 401, headers)

    def _scope(self, client: Client, requested: str | None) -> str:
        out = list(DEFAULT_TOKEN_SCOPES)
        allowed = set(STANDARD_SCOPES) | set(client.scopes)
        for s in (requested or "").split():
            if s not in allowed:
                raise OAuthError("invalid_scope", f"scope '{s}' is not allowed for "
                                 "this client")
            if s == "openid" and s not in out:
                out.insert(0, s)
            elif s not in out:
                out.append(s)
        return " ".join(out)

    # ---- tokens

    def _sign(self, realm: Realm, claims: dict) -> str:
        return jwt.encode(claims, realm.key, algorithm="RS256",
                          headers={"kid": realm.kid, "typ": "JWT"})

    def _access_token(self, realm: Realm, client: Client, headers, scope: str,
                      user: User | None, sid: str | None, now: int) -> str:
        aud = list(client.audiences) or [client.client_id]
        claims = {
            "exp": now + realm.access_token_lifespan, "iat": now,
            "jti": str(uuid.uuid4()), "iss": self.issuer(realm, headers),
            "aud": aud[0] if len(aud) == 1 else aud,
            "typ": "Bearer", "azp": client.client_id, "scope": scope,
        }
        if user is None:
            claims.update({"sub": f"service-account-{client.client_id}",
                           "preferred_username": f"service-account-{client.client_id}",
                           "client_id": client.client_id})
        else:
            claims.update({"sub": user.user_id, "sid": sid,
                           "preferred_username": user.username,
                           **self._profile(user, scope)})
        return self._sign(realm, claims)

    @staticmethod
    def _profile(user: User, scope: str) -> dict:
        out: dict = {}
        scopes = scope.split()
        if "email" in scopes:
            out.update({"email": user.email, "email_verified": True})
        if "profile" in scopes:
            out.update({"name": f"{user.first_name} {user.last_name}",
                        "given_name": user.first_name, "family_name": user.last_name,
                        "preferred_username": user.username})
        return out

    def token(self, realm: Realm, headers, form: dict[str, str]) -> dict:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing form parameter: grant_type")
        now = int(time.time())
        if grant_type == "client_credentials":
            client = self.authenticate(realm, headers, form, allow_public=False)
            if not client.service_accounts:
                raise OAuthError("unauthorized_client", "Client not enabled to retrieve "
                                 "service account")
            scope = self._scope(client, form.get("scope"))
            return {"access_token": self._access_token(realm, client, headers, scope, None,
                                                       None, now),
                    "expires_in": realm.access_token_lifespan, "refresh_expires_in": 0,
                    "token_type": "Bearer", "not-before-policy": 0, "scope": scope}
        if grant_type == "authorization_code":
            client = self.authenticate(realm, headers, form, allow_public=True)
            code = form.get("code")
            if not code:
                raise OAuthError("invalid_request", "Missing parameter: code")
            with self.lock:
                grant = self.codes.pop(code, None)
            if grant is None or grant.realm != realm.name or grant.expires < time.time():
                raise OAuthError("invalid_grant", "Code not valid")
            if grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Code was issued to another client")
            if grant.redirect_uri is not None and form.get("redirect_uri") != grant.redirect_uri:
                raise OAuthError("invalid_grant", "Incorrect redirect_uri")
            verifier = form.get("code_verifier")
            if grant.challenge is not None:
                if not verifier or not _PKCE_RE.match(verifier):
                    raise OAuthError("invalid_grant", "PKCE code verifier not specified "
                                     "or malformed")
                if not hmac.compare_digest(_pkce(verifier, grant.method or "plain"),
                                           grant.challenge):
                    raise OAuthError("invalid_grant", "PKCE verification failed")
            elif verifier:
                raise OAuthError("invalid_grant", "PKCE code verifier given but the "
                                 "authorization request had no code_challenge")
            return self._user_tokens(realm, client, headers, grant, now)
        if grant_type == "refresh_token":
            client = self.authenticate(realm, headers, form, allow_public=True)
            token = form.get("refresh_token")
            if not token:
                raise OAuthError("invalid_request", "Missing parameter: refresh_token")
            with self.lock:
                grant = self.refresh.get(token)
            if grant is None or grant.realm != realm.name or grant.expires < time.time() \
                    or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            scope = grant.scope
            if form.get("scope"):
                wanted = form["scope"].split()
                if not set(wanted) <= set(scope.split()):
                    raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            return self._user_tokens(realm, client, headers, grant, now, nonce=False)
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type '{grant_type}'")

    def _user_tokens(self, realm: Realm, client: Client, headers, grant: Grant, now: int,
                     nonce: bool = True) -> dict:
        user = realm.user
        access = self._access_token(realm, client, headers, grant.scope, user, grant.sid,
                                    now)
        refresh = secrets.token_urlsafe(32)
        with self.lock:
            self._expire()
            self.refresh[refresh] = Grant(realm.name, client.client_id, grant.scope,
                                          grant.sid, now + realm.session_idle,
                                          grant.auth_time)
        out = {"access_token": access, "expires_in": realm.access_token_lifespan,
               "refresh_token": refresh, "refresh_expires_in": realm.session_idle,
               "token_type": "Bearer", "not-before-policy": 0, "session_state": grant.sid,
               "scope": grant.scope}
        if "openid" in grant.scope.split():
            claims = {"exp": now + realm.access_token_lifespan, "iat": now,
                      "auth_time": grant.auth_time, "jti": str(uuid.uuid4()),
                      "iss": self.issuer(realm, headers), "aud": client.client_id,
                      "sub": user.user_id, "typ": "ID", "azp": client.client_id,
                      "sid": grant.sid, "at_hash": _at_hash(access),
                      "preferred_username": user.username,
                      **self._profile(user, grant.scope)}
            if nonce and grant.nonce:
                claims["nonce"] = grant.nonce
            out["id_token"] = self._sign(realm, claims)
        return out

    def _expire(self) -> None:
        now = time.time()
        for store in (self.codes, self.refresh):
            for k in [k for k, g in store.items() if g.expires < now]:
                del store[k]

    def authorize(self, realm: Realm, headers, params: dict[str, str]) -> str:
        """The redirect URL for an authorization request (the dev user approves
        everything). Raises OAuthError for errors that must not redirect."""
        client = realm.clients.get(params.get("client_id") or "")
        if client is None or not client.enabled:
            raise OAuthError("invalid_request", "Client not found")
        redirect = params.get("redirect_uri")
        if redirect is None:
            exact = [u for u in client.redirect_uris if "*" not in u]
            if len(client.redirect_uris) != 1 or not exact:
                raise OAuthError("invalid_request", "Invalid parameter: redirect_uri")
            target = exact[0]
        elif not client.redirect_allowed(redirect):
            raise OAuthError("invalid_request", "Invalid parameter: redirect_uri")
        else:
            target = redirect
        mode = params.get("response_mode") or "query"
        if mode not in ("query", "fragment"):
            raise OAuthError("invalid_request", "Invalid parameter: response_mode")
        iss = self.issuer(realm, headers)

        def back(values: dict) -> str:
            if params.get("state") is not None:
                values["state"] = params["state"]
            values["iss"] = iss
            sep = "#" if mode == "fragment" else ("&" if "?" in target else "?")
            return target + sep + urlencode(values)

        def fail(error: str, description: str) -> str:
            return back({"error": error, "error_description": description})

        if params.get("response_type") != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported")
        if client.bearer_only or not client.standard_flow:
            return fail("unauthorized_client", "Client is not allowed to initiate browser "
                        "login with the given response_type")
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if method is not None and method not in ("S256", "plain"):
            return fail("invalid_request", "Invalid parameter: code_challenge_method")
        if method is not None and challenge is None:
            return fail("invalid_request", "Missing parameter: code_challenge")
        if challenge is not None and not _PKCE_RE.match(challenge):
            return fail("invalid_request", "Invalid parameter: code_challenge")
        try:
            scope = self._scope(client, params.get("scope"))
        except OAuthError as exc:
            return fail(exc.error, exc.description)
        now = int(time.time())
        code = secrets.token_urlsafe(32)
        sid = str(uuid.uuid4())
        with self.lock:
            self._expire()
            self.codes[code] = Grant(realm.name, client.client_id, scope, sid,
                                     now + realm.access_code_lifespan, now,
                                     redirect_uri=redirect, nonce=params.get("nonce"),
                                     challenge=challenge,
                                     method=(method or "plain") if challenge else None)
        return back({"code": code, "session_state": sid})

    def verify(self, realm: Realm, headers, token: str) -> dict:
        try:
            return jwt.decode(token, realm.key.public_key(), algorithms=["RS256"],
                              issuer=self.issuer(realm, headers),
                              options={"verify_aud": False})
        except jwt.PyJWTError:
            raise OAuthError("invalid_token", "Token verification failed", 401,
                             {"WWW-Authenticate": f'Bearer realm="{realm.name}", '
                                                  'error="invalid_token"'}) from None

    def userinfo(self, realm: Realm, headers, token: str | None) -> dict:
        if not token:
            raise OAuthError("invalid_token", "Missing bearer token", 401,
                             {"WWW-Authenticate": f'Bearer realm="{realm.name}"'})
        claims = self.verify(realm, headers, token)
        if claims.get("typ") != "Bearer":
            raise OAuthError("invalid_token", "Not an access token", 401,
                             {"WWW-Authenticate": f'Bearer realm="{realm.name}", '
                                                  'error="invalid_token"'})
        keep = ("sub", "preferred_username", "email", "email_verified", "name",
                "given_name", "family_name")
        return {k: claims[k] for k in keep if k in claims}

    def introspect(self, realm: Realm, headers, form: dict[str, str]) -> dict:
        self.authenticate(realm, headers, form, allow_public=False)
        token = form.get("token")
        if not token:
            raise OAuthError("invalid_request", "Missing parameter: token")
        try:
            claims = self.verify(realm, headers, token)
        except OAuthError:
            return {"active": False}
        return {"active": True, **claims, "client_id": claims.get("azp"),
                "token_type": claims.get("typ"), "username": claims.get("preferred_username")}

    def cors_origin(self, realm: Realm, origin: str | None) -> str | None:
        if not origin:
            return None
        for c in realm.clients.values():
            for w in c.web_origins:
                if w == "*" or w == origin:
                    return origin
                if w == "+" and any(_origin(u) == origin for u in c.redirect_uris):
                    return origin
        return None


def _origin(uri: str) -> str:
    parts = urlsplit(uri.rstrip("*"))
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _pkce(verifier: str, method: str) -> str:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier


def _at_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


# --------------------------------------------------------------------------- HTTP

class Handler(BaseHTTPRequestHandler):
    server_version = f"{NAME}/{VERSION}"
    sys_version = ""
    protocol_version = "HTTP/1.1"

    provider: Provider  # set on the subclass per server
    app: "App"

    # one line per request, written by send_response's caller below; the default
    # log_message (which includes the query string) is silenced
    def log_message(self, fmt, *args):  # noqa: D102
        return

    def _log(self, status: int, note: str = "") -> None:
        path = urlsplit(self.path).path  # never the query: codes and states live there
        took = (time.monotonic() - self._started) * 1000
        extra = f" {note}" if note else ""
        log(f'{self.client_address[0]} "{self.command} {path}" {status} {took:.0f}ms{extra}')

    def _send(self, status: int, body: bytes | None, content_type: str = "application/json",
              headers: dict[str, str] | None = None, note: str = "") -> None:
        self.send_response(status)
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body or b"")))
        # Log before the response leaves: a client that has its answer can rely on
        # the line being in the log already (the log is a contract tests read).
        self._log(status, note)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _json(self, status: int, data, headers: dict[str, str] | None = None,
              note: str = "", no_store: bool = False) -> None:
        h = dict(headers or {})
        if no_store:
            h.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        self._send(status, json.dumps(data).encode(), "application/json", h, note)

    def _form(self) -> dict[str, str]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        length = int(self.headers.get("Content-Length") or 0)
        if length > MAX_BODY:
            raise OAuthError("invalid_request", "request body too large", 413)
        raw = self.rfile.read(length) if length else b""
        if ctype != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "expected application/x-www-form-urlencoded")
        return _single(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def handle_one_request(self):  # noqa: D102
        self._started = time.monotonic()
        super().handle_one_request()

    def do_HEAD(self):  # noqa: D102
        self.do_GET()

    def do_GET(self):  # noqa: D102
        self._dispatch()

    def do_POST(self):  # noqa: D102
        self._dispatch()

    def do_OPTIONS(self):  # noqa: D102
        self._dispatch()

    def _dispatch(self) -> None:
        try:
            self.route()
        except OAuthError as exc:
            self._json(exc.status, exc.body(), exc.headers, note=f"error={exc.error}",
                       no_store=True)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the server
            log(f"internal error: {type(exc).__name__}: {exc}")
            self._json(500, {"error": "server_error"})

    def route(self) -> None:
        raise NotImplementedError


class OIDCHandler(Handler):
    def route(self) -> None:
        url = urlsplit(self.path)
        path = url.path
        if path in ("/", ""):
            self._json(200, {"server": NAME, "version": VERSION,
                             "realms": sorted(self.provider.realms)})
            return
        m = re.match(r"^/realms/([^/]+)(/.*)?$", path)
        if not m:
            raise OAuthError("not_found", "Unknown path", 404)
        realm = self.provider.realms.get(unquote(m.group(1)))
        if realm is None or not realm.enabled:
            raise OAuthError("not_found", "Realm does not exist", 404)
        rest = m.group(2) or ""
        cors = {}
        origin = self.provider.cors_origin(realm, self.headers.get("Origin"))
        if origin:
            cors = {"Access-Control-Allow-Origin": origin, "Vary": "Origin",
                    "Access-Control-Allow-Credentials": "true"}
        if self.command == "OPTIONS":
            self._send(204 if origin else 403, None, headers={
                **cors, "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "3600"} if origin else {})
            return
        p = self.provider
        oidc = "/protocol/openid-connect"
        get = self.command in ("GET", "HEAD")
        post = self.command == "POST"
        try:
            if rest in ("", "/") and get:
                assert realm.key is not None
                pem = realm.key.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
                iss = p.issuer(realm, self.headers)
                self._json(200, {"realm": realm.name,
                                 "public_key": base64.b64encode(pem).decode(),
                                 "token-service": f"{iss}{oidc}",
                                 "account-service": f"{iss}/account",
                                 "tokens-not-before": 0}, cors)
            elif rest == "/.well-known/openid-configuration" and get:
                self._json(200, p.discovery(realm, self.headers), cors)
            elif rest == f"{oidc}/certs" and get:
                self._json(200, {"keys": [realm.jwk()]}, cors)
            elif rest == f"{oidc}/token" and post:
                form = self._form()
                out = p.token(realm, self.headers, form)
                self._json(200, out, cors, note=f"grant={form.get('grant_type')} "
                           f"client={_client_hint(self.headers, form)}", no_store=True)
            elif rest == f"{oidc}/token/introspect" and post:
                self._json(200, p.introspect(realm, self.headers, self._form()), cors,
                           no_store=True)
            elif rest == f"{oidc}/userinfo" and (get or post):
                token = None
                auth = self.headers.get("Authorization", "")
                if auth[:7].lower() == "bearer ":
                    token = auth[7:].strip()
                elif post:
                    token = self._form().get("access_token")
                self._json(200, p.userinfo(realm, self.headers, token), cors, no_store=True)
            elif rest == f"{oidc}/auth" and (get or post):
                params = _single(parse_qs(url.query, keep_blank_values=True)) if get \
                    else self._form()
                location = p.authorize(realm, self.headers, params)
                self._send(302, None, headers={"Location": location,
                                               "Cache-Control": "no-store"},
                           note=f"client={params.get('client_id', '-')}")
            elif rest == f"{oidc}/logout" and (get or post):
                params = _single(parse_qs(url.query, keep_blank_values=True)) if get \
                    else self._form()
                target = params.get("post_logout_redirect_uri")
                client = realm.clients.get(params.get("client_id") or "")
                allowed = target and any(_uri_allowed(target, c.post_logout_redirect_uris)
                                         for c in ([client] if client else
                                                   realm.clients.values()))
                if target and not allowed:
                    raise OAuthError("invalid_request", "Invalid redirect uri")
                if target:
                    if params.get("state") is not None:
                        sep = "&" if "?" in target else "?"
                        target += sep + urlencode({"state": params["state"]})
                    self._send(302, None, headers={"Location": target})
                else:
                    self._send(200, b"You are logged out.\n", "text/plain; charset=utf-8")
            elif rest in KNOWN_PATHS:
                raise OAuthError("invalid_request", "Method not allowed", 405,
                                 {"Allow": "GET, POST"})
            else:
                raise OAuthError("not_found", "Unknown path", 404)
        except OAuthError as exc:
            exc.headers = {**cors, **exc.headers}
            raise


class ManagementHandler(Handler):
    def route(self) -> None:
        path = urlsplit(self.path).path.rstrip("/")
        if path in ("/health/live", "/health/started"):
            self._json(200, {"status": "UP", "checks": []})
        elif path in ("/health/ready", "/health"):
            if self.app.ready.is_set():
                self._json(200, {"status": "UP", "checks": []})
            else:
                self._json(503, {"status": "DOWN", "checks": []})
        else:
            raise OAuthError("not_found", "Unknown path", 404)


def _single(values: dict[str, list[str]]) -> dict[str, str]:
    out = {}
    for k, v in values.items():
        if len(v) != 1:
            raise OAuthError("invalid_request", f"parameter '{k}' is repeated")
        out[k] = v[0]
    return out


def _client_hint(headers, form: dict[str, str]) -> str:
    """The client id of a token request, for the log (never the secret)."""
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace")
            return unquote_plus(raw.split(":", 1)[0])[:64]
        except (binascii.Error, ValueError):
            return "?"
    return (form.get("client_id") or "-")[:64]


# --------------------------------------------------------------------------- app

class App:
    """The two listeners and the provider; ``start()`` returns once both listen."""

    def __init__(self, import_dir: str, env: dict[str, str] | None = None,
                 host: str = "0.0.0.0", http_port: int = 8080, management_port: int = 9000):
        self.import_dir = import_dir
        self.env = dict(os.environ if env is None else env)
        self.ready = threading.Event()
        proxy = bool(self.env.get("KC_PROXY_HEADERS"))
        self.provider = Provider({}, self.env.get("KC_HOSTNAME") or None, proxy)
        app = self
        self.mgmt = ThreadingHTTPServer((host, management_port),
                                        type("Mgmt", (ManagementHandler,), {"app": app}))
        self.http = ThreadingHTTPServer((host, http_port),
                                        type("OIDC", (OIDCHandler,), {
                                            "provider": self.provider, "app": app}))
        for s in (self.mgmt, self.http):
            s.daemon_threads = True
        self.serving: list[ThreadingHTTPServer] = []

    @property
    def http_port(self) -> int:
        return self.http.server_address[1]

    @property
    def management_port(self) -> int:
        return self.mgmt.server_address[1]

    def start(self) -> "App":
        self._serve(self.mgmt, "management")
        realms = load_realms(self.import_dir, self.env)
        self.provider.realms.update(realms)
        self._serve(self.http, "http")
        for r in realms.values():
            log(f"realm '{r.name}' loaded from {r.source}: {len(r.clients)} clients "
                f"(issuer {self.provider.hostname or '<from request>'}/realms/{r.name})")
        if not realms:
            log(f"warning: no realm files in {self.import_dir}")
        self.ready.set()
        return self

    def _serve(self, server: ThreadingHTTPServer, name: str) -> None:
        threading.Thread(target=server.serve_forever, name=name, daemon=True).start()
        self.serving.append(server)

    def stop(self) -> None:
        for s in (self.http, self.mgmt):
            if s in self.serving:  # shutdown() waits for a serve_forever loop
                s.shutdown()
            s.server_close()
        self.serving.clear()


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog=NAME, description=__doc__.split("\n\n")[0])
    parser.add_argument("--import-dir", default=DEFAULT_IMPORT_DIR)
    parser.add_argument("--bind", default="0.0.0.0")
    parser.add_argument("--http-port", type=int, default=8080)
    parser.add_argument("--management-port", type=int, default=9000)
    parser.add_argument("--version", action="version", version=f"{NAME} {VERSION}")
    args, keycloak_args = parser.parse_known_args(argv)
    if keycloak_args:
        log(f"ignoring Keycloak arguments: {' '.join(keycloak_args)}")
    try:
        app = App(args.import_dir, host=args.bind, http_port=args.http_port,
                  management_port=args.management_port)
    except OSError as exc:
        log(f"error: cannot listen: {exc}")
        return 1
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    try:
        app.start()
    except (OSError, ValueError) as exc:
        log(f"error: {exc}")
        app.stop()
        return 1
    log(f"{NAME} {VERSION} listening on {args.bind}:{app.http_port} (http) and "
        f"{args.bind}:{app.management_port} (management); this is a substitute for "
        "Keycloak in parity's offline image profile")
    while not stop.wait(1.0):
        pass
    log("stopping")
    app.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
