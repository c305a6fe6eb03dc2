"""Enveloped signatures checked by three verifiers nobody here wrote: signxml, xmlsec1 and python-xmlsec."""

from __future__ import annotations

import base64
import copy

import pytest
import xmlsec
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from lxml import etree
from signxml.exceptions import InvalidDigest

from sts import ns
from sts.tokens.crypto.signing import XmlSigner, c14n
from sts.tokens.saml import saml11, saml20
from sts.uris import ENVELOPED, EXC_C14N, DigestAlgorithm, SignatureAlgorithm

SAML2_ID = ("ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion")
SAML1_ID = ("AssertionID", "urn:oasis:names:tc:SAML:1.0:assertion:Assertion")
DS = "{http://www.w3.org/2000/09/xmldsig#}"

ALGORITHMS = {
    "rsa-sha256": (SignatureAlgorithm.RSA_SHA256, DigestAlgorithm.SHA256, "rsa_material"),
    "rsa-sha1": (SignatureAlgorithm.RSA_SHA1, DigestAlgorithm.SHA1, "rsa_material"),
    "ecdsa-sha256": (SignatureAlgorithm.ECDSA_SHA256, DigestAlgorithm.SHA256, "ec_material"),
}


@pytest.fixture(params=sorted(ALGORITHMS))
def signer_case(request):
    algorithm, digest, material_name = ALGORITHMS[request.param]
    material = request.getfixturevalue(material_name)
    return XmlSigner(material.signing_key, algorithm, digest), material


def _signed(version: str, signer: XmlSigner, content) -> bytes:
    if version == "saml20":
        assertion = saml20.build_assertion(content)
        signer.sign(assertion, content.assertion_id, after=saml20.issuer_of(assertion))
    else:
        assertion = saml11.build_assertion(content)
        signer.sign(assertion, content.assertion_id)
    return etree.tostring(assertion)


@pytest.mark.parametrize("version", ["saml20", "saml11"])
def test_every_verifier_accepts(version: str, signer_case, content, peers) -> None:
    signer, material = signer_case
    data = _signed(version, signer, content)
    id_attr = SAML2_ID if version == "saml20" else SAML1_ID
    signed = peers.signxml(data, material.cert_pem, id_attribute=id_attr[0])
    assert signed.get(id_attr[0]) == content.assertion_id
    peers.xmlsec1_verify(data, material.cert_pem, id_attr)
    peers.python_xmlsec_verify(data, material.cert_pem, id_attr[0])


@pytest.mark.parametrize("version", ["saml20", "saml11"])
def test_tampered_attribute_value_fails(version: str, signer_case, content, peers) -> None:
    signer, material = signer_case
    data = _signed(version, signer, content)
    tampered = data.replace(b">admins<", b">owners<")
    assert tampered != data
    id_name = "ID" if version == "saml20" else "AssertionID"
    with pytest.raises(InvalidDigest):
        peers.signxml(tampered, material.cert_pem, id_attribute=id_name)
    with pytest.raises(xmlsec.Error):
        peers.python_xmlsec_verify(tampered, material.cert_pem, id_name)


def test_signature_shape_is_the_saml_profile(rsa_material, content) -> None:
    assertion = saml20.build_assertion(content)
    signature = XmlSigner(rsa_material.signing_key).sign(assertion, content.assertion_id, after=assertion[0])
    assert assertion.index(signature) == 1  # right after Issuer
    assert signature.prefix == "ds" and signature.nsmap["ds"] == ns.DS
    assert signature.find(f"{DS}SignedInfo/{DS}CanonicalizationMethod").get("Algorithm") == EXC_C14N
    references = signature.findall(f"{DS}SignedInfo/{DS}Reference")
    assert [r.get("URI") for r in references] == ["#" + content.assertion_id]
    transforms = [t.get("Algorithm") for t in references[0].iterfind(f"{DS}Transforms/{DS}Transform")]
    assert transforms == [ENVELOPED, EXC_C14N]
    assert signature.find(f"{DS}Object") is None
    cert = signature.findtext(f"{DS}KeyInfo/{DS}X509Data/{DS}X509Certificate")
    assert cert == rsa_material.signing_key.cert_b64


