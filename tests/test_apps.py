"""The reference workloads in apps/ (api, web, worker), run as real processes
against real local servers: Postgres, Redis, NATS and a distribution registry
started on 127.0.0.1 random ports, an HTTPS OIDC issuer signed by a throwaway CA,
a fake Temporal gRPC server and a fake Vault KV. No Docker.

Needs (Debian 12): postgresql-15 redis-server nats-server docker-registry for the
servers, and for the app processes an interpreter that imports psycopg2, redis,
jwt, grpc and cryptography: this one if it does, else /usr/bin/python3 with
python3-psycopg2 python3-redis python3-jwt python3-grpcio python3-cryptography
(the same modules the offline base image carries). A fixture whose binary or
modules are missing skips with the apt command that provides it.
"""

from __future__ import annotations

import base64
import datetime as dt
import glob
import hashlib
import hmac
import http.client
import http.server
import importlib.util
import json
import os
import pwd
import re
import secrets
import shutil
import signal
import socket
import ssl
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
APPS = ROOT / "apps"
APP_MODULES = "psycopg2, redis, jwt, grpc, cryptography"
APT_PY = "apt-get install python3-psycopg2 python3-redis python3-jwt python3-grpcio python3-cryptography"


# --------------------------------------------------------------------------
# helpers
# --------------------------------------------------------------------------

def _load_deps():
    """apps/common/deps.py, imported in-process (stdlib only at import time)."""
    spec = importlib.util.spec_from_file_location("parity_apps_deps", APPS / "common" / "deps.py")
    mod = importlib.util.module_from_spec(spec)
    old, sys.dont_write_bytecode = sys.dont_write_bytecode, True
    try:
        spec.loader.exec_module(mod)
    finally:
        sys.dont_write_bytecode = old
    return mod


deps = _load_deps()


def _find_app_python() -> str | None:
    seen = []
    for exe in (sys.executable, "/usr/bin/python3", shutil.which("python3")):
        if not exe or exe in seen or not os.path.exists(exe):
            continue
        seen.append(exe)
        r = subprocess.run([exe, "-c", f"import {APP_MODULES}"], capture_output=True)
        if r.returncode == 0:
            return exe
    return None


APP_PY = _find_app_python()


def need_app_python() -> str:
    if APP_PY is None:
        pytest.skip(f"no python3 imports {APP_MODULES}: {APT_PY} "
                    "(or pip install -r apps/api/requirements.txt)")
    return APP_PY


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 10.0, proc=None) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode} before listening on {port}")
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            time.sleep(0.05)
    raise AssertionError(f"nothing listens on 127.0.0.1:{port} after {timeout}s")


def http_get(url: str, headers: dict | None = None, method: str = "GET", body=None,
             context=None, timeout: float = 10.0):
    """(status, parsed JSON or text, headers); HTTP errors are returned."""
    data = json.dumps(body).encode() if body is not None else None
    hdrs = dict(headers or {})
    if data is not None:
        hdrs["Content-Type"] = "application/json"
    req = urllib.request.Request(url, data=data, method=method, headers=hdrs)
    try:
        with urllib.request.urlopen(req, timeout=timeout, context=context) as resp:
            status, raw, rh = resp.status, resp.read(), resp.headers
    except urllib.error.HTTPError as exc:
        status, raw, rh = exc.code, exc.read(), exc.headers
    text = raw.decode("utf-8", "replace")
    if (rh.get("Content-Type") or "").startswith("application/json"):
        return status, json.loads(text), rh
    return status, text, rh


def wait_http(url: str, want: int = 200, timeout: float = 15.0, proc=None):
    end, last = time.monotonic() + timeout, None
    while time.monotonic() < end:
        if proc is not None and proc.poll() is not None:
            raise AssertionError(f"process exited with {proc.returncode}:\n{proc.output()}")
        try:
            last = http_get(url, timeout=5)
            if last[0] == want:
                return last
        except OSError as exc:
            last = exc
        time.sleep(0.1)
    raise AssertionError(f"GET {url}: wanted {want}, last answer {last}")


class Proc:
    """A subprocess whose output goes to a file (read with .output())."""

    def __init__(self, argv, env=None, cwd=None, preexec_fn=None, name="proc"):
        self.log_path = Path(tempfile.mkstemp(prefix=f"parity-{name}-", suffix=".log")[1])
        self._fh = open(self.log_path, "wb")
        self.p = subprocess.Popen(argv, env=env, cwd=cwd, stdout=self._fh, stderr=subprocess.STDOUT,
                                  stdin=subprocess.DEVNULL, preexec_fn=preexec_fn)

    def poll(self):
        return self.p.poll()

    @property
    def returncode(self):
        return self.p.returncode

    def output(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait(self, timeout: float) -> int:
        return self.p.wait(timeout=timeout)

    def stop(self, sig=signal.SIGTERM, timeout: float = 5.0) -> int:
        if self.p.poll() is None:
            self.p.send_signal(sig)
            try:
                self.p.wait(timeout=timeout)
            except subprocess.TimeoutExpired:
                self.p.kill()
                self.p.wait()
        self._fh.close()
        return self.p.returncode

    def cleanup(self) -> None:
        self.stop()
        self.log_path.unlink(missing_ok=True)


def base_env(**extra) -> dict:
    """A clean env (no developer variables leaking into /contract) plus ``extra``."""
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "HOME": "/tmp", "LANG": "C.UTF-8",
           "PYTHONDONTWRITEBYTECODE": "1", "PYTHONUNBUFFERED": "1"}
    env.update({k: str(v) for k, v in extra.items()})
    return env


def run_app(app: str, args, env: dict, name: str | None = None, python: str | None = None) -> Proc:
    exe = python or need_app_python()
    return Proc([exe, str(APPS / app / "main.py"), *args], env=env, cwd=str(APPS / app),
                name=name or app)


# --------------------------------------------------------------------------
# real servers
# --------------------------------------------------------------------------

def _which(name: str, apt: str, globs=()) -> str:
    for pattern in globs:
        found = sorted(glob.glob(pattern))
        if found:
            return found[-1]
    path = shutil.which(name) or (f"/usr/bin/{name}" if os.path.exists(f"/usr/bin/{name}") else None)
    if not path:
        pytest.skip(f"{name} not installed: apt-get install {apt}")
    return path


