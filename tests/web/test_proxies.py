"""Who the client is behind trusted proxies (sts.web.proxies) and the client-certificate header formats
(sts.web.tls.certificate_from_header): the decisions themselves, without HTTP (tests/web/test_proxies_live.py
drives them through a served STS)."""

from __future__ import annotations

import hashlib
import logging
from urllib.parse import quote

import pytest
from cryptography.hazmat.primitives.serialization import Encoding

from signing import make_client
from sts.web.proxies import TrustedProxies, origin_of
from sts.web.tls import MAX_CERT_HEADER, certificate_from_header

PROXIES = TrustedProxies(("127.0.0.1", "10.0.0.0/8", "2001:db8:1::/48"))


def _client(peer: str, *xff: str) -> str:
    return PROXIES.origin(peer, [(b"x-forwarded-for", value.encode()) for value in xff]).client


# --- X-Forwarded-For ---------------------------------------------------------------------------------------------


def test_a_trusted_peer_forwards_the_client_address() -> None:
    assert _client("127.0.0.1", "203.0.113.9") == "203.0.113.9"


def test_an_untrusted_peer_is_the_client_whatever_it_forwards() -> None:
    assert _client("198.51.100.20", "203.0.113.9") == "198.51.100.20"


def test_the_walk_skips_trusted_proxies_from_the_right() -> None:
    # client -> proxy 10.1.2.3 -> proxy 127.0.0.1 (the peer)
    assert _client("127.0.0.1", "203.0.113.9, 10.1.2.3") == "203.0.113.9"


def test_a_spoofed_address_sent_through_the_proxy_is_not_believed() -> None:
    # The client sent "X-Forwarded-For: 192.0.2.1" itself; the proxy appended the address it saw.
    assert _client("127.0.0.1", "192.0.2.1, 203.0.113.9") == "203.0.113.9"
    assert _client("127.0.0.1", "192.0.2.1", "203.0.113.9") == "203.0.113.9"  # two header lines, in order


def test_every_hop_trusted_means_the_first_one_began_the_request() -> None:
    assert _client("127.0.0.1", "10.9.9.9, 10.1.2.3") == "10.9.9.9"


def test_addresses_with_ports_and_ipv6_are_read() -> None:
    assert _client("127.0.0.1", "203.0.113.9:51234") == "203.0.113.9"
    assert _client("127.0.0.1", "[2001:db8:2::7]:443") == "2001:db8:2::7"
    assert _client("127.0.0.1", "2001:db8:2::7, 2001:db8:1::5") == "2001:db8:2::7"


@pytest.mark.parametrize("value", ["unknown", "203.0.113.9, , 10.1.2.3", "evil.example", "203.0.113.9:port",
                                   "[2001:db8::1", "1.2.3.4.5", ",".join(["10.0.0.1"] * 40)])
def test_a_malformed_list_leaves_the_peer_as_the_client(value: str, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="sts.web.proxies"):
        assert _client("127.0.0.1", value) == "127.0.0.1"
    assert any("X-Forwarded-For" in record.getMessage() for record in caplog.records)


def test_a_malformed_hop_left_of_the_client_does_not_matter() -> None:
    # The walk stops at the first untrusted address: what the client wrote before it is never read.
    assert _client("127.0.0.1", "garbage, 203.0.113.9") == "203.0.113.9"


def test_any_forwarding_header_marks_the_request_forwarded() -> None:
    for name in (b"forwarded", b"x-forwarded-for", b"x-real-ip"):
        assert PROXIES.origin("198.51.100.20", [(name, b"for=127.0.0.1")]).forwarded
    assert not PROXIES.origin("127.0.0.1", [(b"host", b"sts.example")]).forwarded
    scope = {"type": "http", "client": ("127.0.0.1", 5000), "headers": [(b"x-real-ip", b"127.0.0.1")]}
    assert origin_of(scope).forwarded and origin_of(scope).client == "127.0.0.1"


def test_a_bad_trusted_proxies_entry_names_the_setting() -> None:
    with pytest.raises(ValueError, match="trusted_proxies: 'proxy.example'"):
        TrustedProxies(("proxy.example",))


