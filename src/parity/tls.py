"""The local CA and the edge's wildcard certificate, shared by both modes.

    .parity/ca/ca.crt, ca.key      created once (key 0600); trust ca.crt in a browser
    .parity/tls/tls.crt, tls.key   *.<domain> and <domain>, issued by the CA; reissued
                                   when the domain changes or expiry is < 30 days away

The CA is **name-constrained** (X.509 NameConstraints, critical): it can only issue
certificates for the stack's domain, ``localhost`` and the loopback addresses
(127.0.0.0/8, ::1). Trusting it in a browser therefore trusts nothing on the
internet, even if its key leaks: a certificate it signs for ``www.example.com``
does not verify.

Every use checks the material (:func:`ensure`), under the ``tls`` lock of
:mod:`parity.lock` so that concurrent commands neither create two CAs nor read a
half-replaced pair:

* the CA: its key matches it, it is a CA, it is within its validity window (not
  within 30 days of its end) and its name constraints are present, critical and
  permit the domain; otherwise a new CA is made (the user must trust it again:
  the caller says so)
* the certificate: its key matches it, it is signed by the CA and verifies against
  it as a server certificate for the domain (cryptography's X.509 path validation:
  signature, validity, SANs, name constraints), and it is not within 30 days of its
  end; otherwise it is reissued

Files are written atomically (a unique temporary file, then rename); a pair is
written key first, then certificate, and always read back under the lock.

Checks verify the edge against ca.crt, so TLS is proven, not skipped.
"""

from __future__ import annotations

import datetime as _dt
import ipaddress
from dataclasses import dataclass, field
from pathlib import Path

from . import lock
from .yamlio import write_atomic

KEY_MODE = 0o600
CA_DAYS = 3650
CERT_DAYS = 397
RENEW_BEFORE = _dt.timedelta(days=30)
CA_NAME = "parity local CA"
#: Names the CA may sign besides the stack's domain.
PERMITTED_DNS = ("localhost",)
PERMITTED_IPS = ("127.0.0.0/8", "::1/128")


def ca_paths(state: Path) -> tuple[Path, Path]:
    return state / "ca" / "ca.crt", state / "ca" / "ca.key"


def cert_paths(state: Path) -> tuple[Path, Path]:
    return state / "tls" / "tls.crt", state / "tls" / "tls.key"


@dataclass
class Material:
    """What :func:`ensure` checked (and made where needed), read under the lock."""

    ca_pem: bytes
    cert_pem: bytes      # the leaf followed by the CA
    key_pem: bytes
    ca_created: bool = False
    cert_issued: bool = False
    notes: list[str] = field(default_factory=list)   # what was replaced, and why


def _write(path: Path, data: bytes, mode: int) -> None:
    write_atomic(path, data.decode("ascii"), mode=mode)


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def _spki(public_key) -> bytes:
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography.hazmat.primitives import serialization

    return public_key.public_bytes(serialization.Encoding.DER,
                                   serialization.PublicFormat.SubjectPublicKeyInfo)


def _load_pair(crt: Path, key: Path):
    """(certificate, key), or a reason why they are not a usable pair."""
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    if not crt.exists() and not key.exists():
        return None, None, "missing"
    try:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
    except (OSError, ValueError) as exc:
        return None, None, f"{crt.name} is unreadable ({type(exc).__name__})"
    try:
        private = serialization.load_pem_private_key(key.read_bytes(), password=None)
    except (OSError, ValueError, TypeError) as exc:
        return None, None, f"{key.name} is unreadable ({type(exc).__name__})"
    if _spki(private.public_key()) != _spki(cert.public_key()):
        return None, None, f"{key.name} does not match {crt.name}"
    return cert, private, ""


def _in_subtree(name: str, subtree: str) -> bool:
    name, subtree = name.lower().rstrip("."), subtree.lower().rstrip(".").lstrip(".")
    return name == subtree or name.endswith("." + subtree)


def ca_problem(cert, domain: str | None) -> str:
    """Why the CA certificate cannot serve ``domain`` ("" when it can)."""
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography import x509

    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        return "it is not a CA certificate"
    if not basic.ca:
        return "it is not a CA certificate"
    now = _now()
    if not cert.not_valid_before_utc <= now <= cert.not_valid_after_utc:
        return f"it is outside its validity window ({cert.not_valid_after_utc:%Y-%m-%d})"
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    try:
        ext = cert.extensions.get_extension_for_class(x509.NameConstraints)
    except x509.ExtensionNotFound:
        return ("it has no name constraints (an older parity made it), so it could sign "
                "a certificate for any website")
    if not ext.critical or not ext.value.permitted_subtrees:
        return "its name constraints are not critical or permit every name"
    if domain is not None:
        permitted = [g.value for g in ext.value.permitted_subtrees
                     if isinstance(g, x509.DNSName)]
        excluded = [g.value for g in ext.value.excluded_subtrees or []
                    if isinstance(g, x509.DNSName)]
        if not any(_in_subtree(domain, s) for s in permitted) or \
                any(_in_subtree(domain, s) for s in excluded):
            return (f"its name constraints ({', '.join(permitted)}) do not permit the "
                    f"domain {domain}")
    return ""


