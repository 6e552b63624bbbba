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


# --------------------------------------------------------------------------- trust limits

def _sign_with_ca(state, host: str):
    """A server certificate for ``host`` made with the local CA's key, as whoever
    stole the key would make it."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    ca_crt, ca_key = tls.ca_paths(state)
    ca = x509.load_pem_x509_certificate(ca_crt.read_bytes())
    key = serialization.load_pem_private_key(ca_key.read_bytes(), None)
    return tls._new_leaf(host, ca, key)[0], ca


def test_the_ca_is_name_constrained_to_the_domain_and_loopback(tmp_path) -> None:
    import ipaddress

    from cryptography import x509

    tls.ensure(tmp_path, "parity.localhost")
    ca = x509.load_pem_x509_certificate(tls.ca_paths(tmp_path)[0].read_bytes())
    ext = ca.extensions.get_extension_for_class(x509.NameConstraints)
    assert ext.critical
    assert set(ext.value.permitted_subtrees) == {
        x509.DNSName("parity.localhost"), x509.DNSName("localhost"),
        x509.IPAddress(ipaddress.ip_network("127.0.0.0/8")),
        x509.IPAddress(ipaddress.ip_network("::1/128"))}


@pytest.mark.parametrize("host", ["www.example.com", "parity.localhost.example.com",
                                  "example.org"])
def test_the_ca_key_cannot_vouch_for_a_website(tmp_path, host) -> None:
    import datetime

    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    tls.ensure(tmp_path, "parity.localhost")
    leaf, ca = _sign_with_ca(tmp_path, host)
    verifier = PolicyBuilder().store(Store([ca])).time(
        datetime.datetime.now(datetime.timezone.utc)).build_server_verifier(x509.DNSName(host))
    with pytest.raises(VerificationError, match="name constraint"):
        verifier.verify(leaf, [])
    # the same CA still vouches for the stack's names
    ok, _ = _sign_with_ca(tmp_path, "parity.localhost")
    PolicyBuilder().store(Store([ca])).build_server_verifier(
        x509.DNSName("app.parity.localhost")).verify(ok, [])


def test_openssl_agrees_that_the_ca_cannot_vouch_for_a_website(tmp_path) -> None:
    import shutil
    import subprocess

    from cryptography.hazmat.primitives import serialization

    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is not installed (the cryptography test above covers this)")
    tls.ensure(tmp_path, "parity.localhost")
    leaf, _ = _sign_with_ca(tmp_path, "www.example.com")
    bad = tmp_path / "bad.crt"
    bad.write_bytes(leaf.public_bytes(serialization.Encoding.PEM))
    ca = str(tls.ca_paths(tmp_path)[0])
    r = subprocess.run([openssl, "verify", "-CAfile", ca, "-purpose", "sslserver", str(bad)],
                       capture_output=True, text=True)
    assert r.returncode != 0 and "permitted subtree violation" in r.stdout + r.stderr
    good = subprocess.run([openssl, "verify", "-CAfile", ca, "-purpose", "sslserver",
                           str(tls.cert_paths(tmp_path)[0])], capture_output=True, text=True)
    assert good.returncode == 0, good.stdout + good.stderr


def _unconstrained_ca(state) -> None:
    """A CA as parity made it before it was name-constrained."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "parity local CA")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(1)
            .not_valid_before(now).not_valid_after(now + datetime.timedelta(days=3000))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .sign(key, hashes.SHA256()))
    crt_path, key_path = tls.ca_paths(state)
    crt_path.parent.mkdir(parents=True)
    crt_path.write_bytes(tls._pem(cert=cert))
    key_path.write_bytes(tls._pem(key=key))


def test_a_ca_without_name_constraints_is_replaced_and_the_user_told(tmp_path) -> None:
    _unconstrained_ca(tmp_path)
    old = tls.ca_paths(tmp_path)[0].read_bytes()
    m = tls.ensure(tmp_path, "parity.localhost")
    assert m.ca_created and m.cert_issued
    assert tls.ca_paths(tmp_path)[0].read_bytes() != old
    assert len(m.notes) == 1 and m.notes[0].startswith(
        "replaced the local CA ca/ca.crt: it has no name constraints (an older parity made "
        "it), so it could sign a certificate for any website. Trust the new one in your "
        "browser and remove the old 'parity local CA' (docs/identity.md#")
    assert tls.ensure(tmp_path, "parity.localhost").notes == []


def test_a_domain_outside_the_constraints_gets_a_new_ca(tmp_path) -> None:
    tls.ensure(tmp_path, "parity.localhost")
    assert tls.ensure(tmp_path, "dev.localhost").ca_created is False  # under localhost
    m = tls.ensure(tmp_path, "stack.test")
    assert m.ca_created and "do not permit the domain stack.test" in m.notes[0]


def _swap_key(path) -> None:
    from cryptography.hazmat.primitives.asymmetric import ec

    path.write_bytes(tls._pem(key=ec.generate_private_key(ec.SECP256R1())))


@pytest.mark.parametrize("breakage, reason", [
    ("leaf-key", "reissued the edge certificate tls/tls.crt: tls.key does not match tls.crt"),
    ("leaf-truncated", "reissued the edge certificate tls/tls.crt: tls.crt is unreadable"),
    ("leaf-foreign", "reissued the edge certificate tls/tls.crt: it does not verify against "
                     "the local CA"),
    ("ca-key", "replaced the local CA ca/ca.crt: ca.key does not match ca.crt"),
])
def test_broken_material_is_regenerated_and_said(tmp_path, breakage, reason) -> None:
    from cryptography import x509

    tls.ensure(tmp_path, "parity.localhost")
    crt, key = tls.cert_paths(tmp_path)
    if breakage == "leaf-key":
        _swap_key(key)
    elif breakage == "leaf-truncated":
        crt.write_bytes(crt.read_bytes()[:100])
    elif breakage == "leaf-foreign":       # a pair from another CA (another clone's)
        other = tmp_path / "other"
        tls.ensure(other, "parity.localhost")
        for a, b in zip(tls.cert_paths(other), tls.cert_paths(tmp_path)):
            b.write_bytes(a.read_bytes())
    else:
        _swap_key(tls.ca_paths(tmp_path)[1])
    m = tls.ensure(tmp_path, "parity.localhost")
    assert m.cert_issued and m.notes[0].startswith(reason), m.notes
    ca = x509.load_pem_x509_certificate(m.ca_pem)
    assert tls.cert_problem(x509.load_pem_x509_certificate(m.cert_pem), ca,
                            "parity.localhost") == ""
    assert tls.ensure(tmp_path, "parity.localhost").notes == []
