"""A stand-in for parity's own kind API server, for tests that need no cluster: a
real HTTPS listener on 127.0.0.1 (a certificate made here) that answers the few
requests :class:`parity.lifecycle.kind.kube.Kube` makes for ``get``/``list`` of ConfigMaps
(``/version``, ``/apis``, ``/api/v1``, one ConfigMap), counts every connection and
request, and can instead answer every request with one status, with garbage, or not
at all (``mode``). Plus :class:`CountingListener`, a plain TCP listener that counts
connections (a proxy that must never be used), and :func:`kubeconfig_text`, a
kubeconfig for parity's cluster pointing at a server."""

from __future__ import annotations

import base64
import datetime
import ipaddress
import json
import socket
import ssl
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from foreign import ForeignAPI  # tests/foreign.py

RECORD = {"apiVersion": "v1", "kind": "ConfigMap",
          "metadata": {"name": "parity-cluster", "namespace": "kube-system"},
          "data": {"kind-config.yaml": "kind: Cluster\n"}}


def _self_signed(cn: str, ips=(), dns=()) -> tuple[bytes, bytes]:
    key = ec.generate_private_key(ec.SECP256R1())
    now = datetime.datetime.now(datetime.timezone.utc)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])
    builder = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
               .public_key(key.public_key()).serial_number(x509.random_serial_number())
               .not_valid_before(now - datetime.timedelta(minutes=5))
               .not_valid_after(now + datetime.timedelta(days=1))
               .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True))
    sans = [x509.IPAddress(ipaddress.ip_address(i)) for i in ips] + [x509.DNSName(d) for d in dns]
    if sans:
        builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
    cert = builder.sign(key, hashes.SHA256())
    return (cert.public_bytes(serialization.Encoding.PEM),
            key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                              serialization.NoEncryption()))


class FakeAPI:
    """``mode``: "ok" (answers like an API server), "status:<code>", "garbage",
    "hang" (accepts, reads, never answers)."""

    def __init__(self, mode: str = "ok", record: dict | None = RECORD):
        self.mode = mode
        self.record = record
        self.requests: list[str] = []
        self.connections = 0
        self.cert, self.key = _self_signed("127.0.0.1", ips=["127.0.0.1"], dns=["localhost"])
        self.client_cert, self.client_key = _self_signed("parity-test-client")
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):  # quiet
                pass

            def do_GET(self):  # noqa: N802
                api.requests.append(f"GET {self.path}")
                api.answer(self)

            do_PATCH = do_DELETE = do_POST = do_GET  # noqa: N815

        class Server(ThreadingHTTPServer):
            daemon_threads = True

            def get_request(self):
                conn, addr = super().get_request()
                api.connections += 1
                return conn, addr

        self.server = Server(("127.0.0.1", 0), Handler)
        with tempfile.TemporaryDirectory() as tmp:
            (Path(tmp) / "c.pem").write_bytes(self.cert)
            (Path(tmp) / "k.pem").write_bytes(self.key)
            ctx = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
            ctx.load_cert_chain(Path(tmp) / "c.pem", Path(tmp) / "k.pem")
        self.server.socket = ctx.wrap_socket(self.server.socket, server_side=True)
        self.stop_hang = threading.Event()
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self) -> str:
        return f"https://127.0.0.1:{self.server.server_address[1]}"

    def answer(self, h: BaseHTTPRequestHandler) -> None:
        if self.mode == "hang":
            self.stop_hang.wait(60)
            return
        if self.mode.startswith("status:"):
            code = int(self.mode.split(":", 1)[1])
            return self.send(h, code, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                       "message": "etcdserver: leader changed", "code": code})
        if self.mode == "garbage":
            body = b"<html>hello</html>"
            h.send_response(200)
            h.send_header("Content-Type", "text/html")
            h.send_header("Content-Length", str(len(body)))
            h.end_headers()
            h.wfile.write(body)
            return
        path = h.path.split("?", 1)[0]
        if path == "/version":
            return self.send(h, 200, {"major": "1", "minor": "33", "gitVersion": "v1.33.13"})
        if path == "/apis":
            return self.send(h, 200, {"kind": "APIGroupList", "apiVersion": "v1", "groups": []})
        if path == "/api/v1":
            return self.send(h, 200, {"kind": "APIResourceList", "groupVersion": "v1",
                                      "resources": [{"name": "configmaps",
                                                     "singularName": "configmap",
                                                     "namespaced": True, "kind": "ConfigMap",
                                                     "verbs": ["get", "list", "delete",
                                                               "patch"]}]})
        if path == "/api/v1/namespaces/kube-system/configmaps/parity-cluster" and self.record:
            return self.send(h, 200, self.record)
        if path.endswith("/configmaps"):
            return self.send(h, 200, {"kind": "ConfigMapList", "apiVersion": "v1",
                                      "metadata": {}, "items": [self.record] if self.record
                                      else []})
        return self.send(h, 404, {"kind": "Status", "apiVersion": "v1", "status": "Failure",
                                  "reason": "NotFound", "message": f"{path} not found",
                                  "code": 404})

    @staticmethod
    def send(h: BaseHTTPRequestHandler, code: int, obj: dict) -> None:
        body = json.dumps(obj).encode()
        h.send_response(code)
        h.send_header("Content-Type", "application/json")
        h.send_header("Content-Length", str(len(body)))
        h.end_headers()
        h.wfile.write(body)

    def kubeconfig(self, cluster: str = "parity-parity", **extra) -> str:
        return kubeconfig_text(self.url, cluster, ca=self.cert, cert=self.client_cert,
                               key=self.client_key, **extra)

    def close(self) -> None:
        self.stop_hang.set()
        self.server.shutdown()
        self.server.server_close()


def kubeconfig_text(server: str, cluster: str = "parity-parity", *, ca: bytes | None = None,
                    cert: bytes | None = None, key: bytes | None = None,
                    cluster_extra: dict | None = None, user_extra: dict | None = None) -> str:
    """A kubeconfig as kind writes it for ``cluster`` (JSON is YAML)."""
    ctx = f"kind-{cluster}"

    def b64(data: bytes) -> str:
        return base64.b64encode(data).decode()

    c = {"server": server, **({"certificate-authority-data": b64(ca)} if ca else
                              {"insecure-skip-tls-verify": True}), **(cluster_extra or {})}
    u = {**({"client-certificate-data": b64(cert), "client-key-data": b64(key)} if cert
            else {"token": "t"}), **(user_extra or {})}
    return json.dumps({"apiVersion": "v1", "kind": "Config", "preferences": {},
                       "clusters": [{"name": ctx, "cluster": c}],
                       "users": [{"name": ctx, "user": u}],
                       "contexts": [{"name": ctx, "context": {"cluster": ctx, "user": ctx}}],
                       "current-context": ctx}, indent=2) + "\n"


class CountingListener(ForeignAPI):
    """A TCP listener on 127.0.0.1 that counts connections and closes them (a proxy
    or a foreign server that must see none): tests/foreign.py's, with a plain URL."""

    @property
    def port(self) -> int:
        return self.sock.getsockname()[1]

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

def closed_port() -> int:
    """A loopback port nothing listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(pred, seconds: float = 5.0) -> bool:
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(0.05)
    return pred()
