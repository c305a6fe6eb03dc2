"""The client peers (msal's WS-Trust modules, zeep) against our STS: each Issue passes, and what each peer
extracted is a token our own verifier accepts, signed by the STS and carrying the interop user's claims."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator

import pytest
from cryptography import x509
from cryptography.hazmat.primitives.serialization import load_pem_private_key

from interop.model import ClientCase, ClientOutcome, Status
from interop.peers.msal_client import ACCEPTED_TOKEN_TYPES
from interop.peers.msal_client import PEER as MSAL
from interop.peers.zeep_client import PEER as ZEEP
from interop.matrix import case_name
from interop.target import USER_CLAIMS, Target, local_sts
from sts.rp.verifier import TokenVerifier

SAML11_URIS = {"urn:oasis:names:tc:SAML:1.0:assertion",
               "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV1.1"}
SAML20_URIS = {"urn:oasis:names:tc:SAML:2.0:assertion",
               "http://docs.oasis-open.org/wss/oasis-wss-saml-token-profile-1.1#SAMLV2.0"}


@pytest.fixture(scope="module")
def target() -> Iterator[Target]:
    with local_sts() as started:
        yield started


def case(profile: str, wstrust: str, soap: str = "1.2", auth: str = "username-text") -> ClientCase:
    return ClientCase(case_name(profile, wstrust, soap, auth), profile, wstrust, soap, auth)


def assert_genuine(outcome: ClientOutcome, target: Target, profile: str, subject: str | None = None) -> None:
    """PASS, one 200 exchange recorded, and a token our verifier accepts with the user's claims."""
    assert outcome.verdict.status is Status.PASS, outcome.verdict.detail
    assert [e.status for e in outcome.exchanges] == [200]
    assert b"RequestSecurityToken" in outcome.exchanges[0].request
    assert outcome.token is not None and outcome.token_type is not None
    rp = target.rp(profile)
    assert rp is not None
    assert outcome.token_type in (SAML11_URIS if rp.profile.saml == "1.1" else SAML20_URIS)
    key = load_pem_private_key(rp.key_pem, None) if rp.key_pem else None
    verifier = TokenVerifier([x509.load_pem_x509_certificate(target.sts_cert_pem)],
                             rp_private_key=key, audience=rp.address)  # type: ignore[arg-type]
    verified = verifier.verify(outcome.token)
    assert verified.version == rp.profile.saml
    assert verified.subject == (subject or target.username)
    for uri, values in USER_CLAIMS.items():
        assert set(verified.claims.get(uri, ())) == set(values), uri


@pytest.mark.parametrize("wstrust", ["1.3", "2005"])
@pytest.mark.parametrize("profile", ["saml11-plain", "saml20"])
def test_msal_issues(target: Target, profile: str, wstrust: str) -> None:
    outcome = MSAL.issue(target, case(profile, wstrust))
    assert_genuine(outcome, target, profile)
    assert outcome.token_type in ACCEPTED_TOKEN_TYPES
    path = "/13/" if wstrust == "1.3" else "/2005/"
    assert path in outcome.exchanges[0].url


@pytest.mark.parametrize("soap,auth,why", [
    ("1.1", "username-text", "SOAP 1.2 only"),
    ("1.2", "username-digest", "PasswordText"),
])
def test_msal_cannot_send_soap11_or_digest(target: Target, soap: str, auth: str, why: str) -> None:
    outcome = MSAL.issue(target, case("saml20", "1.3", soap, auth))
    assert outcome.verdict.status is Status.NA and why in outcome.verdict.detail
    assert outcome.exchanges == ()


@pytest.mark.parametrize("auth", ["username-text", "username-digest"])
@pytest.mark.parametrize("soap", ["1.1", "1.2"])
@pytest.mark.parametrize("wstrust", ["1.3", "2005"])
@pytest.mark.parametrize("profile", ["saml11-plain", "saml20"])
def test_zeep_issues(target: Target, profile: str, wstrust: str, soap: str, auth: str) -> None:
    outcome = ZEEP.issue(target, case(profile, wstrust, soap, auth))
    assert_genuine(outcome, target, profile)
    request = outcome.exchanges[0].request
    envelope = b"http://www.w3.org/2003/05/soap-envelope" if soap == "1.2" else \
        b"http://schemas.xmlsoap.org/soap/envelope/"
    assert envelope in request
    assert (b"#PasswordDigest" in request) is (auth == "username-digest")


@pytest.mark.parametrize("peer", [MSAL, ZEEP], ids=["msal", "zeep"])
def test_a_wrong_password_fails_with_the_fault_reason(target: Target, peer: object) -> None:
    wrong = dataclasses.replace(target, password="not the password")
    outcome = peer.issue(wrong, case("saml20", "1.3"))  # type: ignore[attr-defined]
    assert outcome.verdict.status is Status.FAIL
    assert "FailedAuthentication" in outcome.verdict.detail and "Authentication failed" in outcome.verdict.detail
    assert outcome.token is None and len(outcome.exchanges) == 1


def test_a_profile_the_target_lacks_is_not_applicable(target: Target) -> None:
    bare = dataclasses.replace(target, relying_parties={})
    for peer in (MSAL, ZEEP):
        assert peer.issue(bare, case("saml20", "1.3")).verdict.status is Status.NA


@pytest.mark.parametrize("soap", ["1.2", "1.1"])
@pytest.mark.parametrize(("profile", "wstrust"), [("saml20", "1.3"), ("saml11-plain", "2005")])
def test_zeep_signs_with_x509_and_the_token_is_about_the_registered_client(target: Target, profile: str,
                                                                           wstrust: str, soap: str) -> None:
    outcome = ZEEP.issue(target, case(profile, wstrust, soap, "x509"))
    request = outcome.exchanges[0].request
    assert b"BinarySecurityToken" in request and b"UsernameToken" not in request
    assert_genuine(outcome, target, profile, subject=target.client_name)


def test_msal_has_no_x509(target: Target) -> None:
    assert MSAL.issue(target, case("saml20", "1.3", auth="x509")).verdict.status is Status.NA
