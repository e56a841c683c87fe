"""TLS on the FIX ports: the ``[tls]`` table of the venue config, the QuickFIX settings it becomes, and what the
installed ``quickfix`` binding can do.

TLS is terminated by QuickFIX itself (``SSLSocketAcceptor``), so the venue still sees each client's address. It is
one switch for every FIX port of the venue (order entry, market data, drop copy): QuickFIX keeps one TLS context per
acceptor. The binding PyPI builds for Linux has TLS compiled out; ``make`` builds one with TLS and the fixgw patch
(``third_party/quickfix``). ``python -m gateway.tls`` says what the installed binding can do.

What the settings allow (QuickFIX hands them to OpenSSL):

* protocols: ``SSLProtocol = -all +TLSv1_2 +TLSv1_3`` (``min_version = "1.2"``, the default) or ``-all +TLSv1_3``
  (``"1.3"``). The venue writes this string itself: QuickFIX's parser turns an unknown word (``TLSv1.2`` with a dot,
  say) into "every protocol", silently.
* TLS 1.2 cipher suites (``SSLCipherSuite``, OpenSSL cipher-list syntax): :data:`DEFAULT_CIPHERS`, i.e. ECDHE key
  exchange (forward secrecy) with AES-GCM or ChaCha20-Poly1305 only; TLS 1.3 suites (``TLSCipherSuites``):
  :data:`DEFAULT_CIPHERSUITES`, the three AEAD suites of TLS 1.3. Key exchange uses the P-256 curve (QuickFIX).
* client certificates (``client_certificates``): ``none``, ``optional`` (verified if sent) or ``require`` (mutual
  TLS), verified against ``client_ca`` only (the fixgw patch stops QuickFIX from also trusting the system's store),
  and against ``crl`` when given.
"""

from __future__ import annotations

import os
import sys
import tempfile
from dataclasses import dataclass
from enum import Enum
from pathlib import Path
from typing import Any

DEFAULT_CIPHERS = "ECDHE+AESGCM:ECDHE+CHACHA20"
DEFAULT_CIPHERSUITES = "TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256:TLS_AES_128_GCM_SHA256"
PROTOCOLS = {"1.2": "-all +TLSv1_2 +TLSv1_3", "1.3": "-all +TLSv1_3"}
PATCHED_VERSION = "1.16.0+fixgw.5"  # the wheel third_party/quickfix/build_wheel.py builds
BUILD_HINT = "run `make quickfix-tls` (needs a C++ compiler and OpenSSL's headers, e.g. Debian's g++ and libssl-dev)"


class ClientCertificates(str, Enum):
    NONE = "none"
    OPTIONAL = "optional"
    REQUIRE = "require"

    @property
    def verify_level(self) -> int:
        """QuickFIX's CertificateVerifyLevel."""
        return {"none": 0, "require": 1, "optional": 2}[self.value]


@dataclass(frozen=True)
class TlsConfig:
    """The ``[tls]`` table."""

    enabled: bool = False
    certificate: Path | None = None  # the venue's certificate (PEM), chain included
    private_key: Path | None = None  # its key (PEM, not encrypted)
    client_ca: Path | None = None  # CA certificates (PEM) that client certificates must chain to
    client_certificates: ClientCertificates = ClientCertificates.NONE
    min_version: str = "1.2"
    ciphers: str = DEFAULT_CIPHERS
    ciphersuites: str = DEFAULT_CIPHERSUITES
    crl: Path | None = None  # a certificate revocation list (PEM) for client certificates

    def quickfix_settings(self) -> dict[str, str]:
        """The QuickFIX [DEFAULT] settings of TLS (empty when off)."""
        if not self.enabled:
            return {}
        settings = {
            "ServerCertificateFile": str(self.certificate),
            "ServerCertificateKeyFile": str(self.private_key),
            "SSLProtocol": PROTOCOLS[self.min_version],
            "SSLCipherSuite": self.ciphers,
            "TLSCipherSuites": self.ciphersuites,
        }
        if self.client_ca is not None:
            settings["CertificationAuthoritiesFile"] = str(self.client_ca)
            settings["CertificateVerifyLevel"] = str(self.client_certificates.verify_level)
        if self.crl is not None:
            settings["CertificateRevocationListFile"] = str(self.crl)
        return settings


