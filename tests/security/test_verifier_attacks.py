"""Hostile tokens against the relying party's verifier: each is rejected with its reason (``TokenRejected.code``).

Tokens are built and signed by the STS's own builders (saml20/saml11 + XmlSigner) with a fixed clock, then altered.
After every case the genuine token still verifies (``_genuine_still_verifies``): a rejection leaves nothing
behind (no replay entry, no cached state) that would refuse the real one.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from datetime import timedelta

import pytest
from lxml import etree

from assertion_content import make_content
from verifier_support import AUDIENCE, ISSUER, NOW, rejected, verifier
from sts import ns
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.model import AssertionContent, Claim
from sts.tokens.crypto.encryption import encrypt_element
from sts.tokens.saml import saml11, saml20
from sts.tokens.verification import AlgorithmAllowList
from sts.uris import DataEncryption, DigestAlgorithm, KeyTransport, SignatureAlgorithm
from sts.rp.verifier import InMemoryReplayCache, TokenRejected, TokenVerifier

GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SAML2 = f"{{{ns.SAML2}}}"
#: A second token in the document (XSW, the crewjam/saml and samlify CVEs) or a duplicate Id.
EXTRA_TOKEN = "signature"
DS = f"{{{ns.DS}}}"


@pytest.fixture(scope="module")
def sts_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts"))


@pytest.fixture(scope="module")
def attacker_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts"))  # same subject name, different key


def content(subject: str = "alice", **changes: object) -> AssertionContent:
    fields: dict[str, object] = dict(
        assertion_id=random_id(), issuer=ISSUER, subject_name=subject, audience=AUDIENCE,
        claims=(Claim(GIVENNAME, ("Alice",)),),
    )
    return make_content(now=NOW, **{**fields, **changes})


def signed20(key: SigningKey, subject: str = "alice", **changes: object) -> etree._Element:
    c = content(subject, **changes)
    assertion = saml20.build_assertion(c)
    XmlSigner(key).sign(assertion, c.assertion_id, after=saml20.issuer_of(assertion))
    return assertion


def signed11(key: SigningKey, **changes: object) -> etree._Element:
    c = content(**changes)
    assertion = saml11.build_assertion(c)
    XmlSigner(key).sign(assertion, c.assertion_id)
    return assertion


@pytest.fixture(autouse=True)
def _genuine_still_verifies(sts_key: SigningKey) -> Iterator[None]:
    yield
    assert verifier(sts_key).verify(etree.tostring(signed20(sts_key))).subject == "alice"


def test_the_untouched_tokens_verify(sts_key) -> None:
    for token in (signed20(sts_key), signed11(sts_key)):
        verified = verifier(sts_key).verify(etree.tostring(token))
        assert verified.subject == "alice" and verified.claims[GIVENNAME] == ("Alice",)


# --- signature wrapping -------------------------------------------------------------------------------------------


def _evil(sts_key: SigningKey, subject: str = "mallory") -> etree._Element:
    evil = copy.deepcopy(signed20(sts_key, subject))
    evil.remove(evil.find(f"{DS}Signature"))
    return evil


@pytest.mark.parametrize("signed_first", [False, True], ids=["unsigned-first", "signed-first"])
def test_xsw_second_unsigned_assertion_beside_the_signed_one(sts_key, signed_first: bool) -> None:
    """Even when the signed one comes first (what the verifier reads), an application that reads "the
    assertion" could read the other: a document holds one token (the crewjam/saml and samlify CVEs)."""
    good, evil = signed20(sts_key), _evil(sts_key)
    rstr = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenResponse")
    requested = etree.SubElement(rstr, f"{{{ns.WST13}}}RequestedSecurityToken")
    requested.extend([good, evil] if signed_first else [evil, good])
    assert rejected(verifier(sts_key), etree.tostring(rstr)).code == EXTRA_TOKEN


def test_xsw_signed_assertion_moved_into_advice_under_an_evil_root(sts_key) -> None:
    good, evil = signed20(sts_key), _evil(sts_key)
    advice = etree.SubElement(evil, f"{SAML2}Advice")
    advice.append(good)
    assert rejected(verifier(sts_key), etree.tostring(evil)).code == EXTRA_TOKEN
    # ... with the signature copied up to the evil root, pointing at the inner one's ID.
    evil.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))
    assert rejected(verifier(sts_key), etree.tostring(evil)).code == "signature"


