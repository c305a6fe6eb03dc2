"""Answers are judged structurally: shapes compare by meaning, expectations name every mismatch."""

from __future__ import annotations

from pathlib import Path

import pytest

from interop.answer import AnswerError, read_answer
from interop.expect import problems
from interop.shape import shape, shape_problems
from interop.sidecar import Expect
from interop.target import Target

RECORDED = Path(__file__).resolve().parents[2] / "fixtures" / "recorded"
ADFS13 = (RECORDED / "adal-python" / "adfs-wstrust13-soap12-rstrc-issue-saml11-bearer.xml").read_bytes()
ADFS2005 = (RECORDED / "adal-node" / "adfs-wstrust2005-soap12-rstr-issue-saml11-bearer.xml").read_bytes()
PINGFED = (RECORDED / "adal-node" / "pingfed-wstrust13-soap12-rstrc-issue-saml11-bearer.xml").read_bytes()
FAULT = (RECORDED / "apache-cxf" / "wstrust2005-soap12-fault-failedauthentication.xml").read_bytes()
TARGET = Target(base_url="http://127.0.0.1:9", sts_cert_pem=b"", username="u", password="p",
                relying_parties={}, ours=True)


def test_shape_reads_meaning_not_spelling() -> None:
    paths = shape(ADFS13)
    assert "collection" in paths
    assert "RequestSecurityTokenResponse/TokenType=saml11" in paths
    assert "RequestSecurityTokenResponse/KeyType=Bearer" in paths
    assert "RequestSecurityTokenResponse/RequestedSecurityToken/Assertion:saml11" in paths
    assert "RequestSecurityTokenResponse/RequestedSecurityToken/Assertion@AssertionID" in paths
    # PingFederate says SAMLV1.1 where AD FS says urn:oasis:names:tc:SAML:1.0:assertion: the same type
    assert "RequestSecurityTokenResponse/TokenType=saml11" in shape(PINGFED)


def test_same_answer_has_no_problems_and_missing_parts_are_named() -> None:
    assert shape_problems(ADFS13, ADFS13) == []
    trimmed = ADFS13.replace(b"<trust:KeyType>http://docs.oasis-open.org/ws-sx/ws-trust/200512/Bearer</trust:KeyType>", b"")
    assert trimmed != ADFS13
    assert shape_problems(ADFS13, trimmed) == ["ours lacks RequestSecurityTokenResponse/KeyType=Bearer"]
    assert shape_problems(ADFS13, trimmed, ignore=("KeyType",)) == []


def test_a_bare_rstr_differs_from_a_collection_only_by_the_collection() -> None:
    missing = shape_problems(ADFS13, ADFS2005)
    assert "ours lacks collection" in missing
    assert all("Assertion" not in m for m in missing)


def test_read_answer_finds_the_fault_code_through_odd_prefixes() -> None:
    answer = read_answer(FAULT)
    assert answer.fault_code == "FailedAuthentication"
    assert answer.fault_code_ns == "http://schemas.xmlsoap.org/ws/2005/02/trust"
    assert problems(answer, Expect(outcome="fault", fault="FailedAuthentication"), TARGET, None) == []
    assert problems(answer, Expect(outcome="fault", fault="InvalidRequest"), TARGET, None) == [
        "expected fault InvalidRequest, got FailedAuthentication: Authentication Failure"]
    assert problems(answer, Expect(), TARGET, None)[0].startswith("expected success, got fault")


def test_expectations_on_an_rstr_are_checked_one_by_one() -> None:
    answer = read_answer(ADFS2005)
    assert not answer.collection and len(answer.rstrs) == 1
    ok = Expect(collection=False, token_type="saml11", key_type="bearer", references=("attached", "unattached"),
                elements=("Lifetime", "RequestedSecurityToken", "TokenType"), lifetime_min=3000, lifetime_max=3600)
    assert problems(answer, ok, TARGET, None) == []
    bad = Expect(collection=True, token_type="saml20", key_type="symmetric", count=2, status="valid",
                 elements=("TokenType", "Lifetime"), lifetime_max=60, proof="computed-key")
    found = problems(answer, bad, TARGET, None)
    assert found == [
        "expected an RSTRC around the RSTR, got Body/RequestSecurityTokenResponse",
        "expected 2 RSTRs, got 1",
        "elements out of order: Lifetime, AppliesTo, RequestedSecurityToken, RequestedAttachedReference, "
        "RequestedUnattachedReference, TokenType, RequestType, KeyType (expected TokenType, Lifetime in that order)",
        "TokenType 'urn:oasis:names:tc:SAML:1.0:assertion', expected saml20",
        "KeyType 'http://schemas.xmlsoap.org/ws/2005/05/identity/NoProofKey', expected symmetric",
        "Status/Code '', expected valid",
        "proof 'none', expected computed-key",
        "lifetime 3600 s, expected at most 60 s",
    ]


@pytest.mark.parametrize("data", [b"not xml", b"<html><body>502</body></html>"])
def test_what_is_not_soap_is_an_answer_error(data: bytes) -> None:
    with pytest.raises(AnswerError):
        read_answer(data)


def test_the_answer_must_speak_the_requests_versions() -> None:
    from interop.replay import _version_problems
    from interop.sidecar import Fixture, Message, Source

    source = Source("unit", "hand-written", "Apache-2.0", "PROVENANCE.md", "x")
    asked_2005 = Fixture(Path("x.xml"), "x.xml", source, Message("request", "2005", "1.2", "issue"))
    assert _version_problems(asked_2005, read_answer(ADFS2005)) == []
    assert _version_problems(asked_2005, read_answer(ADFS13)) == [
        "RSTR in namespace http://docs.oasis-open.org/ws-sx/ws-trust/200512, asked in WS-Trust 2005"]
    asked_soap11 = Fixture(Path("x.xml"), "x.xml", source, Message("request", "1.3", "1.1", "issue"))
    assert _version_problems(asked_soap11, read_answer(ADFS13)) == [
        "answered in SOAP namespace http://www.w3.org/2003/05/soap-envelope, asked in SOAP 1.1"]


def test_a_malformed_lifetime_is_a_named_problem_not_a_crash() -> None:
    broken = ADFS2005.replace(b"2015-07-31T05:45:47.269Z</wsu:Created>", b"yesterday</wsu:Created>", 1)
    assert broken != ADFS2005
    found = problems(read_answer(broken), Expect(lifetime_max=3600), TARGET, None)
    assert found == ["Lifetime: not an xs:dateTime: 'yesterday'"]
