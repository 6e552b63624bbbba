"""Shared runtime helpers of parity's reference workloads (api, web, worker).

There is one copy, here: api, web and worker share it. The build context of
every app is apps/ (the model's `build: {context: apps, dockerfile:
<name>/Dockerfile}`), and each Dockerfile copies this file beside its app's
main.py, so the apps import it as `deps`.

Only the standard library is imported at module level. psycopg2, redis and
grpc are imported inside the functions that need them, so the web image
(stdlib only) and the tests can import this module without them.

What is here:
  * the env contract (`contract_env`): which received env vars are the
    service's contract, and their sha256 hashes (values never leave the process)
  * `redact`: scrubs secret values out of any text before it is logged or served
  * dependency checks for /readyz: Postgres, Redis, NATS, Temporal (gRPC health)
  * `NatsClient`: a minimal NATS client speaking the raw text protocol, with
    request/reply, and `ensure_stream` / `check_stream` over the JetStream API
    (the outbox stream `OUTBOX_STREAM` the notification worker seeds)
  * `JsonHandler` / `serve`: a ThreadingHTTPServer with one log line per request
    (GET, POST, DELETE and OPTIONS dispatch, a per-request hook for headers such
    as CORS, request cookies)
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import signal
import socket
import threading
import time
import urllib.parse
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FuturesTimeout
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

log = logging.getLogger("parity")

CHECK_TIMEOUT = 2.0  # seconds, per dependency check


def setup_logging(name: str) -> logging.Logger:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return logging.getLogger(name)


# --------------------------------------------------------------------------
# The env contract
#
# A service's contract is every env var it received EXCEPT the runtime noise
# below, which the container runtime, the base image or Kubernetes add on
# their own and which no stack model declares:
#
#   exact names  PATH HOSTNAME HOME LANG TERM SHLVL PWD _ GPG_KEY
#                HTTP_PROXY HTTPS_PROXY NO_PROXY FTP_PROXY ALL_PROXY (any case;
#                the Docker client injects them from ~/.docker/config.json)
#   prefixes     LC_*  PYTHON*  (PYTHON_VERSION, PYTHON_SHA256 of python images;
#                PYTHONUNBUFFERED, PYTHONDONTWRITEBYTECODE of our Dockerfiles)
#   Kubernetes   service links: *_SERVICE_HOST, *_SERVICE_PORT, *_SERVICE_PORT_*,
#                *_PORT_<n>_TCP|UDP|SCTP[_*], and *_PORT whose value is a
#                service-link URL (tcp://, udp://, sctp://). A *_PORT holding a
#                plain port number (REDIS_PORT=6379) IS contract.
#
# Everything else a service receives is reported by GET /contract as
# {"env": {KEY: "sha256:<hex of the UTF-8 value>"}}; values never leave the
# process. A base image that bakes other ENV shows up as "received but not in
# the contract" in parity's contract check, which is intended.
# --------------------------------------------------------------------------

NOISE_EXACT = frozenset({"PATH", "HOSTNAME", "HOME", "LANG", "TERM", "SHLVL", "PWD", "_", "GPG_KEY"})
NOISE_ANY_CASE = frozenset({"HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY", "FTP_PROXY", "ALL_PROXY"})
NOISE_PREFIXES = ("LC_", "PYTHON")
_K8S_SERVICE = re.compile(r"^[A-Z0-9_]+_SERVICE_(HOST|PORT)(_[A-Z0-9_]+)?$")
_K8S_PORT_DETAIL = re.compile(r"^[A-Z0-9_]+_PORT_\d+_(TCP|UDP|SCTP)(_[A-Z0-9_]+)?$")
_K8S_PORT_URL = re.compile(r"^(tcp|udp|sctp)://")


def is_runtime_noise(key: str, value: str) -> bool:
    if key in NOISE_EXACT or key.upper() in NOISE_ANY_CASE:
        return True
    if key.startswith(NOISE_PREFIXES):
        return True
    if _K8S_SERVICE.match(key) or _K8S_PORT_DETAIL.match(key):
        return True
    if key.endswith("_PORT") and _K8S_PORT_URL.match(value or ""):
        return True
    return False


def sha256_of(value: str) -> str:
    return "sha256:" + hashlib.sha256(value.encode("utf-8", "surrogateescape")).hexdigest()


def contract_env(environ=None) -> dict:
    """{KEY: "sha256:<hex>"} for every contract env var (see above), sorted."""
    environ = os.environ if environ is None else environ
    return {k: sha256_of(v) for k, v in sorted(environ.items()) if not is_runtime_noise(k, v)}


# --------------------------------------------------------------------------
# Secret hygiene
# --------------------------------------------------------------------------

_SECRET_NAME = re.compile(r"PASSWORD|SECRET|TOKEN|SIGNING|PRIVATE|_KEY$|CREDENTIAL", re.I)


def secret_values(environ=None) -> list:
    environ = os.environ if environ is None else environ
    vals = {v for k, v in environ.items() if _SECRET_NAME.search(k) and len(v) >= 4}
    return sorted(vals, key=len, reverse=True)


def redact(text, environ=None) -> str:
    """``text`` with the value of every secret-looking env var replaced by ***."""
    text = str(text)
    for v in secret_values(environ):
        text = text.replace(v, "***")
    return text


def error_text(exc: BaseException) -> str:
    msg = str(exc).strip().splitlines()
    first = msg[0] if msg else ""
    return redact(f"{type(exc).__name__}: {first}" if first else type(exc).__name__)


# --------------------------------------------------------------------------
# Postgres and Redis
# --------------------------------------------------------------------------

def pg_connect(environ=None, timeout: float = CHECK_TIMEOUT):
    """A psycopg2 connection from DATABASE_HOST/PORT/NAME/USER/PASSWORD."""
    import psycopg2  # noqa: PLC0415 (lazy: only images that talk to Postgres carry it)

    e = os.environ if environ is None else environ
    return psycopg2.connect(
        host=e["DATABASE_HOST"], port=int(e.get("DATABASE_PORT", "5432")),
        dbname=e["DATABASE_NAME"], user=e["DATABASE_USER"], password=e["DATABASE_PASSWORD"],
        connect_timeout=max(2, int(timeout)),  # libpq treats < 2 as 2
        options=f"-c statement_timeout={int(timeout * 1000)}",
        application_name=e.get("WORKER_ROLE") or "parity-api")


SCHEMA_SQL = """
CREATE TABLE IF NOT EXISTS outbox (
    id           bigserial PRIMARY KEY,
    topic        text        NOT NULL,
    payload      jsonb       NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    published_at timestamptz
);
CREATE INDEX IF NOT EXISTS outbox_unpublished ON outbox (id) WHERE published_at IS NULL;
CREATE TABLE IF NOT EXISTS seed (
    name       text PRIMARY KEY,
    created_at timestamptz NOT NULL DEFAULT now()
);
INSERT INTO seed (name) VALUES ('parity-reference') ON CONFLICT DO NOTHING;
"""


def apply_schema(conn) -> None:
    """Idempotent; serialised by an advisory lock so api and workers may race."""
    with conn:
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_xact_lock(7261)")
            cur.execute(SCHEMA_SQL)


def check_postgres(environ=None) -> str:
    conn = pg_connect(environ)
    try:
        with conn.cursor() as cur:
            cur.execute("SELECT 1")
            cur.fetchone()
    finally:
        conn.close()
    return "SELECT 1"


def check_redis(environ=None) -> str:
    import redis  # noqa: PLC0415
    from redis.backoff import NoBackoff  # noqa: PLC0415
    from redis.retry import Retry  # noqa: PLC0415

    e = os.environ if environ is None else environ
    # No retries: redis-py >= 6 retries connection errors with backoff by default,
    # which would outlast the readiness probe's timeout.
    client = redis.Redis(host=e["REDIS_HOST"], port=int(e.get("REDIS_PORT", "6379")),
                         password=e.get("REDIS_PASSWORD") or None,
                         socket_timeout=CHECK_TIMEOUT, socket_connect_timeout=CHECK_TIMEOUT,
                         retry=Retry(NoBackoff(), 0), retry_on_timeout=False)
    try:
        if not client.ping():
            raise RuntimeError("PING did not return PONG")
    finally:
        client.close()
    return "AUTH + PING"


# --------------------------------------------------------------------------
# NATS: a minimal client for the text protocol
# (https://docs.nats.io/reference/reference-protocols/nats-protocol)
# --------------------------------------------------------------------------

class NatsError(Exception):
    pass


class NatsTimeout(NatsError):
    """No reply to a request in time."""


def parse_nats_url(url: str) -> tuple:
    u = urllib.parse.urlsplit(url if "://" in url else "nats://" + url)
    if u.scheme not in ("nats", "tcp"):
        raise NatsError(f"unsupported NATS URL scheme {u.scheme!r} (only nats:// without TLS)")
    return u.hostname or "127.0.0.1", u.port or 4222


class NatsClient:
    """PUB / SUB / UNSUB / MSG / PING / PONG over one TCP socket.

    Not thread-safe: use one client per thread. Server PINGs are answered
    while reading. ``flush()`` round-trips a PING, so everything published
    before it has been processed by the server when it returns. ``request()``
    publishes with a private reply subject and waits for the one answer.
    MSGs for a subscription already unsubscribed (a late reply) are dropped.
    """

    def __init__(self, url: str, name: str = "parity", timeout: float = CHECK_TIMEOUT):
        self.url = url
        self.name = name
        self.timeout = timeout
        self.sock = None
        self.server_info: dict = {}
        self._buf = bytearray()
        self._pending: list = []  # MSGs read while waiting for a PONG
        self._sid = 0
        self._sids: set = set()  # live subscriptions

    # -- connection ---------------------------------------------------------
    def connect(self) -> "NatsClient":
        host, port = parse_nats_url(self.url)
        self.sock = socket.create_connection((host, port), timeout=self.timeout)
        line = self._read_line(time.monotonic() + self.timeout)
        if not line.startswith(b"INFO "):
            raise NatsError(f"expected INFO from the server, got {line[:40]!r}")
        try:
            self.server_info = json.loads(line[5:])
        except ValueError as exc:
            raise NatsError(f"unreadable INFO line: {exc}") from None
        if self.server_info.get("tls_required"):
            raise NatsError("server requires TLS, which this client does not speak")
        opts = {"verbose": False, "pedantic": False, "name": self.name,
                "lang": "python-raw", "version": "0.1.0", "protocol": 1}
        self._send(b"CONNECT " + json.dumps(opts, separators=(",", ":")).encode() + b"\r\n")
        self.flush()
        return self

    def close(self) -> None:
        if self.sock is not None:
            try:
                self.sock.close()
            finally:
                self.sock = None

    def __enter__(self) -> "NatsClient":
        return self.connect() if self.sock is None else self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- operations ---------------------------------------------------------
    def publish(self, subject: str, payload: bytes = b"", reply: str | None = None) -> None:
        _check_subject(subject)
        head = f"PUB {subject} {reply + ' ' if reply else ''}{len(payload)}\r\n".encode()
        self._send(head + payload + b"\r\n")

    def subscribe(self, subject: str, queue: str | None = None) -> str:
        _check_subject(subject)
        self._sid += 1
        sid = str(self._sid)
        self._send(f"SUB {subject} {queue + ' ' if queue else ''}{sid}\r\n".encode())
        self._sids.add(sid)
        return sid

    def unsubscribe(self, sid: str) -> None:
        self._sids.discard(sid)
        self._pending = [m for m in self._pending if m["sid"] != sid]
        self._send(f"UNSUB {sid}\r\n".encode())

    def request(self, subject: str, payload: bytes = b"", timeout: float | None = None) -> dict:
        """Publish ``payload`` to ``subject`` with a unique ``_INBOX.<random>`` reply
        subject and return the first answer {subject, sid, reply, data}. NatsError
        when none arrives within ``timeout`` (this client does not negotiate headers,
        so "no responders" shows as a timeout: NatsTimeout). MSGs of other subscriptions read
        meanwhile stay queued for ``next_msg``."""
        timeout = self.timeout if timeout is None else timeout
        inbox = "_INBOX." + os.urandom(12).hex()
        sid = self.subscribe(inbox)
        try:
            self.publish(subject, payload, reply=inbox)
            deadline = time.monotonic() + timeout
            while True:
                try:
                    op = self._read_op(deadline)
                except socket.timeout:
                    raise NatsTimeout(f"no reply to {subject} within {timeout:g}s") from None
                if op[0] == "MSG":
                    if op[1]["sid"] == sid:
                        return op[1]
                    self._pending.append(op[1])
        finally:
            if self.sock is not None:
                self.unsubscribe(sid)

    def flush(self, timeout: float | None = None) -> None:
        """PING and wait for PONG (collecting MSGs that arrive first)."""
        self._send(b"PING\r\n")
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            op = self._read_op(deadline)
            if op == ("PONG",):
                return
            if op[0] == "MSG":
                self._pending.append(op[1])

    def next_msg(self, timeout: float) -> dict | None:
        """The next delivered message {subject, sid, reply, data}, or None on timeout."""
        if self._pending:
            return self._pending.pop(0)
        deadline = time.monotonic() + timeout
        while True:
            try:
                op = self._read_op(deadline)
            except socket.timeout:
                return None
            if op[0] == "MSG":
                return op[1]

    # -- wire ---------------------------------------------------------------
    def _send(self, data: bytes) -> None:
        if self.sock is None:
            raise NatsError("not connected")
        self.sock.sendall(data)

    def _fill(self, deadline: float) -> None:
        left = deadline - time.monotonic()
        if left <= 0:
            raise socket.timeout("timed out")
        self.sock.settimeout(left)
        chunk = self.sock.recv(65536)
        if not chunk:
            raise NatsError("connection closed by the server")
        self._buf += chunk

    def _read_line(self, deadline: float) -> bytes:
        while True:
            i = self._buf.find(b"\r\n")
            if i >= 0:
                line = bytes(self._buf[:i])
                del self._buf[:i + 2]
                return line
            if len(self._buf) > 1 << 20:
                raise NatsError("protocol line too long")
            self._fill(deadline)

    def _read_op(self, deadline: float) -> tuple:
        """One server operation; answers PING itself. Returns ("PONG",) or ("MSG", msg).

        An operation is consumed from the buffer only once it is complete, so a
        timeout never leaves a half-read message behind."""
        while True:
            i = self._buf.find(b"\r\n")
            if i < 0:
                if len(self._buf) > 1 << 20:
                    raise NatsError("protocol line too long")
                self._fill(deadline)
                continue
            line = bytes(self._buf[:i])
            verb = line.split(b" ", 1)[0].upper()
            if verb == b"MSG":
                parts = line.decode(errors="replace").split()
                if len(parts) not in (4, 5) or not parts[-1].isdigit():
                    raise NatsError(f"malformed MSG line {line[:80]!r}")
                size = int(parts[-1])
                end = i + 2 + size + 2
                while len(self._buf) < end:
                    self._fill(deadline)
                data = bytes(self._buf[i + 2:i + 2 + size])
                del self._buf[:end]
                if parts[2] not in self._sids:
                    continue  # arrived after UNSUB (e.g. a reply after its request timed out)
                reply = parts[3] if len(parts) == 5 else None
                return ("MSG", {"subject": parts[1], "sid": parts[2], "reply": reply, "data": data})
            del self._buf[:i + 2]
            if verb == b"PING":
                self._send(b"PONG\r\n")
            elif verb == b"PONG":
                return ("PONG",)
            elif verb in (b"+OK", b"INFO"):
                continue
            elif verb == b"-ERR":
                raise NatsError("server error: " + line[5:].decode(errors="replace").strip(" '"))
            else:
                raise NatsError(f"unexpected protocol line {line[:40]!r}")


def _check_subject(subject: str) -> None:
    if not subject or any(c in subject for c in " \t\r\n"):
        raise NatsError(f"invalid NATS subject {subject!r}")


def check_nats(url: str) -> str:
    with NatsClient(url, name="parity-readyz") as nc:
        version = nc.server_info.get("version", "?")
    return f"INFO/CONNECT/PING/PONG (server {version})"


# --------------------------------------------------------------------------
# JetStream: the $JS.API request/reply subjects
# (https://docs.nats.io/reference/reference-protocols/nats_api_reference)
# --------------------------------------------------------------------------

# The stream holding what the notification worker relays from the outbox table
# (subjects outbox.<topic>): seeded by that worker at startup, idempotently.
OUTBOX_STREAM = {"name": "OUTBOX", "subjects": ["outbox.>"], "storage": "file",
                 "retention": "limits", "max_age": 7 * 24 * 3600 * 10**9}  # 7 days, in ns
JS_STREAM_NOT_FOUND = 10059  # err_code; HTTP-like code 404


class JetStreamError(NatsError):
    def __init__(self, api: str, error: dict):
        self.code = error.get("code")
        self.err_code = error.get("err_code")
        super().__init__(f"{api}: {error.get('description') or 'error'} "
                         f"(code {self.code}, err_code {self.err_code})")

    @property
    def not_found(self) -> bool:
        return self.err_code == JS_STREAM_NOT_FOUND or (self.err_code is None and self.code == 404)


def js_api(nc: NatsClient, api: str, body=None, timeout: float | None = None) -> dict:
    """One $JS.API.<api> request; the response JSON, JetStreamError when it has an error."""
    payload = b"" if body is None else json.dumps(body, separators=(",", ":")).encode()
    subject = "$JS.API." + api
    try:
        msg = nc.request(subject, payload, timeout)
    except NatsTimeout as exc:
        raise NatsTimeout(f"{exc} (is JetStream enabled? nats-server --jetstream)") from None
    try:
        resp = json.loads(msg["data"])
    except ValueError:
        raise NatsError(f"{subject}: unreadable response {msg['data'][:80]!r}") from None
    if not isinstance(resp, dict):
        raise NatsError(f"{subject}: unexpected response {msg['data'][:80]!r}")
    if resp.get("error"):
        raise JetStreamError(subject, resp["error"])
    return resp


def stream_info(nc: NatsClient, name: str, timeout: float | None = None) -> dict | None:
    """STREAM.INFO's response ({config, state, ...}), or None when the stream does not exist."""
    try:
        return js_api(nc, f"STREAM.INFO.{name}", timeout=timeout)
    except JetStreamError as exc:
        if exc.not_found:
            return None
        raise