def test_xsw_signed_assertion_in_extensions_evil_root_with_duplicate_id(sts_key) -> None:
    good = signed20(sts_key)
    evil = _evil(sts_key)
    evil.set("ID", good.get("ID"))
    evil.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))
    extensions = etree.SubElement(evil, f"{SAML2}Advice")
    extensions.append(good)
    problem = rejected(verifier(sts_key), etree.tostring(evil))
    assert problem.code == "signature" and "duplicate Id" in problem.reason


def test_xsw_evil_root_with_same_id_and_signature(sts_key) -> None:
    """The signed content replaced, the ID and Signature kept: the digest no longer matches."""
    good = signed20(sts_key)
    evil = _evil(sts_key)
    evil.set("ID", good.get("ID"))
    evil.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))
    assert rejected(verifier(sts_key), etree.tostring(evil)).code == "signature"


# --- comment injection, attacker keys, tampering ------------------------------------------------------------------


def test_comment_injected_into_nameid_never_truncates(sts_key) -> None:
    token = etree.tostring(signed20(sts_key, "alice.evil.example"))
    injected = token.replace(b">alice.evil.example<", b">alice<!---->.evil.example<")
    assert injected != token
    verified = verifier(sts_key).verify(injected)
    assert verified.subject == "alice.evil.example"  # what was signed, whole


def test_attacker_signed_copy_with_its_own_certificate_in_keyinfo(sts_key, attacker_key) -> None:
    forged = signed20(attacker_key)
    assert forged.findtext(f".//{DS}X509Certificate") == attacker_key.cert_b64
    problem = rejected(verifier(sts_key), etree.tostring(forged))
    assert problem.code == "signature"
    forged11 = signed11(attacker_key)
    assert rejected(verifier(sts_key), etree.tostring(forged11)).code == "signature"


def test_signature_stripped(sts_key) -> None:
    token = signed20(sts_key)
    token.remove(token.find(f"{DS}Signature"))
    assert rejected(verifier(sts_key), token).code == "unsigned"


def test_digest_value_altered(sts_key) -> None:
    token = signed20(sts_key)
    digest = token.find(f".//{DS}DigestValue")
    digest.text = ("A" if digest.text[0] != "A" else "B") + digest.text[1:]
    assert rejected(verifier(sts_key), token).code == "signature"


def test_content_altered_after_signing(sts_key) -> None:
    token = signed20(sts_key)
    token.find(f".//{SAML2}AttributeValue").text = "Mallory"
    assert rejected(verifier(sts_key), token).code == "signature"


@pytest.mark.parametrize("algorithm", [
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
])
def test_signature_method_changed(sts_key, algorithm) -> None:
    token = signed20(sts_key)
    token.find(f".//{DS}SignatureMethod").set("Algorithm", algorithm)
    problem = rejected(verifier(sts_key), token)
    assert problem.code == "algorithm"  # refused before any cryptography


def test_allowing_sha1_allows_no_other_method(sts_key) -> None:
    token = signed20(sts_key)
    token.find(f".//{DS}SignatureMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512")
    assert rejected(verifier(sts_key, allow_sha1=True), token).code == "algorithm"


@pytest.mark.parametrize("mutate", [
    lambda t: t.find(f".//{DS}Transform").set("Algorithm", "http://www.w3.org/2001/10/xml-exc-c14n#WithComments"),
    lambda t: t.find(f".//{DS}CanonicalizationMethod").set("Algorithm", "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"),
    lambda t: t.find(f".//{DS}Reference").set("URI", ""),
    lambda t: t.find(f".//{DS}SignedInfo").append(copy.deepcopy(t.find(f".//{DS}Reference"))),
])
def test_signature_shape_outside_the_saml_profile(sts_key, mutate: Callable[[etree._Element], None]) -> None:
    token = signed20(sts_key)
    mutate(token)
    assert rejected(verifier(sts_key), token).code == "signature"


# --- conditions ---------------------------------------------------------------------------------------------------


