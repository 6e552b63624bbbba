"""parity reference workload: the control-plane API.

Stands in for a platform team's own API in the default stack. Everything it
knows comes from its env (see base/services/api.yaml and overlays/phases/):

  DATABASE_HOST/PORT/NAME/USER/PASSWORD  Postgres (schema applied at startup)
  REDIS_HOST/PORT/PASSWORD               Redis (readiness)
  OIDC_ISSUER_URL, OIDC_AUDIENCE         token validation for /whoami and /events
  PUBLIC_API_URL, PUBLIC_WEB_URL         browser-facing URLs, served by /config
  SESSION_SIGNING_KEY                    received (part of the contract), not used yet
  SSL_CERT_FILE                          the local CA; https URLs are verified against it
  NATS_URL, TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE     phase 2: readiness covers them
  REGISTRY_PUBLIC_URL, BOOTSTRAP_ARTIFACTS_URL       phase 3: served by /config
  VAULT_ADDR                                         phase 3: received, not used

Endpoints:
  GET  /healthz      200 {"status":"ok"} while the process runs
  GET  /readyz       200 when Postgres, Redis (and NATS, Temporal when configured)
                     answer and the schema is applied; 503 otherwise. The body
                     names every dependency with ok/error (never a secret).
  GET  /contract     {"env": {KEY: "sha256:<hex>"}} (see deps.py for the noise list)
  GET  /config       the browser-relevant, non-secret config
  GET  /whoami       validates "Authorization: Bearer <JWT>" against the issuer
  GET  /seed         {"seed_rows": n}: reset checks expect 1 after a fresh start
  POST /events       {"topic": t, "payload": {...}} -> an outbox row (bearer token required)
  GET  /events/<id>  that row's publication state (bearer token required)

Usage: python3 main.py [--host 0.0.0.0] [--port 8080]
"""

from __future__ import annotations

import json
import os
import re
import ssl
import sys
import threading
import time
import urllib.error
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
        ("GET", "/seed"): "seed",
        ("POST", "/events"): "post_event",
    }

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
    global VERIFIER
    VERIFIER = OidcVerifier(os.environ["OIDC_ISSUER_URL"], os.environ["OIDC_AUDIENCE"],
                            os.environ.get("SSL_CERT_FILE"))
    threading.Thread(target=SCHEMA.apply_with_retry, name="schema", daemon=True).start()


def main(argv=None) -> int:
    return deps.run_server(Api, "parity reference API", REQUIRED_ENV, log, argv, _start)


if __name__ == "__main__":
    sys.exit(main())
