"""The local CA, the wildcard certificate, and HTTPS to 127.0.0.1 by browser
hostname (a real TLS server on loopback; no Docker needed)."""

from __future__ import annotations

import http.server
import ssl
import stat
import threading

import pytest
import requests

from parity import tls
from parity.edgehttp import session


def test_ca_is_created_once_with_a_private_key(tmp_path) -> None:
    assert tls.ensure_ca(tmp_path) is True
    crt, key = tls.ca_paths(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    before = crt.read_bytes()
    assert tls.ensure_ca(tmp_path) is False
    assert crt.read_bytes() == before


def test_wildcard_certificate_follows_the_domain(tmp_path) -> None:
    from cryptography import x509

    assert tls.ensure_cert(tmp_path, "parity.localhost") is True
    assert tls.ensure_cert(tmp_path, "parity.localhost") is False
    crt, key = tls.cert_paths(tmp_path)
    assert stat.S_IMODE(key.stat().st_mode) == 0o600
    cert = x509.load_pem_x509_certificate(crt.read_bytes())
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert set(san.get_values_for_type(x509.DNSName)) == {"*.parity.localhost",
                                                          "parity.localhost"}
    assert tls.ensure_cert(tmp_path, "dev.localhost") is True  # domain changed: reissued


@pytest.fixture
def edge(tmp_path):
    """A TLS server on 127.0.0.1 with the edge certificate; records SNI and Host."""
    tls.ensure_cert(tmp_path, "parity.localhost")
    crt, key = tls.cert_paths(tmp_path)
    seen: dict = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802
            seen["host"] = self.headers["Host"]
            body = b"ok"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args):
            pass

    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.load_cert_chain(crt, key)
    ctx.sni_callback = lambda sock, name, c: seen.__setitem__("sni", name)
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.socket = ctx.wrap_socket(server.socket, server_side=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server.server_address[1], str(tls.ca_paths(tmp_path)[0]), seen
    server.shutdown()


def test_requests_go_to_loopback_with_browser_sni_and_host(edge) -> None:
    port, ca, seen = edge
    s = session("127.0.0.1", 1, port, ca)
    r = s.get(f"https://auth.parity.localhost:{port}/x", timeout=5)
    assert r.status_code == 200 and r.text == "ok"
    assert seen == {"sni": "auth.parity.localhost", "host": f"auth.parity.localhost:{port}"}


def test_tls_is_verified_against_the_local_ca(edge, tmp_path) -> None:
    port, _, _ = edge
    other = tmp_path / "other"
    tls.ensure_ca(other)
    s = session("127.0.0.1", 1, port, str(tls.ca_paths(other)[0]))
    with pytest.raises(requests.exceptions.SSLError):
        s.get(f"https://auth.parity.localhost:{port}/", timeout=5)


def test_a_name_outside_the_certificate_fails(edge) -> None:
    port, ca, _ = edge
    s = session("127.0.0.1", 1, port, ca)
    with pytest.raises(requests.exceptions.SSLError):
        s.get(f"https://auth.example.com:{port}/", timeout=5)