def test_expired(sts_key) -> None:
    token = signed20(sts_key, not_before=NOW - timedelta(hours=2), not_on_or_after=NOW - timedelta(minutes=6))
    assert rejected(verifier(sts_key), token).code == "expired"
    # within the skew it still passes
    token = signed20(sts_key, not_before=NOW - timedelta(hours=2), not_on_or_after=NOW - timedelta(minutes=4))
    assert verifier(sts_key).verify(token).subject == "alice"


def test_not_yet_valid(sts_key) -> None:
    token = signed20(sts_key, not_before=NOW + timedelta(minutes=6), not_on_or_after=NOW + timedelta(hours=1))
    assert rejected(verifier(sts_key), token).code == "not-yet-valid"


def test_wrong_audience(sts_key) -> None:
    token = signed20(sts_key, audience="https://other.example/")
    problem = rejected(verifier(sts_key), token)
    assert problem.code == "audience" and "other.example" in problem.reason


def test_wrong_issuer(sts_key) -> None:
    token = signed20(sts_key, issuer="https://evil-sts.example/")
    assert rejected(verifier(sts_key), token).code == "issuer"


def test_missing_required_claim(sts_key) -> None:
    token = signed20(sts_key)
    dob = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/dateofbirth"
    problem = rejected(verifier(sts_key, required_claims=(GIVENNAME, dob)), token)
    assert problem.code == "claim-missing" and dob in problem.reason


def test_saml11_conditions(sts_key) -> None:
    assert rejected(verifier(sts_key), signed11(sts_key, audience="https://other.example/")).code == "audience"
    expired = signed11(sts_key, not_before=NOW - timedelta(hours=2), not_on_or_after=NOW - timedelta(hours=1))
    assert rejected(verifier(sts_key), expired).code == "expired"


def test_replayed_assertion(sts_key) -> None:
    v = verifier(sts_key, replay_cache=InMemoryReplayCache(clock=lambda: NOW))
    token = etree.tostring(signed20(sts_key))
    v.verify(token)
    assert rejected(v, token).code == "replay"
    # A rejected token does not use up its ID: replay is checked last.
    other = signed20(sts_key, audience="https://other.example/")
    assert rejected(v, other).code == "audience"
    assert v.verify(signed20(sts_key, assertion_id=other.get("ID"))).token_id == other.get("ID")


# --- malformed input -----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("data", [
    b"", b"not xml", b"<Assertion", b"<a><b></a>", b"\x00\xff\xfe", b"<x/>",
    b'<Assertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>',
    b'<EncryptedAssertion xmlns="urn:oasis:names:tc:SAML:2.0:assertion"/>',
    b'<RequestSecurityTokenResponse xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512"/>',
    b'<RequestedSecurityToken xmlns="http://docs.oasis-open.org/ws-sx/ws-trust/200512"/>',
    b"<a>" * 200 + b"</a>" * 200,
])
def test_malformed_xml(sts_key, data: bytes) -> None:
    assert rejected(verifier(sts_key), data).code in ("malformed", "unsigned")


def test_doctype_refused(sts_key) -> None:
    token = etree.tostring(signed20(sts_key))
    doc = b'<?xml version="1.0"?>\n<!DOCTYPE Assertion [<!ENTITY x "alice">]>\n' + token
    assert rejected(verifier(sts_key), doc).code == "malformed"


def test_garbage_inside_a_signed_shape_never_crashes(sts_key) -> None:
    token = signed20(sts_key)
    token.find(f".//{DS}SignatureValue").text = "***not base64***"
    assert rejected(verifier(sts_key), token).code == "signature"
    token = signed20(sts_key)
    token.find(f".//{DS}DigestMethod").set("Algorithm", "urn:nonsense")
    assert rejected(verifier(sts_key), token).code == "algorithm"
    token = signed20(sts_key)
    token.find(f"{SAML2}Conditions").set("NotOnOrAfter", "tomorrow")
    assert rejected(verifier(sts_key), token).code == "signature"


