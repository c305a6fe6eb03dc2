"""Behind a load balancer, over real HTTP: the test process is the proxy (its peer address is 127.0.0.1), so an
STS with ``trusted_proxies = ["127.0.0.1"]`` believes its forwarding headers and one with only ``10.0.0.0/8``
does not. Checked where the client address matters (the auth throttle, the audit trail, the request log, the
console's sign-in throttle), where "loopback" matters (clear-text passwords on a loopback bind, /metrics), and
the certificatetransport endpoints with the client certificate in nginx's and Envoy's headers.
"""

from __future__ import annotations

import hashlib
import logging
import re
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import quote

import httpx
import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from sqlalchemy import select

from live import LiveServer, running
from signing import make_client
from sts import ns
from sts.config import load_settings
from sts.home import DEMO_PASSWORD, DEMO_RP_ENDPOINT, DEMO_USER, init_home
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wstrust.render import render_rst
from sts.runtime import open_stores
from sts.store.schema import auth_failures
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.protocol.xmlsafe import parse
from trust_client import Reply, rst_envelope

CLIENT = "proxied-payments"
CLIENT_IP = "203.0.113.9"
NGINX_HEADER = "X-SSL-Client-Cert"
TRANSPORT = "/adfs/services/trust/13/certificatetransport"


@pytest.fixture(scope="module")
def identities(tmp_path_factory: pytest.TempPathFactory) -> dict[str, x509.Certificate]:
    return {name: make_client(name)[1] for name in (CLIENT, "proxied-stranger")}


@pytest.fixture(scope="module")
def home(tmp_path_factory: pytest.TempPathFactory, identities: dict[str, x509.Certificate]) -> Path:
    path = tmp_path_factory.mktemp("proxied-home")
    init_home(path)
    stores = open_stores(load_settings(path))
    try:
        stores.clients.add(CLIENT, identities[CLIENT].public_bytes(Encoding.PEM), [])
    finally:
        stores.close()
    return path


@pytest.fixture(scope="module")
def behind_nginx(home: Path) -> Iterator[LiveServer]:
    """The test process is a trusted proxy that sends the certificate as nginx's $ssl_client_escaped_cert."""
    with running(home, trusted_proxies=("127.0.0.1",), client_cert_header=NGINX_HEADER,
                 client_cert_header_format="escaped-pem", log_format="json",
                 auth_throttle_free_failures=100) as live:
        yield live


@pytest.fixture(scope="module")
def behind_envoy(home: Path) -> Iterator[LiveServer]:
    with running(home, trusted_proxies=("127.0.0.0/8",), client_cert_header="x-forwarded-client-cert",
                 client_cert_header_format="xfcc") as live:
        yield live


@pytest.fixture(scope="module")
def untrusted(home: Path) -> Iterator[LiveServer]:
    """The proxies it trusts are elsewhere: the test process is an ordinary client sending forged headers."""
    with running(home, trusted_proxies=("10.0.0.0/8",), client_cert_header=NGINX_HEADER,
                 auth_throttle_free_failures=100) as live:
        yield live


def post(url: str, body: bytes, headers: dict[str, str] | None = None) -> Reply:
    response = httpx.post(url, content=body, timeout=30,
                          headers={"content-type": SoapVersion.SOAP12.content_type, **(headers or {})})
    return Reply(response.status_code, response.headers.get("content-type", ""), parse(response.content))


def _wrong_password(live: LiveServer, user: str, xff: str) -> Reply:
    body = rst_envelope(user=user, password="wrong", applies_to=DEMO_RP_ENDPOINT, digest=True)
    return post(live.sts_url, body, headers={"x-forwarded-for": xff})


def _address_failures(home: Path) -> dict[str, int]:
    stores = open_stores(load_settings(home))
    try:
        with stores.engine.connect() as conn:
            rows = conn.execute(select(auth_failures.c.key, auth_failures.c.failures)
                                .where(auth_failures.c.scope == "address"))
            return {key: failures for key, failures in rows}
    finally:
        stores.close()


def _audited_remotes(home: Path) -> list[str]:
    stores = open_stores(load_settings(home))
    try:
        return [entry.detail.get("remote") for entry in stores.recent_audit(200) if entry.event == "auth-failed"]
    finally:
        stores.close()


# --- the client address ------------------------------------------------------------------------------------------


