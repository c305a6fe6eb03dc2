"""MEX: msal's own parser finds our endpoints; the WS-Transfer GetResponse has AD FS's shape."""

from __future__ import annotations

import msal.mex
import pytest
import requests
from lxml import etree

from sts import ns
from sts.protocol import xmlsafe
from interop.xsd import validator
from sts.web.metadata.mex import (
    TRANSFER_GET_RESPONSE,
    render_mex,
    render_mex_response,
    render_mex_wsdl,
    usernamemixed_url,
)
from sts.uris import TrustVersion

BASE = "https://sts.example.org/"


def _msal_endpoint(document: etree._Element) -> dict[str, str] | None:
    result: dict[str, str] | None = msal.mex.Mex(etree.tostring(document).decode()).get_wstrust_username_password_endpoint()
    return result


def test_msal_picks_the_13_usernamemixed_endpoint() -> None:
    assert _msal_endpoint(render_mex_wsdl(BASE)) == {
        "address": "https://sts.example.org/adfs/services/trust/13/usernamemixed",
        "action": msal.mex.Mex.ACTION_13,
    }


def test_msal_finds_the_2005_endpoint_alone() -> None:
    assert _msal_endpoint(render_mex_wsdl(BASE, (TrustVersion.WST2005,))) == {
        "address": "https://sts.example.org/adfs/services/trust/2005/usernamemixed",
        "action": msal.mex.Mex.ACTION_2005,
    }


def test_msal_ignores_plain_http() -> None:
    # msal keeps https addresses only; over http we also stop claiming a TransportBinding.
    assert _msal_endpoint(render_mex_wsdl("http://localhost:8080")) is None


def test_msal_fetches_mex_over_http(metadata_base: str) -> None:
    # The full path msal takes: GET the MEX URL, parse. Over plain http it finds no usable (https) endpoint.
    assert msal.mex.send_request(f"{metadata_base}/adfs/services/trust/mex", requests.Session()) is None


def test_mex_wsdl_ports() -> None:
    root = render_mex_wsdl(BASE)
    ports = root.findall(f"{{{ns.WSDL}}}service/{{{ns.WSDL}}}port")
    assert [p.find(f"{{{ns.WSDL_SOAP12}}}address").get("location") for p in ports] == [  # type: ignore[union-attr]
        usernamemixed_url(BASE, TrustVersion.WST13),
        usernamemixed_url(BASE, TrustVersion.WST2005),
    ]
    # Every binding is SOAP 1.2: msal dereferences soap12:binding without checking for None.
    for binding in root.iterfind(f"{{{ns.WSDL}}}binding"):
        assert binding.find(f"{{{ns.WSDL_SOAP12}}}binding") is not None


def test_mex_policies_are_schema_valid() -> None:
    for policy in render_mex_wsdl(BASE).iterfind(f"{{{ns.WSP12}}}Policy"):
        assert [str(e.reason) for e in validator().iter_errors(policy)] == []


def test_metadata_sections() -> None:
    metadata = render_mex(BASE)
    assert [str(e.reason) for e in validator().iter_errors(metadata)] == []
    sections = metadata.findall(f"{{{ns.MEX}}}MetadataSection")
    assert [s.get("Dialect") for s in sections] == [ns.WSDL, ns.XSD, ns.XSD]
    assert sections[0][0].tag == ns.qn(ns.WSDL, "definitions")
    locations = [s.findtext(f"{{{ns.MEX}}}Location") for s in sections[1:]]
    assert locations == [
        "https://sts.example.org/services/sts?xsd=ws-trust-1.3.xsd",
        "https://sts.example.org/services/sts?xsd=ws-trust-200502.xsd",
    ]


@pytest.mark.parametrize("soap_ns", [ns.SOAP11, ns.SOAP12])
def test_get_response_envelope(soap_ns: str) -> None:
    envelope = xmlsafe.parse(render_mex_response(BASE, soap_ns, "urn:uuid:d31db436-2217-4d0a-810a-99d606d005c2"))
    assert envelope.tag == ns.qn(soap_ns, "Envelope")
    header, body = envelope
    assert header.tag == ns.qn(soap_ns, "Header") and body.tag == ns.qn(soap_ns, "Body")
    action = header.find(f"{{{ns.WSA}}}Action")
    assert action is not None and action.text == TRANSFER_GET_RESPONSE
    assert action.get(ns.qn(soap_ns, "mustUnderstand")) == "1"
    assert header.findtext(f"{{{ns.WSA}}}RelatesTo") == "urn:uuid:d31db436-2217-4d0a-810a-99d606d005c2"
    assert body[0].tag == ns.qn(ns.MEX, "Metadata")
    assert [str(e.reason) for e in validator().iter_errors(envelope)] == []
    # msal could also read the WSDL out of the envelope's first section.
    wsdl = body[0][0][0]
    assert _msal_endpoint(wsdl) is not None


def test_get_response_without_relates_to() -> None:
    envelope = xmlsafe.parse(render_mex_response(BASE, ns.SOAP12, None))
    assert envelope.find(f".//{{{ns.WSA}}}RelatesTo") is None


def test_get_response_refuses_other_namespaces() -> None:
    with pytest.raises(ValueError):
        render_mex_response(BASE, ns.WSA, None)