def ensure_stream(nc: NatsClient, config: dict, timeout: float | None = None) -> str:
    """Idempotent: create the stream ``config["name"]`` when missing; when it exists
    with other subjects, update its subjects (the rest of its config is kept).
    Returns what was done: "created", "updated subjects ..." or "exists"."""
    name = config["name"]
    info = stream_info(nc, name, timeout)
    if info is None:
        try:
            js_api(nc, f"STREAM.CREATE.{name}", config, timeout)
            return "created"
        except JetStreamError:
            # lost a race with another creator? Then it exists now: fall through.
            info = stream_info(nc, name, timeout)
            if info is None:
                raise
    current = dict(info.get("config") or {})
    if current.get("subjects") == config["subjects"]:
        return "exists"
    old = current.get("subjects")
    current["subjects"] = config["subjects"]
    js_api(nc, f"STREAM.UPDATE.{name}", current, timeout)
    return f"updated subjects {old} -> {config['subjects']}"


def check_stream(url: str, config: dict, timeout: float = CHECK_TIMEOUT) -> str:
    """Readiness: the stream exists with the subjects of ``config``."""
    deadline = time.monotonic() + timeout
    with NatsClient(url, name="parity-readyz", timeout=timeout) as nc:
        info = stream_info(nc, config["name"], max(0.1, deadline - time.monotonic()))
    if info is None:
        raise RuntimeError(f"stream {config['name']} not found")
    subjects = (info.get("config") or {}).get("subjects")
    if subjects != config["subjects"]:
        raise RuntimeError(f"stream {config['name']} has subjects {subjects}, want {config['subjects']}")
    messages = (info.get("state") or {}).get("messages", 0)
    return f"stream {config['name']} ({', '.join(subjects)}; {messages} message(s))"


