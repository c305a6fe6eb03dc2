"""Federation metadata: signed (verified by signxml and xmlsec1), schema-valid, the WS-Federation STS role."""

from __future__ import annotations

import shutil
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Protocol

import pytest
from lxml import etree
from signxml import DigestAlgorithm, SignatureConstructionMethod, SignatureMethod, XMLSigner, XMLVerifier
from signxml.algorithms import CanonicalizationMethod
from signxml.exceptions import InvalidDigest

from sts import ns
from sts.protocol import xmlsafe
from interop.xsd import validator
from sts.web.metadata.federation import render_federation_metadata



class SigningMaterial(Protocol):
    """What the ``signing_material`` fixture (conftest.py) provides."""

    key_pem: bytes
    cert_pem: bytes
    cert_b64: str


BASE = "https://sts.example.org"
ENTITY_ID = "https://sts.example.org/services/trust"
CLAIMS = ["http://schemas.xmlsoap.org/ws/2005/05/identity/claims/upn", "http://schemas.xmlsoap.org/claims/Group"]


def _signxml_signer(material: SigningMaterial) -> Callable[[etree._Element, str], etree._Element]:
    """The test stand-in for the project's XmlSigner.sign(element, reference_id) -> ds:Signature."""

    def sign(element: etree._Element, reference_id: str) -> etree._Element:
        signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=SignatureMethod.RSA_SHA256,
            digest_algorithm=DigestAlgorithm.SHA256,
            c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0,
        )
        signed = signer.sign(element, key=material.key_pem, cert=material.cert_pem, reference_uri=reference_id)
        signature = signed.find(f"{{{ns.DS}}}Signature")
        assert signature is not None
        element.append(signature)
        return signature

    return sign


@pytest.fixture(scope="module")
def document(signing_material: SigningMaterial) -> bytes:
    return render_federation_metadata(
        BASE, ENTITY_ID, signing_material.cert_b64, _signxml_signer(signing_material), claim_types=CLAIMS
    )


def test_signature_is_first_and_verifies_with_signxml(document: bytes, signing_material: SigningMaterial) -> None:
    root = xmlsafe.parse(document)
    assert root[0].tag == ns.qn(ns.DS, "Signature")
    result = XMLVerifier().verify(document, x509_cert=signing_material.cert_pem.decode())
    assert result.signed_xml is not None and result.signed_xml.get("entityID") == ENTITY_ID


def test_signature_verifies_with_xmlsec1(document: bytes, signing_material: SigningMaterial, tmp_path: Path) -> None:
    if shutil.which("xmlsec1") is None:
        pytest.skip("xmlsec1 not installed")
    (tmp_path / "cert.pem").write_bytes(signing_material.cert_pem)
    (tmp_path / "md.xml").write_bytes(document)
    completed = subprocess.run(
        [
            "xmlsec1", "--verify", "--pubkey-cert-pem", str(tmp_path / "cert.pem"),
            "--id-attr:ID", "urn:oasis:names:tc:SAML:2.0:metadata:EntityDescriptor", str(tmp_path / "md.xml"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )
    assert completed.returncode == 0, completed.stderr


def test_tampering_breaks_the_signature(document: bytes, signing_material: SigningMaterial) -> None:
    tampered = document.replace(b"/services/sts<", b"/services/evil<")
    assert tampered != document
    with pytest.raises(InvalidDigest):
        XMLVerifier().verify(tampered, x509_cert=signing_material.cert_pem.decode())


def test_parts_are_schema_valid(document: bytes) -> None:
    # The WS-Federation XSD is not vendored and xmlschema cannot validate (it raises on) an unknown xsi:type, so
    # validate every part that the vendored schemas define; the fed: role is checked structurally below.
    root = xmlsafe.parse(document)
    parts = [
        root.find(f"{{{ns.DS}}}Signature"),
        root.find(f".//{{{ns.MD}}}KeyDescriptor"),
        root.find(f".//{{{ns.WSA}}}EndpointReference"),
    ]
    for part in parts:
        assert part is not None
        assert [str(e.reason) for e in validator().iter_errors(part)] == []


def test_role_descriptor_follows_the_wsfed_content_model(document: bytes, signing_material: SigningMaterial) -> None:
    root = xmlsafe.parse(document)
    assert root.get("ID") and root.get("entityID") == ENTITY_ID
    role = root.find(f"{{{ns.MD}}}RoleDescriptor")
    assert role is not None
    assert role.get(ns.qn(ns.XSI, "type")) == "fed:SecurityTokenServiceType"
    assert role.nsmap.get("fed") == ns.FED  # the QName in xsi:type must resolve
    assert role.get("protocolSupportEnumeration") == ns.FED
    # WS-Federation 1.2 section 3.1.2: RoleDescriptorType children, then the WebServiceDescriptorType sequence.
    assert [etree.QName(c).localname for c in role] == [
        "KeyDescriptor", "TokenTypesOffered", "ClaimTypesOffered", "SecurityTokenServiceEndpoint",
    ]
    key = role.find(f"{{{ns.MD}}}KeyDescriptor")
    assert key is not None and key.get("use") == "signing"
    assert key.findtext(f".//{{{ns.DS}}}X509Certificate") == signing_material.cert_b64
    assert [c.get("Uri") for c in role.iterfind(f".//{{{ns.AUTH}}}ClaimType")] == CLAIMS
    token_types = {t.get("Uri") for t in role.iterfind(f".//{{{ns.FED}}}TokenType")}
    assert {ns.SAML2, ns.SAML1} <= token_types
    assert role.findtext(f".//{{{ns.WSA}}}Address") == "https://sts.example.org/services/sts"
    assert role.find(f"{{{ns.FED}}}PassiveRequestorEndpoint") is None


def test_without_claims_there_is_no_claim_types_offered(signing_material: SigningMaterial) -> None:
    document = render_federation_metadata(BASE, ENTITY_ID, signing_material.cert_b64, _signxml_signer(signing_material))
    assert b"ClaimTypesOffered" not in document
