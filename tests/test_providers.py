"""SamlTokenProvider end to end: built, signed with the RP's algorithm, encrypted for the RP, serialized."""

from __future__ import annotations

import dataclasses
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod

from sts import ns
from sts.crypto.encryption import decrypt_element
from sts.crypto.keys import SigningKey, generate_key_and_cert, load_private_key
from sts.crypto.signing import XmlSigner
from sts.model import AssertionContent, Claim, RelyingParty
from sts.providers import SamlTokenProvider
from sts.uris import NAMEID_UNSPECIFIED, AuthnMethod, DataEncryption, SignatureAlgorithm, TokenType

DS = "{http://www.w3.org/2000/09/xmldsig#}"
XENC = "{http://www.w3.org/2001/04/xmlenc#}"
ID_ATTRIBUTE = {TokenType.SAML20: "ID", TokenType.SAML11: "AssertionID"}
ANY_ALGORITHM = SignatureConfiguration(
    signature_methods=frozenset(SxMethod), digest_algorithms=frozenset(SxDigest)
)


@pytest.fixture(scope="module")
def sts_pems() -> tuple[bytes, bytes]:
    return generate_key_and_cert("sts.test")


@pytest.fixture(scope="module")
def rp_pems() -> tuple[bytes, bytes]:
    return generate_key_and_cert("rp.test")


@pytest.fixture(scope="module")
def provider(sts_pems) -> SamlTokenProvider:
    return SamlTokenProvider(XmlSigner(SigningKey.from_pem(*sts_pems)), "https://sts.test/trust")


@pytest.fixture
def content() -> AssertionContent:
    now = datetime(2026, 11, 28, tzinfo=timezone.utc)
    return AssertionContent(
        assertion_id="_" + "ab" * 16,
        issuer="https://sts.test/trust",
        subject_name="alice",
        name_id_format=NAMEID_UNSPECIFIED,
        audience="https://rp.test/",
        issue_instant=now,
        not_before=now,
        not_on_or_after=now + timedelta(minutes=30),
        authn_method=AuthnMethod.PASSWORD,
        authn_instant=now,
        claims=(Claim("http://schemas.xmlsoap.org/ws/2005/05/identity/claims/name", ("alice",)),),
    )


def _verify(data: bytes, cert_pem: bytes, token_type: TokenType) -> etree._Element:
    result = XMLVerifier().verify(
        data, x509_cert=cert_pem.decode(), id_attribute=ID_ATTRIBUTE[token_type], expect_config=ANY_ALGORITHM
    )
    return result.signed_xml


@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_unencrypted_token(token_type, provider, content, sts_pems) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False)
    token = provider.issue(content, rp, token_type)
    assert not token.encrypted and not token.xml.startswith(b"<?xml")
    assert (token.token_id, token.token_type, token.subject) == (content.assertion_id, token_type, "alice")
    assert (token.created, token.expires, token.applies_to) == (
        content.not_before, content.not_on_or_after, content.audience
    )
    signed = _verify(token.xml, sts_pems[1], token_type)
    assert signed.get(ID_ATTRIBUTE[token_type]) == content.assertion_id


@pytest.mark.parametrize("data", [DataEncryption.AES256_GCM, DataEncryption.AES256_CBC], ids=lambda d: d.name)
@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_encrypted_token(token_type, data, provider, content, sts_pems, rp_pems) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", cert_pem=rp_pems[1], data_encryption=data)
    token = provider.issue(content, rp, token_type)
    assert token.encrypted
    root = etree.fromstring(token.xml)
    if token_type is TokenType.SAML20:
        assert token.xml.startswith(b'<EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion">')
        encrypted = root[0]
    else:
        encrypted = root
    assert encrypted.tag == f"{XENC}EncryptedData"
    assert encrypted.find(f"{XENC}EncryptionMethod").get("Algorithm") == data.value
    assertion = decrypt_element(encrypted, load_private_key(rp_pems[0]))
    _verify(etree.tostring(assertion), sts_pems[1], token_type)