@pytest.fixture(scope="module")
def postgres():
    initdb = _which("initdb", "postgresql-15", ["/usr/lib/postgresql/*/bin/initdb"])
    bindir = os.path.dirname(initdb)
    server, psql = os.path.join(bindir, "postgres"), os.path.join(bindir, "psql")
    if not os.path.exists(psql):
        psql = _which("psql", "postgresql-client-15")
    top = tempfile.mkdtemp(prefix="parity-pg-")
    preexec = None
    if os.geteuid() == 0:  # initdb and postgres refuse to run as root
        try:
            user = pwd.getpwnam("postgres")
        except KeyError:
            user = pwd.getpwnam("nobody")
        os.chown(top, user.pw_uid, user.pw_gid)

        def drop_root():
            os.setgroups([])
            os.setgid(user.pw_gid)
            os.setuid(user.pw_uid)
        preexec = drop_root
    data = os.path.join(top, "data")
    r = subprocess.run([initdb, "-D", data, "-U", "postgres", "-N", "-E", "UTF8",
                        "--auth-local=trust", "--auth-host=scram-sha-256"],
                       capture_output=True, preexec_fn=preexec)
    assert r.returncode == 0, r.stdout.decode() + r.stderr.decode()
    port = free_port()
    proc = Proc([server, "-D", data, "-p", str(port), "-k", top, "-c", "listen_addresses=127.0.0.1",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off"],
                preexec_fn=preexec, name="postgres")

    def sql(statement: str, db: str = "postgres") -> str:
        out = subprocess.run([psql, "-h", top, "-p", str(port), "-U", "postgres", "-d", db,
                              "-v", "ON_ERROR_STOP=1", "-At", "-c", statement],
                             capture_output=True, text=True)
        assert out.returncode == 0, out.stderr
        return out.stdout.strip()

    try:
        end = time.monotonic() + 15
        while True:
            if proc.poll() is not None:
                raise AssertionError("postgres exited:\n" + proc.output())
            ok = subprocess.run([psql, "-h", top, "-p", str(port), "-U", "postgres", "-c", "SELECT 1"],
                                capture_output=True).returncode == 0
            if ok:
                break
            assert time.monotonic() < end, "postgres did not start:\n" + proc.output()
            time.sleep(0.1)
        password = secrets.token_urlsafe(24)
        sql(f"CREATE ROLE platform LOGIN PASSWORD '{password}'")
        sql("CREATE DATABASE platform OWNER platform")
        yield {"host": "127.0.0.1", "port": port, "name": "platform", "user": "platform",
               "password": password, "sql": sql}
    finally:
        proc.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def start_redis(password: str) -> tuple:
    exe = _which("redis-server", "redis-server")
    port = free_port()
    proc = Proc([exe, "--port", str(port), "--bind", "127.0.0.1", "--requirepass", password,
                 "--save", "", "--appendonly", "no", "--daemonize", "no"], name="redis")
    wait_port(port, proc=proc)
    return proc, port


@pytest.fixture(scope="module")
def redis_server():
    password = secrets.token_urlsafe(24)
    proc, port = start_redis(password)
    yield {"host": "127.0.0.1", "port": port, "password": password}
    proc.cleanup()


def start_nats(port: int | None = None) -> tuple:
    """A nats-server with JetStream (file store in a temp dir): (proc, url, store dir)."""
    exe = _which("nats-server", "nats-server", ["/usr/sbin/nats-server"])
    port = port or free_port()
    store = tempfile.mkdtemp(prefix="parity-nats-")
    proc = Proc([exe, "-a", "127.0.0.1", "-p", str(port), "-js", "-sd", store], name="nats")
    wait_port(port, proc=proc)
    return proc, f"nats://127.0.0.1:{port}", store


def stop_nats(proc, store) -> None:
    proc.cleanup()
    shutil.rmtree(store, ignore_errors=True)


@pytest.fixture(scope="module")
def nats():
    proc, url, store = start_nats()
    yield url
    stop_nats(proc, store)


@pytest.fixture
def fresh_nats():
    """A NATS server of the test's own: JetStream starts without streams."""
    proc, url, store = start_nats()
    yield url
    stop_nats(proc, store)


FAKE_TEMPORAL = r"""
import sys, grpc
from concurrent import futures
mode, namespace = sys.argv[1], sys.argv[2]
SERVICE = b"temporal.api.workflowservice.v1.WorkflowService"
NAMED = b"\x0a" + bytes([len(SERVICE)]) + SERVICE
SERVING, NOT_SERVING, SERVICE_UNKNOWN = b"\x08\x01", b"\x08\x02", b"\x08\x03"
# how each kind of server answers (the WorkflowService name, "")
ANSWERS = {
    "grpc-go": (SERVING, SERVING),              # newer Temporal: grpc-go health server
    "starting": (NOT_SERVING, SERVING),         # newer Temporal before membership is ready
    "legacy": (SERVING, SERVICE_UNKNOWN),       # older Temporal: only its own name
    "generic": (None, SERVING),                 # a gRPC server that does not know the name
}[mode]
def check(req, ctx):
    answer = ANSWERS[0] if req == NAMED else ANSWERS[1] if req == b"" else None
    if answer is None:
        ctx.abort(grpc.StatusCode.NOT_FOUND, "unknown service")
    return answer
def describe(req, ctx):
    if req != b"\x0a" + bytes([len(namespace)]) + namespace.encode():
        ctx.abort(grpc.StatusCode.NOT_FOUND, "Namespace not found")
    return b""
server = grpc.server(futures.ThreadPoolExecutor(max_workers=4))
server.add_generic_rpc_handlers((
    grpc.method_handlers_generic_handler("grpc.health.v1.Health",
        {"Check": grpc.unary_unary_rpc_method_handler(check)}),
    grpc.method_handlers_generic_handler("temporal.api.workflowservice.v1.WorkflowService",
        {"DescribeNamespace": grpc.unary_unary_rpc_method_handler(describe)}),
))
port = server.add_insecure_port("127.0.0.1:0")
server.start()
print(port, flush=True)
server.wait_for_termination()
"""


def start_fake_temporal(mode: str = "grpc-go", namespace: str = "parity") -> tuple:
    exe = need_app_python()
    p = subprocess.Popen([exe, "-c", FAKE_TEMPORAL, mode, namespace], stdout=subprocess.PIPE,
                         stderr=subprocess.DEVNULL, text=True)
    line = p.stdout.readline().strip()
    assert line.isdigit(), f"fake temporal did not start ({p.poll()})"
    return p, f"127.0.0.1:{line}"


@pytest.fixture(scope="module")
def temporal():
    p, addr = start_fake_temporal()
    yield addr
    p.terminate()
    p.wait(5)


# --------------------------------------------------------------------------
# an HTTPS OIDC issuer with a throwaway CA and an RSA signing key
# --------------------------------------------------------------------------

def _b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class Issuer:
    def __init__(self, tmp: Path):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import padding, rsa
        from cryptography.x509.oid import NameOID
        import ipaddress

        self._padding, self._hashes = padding, hashes
        now = dt.datetime.now(dt.timezone.utc)
        ca_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parity test CA")])
        ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True, crl_sign=True,
                                           content_commitment=False, key_encipherment=False,
                                           data_encipherment=False, key_agreement=False,
                                           encipher_only=False, decipher_only=False), critical=True)
              .add_extension(x509.SubjectKeyIdentifier.from_public_key(ca_key.public_key()), critical=False)
              .sign(ca_key, hashes.SHA256()))
        key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        cert = (x509.CertificateBuilder()
                .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")]))
                .issuer_name(ca_name).public_key(key.public_key())
                .serial_number(x509.random_serial_number())
                .not_valid_before(now - dt.timedelta(minutes=5)).not_valid_after(now + dt.timedelta(days=1))
                .add_extension(x509.SubjectAlternativeName([
                    x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                    critical=False)
                .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
                .add_extension(x509.ExtendedKeyUsage([x509.oid.ExtendedKeyUsageOID.SERVER_AUTH]), critical=False)
                .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()),
                               critical=False)
                .sign(ca_key, hashes.SHA256()))
        pem = serialization.Encoding.PEM
        self.ca_file = tmp / "ca.crt"
        self.ca_file.write_bytes(ca.public_bytes(pem))
        (tmp / "tls.crt").write_bytes(cert.public_bytes(pem))
        (tmp / "tls.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                        serialization.NoEncryption()))
        self.signing_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        self.other_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
        nums = self.signing_key.public_key().public_numbers()

        def b64int(n: int) -> str:
            return _b64url(n.to_bytes((n.bit_length() + 7) // 8, "big"))

        self.jwks = {"keys": [
            {"kty": "RSA", "use": "enc", "kid": "enc-key", "alg": "RSA-OAEP", "n": b64int(nums.n), "e": "AQAB"},
            {"kty": "RSA", "use": "sig", "kid": "test-key", "alg": "RS256",
             "n": b64int(nums.n), "e": b64int(nums.e)}]}
        self.requests: list = []
        # the browser side (realm "parity", public client parity-web): see browser_endpoint
        self.browser = {"aud": ["parity-api", "account"], "auth_error": None, "web_origins": set()}
        self.codes: dict = {}
        self.logouts: list = []
        issuer = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def do_POST(self):  # noqa: N802
                issuer.requests.append("POST " + self.path.split("?")[0])
                issuer.browser_endpoint(self)

            def do_GET(self):  # noqa: N802
                issuer.requests.append(self.path)
                if issuer.browser_endpoint(self):
                    return
                m = re.fullmatch(r"/realms/(\w+)/(.+)", self.path)
                realm, rest = (m.group(1), m.group(2)) if m else (None, None)
                if rest == ".well-known/openid-configuration":
                    # realm "liar" claims to be realm "parity": a misconfigured issuer
                    claimed = issuer.url("parity" if realm == "liar" else realm)
                    body = {"issuer": claimed, "jwks_uri": issuer.url(realm) + "/protocol/openid-connect/certs",
                            "authorization_endpoint": issuer.url(realm) + "/protocol/openid-connect/auth"}
                elif rest == "protocol/openid-connect/certs":
                    body = issuer.jwks
                else:
                    self.send_response(404)
                    self.end_headers()
                    return
                raw = json.dumps(body).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(tmp / "tls.crt", tmp / "tls.key")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def url(self, realm: str = "parity") -> str:
        return f"https://127.0.0.1:{self.port}/realms/{realm}"

    # -- what a browser uses: Keycloak's login form, token endpoint (CORS) and logout --
    LOGIN_FORM = """<!doctype html><title>Sign in</title><link rel="icon" href="data:,">
<form id="kc-form-login" method="post" action="/realms/parity/login-actions/authenticate?flow={flow}">
<input id="username" name="username"><input id="password" name="password" type="password">
<input id="kc-login" type="submit" value="Sign In"></form>"""

    def browser_endpoint(self, h) -> bool:
        """Serves the browser endpoints of realm parity on handler ``h``; False for other paths."""
        import urllib.parse as up

        u = up.urlsplit(h.path)
        q = dict(up.parse_qsl(u.query))
        oidc = "/realms/parity/protocol/openid-connect"

        def reply(status, body=b"", ctype="application/json", headers=None):
            raw = json.dumps(body).encode() if ctype == "application/json" else body
            h.send_response(status)
            for k, v in {"Content-Type": ctype, "Content-Length": str(len(raw)), **(headers or {})}.items():
                h.send_header(k, v)
            h.end_headers()
            h.wfile.write(raw)

        def redirect(url, **params):
            reply(302, b"", "text/plain", {"Location": url + ("?" + up.urlencode(params) if params else "")})

        if h.command == "GET" and u.path == oidc + "/auth":
            # Keycloak's checks for a public client with PKCE S256 required
            bad = [k for k, want in (("client_id", "parity-web"), ("response_type", "code"),
                                     ("code_challenge_method", "S256")) if q.get(k) != want]
            bad += [k for k in ("redirect_uri", "state", "nonce", "code_challenge") if not q.get(k)]
            if bad or "openid" not in q.get("scope", "").split():
                reply(400, f"invalid authorization request: {bad or 'scope'}".encode(), "text/plain")
                return True
            flow = secrets.token_urlsafe(8)
            self.codes[flow] = q
            reply(200, self.LOGIN_FORM.format(flow=flow).encode(), "text/html")
            return True
        if h.command == "POST" and u.path == "/realms/parity/login-actions/authenticate":
            form = dict(up.parse_qsl(h.rfile.read(int(h.headers["Content-Length"])).decode()))
            req = self.codes.pop(q.get("flow"), None)
            if req is None or (form.get("username"), form.get("password")) != ("dev", "dev-password"):
                reply(200, b"Invalid username or password.", "text/html")
                return True
            if self.browser["auth_error"]:
                redirect(req["redirect_uri"], error=self.browser["auth_error"],
                         error_description="the user refused", state=req["state"])
                return True
            code = secrets.token_urlsafe(16)
            self.codes[code] = req
            redirect(req["redirect_uri"], code=code, state=req["state"], session_state="s", iss=self.url())
            return True
        if u.path == oidc + "/token" and h.command == "POST":
            origin = h.headers.get("Origin")
            cors = {"Access-Control-Allow-Origin": origin, "Access-Control-Allow-Credentials": "true",
                    "Vary": "Origin"} if origin in self.browser["web_origins"] else {}
            form = dict(up.parse_qsl(h.rfile.read(int(h.headers["Content-Length"])).decode()))
            req = self.codes.pop(form.get("code"), None)
            verifier = form.get("code_verifier", "")
            if req is None or form.get("redirect_uri") != req["redirect_uri"] \
                    or form.get("client_id") != req["client_id"]:
                reply(400, {"error": "invalid_grant", "error_description": "Code not valid"}, headers=cors)
            elif not re.fullmatch(r"[A-Za-z0-9._~-]{43,128}", verifier) or \
                    _b64url(hashlib.sha256(verifier.encode()).digest()) != req["code_challenge"]:
                reply(400, {"error": "invalid_grant", "error_description": "PKCE verification failed"},
                      headers=cors)
            else:
                who = {"sub": "user-dev", "preferred_username": "dev", "azp": "parity-web"}
                reply(200, {"access_token": self.token(aud=self.browser["aud"], **who),
                            "id_token": self.token(aud="parity-web", nonce=req["nonce"], **who),
                            "token_type": "Bearer", "expires_in": 300}, headers=cors)
            return True
        if h.command == "GET" and u.path == oidc + "/logout":
            self.logouts.append(q)
            if q.get("post_logout_redirect_uri"):
                redirect(q["post_logout_redirect_uri"])
            else:
                reply(200, {})
            return True
        if h.command == "POST":
            reply(404, {"error": "not found"})
            return True
        return False

    def token(self, key=None, kid: str = "test-key", **overrides) -> str:
        now = int(time.time())
        claims = {"iss": self.url(), "aud": ["parity-api", "account"], "sub": "service-account-parity-dev",
                  "azp": "parity-dev", "iat": now, "exp": now + 300}
        claims.update(overrides)
        claims = {k: v for k, v in claims.items() if v is not None}
        head = _b64url(json.dumps({"alg": "RS256", "typ": "JWT", "kid": kid}).encode())
        body = _b64url(json.dumps(claims).encode())
        signing_input = f"{head}.{body}".encode()
        sig = (key or self.signing_key).sign(signing_input, self._padding.PKCS1v15(), self._hashes.SHA256())
        return f"{head}.{body}.{_b64url(sig)}"


@pytest.fixture(scope="module")
def issuer():
    tmp = Path(tempfile.mkdtemp(prefix="parity-issuer-"))
    iss = Issuer(tmp)
    yield iss
    iss.server.shutdown()
    shutil.rmtree(tmp, ignore_errors=True)


# --------------------------------------------------------------------------
# the API process
# --------------------------------------------------------------------------

def api_env(postgres, redis_port, redis_password, nats_url, temporal_addr, issuer, **extra) -> dict:
    contract = {
        "DATABASE_HOST": postgres["host"], "DATABASE_PORT": postgres["port"],
        "DATABASE_NAME": postgres["name"], "DATABASE_USER": postgres["user"],
        "DATABASE_PASSWORD": postgres["password"],
        "REDIS_HOST": "127.0.0.1", "REDIS_PORT": redis_port, "REDIS_PASSWORD": redis_password,
        "OIDC_ISSUER_URL": issuer.url(), "OIDC_AUDIENCE": "parity-api",
        "PUBLIC_API_URL": "https://api.parity.localhost", "PUBLIC_WEB_URL": "https://app.parity.localhost",
        "SESSION_SIGNING_KEY": secrets.token_urlsafe(48), "SSL_CERT_FILE": str(issuer.ca_file),
        "NATS_URL": nats_url, "TEMPORAL_ADDRESS": temporal_addr, "TEMPORAL_NAMESPACE": "parity",
        "REGISTRY_PUBLIC_URL": "https://registry.parity.localhost",
        "BOOTSTRAP_ARTIFACTS_URL": "https://registry.parity.localhost/v2/bootstrap",
    }
    contract.update(extra)
    return {k: str(v) for k, v in contract.items()}


@pytest.fixture(scope="module")
def api(postgres, redis_server, nats, temporal, issuer):
    contract = api_env(postgres, redis_server["port"], redis_server["password"], nats, temporal, issuer)
    noise = {"HOSTNAME": "api-7d9f", "KUBERNETES_SERVICE_HOST": "10.96.0.1",
             "KUBERNETES_SERVICE_PORT": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
             "KUBERNETES_PORT_443_TCP_ADDR": "10.96.0.1", "POSTGRES_PORT": "tcp://10.96.3.4:5432",
             "LC_ALL": "C.UTF-8", "GPG_KEY": "ABCDEF"}
    port = free_port()
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(port)],
                   base_env(**contract, **noise))
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/readyz", 200, timeout=20, proc=proc)
        yield {"url": base, "proc": proc, "contract": contract}
    finally:
        proc.cleanup()


# --------------------------------------------------------------------------
# static shape
# --------------------------------------------------------------------------

def _model_service(name: str) -> dict:
    for path in sorted((ROOT / "base" / "services").glob("*.yaml")):
        doc = yaml.safe_load(path.read_text()) or {}
        if name in (doc.get("services") or {}):
            return doc["services"][name]
    raise AssertionError(f"service {name} not in base/services")


@pytest.mark.parametrize("app,service", [("api", "api"), ("web", "web"), ("worker", "notification-worker")])
def test_dockerfile_shape(app, service):
    lines = [ln.strip() for ln in (APPS / app / "Dockerfile").read_text().splitlines()]
    code = [ln for ln in lines if ln and not ln.startswith("#")]
    assert code[0] == "ARG BASE_IMAGE=python:3.12-slim-bookworm"
    assert code[1] == "FROM ${BASE_IMAGE}"
    assert 'ENTRYPOINT ["python3", "/app/main.py"]' in code
    user = [ln for ln in code if ln.startswith("USER ")]
    assert user and not user[-1].split()[1].split(":")[0] in ("0", "root"), "must run as non-root"
    exposed = {int(p) for ln in code if ln.startswith("EXPOSE ") for p in ln.split()[1:]}
    declared = {p["port"] for p in _model_service(service).get("ports", [])}
    assert exposed == declared, f"{app}: EXPOSE {exposed} but the model declares {declared}"
    model = _model_service(service)
    assert (model["build"]["context"], model["build"]["dockerfile"]) == ("apps", f"{app}/Dockerfile")
    text = "\n".join(code)
    if (APPS / app / "requirements.txt").exists():
        # pip runs only when the modules are missing (offline base: present, no network)
        assert re.search(r'RUN python3 -c "import [^"]+" 2>/dev/null\s*\\\s*\|\| pip install', text), text
    else:
        assert "pip" not in text


def test_requirements_cover_the_imports():
    for app, modules in (("api", {"psycopg2": "psycopg2-binary", "redis": "redis", "jwt": "PyJWT",
                                  "grpc": "grpcio", "cryptography": "cryptography"}),
                         ("worker", {"psycopg2": "psycopg2-binary", "grpc": "grpcio"})):
        reqs = {ln.split("==")[0].strip().lower() for ln in (APPS / app / "requirements.txt").read_text().splitlines()
                if ln.strip() and not ln.startswith("#")}
        assert {m.lower() for m in modules.values()} <= reqs, f"{app}: {reqs}"
        dockerfile = (APPS / app / "Dockerfile").read_text()
        for module in modules:
            assert module in dockerfile.split("|| pip")[0], f"{app}: Dockerfile does not probe {module}"


# --------------------------------------------------------------------------
# deps.py in-process: contract, redaction, NATS client
# --------------------------------------------------------------------------

def test_contract_env_hashes_and_excludes_runtime_noise():
    env = {
        "DATABASE_HOST": "postgres", "DATABASE_PORT": "5432", "REDIS_PORT": "6379",
        "DATABASE_PASSWORD": "hunter2-secret", "OIDC_ISSUER_URL": "https://auth.parity.localhost/realms/parity",
        "PATH": "/usr/bin", "HOSTNAME": "abc", "HOME": "/app", "LANG": "C.UTF-8", "LC_ALL": "C",
        "PYTHONUNBUFFERED": "1", "PYTHON_VERSION": "3.12.8", "GPG_KEY": "x", "TERM": "xterm",
        "SHLVL": "1", "PWD": "/app", "_": "/usr/bin/python3", "http_proxy": "http://proxy:3128",
        "KUBERNETES_SERVICE_HOST": "10.96.0.1", "KUBERNETES_SERVICE_PORT": "443",
        "KUBERNETES_SERVICE_PORT_HTTPS": "443", "KUBERNETES_PORT": "tcp://10.96.0.1:443",
        "KUBERNETES_PORT_443_TCP": "tcp://10.96.0.1:443", "KUBERNETES_PORT_443_TCP_PROTO": "tcp",
        "POSTGRES_PORT": "tcp://10.96.1.2:5432", "POSTGRES_PORT_5432_TCP_ADDR": "10.96.1.2",
    }
    got = deps.contract_env(env)
    assert sorted(got) == ["DATABASE_HOST", "DATABASE_PASSWORD", "DATABASE_PORT", "OIDC_ISSUER_URL", "REDIS_PORT"]
    assert got["DATABASE_PASSWORD"] == "sha256:" + hashlib.sha256(b"hunter2-secret").hexdigest()
    assert "hunter2" not in json.dumps(got)


def test_redact_scrubs_secret_values():
    env = {"DATABASE_PASSWORD": "s3cr3t-pw", "VAULT_TOKEN": "root-tok", "DATABASE_USER": "platform"}
    text = deps.redact("login platform/s3cr3t-pw failed; token root-tok", env)
    assert text == "login platform/*** failed; token ***"


def test_nats_client_ping_pubsub_roundtrip(nats):
    with deps.NatsClient(nats, name="t-sub") as sub, deps.NatsClient(nats, name="t-pub") as pub:
        assert sub.server_info.get("server_id")
        sid = sub.subscribe("parity.test.>")
        sub.flush()
        big = os.urandom(100_000)
        pub.publish("parity.test.a", b'{"n":1}')
        pub.publish("parity.test.b.c", big, reply="_INBOX.x")
        pub.publish("other.subject", b"ignored")
        pub.flush()
        m1, m2 = sub.next_msg(timeout=3), sub.next_msg(timeout=3)
        assert (m1["subject"], m1["sid"], m1["data"]) == ("parity.test.a", sid, b'{"n":1}')
        assert (m2["subject"], m2["reply"], m2["data"]) == ("parity.test.b.c", "_INBOX.x", big)
        assert sub.next_msg(timeout=0.2) is None
        # a queue group delivers each message to one member only
        other = deps.NatsClient(nats).connect()
        try:
            sub.subscribe("work", queue="q")
            other.subscribe("work", queue="q")
            sub.flush()
            other.flush()
            for i in range(10):
                pub.publish("work", str(i).encode())
            pub.flush()
            got = []
            for client in (sub, other):
                while (m := client.next_msg(timeout=0.3)) is not None:
                    got.append(m["data"])
            assert sorted(got, key=int) == [str(i).encode() for i in range(10)]
        finally:
            other.close()
    assert deps.check_nats(nats).startswith("INFO/CONNECT/PING/PONG")


def test_nats_request_reply(nats):
    with deps.NatsClient(nats, name="t-req") as req:
        with deps.NatsClient(nats, name="t-echo") as echo:
            echo.subscribe("parity.echo")
            echo.flush()

            def serve_one():
                msg = echo.next_msg(timeout=5)
                echo.publish(msg["reply"], b"echo:" + msg["data"])
                echo.flush()

            t = threading.Thread(target=serve_one)
            t.start()
            other = req.subscribe("parity.other")
            req.publish("parity.other", b"queued")  # arrives while the request waits
            reply = req.request("parity.echo", b"hi", timeout=5)
            t.join(5)
        assert reply["data"] == b"echo:hi" and reply["subject"].startswith("_INBOX.")
        assert req.next_msg(timeout=1)["sid"] == other  # not lost by request()
        # the real JetStream API answers too; nobody answers parity.nobody: a clear timeout
        assert "streams" in json.loads(req.request("$JS.API.INFO", timeout=2)["data"])
        t0 = time.monotonic()
        with pytest.raises(deps.NatsTimeout, match="no reply to parity.nobody within 0.3s"):
            req.request("parity.nobody", b"", timeout=0.3)
        assert time.monotonic() - t0 < 2
        req.flush()
        assert req.next_msg(timeout=0.1) is None and req._sids == {other}  # inboxes unsubscribed


def test_ensure_outbox_stream_is_idempotent_and_stores_outbox_messages(fresh_nats):
    with deps.NatsClient(fresh_nats, name="t-js") as nc:
        assert deps.stream_info(nc, "OUTBOX") is None
        with pytest.raises(deps.JetStreamError) as err:
            deps.js_api(nc, "STREAM.INFO.OUTBOX")
        assert err.value.not_found and err.value.err_code == 10059
        assert deps.ensure_stream(nc, deps.OUTBOX_STREAM) == "created"
        assert deps.ensure_stream(nc, deps.OUTBOX_STREAM) == "exists"  # no-op
        info = deps.stream_info(nc, "OUTBOX")
        cfg = info["config"]
        assert cfg["subjects"] == ["outbox.>"] and cfg["storage"] == "file"
        assert cfg["retention"] == "limits" and cfg["max_age"] == 604800000000000
        created = info["created"]
        # someone changed the subjects: ensure puts them back, keeping the stream
        deps.js_api(nc, "STREAM.UPDATE.OUTBOX", dict(cfg, subjects=["outbox.legacy.>"]))
        assert deps.ensure_stream(nc, deps.OUTBOX_STREAM).startswith("updated subjects")
        assert deps.ensure_stream(nc, deps.OUTBOX_STREAM) == "exists"
        info = deps.stream_info(nc, "OUTBOX")
        assert info["config"]["subjects"] == ["outbox.>"] and info["created"] == created
        # a message on outbox.<topic> is stored
        before = info["state"]["messages"]
        nc.publish("outbox.gpu.provisioned", b'{"id": 1}')
        nc.publish("elsewhere.gpu", b"not stored")
        nc.flush()
        assert deps.stream_info(nc, "OUTBOX")["state"]["messages"] == before + 1
    assert deps.check_stream(fresh_nats, deps.OUTBOX_STREAM).startswith("stream OUTBOX (outbox.>; 1 message(s))")


def test_nats_check_fails_on_closed_port_and_on_non_nats(redis_server):
    with pytest.raises(OSError):
        deps.check_nats(f"nats://127.0.0.1:{free_port()}")
    with pytest.raises((deps.NatsError, OSError)):  # redis sends nothing first: timeout or bad INFO
        deps.check_nats(f"nats://127.0.0.1:{redis_server['port']}")
    with pytest.raises(deps.NatsError, match="scheme"):
        deps.check_nats("tls://127.0.0.1:4222")


def test_temporal_check_across_server_kinds_and_missing_namespace():
    exe = need_app_python()
    servers = {}
    try:
        for mode in ("grpc-go", "starting", "legacy", "generic"):
            servers[mode] = start_fake_temporal(mode)

        def check(addr, ns):
            code = f"import deps; print(deps.check_temporal({addr!r}, {ns!r}))"
            return subprocess.run([exe, "-B", "-c", code], cwd=APPS / "common", capture_output=True, text=True)

        for mode, via in (("grpc-go", deps.TEMPORAL_SERVICE), ("legacy", deps.TEMPORAL_SERVICE),
                          ("generic", '""')):
            r = check(servers[mode][1], "parity")
            assert r.returncode == 0, f"{mode}: {r.stderr}"
            assert f"SERVING ({via}); namespace 'parity' exists" in r.stdout, f"{mode}: {r.stdout}"
        r = check(servers["starting"][1], "parity")  # "" says SERVING, the frontend does not yet
        assert r.returncode != 0 and f"health check ({deps.TEMPORAL_SERVICE}): NOT_SERVING" in r.stderr
        r = check(servers["grpc-go"][1], "nope")
        assert r.returncode != 0 and "namespace 'nope' not found" in r.stderr
        r = check(f"127.0.0.1:{free_port()}", None)
        assert r.returncode != 0 and "UNAVAILABLE" in r.stderr
    finally:
        for p, _ in servers.values():
            p.terminate()
            p.wait(5)


# --------------------------------------------------------------------------
# api
# --------------------------------------------------------------------------

def test_api_health_config_and_seed(api, postgres):
    assert http_get(api["url"] + "/healthz")[:2] == (200, {"status": "ok"})
    status, cfg, _ = http_get(api["url"] + "/config")
    c = api["contract"]
    assert status == 200
    assert cfg == {"oidc_issuer": c["OIDC_ISSUER_URL"], "oidc_audience": "parity-api",
                   "public_api_url": c["PUBLIC_API_URL"], "public_web_url": c["PUBLIC_WEB_URL"],
                   "registry_public_url": c["REGISTRY_PUBLIC_URL"],
                   "bootstrap_artifacts_url": c["BOOTSTRAP_ARTIFACTS_URL"]}
    assert http_get(api["url"] + "/seed")[:2] == (200, {"seed_rows": 1})
    assert postgres["sql"]("SELECT to_regclass('public.outbox') IS NOT NULL", db="platform") == "t"
    assert http_get(api["url"] + "/nope")[0] == 404
    assert http_get(api["url"] + "/healthz", method="POST", body={})[0] == 405
    # keep-alive: a body the route does not read must not leak into the next request
    conn = http.client.HTTPConnection("127.0.0.1", int(api["url"].rsplit(":", 1)[1]), timeout=5)
    try:
        conn.request("POST", "/nope", body=b'{"x": "GET /seed HTTP/1.1"}')
        first = conn.getresponse()
        first.read()
        conn.request("GET", "/healthz")
        second = conn.getresponse()
        assert (first.status, second.status, json.loads(second.read())) == (404, 200, {"status": "ok"})
    finally:
        conn.close()


def test_api_readyz_reports_every_dependency(api):
    status, body, _ = http_get(api["url"] + "/readyz")
    assert status == 200, body
    assert set(body["checks"]) == {"postgres", "redis", "nats", "temporal", "schema"}
    assert all(c["ok"] for c in body["checks"].values())
    assert body["checks"]["temporal"]["detail"] == \
        f"SERVING ({deps.TEMPORAL_SERVICE}); namespace 'parity' exists"


def test_api_contract_is_exactly_the_received_contract_env(api):
    status, body, _ = http_get(api["url"] + "/contract")
    assert status == 200
    want = {k: "sha256:" + hashlib.sha256(v.encode()).hexdigest() for k, v in api["contract"].items()}
    assert body == {"env": want}  # noise (HOSTNAME, KUBERNETES_*, POSTGRES_PORT=tcp://, LC_ALL...) excluded
    raw = json.dumps(body)
    assert api["contract"]["DATABASE_PASSWORD"] not in raw and api["contract"]["SESSION_SIGNING_KEY"] not in raw


def test_api_whoami_accepts_a_valid_token(api, issuer):
    status, body, _ = http_get(api["url"] + "/whoami", {"Authorization": f"Bearer {issuer.token()}"})
    assert status == 200, body
    assert body == {"sub": "service-account-parity-dev", "azp": "parity-dev", "iss": issuer.url()}
    assert any(p.endswith("/.well-known/openid-configuration") for p in issuer.requests)


@pytest.mark.parametrize("case,reason", [
    ("wrong-aud", "wrong audience"),
    ("wrong-iss", "wrong issuer"),
    ("expired", "token expired"),
    ("bad-signature", "bad signature"),
    ("unknown-kid", "unknown signing key"),
    ("no-exp", "missing claim 'exp'"),
    ("no-token", "missing bearer token"),
    ("garbage", "malformed token"),
])
def test_api_whoami_rejects(api, issuer, case, reason):
    token = {
        "wrong-aud": lambda: issuer.token(aud="someone-else"),
        "wrong-iss": lambda: issuer.token(iss=issuer.url("other")),
        "expired": lambda: issuer.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
        "bad-signature": lambda: issuer.token(key=issuer.other_key),
        "unknown-kid": lambda: issuer.token(kid="rotated-away"),
        "no-exp": lambda: issuer.token(exp=None),
        "no-token": lambda: None,
        "garbage": lambda: "not.a.jwt",
    }[case]()
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    status, body, hdrs = http_get(api["url"] + "/whoami", headers)
    assert status == 401, body
    assert reason in body["error"]
    assert hdrs.get("WWW-Authenticate", "").startswith("Bearer")


def test_api_whoami_refuses_an_issuer_whose_discovery_disagrees(postgres, redis_server, nats, temporal, issuer):
    env = api_env(postgres, redis_server["port"], redis_server["password"], nats, temporal, issuer,
                  OIDC_ISSUER_URL=issuer.url("liar"))
    port = free_port()
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(port)], base_env(**env), name="api-liar")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        token = issuer.token(iss=issuer.url("liar"))
        status, body, _ = http_get(f"http://127.0.0.1:{port}/whoami", {"Authorization": f"Bearer {token}"})
        assert status == 503 and "discovery issuer" in body["error"], body
    finally:
        proc.cleanup()


