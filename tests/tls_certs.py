"""Throwaway certificates for the TLS tests, made at run time: a CA, the venue's certificate (localhost, 127.0.0.1),
client certificates from that CA (one valid, one expired) and one from another CA."""

from __future__ import annotations

import datetime as dt
import ipaddress
import os
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

_NOW = dt.datetime.now(dt.UTC)


@dataclass(frozen=True)
class Pki:
    ca: Path  # the venue's CA certificate: clients verify the venue with it, the venue verifies clients with it
    server_cert: Path
    server_key: Path
    client_cert: Path  # CN=CLIENT1, from the CA
    client_key: Path
    expired_cert: Path  # from the CA, expired yesterday
    expired_key: Path
    other_ca: Path  # another CA
    rogue_cert: Path  # a client certificate from the other CA
    rogue_key: Path


def _name(cn: str) -> x509.Name:
    return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])


def _write_key(key: ec.EllipticCurvePrivateKey, path: Path) -> Path:
    data = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    return path


def _write_cert(cert: x509.Certificate, path: Path) -> Path:
    path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    return path


def _ca(cn: str) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    cert = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(_name(cn))
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(_NOW - dt.timedelta(days=1))
        .not_valid_after(_NOW + dt.timedelta(days=30))
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(x509.KeyUsage(False, False, False, False, False, True, True, False, False), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return cert, key


def _leaf(
    cn: str,
    ca: tuple[x509.Certificate, ec.EllipticCurvePrivateKey],
    server: bool,
    not_before: dt.datetime = _NOW - dt.timedelta(days=1),
    not_after: dt.datetime = _NOW + dt.timedelta(days=30),
) -> tuple[x509.Certificate, ec.EllipticCurvePrivateKey]:
    key = ec.generate_private_key(ec.SECP256R1())
    ca_cert, ca_key = ca
    builder = (
        x509.CertificateBuilder()
        .subject_name(_name(cn))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), critical=False)
        .add_extension(
            x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
            critical=False,
        )
    )
    if server:
        builder = builder.add_extension(
            x509.SubjectAlternativeName([x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
            critical=False,
        )
    return builder.sign(ca_key, hashes.SHA256()), key


def make_pki(directory: Path) -> Pki:
    """Write every certificate and key into ``directory`` (keys 0600)."""
    directory.mkdir(parents=True, exist_ok=True)
    ca = _ca("fixgw test CA")
    other = _ca("another CA")
    server = _leaf("localhost", ca, server=True)
    client = _leaf("CLIENT1", ca, server=False)
    expired = _leaf("CLIENT1", ca, False, _NOW - dt.timedelta(days=10), _NOW - dt.timedelta(days=1))
    rogue = _leaf("CLIENT1", other, server=False)
    d = directory
    return Pki(
        ca=_write_cert(ca[0], d / "ca.pem"),
        server_cert=_write_cert(server[0], d / "server.pem"),
        server_key=_write_key(server[1], d / "server.key"),
        client_cert=_write_cert(client[0], d / "client.pem"),
        client_key=_write_key(client[1], d / "client.key"),
        expired_cert=_write_cert(expired[0], d / "expired.pem"),
        expired_key=_write_key(expired[1], d / "expired.key"),
        other_ca=_write_cert(other[0], d / "other-ca.pem"),
        rogue_cert=_write_cert(rogue[0], d / "rogue.pem"),
        rogue_key=_write_key(rogue[1], d / "rogue.key"),
    )
