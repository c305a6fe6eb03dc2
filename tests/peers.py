"""Independent verifiers used by the tests: signxml, python-xmlsec and Debian's xmlsec1 command."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

import xmlsec
from lxml import etree
from signxml import SignatureConfiguration, XMLVerifier

from sts import ns

ID_ATTR = {ns.SAML2: ("ID", "urn:oasis:names:tc:SAML:2.0:assertion:Assertion"),
           ns.SAML1: ("AssertionID", "urn:oasis:names:tc:SAML:1.0:assertion:Assertion")}


def signxml_verify(assertion: etree._Element, cert_pem: bytes) -> etree._Element:
    """Verify with signxml against the given certificate only; return what the signature covers."""
    namespace = etree.QName(assertion).namespace
    config = SignatureConfiguration(require_x509=True)
    result = XMLVerifier().verify(
        etree.tostring(assertion), x509_cert=cert_pem.decode(), id_attribute=ID_ATTR[namespace][0],
        expect_config=config,
    )
    return result.signed_xml


def xmlsec1_verify(assertion: etree._Element, cert_pem: bytes) -> None:
    """Verify with the xmlsec1 command, trusting only the STS certificate given (raises on failure)."""
    namespace = etree.QName(assertion).namespace
    attr, node = ID_ATTR[namespace]
    with tempfile.TemporaryDirectory() as tmp:
        doc, cert = Path(tmp, "token.xml"), Path(tmp, "sts.crt")
        doc.write_bytes(etree.tostring(assertion))
        cert.write_bytes(cert_pem)
        subprocess.run(
            ["xmlsec1", "--verify", "--pubkey-cert-pem", str(cert), f"--id-attr:{attr}", node,
             "--enabled-key-data", "key-name", str(doc)],
            check=True, capture_output=True, timeout=30,
        )


def xmlsec1_decrypt(encrypted: etree._Element, key_pem: bytes) -> etree._Element:
    """Decrypt an EncryptedAssertion / xenc:EncryptedData with the xmlsec1 command."""
    with tempfile.TemporaryDirectory() as tmp:
        doc, key = Path(tmp, "enc.xml"), Path(tmp, "rp.key")
        doc.write_bytes(etree.tostring(encrypted))
        key.write_bytes(key_pem)
        out = subprocess.run(["xmlsec1", "--decrypt", "--privkey-pem", str(key), str(doc)],
                             check=True, capture_output=True, timeout=30).stdout
    root = etree.fromstring(out)
    if etree.QName(root).localname == "EncryptedAssertion":
        (root,) = [child for child in root if isinstance(child.tag, str)]
    return root


def pyxmlsec_decrypt(encrypted: etree._Element, key_pem: bytes) -> etree._Element:
    """Decrypt with python-xmlsec (a third implementation)."""
    doc = etree.fromstring(etree.tostring(encrypted))
    enc_data = doc if etree.QName(doc).localname == "EncryptedData" else doc.find(f"{{{ns.XENC}}}EncryptedData")
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(key_pem, xmlsec.constants.KeyDataFormatPem))
    result = xmlsec.EncryptionContext(manager).decrypt(enc_data)
    return result if isinstance(result, etree._Element) else etree.fromstring(result)