def test_api_readyz_fails_naming_redis_when_redis_stops(postgres, nats, temporal, issuer):
    password = secrets.token_urlsafe(24)
    redis_proc, redis_port = start_redis(password)
    env = api_env(postgres, redis_port, password, nats, temporal, issuer)
    port = free_port()
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(port)], base_env(**env), name="api-redis")
    url = f"http://127.0.0.1:{port}/readyz"
    try:
        wait_http(url, 200, proc=proc)
        redis_proc.cleanup()
        t0 = time.monotonic()
        status, body, _ = http_get(url)
        assert time.monotonic() - t0 < 4, "readiness must answer within the probe timeout"
        assert status == 503, body
        assert body["checks"]["redis"]["ok"] is False and body["checks"]["redis"]["error"]
        assert all(body["checks"][k]["ok"] for k in ("postgres", "nats", "temporal", "schema"))
        assert http_get(url.replace("/readyz", "/healthz"))[0] == 200
        assert proc.stop() == 0, "SIGTERM must stop the api cleanly"
        log = proc.output()
        assert "GET /readyz 503" in log
        for secret in (password, env["DATABASE_PASSWORD"], env["SESSION_SIGNING_KEY"]):
            assert secret not in log and secret not in json.dumps(body)
    finally:
        redis_proc.cleanup()
        proc.cleanup()