# --------------------------------------------------------------------------
# Temporal: the standard gRPC health service, spoken with raw protobuf bytes
#
# The WorkflowService name is asked first because it is the one Temporal's
# frontend itself reports on: newer servers (grpc-go's health server) answer
# SERVING for "" from the moment they listen, while WorkflowService stays
# NOT_SERVING until the frontend has joined the cluster; older servers answer
# SERVICE_UNKNOWN for every other name, "" included. "" is the fallback for a
# server (or proxy) that does not know the WorkflowService name (NOT_FOUND or
# SERVICE_UNKNOWN).
# --------------------------------------------------------------------------

HEALTH_CHECK = "/grpc.health.v1.Health/Check"
TEMPORAL_SERVICE = "temporal.api.workflowservice.v1.WorkflowService"
DESCRIBE_NAMESPACE = "/temporal.api.workflowservice.v1.WorkflowService/DescribeNamespace"
SERVING = b"\x08\x01"  # HealthCheckResponse{status: SERVING}
SERVICE_UNKNOWN = b"\x08\x03"
_STATUS_NAMES = {b"": "UNKNOWN", b"\x08\x00": "UNKNOWN", SERVING: "SERVING",
                 b"\x08\x02": "NOT_SERVING", SERVICE_UNKNOWN: "SERVICE_UNKNOWN"}


