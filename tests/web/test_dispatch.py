"""Strict SOAP dispatch (issue 12, item 2): the operation is what the endpoint, the action and the RST agree on.

Over real HTTP where the rule is HTTP's (content types, SOAPAction, the content type's action parameter); through
``TrustEndpoint.handle`` where it is the pipeline's (wsa:Action against the RST). Each refusal is followed by a
valid request that gets its token, and the tolerance real clients need is pinned beside the refusals.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import httpx
import pytest
from lxml import etree

from interop.xsd import validator
from live import LiveServer
from sts import ns
from sts.config import load_settings
from sts.model import RequestContext
from sts.runtime import Runtime, build_runtime
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.xmltime import utcnow
from trust_client import Reply, rst_envelope

ISSUE = RequestType.ISSUE.request_action(TrustVersion.WST13)
CANCEL = RequestType.CANCEL.request_action(TrustVersion.WST13)
ISSUE_2005 = RequestType.ISSUE.request_action(TrustVersion.WST2005)
WXF_GET = f"{ns.WXF}/Get"
SOAP11 = "text/xml; charset=utf-8"
SOAP12 = "application/soap+xml; charset=utf-8"
MISMATCH = "The request was invalid or malformed: "


def _envelope(demo: dict[str, str], soap: SoapVersion = SoapVersion.SOAP12,
              version: TrustVersion = TrustVersion.WST13, *, wsa_action: str | None = "default") -> bytes:
    body = bytes(rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], digest=True,
                              soap=soap, version=version))
    if wsa_action == "default":
        return body
    root = etree.fromstring(body)
    action = root.find(f".//{{{ns.WSA}}}Action")
    assert action is not None
    if wsa_action is None:
        action.getparent().remove(action)
    else:
        action.text = wsa_action
    return bytes(etree.tostring(root))


def _post(url: str, body: bytes, headers: Sequence[tuple[str, str]]) -> Reply:
    response = httpx.post(url, content=body, headers=list(headers), timeout=30)
    root = etree.fromstring(response.content) if response.content.startswith(b"<") else etree.Element("none")
    return Reply(response.status_code, response.headers.get("content-type", ""), root)


def _assert_token(reply: Reply) -> None:
    assert reply.status == 200, reply.fault_reason
    assert reply.token() is not None


def _assert_still_serves(url: str, demo: dict[str, str]) -> None:
    _assert_token(_post(url, _envelope(demo), [("content-type", SOAP12)]))


# --- HTTP: the content type against the envelope -----------------------------------------------------------------


def test_soap12_envelope_as_text_xml_is_a_version_mismatch_in_soap11(live_sts: LiveServer, demo: dict[str, str]) -> None:
    reply = _post(live_sts.sts_url, _envelope(demo), [("content-type", SOAP11), ("soapaction", f'"{ISSUE}"')])
    assert reply.status == 500
    assert reply.content_type.startswith("text/xml")
    assert reply.fault_code == (ns.SOAP11, "VersionMismatch")
    assert reply.fault_reason == ("The envelope namespace is not a supported SOAP version: a SOAP 1.2 envelope "
                                  "sent as text/xml")
    validator().validate(reply.root)
    assert _upgrade(reply) == [ns.SOAP12, ns.SOAP11]
    _assert_still_serves(live_sts.sts_url, demo)


def test_soap11_envelope_as_soap12_is_a_version_mismatch_in_soap12(live_sts: LiveServer, demo: dict[str, str]) -> None:
    reply = _post(live_sts.sts_url, _envelope(demo, SoapVersion.SOAP11), [("content-type", SOAP12)])
    assert reply.status == 500
    assert reply.content_type.startswith("application/soap+xml")
    assert reply.fault_code == (ns.SOAP12, "VersionMismatch")
    validator().validate(reply.root)
    assert _upgrade(reply) == [ns.SOAP12, ns.SOAP11]
    _assert_still_serves(live_sts.sts_url, demo)


def _upgrade(reply: Reply) -> list[str]:
    """The envelope namespaces a VersionMismatch's env:Upgrade header lists (SOAP 1.2 Part 1 §5.4.7)."""
    namespaces = []
    for supported in reply.root.iterfind(f".//{{{ns.SOAP12}}}Upgrade/{{{ns.SOAP12}}}SupportedEnvelope"):
        prefix, _, local = supported.get("qname", "").partition(":")
        assert local == "Envelope"
        namespaces.append(supported.nsmap[prefix])
    return namespaces