def test_api_starts_before_postgres_and_waits_for_it(issuer, nats, temporal, redis_server):
    """/healthz answers at once; /readyz names postgres and schema until the DB exists."""
    port = free_port()
    env = api_env({"host": "127.0.0.1", "port": free_port(), "name": "platform", "user": "platform",
                   "password": "x" * 12}, redis_server["port"], redis_server["password"], nats, temporal, issuer)
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(port)], base_env(**env), name="api-nodb")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=5)
        status, body, _ = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503
        assert not body["checks"]["postgres"]["ok"] and not body["checks"]["schema"]["ok"]
        assert body["checks"]["redis"]["ok"]
    finally:
        proc.cleanup()


# --------------------------------------------------------------------------
# api: the browser's way in (CORS, the session cookie, /me)
# --------------------------------------------------------------------------

WEB_ORIGIN = "https://app.parity.localhost"  # the origin of PUBLIC_WEB_URL in api_env


def parse_set_cookie(header: str) -> tuple:
    """(name, value, {attribute lower-cased: value, or True for a flag})."""
    first, *rest = [part.strip() for part in header.split(";")]
    name, _, value = first.partition("=")
    attrs = {}
    for part in rest:
        key, sep, val = part.partition("=")
        attrs[key.strip().lower()] = val.strip() if sep else True
    return name, value, attrs