def test_encrypted_garbage_is_a_decryption_failure(sts_key) -> None:
    from sts.tokens.crypto.encryption import encrypt_element

    rp_pem, rp_cert_pem = generate_key_and_cert("rp")
    rp = SigningKey.from_pem(rp_pem, rp_cert_pem)
    other = SigningKey.from_pem(*generate_key_and_cert("other"))
    encrypted = encrypt_element(signed20(sts_key), rp.certificate)
    v = TokenVerifier([sts_key.certificate], rp_private_key=other.private_key, audience=AUDIENCE, clock=lambda: NOW)
    assert rejected(v, encrypted).code == "decryption"
    good = TokenVerifier([sts_key.certificate], rp_private_key=rp.private_key, audience=AUDIENCE, clock=lambda: NOW)
    assert good.verify(encrypted).subject == "alice"
    encrypted.find(f".//{{{ns.XENC}}}CipherValue").text = "AAAA"
    assert rejected(good, encrypted).code == "decryption"


# --- more of the XSW family --------------------------------------------------------------------------------------


def _rstr(*tokens: etree._Element) -> etree._Element:
    rstr = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenResponse")
    etree.SubElement(rstr, f"{{{ns.WST13}}}RequestedSecurityToken").extend(tokens)
    return rstr


def test_xsw_signed_assertion_in_the_evil_signatures_object(sts_key) -> None:
    good, evil = signed20(sts_key), _evil(sts_key)
    evil.set("ID", good.get("ID"))
    signature = copy.deepcopy(good.find(f"{DS}Signature"))
    etree.SubElement(signature, f"{DS}Object").append(good)
    evil.insert(1, signature)
    assert rejected(verifier(sts_key), etree.tostring(evil)).code == "signature"


def test_xsw_signed_assertion_in_samlp_extensions_of_an_evil_response(sts_key) -> None:
    protocol = "urn:oasis:names:tc:SAML:2.0:protocol"
    response = etree.Element(f"{{{protocol}}}Response")
    etree.SubElement(response, f"{{{protocol}}}Extensions").append(signed20(sts_key))
    response.append(_evil(sts_key))
    assert rejected(verifier(sts_key), etree.tostring(response)).code in ("signature", "malformed")


def test_xsw_signed_assertion_as_a_sibling_under_an_attacker_root(sts_key) -> None:
    root = etree.Element("{urn:attack}Envelope")
    root.extend([_evil(sts_key), signed20(sts_key)])
    assert rejected(verifier(sts_key), etree.tostring(root)).code in ("signature", "malformed")


def test_xsw_signed_assertion_moved_elsewhere_in_the_rstr(sts_key) -> None:
    """The evil assertion is the token, carrying the genuine Signature; the genuine assertion is moved into
    RequestedAttachedReference, where a lax Id lookup would find it."""
    good, evil = signed20(sts_key), _evil(sts_key)
    evil.insert(1, copy.deepcopy(good.find(f"{DS}Signature")))
    rstr = _rstr(evil)
    etree.SubElement(rstr, f"{{{ns.WST13}}}RequestedAttachedReference").append(good)
    assert rejected(verifier(sts_key), etree.tostring(rstr)).code == "signature"


def test_xsw_reference_re_pointed_at_another_element(sts_key) -> None:
    token = signed20(sts_key)
    subject = token.find(f"{SAML2}Subject")
    subject.set("ID", "_subject")
    token.find(f".//{DS}Reference").set("URI", "#_subject")
    assert rejected(verifier(sts_key), token).code == "signature"


def test_xsw_evil_assertion_in_the_soap_header_beside_the_token(sts_key) -> None:
    envelope = etree.Element(f"{{{ns.SOAP12}}}Envelope")
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Header").append(_evil(sts_key))
    etree.SubElement(envelope, f"{{{ns.SOAP12}}}Body").append(_rstr(signed20(sts_key)))
    assert rejected(verifier(sts_key), etree.tostring(envelope)).code == EXTRA_TOKEN


def test_duplicate_ids_in_the_document(sts_key) -> None:
    good = signed20(sts_key)
    rstr = _rstr(good)
    etree.SubElement(rstr, "{urn:attack}Decoy", ID=good.get("ID"))
    assert rejected(verifier(sts_key), etree.tostring(rstr)).code in ("signature", "malformed")


def test_duplicate_ids_inside_the_assertion(sts_key) -> None:
    good = signed20(sts_key)
    good.find(f"{SAML2}Subject").set("ID", good.get("ID"))
    assert rejected(verifier(sts_key), etree.tostring(good)).code in ("signature", "malformed")


