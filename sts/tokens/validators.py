"""Find the recorded token that a Validate, Renew, Cancel, ActAs or OnBehalfOf target names.

A target is a reference (the token id) or the token element itself, as parsed with the request. An inline SAML assertion is trusted only after its
signature verifies with this STS's certificate (signxml, which returns only what the signature covers; the id is
read from that); an EncryptedAssertion or xenc:EncryptedData, which the STS cannot decrypt (it is for the relying
party), is recognised by the hash recorded when it was issued.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml.exceptions import InvalidInput, InvalidSignature
from signxml.verifier import SignatureConfiguration, XMLVerifier

from sts import ns
from sts.errors import InvalidRequest
from sts.interfaces import TokenRecords
from sts.model import Resolution, TokenTarget

__all__ = ["Resolution", "TokenResolver", "token_hash"]  # Resolution now lives in sts.model; still importable here

_ID_ATTRIBUTE = {ns.qn(ns.SAML2, "Assertion"): "ID", ns.qn(ns.SAML1, "Assertion"): "AssertionID"}
_ENCRYPTED = frozenset({ns.qn(ns.SAML2, "EncryptedAssertion"), ns.qn(ns.XENC, "EncryptedData")})


def token_hash(element: etree._Element) -> str:
    """SHA-256 of the token's exclusive canonical form: the same wherever a client puts it."""
    return hashlib.sha256(etree.tostring(element, method="c14n", exclusive=True)).hexdigest()


class TokenResolver:
    """Built once per process with the STS certificates whose signatures it trusts."""

    def __init__(self, records: TokenRecords,
                 certificates: Sequence[x509.Certificate] | Callable[[], Sequence[x509.Certificate]]) -> None:
        """``certificates``: a fixed list, or a callable asked per verification (a keyring's published ones)."""
        self._records = records
        self._source = certificates if callable(certificates) else None
        self._pem: dict[x509.Certificate, str] = {}
        self._fixed = () if callable(certificates) else tuple(self._as_pem(c) for c in certificates)

    def _as_pem(self, cert: x509.Certificate) -> str:
        pem = self._pem.get(cert)
        if pem is None:
            pem = self._pem[cert] = cert.public_bytes(Encoding.PEM).decode()
        return pem

    @property
    def _certificates(self) -> tuple[str, ...]:
        if self._source is None:
            return self._fixed
        return tuple(self._as_pem(c) for c in self._source())

    def resolve(self, target: TokenTarget) -> Resolution:
        if target.reference is not None:
            record = self._records.get(target.reference)
            if record is None:
                raise InvalidRequest("unknown token reference", detail=target.reference)
            return Resolution(record)
        element = target.unverified_token
        if element is None:
            raise InvalidRequest("empty token target")
        if element.tag in _ENCRYPTED:
            record = self._records.get_by_hash(token_hash(element))
            return Resolution(record, None if record else "the encrypted token is not one this STS issued")
        id_attribute = _ID_ATTRIBUTE.get(element.tag)
        if id_attribute is None:
            return Resolution(None, "not a SAML token")
        token_id = self._verified_id(element, id_attribute)
        if token_id is None:
            return Resolution(None, "the token is not signed by this STS or was altered")
        record = self._records.get(token_id)
        return Resolution(record, None if record else "the token is unknown to this STS")

    def _verified_id(self, element: etree._Element, id_attribute: str) -> str | None:
        for cert in self._certificates:
            try:
                # signxml verifies a copy of the element on its own, never the request around it.
                result = XMLVerifier().verify(
                    element, x509_cert=cert, id_attribute=id_attribute, expect_references=1,
                    expect_config=SignatureConfiguration(require_x509=True),
                )
            except (InvalidSignature, InvalidInput, ValueError):
                continue
            verified = result[0] if isinstance(result, list) else result
            signed = verified.signed_xml
            return None if signed is None else signed.get(id_attribute)
        return None
