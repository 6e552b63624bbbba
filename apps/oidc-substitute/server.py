#!/usr/bin/env python3
"""keycloak-substitute-oidc: a small OpenID Provider for parity's offline image
profile, where no Keycloak distribution can be downloaded. It is NOT Keycloak: it
serves the part of Keycloak's interface the stack, its checks and a person in a
browser use, so the same model config (and the same browser script) works unchanged.

What it reads, as Keycloak does:

* the realm import files ``/opt/keycloak/data/import/*.json`` (``--import-dir``),
  with ``${VAR}`` / ``${VAR:default}`` placeholders taken from the environment. Of
  Keycloak's RealmRepresentation it uses: ``realm``, ``enabled``, ``sslRequired``,
  the lifespans (``accessTokenLifespan``, ``accessCodeLifespan``,
  ``accessCodeLifespanLogin``, ``ssoSessionIdleTimeout``, ``ssoSessionMaxLifespan``),
  ``loginWithEmailAllowed``, ``users`` (``id``, ``username``, ``enabled``, ``email``,
  ``emailVerified``, ``firstName``, ``lastName`` and ``credentials`` of type
  ``password`` with a clear ``value``), ``clients`` (``clientId``, ``enabled``,
  ``publicClient``, ``bearerOnly``, ``secret``, ``standardFlowEnabled``,
  ``serviceAccountsEnabled``, ``redirectUris``, ``webOrigins``, the attributes
  ``pkce.code.challenge.method`` and ``post.logout.redirect.uris``, and
  ``oidc-audience-mapper`` protocol mappers) and ``clientScopes`` with audience
  mappers. Passwords are kept only as salted PBKDF2 hashes in memory.
* ``KC_HOSTNAME``: the browser-facing base URL (``https://auth.parity.localhost``);
  each realm's issuer is ``KC_HOSTNAME/realms/<realm>`` and every endpoint is under
  it. Without it the URL comes from the request (``X-Forwarded-*`` when
  ``KC_PROXY_HEADERS`` is set).
* Keycloak's own arguments (``start-dev --import-realm`` ...) are accepted and
  ignored, so the model's ``args`` need not change.

What it serves, per realm (http port 8080):

* ``/realms/R/.well-known/openid-configuration`` — discovery
* ``/realms/R/protocol/openid-connect/certs`` — JWKS (an RS256 key made at start)
* ``/realms/R/protocol/openid-connect/auth`` — the authorization code flow for a
  person in a browser: a login page with Keycloak's element ids (``kc-form-login``,
  ``username``, ``password``, ``kc-login``, errors in ``input-error``), checked
  against the realm's users; an SSO session kept in Keycloak's cookies
  (``KEYCLOAK_IDENTITY``, ``KEYCLOAK_SESSION``, the pending login bound to
  ``AUTH_SESSION_ID``) so a second request skips the page (``prompt=login`` /
  ``max_age`` force it, ``prompt=none`` answers ``login_required``); PKCE enforced
  where the client asks for it; an unknown client or an unregistered redirect_uri
  gets Keycloak's HTML error page ("We are sorry...", ``kc-error-message``), never
  a redirect
* ``/realms/R/login-actions/authenticate`` — where the login form posts
* ``/realms/R/protocol/openid-connect/token`` — ``client_credentials`` for
  confidential clients with ``serviceAccountsEnabled`` (client_secret_basic or
  client_secret_post), ``authorization_code`` (PKCE S256/plain; a code used twice
  ends the session it came from) and ``refresh_token``; CORS for the requesting
  client's ``webOrigins``
* ``/realms/R/protocol/openid-connect/logout`` — RP-initiated logout
  (``id_token_hint``, ``client_id``, ``post_logout_redirect_uri``, ``state``; a
  confirmation page when Keycloak shows one), and the legacy ``refresh_token`` POST
* ``/realms/R/protocol/openid-connect/userinfo``, ``.../token/introspect`` and
  ``/realms/R`` (realm public info)

and on the management port 9000: ``/health/ready`` (200 ``{"status": "UP"}`` once
every realm is loaded), ``/health/live``, ``/health/started``, ``/health``.

Access tokens are RS256 JWTs with iss, sub (the user's ``id``, else a stable uuid5
of realm and username; ``service-account-<clientId>`` for a client's service
account), aud (the client's ``oidc-audience-mapper`` audiences, else its clientId),
azp, exp, iat, jti, sid, scope and typ=Bearer. Token endpoint errors are RFC 6749
JSON; what a browser is shown is HTML. One log line per request; passwords, secrets,
tokens, codes, cookies and query strings are never logged. State (keys, sessions,
codes, refresh tokens) lives in memory: a restart logs everybody out.

Needs Python 3.9+, PyJWT and cryptography (Debian: python3-jwt, python3-cryptography).
"""

from __future__ import annotations

import argparse
import base64
import binascii
import glob
import hashlib
import hmac
import html
import ipaddress
import json
import os
import re
import secrets
import signal
import sys
import threading
import time
import traceback
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
ACCESS_CODE_LIFESPAN_LOGIN = 1800
SSO_SESSION_IDLE = 1800
SSO_SESSION_MAX = 36000
STANDARD_SCOPES = ("openid", "profile", "email", "roles", "web-origins", "acr", "basic",
                   "address", "phone", "offline_access", "microprofile-jwt",
                   "organization")
DEFAULT_TOKEN_SCOPES = ("profile", "email")
MAX_BODY = 64 * 1024
#: pending logins / logout confirmations kept at most (the oldest go first)
MAX_PENDING = 10_000
PBKDF2_ITERATIONS = 100_000
OIDC = "/protocol/openid-connect"
LOGIN_ACTION = "/login-actions/authenticate"
LOGOUT_CONFIRM = f"{OIDC}/logout/logout-confirm"
#: realm-relative paths (for 405 vs 404)
KNOWN_PATHS = frozenset({"", "/", "/.well-known/openid-configuration", LOGIN_ACTION,
                         LOGOUT_CONFIRM} | {
    f"{OIDC}/{p}" for p in
    ("certs", "token", "token/introspect", "userinfo", "auth", "logout")})