# --- processing instructions, key and algorithm confusion, encryption downgrades ----------------------------------


@pytest.mark.parametrize("where", [b">alice<", b">Alice<"], ids=["nameid", "attribute-value"])
def test_processing_instruction_injected(sts_key, where: bytes) -> None:
    """A parser that drops PIs verifies other bytes than it received: a PI anywhere is malformed."""
    token = etree.tostring(signed20(sts_key))
    assert where in token
    injected = token.replace(where, where[:2] + b"<?evil x?>" + where[2:], 1)
    assert rejected(verifier(sts_key), injected).code == "malformed"


def test_attacker_signed_naming_the_sts_certificate_in_keyinfo(sts_key, attacker_key) -> None:
    forged = signed20(attacker_key)
    forged.find(f".//{DS}X509Certificate").text = sts_key.cert_b64
    assert rejected(verifier(sts_key), etree.tostring(forged)).code == "signature"


def test_genuine_token_with_keyinfo_naming_the_attacker(sts_key, attacker_key) -> None:
    """KeyInfo is a hint outside SignedInfo: the pinned certificate decides, so the genuine content verifies
    (an attacker gains nothing) or it is refused; never read as the attacker's."""
    token = signed20(sts_key)
    token.find(f".//{DS}X509Certificate").text = attacker_key.cert_b64
    try:
        assert verifier(sts_key).verify(etree.tostring(token)).subject == "alice"
    except TokenRejected as problem:
        assert problem.code == "signature"
    assert rejected(verifier(attacker_key), etree.tostring(token)).code == "signature"


def _hmac_signed(sts_key: SigningKey, key_bytes: bytes, method: str, digest_name: str) -> etree._Element:
    """The genuine token re-signed with HMAC keyed by the STS's PUBLIC certificate (algorithm confusion)."""
    import base64
    import hashlib
    import hmac

    token = signed20(sts_key, "mallory")
    signed_info = token.find(f".//{DS}SignedInfo")
    signed_info.find(f"{DS}SignatureMethod").set("Algorithm", method)
    value = hmac.new(key_bytes, etree.tostring(signed_info, method="c14n", exclusive=True), digest_name).digest()
    token.find(f".//{DS}SignatureValue").text = base64.b64encode(value).decode()
    assert hashlib  # the digest names are hashlib's
    return token


@pytest.mark.parametrize("encoding", ["pem", "der", "spki"])
@pytest.mark.parametrize("method,digest_name", [
    ("http://www.w3.org/2001/04/xmldsig-more#hmac-sha256", "sha256"),
    ("http://www.w3.org/2000/09/xmldsig#hmac-sha1", "sha1"),
])
def test_hmac_keyed_with_the_public_certificate(sts_key, encoding: str, method: str, digest_name: str) -> None:
    from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat

    cert = sts_key.certificate
    key_bytes = {"pem": cert.public_bytes(Encoding.PEM), "der": cert.public_bytes(Encoding.DER),
                 "spki": cert.public_key().public_bytes(Encoding.DER, PublicFormat.SubjectPublicKeyInfo)}[encoding]
    token = _hmac_signed(sts_key, key_bytes, method, digest_name)
    assert rejected(verifier(sts_key), token).code == "algorithm"


def test_rsa_sha1_signature_where_sha256_is_required(sts_key) -> None:
    c = content()
    assertion = saml20.build_assertion(c)
    XmlSigner(sts_key, SignatureAlgorithm.RSA_SHA1, DigestAlgorithm.SHA1).sign(
        assertion, c.assertion_id, after=saml20.issuer_of(assertion))
    assert rejected(verifier(sts_key), etree.tostring(assertion)).code == "algorithm"
    assert verifier(sts_key, allow_sha1=True).verify(etree.tostring(assertion)).subject == "alice"


def test_sha1_digest_under_an_rsa_sha256_signature(sts_key) -> None:
    c = content()
    assertion = saml20.build_assertion(c)
    XmlSigner(sts_key, SignatureAlgorithm.RSA_SHA256, DigestAlgorithm.SHA1).sign(
        assertion, c.assertion_id, after=saml20.issuer_of(assertion))
    assert rejected(verifier(sts_key), etree.tostring(assertion)).code == "algorithm"