# --- the client-certificate header -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def cert() -> tuple[bytes, str]:
    _key, certificate, pem = make_client("header-client")
    return certificate.public_bytes(Encoding.DER), pem.decode()


def test_nginx_escaped_pem(cert: tuple[bytes, str]) -> None:
    der, pem = cert
    assert certificate_from_header(quote(pem, safe=""), "escaped-pem") == der
    # nginx leaves "+", "/" and "=" as they are: unquote (not unquote_plus) keeps a "+" a "+".
    assert certificate_from_header(quote(pem, safe="+/="), "escaped-pem") == der


def test_xfcc_takes_the_element_the_nearest_proxy_appended(cert: tuple[bytes, str]) -> None:
    der, pem = cert
    _key, _other, other_pem = make_client("an-earlier-hop")
    ours = f'Hash={hashlib.sha256(der).hexdigest()};Cert="{quote(pem, safe="")}";Subject="CN=header-client,O=Example\\, Inc."'
    earlier = f'By=spiffe://mesh/a;Cert="{quote(other_pem.decode(), safe="")}"'
    assert certificate_from_header(ours, "xfcc") == der
    assert certificate_from_header(f"{earlier},{ours}", "xfcc") == der
    assert certificate_from_header(f"{earlier}, {ours}", "xfcc") == der


@pytest.mark.parametrize("value", [
    "", "%%%", "-----BEGIN CERTIFICATE-----\nAAAA\n-----END CERTIFICATE-----",
    "-----BEGIN CERTIFICATE-----\n!!!!\n-----END CERTIFICATE-----", "x" * (MAX_CERT_HEADER + 1),
])
def test_escaped_pem_refuses_what_is_not_one_certificate(value: str) -> None:
    with pytest.raises(ValueError):
        certificate_from_header(value, "escaped-pem")


def test_two_certificates_are_refused(cert: tuple[bytes, str]) -> None:
    _der, pem = cert
    with pytest.raises(ValueError, match="exactly one"):
        certificate_from_header(quote(pem + pem, safe=""), "escaped-pem")


def test_xfcc_refusals(cert: tuple[bytes, str]) -> None:
    der, pem = cert
    escaped = quote(pem, safe="")
    bad = {
        "no Cert in the last element": f'Cert="{escaped}",By=spiffe://mesh/b',
        "two Certs": f'Cert="{escaped}";Cert="{escaped}"',
        "a Hash of something else": f'Hash={"0" * 64};Cert="{escaped}"',
        "an unterminated quote": f'Cert="{escaped}',
        "stray text": f'Cert="{escaped}" junk',
        "a trailing separator": f'Cert="{escaped}";',
    }
    for why, value in bad.items():
        with pytest.raises(ValueError):
            certificate_from_header(value, "xfcc")
            pytest.fail(why)
    assert certificate_from_header(f'Cert="{escaped}"', "xfcc") == der


def test_the_header_is_read_only_from_a_trusted_peer(cert: tuple[bytes, str],
                                                    caplog: pytest.LogCaptureFixture) -> None:
    der, pem = cert
    proxies = TrustedProxies(("127.0.0.1",), cert_header="X-SSL-Client-Cert", cert_format="escaped-pem")
    headers = [(b"x-ssl-client-cert", quote(pem, safe="").encode())]
    scope = {"type": "http", "scheme": "http", "headers": headers}
    assert proxies.origin("127.0.0.1", headers).certificate(scope) == der
    with caplog.at_level(logging.DEBUG, logger="sts.web.proxies"):
        assert proxies.origin("198.51.100.20", headers).certificate(scope) is None
    assert any("ignored" in record.getMessage() for record in caplog.records)


def test_an_empty_header_from_the_proxy_is_no_certificate(cert: tuple[bytes, str]) -> None:
    proxies = TrustedProxies(("127.0.0.1",), cert_header="x-ssl-client-cert")
    assert proxies.origin("127.0.0.1", [(b"x-ssl-client-cert", b"")]).certificate({"scheme": "http"}) is None