def _pb_string(field: int, value: str) -> bytes:
    """A protobuf length-delimited string field (wire type 2)."""
    raw = value.encode()
    out, n = bytearray([(field << 3) | 2]), len(raw)
    while True:
        byte, n = n & 0x7F, n >> 7
        out.append(byte | (0x80 if n else 0))
        if not n:
            break
    return bytes(out) + raw


def check_temporal(address: str, namespace: str | None = None, timeout: float = CHECK_TIMEOUT) -> str:
    """SERVING via grpc.health.v1 (WorkflowService name, then "" when the server
    does not know that name); then, when a namespace is given, a DescribeNamespace
    call whose NOT_FOUND means the namespace does not exist."""
    import grpc  # noqa: PLC0415

    deadline = time.monotonic() + timeout

    def left() -> float:
        return max(0.05, deadline - time.monotonic())

    channel = grpc.insecure_channel(address)
    try:
        check = channel.unary_unary(HEALTH_CHECK)  # no (de)serializers: raw bytes
        via = None
        for service in (TEMPORAL_SERVICE, ""):
            label = service or '""'
            try:
                resp = check(_pb_string(1, service) if service else b"", timeout=left())
            except grpc.RpcError as exc:
                if exc.code() == grpc.StatusCode.NOT_FOUND:
                    continue
                raise RuntimeError(f"health check ({label}): {exc.code().name}: {exc.details()}") from None
            if resp == SERVING:
                via = label
                break
            if resp == SERVICE_UNKNOWN:
                continue
            raise RuntimeError(f"health check ({label}): {_STATUS_NAMES.get(resp, repr(resp))}")
        if via is None:
            raise RuntimeError(f"health check: the server knows neither {TEMPORAL_SERVICE} nor \"\"")
        if not namespace:
            return f"SERVING ({via})"
        describe = channel.unary_unary(DESCRIBE_NAMESPACE)
        try:
            describe(_pb_string(1, namespace), timeout=left())
        except grpc.RpcError as exc:
            if exc.code() == grpc.StatusCode.NOT_FOUND:
                raise RuntimeError(f"namespace {namespace!r} not found") from None
            # Anything else (e.g. a proxy without this method) does not prove the
            # namespace is missing: health already said SERVING.
            return f"SERVING ({via}); namespace not verified: {exc.code().name}"
        return f"SERVING ({via}); namespace {namespace!r} exists"
    finally:
        channel.close()


