"""The Node.js peer (passport-wsfed-saml2 + xml-encryption + xml-crypto from npm) on tokens our live STS issues."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest

from interop.model import Expected, Status, TokenCase
from interop.peers.node import NODE_DIR, PEER, NodePeer
from live import LiveServer
from sts.client.trust import TrustClient, UsernameCredentials
from sts.config import load_settings
from sts.model import RelyingParty
from sts.uris import DataEncryption, KeyTransport, TokenType
from sts.runtime import open_stores

_reason = PEER.unavailable()
if _reason is not None:
    pytest.skip(_reason, allow_module_level=True)

CLAIMS: dict[str, tuple[str, ...]] = {
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/emailaddress": ("alice@example.org",),
    "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname": ("Alice",),
    "http://schemas.microsoft.com/ws/2008/06/identity/claims/role": ("reader",),
}

# name -> (saml, encrypted, data encryption, key transport)
PROFILES: dict[str, tuple[str, bool, DataEncryption, KeyTransport]] = {
    "saml11-gcm": ("1.1", True, DataEncryption.AES256_GCM, KeyTransport.RSA_OAEP_MGF1P),
    "saml11-plain": ("1.1", False, DataEncryption.AES256_GCM, KeyTransport.RSA_OAEP_MGF1P),
    "saml20-gcm": ("2.0", True, DataEncryption.AES256_GCM, KeyTransport.RSA_OAEP_MGF1P),
    "saml20-plain": ("2.0", False, DataEncryption.AES256_GCM, KeyTransport.RSA_OAEP_MGF1P),
    "saml11-cbc": ("1.1", True, DataEncryption.AES256_CBC, KeyTransport.RSA_OAEP_MGF1P),
    "saml20-cbc": ("2.0", True, DataEncryption.AES256_CBC, KeyTransport.RSA_OAEP_MGF1P),
}
_SHORT = {DataEncryption.AES256_GCM: "aes256-gcm", DataEncryption.AES256_CBC: "aes256-cbc"}


def _endpoint(name: str) -> str:
    return f"https://node-peer-{name}.example/"


@pytest.fixture(scope="module")
def cases(live_sts: LiveServer, demo: dict[str, str]) -> dict[str, TokenCase]:
    home: Path = live_sts.home
    rp_cert = (home / "demo" / "rp.crt").read_bytes()
    stores = open_stores(load_settings(home))
    for name, (saml, encrypted, data_encryption, key_transport) in PROFILES.items():
        if stores.relying_parties.lookup(_endpoint(name)) is None:
            stores.relying_parties.add(RelyingParty(
                endpoint=_endpoint(name), cert_pem=rp_cert if encrypted else None, encrypt=encrypted,
                token_type=TokenType.SAML11 if saml == "1.1" else TokenType.SAML20,
                data_encryption=data_encryption, key_transport=key_transport))
    stores.close()
    client = TrustClient.for_endpoint(live_sts.sts_url, credentials=UsernameCredentials(demo["user"], demo["password"]))
    sts_cert = load_settings(home).signing_cert_path.read_bytes()
    rp_key = (home / "demo" / "rp.key").read_bytes()
    issued: dict[str, TokenCase] = {}
    for name, (saml, encrypted, data_encryption, key_transport) in PROFILES.items():
        result = client.issue(_endpoint(name), claims=tuple(CLAIMS))
        issued[name] = TokenCase(
            name=name, saml=saml, encrypted=encrypted, signature="rsa-sha256",
            data_encryption=_SHORT[data_encryption] if encrypted else None,
            key_transport="rsa-oaep-mgf1p" if encrypted else None,
            token=result.token, rstr=result.raw, sts_cert_pem=sts_cert, rp_key_pem=rp_key if encrypted else None,
            expected=Expected(subject=demo["user"], audience=_endpoint(name), claims=CLAIMS))
    return issued


@pytest.mark.parametrize("name", list(PROFILES))
def test_node_peer_verifies_decrypts_and_reads(cases: dict[str, TokenCase], name: str) -> None:
    verdict = PEER.check(cases[name])
    assert verdict.status is Status.PASS, verdict.detail
    if "cbc" in name:
        assert "CBC allowed explicitly" in verdict.detail


@pytest.mark.parametrize("name", ["saml11-plain", "saml20-plain"])
def test_node_peer_reports_issuer_lifetime_and_every_audience(cases: dict[str, TokenCase], name: str) -> None:
    case = cases[name]
    out = PEER.verify(case.token, saml=case.saml, sts_cert_pem=case.sts_cert_pem, rp_key_pem=None,
                      audience=case.expected.audience)
    assert out["ok"] is True and out["decrypted"] is False and out["signatureVerified"] is True
    assert out["issuer"].endswith("/services/sts")
    assert out["audience"] == [case.expected.audience]
    assert out["notBefore"] < out["notOnOrAfter"]
    assert out["attributes"][next(iter(CLAIMS))] == list(CLAIMS[next(iter(CLAIMS))])


@pytest.mark.parametrize("name", ["saml11-plain", "saml20-plain"])
def test_tampered_token_fails(cases: dict[str, TokenCase], name: str) -> None:
    case = cases[name]
    assert b">alice<" in case.token
    forged = dataclasses.replace(case, token=case.token.replace(b">alice<", b">mallory<"),
                                 expected=dataclasses.replace(case.expected, subject="mallory"))
    verdict = PEER.check(forged)
    assert verdict.status is Status.FAIL
    assert "digest" in verdict.detail, verdict.detail


@pytest.mark.parametrize("name", ["saml11-gcm", "saml20-plain"])
def test_wrong_sts_certificate_fails(cases: dict[str, TokenCase], live_sts: LiveServer, name: str) -> None:
    other = (live_sts.home / "demo" / "rp.crt").read_bytes()  # a real certificate, just not the STS's
    verdict = PEER.check(dataclasses.replace(cases[name], sts_cert_pem=other))
    assert verdict.status is Status.FAIL
    assert "Signature check errors" in verdict.detail, verdict.detail


def test_tampered_ciphertext_fails(cases: dict[str, TokenCase]) -> None:
    case = cases["saml20-gcm"]
    start = case.token.rindex(b"<xenc:CipherValue>") + len(b"<xenc:CipherValue>")
    flipped = b"B" if case.token[start + 40:start + 41] == b"A" else b"A"
    forged = case.token[:start + 40] + flipped + case.token[start + 41:]
    assert PEER.check(dataclasses.replace(case, token=forged)).status is Status.FAIL


def test_wrong_audience_fails(cases: dict[str, TokenCase]) -> None:
    case = cases["saml20-plain"]
    verdict = PEER.check(dataclasses.replace(
        case, expected=dataclasses.replace(case.expected, audience="https://node-peer-elsewhere.example/")))
    assert verdict.status is Status.FAIL
    assert "Audience is invalid" in verdict.detail, verdict.detail


def test_missing_claim_fails(cases: dict[str, TokenCase]) -> None:
    case = cases["saml11-gcm"]
    claims: dict[str, tuple[str, ...]] = {**CLAIMS, "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/surname": ("Liddell",)}
    verdict = PEER.check(dataclasses.replace(case, expected=dataclasses.replace(case.expected, claims=claims)))
    assert verdict.status is Status.FAIL
    assert "surname lacks ['Liddell']" in verdict.detail


def test_cbc_is_refused_unless_allowed(cases: dict[str, TokenCase]) -> None:
    case = cases["saml11-cbc"]
    out = PEER.verify(case.token, saml=case.saml, sts_cert_pem=case.sts_cert_pem, rp_key_pem=case.rp_key_pem,
                      audience=case.expected.audience)
    assert out["ok"] is False
    assert "aes256-cbc is not secure" in out["error"]


def test_ecdsa_and_rsa15_are_not_applicable(cases: dict[str, TokenCase]) -> None:
    ecdsa = PEER.check(dataclasses.replace(cases["saml20-plain"], signature="ecdsa-sha256"))
    assert ecdsa.status is Status.NA and "RSA" in ecdsa.detail
    rsa15 = PEER.check(dataclasses.replace(cases["saml20-gcm"], key_transport="rsa-1_5"))
    assert rsa15.status is Status.NA and "RSA 1.5" in rsa15.detail


def test_garbage_fails_without_raising(cases: dict[str, TokenCase]) -> None:
    verdict = PEER.check(dataclasses.replace(cases["saml20-plain"], token=b"<not-xml"))
    assert verdict.status is Status.FAIL and verdict.detail.startswith("node: ")


def test_unavailable_without_node_modules(tmp_path: Path) -> None:
    (tmp_path / "verify.js").write_text("")
    peer = NodePeer(node_dir=tmp_path)
    reason = peer.unavailable()
    assert reason is not None and "npm packages not installed" in reason
    assert peer.check(dataclasses.replace(_any_case(), signature="rsa-sha256")).status is Status.SKIP


def test_name_matches_the_locked_version() -> None:
    lock = json.loads((NODE_DIR / "package-lock.json").read_text())
    packages = lock["packages"]
    assert packages["node_modules/passport-wsfed-saml2"]["version"] == "4.6.1" and "4.6.1" in PEER.name
    assert packages["node_modules/passport-wsfed-saml2/node_modules/xml-crypto"]["version"] == "1.4.1"
    assert packages["node_modules/xml-crypto"]["version"] == "6.3.2"
    assert packages["node_modules/xml-encryption"]["version"] == "6.0.1"
    for entry in packages.values():  # nothing fetched from git: `npm ci` works offline from the registry cache
        assert "git" not in entry.get("resolved", ""), entry


def _any_case() -> TokenCase:
    return TokenCase(name="x", saml="2.0", encrypted=False, signature="rsa-sha256", data_encryption=None,
                     key_transport=None, token=b"<x/>", rstr=b"", sts_cert_pem=b"", rp_key_pem=None,
                     expected=Expected(subject="alice", audience="https://node-peer-x.example/"))
