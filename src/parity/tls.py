"""The local CA and the edge's wildcard certificate, shared by both modes.

    .parity/ca/ca.crt, ca.key      created once (key 0600); trust ca.crt in a browser
    .parity/tls/tls.crt, tls.key   *.<domain> and <domain>, issued by the CA; reissued
                                   when the domain changes or expiry is < 30 days away

Checks verify the edge against ca.crt, so TLS is proven, not skipped.
"""

from __future__ import annotations

import datetime as _dt
import os
from pathlib import Path

KEY_MODE = 0o600
CA_DAYS = 3650
CERT_DAYS = 397


def ca_paths(state: Path) -> tuple[Path, Path]:
    return state / "ca" / "ca.crt", state / "ca" / "ca.key"


def cert_paths(state: Path) -> tuple[Path, Path]:
    return state / "tls" / "tls.crt", state / "tls" / "tls.key"


def _write_pair(key: Path, key_data: bytes, crt: Path, crt_data: bytes) -> None:
    """A key and its certificate, both or neither (parity.fsio: atomic, no traceback)."""
    from .fsio import Entry, write_all

    write_all([Entry(key, key_data, KEY_MODE), Entry(crt, crt_data, 0o644)])


def _now() -> _dt.datetime:
    return _dt.datetime.now(_dt.timezone.utc)


def ensure_ca(state: Path) -> bool:
    """Create the CA if it does not exist; return True when created."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    crt, key = ca_paths(state)
    if crt.exists() and key.exists():
        if key.stat().st_mode & 0o777 != KEY_MODE:
            try:
                os.chmod(key, KEY_MODE)
            except OSError as exc:
                from .fsio import write_error

                raise write_error(exc, key) from None
        return False
    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.ORGANIZATION_NAME, "parity local development"),
                      x509.NameAttribute(NameOID.COMMON_NAME, "parity local CA")])
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
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(private.public_key()),
                           critical=False)
            .sign(private, hashes.SHA256()))
    _write_pair(key, private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()),
                crt, cert.public_bytes(serialization.Encoding.PEM))
    return True


def _current_ok(crt: Path, domain: str) -> bool:
    from cryptography import x509

    try:
        cert = x509.load_pem_x509_certificate(crt.read_bytes())
    except (OSError, ValueError):
        return False
    try:
        san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    except x509.ExtensionNotFound:
        return False
    names = set(san.get_values_for_type(x509.DNSName))
    fresh = cert.not_valid_after_utc - _now() > _dt.timedelta(days=30)
    return fresh and names == {f"*.{domain}", domain}


def ensure_cert(state: Path, domain: str) -> bool:
    """Issue the wildcard certificate for ``domain`` when missing or stale."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

    ensure_ca(state)
    crt, key = cert_paths(state)
    if key.exists() and _current_ok(crt, domain):
        return False
    ca_crt_path, ca_key_path = ca_paths(state)
    ca_cert = x509.load_pem_x509_certificate(ca_crt_path.read_bytes())
    ca_key = serialization.load_pem_private_key(ca_key_path.read_bytes(), password=None)
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
            .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]),
                           critical=False)
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(
                ca_cert.public_key()), critical=False)  # type: ignore[arg-type]
            .sign(ca_key, hashes.SHA256()))  # type: ignore[arg-type]
    # the edge's master process reads the key as root before dropping privileges
    _write_pair(key, private.private_bytes(serialization.Encoding.PEM,
                                           serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()),
                crt, cert.public_bytes(serialization.Encoding.PEM) + ca_crt_path.read_bytes())
    return True
