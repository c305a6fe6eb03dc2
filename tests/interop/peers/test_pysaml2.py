"""pysaml2 verifies and decrypts the SAML 2.0 tokens our live STS issues, trusting only the STS certificate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from interop.model import Status, TokenCase
from interop.peers.pysaml2_peer import PEER
from saml_cases import CASES, ecdsa_case, issue_cases
from sts.crypto.keys import generate_key_and_cert

pytestmark = pytest.mark.skipif(PEER.unavailable() is not None, reason=str(PEER.unavailable()))

PREFIX = "https://pysaml2-peer-"


@pytest.fixture(scope="module")
def cases(live_sts, sts_home: Path, demo) -> dict[str, TokenCase]:
    return issue_cases(live_sts, sts_home, demo, PREFIX)


@pytest.mark.parametrize("name", [name for name, (saml, _, _) in CASES.items() if saml == "2.0"])
def test_passes_our_tokens(cases, name) -> None:
    verdict = PEER.check(cases[name])
    assert verdict.status is Status.PASS, verdict.detail


@pytest.mark.parametrize("name", ["saml20-plain"])
def test_tampered_token_fails(cases, name) -> None:
    case = cases[name]
    tampered = case.token.replace(b"alice@example.org", b"mallory@example.org")
    assert tampered != case.token
    verdict = PEER.check(dataclasses.replace(case, token=tampered,
                                              expected=dataclasses.replace(case.expected, claims={})))
    assert verdict.status is Status.FAIL and "SignatureError" in verdict.detail


@pytest.mark.parametrize("name", ["saml20-gcm", "saml20-plain", "saml20-cbc"])
def test_wrong_sts_certificate_fails(cases, name) -> None:
    # The token still carries the real STS certificate in KeyInfo: the peer must not trust it.
    _, other_cert = generate_key_and_cert("not the sts")
    verdict = PEER.check(dataclasses.replace(cases[name], sts_cert_pem=other_cert))
    assert verdict.status is Status.FAIL and "SignatureError" in verdict.detail


def test_wrong_expectation_fails(cases) -> None:
    case = cases["saml20-gcm"]
    verdict = PEER.check(dataclasses.replace(case, expected=dataclasses.replace(case.expected, subject="bob")))
    assert verdict.status is Status.FAIL and "subject" in verdict.detail


@pytest.mark.parametrize("name", ["saml11-plain", "saml11-encrypted"])
def test_saml11_is_not_applicable(cases, name) -> None:
    assert PEER.check(cases[name]).status is Status.NA


def test_ecdsa_sha256_passes() -> None:
    case = ecdsa_case(f"{PREFIX}ecdsa.example/")
    verdict = PEER.check(case)
    assert verdict.status is Status.PASS, verdict.detail


def test_name_and_availability() -> None:
    assert PEER.name.startswith("pysaml2 7.")
    assert PEER.about