def cert_problem(cert, ca_cert, domain: str) -> str:
    """Why the edge certificate is not good for ``domain`` under ``ca_cert``."""
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography import x509
    from cryptography.x509.verification import PolicyBuilder, Store, VerificationError

    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return "it names no host (no subjectAltName)"
    names = set(san.get_values_for_type(x509.DNSName))
    if names != {f"*.{domain}", domain}:
        return f"it is for {', '.join(sorted(names))}, not *.{domain}"
    now = _now()
    if cert.not_valid_after_utc - now < RENEW_BEFORE:
        return f"it expires on {cert.not_valid_after_utc:%Y-%m-%d}"
    store = Store([ca_cert])
    for host in (domain, f"parity-check.{domain}"):
        verifier = PolicyBuilder().store(store).time(now).build_server_verifier(
            x509.DNSName(host))
        try:
            verifier.verify(cert, [])
        except VerificationError as exc:
            return f"it does not verify against the local CA for {host}: {exc}"
    return ""


def _new_ca(domain: str | None):
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "parity local development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, CA_NAME)])
    dns = list(dict.fromkeys([*([domain] if domain else []), *PERMITTED_DNS]))
    permitted = [x509.DNSName(d) for d in dns] + [
        x509.IPAddress(ipaddress.ip_network(n)) for n in PERMITTED_IPS]
    now = _now()
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(private.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=CA_DAYS))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=True,
                                         crl_sign=True, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.NameConstraints(permitted_subtrees=permitted,
                                                excluded_subtrees=None), critical=True)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()),
                           critical=False)
            .sign(private, hashes.SHA256()))
    return cert, private


def _new_leaf(domain: str, ca_cert, ca_key):
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    now = _now()
    cert = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"*.{domain}")]))
            .issuer_name(ca_cert.subject).public_key(private.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - _dt.timedelta(minutes=5))
            .not_valid_after(now + _dt.timedelta(days=CERT_DAYS))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(f"*.{domain}"),
                                                        x509.DNSName(domain)]), critical=False)
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(x509.KeyUsage(digital_signature=True, key_cert_sign=False,
                                         crl_sign=False, content_commitment=False,
                                         key_encipherment=False, data_encipherment=False,
                                         key_agreement=False, encipher_only=False,
                                         decipher_only=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    return cert, private


def _pem(cert=None, key=None) -> bytes:
    # lazy: cryptography costs ~30 ms on import; only CA and certificate work needs it
    from cryptography.hazmat.primitives import serialization

    if cert is not None:
        return cert.public_bytes(serialization.Encoding.PEM)
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def ensure(state: Path, domain: str | None) -> Material:
    """Check the CA and (with a ``domain``) the edge certificate, make what is
    missing or broken, and return the material as checked. ``domain`` None: the CA
    only (its certificate fields are then empty)."""

    state = Path(state)
    with lock.material(state):
        return _ensure_locked(state, domain)


def _ensure_locked(state: Path, domain: str | None) -> Material:
    notes: list[str] = []
    ca_crt, ca_key_path = ca_paths(state)
    ca_cert, ca_key, reason = _load_pair(ca_crt, ca_key_path)
    if ca_cert is not None:
        reason = ca_problem(ca_cert, domain)
    ca_created = False
    if reason:
        if reason != "missing":
            notes.append(f"replaced the local CA {ca_crt.parent.name}/{ca_crt.name}: {reason}. "
                         "Trust the new one in your browser and remove the old "
                         f"'{CA_NAME}' (docs/identity.md#trusting-the-local-ca-in-a-desktop-"
                         "browser)")
        ca_cert, ca_key = _new_ca(domain)
        _write(ca_key_path, _pem(key=ca_key), KEY_MODE)
        _write(ca_crt, _pem(cert=ca_cert), 0o644)
        ca_created = True
    else:
        ca_key_path.chmod(KEY_MODE)
    ca_pem = ca_crt.read_bytes()
    if domain is None:
        return Material(ca_pem, b"", b"", ca_created, False, notes)
    crt, key = cert_paths(state)
    leaf, leaf_key, reason = _load_pair(crt, key)
    if leaf is not None:
        reason = cert_problem(leaf, ca_cert, domain)
    issued = False
    if reason:
        if reason != "missing" and not ca_created:
            notes.append(f"reissued the edge certificate {crt.parent.name}/{crt.name}: "
                         f"{reason}")
        leaf, leaf_key = _new_leaf(domain, ca_cert, ca_key)
        # the edge's master process reads the key as root before dropping privileges
        _write(key, _pem(key=leaf_key), KEY_MODE)
        _write(crt, _pem(cert=leaf) + ca_pem, 0o644)
        issued = True
    cert_pem, key_pem = crt.read_bytes(), key.read_bytes()
    return Material(ca_pem, cert_pem, key_pem, ca_created, issued, notes)


def ensure_ca(state: Path, domain: str | None = None) -> bool:
    """Create (or replace a broken) CA; return True when one was made."""
    return ensure(state, domain).ca_created


def ensure_cert(state: Path, domain: str) -> bool:
    """Issue the wildcard certificate for ``domain`` when missing, stale or broken."""
    return ensure(state, domain).cert_issued