def test_a_trusted_proxy_names_the_client_to_the_throttle_and_the_audit(behind_nginx: LiveServer) -> None:
    reply = _wrong_password(behind_nginx, "xff-user-1", f"192.0.2.1, {CLIENT_IP}")  # the first is the client's lie
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")
    assert CLIENT_IP in _address_failures(behind_nginx.home)
    assert "192.0.2.1" not in _address_failures(behind_nginx.home)
    assert CLIENT_IP in _audited_remotes(behind_nginx.home)


def test_an_untrusted_peers_forwarded_for_is_ignored(untrusted: LiveServer) -> None:
    before = _address_failures(untrusted.home).get("127.0.0.1", 0)
    reply = _wrong_password(untrusted, "xff-user-2", "198.51.100.77")
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")
    failures = _address_failures(untrusted.home)
    assert "198.51.100.77" not in failures
    assert failures["127.0.0.1"] == before + 1


def test_a_malformed_forwarded_for_is_no_error_and_leaves_the_peer(behind_nginx: LiveServer) -> None:
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT, digest=True)
    reply = post(behind_nginx.sts_url, body, headers={"x-forwarded-for": "not-an-address"})
    assert reply.status == 200, reply.fault_reason
    _wrong_password(behind_nginx, "xff-user-3", "not-an-address")
    assert "not-an-address" not in _address_failures(behind_nginx.home)


def test_the_request_log_names_the_forwarded_client(behind_nginx: LiveServer,
                                                    caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.INFO, logger="sts.request"):
        httpx.get(f"{behind_nginx.base_url}/healthz", headers={"x-forwarded-for": CLIENT_IP}, timeout=30)
    lines = [record for record in caplog.records if record.name == "sts.request"]
    assert lines and getattr(lines[-1], "request")["remote"] == CLIENT_IP


def test_the_consoles_sign_in_throttle_counts_the_forwarded_client(behind_nginx: LiveServer) -> None:
    response = httpx.get(f"{behind_nginx.base_url}/console/api/status", auth=("console-nobody", "wrong"),
                         headers={"x-forwarded-for": "198.51.100.33"}, timeout=30)
    assert response.status_code == 401
    assert "198.51.100.33" in _address_failures(behind_nginx.home)


def test_console_sign_ins_are_audited_with_the_forwarded_client(behind_nginx: LiveServer) -> None:
    forwarded = {"x-forwarded-for": "198.51.100.44"}
    with httpx.Client(base_url=behind_nginx.base_url, headers=forwarded, timeout=30) as browser:
        page = browser.get("/console/login")
        csrf = re.search(r'name="csrf" value="([^"]+)"', page.text)
        assert csrf is not None
        refused = browser.post("/console/login", data={"csrf": csrf.group(1), "name": DEMO_USER, "password": "no"})
    assert refused.status_code == 401
    stores = open_stores(load_settings(behind_nginx.home))
    try:
        failed = [entry for entry in stores.recent_audit(50) if entry.event == "console.login-failed"]
    finally:
        stores.close()
    assert failed and failed[0].detail["remote"] == "198.51.100.44"


# --- "loopback" is never forwarded ------------------------------------------------------------------------------


@pytest.mark.parametrize("server", ["behind_nginx", "untrusted"])
def test_clear_text_passwords_on_a_loopback_bind_are_not_for_forwarded_requests(server: str,
                                                                               request: pytest.FixtureRequest) -> None:
    live: LiveServer = request.getfixturevalue(server)
    body = rst_envelope(user=DEMO_USER, password=DEMO_PASSWORD, applies_to=DEMO_RP_ENDPOINT)
    assert post(live.sts_url, body).status == 200  # straight from loopback: allowed on a loopback bind
    forwarded = post(live.sts_url, body, headers={"x-forwarded-for": "127.0.0.1"})
    assert forwarded.fault_reason == "A clear-text password requires a secure transport"


@pytest.mark.parametrize("server", ["behind_nginx", "untrusted"])
def test_metrics_are_not_opened_by_a_forwarded_loopback_address(server: str, request: pytest.FixtureRequest) -> None:
    live: LiveServer = request.getfixturevalue(server)
    assert httpx.get(f"{live.base_url}/metrics", timeout=30).status_code == 200
    forwarded = httpx.get(f"{live.base_url}/metrics", headers={"x-forwarded-for": "127.0.0.1"}, timeout=30)
    assert forwarded.status_code == 403


