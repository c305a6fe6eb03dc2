"""The node-soap client peer (npm soap, WSSecurityCert / WSSecurity) against our live STS: each Issue passes, the
same client Validates and Cancels the token, and what it extracted is a token our verifier accepts."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key
from lxml import etree

from interop.matrix import _client_cell, case_name, parse_case
from interop.model import ClientCase, ClientOutcome, Status
from interop.peers.node_soap_client import PEER, RECORDING_PEER, NodeSoapClient, judge
from interop.target import USER_CLAIMS, Target, local_sts
from interop.xsd import xsd_problems
from sts.rp.verifier import TokenVerifier

_reason = PEER.unavailable()
if _reason is not None:
    pytest.skip(_reason, allow_module_level=True)

DS = "http://www.w3.org/2000/09/xmldsig#"
WSSE = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-secext-1.0.xsd"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
SAML_URIS = {"1.1": "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1",
             "2.0": "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with local_sts() as started:
        yield started


def case(profile: str, wstrust: str, soap: str, auth: str = "x509") -> ClientCase:
    return parse_case(case_name(profile, wstrust, soap, auth))


def assert_genuine(outcome: ClientOutcome, target: Target, profile: str, subject: str) -> None:
    """PASS with Validate and Cancel done, the Issue alone kept as the exchange, and a token our verifier
    accepts: about ``subject``, with the user's claims."""
    assert outcome.verdict.status is Status.PASS, outcome.verdict.detail
    assert "validated (status valid), cancelled" in outcome.verdict.detail
    assert [e.status for e in outcome.exchanges] == [200]
    assert b"RequestSecurityToken" in outcome.exchanges[0].request
    rp = target.rp(profile)
    assert rp is not None and outcome.token is not None
    assert outcome.token_type == SAML_URIS[rp.profile.saml]
    key = load_pem_private_key(rp.key_pem, None) if rp.key_pem else None
    verifier = TokenVerifier([x509.load_pem_x509_certificate(target.sts_cert_pem)],
                             rp_private_key=key, audience=rp.address)  # type: ignore[arg-type]
    verified = verifier.verify(outcome.token)
    assert verified.version == rp.profile.saml
    assert verified.subject == subject
    for uri, values in USER_CLAIMS.items():
        assert set(verified.claims.get(uri, ())) == set(values), uri


# Every SOAP x WS-Trust version, alternating the two relying-party profiles of the matrix.
X509_CASES = [("saml20", "1.3", "1.2"), ("saml11-plain", "2005", "1.2"), ("saml11-plain", "1.3", "1.1"),
              ("saml20", "2005", "1.1")]


@pytest.mark.parametrize(("profile", "wstrust", "soap"), X509_CASES)
def test_node_soap_signs_with_x509_and_the_token_is_about_the_registered_client(
        target: Target, profile: str, wstrust: str, soap: str) -> None:
    outcome = PEER.issue(target, case(profile, wstrust, soap))
    assert target.client_name is not None
    assert_genuine(outcome, target, profile, subject=target.client_name)


def test_node_soap_signs_in_its_own_layout(target: Target) -> None:
    """What makes this peer worth having: WSSecurityCert's defaults, not our signer's layout. Enveloped-signature
    before exclusive c14n on both references, ``Id`` attributes (not wsu:Id), the Signature after the Timestamp."""
    outcome = PEER.issue(target, case("saml20", "1.3", "1.2"))
    root = etree.fromstring(outcome.exchanges[0].request)
    security = root.find(f".//{{{WSSE}}}Security")
    assert security is not None
    names = [etree.QName(child).localname for child in security]
    assert names == ["BinarySecurityToken", "Timestamp", "Signature"]
    references = security.findall(f"{{{DS}}}Signature/{{{DS}}}SignedInfo/{{{DS}}}Reference")
    assert len(references) == 2
    for reference in references:
        transforms = [t.get("Algorithm") for t in reference.iterfind(f"{{{DS}}}Transforms/{{{DS}}}Transform")]
        assert transforms == [ENVELOPED, EXC_C14N]
    body = root.find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None and references[0].get("URI") == f"#{body.get('Id')}"


WSU = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-wssecurity-utility-1.0.xsd"


