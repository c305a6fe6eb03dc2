"""Holder-of-key assertions (SAML 2.0 profiles §3.1, SAML 1.1 core §2.4.2.3): shape, XSD validity, signature."""

from __future__ import annotations

import base64
import dataclasses

import pytest
from cryptography.hazmat.primitives import serialization
from lxml import etree
from signxml import XMLVerifier

from sts import ns
from sts.tokens.crypto.encryption import decrypt_key
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.proof import proof_key_info
from sts.tokens.crypto.signing import XmlSigner
from interop.xsd import validator
from sts.model import AssertionContent, ProofKey
from sts.tokens.saml import saml11, saml20
from sts.uris import CM_HOLDER_OF_KEY_11, CM_HOLDER_OF_KEY_20

S2 = f"{{{ns.SAML2}}}"
S1 = f"{{{ns.SAML1}}}"
DS = f"{{{ns.DS}}}"
XENC = f"{{{ns.XENC}}}"
XSI_TYPE = f"{{{ns.XSI}}}type"
KEY = bytes(range(32))


@pytest.fixture(scope="module")
def rp_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("rp.test"))


@pytest.fixture(scope="module")
def requester_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("requester.test"))


@pytest.fixture(scope="module")
def proofs(requester_key: SigningKey) -> dict[str, ProofKey]:
    numbers = requester_key.certificate.public_key().public_numbers()  # type: ignore[union-attr]
    return {
        "symmetric": ProofKey(symmetric_key=KEY),
        "certificate": ProofKey(certificate_der=requester_key.cert_der),
        "keyvalue": ProofKey(rsa_modulus=numbers.n, rsa_exponent=numbers.e),
    }


FORMS = ["symmetric", "certificate", "keyvalue"]


def _build(module, content: AssertionContent, proof: ProofKey, rp_key: SigningKey) -> etree._Element:
    hok = dataclasses.replace(content, proof_key=proof)
    recipient = rp_key.certificate if proof.symmetric_key else None
    return module.build_assertion(hok, proof_key_info(proof, recipient))


def _signed(module, assertion: etree._Element, signing_key: SigningKey, assertion_id: str) -> bytes:
    after = saml20.issuer_of(assertion) if module is saml20 else None
    XmlSigner(signing_key).sign(assertion, assertion_id, after=after)
    return etree.tostring(assertion)


@pytest.mark.parametrize("form", FORMS)
def test_saml20_subject_confirmation(form, content, proofs, rp_key) -> None:
    assertion = _build(saml20, content, proofs[form], rp_key)
    confirmation = assertion.find(f"{S2}Subject/{S2}SubjectConfirmation")
    assert confirmation.get("Method") == CM_HOLDER_OF_KEY_20
    data = confirmation.find(f"{S2}SubjectConfirmationData")
    assert data.get(XSI_TYPE) == "KeyInfoConfirmationDataType"
    assert data.get("NotOnOrAfter") == "2026-11-28T01:00:00.123Z"
    (key_info,) = data
    assert key_info.tag == f"{DS}KeyInfo"
    serialized = etree.tostring(assertion)
    # xsi is declared once, where it is used (the canonical form the token is written in): the token stays
    # self-contained, and the xsi:type resolves.
    assert b'<SubjectConfirmationData xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" ' in serialized
    assert serialized.count(b"xmlns:xsi=") == 1