def session_cookie(key: str, session: dict) -> str:
    """A session cookie value as the API documents it, made independently of its code."""
    payload = _b64url(json.dumps(session).encode())
    return payload + "." + _b64url(hmac.new(key.encode(), payload.encode(), hashlib.sha256).digest())


def cors_headers(hdrs) -> dict:
    return {k: v for k, v in hdrs.items() if k.lower().startswith("access-control-")}


def wait_output(proc, needle: str, timeout: float = 5.0) -> str:
    end = time.monotonic() + timeout
    while needle not in (out := proc.output()) and time.monotonic() < end:
        time.sleep(0.05)
    assert needle in out, out
    return out


def start_api_without_db(issuer, name: str, **extra) -> tuple:
    """An API process whose Postgres is a closed port: enough for CORS and /session."""
    env = api_env({"host": "127.0.0.1", "port": free_port(), "name": "platform", "user": "platform",
                   "password": "x" * 12}, free_port(), "y" * 12, "", "", issuer, **extra)
    for key in ("NATS_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"):
        env.pop(key)
    port = free_port()
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(port)], base_env(**env), name=name)
    wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc, timeout=10)
    return proc, f"http://127.0.0.1:{port}", env


def test_api_cors_allows_the_web_origin_and_answers_preflights(api):
    status, _, hdrs = http_get(api["url"] + "/healthz", {"Origin": WEB_ORIGIN})
    assert status == 200
    assert cors_headers(hdrs) == {"Access-Control-Allow-Origin": WEB_ORIGIN,
                                  "Access-Control-Allow-Credentials": "true"}
    assert hdrs["Vary"] == "Origin"
    for path in ("/session", "/me", "/events/42"):
        status, body, hdrs = http_get(api["url"] + path, {
            "Origin": WEB_ORIGIN, "Access-Control-Request-Method": "POST",
            "Access-Control-Request-Headers": "authorization"}, method="OPTIONS")
        assert (status, body) == (204, ""), path
        assert "Content-Length" not in hdrs and "Content-Type" not in hdrs
        assert cors_headers(hdrs) == {
            "Access-Control-Allow-Origin": WEB_ORIGIN, "Access-Control-Allow-Credentials": "true",
            "Access-Control-Allow-Methods": "GET, POST, DELETE, OPTIONS",
            "Access-Control-Allow-Headers": "Authorization, Content-Type",
            "Access-Control-Max-Age": "600"}, path
        assert hdrs["Vary"] == "Origin"
    assert http_get(api["url"] + "/nope", {"Origin": WEB_ORIGIN}, method="OPTIONS")[0] == 404
    # an error answer carries the CORS headers too, so the page can read why
    status, body, hdrs = http_get(api["url"] + "/me", {"Origin": WEB_ORIGIN})
    assert (status, body) == (401, {"error": "not signed in"})
    assert hdrs["Access-Control-Allow-Origin"] == WEB_ORIGIN


def test_api_cors_refuses_other_origins_with_one_warning(api):
    evil = f"https://evil-{secrets.token_hex(4)}.example"
    for origin in (evil, "https://app.parity.localhost.evil.example", "http://app.parity.localhost", "null"):
        status, _, hdrs = http_get(api["url"] + "/healthz", {"Origin": origin})
        assert status == 200 and cors_headers(hdrs) == {}, origin
        status, _, hdrs = http_get(api["url"] + "/session", {"Origin": origin,
                                   "Access-Control-Request-Method": "POST"}, method="OPTIONS")
        assert status == 403 and cors_headers(hdrs) == {}, origin
    for _ in range(3):
        http_get(api["url"] + "/me", {"Origin": evil})
    wait_output(api["proc"], "GET /me 401")
    lines = [ln for ln in api["proc"].output().splitlines() if "refused origin" in ln and evil in ln]
    assert len(lines) == 1, lines  # rate-limited: one line per origin
    assert "WARNING" in lines[0] and WEB_ORIGIN in lines[0], lines[0]


def test_api_session_sets_a_signed_cookie_and_me_reads_it(api, issuer, postgres):
    token = issuer.token(preferred_username="dev", sub="user-dev", azp="parity-web")
    status, body, hdrs = http_get(api["url"] + "/session", {"Authorization": f"Bearer {token}",
                                                            "Origin": WEB_ORIGIN}, method="POST")
    assert (status, body) == (200, {"user": "dev", "sub": "user-dev"})
    assert hdrs["Access-Control-Allow-Origin"] == WEB_ORIGIN
    (set_cookie,) = hdrs.get_all("Set-Cookie")
    name, value, attrs = parse_set_cookie(set_cookie)
    assert name == "parity_session"
    assert set(attrs) == {"path", "httponly", "samesite", "max-age", "secure"}  # host-only: no Domain
    assert attrs["path"] == "/" and attrs["httponly"] is True and attrs["secure"] is True
    assert attrs["samesite"] == "Lax"
    assert 280 <= int(attrs["max-age"]) <= 300  # the token's remaining life (exp = now + 300)
    payload = json.loads(base64.urlsafe_b64decode(value.split(".")[0] + "=="))
    assert set(payload) == {"sub", "user", "exp"} and payload["user"] == "dev"
    assert payload["exp"] - time.time() <= 300

    cookie = {"Cookie": f"other=1; parity_session={value}"}
    status, me, _ = http_get(api["url"] + "/me", cookie)
    assert status == 200, me
    events = int(postgres["sql"]("SELECT count(*) FROM outbox", db="platform"))
    assert me == {"user": "dev", "sub": "user-dev", "seed_rows": 1, "events": events,
                  "issuer": issuer.url()}
    # a bearer token works too; nothing at all does not
    status, me, _ = http_get(api["url"] + "/me", {"Authorization": f"Bearer {token}"})
    assert status == 200 and me["user"] == "dev"
    assert http_get(api["url"] + "/me")[:2] == (401, {"error": "not signed in"})

    status, body, hdrs = http_get(api["url"] + "/session", {**cookie, "Origin": WEB_ORIGIN}, method="DELETE")
    assert (status, body) == (204, "") and hdrs["Access-Control-Allow-Origin"] == WEB_ORIGIN
    name, cleared, attrs = parse_set_cookie(hdrs["Set-Cookie"])
    assert (name, cleared) == ("parity_session", "")
    assert attrs == {"path": "/", "httponly": True, "samesite": "Lax", "max-age": "0", "secure": True}

    log = wait_output(api["proc"], "DELETE /session 204")  # logged after the answer
    assert "POST /session 200" in log and "GET /me 200" in log
    for secret in (token, value, value.split(".")[1], api["contract"]["SESSION_SIGNING_KEY"]):
        assert secret not in log