# --------------------------------------------------------------------------
# Running checks
# --------------------------------------------------------------------------

def dependency_checks(environ=None) -> dict:
    """The readiness checks a process's env calls for: {name: callable}."""
    e = os.environ if environ is None else environ
    checks = {}
    if e.get("DATABASE_HOST"):
        checks["postgres"] = lambda: check_postgres(e)
    if e.get("REDIS_HOST"):
        checks["redis"] = lambda: check_redis(e)
    if e.get("NATS_URL"):
        checks["nats"] = lambda: check_nats(e["NATS_URL"])
    if e.get("TEMPORAL_ADDRESS"):
        checks["temporal"] = lambda: check_temporal(e["TEMPORAL_ADDRESS"], e.get("TEMPORAL_NAMESPACE"))
    return checks


_POOL = ThreadPoolExecutor(max_workers=16, thread_name_prefix="check")


def run_checks(checks: dict, budget: float = CHECK_TIMEOUT + 0.5) -> tuple:
    """Run all checks concurrently; a check still running after ``budget`` seconds
    is reported as timed out, so /readyz answers within a probe's timeout (3 s)
    whatever a client library does. Returns (all_ok, {name: {ok, ms, detail|error}})."""
    def one(fn):
        t0 = time.monotonic()
        try:
            detail = fn()
            return {"ok": True, "ms": int((time.monotonic() - t0) * 1000), "detail": redact(detail)}
        except Exception as exc:  # noqa: BLE001 — every failure is a reported result
            return {"ok": False, "ms": int((time.monotonic() - t0) * 1000), "error": error_text(exc)}

    deadline = time.monotonic() + budget
    futures = {name: _POOL.submit(one, fn) for name, fn in checks.items()}
    results = {}
    for name, fut in futures.items():
        try:
            results[name] = fut.result(timeout=max(0.0, deadline - time.monotonic()))
        except FuturesTimeout:
            results[name] = {"ok": False, "error": f"no answer within {budget:g}s"}
        except Exception as exc:  # noqa: BLE001
            results[name] = {"ok": False, "error": f"check failed: {error_text(exc)}"}
    return all(r["ok"] for r in results.values()), results


