"""The Python SAML verifier peers, python3-saml (OneLogin) and pysaml2, on the tokens our live STS issues:
they pass every case they support, trusting only the STS certificate, and fail tampered tokens, a wrong
certificate and wrong expectations with their own error."""

from __future__ import annotations

import dataclasses
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from lxml import etree

from interop.model import Expected, Status, TokenCase
from interop.peers.base import VerifierPeer
from interop.peers.onelogin import PEER as ONELOGIN
from interop.peers.pysaml2_peer import PEER as PYSAML2
from sts.client.trust import TrustClient, UsernameCredentials
from sts.config import load_settings
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.signing import XmlSigner
from sts.model import AssertionContent, Claim, RelyingParty
from sts.tokens.saml.saml20 import build_assertion, issuer_of
from sts.uris import NAMEID_UNSPECIFIED, AuthnMethod, DataEncryption, SignatureAlgorithm, TokenType
from sts.runtime import open_stores

EMAIL = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
ROLE = "http://schemas.microsoft.com/ws/2008/06/identity/claims/role"
CLAIMS = {EMAIL: ("alice@example.org",), GIVENNAME: ("Alice",), ROLE: ("reader",)}
# name: (SAML version, encrypted, data encryption)
CASES = {
    "saml11-plain": ("1.1", False, None),
    "saml11-encrypted": ("1.1", True, DataEncryption.AES256_GCM),
    "saml20-plain": ("2.0", False, None),
    "saml20-gcm": ("2.0", True, DataEncryption.AES256_GCM),
    "saml20-cbc": ("2.0", True, DataEncryption.AES256_CBC),
}
PREFIX = "https://python-saml-peers-"
#: peer -> (the SAML versions it reads, the words of its signature failure)
PEERS: dict[str, tuple[VerifierPeer, frozenset[str], str]] = {
    "python3-saml": (ONELOGIN, frozenset({"1.1", "2.0"}), "Signature validation failed"),
    "pysaml2": (PYSAML2, frozenset({"2.0"}), "SignatureError"),
}
pytestmark = pytest.mark.skipif(any(p.unavailable() for p, _, _ in PEERS.values()),
                                reason="; ".join(str(p.unavailable()) for p, _, _ in PEERS.values() if p.unavailable()))


@pytest.fixture(scope="module")
def cases(live_sts: Any, sts_home: Path, demo: dict[str, str]) -> dict[str, TokenCase]:
    """One token per case, for relying parties registered under this module's PREFIX."""
    settings = load_settings(sts_home)
    stores = open_stores(settings)
    rp_cert, rp_key = (sts_home / "demo" / "rp.crt").read_bytes(), (sts_home / "demo" / "rp.key").read_bytes()
    client = TrustClient.for_endpoint(live_sts.sts_url,
                                      credentials=UsernameCredentials(demo["user"], demo["password"]))
    issued = {}
    for name, (saml, encrypted, data_encryption) in CASES.items():
        endpoint = f"{PREFIX}{name}.example/"
        if stores.relying_parties.lookup(endpoint) is None:
            stores.relying_parties.add(RelyingParty(
                endpoint=endpoint, cert_pem=rp_cert if encrypted else None, encrypt=encrypted,
                token_type=TokenType.SAML11 if saml == "1.1" else TokenType.SAML20,
                data_encryption=data_encryption or DataEncryption.AES256_GCM))
        result = client.issue(endpoint, claims=list(CLAIMS))
        issued[name] = TokenCase(
            name=name, saml=saml, encrypted=encrypted, signature="rsa-sha256",
            data_encryption=data_encryption.name.lower().replace("_", "-") if data_encryption else None,
            key_transport="rsa-oaep-mgf1p" if encrypted else None, token=result.token, rstr=result.raw,
            sts_cert_pem=settings.signing_cert_path.read_bytes(), rp_key_pem=rp_key if encrypted else None,
            expected=Expected(demo["user"], endpoint, CLAIMS))
    return issued


