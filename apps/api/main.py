"""parity reference workload: the control-plane API.

Stands in for a platform team's own API in the default stack. Everything it
knows comes from its env (see base/services/api.yaml and overlays/phases/):

  DATABASE_HOST/PORT/NAME/USER/PASSWORD  Postgres (schema applied at startup)
  REDIS_HOST/PORT/PASSWORD               Redis (readiness)
  OIDC_ISSUER_URL, OIDC_AUDIENCE         token validation for /whoami, /session, /me, /events
  PUBLIC_API_URL, PUBLIC_WEB_URL         browser-facing URLs, served by /config
  SESSION_SIGNING_KEY                    HMAC-SHA256 key of the session cookie
  SSL_CERT_FILE                          the local CA; https URLs are verified against it
  NATS_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE     phase 2: readiness covers them
  REGISTRY_PUBLIC_URL, BOOTSTRAP_ARTIFACTS_URL       phase 3: served by /config
  VAULT_ADDR                                         phase 3: received, not used

How the browser reaches it (all optional strings; an invalid value stops the
process at start with exit 2, naming the variable):

  CORS_ALLOWED_ORIGINS     comma-separated exact origins (scheme://host[:port]) allowed
                           to call the API with credentials. Default: the origin of
                           PUBLIC_WEB_URL. "*" is refused (credentials need exact origins).
  SESSION_COOKIE_NAME      default "parity_session"
  SESSION_COOKIE_DOMAIN    default unset: a host-only cookie (no Domain attribute)
  SESSION_COOKIE_SECURE    "true" (default) or "false": the Secure attribute
  SESSION_COOKIE_SAMESITE  "Lax" (default), "Strict" or "None" (None needs Secure)

CORS, on every route: a request whose Origin is allowed gets
Access-Control-Allow-Origin: <origin>, -Allow-Credentials: true; every response
carries Vary: Origin. OPTIONS on a known path from an allowed origin is the
preflight: 204 with -Allow-Methods (GET, POST, DELETE, OPTIONS), -Allow-Headers
(Authorization, Content-Type) and -Max-Age 600. Any other Origin gets no CORS
headers (its preflight: 403) and one warning line per origin per 10 minutes.

The session cookie: base64url(JSON {"sub", "user", "exp"}) "." base64url(HMAC-SHA256(
SESSION_SIGNING_KEY, <the base64url payload text>)), without padding; attributes
Path=/; HttpOnly; SameSite=<..>; Max-Age=<min(token exp - now, 3600)>[; Secure][; Domain=<..>].
Verified in constant time; tampered or expired means not signed in. Tokens,
cookies and the key are never logged.

Endpoints:
  GET  /healthz      200 {"status":"ok"} while the process runs
  GET  /readyz       200 when Postgres, Redis (and NATS, Temporal when configured)
                     answer and the schema is applied; 503 otherwise. The body
                     names every dependency with ok/error (never a secret).
  GET  /contract     {"env": {KEY: "sha256:<hex>"}} (see deps.py for the noise list)
  GET  /config       the browser-relevant, non-secret config
  GET  /whoami       validates "Authorization: Bearer <JWT>" against the issuer
  POST /session      Bearer token (as /whoami) -> 200 {"user", "sub"} + Set-Cookie;
                     401 {"error": <why the token was refused>}, 503 issuer unusable
  DELETE /session    204, Set-Cookie clearing the session (Max-Age=0)
  GET  /me           the session cookie (or a Bearer token) -> 200 {"user", "sub",
                     "seed_rows", "events", "issuer"}; 401 {"error": "not signed in"}
  GET  /seed         {"seed_rows": n}: reset checks expect 1 after a fresh start
  POST /events       {"topic": t, "payload": {...}} -> an outbox row (bearer token required)
  GET  /events/<id>  that row's publication state (bearer token required)

Usage: python3 main.py [--host 0.0.0.0] [--port 8080]
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
import urllib.parse
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
# from the source tree, deps.py is in apps/common (in the image, beside main.py)
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import deps  # noqa: E402

log = deps.setup_logging("api")

REQUIRED_ENV = ("DATABASE_HOST", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD",
                "REDIS_HOST", "OIDC_ISSUER_URL", "OIDC_AUDIENCE")
SCHEMA_RETRY_SECONDS = 60
JWKS_TTL = 60.0
TOPIC = re.compile(r"^[A-Za-z0-9_-]+(\.[A-Za-z0-9_-]+)*$")


# --------------------------------------------------------------------------
# Schema: applied in the background so /healthz answers immediately
# --------------------------------------------------------------------------

class Schema:
    def __init__(self):
        self.applied = threading.Event()
        self.error = "not applied yet"

    def apply_with_retry(self) -> None:
        start, delay, warned = time.monotonic(), 0.5, False
        while not deps.STOP.is_set():
            try:
                conn = deps.pg_connect(timeout=5)
                try:
                    deps.apply_schema(conn)
                finally:
                    conn.close()
                self.error = ""
                self.applied.set()
                log.info("schema applied (outbox, seed)")
                return
            except Exception as exc:  # noqa: BLE001
                self.error = deps.error_text(exc)
                waited = time.monotonic() - start
                if waited > SCHEMA_RETRY_SECONDS and not warned:
                    log.error("schema not applied after %ds, still retrying: %s", waited, self.error)
                    warned = True
                else:
                    log.warning("schema: database not ready (%s); retrying in %.1fs", self.error, delay)
            deps.STOP.wait(delay)
            delay = min(delay * 2, 10.0 if warned else 5.0)


SCHEMA = Schema()


# --------------------------------------------------------------------------
# OIDC token validation
# --------------------------------------------------------------------------

class AuthError(Exception):
    """The token is not acceptable: 401."""


class IssuerError(Exception):
    """The issuer could not be used (unreachable, misconfigured): 503."""


class OidcVerifier:
    """Discovery + JWKS from OIDC_ISSUER_URL (cached JWKS_TTL seconds), RS256 only."""

    def __init__(self, issuer: str, audience: str, cafile: str | None):
        self.issuer = issuer
        self.audience = audience
        self.cafile = cafile
        self._lock = threading.Lock()
        self._keys: dict = {}
        self._fetched = 0.0

    def _context(self) -> ssl.SSLContext:
        if self.cafile and os.path.exists(self.cafile):
            return ssl.create_default_context(cafile=self.cafile)
        return ssl.create_default_context()

    def _get_json(self, url: str) -> dict:
        req = urllib.request.Request(url, headers={"Accept": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=5, context=self._context()) as resp:
                return json.loads(resp.read())
        except urllib.error.HTTPError as exc:
            raise IssuerError(f"GET {url} -> HTTP {exc.code}") from None
        except (urllib.error.URLError, OSError, ValueError) as exc:
            reason = getattr(exc, "reason", exc)
            raise IssuerError(f"GET {url} failed: {deps.redact(reason)}") from None

    def _refresh(self) -> None:
        disco = self._get_json(self.issuer.rstrip("/") + "/.well-known/openid-configuration")
        if disco.get("issuer") != self.issuer:
            raise IssuerError(f"discovery issuer {disco.get('issuer')!r} != OIDC_ISSUER_URL {self.issuer!r}")
        jwks_uri = disco.get("jwks_uri")
        if not jwks_uri:
            raise IssuerError("discovery document has no jwks_uri")
        jwks = self._get_json(jwks_uri)
        from jwt.algorithms import RSAAlgorithm  # noqa: PLC0415

        keys = {}
        for jwk in jwks.get("keys", []):
            if jwk.get("kty") != "RSA" or jwk.get("use", "sig") != "sig":
                continue
            try:
                keys[jwk.get("kid")] = RSAAlgorithm.from_jwk(json.dumps(jwk))
            except Exception as exc:  # noqa: BLE001
                log.warning("skipping unusable JWK kid=%s: %s", jwk.get("kid"), deps.error_text(exc))
        self._keys, self._fetched = keys, time.monotonic()
        log.info("fetched JWKS from the issuer: %d signing key(s)", len(keys))

    def key_for(self, kid: str | None):
        with self._lock:
            age = time.monotonic() - self._fetched
            if not self._fetched or age > JWKS_TTL:
                self._refresh()
            elif kid not in self._keys and age > 10:  # key rotation: refetch, rate-limited
                self._refresh()
            if kid in self._keys:
                return self._keys[kid]
            if kid is None and len(self._keys) == 1:
                return next(iter(self._keys.values()))
            raise AuthError(f"unknown signing key (kid {kid!r})")

    def verify(self, token: str) -> dict:
        import jwt  # noqa: PLC0415

        try:
            header = jwt.get_unverified_header(token)
        except jwt.InvalidTokenError:
            raise AuthError("malformed token") from None
        if header.get("alg") != "RS256":
            raise AuthError(f"unsupported alg {header.get('alg')!r} (RS256 only)")
        key = self.key_for(header.get("kid"))
        try:
            return jwt.decode(token, key=key, algorithms=["RS256"], audience=self.audience,
                              issuer=self.issuer, leeway=30,
                              options={"require": ["exp", "iss", "aud"]})
        except jwt.ExpiredSignatureError:
            raise AuthError("token expired") from None
        except jwt.InvalidAudienceError:
            raise AuthError(f"wrong audience (expected {self.audience!r})") from None
        except jwt.InvalidIssuerError:
            raise AuthError(f"wrong issuer (expected {self.issuer!r})") from None
        except jwt.InvalidSignatureError:
            raise AuthError("bad signature") from None
        except jwt.MissingRequiredClaimError as exc:
            raise AuthError(f"missing claim {exc.claim!r}") from None
        except jwt.InvalidTokenError as exc:
            raise AuthError(f"invalid token: {type(exc).__name__}") from None


VERIFIER: OidcVerifier | None = None


# --------------------------------------------------------------------------
# Browser access: CORS and the session cookie
# --------------------------------------------------------------------------

class ConfigError(Exception):
    """An env value the API cannot work with: it refuses to start."""


SESSION_MAX_AGE = 3600
CORS_WARN_INTERVAL = 600.0  # seconds between two warnings about the same refused origin
CORS_HEADERS = {"Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
                "Access-Control-Allow-Headers": "Authorization, Content-Type",
                "Access-Control-Max-Age": "600"}
_COOKIE_NAME = re.compile(r"^[!#$%&'*+\-.^_`|~0-9A-Za-z]+$")  # an RFC 6265 token
_COOKIE_DOMAIN = re.compile(r"^\.?[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]*[A-Za-z0-9])?)*$")
_DEFAULT_PORTS = {"http": 80, "https": 443}


def origin_of(url: str) -> str:
    """scheme://host[:port] of ``url``, lower-cased, default port dropped (as browsers
    send it in Origin); ConfigError when ``url`` is not an absolute http(s) URL."""
    u = urllib.parse.urlsplit(url.strip())
    if u.scheme.lower() not in _DEFAULT_PORTS or not u.hostname:
        raise ConfigError(f"{url!r} is not an http(s) URL")
    try:
        port = u.port
    except ValueError:
        raise ConfigError(f"{url!r} has a bad port") from None
    host = u.hostname.lower()
    if ":" in host:
        host = f"[{host}]"
    scheme = u.scheme.lower()
    return f"{scheme}://{host}" + (f":{port}" if port and port != _DEFAULT_PORTS[scheme] else "")


def _b64e(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode("ascii")


def _b64d(text: str) -> bytes:
    if not re.fullmatch(r"[A-Za-z0-9_-]*", text):
        raise ValueError("not base64url")
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


class BrowserConfig:
    """CORS_ALLOWED_ORIGINS and SESSION_COOKIE_* (see the module docstring)."""

    def __init__(self, environ=None):
        e = os.environ if environ is None else environ
        self._notes: list = []
        raw = e.get("CORS_ALLOWED_ORIGINS")
        if raw is None or not raw.strip():
            web = e.get("PUBLIC_WEB_URL", "").strip()
            try:
                self.origins = frozenset({origin_of(web)}) if web else frozenset()
            except ConfigError as exc:  # /config serves it as it is; CORS cannot use it
                self.origins = frozenset()
                self._notes.append(f"PUBLIC_WEB_URL (the default of CORS_ALLOWED_ORIGINS): {exc}")
        else:
            origins = set()
            for item in (x.strip() for x in raw.split(",")):
                if not item:
                    continue
                if item == "*":
                    raise ConfigError("CORS_ALLOWED_ORIGINS: '*' cannot be used with credentials; "
                                      "list the exact origins")
                try:
                    origin = origin_of(item)
                except ConfigError as exc:
                    raise ConfigError(f"CORS_ALLOWED_ORIGINS: {exc}") from None
                u = urllib.parse.urlsplit(item)
                if u.path not in ("", "/") or u.query or u.fragment or "@" in u.netloc:
                    raise ConfigError(f"CORS_ALLOWED_ORIGINS: {item!r} is not an origin "
                                      f"(scheme://host[:port], e.g. {origin!r})")
                origins.add(origin)
            self.origins = frozenset(origins)

        self.cookie_name = e.get("SESSION_COOKIE_NAME", "").strip() or "parity_session"
        if not _COOKIE_NAME.match(self.cookie_name):
            raise ConfigError(f"SESSION_COOKIE_NAME {self.cookie_name!r} is not a cookie name (RFC 6265 token)")
        self.domain = e.get("SESSION_COOKIE_DOMAIN", "").strip() or None
        if self.domain and not _COOKIE_DOMAIN.match(self.domain):
            raise ConfigError(f"SESSION_COOKIE_DOMAIN {self.domain!r} is not a domain name")
        secure = e.get("SESSION_COOKIE_SECURE", "").strip().lower() or "true"
        if secure not in ("true", "false", "1", "0", "yes", "no"):
            raise ConfigError(f"SESSION_COOKIE_SECURE must be true or false, not {secure!r}")
        self.secure = secure in ("true", "1", "yes")
        samesite = e.get("SESSION_COOKIE_SAMESITE", "").strip() or "Lax"
        canonical = {"lax": "Lax", "strict": "Strict", "none": "None"}.get(samesite.lower())
        if canonical is None:
            raise ConfigError(f"SESSION_COOKIE_SAMESITE must be Lax, Strict or None, not {samesite!r}")
        self.samesite = canonical
        key = e.get("SESSION_SIGNING_KEY", "")
        self.key = key.encode("utf-8") if key else None

    def warnings(self) -> list:
        out = list(self._notes)
        if not self.origins:
            out.append("no CORS origin allowed (CORS_ALLOWED_ORIGINS and PUBLIC_WEB_URL unset): "
                       "browsers cannot call this API from another origin")
        if self.samesite == "None" and not self.secure:
            out.append("SESSION_COOKIE_SAMESITE=None without SESSION_COOKIE_SECURE=true: "
                       "browsers reject such a cookie")
        if self.key is None:
            out.append("SESSION_SIGNING_KEY is not set: POST /session answers 503")
        elif len(self.key) < 32:
            out.append("SESSION_SIGNING_KEY is shorter than 32 bytes")
        return out

    def describe(self) -> str:
        return (f"CORS origins {sorted(self.origins)}; session cookie {self.cookie_name} "
                f"(Domain={self.domain or '<host-only>'}, Secure={str(self.secure).lower()}, "
                f"SameSite={self.samesite})")

    # -- the cookie ------------------------------------------------------------
    def cookie_header(self, value: str, max_age: int) -> str:
        parts = [f"{self.cookie_name}={value}", "Path=/", "HttpOnly", f"SameSite={self.samesite}",
                 f"Max-Age={max(0, int(max_age))}"]
        if self.secure:
            parts.append("Secure")
        if self.domain:
            parts.append(f"Domain={self.domain}")
        return "; ".join(parts)

    def _mac(self, payload: str) -> bytes:
        return hmac.new(self.key, payload.encode("ascii"), hashlib.sha256).digest()

    def sign(self, session: dict) -> str:
        payload = _b64e(json.dumps(session, separators=(",", ":"), sort_keys=True).encode())
        return payload + "." + _b64e(self._mac(payload))

    def verify(self, value: str, now: float | None = None) -> dict:
        """The session in a cookie value; ValueError (naming why, never the value)."""
        if self.key is None:
            raise ValueError("no signing key")
        payload, sep, mac = value.partition(".")
        if not sep or not payload or not mac:
            raise ValueError("malformed")
        try:
            given = _b64d(mac)
        except ValueError:
            raise ValueError("malformed") from None
        if not hmac.compare_digest(given, self._mac(payload)):
            raise ValueError("bad signature")
        try:
            session = json.loads(_b64d(payload))
        except ValueError:
            raise ValueError("malformed") from None
        if not isinstance(session, dict) or not isinstance(session.get("exp"), int) \
                or not isinstance(session.get("sub"), str):
            raise ValueError("malformed")
        if session["exp"] <= (time.time() if now is None else now):
            raise ValueError("expired")
        return session


BROWSER: BrowserConfig | None = None


class OriginWarnings:
    """One warning line per refused origin per CORS_WARN_INTERVAL (bounded memory)."""

    def __init__(self, interval: float = CORS_WARN_INTERVAL, size: int = 1024):
        self.interval, self.size = interval, size
        self._last: dict = {}
        self._lock = threading.Lock()

    def should_log(self, origin: str) -> bool:
        now = time.monotonic()
        with self._lock:
            last = self._last.get(origin)
            if last is not None and now - last < self.interval:
                return False
            if len(self._last) >= self.size:
                self._last = {o: t for o, t in self._last.items() if now - t < self.interval}
                if len(self._last) >= self.size:
                    return False  # flooded with distinct origins: stay quiet until they age out
            self._last[origin] = now
            return True


REFUSED_ORIGINS = OriginWarnings()


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class Api(deps.JsonHandler):
    logger = log
    routes = {
        ("GET", "/healthz"): "healthz",
        ("GET", "/readyz"): "readyz",
        ("GET", "/contract"): "contract",
        ("GET", "/config"): "config",
        ("GET", "/whoami"): "whoami",
        ("POST", "/session"): "create_session",
        ("DELETE", "/session"): "delete_session",
        ("GET", "/me"): "me",
        ("GET", "/seed"): "seed",
        ("POST", "/events"): "post_event",
    }

    def before_route(self, method, path):
        """CORS for every route; answers preflights and refused origins' OPTIONS."""
        self.extra_headers["Vary"] = "Origin"
        origin = self.headers.get("Origin")
        if origin is None:
            return False
        if origin in BROWSER.origins:
            self.extra_headers.update({"Access-Control-Allow-Origin": origin,
                                       "Access-Control-Allow-Credentials": "true"})
            if method == "OPTIONS" and self.known_path(path):
                self.send_empty(204, CORS_HEADERS)
                return True
            return False
        shown = origin.encode("ascii", "backslashreplace").decode()[:200]
        if REFUSED_ORIGINS.should_log(origin):
            log.warning("CORS: refused origin %r (%s %s); allowed: %s (CORS_ALLOWED_ORIGINS)",
                        shown, method, path, ", ".join(sorted(BROWSER.origins)) or "none")
        if method == "OPTIONS":
            self.send_json(403, {"error": f"origin {shown} is not allowed (CORS_ALLOWED_ORIGINS)"})
            return True
        return False

    def route_prefix(self, method, path):
        if method == "GET" and re.fullmatch(r"/events/\d{1,18}", path):
            return "get_event"
        return None

    def healthz(self):
        self.send_json(200, {"status": "ok"})

    def readyz(self):
        ok, results = deps.run_checks(deps.dependency_checks())
        if SCHEMA.applied.is_set():
            results["schema"] = {"ok": True, "detail": "outbox, seed"}
        else:
            results["schema"] = {"ok": False, "error": SCHEMA.error}
            ok = False
        self.send_json(200 if ok else 503, {"status": "ok" if ok else "unavailable", "checks": results})

    def contract(self):
        self.send_json(200, {"env": deps.contract_env()})

    def config(self):
        e = os.environ
        body = {"oidc_issuer": e.get("OIDC_ISSUER_URL"), "oidc_audience": e.get("OIDC_AUDIENCE"),
                "public_api_url": e.get("PUBLIC_API_URL"), "public_web_url": e.get("PUBLIC_WEB_URL")}
        for key, name in (("REGISTRY_PUBLIC_URL", "registry_public_url"),
                          ("BOOTSTRAP_ARTIFACTS_URL", "bootstrap_artifacts_url")):
            if e.get(key):
                body[name] = e[key]
        self.send_json(200, body)

    def _claims(self) -> dict | None:
        """The verified claims, or None after sending 401/503."""
        auth = self.headers.get("Authorization", "")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() != "bearer" or not token.strip():
            self.send_json(401, {"error": "missing bearer token"},
                           {"WWW-Authenticate": 'Bearer realm="parity"'})
            return None
        try:
            return VERIFIER.verify(token.strip())
        except AuthError as exc:
            self.send_json(401, {"error": str(exc)},
                           {"WWW-Authenticate": 'Bearer realm="parity", error="invalid_token"'})
        except IssuerError as exc:
            log.warning("token validation unavailable: %s", exc)
            self.send_json(503, {"error": f"issuer unavailable: {exc}"})
        return None

    def whoami(self):
        claims = self._claims()
        if claims is not None:
            self.send_json(200, {"sub": claims.get("sub"), "azp": claims.get("azp"), "iss": claims.get("iss")})

    # -- the browser session ---------------------------------------------------
    @staticmethod
    def _user(claims: dict) -> str:
        return claims.get("preferred_username") or claims.get("sub")

    def create_session(self):
        claims = self._claims()
        if claims is None:
            return
        if BROWSER.key is None:
            self.send_json(503, {"error": "sessions are disabled: SESSION_SIGNING_KEY is not set"})
            return
        sub = claims.get("sub")
        if not isinstance(sub, str) or not sub:
            self.send_json(401, {"error": "token has no 'sub' claim"},
                           {"WWW-Authenticate": 'Bearer realm="parity", error="invalid_token"'})
            return
        now = int(time.time())
        ttl = min(int(claims["exp"]) - now, SESSION_MAX_AGE)
        if ttl <= 0:
            self.send_json(401, {"error": "token expired"},
                           {"WWW-Authenticate": 'Bearer realm="parity", error="invalid_token"'})
            return
        user = self._user(claims)
        value = BROWSER.sign({"sub": sub, "user": user, "exp": now + ttl})
        self.send_json(200, {"user": user, "sub": sub},
                       {"Set-Cookie": BROWSER.cookie_header(value, ttl)})

    def delete_session(self):
        self.send_empty(204, {"Set-Cookie": BROWSER.cookie_header("", 0)})

    def _session(self) -> dict | None:
        """The session from the cookie, else from a Bearer token; None after a 401/503."""
        value = self.cookies().get(BROWSER.cookie_name)
        if value:
            try:
                return BROWSER.verify(value)
            except ValueError as exc:
                log.info("session cookie refused: %s", exc)
        if self.headers.get("Authorization"):
            claims = self._claims()
            if claims is None:
                return None
            return {"sub": claims.get("sub"), "user": self._user(claims)}
        self.send_json(401, {"error": "not signed in"},
                       {"WWW-Authenticate": 'Bearer realm="parity"'})
        return None

    def me(self):
        session = self._session()
        if session is None:
            return
        try:
            (seed_rows,), = self._query("SELECT count(*) FROM seed")
            (events,), = self._query("SELECT count(*) FROM outbox")
        except Exception as exc:  # noqa: BLE001
            self.send_json(503, {"error": f"postgres: {deps.error_text(exc)}"})
            return
        self.send_json(200, {"user": session.get("user"), "sub": session.get("sub"),
                             "seed_rows": seed_rows, "events": events,
                             "issuer": os.environ.get("OIDC_ISSUER_URL")})

    def _query(self, sql: str, args=()):
        import psycopg2.errors  # noqa: PLC0415

        for attempt in (1, 2):
            conn = deps.pg_connect()
            try:
                with conn, conn.cursor() as cur:
                    cur.execute(sql, args)
                    return cur.fetchall()
            except psycopg2.errors.UndefinedTable:
                if attempt == 2:
                    raise
                log.warning("schema missing (database reset?); applying it again")
                conn.rollback()
                deps.apply_schema(conn)
            finally:
                conn.close()
        return []

    def seed(self):
        try:
            (count,), = self._query("SELECT count(*) FROM seed")
        except Exception as exc:  # noqa: BLE001
            self.send_json(503, {"error": f"postgres: {deps.error_text(exc)}"})
            return
        self.send_json(200, {"seed_rows": count})

    def post_event(self):
        if self._claims() is None:
            return
        try:
            body = self.read_json()
        except ValueError:
            self.send_json(400, {"error": "body must be JSON"})
            return
        topic = body.get("topic") if isinstance(body, dict) else None
        payload = body.get("payload", {}) if isinstance(body, dict) else None
        if not isinstance(topic, str) or not TOPIC.match(topic) or len(topic) > 200:
            self.send_json(400, {"error": "topic must be dot-separated tokens of [A-Za-z0-9_-]"})
            return
        rows = self._query("INSERT INTO outbox (topic, payload) VALUES (%s, %s::jsonb) RETURNING id",
                           (topic, json.dumps(payload)))
        self.send_json(201, {"id": rows[0][0], "topic": topic, "subject": f"outbox.{topic}"})

    def get_event(self):
        if self._claims() is None:
            return
        event_id = int(self.path.split("?")[0].rsplit("/", 1)[1])
        rows = self._query("SELECT id, topic, created_at, published_at FROM outbox WHERE id = %s",
                           (event_id,))
        if not rows:
            self.send_json(404, {"error": "no such event"})
            return
        rid, topic, created, published = rows[0]
        self.send_json(200, {"id": rid, "topic": topic, "created_at": created.isoformat(),
                             "published": published is not None,
                             "published_at": published.isoformat() if published else None})


def _start() -> None:
    global VERIFIER, BROWSER
    try:
        BROWSER = BrowserConfig()
    except ConfigError as exc:
        log.error("refusing to start: %s", exc)
        raise SystemExit(2) from None
    for warning in BROWSER.warnings():
        log.warning("%s", warning)
    log.info("browser access: %s", BROWSER.describe())
    VERIFIER = OidcVerifier(os.environ["OIDC_ISSUER_URL"], os.environ["OIDC_AUDIENCE"],
                            os.environ.get("SSL_CERT_FILE"))
    threading.Thread(target=SCHEMA.apply_with_retry, name="schema", daemon=True).start()


def main(argv=None) -> int:
    return deps.run_server(Api, "parity reference API", REQUIRED_ENV, log, argv, _start)


if __name__ == "__main__":
    sys.exit(main())