@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_xmlsec1_decrypts_and_verifies(token_type, provider, content, sts_pems, rp_pems, tmp_path) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", cert_pem=rp_pems[1])
    token = provider.issue(content, rp, token_type)
    (tmp_path / "rp.key").write_bytes(rp_pems[0])
    (tmp_path / "sts.crt").write_bytes(sts_pems[1])
    (tmp_path / "token.xml").write_bytes(token.xml)
    decrypted = _xmlsec1(
        "--decrypt", "--privkey-pem", "rp.key", "--output", "plain.xml", "token.xml", cwd=tmp_path
    )
    assert decrypted.returncode == 0, decrypted.stderr.decode()
    id_attr, node = {
        TokenType.SAML20: ("ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
        TokenType.SAML11: ("AssertionID", "urn:oasis:names:tc:SAML:1.0:assertion:Assertion"),
    }[token_type]
    verified = _xmlsec1("--verify", "--pubkey-cert-pem", "sts.crt", f"--id-attr:{id_attr}", node, "plain.xml",
                        cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr.decode()


def _xmlsec1(*args: str, cwd: Path) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(["xmlsec1", *args], capture_output=True, cwd=cwd, timeout=60, check=False)


@pytest.mark.parametrize("algorithm", [SignatureAlgorithm.RSA_SHA1, SignatureAlgorithm.RSA_SHA256])
def test_relying_partys_signature_algorithm(algorithm, provider, content, sts_pems) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False, signature_algorithm=algorithm)
    token = provider.issue(content, rp, TokenType.SAML20)
    signed_info = etree.fromstring(token.xml).find(f"{DS}Signature/{DS}SignedInfo")
    assert signed_info.find(f"{DS}SignatureMethod").get("Algorithm") == algorithm.value
    digest = signed_info.find(f"{DS}Reference/{DS}DigestMethod").get("Algorithm")
    assert ("sha1" in digest) is (algorithm is SignatureAlgorithm.RSA_SHA1)
    _verify(token.xml, sts_pems[1], TokenType.SAML20)


def test_signers_are_built_once(provider) -> None:
    first = provider.signer_for(SignatureAlgorithm.RSA_SHA1)
    assert provider.signer_for(SignatureAlgorithm.RSA_SHA1) is first
    assert provider.signer_for(SignatureAlgorithm.RSA_SHA256).algorithm is SignatureAlgorithm.RSA_SHA256


def test_ec_key_signs_with_ecdsa_whatever_the_rp_prefers(content) -> None:
    key_pem, cert_pem = generate_key_and_cert("sts-ec.test", ec=True)
    signer = XmlSigner(SigningKey.from_pem(key_pem, cert_pem), SignatureAlgorithm.ECDSA_SHA256)
    provider = SamlTokenProvider(signer, "https://sts.test/trust")
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False)  # RSA-SHA256 by default
    token = provider.issue(content, rp, TokenType.SAML11)
    assert SignatureAlgorithm.ECDSA_SHA256.value.encode() in token.xml
    _verify(token.xml, cert_pem, TokenType.SAML11)


def test_encrypt_without_certificate_stays_signed_only(provider, content) -> None:
    token = provider.issue(content, RelyingParty(endpoint="https://rp.test/", encrypt=True), TokenType.SAML20)
    assert not token.encrypted and etree.fromstring(token.xml).tag == ns.qn(ns.SAML2, "Assertion")


def test_provider_issuer_fills_an_empty_issuer(provider, content) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False)
    token = provider.issue(dataclasses.replace(content, issuer=""), rp, TokenType.SAML11)
    assert etree.fromstring(token.xml).get("Issuer") == "https://sts.test/trust"


def test_bad_relying_party_certificate(provider, content) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", cert_pem=b"not a certificate")
    with pytest.raises(ValueError, match="not a PEM or DER"):
        provider.issue(content, rp, TokenType.SAML20)


def test_token_types(provider) -> None:
    assert provider.token_types == frozenset(TokenType)