#: the pages a browser is shown (errors are HTML there, not JSON)
BROWSER_PATHS = frozenset({f"{OIDC}/auth", LOGIN_ACTION, f"{OIDC}/logout", LOGOUT_CONFIRM})
_PKCE_RE = re.compile(r"^[A-Za-z0-9._~-]{43,128}$")
_PLACEHOLDER = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::([^}]*))?\}")
_TOKEN_RE = re.compile(r"^[A-Za-z0-9_-]{16,128}$")
_URI_BAD = re.compile(r"[\x00-\x20\x7f\"<>\\^`{|}]")
_URI_HEAD = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:(//[^/?#]*)?")
#: Keycloak's cookies
IDENTITY_COOKIE = "KEYCLOAK_IDENTITY"
SESSION_COOKIE = "KEYCLOAK_SESSION"
AUTH_SESSION_COOKIE = "AUTH_SESSION_ID"
#: Keycloak's messages (themes/.../login/messages/messages_en.properties)
MSG_INVALID_USER = "Invalid username or password."
MSG_ACCOUNT_DISABLED = "Account is disabled, contact your administrator."
MSG_CLIENT_NOT_FOUND = "Client not found."
MSG_CLIENT_DISABLED = "Client disabled."
MSG_BEARER_ONLY = "Bearer-only applications are not allowed to initiate browser login"
MSG_LOGIN_TIMEOUT = "Your login attempt timed out.  Login will start from the beginning."
MSG_COOKIE_NOT_FOUND = "Cookie not found. Please make sure cookies are enabled in your browser."
MSG_DIFFERENT_USER = ("You are already authenticated as different user '{0}' in this "
                      "session. Please sign out first.")
MSG_INVALID_REDIRECT = "Invalid redirect uri"
MSG_HTTPS_REQUIRED = "HTTPS required"
MSG_INVALID_REQUEST = "Invalid Request"
MSG_LOGGED_OUT = "You are logged out"
MSG_LOGOUT_FAILED = "Logout failed"
MSG_STANDARD_FLOW_DISABLED = ("Client is not allowed to initiate browser login with given "
                              "response_type. Standard flow is disabled for the client.")
ERROR_TITLE = "We are sorry..."


def log(message: str) -> None:
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    sys.stderr.write(f"{stamp} {message}\n")
    sys.stderr.flush()


def _safe(value: object, limit: int = 64) -> str:
    """A request-supplied value fit for one log line."""
    text = str(value)[:limit]
    return "".join(c if c.isprintable() and c != " " else "?" for c in text) or "-"


# --------------------------------------------------------------------------- realm model

class OAuthError(Exception):
    """An RFC 6749 error response."""

    def __init__(self, error: str, description: str = "", status: int = 400,
                 headers: dict[str, str] | None = None, note: str = ""):
        super().__init__(error)
        self.error = error
        self.description = description
        self.status = status
        self.headers = headers or {}
        self.note = note  # for the log line

    def body(self) -> dict:
        out = {"error": self.error}
        if self.description:
            out["error_description"] = self.description
        return out


class PageError(Exception):
    """An error a browser is shown as Keycloak's HTML error page (never a redirect)."""

    def __init__(self, message: str, status: int = 400, note: str = ""):
        super().__init__(message)
        self.message = message
        self.status = status
        self.note = note


def _hash_password(password: str, salt: bytes) -> bytes:
    return hashlib.pbkdf2_hmac("sha256", password.encode("utf-8", "surrogatepass"), salt,
                               PBKDF2_ITERATIONS)


_DUMMY_SALT = secrets.token_bytes(16)
_DUMMY_HASH = _hash_password(secrets.token_urlsafe(16), _DUMMY_SALT)


@dataclass
class User:
    username: str               # lower case, as Keycloak stores it
    user_id: str
    email: str | None = None    # lower case
    email_verified: bool = False
    first_name: str = ""
    last_name: str = ""
    enabled: bool = True
    salt: bytes = b""
    password_hash: bytes | None = field(default=None, repr=False)

    def check_password(self, password: str) -> bool:
        """Constant time; as long for a user without a password as with one."""
        if self.password_hash is None or not password:
            hmac.compare_digest(_hash_password(password, _DUMMY_SALT), _DUMMY_HASH)
            return False
        return hmac.compare_digest(_hash_password(password, self.salt), self.password_hash)


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
    pkce_method: str | None = None

    @property
    def confidential(self) -> bool:
        return not self.public and not self.bearer_only

    def redirect_allowed(self, uri: str) -> bool:
        return _uri_allowed(uri, self.redirect_uris)

    def single_redirect(self) -> str | None:
        """The redirect URI used when a (non-OpenID) request names none, as Keycloak's
        RedirectUtils: the only registered one, without its ``/*``."""
        if len(self.redirect_uris) != 1:
            return None
        uri = self.redirect_uris[0]
        if "/*" in uri:
            uri = uri[:uri.index("/*")]
        return uri if "*" not in uri and urlsplit(uri).scheme else None

    def allowed_origins(self) -> list[str]:
        """``webOrigins`` resolved: ``+`` is the origins of the redirect URIs."""
        out: list[str] = []
        for w in self.web_origins:
            if w == "+":
                out += [o for o in (_origin(u) for u in self.redirect_uris) if o]
            elif w:
                out.append(w.rstrip("/"))
        return list(dict.fromkeys(out))

    def origin_allowed(self, origin: str | None) -> bool:
        if not origin:
            return False
        allowed = self.allowed_origins()
        return "*" in allowed or origin in allowed


@dataclass
class Realm:
    name: str
    enabled: bool
    clients: dict[str, Client]
    users: dict[str, User] = field(default_factory=dict)         # by username
    emails: dict[str, User] = field(default_factory=dict)        # by email
    by_id: dict[str, User] = field(default_factory=dict)         # by user id
    ssl_required: str = "external"
    login_with_email: bool = True
    access_token_lifespan: int = ACCESS_TOKEN_LIFESPAN
    access_code_lifespan: int = ACCESS_CODE_LIFESPAN
    login_lifespan: int = ACCESS_CODE_LIFESPAN_LOGIN
    session_idle: int = SSO_SESSION_IDLE
    session_max: int = SSO_SESSION_MAX
    key: rsa.RSAPrivateKey | None = None
    kid: str = ""
    source: str = ""

    def jwk(self) -> dict:
        assert self.key is not None
        data = json.loads(jwt.algorithms.RSAAlgorithm.to_jwk(self.key.public_key()))
        data.update({"kid": self.kid, "use": "sig", "alg": "RS256"})
        return data

    def find_user(self, name: str) -> User | None:
        """As Keycloak's login form: by email when allowed and it looks like one, else
        by username; both case-insensitive."""
        name = name.strip().lower()
        if not name:
            return None
        if self.login_with_email and "@" in name and name in self.emails:
            return self.emails[name]
        return self.users.get(name)

    def user_by_id(self, user_id: str | None) -> User | None:
        return self.by_id.get(user_id or "")


def _uri_allowed(uri: str, patterns: tuple[str, ...]) -> bool:
    """Keycloak's redirect URI match: exact, or a pattern ending in ``*`` that the URI
    (without its query) starts with; ``https://h/*`` also matches ``https://h``. The
    URI is compared as sent (a URI whose parts a browser could read differently - with
    user info, a fragment, a backslash, white space - is refused)."""
    if not uri or _URI_BAD.search(uri):
        return False
    try:
        parts = urlsplit(uri)
    except ValueError:
        return False
    if "@" in parts.netloc or "#" in uri or not parts.scheme:
        return False
    head = _URI_HEAD.match(uri)
    if head:  # scheme and host compare case-insensitively
        uri = head.group(0).lower() + uri[head.end():]
    for p in patterns:
        if p == "*" or p == uri:
            return True
        if p.endswith("*") and "?" not in p:
            prefix = p[:-1]
            bare = uri.split("?", 1)[0]
            if bare.startswith(prefix):
                return True
            if prefix.endswith("/") and len(prefix) > 1 and bare == prefix[:-1]:
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


def _opt_str(value, where: str) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str):
        raise ValueError(f"{where} must be a string")
    return value


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


def _seconds(data: dict, key: str, default: int, where: str) -> int:
    value = data.get(key)
    if value is None or value == 0:
        return default
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{where}: {key} must be a number of seconds")
    return value


