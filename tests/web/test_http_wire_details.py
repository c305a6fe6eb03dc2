"""Issue 13 item 5 over real HTTP on loopback: what an independent probe found on the wire.

The Audience of a normalised AppliesTo match, the HTTP status of SOAP 1.2 MustUnderstand and VersionMismatch
faults, the WS-Trust 2005/02 batch action, the reasons of a replayed nonce and of an unknown claims dialect, and
UseKey given as a SecurityTokenReference to the token that signed the request.
"""

from __future__ import annotations

import base64
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from signing import make_client, zeep_sign
from sts import ns
from sts.config import load_settings
from sts.model import RelyingParty
from sts.protocol.addressing import render_request_headers
from sts.protocol.soap import build_envelope
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse
from sts.runtime import open_stores
from sts.uris import KeyType, RequestType, SoapVersion, TrustVersion
from trust_client import Reply, post, rst_envelope

PLAIN = "https://p5-plain.example/"
PREFIX = "https://p5-prefix.example/apps"
SIGNER = "p5-usekey-client"


@pytest.fixture(scope="module", autouse=True)
def parties(sts_home: Path) -> None:
    stores = open_stores(load_settings(sts_home))
    for endpoint, prefix in ((PLAIN, False), (PREFIX, True)):
        if stores.relying_parties.lookup(endpoint) is None:
            stores.relying_parties.add(RelyingParty(endpoint=endpoint, encrypt=False, match_prefix=prefix))


def _issue(live_sts, demo, applies_to: str, **options: object) -> Reply:
    return post(live_sts.sts_url, rst_envelope(user=demo["user"], password=demo["password"], applies_to=applies_to,
                                               digest=True, **options))


@pytest.mark.parametrize(("applies_to", "audience"), [
    ("HTTPS://P5-PLAIN.example", PLAIN),
    ("https://p5-plain.EXAMPLE:443", PLAIN),
    (f"{PREFIX}/one", f"{PREFIX}/one"),  # a --prefix party: the address that was asked for
])
def test_the_audience_and_applies_to_are_the_registered_identifier(live_sts, demo, applies_to, audience) -> None:
    reply = _issue(live_sts, demo, applies_to)
    assert reply.status == 200, reply.fault_reason
    assert reply.token().findtext(f".//{{{ns.SAML2}}}Audience") == audience
    assert reply.root.findtext(f".//{{{ns.WSP12}}}AppliesTo//{{{ns.WSA}}}Address") == audience


def test_must_understand_is_http_500_on_soap12_and_soap11(live_sts, demo) -> None:
    for soap, value in ((SoapVersion.SOAP12, "true"), (SoapVersion.SOAP11, "1")):
        root = parse(rst_envelope(user=demo["user"], password=demo["password"], applies_to=demo["rp"], soap=soap))
        header = root.find(f"{{{soap.value}}}Header")
        etree.SubElement(header, "{urn:unknown}Thing").set(f"{{{soap.value}}}mustUnderstand", value)
        reply = post(live_sts.sts_url, etree.tostring(root), soap)
        assert (reply.status, reply.fault_code) == (500, (soap.value, "MustUnderstand"))


def test_version_mismatch_is_500_and_a_sender_fault_400(live_sts, demo) -> None:
    mismatch = post(live_sts.sts_url, b"<e:Envelope xmlns:e='urn:not-soap'><e:Body/></e:Envelope>")
    assert (mismatch.status, mismatch.fault_code) == (500, (ns.SOAP12, "VersionMismatch"))
    sender = _issue(live_sts, demo, "https://p5-nobody.example/")
    assert (sender.status, sender.fault_code) == (400, (ns.WST13, "InvalidScope"))


@pytest.mark.parametrize(("version", "action"), [
    (TrustVersion.WST2005, "RSTR/BatchIssue"),       # 2005/02 defines no "Final" actions
    (TrustVersion.WST13, "RSTRC/BatchIssueFinal"),
])
def test_the_batch_answer_action(live_sts, demo, version: TrustVersion, action: str) -> None:
    collection = etree.Element(f"{{{version.value}}}RequestSecurityTokenCollection")
    for applies_to in (PLAIN, f"{PREFIX}/two"):
        collection.append(render_rst(version, applies_to=applies_to, request_type="BatchIssue"))
    headers = render_request_headers(version.uri("RST/BatchIssue"))
    headers.append(build_security_header(demo["user"], demo["password"], digest=True))
    reply = post(live_sts.sts_url, build_envelope(SoapVersion.SOAP12, collection, headers))
    assert reply.status == 200, reply.fault_reason
    assert reply.findtext("*/wsa:Action") == version.uri(action)