def tls_config(table: dict[str, Any], base: Path) -> TlsConfig:
    """Parse the ``[tls]`` table (paths relative to ``base``); ValueError naming the bad setting."""

    def path(key: str) -> Path | None:
        value = table.get(key)
        return (base / str(value)).resolve() if value else None

    try:
        verify = ClientCertificates(str(table.get("client_certificates", "none")))
    except ValueError:
        raise ValueError("config: tls.client_certificates must be none, optional or require") from None
    cfg = TlsConfig(
        enabled=bool(table.get("enabled", False)),
        certificate=path("certificate"),
        private_key=path("private_key"),
        client_ca=path("client_ca"),
        client_certificates=verify,
        min_version=str(table.get("min_version", "1.2")),
        ciphers=str(table.get("ciphers", DEFAULT_CIPHERS)),
        ciphersuites=str(table.get("ciphersuites", DEFAULT_CIPHERSUITES)),
        crl=path("crl"),
    )
    if cfg.min_version not in PROTOCOLS:
        raise ValueError(f'config: tls.min_version must be "1.2" or "1.3", not {cfg.min_version!r}')
    if not cfg.enabled:
        return cfg
    for key in ("certificate", "private_key"):
        if getattr(cfg, key) is None:
            raise ValueError(f"config: tls.enabled = true needs tls.{key} (a PEM file)")
    if verify is not ClientCertificates.NONE and cfg.client_ca is None:
        raise ValueError(f'config: tls.client_certificates = "{verify.value}" needs tls.client_ca (CA certificates)')
    for key in ("certificate", "private_key", "client_ca", "crl"):
        file = getattr(cfg, key)
        if file is not None and not os.access(file, os.R_OK):
            raise ValueError(f"config: tls.{key} {file} is not a readable file")
    return cfg


def binding_version() -> str:
    from importlib.metadata import version

    return version("quickfix")


def binding_patched() -> bool:
    """True if the installed binding carries the fixgw patch (third_party/quickfix)."""
    import quickfix as fix

    return int(getattr(fix, "FIXGW_PATCH", 0)) >= 1


def binding_has_tls() -> bool:
    """True if the installed binding was built with TLS (constructing an SSLSocketAcceptor does not raise
    ``HAVE_SSL not enabled``). Binds no port and reads no certificate."""
    import quickfix as fix

    class _App(fix.Application):  # type: ignore[misc]
        def onCreate(self, sessionID: Any) -> None: ...
        def onLogon(self, sessionID: Any) -> None: ...
        def onLogout(self, sessionID: Any) -> None: ...
        def toAdmin(self, message: Any, sessionID: Any) -> None: ...
        def fromAdmin(self, message: Any, sessionID: Any) -> None: ...
        def toApp(self, message: Any, sessionID: Any) -> None: ...
        def fromApp(self, message: Any, sessionID: Any) -> None: ...

    with tempfile.TemporaryDirectory() as tmp:
        settings_file = Path(tmp) / "probe.cfg"
        settings_file.write_text(
            "[DEFAULT]\nConnectionType=acceptor\nBeginString=FIX.4.4\nSenderCompID=PROBE\nStartTime=00:00:00\n"
            "EndTime=00:00:00\nUseDataDictionary=N\n\n[SESSION]\nTargetCompID=PROBE2\nSocketAcceptPort=1\n"
        )
        try:
            fix.SSLSocketAcceptor(_App(), fix.MemoryStoreFactory(), fix.SessionSettings(str(settings_file)))
        except fix.ConfigError as exc:
            if "HAVE_SSL" in str(exc):
                return False
            raise
    return True


def main() -> int:
    """``python -m gateway.tls``: what the installed binding can do; exit 1 if it lacks TLS or the patch."""
    tls, patched = binding_has_tls(), binding_patched()
    print(f"quickfix {binding_version()}: TLS {'yes' if tls else 'NO'}, fixgw patch {'yes' if patched else 'NO'}")
    if not (tls and patched):
        print(f"  the venue runs plain text only, without the pre-logon protections; {BUILD_HINT}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
