"""The one token-verification path (``sts.tokens.verification``), seen from both of its users.

The relying party's ``TokenVerifier`` and the STS's ``TokenResolver`` (Validate/Renew/Cancel/ActAs by value) get
the same answers: one token per document, unique Ids, the signed element is the token itself, pinned
certificates, and the algorithm allow-list checked before any cryptography (code ``algorithm``).
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree

from assertion_content import make_content
from verifier_support import AUDIENCE, ISSUER, NOW, rejected, verifier
from sts import ns
from sts.model import Claim, TokenDetails, TokenRecord, TokenTarget
from sts.rp.verifier import TokenVerifier
from sts.store.database import Database, open_database
from sts.store.passwords import PasswordHasher, SecretBox
from sts.tokens import verification
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.tokens.saml import saml11, saml20
from sts.tokens.validators import TokenResolver, token_hash
from sts.tokens.verification import AlgorithmAllowList
from sts.uris import DataEncryption, DigestAlgorithm, KeyTransport, SignatureAlgorithm, TokenType

GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SAML2 = f"{{{ns.SAML2}}}"
DS = f"{{{ns.DS}}}"
WST = f"{{{ns.WST13}}}"


@pytest.fixture(scope="module")
def sts_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts"))


@pytest.fixture(scope="module")
def attacker_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts"))  # same subject name, another key


@pytest.fixture(scope="module")
def rp_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("rp"))


def signed20(key: SigningKey, subject: str = "alice", *, algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256,
             digest: DigestAlgorithm = DigestAlgorithm.SHA256, **changes: object) -> etree._Element:
    fields: dict[str, object] = dict(assertion_id=random_id(), issuer=ISSUER, subject_name=subject, audience=AUDIENCE,
                                     claims=(Claim(GIVENNAME, ("Alice",)),))
    content = make_content(now=NOW, **{**fields, **changes})
    assertion = saml20.build_assertion(content)
    XmlSigner(key, algorithm, digest).sign(assertion, content.assertion_id, after=saml20.issuer_of(assertion))
    return assertion


def signed11(key: SigningKey) -> etree._Element:
    content = make_content(now=NOW, assertion_id=random_id(), issuer=ISSUER, audience=AUDIENCE)
    assertion = saml11.build_assertion(content)
    XmlSigner(key).sign(assertion, content.assertion_id)
    return assertion


def unsigned(key: SigningKey, subject: str = "mallory") -> etree._Element:
    evil = signed20(key, subject)
    evil.remove(evil.find(f"{DS}Signature"))
    return evil


def rstr(*tokens: etree._Element) -> etree._Element:
    response = etree.Element(f"{WST}RequestSecurityTokenResponse")
    etree.SubElement(response, f"{WST}RequestedSecurityToken").extend(copy.deepcopy(t) for t in tokens)
    return response


# --- the allow-list --------------------------------------------------------------------------------------------------


def test_the_default_allow_list_is_sha256_gcm_oaep_and_lists_no_legacy() -> None:
    default = AlgorithmAllowList()
    assert default.signature_methods == {SignatureAlgorithm.RSA_SHA256, SignatureAlgorithm.ECDSA_SHA256}
    assert default.digest_methods == {DigestAlgorithm.SHA256}
    assert default.data_encryption == {DataEncryption.AES256_GCM, DataEncryption.AES128_GCM}
    assert default.key_transport == {KeyTransport.RSA_OAEP_MGF1P}
    assert default.legacy() == ()


def test_allowing_by_short_name_or_uri_and_legacy_reports_them() -> None:
    wider = AlgorithmAllowList().allowing("AES256-CBC", KeyTransport.RSA_1_5.value, "rsa-sha1")
    assert DataEncryption.AES256_CBC in wider.data_encryption and KeyTransport.RSA_1_5 in wider.key_transport
    assert DigestAlgorithm.SHA1 in wider.digest_methods  # rsa-sha1 brings the digests the STS pairs with it
    assert wider.legacy() == ("aes256-cbc", "rsa-1_5", "rsa-sha1", "sha1")
    assert AlgorithmAllowList().legacy() == ()  # frozen: the original is unchanged
    with pytest.raises(ValueError, match="unknown algorithm 'des'"):
        AlgorithmAllowList().allowing("des")


def test_a_refused_algorithm_is_code_algorithm_before_any_crypto(sts_key) -> None:
    # A garbage SignatureValue would fail the signature check: "algorithm" proves it was never computed.
    token = signed20(sts_key, algorithm=SignatureAlgorithm.RSA_SHA1, digest=DigestAlgorithm.SHA1)
    token.find(f".//{DS}SignatureValue").text = "AAAA"
    problem = rejected(verifier(sts_key), token)
    assert problem.code == "algorithm" and "rsa-sha1" in problem.reason
    for uri in ("http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "urn:nonsense"):
        token = signed20(sts_key)
        token.find(f".//{DS}SignatureMethod").set("Algorithm", uri)
        assert rejected(verifier(sts_key), token).code == "algorithm"
    token = signed20(sts_key)
    token.find(f".//{DS}DigestMethod").set("Algorithm", DigestAlgorithm.SHA1.value)
    assert rejected(verifier(sts_key), token).code == "algorithm"


def test_sha1_only_where_configured_and_each_use_is_logged(sts_key, caplog, monkeypatch) -> None:
    token = signed20(sts_key, algorithm=SignatureAlgorithm.RSA_SHA1, digest=DigestAlgorithm.SHA1)
    assert rejected(verifier(sts_key), token).code == "algorithm"
    monkeypatch.setattr(verification, "_legacy_logged", {})
    with caplog.at_level(logging.WARNING, logger="sts.tokens.verification"):
        by_list = verifier(sts_key, algorithms=AlgorithmAllowList().allowing("rsa-sha1")).verify(token)
        by_flag = verifier(sts_key, allow_sha1=True).verify(token)  # the shorthand still works
    assert by_list.subject == by_flag.subject == "alice"
    logged = [r.getMessage() for r in caplog.records if "legacy algorithm" in r.getMessage()]
    assert any("rsa-sha1" in m for m in logged) and any("sha1 " in m for m in logged)
    assert len(logged) == 2  # rate-limited: the second use within the interval logs nothing more


# --- encrypted tokens: the algorithms are checked before the key is touched ------------------------------------------


@pytest.mark.parametrize(("data", "transport", "name"), [
    (DataEncryption.AES256_GCM, KeyTransport.RSA_1_5, "rsa-1_5"),  # Bleichenbacher's oracle
    (DataEncryption.AES256_CBC, KeyTransport.RSA_OAEP_MGF1P, "aes256-cbc"),  # Jager-Somorovsky downgrade
    (DataEncryption.AES128_CBC, KeyTransport.RSA_OAEP_MGF1P, "aes128-cbc"),
])
def test_legacy_encryption_is_refused_without_decrypting(sts_key, rp_key, data, transport, name) -> None:
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate, data=data, key_transport=transport)
    v = verifier(sts_key, rp_private_key=rp_key.private_key)
    problem = rejected(v, encrypted)
    assert problem.code == "algorithm" and name in problem.reason
    # The key's cipher value made garbage: still "algorithm", so no RSA or AES operation ran (no oracle).
    broken = copy.deepcopy(encrypted)
    next(broken.iter(f"{{{ns.XENC}}}CipherValue")).text = "AAAA"
    assert rejected(v, broken).code == "algorithm"
    # Without a key configured at all: the same answer (the algorithm is what is refused).
    assert rejected(verifier(sts_key), encrypted).code == "algorithm"
    allowed = verifier(sts_key, rp_private_key=rp_key.private_key, algorithms=AlgorithmAllowList().allowing(name))
    assert allowed.verify(encrypted).subject == "alice"


def test_an_oaep_digest_other_than_sha1_is_refused(sts_key, rp_key) -> None:
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate)
    encrypted.find(f".//{{{ns.XENC}}}EncryptedKey/{{{ns.XENC}}}EncryptionMethod/{DS}DigestMethod").set(
        "Algorithm", DigestAlgorithm.SHA256.value)
    assert rejected(verifier(sts_key, rp_private_key=rp_key.private_key), encrypted).code == "algorithm"


def test_the_default_encrypted_token_verifies(sts_key, rp_key) -> None:
    for data in (DataEncryption.AES256_GCM, DataEncryption.AES128_GCM):
        encrypted = encrypt_element(signed20(sts_key), rp_key.certificate, data=data)
        assert verifier(sts_key, rp_private_key=rp_key.private_key).verify(rstr(encrypted)).subject == "alice"


# --- one token per document, unique Ids --------------------------------------------------------------------------


def test_a_second_unsigned_assertion_anywhere_is_refused(sts_key) -> None:
    good, evil = signed20(sts_key), unsigned(sts_key)
    assert verifier(sts_key).verify(rstr(good)).subject == "alice"
    beside = rstr(good, evil)
    problem = rejected(verifier(sts_key), beside)
    assert problem.code == "signature" and "more than one token" in problem.reason
    elsewhere = rstr(good)
    etree.SubElement(elsewhere, f"{WST}RequestedAttachedReference").append(copy.deepcopy(evil))
    assert rejected(verifier(sts_key), elsewhere).code == "signature"
    in_advice = signed20(sts_key)  # an unsigned assertion inside the signed one's Advice (signed over, still refused)
    advice_holder = saml20.build_assertion(make_content(now=NOW, assertion_id=random_id(), issuer=ISSUER,
                                                        audience=AUDIENCE))
    advice = etree.Element(f"{SAML2}Advice")
    advice.append(copy.deepcopy(evil))
    advice_holder.find(f"{SAML2}Conditions").addnext(advice)
    XmlSigner(sts_key).sign(advice_holder, advice_holder.get("ID"), after=saml20.issuer_of(advice_holder))
    assert rejected(verifier(sts_key), advice_holder).code == "signature"
    assert verifier(sts_key).verify(in_advice).subject == "alice"  # a valid token right after
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope")
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Header").append(copy.deepcopy(evil))
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body").append(rstr(good))
    assert rejected(verifier(sts_key), envelope).code == "signature"


def test_a_saml11_extra_assertion_and_an_encrypted_one_count_too(sts_key, rp_key) -> None:
    good = signed20(sts_key)
    assert rejected(verifier(sts_key), rstr(good, signed11(sts_key))).code == "signature"
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate)
    v = verifier(sts_key, rp_private_key=rp_key.private_key)
    assert rejected(v, rstr(encrypted, good)).code == "signature"
    assert v.verify(rstr(encrypted)).subject == "alice"


def test_duplicate_ids_anywhere_in_the_document_are_refused(sts_key) -> None:
    good = signed20(sts_key)
    response = rstr(good)
    etree.SubElement(response, f"{WST}Context", ID=good.get("ID"))  # not a token: an Id collision all the same
    problem = rejected(verifier(sts_key), response)
    assert problem.code == "signature" and "duplicate Id" in problem.reason


# --- the signed element is the token itself ------------------------------------------------------------------------


def test_a_wrapper_assertion_around_the_signed_one_is_refused(sts_key) -> None:
    good = signed20(sts_key)
    wrapper = unsigned(sts_key)
    wrapper.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))  # Signature naming the inner one's ID
    wrapper.append(good)
    assert rejected(verifier(sts_key), wrapper).code == "signature"


def test_only_the_pinned_certificate_counts(sts_key, attacker_key) -> None:
    forged = signed20(attacker_key)  # its own certificate in KeyInfo
    assert rejected(verifier(sts_key), forged).code == "signature"
    assert verifier(attacker_key).verify(forged).subject == "alice"


def test_comment_in_nameid_the_subject_is_the_whole_signed_value(sts_key) -> None:
    token = etree.tostring(signed20(sts_key, "alice@x.com.evil.com"))
    injected = token.replace(b">alice@x.com.evil.com<", b">alice@x.com<!---->.evil.com<")
    assert injected != token
    assert verifier(sts_key).verify(injected).subject == "alice@x.com.evil.com"


def test_processing_instruction_in_nameid_is_a_clean_malformed_rejection(sts_key) -> None:
    """The parser refuses processing instructions (the bytes verified must be the bytes received)."""
    token = etree.tostring(signed20(sts_key, "alice@x.com.evil.com"))
    injected = token.replace(b">alice@x.com.evil.com<", b">alice@x.com<?evil?>.evil.com<")
    problem = rejected(verifier(sts_key), injected)
    assert problem.code == "malformed" and "processing instruction" in problem.reason
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope")
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body").append(rstr(signed20(sts_key)))
    assert rejected(verifier(sts_key), b"<?xml-stylesheet href='x'?>" + etree.tostring(envelope)).code == "malformed"
    assert verifier(sts_key).verify(envelope).subject == "alice"


# --- issuer: from --issuer or the STS metadata ------------------------------------------------------------------------


def test_the_issuer_comes_from_the_federation_metadata(sts_key) -> None:
    from sts.web.metadata.federation import build_entity_descriptor

    document = etree.tostring(build_entity_descriptor("https://sts.example", ISSUER, sts_key.cert_b64,
                                                      descriptor_id="_md"))
    v = TokenVerifier.from_federation_metadata(document, audience=AUDIENCE, clock=lambda: NOW)
    assert v.expected_issuer == ISSUER
    assert v.verify(signed20(sts_key)).issuer == ISSUER
    problem = rejected(v, signed20(sts_key, issuer="https://other-sts.example/"))
    assert problem.code == "issuer" and ISSUER in problem.reason
    explicit = TokenVerifier.from_federation_metadata(document, audience=AUDIENCE, clock=lambda: NOW,
                                                      issuer="https://other-sts.example/")
    assert explicit.verify(signed20(sts_key, issuer="https://other-sts.example/")).subject == "alice"


# --- the STS's side: TokenResolver over a real SQLite store ----------------------------------------------------------


@pytest.fixture
def db(tmp_path: Path) -> Iterator[Database]:
    database = open_database(f"sqlite:///{tmp_path / 'sts.db'}", hasher=PasswordHasher(n=2**4),
                             secret_box=SecretBox(bytes(range(32))))
    yield database
    database.close()


def _record(db: Database, token: etree._Element, algorithm: SignatureAlgorithm | None = None) -> None:
    details = TokenDetails(signature_algorithm=algorithm.value if algorithm else None)
    token_id = token.get("ID") or token.get("AssertionID") or random_id()
    db.tokens.put(TokenRecord(token_id, TokenType.SAML20, "alice", AUDIENCE, NOW, NOW + timedelta(hours=1),
                              token_hash=token_hash(token), requester="alice", details=details))


def _request(*targets: etree._Element) -> list[etree._Element]:
    """A SOAP request, one RST per target (a batch when several); the targets as parsed with it."""
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope")
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Header")
    body = etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body")
    holder = etree.SubElement(body, f"{WST}RequestSecurityTokenCollection") if len(targets) > 1 else body
    for target in targets:
        rst = etree.SubElement(holder, f"{WST}RequestSecurityToken")
        etree.SubElement(rst, f"{WST}ValidateTarget").append(copy.deepcopy(target))
    parsed = etree.fromstring(etree.tostring(envelope))
    return [t[0] for t in parsed.iter(f"{WST}ValidateTarget")]


def test_resolver_finds_the_genuine_token_and_a_batch(db, sts_key) -> None:
    resolver = TokenResolver(db.tokens, [sts_key.certificate])
    first, second = signed20(sts_key), signed20(sts_key)
    _record(db, first)
    _record(db, second)
    (target,) = _request(first)
    assert resolver.resolve(TokenTarget(unverified_token=target)).record is not None
    for element in _request(first, second):  # one token per RST: a batch validates each
        resolution = resolver.resolve(TokenTarget(unverified_token=element))
        assert resolution.record is not None and resolution.record.token_id == element.get("ID")


def test_resolver_refuses_a_wrapped_token(db, sts_key) -> None:
    """The issue's finding: an attacker-chosen Assertion around the genuine signed one was answered valid."""
    resolver = TokenResolver(db.tokens, [sts_key.certificate])
    good = signed20(sts_key)
    _record(db, good)
    wrapper = unsigned(sts_key)
    wrapper.append(copy.deepcopy(good))
    (target,) = _request(wrapper)
    resolution = resolver.resolve(TokenTarget(unverified_token=target))
    assert resolution.record is None and "more than one token" in (resolution.problem or "")
    # The genuine signature moved up to the wrapper, naming the inner ID: not the wrapper's signature.
    wrapper = unsigned(sts_key)
    wrapper.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))
    (target,) = _request(wrapper)
    assert _problem(resolver, target) == "the token is not signed by this STS or was altered"
    # The wrapper given the genuine ID (and the genuine one inside): a duplicate Id.
    wrapper.set("ID", good.get("ID"))
    wrapper.append(copy.deepcopy(good))
    (target,) = _request(wrapper)
    assert "duplicate Id" in _problem(resolver, target)
    (target,) = _request(good)
    assert resolver.resolve(TokenTarget(unverified_token=target)).record is not None  # still fine right after