def parse_users(data: dict, source: str, realm: str) -> tuple[dict[str, User],
                                                              dict[str, User],
                                                              dict[str, User]]:
    """The realm's users by username, by email and by id."""
    users: dict[str, User] = {}
    emails: dict[str, User] = {}
    ids: dict[str, User] = {}
    raw = data.get("users") or []
    if not isinstance(raw, list):
        raise ValueError(f"{source}: users must be a list")
    for i, u in enumerate(raw):
        where = f"{source}: users[{i}]"
        if not isinstance(u, dict) or not isinstance(u.get("username"), str) \
                or not u["username"].strip():
            raise ValueError(f"{where}: no username")
        username = u["username"].strip().lower()
        if username in users:
            raise ValueError(f"{where}: username '{username}' is already taken")
        user_id = _opt_str(u.get("id"), f"{where}.id") or str(
            uuid.uuid5(uuid.NAMESPACE_URL, f"parity-oidc/{realm}/{username}"))
        if user_id in ids:
            raise ValueError(f"{where}: id '{user_id}' is already taken")
        email = (_opt_str(u.get("email"), f"{where}.email") or "").strip().lower() or None
        if email and email in emails:
            raise ValueError(f"{where}: email '{email}' is already taken")
        password: str | None = None
        creds = u.get("credentials") or []
        if not isinstance(creds, list):
            raise ValueError(f"{where}.credentials must be a list")
        for j, c in enumerate(creds):
            if not isinstance(c, dict):
                raise ValueError(f"{where}.credentials[{j}] must be an object")
            if c.get("type") != "password":
                continue
            if isinstance(c.get("value"), str):
                password = c["value"]
            else:
                log(f"warning: {where}: only password credentials with a clear 'value' "
                    f"are supported; user '{username}' cannot log in with this one")
            if c.get("temporary"):
                log(f"warning: {where}: temporary passwords are used as permanent ones "
                    "(this substitute has no update-password page)")
        salt = secrets.token_bytes(16)
        user = User(
            username=username, user_id=user_id, email=email,
            email_verified=bool(u.get("emailVerified", False)),
            first_name=_opt_str(u.get("firstName"), f"{where}.firstName") or "",
            last_name=_opt_str(u.get("lastName"), f"{where}.lastName") or "",
            enabled=bool(u.get("enabled", False)), salt=salt,
            password_hash=_hash_password(password, salt) if password else None)
        users[username] = user
        ids[user_id] = user
        if email:
            emails[email] = user
    return users, emails, ids


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
        if not isinstance(attrs, dict):
            raise ValueError(f"{where}.attributes must be an object")
        post_logout = tuple(u for u in str(attrs.get("post.logout.redirect.uris", "+"))
                            .split("##") if u)
        redirect = _str_list(c.get("redirectUris"), f"{where}.redirectUris")
        if "+" in post_logout:
            post_logout = tuple(u for u in post_logout if u != "+") + redirect
        pkce = str(attrs.get("pkce.code.challenge.method") or "").strip() or None
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
            pkce_method=pkce,
        )
    users, emails, by_id = parse_users(data, source, name)
    ssl = str(data.get("sslRequired") or "external").lower()
    if ssl not in ("all", "external", "none"):
        raise ValueError(f"{source}: sslRequired must be all, external or none")
    return Realm(
        name=name, enabled=bool(data.get("enabled", True)), clients=clients, users=users,
        emails=emails, by_id=by_id, ssl_required=ssl,
        login_with_email=bool(data.get("loginWithEmailAllowed", True)),
        access_token_lifespan=_seconds(data, "accessTokenLifespan", ACCESS_TOKEN_LIFESPAN,
                                       source),
        access_code_lifespan=_seconds(data, "accessCodeLifespan", ACCESS_CODE_LIFESPAN,
                                      source),
        login_lifespan=_seconds(data, "accessCodeLifespanLogin", ACCESS_CODE_LIFESPAN_LOGIN,
                                source),
        session_idle=_seconds(data, "ssoSessionIdleTimeout", SSO_SESSION_IDLE, source),
        session_max=_seconds(data, "ssoSessionMaxLifespan", SSO_SESSION_MAX, source),
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


# --------------------------------------------------------------------------- provider state

@dataclass
class Grant:
    realm: str
    client_id: str
    scope: str
    sid: str | None
    expires: float
    auth_time: int
    user_id: str | None = None
    redirect_uri: str | None = None
    nonce: str | None = None
    challenge: str | None = None
    method: str | None = None
    acr: str = "1"


@dataclass
class Session:
    """An SSO session (Keycloak's user session): ``sid`` in tokens, found again from
    the ``KEYCLOAK_IDENTITY`` cookie's value (``identity``)."""
    sid: str
    realm: str
    user_id: str
    identity: str
    started: float
    last: float
    auth_time: int
    idle: int
    max: int

    def alive(self, now: float) -> bool:
        return now <= self.last + self.idle and now <= self.started + self.max

    def expires(self, now: float) -> float:
        return min(now + self.idle, self.started + self.max)


@dataclass
class PendingLogin:
    """An authorization request waiting for the login form (Keycloak's authentication
    session of one tab). Found by ``tab_id`` + ``session_code`` from the form's action
    URL and bound to the browser's ``AUTH_SESSION_ID`` cookie; never rebuilt from what
    the browser sends."""
    tab_id: str
    session_code: str
    browser: str
    realm: str
    client_id: str
    target: str                 # where the answer goes (validated)
    redirect_param: str | None  # redirect_uri as sent (the token request must repeat it)
    mode: str
    state: str | None
    nonce: str | None
    scope: str
    challenge: str | None
    method: str | None
    login_hint: str
    expires: float


@dataclass
class PendingLogout:
    """A logout waiting for the person's confirmation."""
    tab_id: str
    session_code: str
    browser: str
    realm: str
    target: str | None
    state: str | None
    hint_sid: str | None
    expires: float


@dataclass
class UsedCode:
    realm: str
    sid: str | None
    expires: float


@dataclass
class Reply:
    """A response for a browser (HTML page or redirect)."""
    status: int
    body: bytes | None = None
    content_type: str = "text/html; charset=utf-8"
    headers: list[tuple[str, str]] = field(default_factory=list)
    note: str = ""


_SITE_LOCAL = tuple(ipaddress.ip_network(n) for n in
                    ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "fec0::/10"))


def _local_address(ip: str) -> bool:
    """Keycloak's ``sslRequired: external`` exemption: loopback, any-local and
    site-local (private) addresses."""
    try:
        addr = ipaddress.ip_address(ip.strip().strip("[]"))
    except ValueError:
        return False
    if isinstance(addr, ipaddress.IPv6Address) and addr.ipv4_mapped:
        addr = addr.ipv4_mapped
    return addr.is_loopback or addr.is_unspecified or any(
        addr in n for n in _SITE_LOCAL if n.version == addr.version)


def _back(target: str, mode: str, state: str | None, iss: str, values: dict) -> str:
    """The authorization response URL (values, then state and iss)."""
    out = dict(values)
    if state is not None:
        out["state"] = state
    out["iss"] = iss
    sep = "#" if mode == "fragment" else ("&" if "?" in target else "?")
    return target + sep + urlencode(out)


# --------------------------------------------------------------------------- HTML

_CSS = ("body{margin:0;font-family:system-ui,-apple-system,'Segoe UI',sans-serif;"
        "background:#f0f0f0;color:#151515}"
        "main{max-width:27rem;margin:8vh auto;background:#fff;padding:2rem 2.5rem;"
        "border-top:4px solid #06c;box-shadow:0 1px 4px rgba(0,0,0,.2)}"
        "#kc-header{font-size:.85rem;letter-spacing:.1em;text-transform:uppercase;"
        "color:#6a6e73}"
        "h1{font-size:1.5rem;font-weight:500;margin:.6rem 0 1.5rem}"
        "label{display:block;margin:1rem 0 .35rem;font-weight:600}"
        "input[type=text],input[type=password]{width:100%;box-sizing:border-box;"
        "padding:.5rem;font-size:1rem;border:1px solid #8a8d90}"
        "input[aria-invalid=true]{border-color:#c9190b}"
        "input[type=submit]{margin-top:1.5rem;width:100%;padding:.6rem;font-size:1rem;"
        "color:#fff;background:#06c;border:0;cursor:pointer}"
        "#input-error{display:block;margin-top:.6rem;color:#c9190b}"
        ".instruction{margin:0 0 1rem}"
        "footer{margin-top:2rem;font-size:.75rem;color:#6a6e73}")
_CSS_HASH = base64.b64encode(hashlib.sha256(_CSS.encode()).digest()).decode()


def _esc(value: object) -> str:
    return html.escape(str(value), quote=True)


def _html_page(realm: str, title: str, heading: str, content: str) -> bytes:
    return (
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n"
        "<meta name=\"robots\" content=\"noindex, nofollow\">\n"
        "<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n"
        f"<title>{_esc(title)}</title>\n<style>{_CSS}</style>\n</head>\n<body>\n"
        "<main class=\"login-pf-page\">\n"
        f"<div id=\"kc-header\"><div id=\"kc-header-wrapper\">{_esc(realm)}</div></div>\n"
        f"<h1 id=\"kc-page-title\">{_esc(heading)}</h1>\n"
        f"<div id=\"kc-content\"><div id=\"kc-content-wrapper\">\n{content}\n</div></div>\n"
        f"<footer>{_esc(NAME)} {_esc(VERSION)}: parity's offline stand-in for Keycloak"
        "</footer>\n</main>\n</body>\n</html>\n").encode("utf-8")


def _csp(form_action: tuple[str, ...] | None) -> str:
    """A restrictive Content-Security-Policy: no script at all, the one stylesheet.
    ``form_action`` None: no form may be sent; empty: no restriction (a redirect to a
    non-web scheme after the form cannot be listed)."""
    out = ["default-src 'none'", f"style-src 'sha256-{_CSS_HASH}'", "img-src 'self'",
           "frame-ancestors 'none'", "base-uri 'none'"]
    if form_action is None:
        out.append("form-action 'none'")
    elif form_action:
        out.append("form-action " + " ".join(dict.fromkeys(form_action)))
    return "; ".join(out)


def _execution(realm: Realm) -> str:
    return str(uuid.uuid5(uuid.NAMESPACE_URL,
                          f"parity-oidc/{realm.name}/auth-username-password-form"))


_NOBODY = User(username="", user_id="")