def test_what_make_record_keeps_is_schema_valid_and_the_default_layout_is_not(target: Target) -> None:
    """node-soap's default ``Id`` on wsu:Timestamp is outside the WSS utility schema (the replay checks every
    request against the XSDs): ``make record`` keeps the wsu:Id layout, the matrix runs the default one live."""
    recorded = RECORDING_PEER.issue(target, case("saml11-plain", "2005", "1.2"))
    assert_genuine(recorded, target, "saml11-plain", subject=str(target.client_name))
    request = recorded.exchanges[0].request
    assert xsd_problems(request) == []
    body = etree.fromstring(request).find("{http://www.w3.org/2003/05/soap-envelope}Body")
    assert body is not None and body.get(f"{{{WSU}}}Id") and body.get("Id") is None
    default = PEER.issue(target, case("saml11-plain", "2005", "1.2"))
    assert any("Timestamp: attribute 'Id' not allowed" in p for p in xsd_problems(default.exchanges[0].request))


@pytest.mark.parametrize(("profile", "wstrust", "soap", "auth"), [
    ("saml11-plain", "1.3", "1.1", "username-text"), ("saml20", "2005", "1.2", "username-text"),
    ("saml20", "1.3", "1.2", "username-digest"), ("saml11-plain", "2005", "1.1", "username-digest"),
])
def test_node_soap_username_token(target: Target, profile: str, wstrust: str, soap: str, auth: str) -> None:
    outcome = PEER.issue(target, case(profile, wstrust, soap, auth))
    assert_genuine(outcome, target, profile, subject=target.username)
    request = outcome.exchanges[0].request
    assert (b"#PasswordDigest" in request) is (auth == "username-digest")
    assert b"BinarySecurityToken" not in request


def test_the_matrix_cell_verifies_the_token(target: Target) -> None:
    verdict = _client_cell(PEER, target, case("saml20", "1.3", "1.1", "username-text"))
    assert verdict.status is Status.PASS and "token verified (2.0" in verdict.detail


def test_a_wrong_password_fails_with_the_fault_reason(target: Target) -> None:
    wrong = dataclasses.replace(target, password="not the password")
    outcome = PEER.issue(wrong, case("saml20", "1.3", "1.2", "username-text"))
    assert outcome.verdict.status is Status.FAIL
    assert "FailedAuthentication" in outcome.verdict.detail
    assert outcome.token is None and len(outcome.exchanges) == 1


def test_what_the_driver_cannot_send_is_not_applicable(target: Target) -> None:
    no_client = dataclasses.replace(target, client_key_pem=None)
    cases = [(target, parse_case("saml20-plain-wst1.3-soap1.2-x509-actas")),
             (target, parse_case("saml20-plain-wst1.3-soap1.2-symmetric")),
             (no_client, case("saml20", "1.3", "1.2")),
             (dataclasses.replace(target, relying_parties={}), case("saml20", "1.3", "1.2"))]
    for where, what in cases:
        outcome = PEER.issue(where, what)
        assert outcome.verdict.status is Status.NA and outcome.exchanges == (), what.name


def test_without_its_script_the_peer_says_why(tmp_path: Path) -> None:
    assert "soap_client.js is missing" in (NodeSoapClient(node_dir=tmp_path).unavailable() or "")


ISSUED = {"operation": "Issue", "url": "http://sts/services/sts", "request": "<rst/>", "response": "<rstr/>",
          "status": 200, "fault": None, "tokenType": SAML_URIS["2.0"], "token": "<Assertion/>"}
REFUSED = {"operation": "Cancel", "url": "http://sts/services/sts", "request": "<rst/>", "response": "<f/>",
           "status": 500, "fault": "s:Receiver / wst:InvalidRequest: no"}
VALID = {"operation": "Validate", "status": 200, "fault": None,
         "validStatus": "http://docs.oasis-open.org/ws-sx/ws-trust/200512/status/valid"}


def test_a_refused_cancel_fails_on_our_sts_and_is_only_said_of_another() -> None:
    answer = {"ok": True, "port": "S/P", "exchanges": [ISSUED, VALID, REFUSED]}
    ours = judge(answer, follow_ups_required=True)
    assert ours.verdict.status is Status.FAIL and "Cancel: s:Receiver / wst:InvalidRequest" in ours.verdict.detail
    other = judge(answer, follow_ups_required=False)
    assert other.verdict.status is Status.PASS and "(not required of another STS)" in other.verdict.detail
    assert other.token == b"<Assertion/>" and [e.status for e in other.exchanges] == [200]


def test_a_script_error_is_the_cells_failure() -> None:
    outcome = judge({"ok": False, "error": "the WSDL has no port"}, follow_ups_required=True)
    assert outcome.verdict.status is Status.FAIL and "the WSDL has no port" in outcome.verdict.detail
