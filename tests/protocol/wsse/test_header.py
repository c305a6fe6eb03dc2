"""sts.protocol.wsse.header: one pass over the Security header reads what ``find``/``findtext`` per element read.

The first of each UsernameToken child counts, comments are skipped, an empty element
reads as empty text, and every refusal keeps its reason."""

from __future__ import annotations

from datetime import datetime, timezone

import pytest

from sts import ns
from sts.errors import SecurityHeaderError, UnsupportedSecurityToken
from sts.protocol.soap import parse_envelope
from sts.protocol.wsse.header import EMPTY, SecurityHeader, parse_security_header
from sts.protocol.xmlsafe import parse
from sts.uris import PASSWORD_DIGEST

T1, T2 = "2026-11-28T12:00:00Z", "2026-11-28T12:05:00.5Z"


def _header(security: str, *, extra_headers: str = "") -> SecurityHeader:
    envelope = (f"<s:Envelope xmlns:s='{ns.SOAP12}' xmlns:wsse='{ns.WSSE}' xmlns:wsu='{ns.WSU}'><s:Header>"
                f"{extra_headers}<wsse:Security>{security}</wsse:Security></s:Header><s:Body><x xmlns='urn:x'/>"
                f"</s:Body></s:Envelope>")
    return parse_security_header(parse_envelope(parse(envelope.encode())))


def test_no_security_header_is_empty() -> None:
    envelope = f"<s:Envelope xmlns:s='{ns.SOAP12}'><s:Body><x xmlns='urn:x'/></s:Body></s:Envelope>"
    assert parse_security_header(parse_envelope(parse(envelope.encode()))) is EMPTY


def test_timestamp_and_token_between_comments() -> None:
    header = _header(
        f"<!--c--><wsu:Timestamp><!--c--><wsu:Created>{T1}</wsu:Created><!--c--><wsu:Expires>{T2}</wsu:Expires>"
        f"</wsu:Timestamp><!--c--><wsse:UsernameToken><!--c--><wsse:Username> bob </wsse:Username>"
        f"<wsse:Password Type=' {PASSWORD_DIGEST} '>pw</wsse:Password><wsse:Nonce>AAEC</wsse:Nonce>"
        f"<wsu:Created> {T1} </wsu:Created></wsse:UsernameToken>")
    assert header.timestamp is not None and header.username_token is not None
    assert header.timestamp.created == datetime(2026, 11, 28, 12, tzinfo=timezone.utc)
    assert header.timestamp.expires == datetime(2026, 11, 28, 12, 5, 0, 500000, tzinfo=timezone.utc)
    token = header.username_token
    assert (token.username, token.password, token.digest, token.nonce, token.created) == (
        "bob", "pw", True, b"\x00\x01\x02", T1)
    assert token.created_at == header.timestamp.created


def test_the_first_of_each_child_counts() -> None:
    header = _header(
        f"<wsu:Timestamp><wsu:Expires>{T2}</wsu:Expires><wsu:Expires>bad</wsu:Expires></wsu:Timestamp>"
        "<wsse:UsernameToken><wsse:Username>bob</wsse:Username><wsse:Username>eve</wsse:Username>"
        "<wsse:Password>one</wsse:Password><wsse:Password Type='urn:other'>two</wsse:Password>"
        "</wsse:UsernameToken>")
    assert header.timestamp is not None and header.timestamp.created is None and header.timestamp.expires is not None
    assert header.username_token is not None
    assert (header.username_token.username, header.username_token.password) == ("bob", "one")


def test_children_of_other_namespaces_or_depths_are_not_read() -> None:
    header = _header(
        f"<wsse:UsernameToken><wsse:Username>bob</wsse:Username><x:Password xmlns:x='urn:x'>no</x:Password>"
        f"<x:Wrap xmlns:x='urn:x'><wsse:Password>no</wsse:Password><wsu:Created>{T1}</wsu:Created></x:Wrap>"
        "</wsse:UsernameToken>")
    token = header.username_token
    assert token is not None and token.password is None and token.created is None and token.nonce is None


def test_an_empty_password_reads_as_empty_text() -> None:
    token = _header("<wsse:UsernameToken><wsse:Username>bob</wsse:Username><wsse:Password/></wsse:UsernameToken>"
                    ).username_token
    assert token is not None and token.password == "" and not token.digest


@pytest.mark.parametrize("security,error,reason", [
    ("<wsse:UsernameToken/>", SecurityHeaderError, "UsernameToken without Username"),
    ("<wsse:UsernameToken><wsse:Username> </wsse:Username></wsse:UsernameToken>", SecurityHeaderError,
     "UsernameToken without Username"),
    ("<wsse:UsernameToken><wsse:Username>bob</wsse:Username><wsse:Password Type='urn:x'/></wsse:UsernameToken>",
     UnsupportedSecurityToken, "password type 'urn:x'"),
    # Nonce is read before Created: the first malformed one names the error.
    ("<wsse:UsernameToken><wsse:Username>bob</wsse:Username><wsu:Created>bad</wsu:Created>"
     "<wsse:Nonce>!</wsse:Nonce></wsse:UsernameToken>", SecurityHeaderError, "Nonce is not base64"),
    ("<wsse:UsernameToken><wsse:Username>bob</wsse:Username><wsu:Created/></wsse:UsernameToken>",
     SecurityHeaderError, "malformed time ''"),
    # Created is read before Expires.
    ("<wsu:Timestamp><wsu:Expires>late</wsu:Expires><wsu:Created>early</wsu:Created></wsu:Timestamp>",
     SecurityHeaderError, "malformed time 'early'"),
    ("<wsu:Timestamp/><wsu:Timestamp/>", SecurityHeaderError, "more than one Timestamp or UsernameToken"),
    ("<wsse:UsernameToken/><!--c--><wsse:UsernameToken/>", SecurityHeaderError,
     "more than one Timestamp or UsernameToken"),
])
def test_refusals_keep_their_reasons(security: str, error: type[Exception], reason: str) -> None:
    with pytest.raises(error) as raised:
        _header(security)
    assert str(raised.value) == reason


def test_two_security_headers_are_refused() -> None:
    with pytest.raises(SecurityHeaderError, match="more than one wsse:Security header"):
        _header("", extra_headers="<wsse:Security/>")