# --------------------------------------------------------------------------- provider

@dataclass
class Provider:
    realms: dict[str, Realm]
    hostname: str | None = None         # KC_HOSTNAME
    proxy_headers: bool = False         # KC_PROXY_HEADERS set: trust X-Forwarded-*
    codes: dict[str, Grant] = field(default_factory=dict)
    used_codes: dict[str, UsedCode] = field(default_factory=dict)
    refresh: dict[str, Grant] = field(default_factory=dict)
    sessions: dict[str, Session] = field(default_factory=dict)      # by sid
    identities: dict[str, str] = field(default_factory=dict)        # cookie -> sid
    pending: dict[str, PendingLogin] = field(default_factory=dict)  # by tab_id
    logouts: dict[str, PendingLogout] = field(default_factory=dict)  # by tab_id
    browsers: dict[str, float] = field(default_factory=dict)        # AUTH_SESSION_ID
    lock: threading.RLock = field(default_factory=threading.RLock)
    swept: float = 0.0

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

    def secure(self, headers) -> bool:
        """The issuer is https: cookies get ``Secure; SameSite=None``."""
        return self.base_url(headers).lower().startswith("https://")

    def issuer(self, realm: Realm, headers) -> str:
        return f"{self.base_url(headers)}/realms/{quote(realm.name, safe='')}"

    def ssl_refused(self, realm: Realm, headers, remote: str) -> bool:
        """Keycloak's ``sslRequired``: a plain-http request is refused (all) or refused
        from a public address (external, the default)."""
        if realm.ssl_required == "none" or self.secure(headers):
            return False
        if realm.ssl_required == "all":
            return True
        if self.proxy_headers and headers.get("X-Forwarded-For"):
            remote = headers["X-Forwarded-For"].split(",")[0]
        return not _local_address(remote)

    def discovery(self, realm: Realm, headers) -> dict:
        iss = self.issuer(realm, headers)
        oidc = f"{iss}{OIDC}"
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
            "prompt_values_supported": ["none", "login"],
            "scopes_supported": list(STANDARD_SCOPES),
            "claims_supported": ["iss", "sub", "aud", "exp", "iat", "auth_time", "nonce",
                                 "acr", "azp", "sid", "preferred_username", "email",
                                 "email_verified", "name", "given_name", "family_name"],
            "claims_parameter_supported": False,
            "request_parameter_supported": False,
            "request_uri_parameter_supported": False,
            "authorization_response_iss_parameter_supported": True,
            "service_documentation": f"{NAME} {VERSION} (parity offline profile; not "
                                     "Keycloak)",
        }

    # ---- state housekeeping (callers hold the lock)

    def _sweep(self, now: float) -> None:
        if now - self.swept < 1.0:
            return
        self.swept = now
        for store in (self.codes, self.refresh, self.used_codes, self.pending,
                      self.logouts):
            for k in [k for k, g in store.items() if g.expires < now]:
                del store[k]
        for k in [k for k, t in self.browsers.items() if t < now]:
            del self.browsers[k]
        for sid in [sid for sid, s in self.sessions.items() if not s.alive(now)]:
            self._end_session(sid)

    @staticmethod
    def _cap(store: dict) -> None:
        while len(store) > MAX_PENDING:
            del store[next(iter(store))]

    def _end_session(self, sid: str | None) -> None:
        """End an SSO session: its cookie no longer logs in, its codes and refresh
        tokens no longer work (they are checked against the session when used)."""
        with self.lock:
            s = self.sessions.pop(sid or "", None)
            if s is not None:
                self.identities.pop(s.identity, None)
            for k in [k for k, g in self.codes.items() if g.sid == sid]:
                del self.codes[k]

    def _live_session(self, sid: str | None, now: float) -> Session | None:
        with self.lock:
            s = self.sessions.get(sid or "")
            if s is None:
                return None
            realm = self.realms.get(s.realm)
            user = realm.user_by_id(s.user_id) if realm else None
            if not s.alive(now) or user is None or not user.enabled:
                self._end_session(s.sid)
                return None
            return s

    def _cookie_session(self, realm: Realm, cookies: dict[str, list[str]],
                        now: float) -> Session | None:
        with self.lock:
            for value in cookies.get(IDENTITY_COOKIE, []):
                s = self._live_session(self.identities.get(value), now)
                if s is not None and s.realm == realm.name:
                    return s
        return None

    def _new_session(self, realm: Realm, user: User, now: float) -> Session:
        s = Session(sid=str(uuid.uuid4()), realm=realm.name, user_id=user.user_id,
                    identity=secrets.token_urlsafe(32), started=now, last=now,
                    auth_time=int(now), idle=realm.session_idle, max=realm.session_max)
        with self.lock:
            self.sessions[s.sid] = s
            self.identities[s.identity] = s.sid
        return s

    def _browser(self, realm: Realm, cookies: dict[str, list[str]], now: float) -> str:
        """The browser's ``AUTH_SESSION_ID``: the one it has if we issued it, else new."""
        with self.lock:
            for value in cookies.get(AUTH_SESSION_COOKIE, []):
                if self.browsers.get(value, 0) >= now:
                    self.browsers[value] = now + realm.login_lifespan
                    return value
            value = secrets.token_urlsafe(24)
            self.browsers[value] = now + realm.login_lifespan
            self._cap(self.browsers)
            return value

    # ---- cookies and replies

    def _cookie(self, realm: Realm, headers, name: str, value: str, *, http_only: bool,
                max_age: int | None = None) -> str:
        parts = [f"{name}={value}", f"Path=/realms/{quote(realm.name, safe='')}/"]
        if max_age is not None:
            parts.append(f"Max-Age={max_age}")
            if max_age == 0:
                parts.append("Expires=Thu, 01 Jan 1970 00:00:00 GMT")
        if self.secure(headers):
            parts += ["Secure", "SameSite=None"]
        if http_only:
            parts.append("HttpOnly")
        return "; ".join(parts)

    def _login_cookies(self, realm: Realm, headers, s: Session) -> list[str]:
        return [self._cookie(realm, headers, IDENTITY_COOKIE, s.identity, http_only=True),
                self._cookie(realm, headers, SESSION_COOKIE,
                             f"{quote(realm.name, safe='')}/{s.user_id}/{s.sid}",
                             http_only=False)]

    def _logout_cookies(self, realm: Realm, headers) -> list[str]:
        return [self._cookie(realm, headers, IDENTITY_COOKIE, "", http_only=True, max_age=0),
                self._cookie(realm, headers, SESSION_COOKIE, "", http_only=False,
                             max_age=0)]

    @staticmethod
    def _redirect(location: str, cookies: list[str] | tuple = (), note: str = "") -> Reply:
        return Reply(302, None, headers=[("Location", location),
                                         ("Cache-Control", "no-store"),
                                         *[("Set-Cookie", c) for c in cookies]], note=note)

    @staticmethod
    def _page(realm: Realm, status: int, title: str, heading: str, content: str, *,
              form_action: tuple[str, ...] | None = None, cookies: list[str] | tuple = (),
              note: str = "") -> Reply:
        headers = [("Cache-Control", "no-store"), ("Pragma", "no-cache"),
                   ("Content-Security-Policy", _csp(form_action)),
                   ("X-Frame-Options", "DENY"), ("X-Content-Type-Options", "nosniff"),
                   ("Referrer-Policy", "no-referrer"), ("X-Robots-Tag", "none"),
                   *[("Set-Cookie", c) for c in cookies]]
        return Reply(status, _html_page(realm.name, title, heading, content),
                     headers=headers, note=note)

    def error_page(self, realm: Realm, exc: PageError) -> Reply:
        content = (f"<div id=\"kc-error-message\">\n"
                   f"<p class=\"instruction\">{_esc(exc.message)}</p>\n</div>")
        return self._page(realm, exc.status, ERROR_TITLE, ERROR_TITLE, content,
                          note=exc.note or "error=page")

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
                      user: User | None, grant: Grant | None, now: int) -> str:
        aud = list(client.audiences) or [client.client_id]
        claims = {
            "exp": now + realm.access_token_lifespan, "iat": now,
            "jti": str(uuid.uuid4()), "iss": self.issuer(realm, headers),
            "aud": aud[0] if len(aud) == 1 else aud,
            "typ": "Bearer", "azp": client.client_id, "scope": scope,
        }
        if user is None or grant is None:
            claims.update({"sub": f"service-account-{client.client_id}",
                           "preferred_username": f"service-account-{client.client_id}",
                           "client_id": client.client_id})
        else:
            claims.update({"sub": user.user_id, "sid": grant.sid, "acr": grant.acr,
                           "auth_time": grant.auth_time,
                           "preferred_username": user.username,
                           **self._profile(user, scope)})
            origins = client.allowed_origins()
            if origins:
                claims["allowed-origins"] = origins
        return self._sign(realm, claims)

    @staticmethod
    def _profile(user: User, scope: str) -> dict:
        out: dict = {}
        scopes = scope.split()
        if "email" in scopes:
            if user.email:
                out["email"] = user.email
            out["email_verified"] = user.email_verified
        if "profile" in scopes:
            name = " ".join(n for n in (user.first_name, user.last_name) if n)
            if name:
                out["name"] = name
            if user.first_name:
                out["given_name"] = user.first_name
            if user.last_name:
                out["family_name"] = user.last_name
            out["preferred_username"] = user.username
        return out

    def token(self, realm: Realm, headers, form: dict[str, str]) -> dict:
        grant_type = form.get("grant_type")
        if not grant_type:
            raise OAuthError("invalid_request", "Missing form parameter: grant_type")
        now_f = time.time()
        now = int(now_f)
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
                self._sweep(now_f)
                grant = self.codes.get(code)
                if grant is None or grant.realm != realm.name:
                    used = self.used_codes.get(code)
                    if used is not None and used.realm == realm.name:
                        # As Keycloak: a code used twice revokes what it gave
                        self._end_session(used.sid)
                        raise OAuthError("invalid_grant", "Code not valid",
                                         note="code reused: its session was ended")
                    raise OAuthError("invalid_grant", "Code not valid")
                del self.codes[code]
                self.used_codes[code] = UsedCode(realm.name, grant.sid, grant.expires)
            if grant.expires < now_f:
                raise OAuthError("invalid_grant", "Code is expired")
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
            if self._live_session(grant.sid, now_f) is None:
                raise OAuthError("invalid_grant", "Session not active")
            return self._user_tokens(realm, client, headers, grant, now)
        if grant_type == "refresh_token":
            client = self.authenticate(realm, headers, form, allow_public=True)
            token = form.get("refresh_token")
            if not token:
                raise OAuthError("invalid_request", "Missing parameter: refresh_token")
            with self.lock:
                grant = self.refresh.get(token)
                if grant is None or grant.realm != realm.name or grant.expires < now_f \
                        or grant.client_id != client.client_id:
                    raise OAuthError("invalid_grant", "Invalid refresh token")
                session = self._live_session(grant.sid, now_f)
                if session is None:
                    raise OAuthError("invalid_grant", "Session not active")
                session.last = now_f
            scope = grant.scope
            if form.get("scope"):
                wanted = form["scope"].split()
                if not set(wanted) <= set(scope.split()):
                    raise OAuthError("invalid_scope", "a refresh cannot widen the scope")
            return self._user_tokens(realm, client, headers, grant, now, nonce=False)
        raise OAuthError("unsupported_grant_type", f"Unsupported grant_type '{grant_type}'")

    def _user_tokens(self, realm: Realm, client: Client, headers, grant: Grant, now: int,
                     nonce: bool = True) -> dict:
        user = realm.user_by_id(grant.user_id)
        with self.lock:
            session = self._live_session(grant.sid, now)
        if user is None or not user.enabled or session is None:
            raise OAuthError("invalid_grant", "Session not active")
        access = self._access_token(realm, client, headers, grant.scope, user, grant, now)
        refresh = secrets.token_urlsafe(32)
        refresh_expires = int(session.expires(now))
        with self.lock:
            self._sweep(now)
            self.refresh[refresh] = Grant(realm.name, client.client_id, grant.scope,
                                          grant.sid, refresh_expires, grant.auth_time,
                                          user_id=user.user_id, acr=grant.acr)
        out = {"access_token": access, "expires_in": realm.access_token_lifespan,
               "refresh_token": refresh, "refresh_expires_in": max(0, refresh_expires - now),
               "token_type": "Bearer", "not-before-policy": 0, "session_state": grant.sid,
               "scope": grant.scope}
        if "openid" in grant.scope.split():
            claims = {"exp": now + realm.access_token_lifespan, "iat": now,
                      "auth_time": grant.auth_time, "jti": str(uuid.uuid4()),
                      "iss": self.issuer(realm, headers), "aud": client.client_id,
                      "sub": user.user_id, "typ": "ID", "azp": client.client_id,
                      "sid": grant.sid, "at_hash": _at_hash(access), "acr": grant.acr,
                      "preferred_username": user.username,
                      **self._profile(user, grant.scope)}
            if nonce and grant.nonce:
                claims["nonce"] = grant.nonce
            out["id_token"] = self._sign(realm, claims)
        return out

    # ---- the browser: authorization request, login form, logout

    def authorize(self, realm: Realm, headers, params: dict[str, str],
                  cookies: dict[str, list[str]]) -> Reply:
        """An authorization request (Keycloak's AuthorizationEndpoint, in its order):
        errors about the client or the redirect URI are an error page; the others go
        back to the (validated) redirect URI. Then the SSO cookie answers, or the
        login form is shown."""
        client_id = params.get("client_id")
        if not client_id:
            raise PageError("Missing parameters: client_id", note="error=client_id")
        client = realm.clients.get(client_id)
        note = f"client={_safe(client_id)}"
        if client is None:
            raise PageError(MSG_CLIENT_NOT_FOUND, note=f"{note} error=client_not_found")
        if not client.enabled:
            raise PageError(MSG_CLIENT_DISABLED, note=f"{note} error=client_disabled")
        if client.bearer_only:
            raise PageError(MSG_BEARER_ONLY, note=f"{note} error=bearer_only")
        redirect = params.get("redirect_uri")
        if redirect is None:
            oidc_request = "openid" in (params.get("scope") or "").split()
            target = None if oidc_request else client.single_redirect()
        else:
            target = redirect if client.redirect_allowed(redirect) else None
        if target is None:
            raise PageError("Invalid parameter: redirect_uri",
                            note=f"{note} error=invalid_redirect_uri")
        iss = self.issuer(realm, headers)
        state = params.get("state")
        mode = "query"

        def fail(error: str, description: str | None = None) -> Reply:
            values = {"error": error}
            if description:
                values["error_description"] = description
            return self._redirect(_back(target, mode, state, iss, values),
                                  note=f"{note} error={error}")

        response_type = params.get("response_type")
        if not response_type:
            return fail("invalid_request", "Missing parameter: response_type")
        if response_type != "code":
            return fail("unsupported_response_type", "Only response_type=code is supported")
        if params.get("response_mode") not in (None, "query", "fragment"):
            return fail("invalid_request", "Invalid parameter: response_mode")
        mode = params.get("response_mode") or "query"
        if not client.standard_flow:
            return fail("unauthorized_client", MSG_STANDARD_FLOW_DISABLED)
        if "request" in params:
            return fail("request_not_supported", "Request objects are not supported")
        if "request_uri" in params:
            return fail("request_uri_not_supported", "request_uri is not supported")
        prompts = set((params.get("prompt") or "").split())
        if "none" in prompts and len(prompts) > 1:
            return fail("invalid_request", "Invalid parameter: prompt")
        max_age = None
        if params.get("max_age") is not None:
            try:
                max_age = int(params["max_age"])
                if max_age < 0:
                    raise ValueError
            except ValueError:
                return fail("invalid_request", "Invalid parameter: max_age")
        # PKCE, as Keycloak's checkPKCEParams
        challenge = params.get("code_challenge")
        method = params.get("code_challenge_method")
        if client.pkce_method:
            if method is None:
                return fail("invalid_request", "Missing parameter: code_challenge_method")
            if method != client.pkce_method:
                return fail("invalid_request", "Invalid parameter: code challenge method "
                            "is not configured one")
            if challenge is None:
                return fail("invalid_request", "Missing parameter: code_challenge")
        elif challenge is None and method is not None:
            return fail("invalid_request", "Missing parameter: code_challenge")
        if challenge is not None:
            method = method or "plain"
            if method not in ("S256", "plain"):
                return fail("invalid_request", "Invalid parameter: code_challenge_method")
            if not _PKCE_RE.match(challenge):
                return fail("invalid_request", "Invalid parameter: code_challenge")
        try:
            scope = self._scope(client, params.get("scope"))
        except OAuthError as exc:
            return fail(exc.error, exc.description)

        now = time.time()
        session = self._cookie_session(realm, cookies, now)
        reauth = "login" in prompts or (session is not None and max_age is not None
                                        and now - session.auth_time > max_age)
        if "none" in prompts and (session is None or reauth):
            return fail("login_required")
        pending = PendingLogin(
            tab_id=secrets.token_urlsafe(16), session_code=secrets.token_urlsafe(32),
            browser=self._browser(realm, cookies, now), realm=realm.name,
            client_id=client.client_id, target=target, redirect_param=redirect, mode=mode,
            state=state, nonce=params.get("nonce"), scope=scope, challenge=challenge,
            method=method if challenge is not None else None,
            login_hint=(params.get("login_hint") or "")[:255],
            expires=now + realm.login_lifespan)
        if session is not None and not reauth:
            with self.lock:
                session.last = now
            return self._approve(realm, headers, pending, session, acr="0",
                                 note=f"{note} sso")
        if session is not None:  # forced re-authentication of the same person
            user = realm.user_by_id(session.user_id)
            pending.login_hint = user.username if user else pending.login_hint
        with self.lock:
            self._sweep(now)
            self.pending[pending.tab_id] = pending
            self._cap(self.pending)
        return self._login_form(realm, headers, pending, note=f"{note} login_form")

    def _approve(self, realm: Realm, headers, p: PendingLogin, session: Session, *,
                 acr: str, note: str) -> Reply:
        """The code response for an authenticated request, with the SSO cookies."""
        code = secrets.token_urlsafe(32)
        now = time.time()
        with self.lock:
            self.codes[code] = Grant(realm.name, p.client_id, p.scope, session.sid,
                                     now + realm.access_code_lifespan, session.auth_time,
                                     user_id=session.user_id, redirect_uri=p.redirect_param,
                                     nonce=p.nonce, challenge=p.challenge, method=p.method,
                                     acr=acr)
        location = _back(p.target, p.mode, p.state, self.issuer(realm, headers),
                         {"code": code, "session_state": session.sid})
        return self._redirect(location, self._login_cookies(realm, headers, session), note)

    def _login_form(self, realm: Realm, headers, p: PendingLogin, *,
                    error: str | None = None, username: str | None = None,
                    note: str = "") -> Reply:
        iss = self.issuer(realm, headers)
        action = f"{iss}{LOGIN_ACTION}?" + urlencode({
            "session_code": p.session_code, "execution": _execution(realm),
            "client_id": p.client_id, "tab_id": p.tab_id})
        value = p.login_hint if username is None else username[:255]
        invalid = ' aria-invalid="true"' if error else ""
        label = "Username or email" if realm.login_with_email else "Username"
        message = (f"<span id=\"input-error\" class=\"kc-feedback-text\" "
                   f"aria-live=\"polite\">{_esc(error)}</span>\n") if error else ""
        content = (
            "<div id=\"kc-form\"><div id=\"kc-form-wrapper\">\n"
            f"<form id=\"kc-form-login\" action=\"{_esc(action)}\" method=\"post\" "
            "novalidate>\n"
            f"<label for=\"username\">{label}</label>\n"
            f"<input tabindex=\"1\" id=\"username\" name=\"username\" "
            f"value=\"{_esc(value)}\" type=\"text\" autofocus autocomplete=\"username\""
            f"{invalid}>\n"
            "<label for=\"password\">Password</label>\n"
            "<input tabindex=\"2\" id=\"password\" name=\"password\" type=\"password\" "
            f"autocomplete=\"current-password\"{invalid}>\n"
            f"{message}"
            "<input type=\"hidden\" id=\"id-hidden-input\" name=\"credentialId\">\n"
            "<input tabindex=\"4\" type=\"submit\" id=\"kc-login\" name=\"login\" "
            "value=\"Sign In\">\n"
            "</form>\n</div></div>")
        target_origin = _origin(p.target)
        form_action = ("'self'", _origin(iss), target_origin) if target_origin else ()
        cookie = self._cookie(realm, headers, AUTH_SESSION_COOKIE, p.browser,
                              http_only=True)
        return self._page(realm, 200, f"Sign in to {realm.name}", "Sign in to your account",
                          content, form_action=form_action, cookies=[cookie], note=note)

    def _pending_login(self, realm: Realm, query: dict[str, str],
                       cookies: dict[str, list[str]], now: float) -> PendingLogin:
        browsers = cookies.get(AUTH_SESSION_COOKIE, [])
        if not browsers:
            raise PageError(MSG_COOKIE_NOT_FOUND, note="login=no_cookie")
        with self.lock:
            p = self.pending.get(query.get("tab_id") or "")
        if p is None or p.realm != realm.name or p.expires < now \
                or p.browser not in browsers or query.get("client_id") != p.client_id \
                or not hmac.compare_digest((query.get("session_code") or "").encode(),
                                           p.session_code.encode()):
            raise PageError(MSG_LOGIN_TIMEOUT, note="login=expired")
        return p

    def login_page(self, realm: Realm, headers, query: dict[str, str],
                   cookies: dict[str, list[str]]) -> Reply:
        """GET of the form's action URL (a reload): the form again."""
        p = self._pending_login(realm, query, cookies, time.time())
        return self._login_form(realm, headers, p, note=f"client={_safe(p.client_id)}")

    def login(self, realm: Realm, headers, query: dict[str, str], form: dict[str, str],
              cookies: dict[str, list[str]]) -> Reply:
        """The login form posted: the same form with Keycloak's message, or the code
        response. Says nothing about which of username and password was wrong."""
        now = time.time()
        p = self._pending_login(realm, query, cookies, now)
        note = f"client={_safe(p.client_id)}"
        username = (form.get("username") or "").strip()
        user = realm.find_user(username)
        if not (user or _NOBODY).check_password(form.get("password") or "") or user is None:
            return self._login_form(realm, headers, p, error=MSG_INVALID_USER,
                                    username=username, note=f"{note} login=failed")
        if not user.enabled:
            return self._login_form(realm, headers, p, error=MSG_ACCOUNT_DISABLED,
                                    username=username, note=f"{note} login=disabled")
        with self.lock:
            if self.pending.pop(p.tab_id, None) is not p:
                raise PageError(MSG_LOGIN_TIMEOUT, note=f"{note} login=expired")
            session = self._cookie_session(realm, cookies, now)
            if session is not None and session.user_id != user.user_id:
                other = realm.user_by_id(session.user_id)
                raise PageError(MSG_DIFFERENT_USER.format(other.username if other else ""),
                                note=f"{note} login=different_user")
            if session is None:
                session = self._new_session(realm, user, now)
            else:
                session.last = now
                session.auth_time = int(now)
        return self._approve(realm, headers, p, session, acr="1",
                             note=f"{note} login=ok user={_safe(user.username)}")

    def logout(self, realm: Realm, headers, params: dict[str, str],
               cookies: dict[str, list[str]]) -> Reply:
        """RP-initiated logout, as Keycloak's LogoutEndpoint: without a valid
        id_token_hint (or when the hint names another session than the browser's) the
        person is asked to confirm."""
        if "redirect_uri" in params:
            raise PageError("Invalid parameter: redirect_uri", note="logout=redirect_uri")
        hint = params.get("id_token_hint")
        client_id = params.get("client_id")
        target = params.get("post_logout_redirect_uri")
        state = params.get("state")
        if target is not None and hint is None and client_id is None:
            raise PageError("Missing parameters: id_token_hint", note="logout=no_hint")
        confirm, forced = True, False
        client = realm.clients.get(client_id) if client_id is not None else None
        if client_id is not None and client is None:
            forced = True
        claims = self._id_token_hint(realm, headers, hint) if hint is not None else None
        if client_id is None:
            client = realm.clients.get(str(claims.get("azp") or "")) if claims else None
            if client is not None:
                confirm = False
        elif claims is not None and claims.get("azp"):
            if claims["azp"] != client_id:
                raise PageError("Invalid parameter: id_token_hint", note="logout=bad_hint")
            confirm = False
        if target is not None:
            if client is not None:
                ok = _uri_allowed(target, client.post_logout_redirect_uris)
            elif client_id is None:
                ok = any(c.enabled and not c.bearer_only and c.standard_flow
                         and _uri_allowed(target, c.post_logout_redirect_uris)
                         for c in realm.clients.values())
            else:
                ok = False
            if not ok:
                raise PageError(MSG_INVALID_REDIRECT, note="logout=invalid_redirect_uri")
        now = time.time()
        session = self._cookie_session(realm, cookies, now)
        hint_sid = (str(claims.get("sid") or "") or None) if claims is not None else None
        if session is not None:
            if hint_sid and hint_sid != session.sid:
                forced = True
        elif hint is None and client is not None and target is not None:
            confirm = False  # nobody to log out: straight back
        if confirm or forced:
            return self._logout_confirm_page(realm, headers, cookies, client_id, target,
                                             state, hint_sid, now)
        return self._do_logout(realm, headers, [session.sid if session else None, hint_sid],
                               target, state)

    def _id_token_hint(self, realm: Realm, headers, token: str) -> dict:
        """An ID token of ours (signature and issuer; an expired one is fine)."""
        try:
            claims = jwt.decode(token, realm.key.public_key(), algorithms=["RS256"],
                                issuer=self.issuer(realm, headers),
                                options={"verify_aud": False, "verify_exp": False,
                                         "verify_nbf": False, "verify_iat": False})
        except jwt.PyJWTError:
            claims = None
        if not isinstance(claims, dict) or claims.get("typ") != "ID":
            raise PageError("Invalid parameter: id_token_hint", note="logout=bad_hint")
        return claims

    def _do_logout(self, realm: Realm, headers, sids: list[str | None], target: str | None,
                   state: str | None) -> Reply:
        with self.lock:
            for sid in sids:
                if sid:
                    self._end_session(sid)
        cookies = self._logout_cookies(realm, headers)
        if target is not None:
            if state is not None:
                target += ("&" if "?" in target else "?") + urlencode({"state": state})
            return self._redirect(target, cookies, note="logout=ok")
        content = (f"<div id=\"kc-info-message\">\n"
                   f"<p class=\"instruction\">{_esc(MSG_LOGGED_OUT)}</p>\n</div>")
        return self._page(realm, 200, MSG_LOGGED_OUT, MSG_LOGGED_OUT, content,
                          cookies=cookies, note="logout=ok")

    def _logout_confirm_page(self, realm: Realm, headers, cookies: dict[str, list[str]],
                             client_id: str | None, target: str | None,
                             state: str | None, hint_sid: str | None, now: float) -> Reply:
        p = PendingLogout(tab_id=secrets.token_urlsafe(16),
                          session_code=secrets.token_urlsafe(32),
                          browser=self._browser(realm, cookies, now), realm=realm.name,
                          target=target, state=state, hint_sid=hint_sid,
                          expires=now + realm.login_lifespan)
        with self.lock:
            self._sweep(now)
            self.logouts[p.tab_id] = p
            self._cap(self.logouts)
        iss = self.issuer(realm, headers)
        query = {"client_id": client_id} if client_id else {}
        action = f"{iss}{LOGOUT_CONFIRM}?" + urlencode({**query, "tab_id": p.tab_id})
        content = (
            "<div id=\"kc-logout-confirm\" class=\"content-area\">\n"
            "<p class=\"instruction\">Do you want to log out?</p>\n"
            f"<form class=\"form-actions\" action=\"{_esc(action)}\" method=\"POST\">\n"
            f"<input type=\"hidden\" name=\"session_code\" value=\"{_esc(p.session_code)}\">\n"
            "<input tabindex=\"4\" name=\"confirmLogout\" id=\"kc-logout\" type=\"submit\" "
            "value=\"Logout\">\n</form>\n</div>")
        target_origin = _origin(target) if target else ""
        form_action = ("'self'", _origin(iss), target_origin) if target_origin else \
            (("'self'", _origin(iss)) if target is None else ())
        cookie = self._cookie(realm, headers, AUTH_SESSION_COOKIE, p.browser,
                              http_only=True)
        return self._page(realm, 200, "Logging out", "Logging out", content,
                          form_action=form_action, cookies=[cookie], note="logout=confirm")

    def logout_confirm(self, realm: Realm, headers, query: dict[str, str],
                       form: dict[str, str], cookies: dict[str, list[str]]) -> Reply:
        now = time.time()
        with self.lock:
            p = self.logouts.get(query.get("tab_id") or "")
            valid = p is not None and p.realm == realm.name and p.expires >= now \
                and p.browser in cookies.get(AUTH_SESSION_COOKIE, []) \
                and "confirmLogout" in form and hmac.compare_digest(
                    (form.get("session_code") or "").encode(), p.session_code.encode())
            if not valid or self.logouts.pop(p.tab_id, None) is not p:
                raise PageError(MSG_LOGOUT_FAILED, note="logout=failed")
        session = self._cookie_session(realm, cookies, now)
        return self._do_logout(realm, headers, [session.sid if session else None,
                                                p.hint_sid], p.target, p.state)

    def logout_token(self, realm: Realm, headers, form: dict[str, str]) -> None:
        """Keycloak's legacy POST /logout with a refresh_token (client authenticated)."""
        client = self.authenticate(realm, headers, form, allow_public=True)
        token = form.get("refresh_token")
        if not token:
            raise OAuthError("invalid_request", "No refresh token")
        with self.lock:
            grant = self.refresh.get(token)
            if grant is None or grant.realm != realm.name or grant.expires < time.time() \
                    or grant.client_id != client.client_id:
                raise OAuthError("invalid_grant", "Invalid refresh token")
            self._end_session(grant.sid)

    # ---- resource-server side

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
        challenge = {"WWW-Authenticate": f'Bearer realm="{realm.name}", '
                                         'error="invalid_token"'}
        if claims.get("typ") != "Bearer":
            raise OAuthError("invalid_token", "Not an access token", 401, challenge)
        if claims.get("sid") and self._live_session(claims["sid"], time.time()) is None:
            raise OAuthError("invalid_token", "User session not found or doesn't have "
                             "client attached on it", 401, challenge)
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
        if claims.get("sid") and self._live_session(claims["sid"], time.time()) is None:
            return {"active": False}
        return {"active": True, **claims, "client_id": claims.get("azp"),
                "token_type": claims.get("typ"), "username": claims.get("preferred_username")}

    def cors_origin(self, realm: Realm, origin: str | None) -> str | None:
        """The origin if any client of the realm lists it (discovery, certs, userinfo,
        preflight requests)."""
        if origin and any(c.origin_allowed(origin) for c in realm.clients.values()):
            return origin
        return None