def test_api_session_refuses_a_bad_token_like_whoami(api, issuer):
    for token, reason in ((issuer.token(aud="someone-else"), "wrong audience (expected 'parity-api')"),
                          (issuer.token(key=issuer.other_key), "bad signature"),
                          (issuer.token(exp=int(time.time()) - 3600, iat=int(time.time()) - 7200),
                           "token expired"),
                          (None, "missing bearer token")):
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        status, body, hdrs = http_get(api["url"] + "/session", headers, method="POST")
        assert (status, body) == (401, {"error": reason})
        assert hdrs.get_all("Set-Cookie") is None
        if token:
            assert http_get(api["url"] + "/whoami", headers)[1] == {"error": reason}


def test_api_me_refuses_a_tampered_or_expired_cookie(api):
    key = api["contract"]["SESSION_SIGNING_KEY"]
    now = int(time.time())
    good = session_cookie(key, {"sub": "user-dev", "user": "dev", "exp": now + 600})
    status, me, _ = http_get(api["url"] + "/me", {"Cookie": f"parity_session={good}"})
    assert status == 200 and me["user"] == "dev", me  # the documented format, made by the test
    payload, mac = good.split(".")
    forged = _b64url(json.dumps({"sub": "admin", "user": "admin", "exp": now + 600}).encode())
    for bad in (session_cookie(key, {"sub": "user-dev", "user": "dev", "exp": now - 1}),  # expired
                session_cookie("another-key-" + "k" * 40, {"sub": "user-dev", "user": "dev", "exp": now + 600}),
                f"{forged}.{mac}",                                   # payload swapped, old signature
                f"{payload}.{mac[:-2]}{'AA' if mac[-2:] != 'AA' else 'BB'}",  # signature changed
                payload, "", "garbage.garbage", "a.b.c"):
        status, body, _ = http_get(api["url"] + "/me", {"Cookie": f"parity_session={bad}"})
        assert (status, body) == (401, {"error": "not signed in"}), bad


@pytest.mark.parametrize("extra, want", [
    ({"SESSION_COOKIE_DOMAIN": "parity.localhost", "SESSION_COOKIE_SAMESITE": "Strict",
      "SESSION_COOKIE_NAME": "psid", "CORS_ALLOWED_ORIGINS": "https://a.example, https://b.example:8443/"},
     {"name": "psid", "attrs": {"path": "/", "httponly": True, "samesite": "Strict", "secure": True,
                                "domain": "parity.localhost"},
      "allowed": ["https://a.example", "https://b.example:8443"],
      "refused": [WEB_ORIGIN, "https://b.example"]}),
    ({"SESSION_COOKIE_SECURE": "false", "SESSION_COOKIE_SAMESITE": "none"},
     {"name": "parity_session", "attrs": {"path": "/", "httponly": True, "samesite": "None"},
      "allowed": [WEB_ORIGIN], "refused": ["https://a.example"]}),
], ids=["domain-strict-origins", "not-secure"])
def test_api_cookie_and_cors_follow_the_env(issuer, extra, want):
    proc, url, _ = start_api_without_db(issuer, "api-cookie", **extra)
    try:
        status, body, hdrs = http_get(url + "/session", {"Authorization": f"Bearer {issuer.token()}"},
                                      method="POST")
        assert status == 200 and body["sub"] == "service-account-parity-dev", body
        name, _, attrs = parse_set_cookie(hdrs["Set-Cookie"])
        assert name == want["name"]
        assert 0 < int(attrs.pop("max-age")) <= 300
        assert attrs == want["attrs"]
        _, _, hdrs = http_get(url + "/session", method="DELETE")
        assert parse_set_cookie(hdrs["Set-Cookie"])[2] == {**want["attrs"], "max-age": "0"}
        for origin in want["allowed"]:
            status, _, hdrs = http_get(url + "/session", {"Origin": origin}, method="OPTIONS")
            assert status == 204 and hdrs["Access-Control-Allow-Origin"] == origin, origin
        for origin in want["refused"]:
            status, _, hdrs = http_get(url + "/session", {"Origin": origin}, method="OPTIONS")
            assert status == 403 and cors_headers(hdrs) == {}, origin
        if extra.get("SESSION_COOKIE_SECURE") == "false":
            assert "SESSION_COOKIE_SAMESITE=None without SESSION_COOKIE_SECURE=true" in proc.output()
    finally:
        proc.cleanup()


@pytest.mark.parametrize("extra, message", [
    ({"SESSION_COOKIE_SAMESITE": "Sideways"}, "SESSION_COOKIE_SAMESITE must be Lax, Strict or None"),
    ({"SESSION_COOKIE_SECURE": "maybe"}, "SESSION_COOKIE_SECURE must be true or false"),
    ({"CORS_ALLOWED_ORIGINS": "*"}, "CORS_ALLOWED_ORIGINS: '*' cannot be used with credentials"),
    ({"CORS_ALLOWED_ORIGINS": "https://app.example/login"}, "is not an origin"),
    ({"SESSION_COOKIE_NAME": "bad name"}, "SESSION_COOKIE_NAME 'bad name' is not a cookie name"),
])
def test_api_refuses_to_start_with_unusable_browser_settings(issuer, extra, message):
    env = api_env({"host": "127.0.0.1", "port": free_port(), "name": "p", "user": "p", "password": "p" * 8},
                  free_port(), "y" * 12, "", "", issuer, **extra)
    proc = run_app("api", ["--host", "127.0.0.1", "--port", str(free_port())], base_env(**env), name="api-bad")
    try:
        assert proc.wait(15) == 2, proc.output()
        assert message in proc.output(), proc.output()
    finally:
        proc.cleanup()


# --------------------------------------------------------------------------
# worker
# --------------------------------------------------------------------------

def worker_env(postgres, nats_url, role: str, **extra) -> dict:
    env = {"WORKER_ROLE": role, "NATS_URL": nats_url, "DATABASE_HOST": postgres["host"],
           "DATABASE_PORT": postgres["port"], "DATABASE_NAME": postgres["name"],
           "DATABASE_USER": postgres["user"], "DATABASE_PASSWORD": postgres["password"]}
    env.update(extra)
    return base_env(**env)


def test_notification_worker_relays_an_outbox_row(api, issuer, postgres, nats):
    auth = {"Authorization": f"Bearer {issuer.token()}"}
    with deps.NatsClient(nats, name="t-outbox") as sub:
        sub.subscribe("outbox.gpu.>")
        sub.flush()
        status, created, _ = http_get(api["url"] + "/events", auth, method="POST",
                                      body={"topic": "gpu.provisioned", "payload": {"gpu": "h100", "n": 2}})
        assert status == 201 and created["subject"] == "outbox.gpu.provisioned", created
        assert http_get(api["url"] + f"/events/{created['id']}", auth)[1]["published"] is False
        assert http_get(api["url"] + "/events", method="POST", body={"topic": "x"})[0] == 401
        assert http_get(api["url"] + "/events", auth, method="POST", body={"topic": "bad topic"})[0] == 400

        proc = run_app("worker", ["--role", "notification", "--once", "--deadline", "10"],
                       worker_env(postgres, nats, "notification", OUTBOX_POLL_SECONDS="1"), name="notification")
        try:
            assert proc.wait(20) == 0, proc.output()
            msg = sub.next_msg(timeout=5)
            assert msg is not None, proc.output()
            envelope = json.loads(msg["data"])
            assert msg["subject"] == "outbox.gpu.provisioned"
            assert envelope["id"] == created["id"] and envelope["payload"] == {"gpu": "h100", "n": 2}
            assert "published 1 outbox row(s)" in proc.output()
        finally:
            proc.cleanup()
    status, row, _ = http_get(api["url"] + f"/events/{created['id']}", auth)
    assert status == 200 and row["published"] is True and row["published_at"]
    assert postgres["sql"]("SELECT count(*) FROM outbox WHERE published_at IS NULL", db="platform") == "0"


def test_notification_worker_seeds_outbox_stream_when_nats_comes_up(postgres):
    """NATS starts after the worker: readyz names jetstream until the worker has created
    the stream; relayed rows land in it; a second run finds the stream and changes nothing."""
    nats_port, health = free_port(), free_port()
    url = f"nats://127.0.0.1:{nats_port}"
    env = worker_env(postgres, url, "notification", OUTBOX_POLL_SECONDS="0.2")
    proc = run_app("worker", ["--role", "notification", "--health-host", "127.0.0.1",
                              "--health-port", str(health)], env, name="notification-js")
    nats_proc = store = None
    try:
        wait_http(f"http://127.0.0.1:{health}/healthz", proc=proc)
        status, body, _ = http_get(f"http://127.0.0.1:{health}/readyz")
        assert status == 503 and not body["checks"]["jetstream"]["ok"], body
        nats_proc, _, store = start_nats(nats_port)
        _, body, _ = wait_http(f"http://127.0.0.1:{health}/readyz", 200, proc=proc, timeout=20)
        assert set(body["checks"]) == {"nats", "postgres", "jetstream"}, body
        assert body["checks"]["jetstream"]["detail"].startswith("stream OUTBOX (outbox.>;"), body
        # the stream exists (so /readyz says 200) a moment before the worker logs it
        end = time.monotonic() + 5
        while "stream OUTBOX created" not in proc.output() and time.monotonic() < end:
            time.sleep(0.1)
        out = proc.output()
        assert "retrying in" in out and "notification: JetStream stream OUTBOX created" in out, out
        with deps.NatsClient(url, name="t-js-worker") as nc:
            info = deps.stream_info(nc, "OUTBOX")
            assert info["config"]["subjects"] == ["outbox.>"]
            before = info["state"]["messages"]
            postgres["sql"]("INSERT INTO outbox (topic, payload) VALUES ('js.test', '{\"n\": 1}')", db="platform")
            end, after = time.monotonic() + 10, before
            while after <= before and time.monotonic() < end:
                time.sleep(0.1)
                after = deps.stream_info(nc, "OUTBOX")["state"]["messages"]
            assert after > before, proc.output()
        assert proc.stop() == 0
        again = run_app("worker", ["--role", "notification", "--once", "--deadline", "10"], env,
                        name="notification-js-2")
        try:
            assert again.wait(20) == 0, again.output()
            assert "notification: JetStream stream OUTBOX exists" in again.output()
        finally:
            again.cleanup()
    finally:
        proc.cleanup()
        if nats_proc is not None:
            stop_nats(nats_proc, store)


