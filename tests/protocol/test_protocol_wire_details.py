"""Issue 13 item 5, the parser and SOAP halves: Claims Dialect and Optional are checked, UseKey may refer to a
token of the request, and SOAP 1.2 faults get the HTTP status the SOAP 1.2 HTTP binding gives them."""

from __future__ import annotations

import pytest
from lxml import etree

from sts import ns
from sts.errors import (
    BadRequest,
    FailedCheck,
    InvalidRequest,
    MustUnderstand,
    ReplayedMessage,
    RequestFailed,
    StsError,
    UnsupportedClaimsDialect,
    VersionMismatch,
)
from sts.protocol.soap import fault_http_status, render_fault
from sts.protocol.wstrust.parse import parse_rst
from sts.protocol.xmlsafe import parse
from sts.uris import SoapVersion


def _rst(body: str) -> etree._Element:
    return parse(
        f"<wst:RequestSecurityToken xmlns:wst='{ns.WST13}' xmlns:wsse='{ns.WSSE}'>"
        f"<wst:RequestType>{ns.WST13}/Issue</wst:RequestType>{body}</wst:RequestSecurityToken>".encode()
    )


def _claims(dialect: str | None, optional: str | None = None) -> str:
    dialect_attr = f" Dialect='{dialect}'" if dialect is not None else ""
    optional_attr = f" Optional='{optional}'" if optional is not None else ""
    return (f"<wst:Claims{dialect_attr} xmlns:i='{ns.IDENTITY}'>"
            f"<i:ClaimType Uri='urn:c:a'{optional_attr}/></wst:Claims>")


@pytest.mark.parametrize("dialect", [ns.IDENTITY, ns.AUTH, f"{ns.AUTH}/authclaims", ns.WSO2_CLAIMS,
                                     f" {ns.IDENTITY} ", None])
def test_the_dialects_we_read_are_accepted(dialect: str | None) -> None:
    assert [c.uri for c in parse_rst(_rst(_claims(dialect))).claims] == ["urn:c:a"]


@pytest.mark.parametrize("dialect", ["urn:example:claims", "http://schemas.xmlsoap.org/ws/2005/05/identity/"])
def test_an_unknown_dialect_is_an_invalid_request_naming_it(dialect: str) -> None:
    with pytest.raises(UnsupportedClaimsDialect) as raised:
        parse_rst(_rst(_claims(dialect)))
    assert raised.value.code == "InvalidRequest"
    assert raised.value.public_reason == f"The claims dialect is not supported: {dialect}"


@pytest.mark.parametrize(("value", "optional"), [("true", True), ("1", True), ("false", False), ("0", False),
                                                 (" True ", True), (None, False)])
def test_optional_is_an_xs_boolean(value: str | None, optional: bool) -> None:
    (claim,) = parse_rst(_rst(_claims(ns.IDENTITY, value))).claims
    assert claim.optional is optional


@pytest.mark.parametrize("value", ["yes", "", "maybe", "2"])
def test_another_optional_value_is_refused_naming_it(value: str) -> None:
    with pytest.raises(InvalidRequest) as raised:
        parse_rst(_rst(_claims(ns.IDENTITY, value)))
    assert raised.value.public_reason == f"The request was invalid or malformed: ClaimType Optional={value}"


def test_use_key_as_a_reference_to_a_token_of_the_request() -> None:
    body = ("<wst:UseKey><wsse:SecurityTokenReference><wsse:Reference URI='#X509-1f2e'"
            " ValueType='http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0#X509v3'/>"
            "</wsse:SecurityTokenReference></wst:UseKey>")
    use_key = parse_rst(_rst(body)).use_key
    assert use_key is not None
    assert (use_key.token_reference, use_key.certificate_der, use_key.rsa_modulus) == ("X509-1f2e", None, None)


@pytest.mark.parametrize("inner", [
    "<wsse:KeyIdentifier ValueType='urn:x'>AAAA</wsse:KeyIdentifier>",
    "<wsse:Reference URI='https://elsewhere.example/token'/>",
    "<wsse:Reference URI='#'/>",
])
def test_other_use_key_references_are_refused_saying_so(inner: str) -> None:
    body = f"<wst:UseKey><wsse:SecurityTokenReference>{inner}</wsse:SecurityTokenReference></wst:UseKey>"
    with pytest.raises(BadRequest) as raised:
        parse_rst(_rst(body))
    assert 'only Reference URI="#Id" is supported' in raised.value.public_reason


@pytest.mark.parametrize(("error", "soap11", "soap12"), [
    (MustUnderstand(), 500, 500),      # SOAP 1.2 Part 2 §7.5.2.2: only env:Sender is 400
    (VersionMismatch(), 500, 500),
    (InvalidRequest(), 500, 400),      # wst:* faults of the requester are env:Sender
    (FailedCheck(), 500, 400),
    (RequestFailed(), 500, 500),       # env:Receiver
])
def test_fault_http_status(error: StsError, soap11: int, soap12: int) -> None:
    assert fault_http_status(error, SoapVersion.SOAP11) == soap11
    assert fault_http_status(error, SoapVersion.SOAP12) == soap12


def test_a_replayed_nonce_says_so_and_keeps_its_code() -> None:
    fault = render_fault(ReplayedMessage("x"), SoapVersion.SOAP12, ns.WST13)
    assert fault.findtext(f".//{{{ns.SOAP12}}}Text") == "The message was already received"
    assert fault.findall(f".//{{{ns.SOAP12}}}Value")[1].text.endswith(":MessageExpired")