def _origin(uri: str) -> str:
    try:
        parts = urlsplit(uri.rstrip("*"))
    except ValueError:
        return ""
    return f"{parts.scheme}://{parts.netloc}" if parts.scheme and parts.netloc else ""


def _pkce(verifier: str, method: str) -> str:
    if method == "S256":
        digest = hashlib.sha256(verifier.encode("ascii")).digest()
        return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")
    return verifier


def _at_hash(token: str) -> str:
    digest = hashlib.sha256(token.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode("ascii")


def _cors(origin: str | None) -> dict[str, str]:
    if not origin:
        return {"Vary": "Origin"}
    return {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
            "Vary": "Origin"}


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
              headers: dict[str, str] | list[tuple[str, str]] | None = None,
              note: str = "") -> None:
        self.send_response(status)
        items = headers.items() if isinstance(headers, dict) else (headers or [])
        for k, v in items:
            self.send_header(k, v)
        if body is not None:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body or b"")))
        self._drain()
        # Log before the response leaves: a client that has its answer can rely on
        # the line being in the log already (the log is a contract tests read).
        self._log(status, note)
        self.end_headers()
        if body and self.command != "HEAD":
            self.wfile.write(body)

    def _drain(self) -> None:
        """A request body nobody read would be taken for the next request on the
        connection: read it (when small) or close the connection after the answer."""
        if self._body_read:
            return
        self._body_read = True
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            length = -1
        if 0 < length <= MAX_BODY:
            self.rfile.read(length)
        elif length != 0:
            self.send_header("Connection", "close")
            self.close_connection = True

    def _reply(self, reply: Reply) -> None:
        self._send(reply.status, reply.body, reply.content_type, reply.headers, reply.note)

    def _json(self, status: int, data, headers: dict[str, str] | None = None,
              note: str = "", no_store: bool = False) -> None:
        h = dict(headers or {})
        if no_store:
            h.update({"Cache-Control": "no-store", "Pragma": "no-cache"})
        self._send(status, json.dumps(data).encode(), "application/json", h, note)

    def _form(self) -> dict[str, str]:
        ctype = self.headers.get("Content-Type", "").split(";")[0].strip().lower()
        try:
            length = int(self.headers.get("Content-Length") or 0)
        except ValueError:
            raise OAuthError("invalid_request", "bad Content-Length") from None
        if length > MAX_BODY or length < 0:
            raise OAuthError("invalid_request", "request body too large", 413)
        raw = self.rfile.read(length) if length else b""
        self._body_read = True
        if ctype != "application/x-www-form-urlencoded":
            raise OAuthError("invalid_request", "expected application/x-www-form-urlencoded")
        return _single(parse_qs(raw.decode("utf-8", "replace"), keep_blank_values=True))

    def _cookies(self) -> dict[str, list[str]]:
        out: dict[str, list[str]] = {}
        for header in self.headers.get_all("Cookie") or []:
            for part in header.split(";"):
                name, sep, value = part.strip().partition("=")
                if sep and name:
                    out.setdefault(name, []).append(value.strip().strip('"'))
        return out

    def handle_one_request(self):  # noqa: D102
        self._started = time.monotonic()
        self._body_read = False
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
            note = f"error={exc.error}" + (f" {exc.note}" if exc.note else "")
            self._json(exc.status, exc.body(), exc.headers, note=note, no_store=True)
        except Exception as exc:  # noqa: BLE001 - a bug must not kill the server
            where = traceback.extract_tb(exc.__traceback__)[-1]
            log(f"internal error: {type(exc).__name__} at line {where.lineno} "
                f"({where.name})")  # not the message: it may hold request data
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
        p = self.provider
        origin_header = self.headers.get("Origin")
        origin = p.cors_origin(realm, origin_header)
        cors = _cors(origin)
        if self.command == "OPTIONS":
            # a preflight cannot name the client: any client's web origin passes it;
            # the token endpoint then answers only the requesting client's origins
            self._send(200 if origin else 403, None, headers={
                **cors, "Access-Control-Allow-Methods": "GET, POST, OPTIONS",
                "Access-Control-Allow-Headers": "Origin, Accept, X-Requested-With, "
                "Content-Type, Access-Control-Request-Method, "
                "Access-Control-Request-Headers, DPoP, Authorization",
                "Access-Control-Max-Age": "3600"} if origin else cors)
            return
        get = self.command in ("GET", "HEAD")
        post = self.command == "POST"
        if rest in BROWSER_PATHS and (get or post) and not (rest == LOGOUT_CONFIRM and get):
            self._browser(realm, rest, url, post)
            return
        try:
            if rest in ("", "/") and get:
                assert realm.key is not None
                pem = realm.key.public_key().public_bytes(serialization.Encoding.DER,
                                       serialization.PublicFormat.SubjectPublicKeyInfo)
                iss = p.issuer(realm, self.headers)
                self._json(200, {"realm": realm.name,
                                 "public_key": base64.b64encode(pem).decode(),
                                 "token-service": f"{iss}{OIDC}",
                                 "account-service": f"{iss}/account",
                                 "tokens-not-before": 0}, cors)
            elif rest == "/.well-known/openid-configuration" and get:
                self._json(200, p.discovery(realm, self.headers), cors)
            elif rest == f"{OIDC}/certs" and get:
                self._json(200, {"keys": [realm.jwk()]}, cors)
            elif rest == f"{OIDC}/token" and post:
                form = self._form()
                # CORS for the token endpoint: only the requesting client's web origins
                client = realm.clients.get(_client_id(self.headers, form) or "")
                cors = _cors(origin_header if client is not None
                             and client.origin_allowed(origin_header) else None)
                self._check_ssl(realm)
                try:
                    out = p.token(realm, self.headers, form)
                except OAuthError as exc:
                    if exc.error == "invalid_client":
                        cors = _cors(None)
                    raise
                self._json(200, out, cors, note=f"grant={_safe(form.get('grant_type'))} "
                           f"client={_client_hint(self.headers, form)}", no_store=True)
            elif rest == f"{OIDC}/token/introspect" and post:
                form = self._form()
                self._check_ssl(realm)
                self._json(200, p.introspect(realm, self.headers, form), cors,
                           no_store=True)
            elif rest == f"{OIDC}/userinfo" and (get or post):
                token = None
                auth = self.headers.get("Authorization", "")
                if auth[:7].lower() == "bearer ":
                    token = auth[7:].strip()
                elif post:
                    token = self._form().get("access_token")
                self._check_ssl(realm)
                self._json(200, p.userinfo(realm, self.headers, token), cors, no_store=True)
            elif rest in KNOWN_PATHS:
                raise OAuthError("invalid_request", "Method not allowed", 405,
                                 {"Allow": "POST" if rest == LOGOUT_CONFIRM else "GET, POST"})
            else:
                raise OAuthError("not_found", "Unknown path", 404)
        except OAuthError as exc:
            exc.headers = {**cors, **exc.headers}
            raise

    def _check_ssl(self, realm: Realm) -> None:
        if self.provider.ssl_refused(realm, self.headers, self.client_address[0]):
            raise OAuthError("invalid_request", MSG_HTTPS_REQUIRED, 403)

    def _browser(self, realm: Realm, rest: str, url, post: bool) -> None:
        """The pages a person's browser sees: errors are HTML pages, never JSON."""
        p = self.provider
        try:
            try:
                query = _single(parse_qs(url.query, keep_blank_values=True))
                form = self._form() if post else {}
            except OAuthError as exc:
                raise PageError(MSG_INVALID_REQUEST, 413 if exc.status == 413 else 400,
                                note=f"error={exc.error}") from None
            if p.ssl_refused(realm, self.headers, self.client_address[0]):
                raise PageError(MSG_HTTPS_REQUIRED, 403, note="error=https_required")
            cookies = self._cookies()
            if rest == f"{OIDC}/auth":
                reply = p.authorize(realm, self.headers, form if post else query, cookies)
            elif rest == LOGIN_ACTION:
                reply = p.login(realm, self.headers, query, form, cookies) if post \
                    else p.login_page(realm, self.headers, query, cookies)
            elif rest == f"{OIDC}/logout":
                if post and "refresh_token" in form:
                    self._logout_token(realm, form)
                    return
                reply = p.logout(realm, self.headers, form if post else query, cookies)
            else:
                reply = p.logout_confirm(realm, self.headers, query, form, cookies)
        except PageError as exc:
            reply = p.error_page(realm, exc)
        self._reply(reply)

    def _logout_token(self, realm: Realm, form: dict[str, str]) -> None:
        origin = self.headers.get("Origin")
        client = realm.clients.get(_client_id(self.headers, form) or "")
        cors = _cors(origin if client is not None and client.origin_allowed(origin)
                     else None)
        try:
            self.provider.logout_token(realm, self.headers, form)
        except OAuthError as exc:
            exc.headers = {**cors, **exc.headers}
            raise
        self._send(204, None, headers=cors,
                   note=f"logout=refresh_token client={_client_hint(self.headers, form)}")


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
            raise OAuthError("invalid_request", f"parameter '{_safe(k)}' is repeated")
        out[k] = v[0]
    return out


def _client_id(headers, form: dict[str, str]) -> str | None:
    """The client id a token request names (Basic credentials or the form)."""
    auth = headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip()).decode("utf-8", "replace")
            return unquote_plus(raw.split(":", 1)[0])
        except (binascii.Error, ValueError):
            return None
    return form.get("client_id")


def _client_hint(headers, form: dict[str, str]) -> str:
    """The client id of a token request, for the log (never the secret)."""
    return _safe(_client_id(headers, form) or "-")


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
            log(f"realm '{r.name}' loaded from {r.source}: {len(r.clients)} clients, "
                f"{len(r.users)} users (issuer "
                f"{self.provider.hostname or '<from request>'}/realms/{r.name})")
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