def test_saml11_signature_goes_last(rsa_material, content) -> None:
    assertion = saml11.build_assertion(content)
    signature = XmlSigner(rsa_material.signing_key).sign(assertion, content.assertion_id)
    assert assertion[-1] is signature


def test_signed_bytes_are_what_a_verifier_canonicalises(rsa_material, content) -> None:
    """Re-parse the document, embed it, and check the SignatureValue against SignedInfo's c14n *there*."""
    assertion = saml20.build_assertion(content)
    XmlSigner(rsa_material.signing_key).sign(assertion, content.assertion_id, after=assertion[0])
    outer = etree.fromstring(
        b'<x:Envelope xmlns:x="urn:outer" xmlns="urn:default" xmlns:ds="urn:not-dsig" xml:lang="en">'
        b"<x:Body/></x:Envelope>"
    )
    outer[0].append(etree.fromstring(etree.tostring(assertion)))
    signature = outer.find(f".//{DS}Signature")
    value = base64.b64decode(signature.findtext(f"{DS}SignatureValue"))
    public_key = rsa_material.signing_key.certificate.public_key()
    public_key.verify(value, c14n(signature[0]), padding.PKCS1v15(), hashes.SHA256())


def test_ecdsa_value_is_raw_r_and_s(ec_material, content) -> None:
    assertion = saml20.build_assertion(content)
    signer = XmlSigner(ec_material.signing_key, SignatureAlgorithm.ECDSA_SHA256)
    signature = signer.sign(assertion, content.assertion_id, after=assertion[0])
    value = base64.b64decode(signature.findtext(f"{DS}SignatureValue"))
    assert len(value) == 64
    der = encode_dss_signature(int.from_bytes(value[:32], "big"), int.from_bytes(value[32:], "big"))
    public_key = ec_material.signing_key.certificate.public_key()
    public_key.verify(der, c14n(signature[0]), ec.ECDSA(hashes.SHA256()))


@pytest.mark.parametrize("version", ["saml20", "saml11"])
def test_survives_reparse_and_a_foreign_parent(version: str, rsa_material, content, peers) -> None:
    """Self-contained namespaces: a parent binding saml/ds/default to other URIs changes nothing."""
    data = _signed(version, XmlSigner(rsa_material.signing_key), content)
    outer = etree.fromstring(
        b'<t:RequestedSecurityToken xmlns:t="urn:trust" xmlns="urn:default" xmlns:saml="urn:other-saml"'
        b' xmlns:ds="urn:other-ds" xmlns:xenc="urn:other-xenc"/>'
    )
    outer.append(etree.fromstring(data))
    embedded = etree.tostring(outer)
    id_attr = SAML2_ID if version == "saml20" else SAML1_ID
    peers.signxml(embedded, rsa_material.cert_pem, id_attribute=id_attr[0])
    peers.xmlsec1_verify(embedded, rsa_material.cert_pem, id_attr)
    peers.python_xmlsec_verify(embedded, rsa_material.cert_pem, id_attr[0])
    # And copied out again by a regex-style extractor: still verifies on its own.
    start = embedded.index(b"<Assertion" if version == "saml20" else b"<saml:Assertion")
    peers.signxml(embedded[start:-len(b"</t:RequestedSecurityToken>")], rsa_material.cert_pem,
                  id_attribute=id_attr[0])


