"""SamlTokenProvider end to end: built, signed with the RP's algorithm, encrypted for the RP, serialized."""

from __future__ import annotations

import base64
import dataclasses
import os
import subprocess
from datetime import timedelta
from pathlib import Path

import pytest
import xmlsec
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod

from assertion_content import NAME, make_content
from sts import ns
from sts.tokens.crypto.encryption import decrypt_element, decrypt_key, encrypt_key_for
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, load_certificate, load_private_key
from sts.tokens.crypto.proof import ProofKeyFactory, p_sha1
from sts.tokens.crypto.signing import XmlSigner
from sts.errors import BadRequest
from sts.model import AssertionContent, Entropy, ProofKey, RelyingParty, RequestSecurityToken
from sts.service.providers import SamlTokenProvider
from sts.tokens.validators import token_hash
from sts.uris import (
    DataEncryption,
    KeyType,
    RequestType,
    SignatureAlgorithm,
    TokenType,
    TrustVersion,
)
from sts.protocol.wstrust.parse import parse_encrypted_key
from sts.protocol.wstrust.proof import render_proof

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
    return make_content(
        assertion_id="_" + "ab" * 16,
        issuer="https://sts.test/trust",
        audience="https://rp.test/",
        lifetime=timedelta(minutes=30),
        claims=(NAME,),
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
    plain = _xmlsec1_decrypt_and_verify(token.xml, token_type, rp_pems[0], sts_pems[1], tmp_path)
    assert next(plain.iter("{*}Assertion")).get(ID_ATTRIBUTE[token_type]) == content.assertion_id


def _xmlsec1_decrypt_and_verify(data: bytes, token_type: TokenType, rp_key_pem: bytes, sts_cert_pem: bytes,
                                tmp_path: Path) -> etree._Element:
    """Decrypt with the RP's key, then verify the STS signature, both with the xmlsec1 command; the assertion."""
    (tmp_path / "rp.key").write_bytes(rp_key_pem)
    (tmp_path / "sts.crt").write_bytes(sts_cert_pem)
    (tmp_path / "token.xml").write_bytes(data)
    decrypted = _xmlsec1(
        "--decrypt", "--privkey-pem", "rp.key", "--output", "plain.xml", "token.xml", cwd=tmp_path
    )
    assert decrypted.returncode == 0, decrypted.stderr.decode()
    node = {
        TokenType.SAML20: "urn:oasis:names:tc:SAML:2.0:assertion:Assertion",
        TokenType.SAML11: "urn:oasis:names:tc:SAML:1.0:assertion:Assertion",
    }[token_type]
    verified = _xmlsec1("--verify", "--pubkey-cert-pem", "sts.crt", f"--id-attr:{ID_ATTRIBUTE[token_type]}", node,
                        "plain.xml", cwd=tmp_path)
    assert verified.returncode == 0, verified.stderr.decode()
    return etree.parse(str(tmp_path / "plain.xml")).getroot()


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


# --- holder-of-key: the acceptance test of issue 3 item 5 ----------------------------------------------------


@pytest.fixture(scope="module")
def sts_encryption_pems() -> tuple[bytes, bytes]:
    return generate_key_and_cert("sts-encryption.test")


def _rp_proof_key(token_xml: bytes, rp_key_pem: bytes, sts_cert_pem: bytes, token_type: TokenType) -> bytes:
    """What the relying party does: decrypt the token, verify it, decrypt the proof key from the signed part."""
    root = etree.fromstring(token_xml)
    encrypted = root if root.tag == f"{XENC}EncryptedData" else root[0]
    rp_key = load_private_key(rp_key_pem)
    assertion = decrypt_element(encrypted, rp_key)
    signed = _verify(etree.tostring(assertion), sts_cert_pem, token_type)
    method = {
        TokenType.SAML20: "urn:oasis:names:tc:SAML:2.0:cm:holder-of-key",
        TokenType.SAML11: "urn:oasis:names:tc:SAML:1.0:cm:holder-of-key",
    }[token_type]
    assert method.encode() in etree.tostring(signed)
    keys = {decrypt_key(k, rp_key) for k in signed.iter(f"{XENC}EncryptedKey")}
    assert len(keys) == 1
    return keys.pop()


@pytest.mark.parametrize("version", list(TrustVersion), ids=lambda v: v.name)
@pytest.mark.parametrize("encrypted_entropy", [False, True], ids=["clear-entropy", "encrypted-entropy"])
@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_relying_party_and_client_derive_the_same_key(
    token_type, encrypted_entropy, version, provider, content, sts_pems, rp_pems, sts_encryption_pems
) -> None:
    sts_encryption = SigningKey.from_pem(*sts_encryption_pems)
    factory = ProofKeyFactory(sts_encryption)
    rp = RelyingParty(endpoint="https://rp.test/", cert_pem=rp_pems[1])
    # The client: its own entropy, in clear or encrypted for the STS encryption certificate.
    client_entropy = os.urandom(32)
    if encrypted_entropy:
        sent = encrypt_key_for(load_certificate(sts_encryption_pems[1]), client_entropy)
        entropy = Entropy(encrypted_key=parse_encrypted_key(sent))
    else:
        entropy = Entropy(binary_secret=client_entropy)
    rst = RequestSecurityToken(
        version=version, request_type=RequestType.ISSUE, applies_to=rp.endpoint,
        key_type=KeyType.SYMMETRIC, entropy=entropy,
    )
    proof, response = factory.make(rst, rp, requester_cert=None, secure_channel=True)
    token = provider.issue(dataclasses.replace(content, proof_key=proof), rp, token_type)
    assert token.encrypted
    # The client reads the issuer's entropy and the algorithm from the RSTR parts and computes the key.
    parts = {etree.QName(p).localname: p for p in render_proof(version, response)}
    wst = version.ns
    assert parts["RequestedProofToken"].findtext(f"{{{wst}}}ComputedKey") == f"{wst}/CK/PSHA1"
    server_entropy = base64.b64decode(parts["Entropy"].findtext(f"{{{wst}}}BinarySecret"))
    key_size = int(parts["KeySize"].text)
    client_key = p_sha1(client_entropy, server_entropy, key_size // 8)
    # The relying party, with its private key only, gets exactly that key from the token.
    assert _rp_proof_key(token.xml, rp_pems[0], sts_pems[1], token_type) == client_key
    assert key_size == 256 and len(client_key) == 32


@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_hok_token_still_decrypts_and_verifies_with_xmlsec1(token_type, provider, content, sts_pems, rp_pems,
                                                           tmp_path) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", cert_pem=rp_pems[1])
    token = provider.issue(dataclasses.replace(content, proof_key=ProofKey(symmetric_key=b"k" * 32)), rp, token_type)
    plain = _xmlsec1_decrypt_and_verify(token.xml, token_type, rp_pems[0], sts_pems[1], tmp_path)
    # python-xmlsec, a second decryptor, opens the proof key's EncryptedKey too.
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(rp_pems[0], xmlsec.constants.KeyDataFormatPem))
    encrypted_key = next(plain.iter(f"{XENC}EncryptedKey"))
    assert xmlsec.EncryptionContext(manager).decrypt(encrypted_key) == b"k" * 32


@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_public_key_hok_token_needs_no_relying_party_certificate(token_type, provider, content, sts_pems,
                                                                rp_pems) -> None:
    requester = load_certificate(rp_pems[1])  # any RSA certificate will do as the requester's
    der = requester.public_bytes(serialization.Encoding.DER)
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False)
    token = provider.issue(dataclasses.replace(content, proof_key=ProofKey(certificate_der=der)), rp, token_type)
    signed = _verify(token.xml, sts_pems[1], token_type)
    certs = [base64.b64decode(c.text) for c in signed.iter(f"{DS}X509Certificate")
             if etree.QName(c.getparent().getparent().getparent()).localname != "Signature"]
    assert der in certs