# --------------------------------------------------------------------------
# HTTP
# --------------------------------------------------------------------------

class JsonHandler(BaseHTTPRequestHandler):
    """Routes GET/POST/DELETE/OPTIONS to ``self.routes`` = {(method, path): method_name};
    logs one line per request (method, path without query, status, ms), nothing else.

    Hooks for subclasses:
      * ``route_prefix(method, path)``: a method name for paths with parameters
      * ``before_route(method, path)``: runs after the body is read, before routing;
        may add to ``self.extra_headers`` (sent with every response of this request,
        e.g. CORS headers) and returns True when it has answered the request itself
        (e.g. a CORS preflight)
    ``self.cookies()`` parses the request's Cookie header(s)."""

    server_version = "parity"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = 60  # seconds a client may stay silent on its connection
    max_body = 1 << 20
    routes: dict = {}
    logger = log

    def log_message(self, fmt, *args):  # silence the default access log
        pass

    def _dispatch(self, method: str) -> None:
        self._t0 = time.monotonic()
        self._status = 0
        self.extra_headers = {}
        path = urllib.parse.urlsplit(self.path).path
        try:
            # Read the whole body first, whatever the route: an unread body would
            # be parsed as the next request on this keep-alive connection.
            try:
                length = int(self.headers.get("Content-Length") or 0)
            except ValueError:
                length = -1
            if length < 0 or length > self.max_body:
                self.close_connection = True
                self.send_json(413 if length > 0 else 400, {"error": "bad or too large request body"})
                return
            self.body = self.rfile.read(length) if length else b""
            if self.before_route(method, path):
                return
            name = self.routes.get((method, path))
            if name is None:
                name = self.route_prefix(method, path)
            if name is None:
                if self.known_path(path):
                    self.send_json(405, {"error": f"method {method} not allowed"})
                else:
                    self.send_json(404, {"error": "not found"})
            else:
                getattr(self, name)()
        except Exception as exc:  # noqa: BLE001
            self.logger.error("%s %s failed: %s", method, path, error_text(exc))
            if not self._status:
                self.send_json(500, {"error": "internal error"})
        finally:
            ms = int((time.monotonic() - self._t0) * 1000)
            self.logger.info("%s %s %d %dms", method, path, self._status, ms)

    def route_prefix(self, method: str, path: str):
        return None

    def before_route(self, method: str, path: str) -> bool:
        return False

    def known_path(self, path: str) -> bool:
        """Whether any method is routed for ``path`` (405 rather than 404)."""
        if path in {p for (_, p) in self.routes}:
            return True
        methods = {m for (m, _) in self.routes} | {"GET", "POST", "DELETE"}
        return any(self.route_prefix(m, path) is not None for m in methods)

    def do_GET(self):  # noqa: N802
        self._dispatch("GET")

    def do_POST(self):  # noqa: N802
        self._dispatch("POST")

    def do_DELETE(self):  # noqa: N802
        self._dispatch("DELETE")

    def do_OPTIONS(self):  # noqa: N802
        self._dispatch("OPTIONS")

    def cookies(self) -> dict:
        """{name: value} from the request's Cookie header(s); the first of a repeated
        name wins (browsers send the most specific path first). Lenient: a malformed
        pair is skipped, never an error."""
        jar: dict = {}
        for header in self.headers.get_all("Cookie") or []:
            for pair in header.split(";"):
                name, sep, value = pair.strip().partition("=")
                name, value = name.strip(), value.strip()
                if not sep or not name:
                    continue
                if len(value) >= 2 and value[0] == value[-1] == '"':
                    value = value[1:-1]
                jar.setdefault(name, value)
        return jar

    def send_body(self, status: int, body: bytes, content_type: str, headers: dict | None = None) -> None:
        self._status = status
        self.send_response(status)
        no_body = status in (204, 304)
        if not no_body:
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
        self.send_header("Cache-Control", "no-store")
        for k, v in {**getattr(self, "extra_headers", {}), **(headers or {})}.items():
            for one in (v if isinstance(v, (list, tuple)) else [v]):
                self.send_header(k, one)
        self.end_headers()
        if self.command != "HEAD" and not no_body:
            self.wfile.write(body)

    def send_empty(self, status: int = 204, headers: dict | None = None) -> None:
        """A response without a body (204: no Content-Type, no Content-Length)."""
        self.send_body(status, b"", "", headers)

    def send_json(self, status: int, obj, headers: dict | None = None) -> None:
        body = (json.dumps(obj, indent=None, sort_keys=True) + "\n").encode()
        self.send_body(status, body, "application/json", headers)

    def read_json(self):
        """The request body parsed as JSON (None when empty); ValueError if it is not JSON."""
        return json.loads(self.body or b"null")