def test_lxml_rewrites_a_token_under_a_parent_binding_its_namespace(rsa_material, content) -> None:
    """A hazard for whoever embeds tokens: lxml's append drops the token's own declaration of a URI that the
    new parent already binds to another prefix, and renames the elements: the signature then breaks. Renderers
    must not bind the SAML/ds/xenc URIs above the token (this test notices if lxml ever stops doing it)."""
    data = _signed("saml20", XmlSigner(rsa_material.signing_key), content)
    outer = etree.fromstring(b'<t:R xmlns:t="urn:t" xmlns:saml2="urn:oasis:names:tc:SAML:2.0:assertion"/>')
    outer.append(etree.fromstring(data))
    assert etree.tostring(outer[0]).startswith(b"<saml2:Assertion")


def test_signing_a_subtree_in_context(rsa_material, content, peers) -> None:
    """An assertion already inside a response is signed as a verifier sees it there."""
    outer = etree.fromstring(b'<r:Response xmlns:r="urn:response" xmlns="urn:default" xmlns:ds="urn:x"/>')
    assertion = saml20.build_assertion(content)
    outer.append(assertion)
    XmlSigner(rsa_material.signing_key).sign(assertion, content.assertion_id, after=assertion[0])
    assert peers.signxml(etree.tostring(outer), rsa_material.cert_pem).get("ID") == content.assertion_id


def test_signer_reuse_gives_independent_signatures(rsa_material, content_factory) -> None:
    signer = XmlSigner(rsa_material.signing_key)
    first, second = (saml20.build_assertion(content_factory(assertion_id=f"_{i:032x}")) for i in (1, 2))
    sig1 = signer.sign(first, f"_{1:032x}", after=first[0])
    sig2 = signer.sign(second, f"_{2:032x}", after=second[0])
    assert sig1 is not sig2
    assert sig1.find(f".//{DS}Reference").get("URI") == "#_" + "0" * 31 + "1"
    assert sig2.find(f".//{DS}Reference").get("URI") == "#_" + "0" * 31 + "2"


def test_key_and_algorithm_must_match(rsa_material, ec_material) -> None:
    with pytest.raises(ValueError, match="EC key"):
        XmlSigner(ec_material.signing_key, SignatureAlgorithm.RSA_SHA256)
    with pytest.raises(ValueError, match="RSA key"):
        XmlSigner(rsa_material.signing_key, SignatureAlgorithm.ECDSA_SHA256)


def test_anchor_must_be_a_child(rsa_material, content) -> None:
    assertion = saml20.build_assertion(content)
    stranger = copy.deepcopy(assertion[0])
    with pytest.raises(ValueError, match="child"):
        XmlSigner(rsa_material.signing_key).sign(assertion, content.assertion_id, after=stranger)


def test_reference_must_name_the_element(rsa_material, content) -> None:
    assertion = saml20.build_assertion(content)
    with pytest.raises(ValueError, match="no Id attribute"):
        XmlSigner(rsa_material.signing_key).sign(assertion, "_other", after=assertion[0])


@pytest.mark.parametrize("reference_id", ["_0123abcd", 'odd & "quoted" <id>\twith\nbreaks\r', "ünïcødé-€"])
def test_signed_info_written_from_its_canonical_form_is_what_c14n_gives(rsa_material, reference_id) -> None:
    """SignedInfo's bytes are assembled from parts worked out once: for any URI they must be lxml's c14n of it."""
    element = etree.Element("{urn:t}Token", nsmap={"t": "urn:t"}, ID=reference_id)
    etree.SubElement(element, "{urn:t}Value").text = "v"
    signature = XmlSigner(rsa_material.signing_key).sign(element, reference_id)
    value = base64.b64decode(signature.findtext(f"{DS}SignatureValue"))
    public_key = rsa_material.signing_key.certificate.public_key()
    public_key.verify(value, c14n(signature[0]), padding.PKCS1v15(), hashes.SHA256())
    reparsed = etree.fromstring(etree.tostring(element)).find(f"{DS}Signature")
    public_key.verify(value, c14n(reparsed[0]), padding.PKCS1v15(), hashes.SHA256())
