"""XML Encryption checked by decryptors nobody here wrote (xmlsec1, python-xmlsec) and by decrypt_element."""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from sts import ns
from sts.protocol import xmlsafe
from sts.tokens.crypto.encryption import (
    ELEMENT_TYPE, decrypt_element, decrypt_key, encrypt_element, encrypt_key_for, encrypt_token,
)
from sts.tokens.crypto.keys import load_private_key
from sts.tokens.crypto.signing import XmlSigner
from sts.errors import InvalidRequest
from sts.tokens.saml import saml11, saml20
from sts.tokens.validators import token_hash
from sts.uris import DataEncryption, DigestAlgorithm, KeyTransport

XENC = "{http://www.w3.org/2001/04/xmlenc#}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"

DATA = list(DataEncryption)
TRANSPORTS = list(KeyTransport)


def _assertion(version: str, content, key=None) -> etree._Element:
    build = saml20.build_assertion if version == "saml20" else saml11.build_assertion
    assertion = build(content)
    if key is not None:
        after = assertion[0] if version == "saml20" else None
        XmlSigner(key).sign(assertion, content.assertion_id, after=after)
    return assertion


@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
@pytest.mark.parametrize("data", DATA, ids=lambda d: d.name)
def test_every_decryptor_recovers_the_element(data, transport, rp_material, content, peers) -> None:
    assertion = _assertion("saml20", content)
    expected = etree.tostring(assertion, method="c14n")
    cert = rp_material.signing_key.certificate
    encrypted = encrypt_element(assertion, cert, data=data, key_transport=transport)
    serialized = etree.tostring(encrypted)
    ours = decrypt_element(etree.fromstring(serialized), load_private_key(rp_material.key_pem))
    assert etree.tostring(ours, method="c14n") == expected
    by_xmlsec1 = peers.xmlsec1_decrypt(serialized, rp_material.key_pem)
    assert etree.tostring(by_xmlsec1, method="c14n") == expected
    by_python_xmlsec = peers.python_xmlsec_decrypt(serialized, rp_material.key_pem)
    assert etree.tostring(by_python_xmlsec, method="c14n") == expected


@pytest.mark.parametrize("version", ["saml20", "saml11"])
def test_decrypted_signed_assertion_verifies(version, rsa_material, rp_material, content, peers) -> None:
    assertion = _assertion(version, content, rsa_material.signing_key)
    encrypted = encrypt_element(assertion, rp_material.signing_key.certificate)
    wrapper = etree.Element(ns.qn(ns.SAML2, "EncryptedAssertion"), nsmap={None: ns.SAML2})
    wrapper.append(encrypted)
    decrypted = peers.xmlsec1_decrypt(etree.tostring(wrapper), rp_material.key_pem)
    id_attribute = "ID" if version == "saml20" else "AssertionID"
    # xmlsec1 leaves the assertion inside the wrapper; the signature must survive that context too.
    signed = peers.signxml(etree.tostring(decrypted), rsa_material.cert_pem, id_attribute=id_attribute)
    assert signed.get(id_attribute) == content.assertion_id  # the signature covers the assertion itself


def test_structure(rp_material, content) -> None:
    cert = rp_material.signing_key.certificate
    encrypted = encrypt_element(_assertion("saml20", content), cert)
    assert encrypted.tag == f"{XENC}EncryptedData" and encrypted.get("Type") == ELEMENT_TYPE
    assert encrypted.nsmap == {"xenc": ns.XENC, "ds": ns.DS}
    assert encrypted.find(f"{XENC}EncryptionMethod").get("Algorithm") == DataEncryption.AES256_GCM.value
    key = encrypted.find(f"{DS}KeyInfo/{XENC}EncryptedKey")
    method = key.find(f"{XENC}EncryptionMethod")
    assert method.get("Algorithm") == KeyTransport.RSA_OAEP_MGF1P.value
    assert method.find(f"{DS}DigestMethod").get("Algorithm") == DigestAlgorithm.SHA1.value
    x509_data = key.find(f"{DS}KeyInfo/{DS}X509Data")
    assert x509_data.findtext(f"{DS}X509IssuerSerial/{DS}X509SerialNumber") == str(cert.serial_number)
    assert x509_data.findtext(f"{DS}X509Certificate") == rp_material.signing_key.cert_b64
    assert len(base64.b64decode(key.findtext(f"{XENC}CipherData/{XENC}CipherValue"))) == 256