@pytest.fixture
def decryptions(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every decryption the verification path starts (the one call site, sts.tokens.verification)."""
    from sts.tokens import verification

    calls: list[str] = []
    real = verification.decrypt_element

    def counting(element: etree._Element, *args: object, **kwargs: object) -> etree._Element:
        calls.append(element.tag)
        return real(element, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(verification, "decrypt_element", counting)
    return calls


@pytest.fixture(scope="module")
def rp_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("rp"))


@pytest.mark.parametrize("data,transport", [
    (DataEncryption.AES256_GCM, KeyTransport.RSA_1_5),
    (DataEncryption.AES256_CBC, KeyTransport.RSA_OAEP_MGF1P),
    (DataEncryption.AES128_CBC, KeyTransport.RSA_OAEP_MGF1P),
    (DataEncryption.AES128_CBC, KeyTransport.RSA_1_5),
], ids=["rsa-1_5-key-transport", "aes256-cbc", "aes128-cbc", "both"])
def test_encryption_downgrade_refused_before_decryption(sts_key, rp_key, decryptions, data, transport) -> None:
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate, data=data, key_transport=transport)
    v = TokenVerifier([sts_key.certificate], rp_private_key=rp_key.private_key, audience=AUDIENCE, clock=lambda: NOW)
    assert rejected(v, etree.tostring(encrypted)).code == "algorithm"
    assert decryptions == [], "decryption was tried before the algorithms were checked (a padding oracle)"
    # The same token under the default algorithms decrypts and verifies with the same key.
    good = encrypt_element(signed20(sts_key), rp_key.certificate)
    assert v.verify(etree.tostring(good)).subject == "alice" and len(decryptions) == 1


@pytest.mark.parametrize("path,uri", [
    (f"{{{ns.XENC}}}EncryptionMethod", DataEncryption.AES256_CBC.value),
    (f".//{{{ns.XENC}}}EncryptedKey/{{{ns.XENC}}}EncryptionMethod", KeyTransport.RSA_1_5.value),
], ids=["data-relabelled-cbc", "transport-relabelled-rsa-1_5"])
def test_encryption_downgrade_by_editing_the_algorithm_uri(sts_key, rp_key, decryptions, path, uri) -> None:
    """GCM/OAEP relabelled as CBC or RSA 1.5: refused on the label, never tried."""
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate)
    encrypted.find(path).set("Algorithm", uri)
    v = TokenVerifier([sts_key.certificate], rp_private_key=rp_key.private_key, audience=AUDIENCE, clock=lambda: NOW)
    assert rejected(v, etree.tostring(encrypted)).code == "algorithm" and decryptions == []


def test_legacy_encryption_when_configured(sts_key, rp_key) -> None:
    """Tolerance: a relying party that lists CBC and RSA 1.5 accepts them."""
    encrypted = encrypt_element(signed20(sts_key), rp_key.certificate, data=DataEncryption.AES256_CBC,
                                key_transport=KeyTransport.RSA_1_5)
    v = TokenVerifier([sts_key.certificate], rp_private_key=rp_key.private_key, audience=AUDIENCE, clock=lambda: NOW,
                      algorithms=AlgorithmAllowList().allowing("aes256-cbc", "rsa-1_5"))
    assert v.verify(etree.tostring(encrypted)).subject == "alice"


def test_encrypted_assertion_beside_a_signed_one(sts_key, rp_key) -> None:
    encrypted = encrypt_element(signed20(sts_key, "mallory"), rp_key.certificate)
    wrapper = etree.Element(f"{SAML2}EncryptedAssertion")
    wrapper.append(encrypted)
    v = TokenVerifier([sts_key.certificate], rp_private_key=rp_key.private_key, audience=AUDIENCE, clock=lambda: NOW)
    assert rejected(v, etree.tostring(_rstr(signed20(sts_key), wrapper))).code == EXTRA_TOKEN


def test_issuer_checked_for_saml11_too(sts_key) -> None:
    assert rejected(verifier(sts_key), signed11(sts_key, issuer="https://evil-sts.example/")).code == "issuer"
