"""TLS on the FIX ports, against a real gateway with throwaway certificates made at run time (tests/tls_certs.py).

These never skip: a machine whose quickfix lacks TLS (the build in third_party/quickfix failed) fails here."""

from __future__ import annotations

import os
import socket
import ssl
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from fixclient import FixSession, SessionError, client_context, field
from gateway.tls import binding_has_tls, binding_patched
from tests.conftest import PASSWORDS, start_gateway_with, unique
from tests.fixtools import new_order, wait_er
from tests.gateway_process import ROOT, GatewayProcess, make_config
from tests.test_cli import fixgw
from tests.tls_certs import Pki, make_pki

pytestmark = pytest.mark.timeout(120)


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


def tls_overrides(pki: Pki, **more: Any) -> dict[str, Any]:
    return {
        "tls.enabled": True, "tls.certificate": str(pki.server_cert), "tls.private_key": str(pki.server_key),
        "fix.logon_timeout": 2, **more,
    }  # fmt: skip


@pytest.fixture(scope="module")
def tls_gateway(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """TLS on every FIX port, no client certificates."""
    gw = start_gateway_with(tmp_path_factory.mktemp("tlsgw"), tls_overrides(pki))
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


@pytest.fixture(scope="module")
def mtls_gateway(pki: Pki, tmp_path_factory: pytest.TempPathFactory) -> Iterator[GatewayProcess]:
    """Mutual TLS. The process's default trust store (SSL_CERT_FILE) is the *other* CA: a client certificate from
    it must still be refused, because the venue trusts tls.client_ca alone."""
    overrides = tls_overrides(pki, **{"tls.client_ca": str(pki.ca), "tls.client_certificates": "require"})
    gw = start_gateway_with(tmp_path_factory.mktemp("mtlsgw"), overrides, env={"SSL_CERT_FILE": str(pki.other_ca)})
    yield gw
    assert gw.stop() == 0, gw.log_text()[-3000:]


def session(port: int, comp_id: str, ctx: ssl.SSLContext | None) -> FixSession:
    return FixSession("127.0.0.1", port, comp_id, PASSWORDS[comp_id], reset_seq=True, tls=ctx)


def test_the_installed_quickfix_has_tls_and_the_fixgw_patch() -> None:
    assert binding_has_tls(), "quickfix lacks TLS: run `make quickfix-tls` (third_party/quickfix/README.md)"
    assert binding_patched(), "quickfix lacks the fixgw patch: run `make quickfix-tls`"


def test_tls_clients_trade_and_get_market_data(tls_gateway: GatewayProcess, pki: Pki) -> None:
    ctx = client_context(pki.ca)
    maker, taker = session(tls_gateway.oe_port, "CLIENT1", ctx), session(tls_gateway.oe_port, "CLIENT2", ctx)
    maker.logon()
    taker.logon()
    assert isinstance(maker.sock, ssl.SSLSocket) and maker.sock.version() in ("TLSv1.2", "TLSv1.3")
    resting, hit = unique("tls"), unique("tls")
    new_order(maker, resting, "2", "5", "101.00")
    wait_er(maker, resting, "0")
    new_order(taker, hit, "1", "5", "101.00")
    assert field(wait_er(taker, hit, "F"), 39) == "2"
    assert field(wait_er(maker, resting, "F"), 32) == "5"
    # The reference market-data client over TLS (fixgw md --once) sees the trade.
    done = fixgw(
        "md", "--port", str(tls_gateway.md_port), "--comp-id", "MD1", "--symbol", "AAPL", "--once",
        "--tls-ca", str(pki.ca),
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "101" in done.stdout, done.stdout
    maker.logout()
    taker.logout()


def test_fixgw_client_over_tls(tls_gateway: GatewayProcess, pki: Pki) -> None:
    done = fixgw(
        "client", "--port", str(tls_gateway.oe_port), "--comp-id", "CLIENT3", "--tls-ca", str(pki.ca),
        stdin="buy 1 AAPL @1.00\nquit\n",
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "ER c1 NEW AAPL BUY 1@1.00" in done.stdout, done.stdout


def test_a_client_refuses_a_venue_whose_certificate_it_cannot_verify(tls_gateway: GatewayProcess, pki: Pki) -> None:
    s = session(tls_gateway.oe_port, "CLIENT3", client_context(pki.other_ca))
    with pytest.raises(SessionError, match=r"TLS handshake .* failed.*CERTIFICATE_VERIFY_FAILED"):
        s.logon()


def test_plain_text_on_a_tls_port_is_dropped_and_the_venue_carries_on(tls_gateway: GatewayProcess, pki: Pki) -> None:
    plain = session(tls_gateway.oe_port, "CLIENT4", None)
    with pytest.raises(SessionError):  # no FIX answer: the TLS layer refuses the bytes and the venue hangs up
        plain.logon(timeout=5, retry=False)
    assert tls_gateway.proc is not None and tls_gateway.proc.poll() is None
    s = session(tls_gateway.oe_port, "CLIENT4", client_context(pki.ca))
    s.logon()
    cl = unique("tls")
    new_order(s, cl, "1", "1", "2.00")
    wait_er(s, cl, "0")
    s.logout()


def test_a_connection_that_never_speaks_does_not_hold_the_venue(tls_gateway: GatewayProcess, pki: Pki) -> None:
    """Stock QuickFIX ran the TLS handshake on its one thread: a peer that connected and sent nothing froze every
    session for 10 s. Now the others carry on, and the silent one is dropped after fix.logon_timeout (2 s here)."""
    s = session(tls_gateway.oe_port, "CLIENT5", client_context(pki.ca))
    s.logon()
    silent = socket.create_connection(("127.0.0.1", tls_gateway.oe_port))
    silent.settimeout(15)
    opened = time.monotonic()
    try:
        for _ in range(3):  # each answered while the silent connection is open
            cl = unique("tls")
            new_order(s, cl, "1", "1", "2.00")
            wait_er(s, cl, "0", timeout=1.5)
        assert time.monotonic() - opened < 5
        assert silent.recv(100) == b""  # dropped by the venue
    finally:
        silent.close()
    s.logout()


@pytest.mark.filterwarnings("ignore:ssl.TLSVersion.TLSv1_1 is deprecated:DeprecationWarning")
@pytest.mark.parametrize(
    ("version", "ciphers", "accepted"),
    [
        (ssl.TLSVersion.TLSv1_3, None, True),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES128-GCM-SHA256", True),
        (ssl.TLSVersion.TLSv1_2, "ECDHE-ECDSA-AES256-SHA", False),  # no AEAD: not in tls.ciphers
        (ssl.TLSVersion.TLSv1_1, "ALL:@SECLEVEL=0", False),
    ],
)
def test_protocol_versions_and_ciphers(
    tls_gateway: GatewayProcess, pki: Pki, version: ssl.TLSVersion, ciphers: str | None, accepted: bool
) -> None:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.load_verify_locations(pki.ca)
    ctx.minimum_version = ctx.maximum_version = version
    if ciphers:
        ctx.set_ciphers(ciphers)
    with socket.create_connection(("127.0.0.1", tls_gateway.oe_port), timeout=5) as raw:
        if accepted:
            with ctx.wrap_socket(raw, server_hostname="127.0.0.1") as tls:
                assert tls.version() == {ssl.TLSVersion.TLSv1_3: "TLSv1.3", ssl.TLSVersion.TLSv1_2: "TLSv1.2"}[version]
        else:
            with pytest.raises(ssl.SSLError):
                ctx.wrap_socket(raw, server_hostname="127.0.0.1")


def test_mutual_tls_accepts_a_client_certificate_from_the_venue_ca(mtls_gateway: GatewayProcess, pki: Pki) -> None:
    s = session(mtls_gateway.oe_port, "CLIENT1", client_context(pki.ca, pki.client_cert, pki.client_key))
    s.logon()
    cl = unique("mtls")
    new_order(s, cl, "1", "1", "3.00")
    wait_er(s, cl, "0")
    s.logout()


@pytest.mark.parametrize("which", ["none", "other_ca", "expired"])
def test_mutual_tls_refuses_a_missing_foreign_or_expired_certificate(
    mtls_gateway: GatewayProcess, pki: Pki, which: str
) -> None:
    cert = {"none": None, "other_ca": (pki.rogue_cert, pki.rogue_key), "expired": (pki.expired_cert, pki.expired_key)}
    chosen = cert[which]
    ctx = client_context(pki.ca, *chosen) if chosen else client_context(pki.ca)
    s = session(mtls_gateway.oe_port, "CLIENT2", ctx)
    # TLS 1.3: the client finishes its side of the handshake before the venue has checked the certificate; the
    # venue's refusal (an alert, then the connection closed) arrives instead of the Logon, or breaks its sending.
    with pytest.raises((SessionError, ssl.SSLError)):
        s.logon(timeout=5, retry=False)
    assert mtls_gateway.proc is not None and mtls_gateway.proc.poll() is None


# The binding as PyPI builds it: quickfix imported as usual, but SSLSocketAcceptor raises what the PyPI build raises.
_PLAIN_QUICKFIX = """
import importlib.machinery, importlib.util, os, sys
here = os.path.dirname(os.path.abspath(__file__))
path = [p for p in sys.path if os.path.abspath(p or ".") != here]
spec = importlib.machinery.PathFinder.find_spec("quickfix", path)
real = importlib.util.module_from_spec(spec)
sys.modules["quickfix"] = real
spec.loader.exec_module(real)
def SSLSocketAcceptor(*args, **kwargs):
    raise real.ConfigError("Configuration failed: HAVE_SSL not enabled")
real.SSLSocketAcceptor = SSLSocketAcceptor
"""


def test_a_venue_configured_for_tls_on_a_binding_without_it_says_so_at_start(pki: Pki, tmp_path: Path) -> None:
    shim = tmp_path / "plain"
    shim.mkdir()
    (shim / "quickfix.py").write_text(_PLAIN_QUICKFIX)
    env = {**os.environ, "PYTHONPATH": str(shim)}
    config, _ = make_config(tmp_path, tls_overrides(pki))
    done = subprocess.run(
        [sys.executable, "-m", "gateway", "serve", "--config", str(config)],
        capture_output=True, text=True, timeout=60, env=env, cwd=ROOT, check=False,
    )  # fmt: skip
    assert done.returncode == 2, done.stderr
    assert "tls.enabled = true but the installed quickfix was built without TLS" in done.stderr
    assert "make quickfix-tls" in done.stderr
    probe = subprocess.run(
        [sys.executable, "-m", "gateway.tls"], capture_output=True, text=True, timeout=60, env=env, cwd=ROOT,
        check=False,
    )  # fmt: skip
    assert probe.returncode == 1 and "TLS NO" in probe.stdout, (probe.stdout, probe.stderr)