def test_symmetric_hok_without_relying_party_certificate_is_refused(provider, content) -> None:
    rp = RelyingParty(endpoint="https://rp.test/", encrypt=False)
    with pytest.raises(BadRequest) as raised:
        provider.issue(dataclasses.replace(content, proof_key=ProofKey(symmetric_key=b"k" * 32)), rp,
                       TokenType.SAML20)
    assert raised.value.detail == "KeyType"


_UNENCRYPTED_KINDS = {
    "bearer": lambda rp_pems: None,
    "public-key": lambda rp_pems: ProofKey(certificate_der=load_certificate(rp_pems[1]).public_bytes(
        serialization.Encoding.DER)),
}


@pytest.mark.parametrize("kind", list(_UNENCRYPTED_KINDS))
@pytest.mark.parametrize("key", ["rsa", "ec"])
@pytest.mark.parametrize("token_type", list(TokenType), ids=lambda t: t.short)
def test_an_unencrypted_token_is_its_own_exclusive_canonical_form(token_type, key, kind, content, rp_pems) -> None:
    """The premise of sending the signed bytes as they are and hashing them without a parse: the assertion as
    written is exactly its exclusive c14n, so its hash is validators.token_hash's."""
    pems = generate_key_and_cert("sts.test", ec=key == "ec")
    signing = SigningKey.from_pem(*pems)
    algorithm = SignatureAlgorithm.ECDSA_SHA256 if key == "ec" else SignatureAlgorithm.RSA_SHA256
    issuer = SamlTokenProvider(XmlSigner(signing, algorithm), "https://sts.test/trust")
    proof = _UNENCRYPTED_KINDS[kind](rp_pems)
    token = issuer.issue(dataclasses.replace(content, proof_key=proof), RelyingParty(endpoint="https://rp.test/",
                                                                                     encrypt=False), token_type)
    assert etree.tostring(etree.fromstring(token.xml), method="c14n", exclusive=True) == token.xml
    assert token.token_hash == token_hash(token.element)
    _verify(token.xml, pems[1], token_type)