# --- the client certificate from the proxy's header -------------------------------------------------------------


def _issue_by_certificate(live: LiveServer, headers: dict[str, str]) -> Reply:
    version = TrustVersion.WST13
    body = build_envelope(SoapVersion.SOAP12, render_rst(version, applies_to=DEMO_RP_ENDPOINT),
                          render_request_headers(RequestType.ISSUE.request_action(version)))
    return post(live.base_url + TRANSPORT, body, headers=headers)


def _escaped(cert: x509.Certificate) -> str:
    return quote(cert.public_bytes(Encoding.PEM).decode(), safe="")


def _xfcc(cert: x509.Certificate) -> str:
    der = cert.public_bytes(Encoding.DER)
    return f'Hash={hashlib.sha256(der).hexdigest()};Cert="{_escaped(cert)}";Subject="CN={CLIENT}"'


def test_nginx_header_from_a_trusted_proxy_authenticates_a_registered_client(
        behind_nginx: LiveServer, identities: dict[str, x509.Certificate]) -> None:
    reply = _issue_by_certificate(behind_nginx, {NGINX_HEADER: _escaped(identities[CLIENT])})
    assert reply.status == 200, reply.fault_reason
    assert reply.token() is not None


def test_envoy_xfcc_from_a_trusted_proxy_authenticates_a_registered_client(
        behind_envoy: LiveServer, identities: dict[str, x509.Certificate]) -> None:
    earlier_hop = f'By=spiffe://mesh/edge;Cert="{_escaped(identities["proxied-stranger"])}"'
    reply = _issue_by_certificate(behind_envoy, {"x-forwarded-client-cert": f"{earlier_hop},{_xfcc(identities[CLIENT])}"})
    assert reply.status == 200, reply.fault_reason
    # The element the trusted proxy appended (the last) decides, not an earlier hop's.
    stranger_last = f'{_xfcc(identities[CLIENT])},{earlier_hop}'
    assert _issue_by_certificate(behind_envoy, {"x-forwarded-client-cert": stranger_last}).fault_code == (
        ns.WST13, "FailedAuthentication")


@pytest.mark.parametrize("server,header,value", [
    ("behind_nginx", NGINX_HEADER, "escaped"), ("behind_envoy", "x-forwarded-client-cert", "xfcc"),
])
def test_an_unregistered_certificate_in_the_header_fails(server: str, header: str, value: str,
                                                         identities: dict[str, x509.Certificate],
                                                         request: pytest.FixtureRequest) -> None:
    live: LiveServer = request.getfixturevalue(server)
    stranger = identities["proxied-stranger"]
    encoded = _escaped(stranger) if value == "escaped" else _xfcc(stranger)
    reply = _issue_by_certificate(live, {header: encoded})
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")


def test_the_header_from_an_untrusted_peer_is_ignored(untrusted: LiveServer,
                                                      identities: dict[str, x509.Certificate],
                                                      caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="sts.web.proxies"):
        reply = _issue_by_certificate(untrusted, {NGINX_HEADER: _escaped(identities[CLIENT])})
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")
    assert any("ignored" in record.getMessage() for record in caplog.records)


@pytest.mark.parametrize("server,header,garbage", [
    ("behind_nginx", NGINX_HEADER, "-----BEGIN%20CERTIFICATE-----%0Anope%0A-----END%20CERTIFICATE-----"),
    ("behind_nginx", NGINX_HEADER, "%FF%FE"),
    ("behind_envoy", "x-forwarded-client-cert", 'Cert="unterminated'),
    ("behind_envoy", "x-forwarded-client-cert", "By=spiffe://mesh/only-a-by"),
])
def test_a_malformed_header_is_a_clear_fault(server: str, header: str, garbage: str,
                                             request: pytest.FixtureRequest,
                                             caplog: pytest.LogCaptureFixture) -> None:
    live: LiveServer = request.getfixturevalue(server)
    with caplog.at_level(logging.WARNING, logger="sts.web.proxies"):
        reply = _issue_by_certificate(live, {header: garbage})
    assert reply.status in (400, 500)
    assert reply.fault_code == (ns.WST13, "FailedAuthentication")
    assert reply.fault_reason == "Authentication failed"
    assert any("malformed" in record.getMessage() for record in caplog.records)