def test_an_unknown_envelope_namespace_is_a_version_mismatch(runtime: Runtime) -> None:
    reply = _handle(runtime, b"<e:Envelope xmlns:e='urn:soap:99'><e:Body/></e:Envelope>")
    assert reply.fault_code == (ns.SOAP12, "VersionMismatch")
    assert _upgrade(reply) == [ns.SOAP12, ns.SOAP11]


@pytest.mark.parametrize("content_type", ["application/xml", "text/plain", ""])
def test_unknown_content_types_are_415(live_sts: LiveServer, demo: dict[str, str], content_type: str) -> None:
    reply = _post(live_sts.sts_url, _envelope(demo), [("content-type", content_type)])
    assert reply.status == 415


# --- HTTP: the transport's action ---------------------------------------------------------------------------------


TOLERATED: dict[str, tuple[SoapVersion, TrustVersion, list[tuple[str, str]], str | None]] = {
    # what SOAP 1.1 clients (CXF, Metro, .NET) send
    "soap11-quoted-soapaction": (SoapVersion.SOAP11, TrustVersion.WST13,
                                 [("content-type", SOAP11), ("soapaction", f'"{ISSUE}"')], "default"),
    # an empty SOAPAction means "no action" (WS-Addressing: it may hide the action at the HTTP level)
    "soap11-empty-soapaction": (SoapVersion.SOAP11, TrustVersion.WST13,
                                [("content-type", SOAP11), ("soapaction", '""')], "default"),
    "soap11-soapaction-only": (SoapVersion.SOAP11, TrustVersion.WST13,
                               [("content-type", SOAP11), ("soapaction", f'"{ISSUE}"')], None),
    # msal and adal: SOAP 1.2 with a separate, unquoted SOAPAction header
    "soap12-with-soapaction-header": (SoapVersion.SOAP12, TrustVersion.WST13,
                                      [("content-type", SOAP12), ("soapaction", ISSUE)], "default"),
    "soap12-content-type-action": (SoapVersion.SOAP12, TrustVersion.WST13,
                                   [("content-type", f'{SOAP12}; action="{ISSUE}"')], "default"),
    "soap12-content-type-action-only": (SoapVersion.SOAP12, TrustVersion.WST13,
                                        [("content-type", f"{SOAP12}; action={ISSUE}")], None),
    # AD FS's WS-Trust 2005 action names
    "adfs-2005": (SoapVersion.SOAP12, TrustVersion.WST2005,
                  [("content-type", SOAP12), ("soapaction", ISSUE_2005)], "default"),
    # no action anywhere: the RequestType decides
    "no-action-at-all": (SoapVersion.SOAP12, TrustVersion.WST13, [("content-type", SOAP12)], None),
}


@pytest.mark.parametrize("name", list(TOLERATED))
def test_real_clients_actions_are_tolerated(live_sts: LiveServer, demo: dict[str, str], name: str) -> None:
    soap, version, headers, wsa_action = TOLERATED[name]
    _assert_token(_post(live_sts.sts_url, _envelope(demo, soap, version, wsa_action=wsa_action), headers))


CONTRADICTIONS: dict[str, tuple[SoapVersion, list[tuple[str, str]], str | None, tuple[str, str], tuple[str, str]]] = {
    "soapaction-cancel-vs-wsa-issue": (SoapVersion.SOAP11, [("content-type", SOAP11), ("soapaction", f'"{CANCEL}"')],
                                       "default", ("wsa:Action", ISSUE), ("SOAPAction", CANCEL)),
    "soapaction-cancel-vs-request-type": (SoapVersion.SOAP11,
                                          [("content-type", SOAP11), ("soapaction", f'"{CANCEL}"')], None,
                                          ("the action", CANCEL), ("the RequestType", f"{ns.WST13}/Issue")),
    "content-type-action-cancel": (SoapVersion.SOAP12, [("content-type", f'{SOAP12}; action="{CANCEL}"')],
                                   "default", ("wsa:Action", ISSUE), ("the content type's action", CANCEL)),
    "soapaction-vs-content-type-action": (SoapVersion.SOAP12, [("content-type", f'{SOAP12}; action="{CANCEL}"'),
                                                               ("soapaction", ISSUE)], None,
                                          ("SOAPAction", ISSUE), ("the content type's action", CANCEL)),
    "two-soapaction-headers": (SoapVersion.SOAP11, [("content-type", SOAP11), ("soapaction", f'"{ISSUE}"'),
                                                    ("soapaction", f'"{CANCEL}"')], None,
                               ("SOAPAction", ISSUE), ("SOAPAction", CANCEL)),
}


