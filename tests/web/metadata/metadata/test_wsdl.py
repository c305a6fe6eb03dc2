"""The WSDL: well-formed for our own parser, and loadable by zeep from the STS alone (no other host)."""

from __future__ import annotations

import urllib.parse

import pytest
import requests
import zeep
from lxml import etree
from zeep.transports import Transport

from sts import ns
from sts.protocol import xmlsafe
from sts.web.metadata.wsdl import TNS, build_wsdl, render_wsdl

WST = f"{{{ns.WST13}}}"


class LoopbackOnlySession(requests.Session):
    """A requests session that refuses every host but the loopback test server: proves zeep stays offline."""

    def request(self, method: str | bytes, url: str | bytes, *args: object, **kwargs: object) -> requests.Response:
        host = urllib.parse.urlsplit(url if isinstance(url, str) else url.decode()).hostname
        if host not in ("127.0.0.1", "localhost"):
            raise AssertionError(f"zeep tried to reach {url!r}")
        return super().request(method, url, *args, **kwargs)  # type: ignore[arg-type]


@pytest.fixture(scope="module")
def client(metadata_base: str) -> zeep.Client:
    transport = Transport(session=LoopbackOnlySession(), cache=None)
    return zeep.Client(f"{metadata_base}/services/sts?wsdl", transport=transport)


def test_wsdl_parses_with_the_hardened_parser() -> None:
    root = xmlsafe.parse(render_wsdl("https://sts.example.org"))
    assert root.tag == ns.qn(ns.WSDL, "definitions")
    assert root.get("targetNamespace") == TNS


def _policy_assertions(base: str) -> set[str]:
    root = build_wsdl(base)
    policy = root.find(f"{{{ns.WSP12}}}Policy")
    assert policy is not None and policy.get(ns.qn(ns.WSU, "Id")) == "STS13_policy"
    return {etree.QName(e).localname for e in policy.iter(f"{{{ns.SP12}}}*")}


def test_https_policy_demands_a_signed_username_token_over_tls() -> None:
    assertions = _policy_assertions("https://sts.example.org")
    assert {"TransportBinding", "HttpsToken", "SignedSupportingTokens", "UsernameToken"} <= assertions
    assert {"WssUsernameToken10", "Wss11", "Trust13"} <= assertions


def test_http_policy_does_not_claim_transport_security() -> None:
    assertions = _policy_assertions("http://localhost:8080")
    assert "TransportBinding" not in assertions and "SignedSupportingTokens" not in assertions
    assert {"SupportingTokens", "UsernameToken", "WssUsernameToken10"} <= assertions


def test_bindings_reference_the_policies_and_ports_point_at_the_sts() -> None:
    root = build_wsdl("https://sts.example.org/")
    ids = {p.get(ns.qn(ns.WSU, "Id")) for p in root.iterfind(f"{{{ns.WSP12}}}Policy")}
    bindings = root.findall(f"{{{ns.WSDL}}}binding")
    assert len(bindings) == 4
    for binding in bindings:
        ref = binding.find(f"{{{ns.WSP12}}}PolicyReference")
        assert ref is not None and ref.get("URI", "").lstrip("#") in ids
    addresses = {a.get("location") for a in root.iter(f"{{{ns.WSDL_SOAP11}}}address", f"{{{ns.WSDL_SOAP12}}}address")}
    assert addresses == {"https://sts.example.org/services/sts"}


def test_zeep_loads_everything_from_the_sts(client: zeep.Client, metadata_server: object) -> None:
    requested = metadata_server.requested  # type: ignore[attr-defined]
    assert any("?wsdl" in path for path in requested)
    assert any("xsd=ws-trust-1.3.xsd" in path for path in requested)
    service = client.wsdl.services["SecurityTokenService"]
    assert set(service.ports) == {"STS13_Soap12Port", "STS13_Soap11Port", "STS2005_Soap12Port", "STS2005_Soap11Port"}
    for port in service.ports.values():
        assert set(port.binding._operations) == {"Issue", "Renew", "Cancel", "Validate"}


def test_zeep_operation_actions(client: zeep.Client) -> None:
    operations = client.service._binding._operations
    assert operations["Issue"].soapaction == f"{ns.WST13}/RST/Issue"
    assert operations["Issue"].output.body.qname == etree.QName(ns.WST13, "RequestSecurityTokenResponseCollection")
    assert operations["Renew"].output.body.qname == etree.QName(ns.WST13, "RequestSecurityTokenResponse")


def _rst_children() -> list[etree._Element]:
    request_type = etree.Element(WST + "RequestType")
    request_type.text = f"{ns.WST13}/Issue"
    token_type = etree.Element(WST + "TokenType")
    token_type.text = "urn:oasis:names:tc:SAML:2.0:assertion"
    return [request_type, token_type]


def test_zeep_builds_an_issue_message(client: zeep.Client) -> None:
    # The RST content model is xs:any: zeep exposes it as `_value_1`, a list of lxml elements (or AnyObjects).
    envelope = client.create_message(client.service, "Issue", _value_1=_rst_children(), Context="urn:ctx:1")
    assert envelope.tag == ns.qn(ns.SOAP12, "Envelope")
    rst = envelope.find(f".//{WST}RequestSecurityToken")
    assert rst is not None and rst.get("Context") == "urn:ctx:1"
    assert [etree.QName(c).localname for c in rst] == ["RequestType", "TokenType"]
    # wsaw:UsingAddressing in the policy makes zeep add WS-Addressing headers with the right action.
    action = envelope.find(f".//{{{ns.WSA}}}Action")
    assert action is not None and action.text == f"{ns.WST13}/RST/Issue"


def test_zeep_builds_a_soap11_2005_message(client: zeep.Client) -> None:
    service = client.bind("SecurityTokenService", "STS2005_Soap11Port")
    request_type = etree.Element(ns.qn(ns.WST2005, "RequestType"))
    request_type.text = f"{ns.WST2005}/Issue"
    envelope = client.create_message(service, "Issue", _value_1=[request_type])
    assert envelope.tag == ns.qn(ns.SOAP11, "Envelope")
    assert envelope.find(f".//{{{ns.WST2005}}}RequestSecurityToken/{{{ns.WST2005}}}RequestType") is not None