def test_resolver_refuses_an_extra_token_in_the_same_rst(db, sts_key) -> None:
    resolver = TokenResolver(db.tokens, [sts_key.certificate])
    good = signed20(sts_key)
    _record(db, good)
    (target,) = _request(good)
    target.getparent().getparent().append(unsigned(sts_key))  # beside the target, in the RST
    assert "more than one token" in _problem(resolver, target)


def test_resolver_algorithms_follow_what_the_token_was_issued_with(db, sts_key, attacker_key) -> None:
    resolver = TokenResolver(db.tokens, [sts_key.certificate])
    legacy = signed20(sts_key, algorithm=SignatureAlgorithm.RSA_SHA1, digest=DigestAlgorithm.SHA1)
    _record(db, legacy, SignatureAlgorithm.RSA_SHA1)  # issued for a relying party configured with rsa-sha1
    (target,) = _request(legacy)
    assert resolver.resolve(TokenTarget(unverified_token=target)).record is not None
    # The same SHA-1 signature on a token recorded as RSA-SHA256: refused before it is checked.
    modern = signed20(sts_key, algorithm=SignatureAlgorithm.RSA_SHA1, digest=DigestAlgorithm.SHA1)
    _record(db, modern, SignatureAlgorithm.RSA_SHA256)
    (target,) = _request(modern)
    assert "rsa-sha1" in _problem(resolver, target) and "not allowed" in _problem(resolver, target)
    # A forged token of another key, on a recorded id: not signed by this STS.
    forged = signed20(attacker_key, assertion_id=legacy.get("ID"))
    (target,) = _request(forged)
    assert _problem(resolver, target) == "the token is not signed by this STS or was altered"


