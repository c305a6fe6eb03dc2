"""SOAP structure and dispatch confusion: duplicated headers and Bodies, mustUnderstand, the content type against
the envelope's version, and the operation named three ways (wsa:Action, SOAPAction, the RST's RequestType)."""

from __future__ import annotations

import pytest
from lxml import etree

from attack_target import Target
from sts import ns
from sts.uris import RequestType, SoapVersion, TrustVersion

WST = ns.WST13
ISSUE = RequestType.ISSUE.request_action(TrustVersion.WST13)
CANCEL = RequestType.CANCEL.request_action(TrustVersion.WST13)
SOAP11_XML = "text/xml; charset=utf-8"
SOAP12_XML = "application/soap+xml; charset=utf-8"


def _tree(target: Target, soap: SoapVersion = SoapVersion.SOAP12) -> etree._Element:
    return etree.fromstring(target.envelope(soap))


def _header(root: etree._Element) -> etree._Element:
    header = root.find(f"{{{etree.QName(root).namespace}}}Header")
    assert header is not None
    return header


def _without_wsa_action(root: etree._Element) -> etree._Element:
    header = _header(root)
    action = header.find(f"{{{ns.WSA}}}Action")
    assert action is not None
    header.remove(action)
    return root


def test_two_security_headers(target: Target) -> None:
    root = _tree(target)
    header = _header(root)
    security = header.find(f"{{{ns.WSSE}}}Security")
    assert security is not None
    header.append(etree.fromstring(etree.tostring(security)))
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == (ns.WSSE, "InvalidSecurity"), reply.fault_reason


def test_two_security_headers_second_one_an_attackers(target: Target) -> None:
    """The second header names another user with a wrong password: neither is picked silently."""
    root = _tree(target)
    other = etree.fromstring(target.envelope(user="mallory", password="guess"))
    _header(root).append(_header(other).find(f"{{{ns.WSSE}}}Security"))
    assert target.post(etree.tostring(root)).fault_code == (ns.WSSE, "InvalidSecurity")


def test_two_bodies(target: Target) -> None:
    root = _tree(target)
    body = root.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    forged = etree.fromstring(etree.tostring(body))
    forged[0].find(f".//{{{ns.WSA}}}Address").text = "https://evil.example/"
    body.addnext(forged)
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason


def test_element_after_the_body(target: Target) -> None:
    root = _tree(target)
    etree.SubElement(root, "{urn:attack}Trailer").text = "x"
    assert target.post(etree.tostring(root)).fault_code == (WST, "InvalidRequest")


@pytest.mark.parametrize("soap", list(SoapVersion), ids=["soap11", "soap12"])
def test_must_understand_on_an_unknown_header(target: Target, soap: SoapVersion) -> None:
    root = _tree(target, soap)
    value = "1" if soap is SoapVersion.SOAP11 else "true"
    etree.SubElement(_header(root), "{urn:attack}Thing").set(f"{{{soap.value}}}mustUnderstand", value)
    reply = target.post(etree.tostring(root), soap)
    assert reply.fault_code == (soap.value, "MustUnderstand"), reply.fault_reason


def test_must_understand_zero_is_ignored(target: Target) -> None:
    """Tolerance: an optional unknown header is no reason to refuse."""
    root = _tree(target)
    etree.SubElement(_header(root), "{urn:attack}Thing").set(f"{{{ns.SOAP12}}}mustUnderstand", "false")
    assert target.post(etree.tostring(root)).status == 200


def test_soap12_envelope_sent_as_text_xml(target: Target) -> None:
    reply = target.send(target.envelope(SoapVersion.SOAP12), {"content-type": SOAP11_XML, "soapaction": f'"{ISSUE}"'})
    assert reply.status == 415 or (reply.fault_code or ("", ""))[1] == "VersionMismatch", \
        f"{reply.status} {reply.fault_code} {reply.fault_reason}"


def test_soap11_envelope_sent_as_soap12(target: Target) -> None:
    reply = target.send(target.envelope(SoapVersion.SOAP11), {"content-type": SOAP12_XML})
    assert reply.status == 415 or (reply.fault_code or ("", ""))[1] == "VersionMismatch", \
        f"{reply.status} {reply.fault_code} {reply.fault_reason}"


def test_soap11_with_a_matching_soapaction_works(target: Target) -> None:
    """Tolerance: what SOAP 1.1 clients (CXF, Metro, .NET) send."""
    reply = target.send(target.envelope(SoapVersion.SOAP11), {"content-type": SOAP11_XML, "soapaction": f'"{ISSUE}"'})
    assert reply.status == 200, reply.fault_reason


def test_issue_with_soapaction_naming_cancel(target: Target) -> None:
    reply = target.send(target.envelope(SoapVersion.SOAP11), {"content-type": SOAP11_XML, "soapaction": f'"{CANCEL}"'})
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason
    assert "Cancel" in (reply.fault_reason or "") and "Issue" in (reply.fault_reason or ""), reply.fault_reason


def test_issue_with_soapaction_naming_cancel_and_no_wsa_action(target: Target) -> None:
    root = _without_wsa_action(_tree(target, SoapVersion.SOAP11))
    reply = target.send(etree.tostring(root), {"content-type": SOAP11_XML, "soapaction": f'"{CANCEL}"'})
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason
    assert "Cancel" in (reply.fault_reason or "") and "Issue" in (reply.fault_reason or ""), reply.fault_reason


def test_issue_with_content_type_action_naming_cancel(target: Target) -> None:
    reply = target.send(target.envelope(), {"content-type": f'{SOAP12_XML}; action="{CANCEL}"'})
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason


def test_wsa_action_contradicting_the_request_type(target: Target) -> None:
    root = _tree(target)
    action = _header(root).find(f"{{{ns.WSA}}}Action")
    assert action is not None
    action.text = CANCEL
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == (WST, "InvalidRequest"), reply.fault_reason


@pytest.mark.parametrize("action", ["urn:attacker:action", "http://docs.oasis-open.org/ws-sx/ws-trust/200512/RST/Steal"])
def test_unknown_wsa_action(target: Target, action: str) -> None:
    root = _tree(target)
    element = _header(root).find(f"{{{ns.WSA}}}Action")
    assert element is not None
    element.text = action
    reply = target.post(etree.tostring(root))
    assert reply.fault_code == (ns.WSA, "ActionNotSupported"), f"{reply.fault_code} {reply.fault_reason}"


def test_unknown_soapaction(target: Target) -> None:
    root = _without_wsa_action(_tree(target, SoapVersion.SOAP11))
    reply = target.send(etree.tostring(root), {"content-type": SOAP11_XML, "soapaction": '"urn:attacker:action"'})
    assert reply.fault_code == (ns.WSA, "ActionNotSupported"), f"{reply.fault_code} {reply.fault_reason}"


def test_missing_wsa_action_is_tolerated(target: Target) -> None:
    """Tolerance: SOAP 1.2 without WS-Addressing, the RequestType alone names the operation."""
    reply = target.post(etree.tostring(_without_wsa_action(_tree(target))))
    assert reply.status == 200, reply.fault_reason