def test_a_replayed_nonce_says_it_was_already_received(live_sts, demo) -> None:
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=PLAIN, digest=True)
    assert post(live_sts.sts_url, body).status == 200
    replay = post(live_sts.sts_url, body)
    assert (replay.fault_code, replay.fault_reason) == ((ns.WSSE, "MessageExpired"),
                                                        "The message was already received")


def test_copies_of_one_request_sent_at_once_get_one_token(live_sts, demo) -> None:
    """The nonce joins the group commit of the requests answered together: copies that race the original (in its
    batch or a later one) are each refused as a replay, and only one token is handed out."""
    body = rst_envelope(user=demo["user"], password=demo["password"], applies_to=PLAIN, digest=True)
    with ThreadPoolExecutor(max_workers=8) as pool:
        replies = list(pool.map(lambda _: post(live_sts.sts_url, body), range(8)))
    assert sorted(reply.status for reply in replies) == [200] + [400] * 7  # a sender fault
    assert {(reply.fault_code, reply.fault_reason) for reply in replies if reply.status != 200} == {
        ((ns.WSSE, "MessageExpired"), "The message was already received")}


def test_an_unknown_claims_dialect_is_named(live_sts, demo) -> None:
    reply = _issue(live_sts, demo, PLAIN, claims=(("urn:c:a", False),), claims_dialect="urn:p5:dialect")
    assert (reply.fault_code, reply.fault_reason) == ((ns.WST13, "InvalidRequest"),
                                                      "The claims dialect is not supported: urn:p5:dialect")


def _signed_public_key_request(use_key: etree._Element, tmp_path: Path,
                               sts_home: Path) -> tuple[etree._Element, bytes]:
    """A PublicKey Issue signed by a freshly registered client (zeep's layout); and that client's DER."""
    key, cert, pem = make_client(SIGNER)
    stores = open_stores(load_settings(sts_home))
    if stores.clients.get(SIGNER) is not None:
        stores.clients.remove(SIGNER)
    stores.clients.add(SIGNER, pem, [])
    key_type = etree.Element(f"{{{ns.WST13}}}KeyType")
    key_type.text = KeyType.PUBLIC_KEY.value
    headers = render_request_headers(RequestType.ISSUE.request_action(TrustVersion.WST13))
    security = build_security_header("x", "y")  # a Timestamp only: the signature is the credential
    security.remove(security.find(f"{{{ns.WSSE}}}UsernameToken"))  # type: ignore[arg-type]
    headers.append(security)
    rst = render_rst(TrustVersion.WST13, applies_to=PLAIN, extra=(key_type, use_key))
    root = parse(build_envelope(SoapVersion.SOAP12, rst, headers))
    return zeep_sign(root, key, cert, tmp_path), cert.public_bytes(Encoding.DER)


def test_use_key_as_a_reference_to_the_signing_token(live_sts, sts_home, tmp_path: Path) -> None:
    """As WSS4J-based clients send it: the proof key is the certificate that signed the request."""
    use_key = etree.Element(f"{{{ns.WST13}}}UseKey")
    reference = etree.SubElement(etree.SubElement(use_key, f"{{{ns.WSSE}}}SecurityTokenReference",
                                                  nsmap={"wsse": ns.WSSE}), f"{{{ns.WSSE}}}Reference")
    reference.set("URI", "#X509-signing-token")
    signed, cert_der = _signed_public_key_request(use_key, tmp_path, sts_home)
    reply = post(live_sts.sts_url, etree.tostring(signed))
    assert reply.status == 200, reply.fault_reason
    confirmed = reply.token().findtext(f".//{{{ns.SAML2}}}SubjectConfirmationData//{{{ns.DS}}}X509Certificate")
    assert confirmed is not None and base64.b64decode(confirmed) == cert_der
