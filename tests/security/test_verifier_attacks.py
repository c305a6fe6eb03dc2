"""Hostile tokens against the relying party's verifier: each is rejected with its reason (``TokenRejected.code``).

Tokens are built and signed by the STS's own builders (saml20/saml11 + XmlSigner) with a fixed clock, then altered.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from datetime import datetime, timedelta, timezone

import pytest
from lxml import etree

from assertion_content import make_content
from sts import ns
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert, random_id
from sts.tokens.crypto.signing import XmlSigner
from sts.model import AssertionContent, Claim
from sts.tokens.saml import saml11, saml20
from sts.rp.verifier import InMemoryReplayCache, TokenRejected, TokenVerifier

NOW = datetime(2030, 1, 2, 12, 0, tzinfo=timezone.utc)
AUDIENCE = "https://rp.example/"
ISSUER = "https://sts.example/"
GIVENNAME = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims/givenname"
SAML2 = f"{{{ns.SAML2}}}"
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


def verifier(key: SigningKey, **options: object) -> TokenVerifier:
    return TokenVerifier([key.certificate], audience=AUDIENCE, issuer=ISSUER, clock=lambda: NOW,  # type: ignore[arg-type]
                         **options)  # type: ignore[arg-type]


def rejected(v: TokenVerifier, token: bytes | etree._Element) -> TokenRejected:
    with pytest.raises(TokenRejected) as info:
        v.verify(token)
    return info.value


def test_the_untouched_tokens_verify(sts_key) -> None:
    for token in (signed20(sts_key), signed11(sts_key)):
        verified = verifier(sts_key).verify(etree.tostring(token))
        assert verified.subject == "alice" and verified.claims[GIVENNAME] == ("Alice",)


# --- signature wrapping -------------------------------------------------------------------------------------------


def _evil(sts_key: SigningKey, subject: str = "mallory") -> etree._Element:
    evil = copy.deepcopy(signed20(sts_key, subject))
    evil.remove(evil.find(f"{DS}Signature"))
    return evil


def test_xsw_second_unsigned_assertion_before_the_signed_one(sts_key) -> None:
    good, evil = signed20(sts_key), _evil(sts_key)
    for first, second in ((evil, good), (good, evil)):
        rstr = etree.Element(f"{{{ns.WST13}}}RequestSecurityTokenResponse")
        requested = etree.SubElement(rstr, f"{{{ns.WST13}}}RequestedSecurityToken")
        requested.extend([copy.deepcopy(first), copy.deepcopy(second)])
        if first is evil:  # the token is the first child: the unsigned one
            assert rejected(verifier(sts_key), rstr).code == "unsigned"
        else:  # the signed one comes first: it is what is read, never the other
            assert verifier(sts_key).verify(rstr).subject == "alice"


def test_xsw_signed_assertion_moved_into_advice_under_an_evil_root(sts_key) -> None:
    good, evil = signed20(sts_key), _evil(sts_key)
    advice = etree.SubElement(evil, f"{SAML2}Advice")
    advice.append(good)
    assert rejected(verifier(sts_key), etree.tostring(evil)).code == "unsigned"
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
    assert problem.code == "signature"


def test_allowing_sha1_allows_no_other_method(sts_key) -> None:
    token = signed20(sts_key)
    token.find(f".//{DS}SignatureMethod").set("Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512")
    assert rejected(verifier(sts_key, allow_sha1=True), token).code == "signature"


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
    assert rejected(verifier(sts_key), token).code == "signature"
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
