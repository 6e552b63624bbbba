"""parity reference workload: the async worker, one image for four roles.

Usage: python3 main.py --role ROLE [--once] [--health-port 8081] [--deadline 60]

Roles (the stack model passes --role; WORKER_ROLE, when set, must agree):
  provisioning         subscribes to NATS `provisioning.requests` (queue group
                       `provisioning`), logs each request, acks it when it has a reply
                       subject. Readiness covers NATS, Postgres and Temporal.
  app-runtime          the same for `apps.events` (queue group `app-runtime`).
  notification         the outbox relay. On (re)connecting to NATS it first ensures the
                       JetStream stream OUTBOX (subjects outbox.>, file storage, 7 days)
                       exists, idempotently: STREAM.INFO, then STREAM.CREATE when it is
                       missing or STREAM.UPDATE when its subjects differ; failures are
                       logged and retried with backoff, like the connections. Then,
                       every OUTBOX_POLL_SECONDS it publishes the
                       unpublished rows of the `outbox` table to NATS subject
                       `outbox.<topic>` (an envelope {id, topic, created_at, payload}),
                       flushes (PING/PONG) and only then marks them published:
                       at-least-once delivery. With --once: relay until the outbox
                       is empty, then exit 0.
  bootstrap-artifacts  a job (requires --once): uploads artifacts/node-bootstrap.sh to
                       the registry as a blob of `bootstrap/node-bootstrap`, checks
                       `GET REGISTRY_URL/v2/` answers 200, and writes the metadata
                       {"artifacts": [{name, version, sha256, size, url}]} to Vault KV v2
                       at secret/bootstrap/artifacts (read back to verify). Retries
                       for --deadline seconds (default 60); exit 0 on success, 1 on
                       failure with one clear log line.

Long-running roles serve on --health-port (default 8081):
  GET /healthz   200 while the role loop runs
  GET /readyz    200 when NATS (always), Postgres (when DATABASE_HOST is set) and
                 Temporal (when TEMPORAL_ADDRESS is set) answer, and for notification
                 when the JetStream stream OUTBOX exists (check `jetstream`); 503 otherwise
  GET /contract  {"env": {KEY: "sha256:<hex>"}} (same rules as the API, deps.py)

The Temporal dependency is checked (gRPC health, namespace) but no Temporal
worker is registered: the reference image carries no Temporal SDK.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import re
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
# from the source tree, deps.py is in apps/common (in the image, beside main.py)
sys.path.insert(1, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "common"))

import deps  # noqa: E402

log = deps.setup_logging("worker")

LONG_RUNNING = ("provisioning", "notification", "app-runtime")
ROLES = LONG_RUNNING + ("bootstrap-artifacts",)
SUBSCRIPTIONS = {"provisioning": "provisioning.requests", "app-runtime": "apps.events"}
KEEPALIVE_SECONDS = 30

ARTIFACT = {"name": "node-bootstrap", "version": "0.1.0",
            "file": os.path.join(HERE, "artifacts", "node-bootstrap.sh"),
            "repository": "bootstrap/node-bootstrap"}


class Usage(Exception):
    """Bad arguments or env: exit 2."""


def need(*keys: str) -> None:
    missing = [k for k in keys if not os.environ.get(k)]
    if missing:
        raise Usage(f"missing required env: {', '.join(missing)}")


# --------------------------------------------------------------------------
# Health server of the long-running roles
# --------------------------------------------------------------------------

def _nats_url_missing() -> str:
    raise RuntimeError("NATS_URL is not set")


class Health(deps.JsonHandler):
    logger = log
    role = ""
    routes = {("GET", "/healthz"): "healthz", ("GET", "/readyz"): "readyz",
              ("GET", "/contract"): "contract"}

    def healthz(self):
        self.send_json(200, {"status": "ok", "role": self.role})

    def readyz(self):
        checks = deps.dependency_checks()
        checks.pop("redis", None)
        if "nats" not in checks:  # NATS is always a dependency of a long-running role
            checks["nats"] = _nats_url_missing
        if self.role == "notification":
            url = os.environ.get("NATS_URL")
            checks["jetstream"] = ((lambda: deps.check_stream(url, deps.OUTBOX_STREAM))
                                   if url else _nats_url_missing)
        ok, results = deps.run_checks(checks)
        self.send_json(200 if ok else 503, {"status": "ok" if ok else "unavailable",
                                            "role": self.role, "checks": results})

    def contract(self):
        self.send_json(200, {"env": deps.contract_env()})


# --------------------------------------------------------------------------
# Subscribers: provisioning, app-runtime
# --------------------------------------------------------------------------

def handle_message(role: str, nc: deps.NatsClient, msg: dict) -> None:
    ident = None
    try:
        body = json.loads(msg["data"] or b"null")
        if isinstance(body, dict):
            ident = body.get("id")
    except ValueError:
        pass
    log.info("%s: received %s (%d bytes%s)", role, msg["subject"], len(msg["data"]),
             f", id {str(ident)[:64]}" if ident is not None else "")
    if msg["reply"]:
        ack = {"accepted": True, "role": role, "subject": msg["subject"], "id": ident}
        nc.publish(msg["reply"], json.dumps(ack).encode())


def run_subscriber(role: str) -> int:
    need("NATS_URL")
    subject = SUBSCRIPTIONS[role]
    backoff = 0.5
    while not deps.STOP.is_set():
        try:
            with deps.NatsClient(os.environ["NATS_URL"], name=f"parity-{role}", timeout=5) as nc:
                nc.subscribe(subject, queue=role)
                nc.flush()
                log.info("%s: subscribed to %s (queue group %s)", role, subject, role)
                backoff, last_ping = 0.5, time.monotonic()
                while not deps.STOP.is_set():
                    msg = nc.next_msg(timeout=1.0)
                    if msg is not None:
                        handle_message(role, nc, msg)
                    elif time.monotonic() - last_ping > KEEPALIVE_SECONDS:
                        nc.flush()  # detects a silently dead connection
                        last_ping = time.monotonic()
        except (OSError, deps.NatsError) as exc:
            log.warning("%s: NATS %s; reconnecting in %.1fs", role, deps.error_text(exc), backoff)
            deps.STOP.wait(backoff)
            backoff = min(backoff * 2, 10.0)
    return 0


# --------------------------------------------------------------------------
# notification: the outbox relay
# --------------------------------------------------------------------------

def subject_for(topic: str) -> str:
    tokens = [re.sub(r"[^A-Za-z0-9_-]", "_", t) for t in str(topic).split(".")]
    tokens = [t for t in tokens if t]
    return "outbox." + (".".join(tokens) or "_")


def relay_batch(conn, nc: deps.NatsClient, batch: int = 100) -> int:
    """Publish up to ``batch`` unpublished rows, flush, mark them published. One
    transaction; rows locked with SKIP LOCKED so several relays can run."""
    with conn, conn.cursor() as cur:
        cur.execute("SELECT id, topic, payload, created_at FROM outbox WHERE published_at IS NULL "
                    "ORDER BY id LIMIT %s FOR UPDATE SKIP LOCKED", (batch,))
        rows = cur.fetchall()
        if not rows:
            return 0
        for row_id, topic, payload, created in rows:
            envelope = {"id": row_id, "topic": topic, "created_at": created.isoformat(),
                        "payload": payload}
            nc.publish(subject_for(topic), json.dumps(envelope, separators=(",", ":")).encode())
        nc.flush(timeout=5)  # the server has every message before we mark them
        cur.execute("UPDATE outbox SET published_at = now() WHERE id = ANY(%s)",
                    ([r[0] for r in rows],))
    log.info("notification: published %d outbox row(s) (ids %d..%d)", len(rows), rows[0][0], rows[-1][0])
    return len(rows)


def ensure_outbox_stream(nc: deps.NatsClient) -> str:
    """The JetStream stream OUTBOX, created or updated when needed (idempotent)."""
    name = deps.OUTBOX_STREAM["name"]
    try:
        done = deps.ensure_stream(nc, deps.OUTBOX_STREAM, timeout=5)
    except deps.NatsError as exc:
        raise deps.NatsError(f"JetStream stream {name} not ensured: {exc}") from None
    log.info("notification: JetStream stream %s %s (subjects %s)", name, done,
             ", ".join(deps.OUTBOX_STREAM["subjects"]))
    return done


def run_notification(once: bool, deadline_s: float) -> int:
    need("NATS_URL", "DATABASE_HOST", "DATABASE_NAME", "DATABASE_USER", "DATABASE_PASSWORD")
    try:
        poll = float(os.environ.get("OUTBOX_POLL_SECONDS", "2"))
        if poll <= 0:
            raise ValueError
    except ValueError:
        raise Usage("OUTBOX_POLL_SECONDS must be a positive number") from None
    start, backoff, batch = time.monotonic(), 0.5, 100
    while not deps.STOP.is_set():
        conn = None
        try:
            with deps.NatsClient(os.environ["NATS_URL"], name="parity-notification", timeout=5) as nc:
                ensure_outbox_stream(nc)
                conn = deps.pg_connect(timeout=5)
                deps.apply_schema(conn)
                log.info("notification: relaying outbox -> NATS every %gs", poll)
                backoff = 0.5
                while not deps.STOP.is_set():
                    if relay_batch(conn, nc, batch) == batch:
                        continue
                    if once:
                        return 0
                    nc.flush()  # keepalive; fails fast when NATS went away
                    deps.STOP.wait(poll)
        except Exception as exc:  # noqa: BLE001 — reconnect on any database/NATS failure
            if once and time.monotonic() - start > deadline_s:
                log.error("notification: FAILED after %ds: %s", deadline_s, deps.error_text(exc))
                return 1
            log.warning("notification: %s; retrying in %.1fs", deps.error_text(exc), backoff)
            deps.STOP.wait(backoff)
            backoff = min(backoff * 2, 10.0)
        finally:
            if conn is not None:
                conn.close()
    return 0


# --------------------------------------------------------------------------
# bootstrap-artifacts: registry blob + Vault KV metadata
# --------------------------------------------------------------------------

class Permanent(Exception):
    """A failure retrying cannot fix (e.g. Vault rejected the token)."""


def http(method: str, url: str, body: bytes | None = None, headers: dict | None = None,
         timeout: float = 10) -> tuple:
    """(status, headers, body); HTTP errors are returned, not raised."""
    req = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as resp:
            return resp.status, resp.headers, resp.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.headers, exc.read()


def _vault_errors(body: bytes) -> str:
    try:
        return "; ".join(json.loads(body).get("errors") or []) or body[:200].decode(errors="replace")
    except (ValueError, AttributeError):
        return body[:200].decode(errors="replace")


def artifact_metadata(content: bytes) -> dict:
    digest = hashlib.sha256(content).hexdigest()
    public = os.environ.get("ARTIFACTS_PUBLIC_URL") or os.environ["REGISTRY_URL"].rstrip("/") + "/v2/bootstrap"
    name = ARTIFACT["repository"].split("/", 1)[1]
    return {"artifacts": [{
        "name": ARTIFACT["name"], "version": ARTIFACT["version"], "sha256": digest,
        "size": len(content), "url": f"{public.rstrip('/')}/{name}/blobs/sha256:{digest}"}]}


def push_blob(registry: str, repository: str, content: bytes) -> str:
    digest = "sha256:" + hashlib.sha256(content).hexdigest()
    blob_url = f"{registry}/v2/{repository}/blobs/{digest}"
    status, _, _ = http("HEAD", blob_url)
    if status == 200:
        return f"blob {digest[:19]} already present"
    status, headers, body = http("POST", f"{registry}/v2/{repository}/blobs/uploads/", b"",
                                 {"Content-Length": "0"})
    if status != 202 or not headers.get("Location"):
        raise RuntimeError(f"registry: starting an upload -> HTTP {status} {body[:120]!r}")
    location = urllib.parse.urljoin(registry + "/", headers["Location"])
    sep = "&" if "?" in location else "?"
    status, _, body = http("PUT", f"{location}{sep}digest={urllib.parse.quote(digest)}", content,
                           {"Content-Type": "application/octet-stream"})
    if status != 201:
        raise RuntimeError(f"registry: completing the upload -> HTTP {status} {body[:120]!r}")
    status, headers, _ = http("HEAD", blob_url)
    if status != 200 or headers.get("Docker-Content-Digest", digest) != digest:
        raise RuntimeError(f"registry: uploaded blob not found (HTTP {status})")
    return f"uploaded blob {digest[:19]} ({len(content)} bytes)"


def write_vault(vault: str, token: str, path: str, data: dict) -> None:
    url = f"{vault}/v1/secret/data/{path}"
    hdrs = {"X-Vault-Token": token, "Content-Type": "application/json"}
    status, _, body = http("PUT", url, json.dumps({"data": data}).encode(), hdrs)
    if status in (401, 403):
        raise Permanent(f"vault rejected VAULT_TOKEN (HTTP {status}: {deps.redact(_vault_errors(body))})")
    if status not in (200, 204):
        raise RuntimeError(f"vault: PUT {url} -> HTTP {status}: {deps.redact(_vault_errors(body))}")
    status, _, body = http("GET", url, headers={"X-Vault-Token": token})
    if status != 200:
        raise RuntimeError(f"vault: reading back {url} -> HTTP {status}")
    if json.loads(body).get("data", {}).get("data") != data:
        raise RuntimeError("vault: read-back differs from what was written")


def bootstrap_once() -> str:
    registry = os.environ["REGISTRY_URL"].rstrip("/")
    vault = os.environ["VAULT_ADDR"].rstrip("/")
    status, _, _ = http("GET", f"{registry}/v2/")
    if status != 200:
        raise RuntimeError(f"registry: GET {registry}/v2/ -> HTTP {status}")
    with open(ARTIFACT["file"], "rb") as fh:
        content = fh.read()
    pushed = push_blob(registry, ARTIFACT["repository"], content)
    doc = artifact_metadata(content)
    write_vault(vault, os.environ["VAULT_TOKEN"], "bootstrap/artifacts", doc)
    a = doc["artifacts"][0]
    return (f"{pushed}; wrote secret/bootstrap/artifacts ({a['name']} {a['version']} "
            f"sha256 {a['sha256'][:12]}...)")


def run_bootstrap(deadline_s: float) -> int:
    need("REGISTRY_URL", "VAULT_ADDR", "VAULT_TOKEN")
    start, delay, attempt = time.monotonic(), 1.0, 0
    while True:
        attempt += 1
        try:
            log.info("bootstrap-artifacts: OK: %s", bootstrap_once())
            return 0
        except Permanent as exc:
            log.error("bootstrap-artifacts: FAILED: %s", deps.redact(exc))
            return 1
        except Exception as exc:  # noqa: BLE001
            reason = deps.error_text(exc) if not isinstance(exc, RuntimeError) else deps.redact(exc)
            waited = time.monotonic() - start
            if waited + delay > deadline_s or deps.STOP.is_set():
                log.error("bootstrap-artifacts: FAILED after %d attempt(s) in %ds: %s",
                          attempt, waited, reason)
                return 1
            log.warning("bootstrap-artifacts: attempt %d: %s; retrying in %.0fs", attempt, reason, delay)
            deps.STOP.wait(delay)
            delay = min(delay * 2, 8.0)


# --------------------------------------------------------------------------

def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description="parity reference worker")
    ap.add_argument("--role", choices=ROLES, default=os.environ.get("WORKER_ROLE") or None)
    ap.add_argument("--once", action="store_true",
                    help="run to completion and exit (bootstrap-artifacts, notification)")
    ap.add_argument("--health-host", default="0.0.0.0")
    ap.add_argument("--health-port", type=int, default=8081)
    ap.add_argument("--deadline", type=float, default=60.0,
                    help="seconds to keep retrying in --once mode (default 60)")
    args = ap.parse_args(argv)
    try:
        if not args.role:
            raise Usage("--role is required (or WORKER_ROLE)")
        env_role = os.environ.get("WORKER_ROLE")
        if env_role and env_role != args.role:
            raise Usage(f"--role {args.role} disagrees with WORKER_ROLE={env_role}")
        if args.role == "bootstrap-artifacts" and not args.once:
            raise Usage("bootstrap-artifacts is a job: pass --once")
        if args.once and args.role not in ("bootstrap-artifacts", "notification"):
            raise Usage(f"--once is not supported for role {args.role}")
        deps.install_signal_handlers(log)
        if args.role == "bootstrap-artifacts":
            return run_bootstrap(args.deadline)
        if args.once:
            return run_notification(True, args.deadline)
        Health.role = args.role
        httpd = deps.serve(Health, args.health_host, args.health_port, log)
        try:
            if args.role == "notification":
                return run_notification(False, args.deadline)
            return run_subscriber(args.role)
        finally:
            httpd.shutdown()
    except Usage as exc:
        log.error("%s", exc)
        return 2


if __name__ == "__main__":
    sys.exit(main())
