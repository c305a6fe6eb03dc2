"""Every optional RST element has a defined answer: honoured, or refused with wst:BadRequest naming it."""

from __future__ import annotations

import pytest
from lxml import etree

from sts import ns
from trust_client import post, rst_envelope

WST = ns.WST13


def _element(local: str, text: str | None = None, namespace: str = WST, **attrib: str) -> etree._Element:
    element = etree.Element(f"{{{namespace}}}{local}", **attrib)
    element.text = text
    return element


def _issue(live_sts, demo, *extra: etree._Element):
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], extra=extra)
    return post(live_sts.sts_url, body)


@pytest.mark.parametrize("element", [
    _element("SignatureAlgorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"),
    _element("EncryptionAlgorithm", "http://www.w3.org/2009/xmlenc11#aes256-gcm"),
    _element("KeyWrapAlgorithm", "http://www.w3.org/2001/04/xmlenc#rsa-oaep-mgf1p"),
    _element("CanonicalizationAlgorithm", "http://www.w3.org/2001/10/xml-exc-c14n#"),
    _element("SignWith", "http://www.w3.org/2000/09/xmldsig#hmac-sha1"),
    _element("EncryptWith", "http://www.w3.org/2009/xmlenc11#aes256-gcm"),
    _element("AuthenticationType", "urn:oasis:names:tc:SAML:2.0:ac:classes:PasswordProtectedTransport"),
    _element("Forwardable", "false"),
    _element("Delegatable", "false"),
    _element("AllowPostdating"),
    _element("Renewing", Allow="true", OK="false"),
    _element("KeySize", "256"),
], ids=lambda e: etree.QName(e).localname)
def test_honoured(live_sts, demo, element) -> None:
    reply = _issue(live_sts, demo, element)
    assert reply.status == 200, reply.fault_reason


@pytest.mark.parametrize("element", [
    _element("SignatureAlgorithm", "http://www.w3.org/2000/09/xmldsig#dsa-sha1"),
    _element("EncryptionAlgorithm", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc"),
    _element("KeyWrapAlgorithm", "http://www.w3.org/2001/04/xmlenc#rsa-1_5"),
    _element("CanonicalizationAlgorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
    _element("SignWith", "urn:unknown"),
    _element("EncryptWith", "urn:unknown"),
    _element("AuthenticationType", "urn:oasis:names:tc:SAML:2.0:ac:classes:Kerberos"),
    _element("Forwardable", "true"),
    _element("Delegatable", "true"),
    _element("DelegateTo"),
    _element("Participants"),
    _element("Encryption"),
    _element("ProofEncryption"),
], ids=lambda e: etree.QName(e).localname)
def test_refused_by_name(live_sts, demo, element) -> None:
    reply = _issue(live_sts, demo, element)
    assert reply.fault_code == (WST, "BadRequest")
    assert reply.fault_reason.endswith(etree.QName(element).localname)


def test_issuer_must_be_this_sts(live_sts, demo) -> None:
    issuer = _element("Issuer")
    etree.SubElement(issuer, f"{{{ns.WSA}}}Address").text = "https://elsewhere.example/sts"
    reply = _issue(live_sts, demo, issuer)
    assert reply.fault_code == (WST, "BadRequest") and reply.fault_reason.endswith("Issuer")
    ours = _element("Issuer")
    etree.SubElement(ours, f"{{{ns.WSA}}}Address").text = live_sts.sts_url
    assert _issue(live_sts, demo, ours).status == 200


def test_context_is_echoed(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], context="ctx-42")
    reply = post(live_sts.sts_url, body)
    assert reply.root.find(f".//{{{WST}}}RequestSecurityTokenResponse").get("Context") == "ctx-42"


def test_postdated_token_needs_allow_postdating(live_sts, demo) -> None:
    from datetime import timedelta

    from sts.xmltime import format_datetime, utcnow

    later = utcnow() + timedelta(hours=1)
    lifetime = (format_datetime(later), format_datetime(later + timedelta(minutes=10)))
    refused = post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"],
                                                  applies_to=demo["rp"], lifetime=lifetime))
    assert refused.fault_code == (WST, "InvalidTimeRange")
    accepted = post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"],
                                                   applies_to=demo["rp"], lifetime=lifetime,
                                                   extra=(_element("AllowPostdating"),)))
    assert accepted.status == 200
    assert accepted.findtext(".//trust:Lifetime/wsu:Created") == lifetime[0]