@pytest.mark.parametrize(
    ("data", "iv", "tag"), [(DataEncryption.AES256_GCM, 12, 16), (DataEncryption.AES256_CBC, 16, 0)]
)
def test_cipher_value_layout(data, iv, tag, rp_material, content) -> None:
    assertion = _assertion("saml20", content)
    plain_length = len(etree.tostring(assertion))
    encrypted = encrypt_element(assertion, rp_material.signing_key.certificate, data=data)
    value = base64.b64decode(encrypted.findtext(f"{XENC}CipherData/{XENC}CipherValue"))
    if tag:
        assert len(value) == iv + plain_length + tag
    else:
        assert len(value) == iv + (plain_length // 16 + 1) * 16


def test_fresh_key_and_iv_every_time(rp_material, content) -> None:
    assertion = _assertion("saml20", content)
    first, second = (encrypt_element(assertion, rp_material.signing_key.certificate) for _ in range(2))
    path = f"{XENC}CipherData/{XENC}CipherValue"
    assert first.findtext(path) != second.findtext(path)


def test_wrong_key_is_refused(rp_material, rsa_material, content) -> None:
    encrypted = encrypt_element(_assertion("saml20", content), rp_material.signing_key.certificate)
    with pytest.raises(ValueError, match="does not decrypt"):
        decrypt_element(encrypted, load_private_key(rsa_material.key_pem))


@pytest.mark.parametrize("data", [DataEncryption.AES256_GCM, DataEncryption.AES128_GCM])
def test_tampered_gcm_is_refused(data, rp_material, content) -> None:
    encrypted = encrypt_element(_assertion("saml20", content), rp_material.signing_key.certificate, data=data)
    cipher_value = encrypted.find(f"{XENC}CipherData/{XENC}CipherValue")
    raw = bytearray(base64.b64decode(cipher_value.text))
    raw[20] ^= 1
    cipher_value.text = base64.b64encode(bytes(raw)).decode()
    with pytest.raises(ValueError, match="authentication failed"):
        decrypt_element(encrypted, load_private_key(rp_material.key_pem))


def test_unknown_algorithm_is_refused(rp_material, content) -> None:
    encrypted = encrypt_element(_assertion("saml20", content), rp_material.signing_key.certificate)
    method = encrypted.find(f"{XENC}EncryptionMethod")
    method.set("Algorithm", "http://www.w3.org/2001/04/xmlenc#tripledes-cbc")
    with pytest.raises(ValueError, match="unsupported encryption algorithm"):
        decrypt_element(encrypted, load_private_key(rp_material.key_pem))


def test_ec_certificate_cannot_receive(ec_material, content) -> None:
    with pytest.raises(ValueError, match="RSA key"):
        encrypt_element(_assertion("saml20", content), ec_material.signing_key.certificate)


def test_decrypted_xml_goes_through_the_safe_parser(rp_material) -> None:
    hostile = etree.Element("x")
    deepest = hostile
    for _ in range(100):  # deeper than xmlsafe allows
        deepest = etree.SubElement(deepest, "x")
    encrypted = encrypt_element(hostile, rp_material.signing_key.certificate)
    with pytest.raises(InvalidRequest):
        decrypt_element(encrypted, load_private_key(rp_material.key_pem))


def test_cached_recipients_keep_to_their_own_certificate(rp_material, rsa_material, content) -> None:
    """The key and template cached per certificate: interleaved recipients each get their own, reusably."""
    assertion = _assertion("saml20", content)
    recipients = [(m, m.signing_key.certificate) for m in (rp_material, rsa_material)]
    for material, cert in recipients * 2:
        encrypted = encrypt_element(assertion, cert)
        serial = encrypted.findtext(f".//{DS}X509SerialNumber")
        assert serial == str(cert.serial_number)
        plain = decrypt_element(encrypted, load_private_key(material.key_pem))
        assert etree.tostring(plain) == etree.tostring(assertion)
    # A template fills copies: the first result is not changed by the ones after it.
    first = encrypt_element(assertion, rp_material.signing_key.certificate)
    before = etree.tostring(first)
    encrypt_element(assertion, rp_material.signing_key.certificate)
    assert etree.tostring(first) == before


def _encrypted_assertion(encrypted_data: etree._Element) -> etree._Element:
    wrapper = etree.Element(ns.qn(ns.SAML2, "EncryptedAssertion"), nsmap={None: ns.SAML2})
    wrapper.append(encrypted_data)
    return wrapper


def _bare(encrypted_data: etree._Element) -> etree._Element:
    return encrypted_data


@pytest.mark.parametrize("wrap", [_encrypted_assertion, _bare], ids=["EncryptedAssertion", "EncryptedData"])
@pytest.mark.parametrize("transport", TRANSPORTS, ids=lambda t: t.name)
@pytest.mark.parametrize("data", DATA, ids=lambda d: d.name)
def test_encrypt_token_hash_is_the_hash_of_its_canonical_form(data, transport, wrap, rp_material, content) -> None:
    """The token's bytes are the wrapped element serialised, and the hash worked out from cached canonical parts is
    token_hash's, wherever the token is read again."""
    cert = rp_material.signing_key.certificate
    assertion = _assertion("saml20", content)
    for _ in range(2):  # the first call works the parts out, the second uses them
        xml, digest = encrypt_token(etree.tostring(assertion), cert, wrap, data=data, key_transport=transport)
        token = xmlsafe.parse(xml)
        assert etree.tostring(token, encoding="utf-8") == xml  # lxml's own serialisation, declarations included
        assert token.tag == (ns.qn(ns.SAML2, "EncryptedAssertion") if wrap is _encrypted_assertion
                             else ns.qn(ns.XENC, "EncryptedData"))
        assert digest == token_hash(token)
        reparsed = xmlsafe.parse(etree.tostring(token))
        assert digest == token_hash(reparsed)
        outer = etree.fromstring(b'<x:Body xmlns:x="urn:x" xmlns="urn:default" xmlns:xenc="urn:not-xenc"/>')
        outer.append(reparsed)
        assert digest == token_hash(outer[0])
        plain = decrypt_element(token if wrap is _bare else token[0], load_private_key(rp_material.key_pem))
        assert etree.tostring(plain) == etree.tostring(assertion)


def test_lone_encrypted_keys_keep_to_their_own_certificate(rp_material, rsa_material) -> None:
    """encrypt_key_for copies an EncryptedKey template cached per certificate: interleaved recipients each decrypt."""
    for material in (rp_material, rsa_material) * 2:
        secret = bytes(range(32)) if material is rp_material else bytes(range(32, 64))
        encrypted_key = encrypt_key_for(material.signing_key.certificate, secret)
        assert encrypted_key.findtext(f".//{DS}X509SerialNumber") == str(material.signing_key.certificate.serial_number)
        assert decrypt_key(encrypted_key, load_private_key(material.key_pem)) == secret