def test_provisioning_worker_ready_acks_requests_and_stops_on_sigterm(postgres, nats, temporal):
    port = free_port()
    env = worker_env(postgres, nats, "provisioning", TEMPORAL_ADDRESS=temporal,
                     TEMPORAL_NAMESPACE="parity", TEMPORAL_TASK_QUEUE="provisioning")
    proc = run_app("worker", ["--role", "provisioning", "--health-host", "127.0.0.1",
                              "--health-port", str(port)], env, name="provisioning")
    try:
        _, body, _ = wait_http(f"http://127.0.0.1:{port}/readyz", 200, proc=proc)
        assert set(body["checks"]) == {"nats", "postgres", "temporal"} and body["role"] == "provisioning"
        assert http_get(f"http://127.0.0.1:{port}/healthz")[0] == 200
        _, contract, _ = http_get(f"http://127.0.0.1:{port}/contract")
        assert set(contract["env"]) == set(env) - {"PATH", "HOME", "LANG", "PYTHONDONTWRITEBYTECODE",
                                                   "PYTHONUNBUFFERED"}
        with deps.NatsClient(nats, name="t-prov") as nc:
            nc.subscribe("_INBOX.test")
            nc.flush()
            ack, end = None, time.monotonic() + 10
            while ack is None and time.monotonic() < end:  # until the worker has subscribed
                nc.publish("provisioning.requests", b'{"id": "req-1", "gpu": "a100"}', reply="_INBOX.test")
                ack = nc.next_msg(timeout=0.5)
        assert ack is not None, proc.output()
        assert json.loads(ack["data"]) == {"accepted": True, "role": "provisioning",
                                           "subject": "provisioning.requests", "id": "req-1"}
        assert proc.stop() == 0
        assert "provisioning: received provisioning.requests" in proc.output()
    finally:
        proc.cleanup()


def test_worker_readyz_fails_naming_nats_and_usage_errors(postgres):
    port = free_port()
    env = worker_env(postgres, f"nats://127.0.0.1:{free_port()}", "app-runtime")
    proc = run_app("worker", ["--role", "app-runtime", "--health-host", "127.0.0.1",
                              "--health-port", str(port)], env, name="app-runtime")
    try:
        wait_http(f"http://127.0.0.1:{port}/healthz", proc=proc)
        status, body, _ = http_get(f"http://127.0.0.1:{port}/readyz")
        assert status == 503 and not body["checks"]["nats"]["ok"] and body["checks"]["postgres"]["ok"], body
    finally:
        proc.cleanup()
    for args, env_role, message in ((["--role", "provisioning"], "notification", "disagrees"),
                                    (["--role", "bootstrap-artifacts"], "", "pass --once"),
                                    (["--role", "app-runtime", "--once"], "", "not supported")):
        p = run_app("worker", args, base_env(**({"WORKER_ROLE": env_role} if env_role else {})),
                    name="usage")
        try:
            assert p.wait(10) == 2 and message in p.output(), p.output()
        finally:
            p.cleanup()


# --------------------------------------------------------------------------
# bootstrap-artifacts: a real registry (docker-registry) and a fake Vault KV v2
# --------------------------------------------------------------------------

class FakeVault:
    def __init__(self, token: str):
        self.token, self.kv, self.requests = token, {}, []
        vault = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def log_message(self, *a):
                pass

            def _reply(self, status, body):
                raw = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(raw)))
                self.end_headers()
                self.wfile.write(raw)

            def _auth(self) -> bool:
                vault.requests.append((self.command, self.path))
                if self.headers.get("X-Vault-Token") != vault.token:
                    self._reply(403, {"errors": ["permission denied"]})
                    return False
                return True

            def do_PUT(self):  # noqa: N802
                if not self._auth():
                    return
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                assert self.path.startswith("/v1/secret/data/")
                vault.kv[self.path] = body["data"]
                self._reply(200, {"data": {"version": 1}})

            do_POST = do_PUT

            def do_GET(self):  # noqa: N802
                if self._auth():
                    if self.path in vault.kv:
                        self._reply(200, {"data": {"data": vault.kv[self.path], "metadata": {}}})
                    else:
                        self._reply(404, {"errors": []})

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


@pytest.fixture(scope="module")
def registry():
    exe = _which("docker-registry", "docker-registry")
    top = Path(tempfile.mkdtemp(prefix="parity-registry-"))
    port = free_port()
    (top / "config.yml").write_text(
        "version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\n"
        "  delete: {enabled: true}\nhttp: {addr: '127.0.0.1:%d'}\n" % (top / "data", port))
    proc = Proc([exe, "serve", str(top / "config.yml")], name="registry")
    try:
        wait_http(f"http://127.0.0.1:{port}/v2/", 200, proc=proc, timeout=10)
        yield f"http://127.0.0.1:{port}"
    finally:
        proc.cleanup()
        shutil.rmtree(top, ignore_errors=True)


def test_bootstrap_artifacts_job_publishes_blob_and_vault_metadata(registry):
    token = secrets.token_urlsafe(24)
    vault = FakeVault(token)
    env = base_env(WORKER_ROLE="bootstrap-artifacts", REGISTRY_URL=registry, VAULT_ADDR=vault.url,
                   VAULT_TOKEN=token, ARTIFACTS_PUBLIC_URL="https://registry.parity.localhost/v2/bootstrap")
    try:
        for run in (1, 2):  # idempotent: the second run finds the blob already there
            proc = run_app("worker", ["--role", "bootstrap-artifacts", "--once"], env,
                           name="bootstrap", python=APP_PY or sys.executable)
            try:
                assert proc.wait(30) == 0, proc.output()
                assert ("uploaded blob" if run == 1 else "already present") in proc.output()
                assert token not in proc.output()
            finally:
                proc.cleanup()
        content = (APPS / "worker" / "artifacts" / "node-bootstrap.sh").read_bytes()
        digest = hashlib.sha256(content).hexdigest()
        doc = vault.kv["/v1/secret/data/bootstrap/artifacts"]
        assert doc == {"artifacts": [{
            "name": "node-bootstrap", "version": "0.1.0", "sha256": digest, "size": len(content),
            "url": f"https://registry.parity.localhost/v2/bootstrap/node-bootstrap/blobs/sha256:{digest}"}]}
        status, body, _ = http_get(f"{registry}/v2/bootstrap/node-bootstrap/blobs/sha256:{digest}")
        assert status == 200 and body.encode() == content
    finally:
        vault.server.shutdown()


def test_bootstrap_artifacts_job_fails_clearly(registry):
    vault = FakeVault("the-right-token")
    wrong = secrets.token_urlsafe(24)
    try:
        env = base_env(REGISTRY_URL=registry, VAULT_ADDR=vault.url, VAULT_TOKEN=wrong)
        proc = run_app("worker", ["--role", "bootstrap-artifacts", "--once"], env, name="bootstrap-403",
                       python=APP_PY or sys.executable)
        try:
            assert proc.wait(15) == 1
            assert "FAILED: vault rejected VAULT_TOKEN (HTTP 403" in proc.output()
            assert wrong not in proc.output()
        finally:
            proc.cleanup()
        env = base_env(REGISTRY_URL=f"http://127.0.0.1:{free_port()}", VAULT_ADDR=vault.url, VAULT_TOKEN=wrong)
        proc = run_app("worker", ["--role", "bootstrap-artifacts", "--once", "--deadline", "2"], env,
                       name="bootstrap-down", python=APP_PY or sys.executable)
        try:
            assert proc.wait(15) == 1
            assert re.search(r"bootstrap-artifacts: FAILED after \d+ attempt\(s\)", proc.output()), proc.output()
        finally:
            proc.cleanup()
    finally:
        vault.server.shutdown()


# --------------------------------------------------------------------------
# web (standard library only: runs under this interpreter)
# --------------------------------------------------------------------------

WEB_ENV = {"API_URL": "https://api.parity.localhost",
           "OIDC_ISSUER_URL": "https://auth.parity.localhost/realms/parity", "OIDC_CLIENT_ID": "parity-web"}