@pytest.mark.parametrize("form", FORMS)
def test_saml11_subject_confirmation_in_every_statement(form, content, proofs, rp_key) -> None:
    assertion = _build(saml11, content, proofs[form], rp_key)
    confirmations = assertion.findall(f".//{S1}Subject/{S1}SubjectConfirmation")
    assert len(confirmations) == 2  # AttributeStatement and AuthenticationStatement
    for confirmation in confirmations:
        assert confirmation.findtext(f"{S1}ConfirmationMethod") == CM_HOLDER_OF_KEY_11
        assert [c.tag for c in confirmation] == [f"{S1}ConfirmationMethod", f"{DS}KeyInfo"]
    first, second = (etree.tostring(c[1]) for c in confirmations)
    assert first == second
    assert b"XMLSchema-instance" not in etree.tostring(assertion)


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
@pytest.mark.parametrize("form", FORMS)
def test_signed_hok_assertion_is_schema_valid_and_verifies(
    module, form, content, proofs, rp_key, signing_key, saml20_schema, saml11_schema
) -> None:
    assertion = _build(module, content, proofs[form], rp_key)
    data = _signed(module, assertion, signing_key, content.assertion_id)
    reparsed = etree.fromstring(data)
    schema = saml20_schema if module is saml20 else saml11_schema
    schema.validate(reparsed)
    validator().validate(reparsed)
    id_attribute = "ID" if module is saml20 else "AssertionID"
    cert_pem = signing_key.certificate.public_bytes(serialization.Encoding.PEM)
    signed = XMLVerifier().verify(data, x509_cert=cert_pem.decode(), id_attribute=id_attribute).signed_xml
    # The signature covers the proof key's KeyInfo: the relying party reads it from the verified XML.
    confirming = [
        k for k in signed.iter(f"{DS}KeyInfo")
        if etree.QName(k.getparent()).localname in ("SubjectConfirmationData", "SubjectConfirmation")
    ]
    assert len(confirming) == (1 if module is saml20 else 2)


def test_saml20_schema_checks_the_confirmation_data_type(content, proofs, rp_key, saml20_schema) -> None:
    assertion = _build(saml20, content, proofs["certificate"], rp_key)
    assert saml20_schema.is_valid(assertion)
    data = assertion.find(f"{S2}Subject/{S2}SubjectConfirmation/{S2}SubjectConfirmationData")
    data.remove(data[0])  # KeyInfoConfirmationDataType requires a ds:KeyInfo: the xsi:type is honoured
    assert not saml20_schema.is_valid(assertion)
    del data.attrib[XSI_TYPE]
    assert saml20_schema.is_valid(assertion)


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
def test_relying_party_decrypts_the_symmetric_proof_key(module, content, proofs, rp_key) -> None:
    assertion = etree.fromstring(etree.tostring(_build(module, content, proofs["symmetric"], rp_key)))
    encrypted_keys = list(assertion.iter(f"{XENC}EncryptedKey"))
    assert encrypted_keys
    for encrypted_key in encrypted_keys:
        assert decrypt_key(encrypted_key, rp_key.private_key) == KEY


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
def test_public_key_forms_carry_the_requester_key(module, content, proofs, rp_key, requester_key) -> None:
    cert_assertion = _build(module, content, proofs["certificate"], rp_key)
    der = base64.b64decode(next(cert_assertion.iter(f"{DS}X509Certificate")).text)
    assert der == requester_key.cert_der
    value_assertion = _build(module, content, proofs["keyvalue"], rp_key)
    modulus = base64.b64decode(next(value_assertion.iter(f"{DS}Modulus")).text)
    assert int.from_bytes(modulus, "big") == proofs["keyvalue"].rsa_modulus
    assert not list(value_assertion.iter(f"{XENC}EncryptedKey"))


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
def test_hok_without_key_info_is_a_programming_error(module, content) -> None:
    with pytest.raises(ValueError, match="KeyInfo"):
        module.build_assertion(dataclasses.replace(content, proof_key=ProofKey(symmetric_key=KEY)))


@pytest.mark.parametrize("module", [saml20, saml11], ids=["saml20", "saml11"])
def test_bearer_unchanged_when_no_proof_key(module, content, rp_key) -> None:
    data = etree.tostring(module.build_assertion(content))
    assert b"bearer" in data and b"holder-of-key" not in data and b"KeyInfo" not in data


@pytest.mark.parametrize("module", [saml20, saml11])
def test_builds_share_nothing_through_the_copied_skeleton(module, content, proofs, rp_key) -> None:
    # The fixed part of an assertion is a copied skeleton: what one token sets must not reach the next.
    hok = _build(module, content, proofs["certificate"], rp_key)
    before = etree.tostring(hok)
    other = dataclasses.replace(content, assertion_id="_other", subject_name="bob", claims=(),
                                additional_audiences=("urn:b",))
    bearer = module.build_assertion(other)
    assert etree.tostring(hok) == before
    assert bearer.find(f".//{DS}KeyInfo") is None
    assert b"alice" not in etree.tostring(bearer)
    assert module.build_assertion(content).find(f".//{DS}KeyInfo") is None
