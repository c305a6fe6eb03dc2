"""signxml (PyPI): verifies with the STS certificate as the only trust anchor and returns what it covers;
python-xmlsec decrypts first (signxml has no XML Encryption)."""

from __future__ import annotations

from importlib.metadata import version
from typing import Final

from lxml import etree

from sts import ns

from ..xmlread import read_xml
from ..model import TokenCase, Verdict
from .reading import mismatches, read_assertion

__all__ = ["PEER"]

_ID_ATTR: Final = {ns.SAML2: "ID", ns.SAML1: "AssertionID"}


class Signxml:
    about = "signxml's XMLVerifier (PyPI), x509_cert pinned to the STS certificate; python-xmlsec decrypts"

    def __init__(self) -> None:
        self.name = f"signxml {version('signxml')}"

    def unavailable(self) -> str | None:
        return None

    def check(self, case: TokenCase) -> Verdict:
        from signxml.verifier import SignatureConfiguration, XMLVerifier  # noqa: PLC0415
        from signxml.exceptions import InvalidInput, InvalidSignature  # noqa: PLC0415

        try:
            assertion = _decrypt(case) if case.encrypted else read_xml(case.token)
        except Exception as err:  # noqa: BLE001 - python-xmlsec raises its own Error types
            return Verdict.failed(f"python-xmlsec could not decrypt: {err}")
        namespace = etree.QName(assertion).namespace or ""
        try:
            result = XMLVerifier().verify(
                etree.tostring(assertion), x509_cert=case.sts_cert_pem.decode(), id_attribute=_ID_ATTR[namespace],
                expect_config=SignatureConfiguration(require_x509=True))
        except (InvalidSignature, InvalidInput) as err:
            return Verdict.failed(f"signxml: {err}")
        signed = result.signed_xml if not isinstance(result, list) else None
        if signed is None:
            return Verdict.failed("signxml verified nothing")
        found = mismatches(read_assertion(signed), case.expected)
        return Verdict.failed("; ".join(found)) if found else Verdict.passed("verified")


def _decrypt(case: TokenCase) -> etree._Element:
    import xmlsec  # noqa: PLC0415

    if case.rp_key_pem is None:
        raise ValueError("no relying-party key to decrypt with")
    doc = read_xml(case.token)
    data = doc if etree.QName(doc).localname == "EncryptedData" else doc.find(ns.qn(ns.XENC, "EncryptedData"))
    manager = xmlsec.KeysManager()
    manager.add_key(xmlsec.Key.from_memory(case.rp_key_pem, xmlsec.constants.KeyDataFormatPem))
    result = xmlsec.EncryptionContext(manager).decrypt(data)
    return result if isinstance(result, etree._Element) else read_xml(result)


PEER = Signxml()