@pytest.mark.parametrize("name", list(CONTRADICTIONS))
def test_contradicting_actions_are_a_sender_fault_naming_both(live_sts: LiveServer, demo: dict[str, str], name: str) -> None:
    soap, headers, wsa_action, first, second = CONTRADICTIONS[name]
    reply = _post(live_sts.sts_url, _envelope(demo, soap, wsa_action=wsa_action), headers)
    assert reply.fault_code == (ns.WST13, "InvalidRequest"), reply.fault_reason
    assert reply.fault_reason == f"{MISMATCH}{first[0]} {first[1]} contradicts {second[0]} {second[1]}"
    assert reply.status == (500 if soap is SoapVersion.SOAP11 else 400)
    _assert_still_serves(live_sts.sts_url, demo)


@pytest.mark.parametrize("soap", list(SoapVersion), ids=["soap11", "soap12"])
def test_unknown_soapaction_is_action_not_supported(live_sts: LiveServer, demo: dict[str, str], soap: SoapVersion) -> None:
    headers = [("content-type", soap.content_type), ("soapaction", '"urn:attacker:action"')]
    reply = _post(live_sts.sts_url, _envelope(demo, soap), headers)
    assert reply.fault_code == (ns.WSA, "ActionNotSupported"), reply.fault_reason
    assert reply.fault_reason == "The [action] cannot be processed at the receiver: urn:attacker:action"
    validator().validate(reply.root)
    _assert_still_serves(live_sts.sts_url, demo)


def test_a_transfer_get_named_by_soapaction_alone_gets_metadata(live_sts: LiveServer) -> None:
    body = f"<s:Envelope xmlns:s='{ns.SOAP11}'><s:Body/></s:Envelope>".encode()
    reply = _post(live_sts.sts_url, body, [("content-type", SOAP11), ("soapaction", f'"{WXF_GET}"')])
    assert reply.status == 200
    assert reply.root.find(f".//{{{ns.WSDL}}}definitions") is not None


# --- the pipeline: wsa:Action against the RST ---------------------------------------------------------------------


@pytest.fixture(scope="module")
def runtime(sts_home: Path) -> Runtime:
    return build_runtime(load_settings(sts_home).with_bind("127.0.0.1", 8080, tls=False))


def _handle(runtime: Runtime, body: bytes, *, metadata: bool = False) -> Reply:
    ctx = RequestContext(remote="127.0.0.1", tls=False, loopback_bind=True, received_at=utcnow())
    handle = runtime.endpoint.handle_metadata if metadata else runtime.endpoint.handle
    response = handle(body, ctx)
    return Reply(response.status, response.content_type, etree.fromstring(response.body))


@pytest.mark.parametrize("action", ["urn:attacker:action", f"{ns.WST13}/RST/Steal", f"{ns.WST13}/RST/KET",
                                    f"{ns.WST13}/RSTR/Issue"])
def test_unknown_wsa_action(runtime: Runtime, demo: dict[str, str], action: str) -> None:
    reply = _handle(runtime, _envelope(demo, wsa_action=action))
    assert reply.status == 400  # a Sender fault: env:Sender with the Subcode wsa:ActionNotSupported
    assert reply.fault_code == (ns.WSA, "ActionNotSupported")
    assert reply.root.findtext(f".//{{{ns.SOAP12}}}Code/{{{ns.SOAP12}}}Value") == "s:Sender"
    assert reply.fault_reason == f"The [action] cannot be processed at the receiver: {action}"
    validator().validate(reply.root)
    _assert_token(_handle(runtime, _envelope(demo)))