def ecdsa_case(audience: str) -> TokenCase:
    """A SAML 2.0 assertion signed with ECDSA-SHA256 by a throw-away EC key (the live test STS signs with RSA)."""
    key_pem, cert_pem = generate_key_and_cert("sts-ec.test", ec=True)
    now = datetime.now(timezone.utc)
    content = AssertionContent(
        assertion_id="_ec0123456789abcdef", issuer="https://sts-ec.test/", subject_name="alice",
        name_id_format=NAMEID_UNSPECIFIED, audience=audience, issue_instant=now,
        not_before=now, not_on_or_after=now + timedelta(hours=1), authn_method=AuthnMethod.PASSWORD,
        authn_instant=now, claims=(Claim(ROLE, ("reader",)),))
    assertion = build_assertion(content)
    XmlSigner(SigningKey.from_pem(key_pem, cert_pem), SignatureAlgorithm.ECDSA_SHA256).sign(
        assertion, content.assertion_id, after=issuer_of(assertion))
    return TokenCase(name="saml20-ecdsa", saml="2.0", encrypted=False, signature="ecdsa-sha256",
                     data_encryption=None, key_transport=None, token=etree.tostring(assertion), rstr=b"",
                     sts_cert_pem=cert_pem, rp_key_pem=None,
                     expected=Expected("alice", content.audience, {ROLE: ("reader",)}))


def _supported(saml_versions: frozenset[str]) -> list[tuple[str, str]]:
    return [(peer, name) for peer, (_, versions, _) in PEERS.items() for name, (saml, _, _) in CASES.items()
            if saml in versions and saml in saml_versions]


@pytest.mark.parametrize(("peer", "name"), _supported(frozenset({"1.1", "2.0"})))
def test_passes_our_tokens(cases, peer, name) -> None:
    verdict = PEERS[peer][0].check(cases[name])
    assert verdict.status is Status.PASS, verdict.detail


@pytest.mark.parametrize(("peer", "name"), [(p, n) for p, n in _supported(frozenset({"1.1", "2.0"}))
                                            if n in ("saml11-plain", "saml20-plain")])
def test_tampered_token_fails(cases, peer, name) -> None:
    case = cases[name]
    tampered = case.token.replace(b"alice@example.org", b"mallory@example.org")
    assert tampered != case.token
    target, _, failure = PEERS[peer]
    verdict = target.check(dataclasses.replace(case, token=tampered,
                                                expected=dataclasses.replace(case.expected, claims={})))
    assert verdict.status is Status.FAIL and failure in verdict.detail


@pytest.mark.parametrize(("peer", "name"), [(p, n) for p, n in _supported(frozenset({"1.1", "2.0"}))
                                            if n in ("saml11-encrypted", "saml20-plain", "saml20-cbc")])
def test_wrong_sts_certificate_fails(cases, peer, name) -> None:
    # The token still carries the real STS certificate in KeyInfo: the peer must not trust it.
    _, other_cert = generate_key_and_cert("not the sts")
    target, _, failure = PEERS[peer]
    verdict = target.check(dataclasses.replace(cases[name], sts_cert_pem=other_cert))
    assert verdict.status is Status.FAIL and failure in verdict.detail


@pytest.mark.parametrize("peer", list(PEERS))
def test_wrong_expectation_fails(cases, peer) -> None:
    case = cases["saml20-gcm"]
    verdict = PEERS[peer][0].check(dataclasses.replace(case, expected=dataclasses.replace(case.expected,
                                                                                           subject="bob")))
    assert verdict.status is Status.FAIL and "subject" in verdict.detail


@pytest.mark.parametrize("peer", list(PEERS))
def test_ecdsa_sha256_passes(peer) -> None:
    verdict = PEERS[peer][0].check(ecdsa_case(f"{PREFIX}ecdsa.example/"))
    assert verdict.status is Status.PASS, verdict.detail


def test_python3_saml_refuses_a_wrong_audience_itself(cases) -> None:
    case = cases["saml20-plain"]
    verdict = ONELOGIN.check(dataclasses.replace(
        case, expected=dataclasses.replace(case.expected, audience="https://elsewhere.example/")))
    assert verdict.status is Status.FAIL and "is not a valid audience" in verdict.detail


@pytest.mark.parametrize("name", ["saml11-plain", "saml11-encrypted"])
def test_pysaml2_reads_no_saml11(cases, name) -> None:
    assert PYSAML2.check(cases[name]).status is Status.NA


def test_names_and_descriptions() -> None:
    assert ONELOGIN.name.startswith("python3-saml 1.") and PYSAML2.name.startswith("pysaml2 7.")
    assert ONELOGIN.about and PYSAML2.about