def test_resolver_recognises_an_encrypted_token_by_hash_alone_in_its_rst(db, sts_key, rp_key) -> None:
    resolver = TokenResolver(db.tokens, [sts_key.certificate])
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate)
    _record(db, encrypted)
    (target,) = _request(encrypted)
    assert resolver.resolve(TokenTarget(unverified_token=target)).record is not None
    target.getparent().getparent().append(signed20(sts_key))
    assert "more than one token" in _problem(resolver, target)


def _problem(resolver: TokenResolver, target: etree._Element) -> str:
    resolution = resolver.resolve(TokenTarget(unverified_token=target))
    assert resolution.record is None
    return resolution.problem or ""


def test_the_certificate_keyinfo_names_is_tried_first_and_nothing_else_is_added(sts_key, attacker_key,
                                                                                 monkeypatch) -> None:
    """During a rollover two certificates are pinned: the one KeyInfo names is tried first (one verification, not
    two); KeyInfo never makes an unpinned certificate trusted."""
    calls: list[bytes] = []
    real = verification.verify_signature_value

    def counting(key: Any, *args: Any, **kwargs: Any) -> None:
        calls.append(spki(key))
        real(key, *args, **kwargs)

    def spki(key: Any) -> bytes:
        return key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)

    monkeypatch.setattr(verification, "verify_signature_value", counting)
    assertion = signed20(sts_key)
    pinned = [attacker_key.certificate, sts_key.certificate]
    signed = verification.verify_assertion(assertion, pinned, AlgorithmAllowList())
    assert signed.get("ID") == assertion.get("ID") and calls == [spki(sts_key.certificate.public_key())]
    calls.clear()
    with pytest.raises(verification.TokenRejected) as info:
        verification.verify_assertion(signed20(attacker_key), [sts_key.certificate], AlgorithmAllowList())
    assert info.value.code == "signature" and calls == [spki(sts_key.certificate.public_key())]