def test_wsa_action_of_another_trust_version(runtime: Runtime, demo: dict[str, str]) -> None:
    reply = _handle(runtime, _envelope(demo, wsa_action=ISSUE_2005))
    assert reply.fault_code == (ns.WST13, "InvalidRequest")
    assert reply.fault_reason == f"{MISMATCH}the action {ISSUE_2005} contradicts the RequestType {ns.WST13}/Issue"
    _assert_token(_handle(runtime, _envelope(demo)))


def test_wsa_action_contradicting_the_request_type(runtime: Runtime, demo: dict[str, str]) -> None:
    reply = _handle(runtime, _envelope(demo, wsa_action=CANCEL))
    assert reply.fault_reason == f"{MISMATCH}the action {CANCEL} contradicts the RequestType {ns.WST13}/Issue"


def test_two_wsa_actions_that_disagree(runtime: Runtime, demo: dict[str, str]) -> None:
    root = etree.fromstring(_envelope(demo))
    action = root.find(f".//{{{ns.WSA}}}Action")
    assert action is not None
    second = etree.Element(f"{{{ns.WSA2004}}}Action")
    second.text = CANCEL
    action.addnext(second)
    reply = _handle(runtime, etree.tostring(root))
    assert reply.fault_reason == f"{MISMATCH}wsa:Action {ISSUE} contradicts wsa:Action {CANCEL}"


def test_empty_wsa_action(runtime: Runtime, demo: dict[str, str]) -> None:
    reply = _handle(runtime, _envelope(demo, wsa_action=""))
    assert reply.fault_code == (ns.WST13, "InvalidRequest")
    assert reply.fault_reason == f"{MISMATCH}wsa:Action is empty"


@pytest.mark.parametrize("namespace", [ns.WSA, ns.WSA2004])
def test_tolerated_wsa_actions(runtime: Runtime, demo: dict[str, str], namespace: str) -> None:
    root = etree.fromstring(_envelope(demo))
    action = root.find(f".//{{{ns.WSA}}}Action")
    assert action is not None
    action.tag = f"{{{namespace}}}Action"
    _assert_token(_handle(runtime, etree.tostring(root)))
    _assert_token(_handle(runtime, _envelope(demo, wsa_action=None)))


def test_mex_route_refuses_other_actions(runtime: Runtime) -> None:
    body = (f"<s:Envelope xmlns:s='{ns.SOAP12}' xmlns:a='{ns.WSA}'><s:Header><a:Action>{ISSUE}</a:Action>"
            f"</s:Header><s:Body/></s:Envelope>").encode()
    reply = _handle(runtime, body, metadata=True)
    assert reply.fault_code == (ns.WSA, "ActionNotSupported")
    get = body.replace(ISSUE.encode(), WXF_GET.encode())
    assert _handle(runtime, get, metadata=True).status == 200


# --- SOAP structure, pinned ---------------------------------------------------------------------------------------


def test_must_understand_on_an_unknown_header(runtime: Runtime, demo: dict[str, str]) -> None:
    body = _envelope(demo).replace(b"</s:Header>", "<x:T xmlns:x='urn:x' s:mustUnderstand='true'/>".encode()
                                   + b"</s:Header>")
    assert _handle(runtime, body).fault_code == (ns.SOAP12, "MustUnderstand")


def test_two_security_headers(runtime: Runtime, demo: dict[str, str]) -> None:
    root = etree.fromstring(_envelope(demo))
    security = root.find(f".//{{{ns.WSSE}}}Security")
    assert security is not None
    security.addnext(etree.fromstring(etree.tostring(security)))
    assert _handle(runtime, etree.tostring(root)).fault_code == (ns.WSSE, "InvalidSecurity")


def test_two_bodies(runtime: Runtime, demo: dict[str, str]) -> None:
    root = etree.fromstring(_envelope(demo))
    body = root.find(f"{{{ns.SOAP12}}}Body")
    assert body is not None
    body.addnext(etree.fromstring(etree.tostring(body)))
    assert _handle(runtime, etree.tostring(root)).fault_code == (ns.WST13, "InvalidRequest")
