"""TLS for the venue's clients: an ``ssl.SSLContext`` that verifies the venue and may present a client certificate."""

from __future__ import annotations

import argparse
import ssl
from pathlib import Path


def client_context(
    ca_file: Path | str | None = None, cert_file: Path | str | None = None, key_file: Path | str | None = None
) -> ssl.SSLContext:
    """A TLS 1.2+ client context: the venue's certificate is verified against ``ca_file`` (else the system's trust
    store) and must name the host connected to; ``cert_file``/``key_file`` is the client certificate for mutual
    TLS."""
    ctx = ssl.create_default_context(cafile=str(ca_file) if ca_file else None)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    if cert_file:
        ctx.load_cert_chain(str(cert_file), str(key_file) if key_file else None)
    return ctx


def add_tls_arguments(parser: argparse.ArgumentParser) -> None:
    """The TLS options of the client tools (``fixgw client``, ``md``, ``simulate``, the load generator)."""
    g = parser.add_argument_group("TLS (when the venue's FIX ports use it)")
    g.add_argument("--tls", action="store_true", help="connect over TLS (the venue's certificate is verified)")
    g.add_argument("--tls-ca", type=Path, help="CA certificate(s), PEM, the venue's must chain to (implies --tls)")
    g.add_argument("--tls-cert", type=Path, help="client certificate, PEM, for mutual TLS (implies --tls)")
    g.add_argument("--tls-key", type=Path, help="the client certificate's key (default: in --tls-cert)")
    g.add_argument("--tls-server-name", help="the name the venue's certificate must carry (default: --host)")


def context_from_args(args: argparse.Namespace) -> ssl.SSLContext | None:
    """The context :func:`add_tls_arguments` asked for, or None for plain TCP; ValueError naming a bad file."""
    if not (args.tls or args.tls_ca or args.tls_cert):
        return None
    try:
        return client_context(args.tls_ca, args.tls_cert, args.tls_key)
    except (OSError, ssl.SSLError) as exc:
        raise ValueError(f"TLS: cannot load the certificates: {exc}") from None
