"""python3-saml (OneLogin) verifies and decrypts the tokens our live STS issues, trusting only the STS certificate."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest

from interop.model import Status, TokenCase
from interop.peers.onelogin import PEER
from saml_cases import CASES, ecdsa_case, issue_cases
from sts.crypto.keys import generate_key_and_cert

pytestmark = pytest.mark.skipif(PEER.unavailable() is not None, reason=str(PEER.unavailable()))

PREFIX = "https://onelogin-peer-"


@pytest.fixture(scope="module")
def cases(live_sts, sts_home: Path, demo) -> dict[str, TokenCase]:
    return issue_cases(live_sts, sts_home, demo, PREFIX)


@pytest.mark.parametrize("name", list(CASES))
def test_passes_our_tokens(cases, name) -> None:
    verdict = PEER.check(cases[name])
    assert verdict.status is Status.PASS, verdict.detail


@pytest.mark.parametrize("name", ["saml11-plain", "saml20-plain"])
def test_tampered_token_fails(cases, name) -> None:
    case = cases[name]
    tampered = case.token.replace(b"alice@example.org", b"mallory@example.org")
    assert tampered != case.token
    verdict = PEER.check(dataclasses.replace(case, token=tampered,
                                              expected=dataclasses.replace(case.expected, claims={})))
    assert verdict.status is Status.FAIL and "Signature validation failed" in verdict.detail


@pytest.mark.parametrize("name", ["saml11-encrypted", "saml20-plain", "saml20-cbc"])
def test_wrong_sts_certificate_fails(cases, name) -> None:
    # The token still carries the real STS certificate in KeyInfo: the peer must not trust it.
    _, other_cert = generate_key_and_cert("not the sts")
    verdict = PEER.check(dataclasses.replace(cases[name], sts_cert_pem=other_cert))
    assert verdict.status is Status.FAIL and "Signature validation failed" in verdict.detail


def test_wrong_expectation_fails(cases) -> None:
    case = cases["saml20-gcm"]
    verdict = PEER.check(dataclasses.replace(case, expected=dataclasses.replace(case.expected, subject="bob")))
    assert verdict.status is Status.FAIL and "subject" in verdict.detail


def test_wrong_audience_is_refused_by_the_toolkit(cases) -> None:
    case = cases["saml20-plain"]
    verdict = PEER.check(dataclasses.replace(
        case, expected=dataclasses.replace(case.expected, audience="https://elsewhere.example/")))
    assert verdict.status is Status.FAIL and "is not a valid audience" in verdict.detail


def test_ecdsa_sha256_passes() -> None:
    case = ecdsa_case(f"{PREFIX}ecdsa.example/")
    verdict = PEER.check(case)
    assert verdict.status is Status.PASS, verdict.detail


def test_name_and_availability() -> None:
    assert PEER.name.startswith("python3-saml 1.")
    assert PEER.about