def test_web_serves_page_script_runtime_config_and_health():
    port = free_port()
    proc = run_app("web", ["--host", "127.0.0.1", "--port", str(port)], base_env(**WEB_ENV), python=sys.executable)
    base = f"http://127.0.0.1:{port}"
    try:
        wait_http(base + "/healthz", proc=proc)
        status, page, hdrs = http_get(base + "/", {"Host": "app.parity.localhost"})
        assert status == 200 and hdrs["Content-Type"].startswith("text/html")
        assert "parity web" in page
        for id_, value in (("api-url", "https://api.parity.localhost"),
                           ("oidc-issuer", "https://auth.parity.localhost/realms/parity"),
                           ("oidc-client-id", "parity-web")):
            assert f'<dd id="{id_}">{value}</dd>' in page
        for id_ in ("login", "logout", "user", "api-data", "status"):
            assert f'id="{id_}"' in page, id_
        # the script is external (CSP script-src 'self'): no inline script, no inline handler
        assert '<script src="/app.js" defer></script>' in page
        assert not re.search(r"<script(?![^>]*\bsrc=)[^>]*>", page) and not re.search(r"\son[a-z]+=", page)
        csp = dict(d.strip().split(" ", 1) for d in hdrs["Content-Security-Policy"].split(";"))
        assert csp["default-src"] == "'self'" and csp["script-src"] == "'self'"
        assert csp["connect-src"] == "'self' https://api.parity.localhost https://auth.parity.localhost"
        assert csp["frame-ancestors"] == "'none'" and "'unsafe-inline'" not in hdrs["Content-Security-Policy"]
        assert hdrs["Referrer-Policy"] == "no-referrer" and hdrs["X-Content-Type-Options"] == "nosniff"
        status, script, hdrs = http_get(base + "/app.js")
        assert status == 200 and hdrs["Content-Type"] == "application/javascript; charset=utf-8"
        assert hdrs["X-Content-Type-Options"] == "nosniff"
        for needle in ("code_challenge_method", "S256", "crypto.subtle", "/protocol/openid-connect/token",
                       'credentials: "include"', "data-state", "history.replaceState", "console.error"):
            assert needle in script, needle
        assert "localStorage" not in script and "document.cookie" not in script
        status, css, hdrs = http_get(base + "/app.css")
        assert status == 200 and hdrs["Content-Type"].startswith("text/css") and "body" in css
        assert http_get(base + "/config.json")[:2] == (200, {
            "apiUrl": "https://api.parity.localhost",
            "oidcIssuer": "https://auth.parity.localhost/realms/parity", "oidcClientId": "parity-web"})
        assert set(http_get(base + "/contract")[1]["env"]) == {"API_URL", "OIDC_ISSUER_URL", "OIDC_CLIENT_ID"}
        assert http_get(base + "/", method="OPTIONS")[0] == 405  # no CORS on the web app
        assert http_get(base + "/", method="DELETE")[0] == 405
        # a hostile Host header is escaped, never injected into the page
        _, page, _ = http_get(base + "/", {"Host": '"><script>x</script>'})
        assert "<script>x</script>" not in page
        assert proc.stop() == 0
    finally:
        proc.cleanup()


def test_web_script_is_valid_javascript():
    node = shutil.which("node") or shutil.which("nodejs")
    if not node:
        pytest.skip("node not installed (apt-get install nodejs): cannot syntax-check app.js")
    r = subprocess.run([node, "--check", str(APPS / "web" / "static" / "app.js")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr


# --------------------------------------------------------------------------
# web + api + issuer in a real browser (Chromium driven by Playwright)
# --------------------------------------------------------------------------

def _chromium() -> str:
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        pytest.skip("playwright not installed (pip install playwright)")
    for exe in ("chromium", "chromium-browser", "google-chrome"):
        if shutil.which(exe):
            return shutil.which(exe)
    pytest.skip("no Chromium: apt-get install chromium")


@pytest.fixture(scope="module")
def browser_stack(postgres, issuer):
    """web on http://app.parity.localhost:<p>, the API on http://api.parity.localhost:<p>
    (Chromium maps *.parity.localhost to 127.0.0.1: same site, different origins, as in
    the stack), the HTTPS issuer on 127.0.0.1 with its login form."""
    chromium = _chromium()
    web_port, api_port = free_port(), free_port()
    web_url, api_url = f"http://app.parity.localhost:{web_port}", f"http://api.parity.localhost:{api_port}"
    env = api_env(postgres, free_port(), "y" * 12, "", "", issuer, PUBLIC_WEB_URL=web_url,
                  PUBLIC_API_URL=api_url)
    for key in ("NATS_URL", "TEMPORAL_ADDRESS", "TEMPORAL_NAMESPACE"):
        env.pop(key)
    api_proc = run_app("api", ["--host", "127.0.0.1", "--port", str(api_port)], base_env(**env), name="api-browser")
    web_proc = run_app("web", ["--host", "127.0.0.1", "--port", str(web_port)],
                       base_env(API_URL=api_url, OIDC_ISSUER_URL=issuer.url(), OIDC_CLIENT_ID="parity-web"),
                       python=sys.executable)
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        wait_http(f"http://127.0.0.1:{api_port}/healthz", proc=api_proc)
        wait_http(f"http://127.0.0.1:{web_port}/healthz", proc=web_proc)
        browser = pw.chromium.launch(executable_path=chromium,
                                     args=["--host-resolver-rules=MAP *.parity.localhost 127.0.0.1"])
        issuer.browser["web_origins"] = {web_url, f"http://other.parity.localhost:{web_port}"}
        yield {"browser": browser, "web": web_url, "api": api_url, "web_port": web_port, "api_proc": api_proc}
        browser.close()
    finally:
        pw.stop()
        issuer.browser.update(aud=["parity-api", "account"], auth_error=None, web_origins=set())
        web_proc.cleanup()
        api_proc.cleanup()


def _open(stack, url: str):
    """A fresh browser context (the issuer's certificate is the test CA's) and its page,
    with the console errors it collects."""
    context = stack["browser"].new_context(ignore_https_errors=True)
    page = context.new_page()
    errors = []
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)
    page.on("response", lambda r: errors.append(f"HTTP {r.status} {r.url}") if r.status >= 400 else None)
    page.goto(url)
    return context, page, errors


def _log_in(page, want: str = "signed-in"):
    page.wait_for_selector('body[data-state="signed-out"]')
    page.click("#login")
    page.wait_for_selector("#kc-form-login")
    page.fill("#username", "dev")
    page.fill("#password", "dev-password")
    page.click("#kc-login")
    # (wait_for_function would eval a string: the page's CSP forbids that, rightly)
    page.wait_for_selector('body[data-state="signed-in"], body[data-state="error"]', timeout=15000)
    status = page.inner_text("#status")
    assert page.get_attribute("body", "data-state") == want, status
    return status


def test_browser_login_api_session_reload_and_logout(browser_stack, issuer):
    context, page, errors = _open(browser_stack, browser_stack["web"] + "/")
    try:
        assert page.inner_text("#status") == "signed out" and page.is_hidden("#logout")
        assert _log_in(page) == "signed in"
        assert page.url == browser_stack["web"] + "/"  # code and state stripped
        assert page.inner_text("#user") == "dev"
        me = json.loads(page.inner_text("#api-data"))
        assert me["user"] == "dev" and me["sub"] == "user-dev" and me["seed_rows"] == 1
        assert me["issuer"] == issuer.url() and isinstance(me["events"], int)
        assert page.is_visible("#logout") and page.is_hidden("#login")
        (cookie,) = [c for c in context.cookies() if c["name"] == "parity_session"]
        assert cookie["domain"] == "api.parity.localhost" and cookie["httpOnly"] and cookie["secure"]
        assert cookie["sameSite"] == "Lax"
        stored = page.evaluate("() => [JSON.stringify(localStorage), Object.keys(sessionStorage)]")
        assert stored == ["{}", ["parity.id_token"]]  # the PKCE state is gone, no token in localStorage
        assert page.evaluate("() => document.cookie") == ""
        # a reload resumes from the API's cookie
        page.reload()
        page.wait_for_selector('body[data-state="signed-in"]')
        assert json.loads(page.inner_text("#api-data"))["user"] == "dev"
        # log out: the API clears its cookie, the issuer ends the session and sends the browser back
        page.click("#logout")
        page.wait_for_url(browser_stack["web"] + "/")
        page.wait_for_selector('body[data-state="signed-out"]')
        assert page.inner_text("#status") == "signed out" and page.inner_text("#user") == ""
        assert not [c for c in context.cookies() if c["name"] == "parity_session"]
        last = issuer.logouts[-1]
        assert last["client_id"] == "parity-web" and last["id_token_hint"].count(".") == 2
        assert last["post_logout_redirect_uri"] == browser_stack["web"] + "/"
        assert errors == []
    finally:
        context.close()


@pytest.mark.parametrize("case", ["wrong-audience", "api-cors", "idp-error"])
def test_browser_login_failures_are_named(browser_stack, issuer, case):
    web = browser_stack["web"]
    if case == "api-cors":  # the issuer accepts this origin, the API does not
        web = f"http://other.parity.localhost:{browser_stack['web_port']}"
    want = {
        "wrong-audience": "API refused the token: 401 wrong audience (expected 'parity-api')",
        "api-cors": f"API call blocked by the browser (CORS?) for {browser_stack['api']}/session",
        "idp-error": "identity provider returned error=access_denied: the user refused",
    }[case]
    issuer.browser.update(aud=["account"] if case == "wrong-audience" else ["parity-api", "account"],
                          auth_error="access_denied" if case == "idp-error" else None)
    context, page, errors = _open(browser_stack, web + "/")
    try:
        assert _log_in(page, want="error") == want
        assert want in errors
        assert page.url == web + "/" and page.is_visible("#login")
    finally:
        context.close()
        issuer.browser.update(aud=["parity-api", "account"], auth_error=None)
    if case == "api-cors":
        assert f"refused origin '{web}'" in browser_stack["api_proc"].output()


@pytest.mark.parametrize("app, missing", [
    ("web", "API_URL, OIDC_ISSUER_URL, OIDC_CLIENT_ID"),
    ("api", None),
])
def test_an_app_without_its_env_contract_refuses_to_start(app, missing):
    # deps.run_server: exit 2 and name every missing key, before listening
    proc = run_app(app, ["--host", "127.0.0.1", "--port", str(free_port())], base_env(),
                   name=f"{app}-no-env")
    try:
        assert proc.wait(15) == 2
        line = [x for x in proc.output().splitlines() if "missing required env" in x]
        assert line, proc.output()
        if missing:
            assert line[0].endswith(f"missing required env: {missing}")
    finally:
        proc.cleanup()