class Server(ThreadingHTTPServer):
    allow_reuse_address = True
    daemon_threads = True


def serve(handler_cls, host: str, port: int, logger: logging.Logger) -> ThreadingHTTPServer:
    """Start serving in a daemon thread; ``httpd.shutdown()`` stops it."""
    httpd = Server((host, port), handler_cls)
    threading.Thread(target=httpd.serve_forever, name="http", daemon=True).start()
    logger.info("listening on %s:%d", host, port)
    return httpd


STOP = threading.Event()


def install_signal_handlers(logger: logging.Logger) -> None:
    """SIGTERM/SIGINT set STOP. Needed: the process may be PID 1 without an init,
    where SIGTERM has no default action and `docker stop` would wait 10 s."""
    def stop(signum, _frame):
        logger.info("received %s, stopping", signal.Signals(signum).name)
        STOP.set()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)


def run_server(handler_cls, description: str, required_env, logger: logging.Logger,
               argv=None, on_start=None) -> int:
    """The whole life of an HTTP app: ``--host/--port``, refuse to start (exit 2)
    without its required env, serve until SIGTERM/SIGINT. ``on_start()`` runs
    before serving (e.g. to build clients from the env)."""
    import argparse

    ap = argparse.ArgumentParser(description=description)
    ap.add_argument("--host", default="0.0.0.0")
    ap.add_argument("--port", type=int, default=8080)
    args = ap.parse_args(argv)
    missing = [k for k in required_env if not os.environ.get(k)]
    if missing:
        logger.error("missing required env: %s", ", ".join(missing))
        return 2
    if on_start is not None:
        on_start()
    install_signal_handlers(logger)
    httpd = serve(handler_cls, args.host, args.port, logger)
    while not STOP.wait(1):
        pass
    httpd.shutdown()
    return 0
