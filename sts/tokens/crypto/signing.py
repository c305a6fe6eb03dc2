"""Enveloped XML signatures (XML-DSig 1.1 §4, exclusive c14n 1.0) on lxml's c14n and ``cryptography``.

The shape is the one SAML's signature profile (SAML 2.0 core §5.4) and strict verifiers demand: one
Reference to ``#<ID>``, the enveloped-signature and exc-c14n transforms only, exc-c14n SignedInfo, the
certificate in KeyInfo.
Signing directly (not through xmlsec) keeps the per-call cost close to the bare RSA signature. The signed element is
canonicalised once (its digest); SignedInfo's canonical bytes are written from their canonical form worked out once
per signer, with only the Reference URI and the DigestValue filled in (exclusive c14n of SignedInfo depends on
nothing outside it: only ``ds`` is visibly used there).
Every Signature is made one way, ``signature_for``: it hashes a token given in canonical form
(``canonical.SignableParts``) and fills the whole Signature's canonical form, worked out once per signer the same
way. ``sign`` (an element) canonicalises the element, and parses the Signature made so into place.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Callable
from typing import Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from sts import ns
from sts.offload import together
from sts.protocol.xmlsafe import parse_trusted
from sts.tokens.crypto import canonical
from sts.tokens.crypto.canonical import SignableParts
from sts.uris import ENVELOPED, EXC_C14N, DigestAlgorithm, SignatureAlgorithm
from sts.tokens.crypto.keys import PrivateKey, SigningKey

_DS: Final = {"ds": ns.DS}

#: hashlib constructors of the digest algorithms (hashlib is the fastest route for a one-shot digest).
_DIGESTS: Final[dict[DigestAlgorithm, Callable[[bytes], "hashlib._Hash"]]] = {
    DigestAlgorithm.SHA256: hashlib.sha256,
    DigestAlgorithm.SHA1: hashlib.sha1,
}

_RSA_ALGORITHMS: Final = {
    SignatureAlgorithm.RSA_SHA256: hashes.SHA256,
    SignatureAlgorithm.RSA_SHA1: hashes.SHA1,
}
_EC_ALGORITHMS: Final = {SignatureAlgorithm.ECDSA_SHA256: hashes.SHA256}


def _ds(local: str) -> str:
    return ns.qn(ns.DS, local)


def c14n(element: etree._Element) -> bytes:
    """Exclusive c14n 1.0 without comments of ``element`` in its context (only visibly used namespaces)."""
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def algorithm_fits_key(algorithm: SignatureAlgorithm, key: SigningKey) -> bool:
    """Whether ``key`` can make signatures of ``algorithm`` (RSA keys for RSA, EC keys for ECDSA)."""
    return algorithm in (_EC_ALGORITHMS if key.is_ec else _RSA_ALGORITHMS)


def default_algorithm(key: SigningKey | PrivateKey) -> SignatureAlgorithm:
    """RSA-SHA256 for an RSA key, ECDSA-SHA256 for an EC key (both with SHA-256 digests): what the STS signs its
    tokens with, and what a current client signs its requests with."""
    is_ec = key.is_ec if isinstance(key, SigningKey) else isinstance(key, ec.EllipticCurvePrivateKey)
    return SignatureAlgorithm.ECDSA_SHA256 if is_ec else SignatureAlgorithm.RSA_SHA256


class XmlSigner:
    """Signs with one key and one algorithm; all that does not depend on the element is prebuilt."""

    def __init__(
        self,
        key: SigningKey,
        algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256,
        digest: DigestAlgorithm = DigestAlgorithm.SHA256,
    ) -> None:
        if not algorithm_fits_key(algorithm, key):
            kind = "an EC" if key.is_ec else "an RSA"
            raise ValueError(f"{algorithm.name} signatures cannot be made with {kind} key")
        self.key = key
        self.algorithm = algorithm
        self.digest = digest
        self._hash = _DIGESTS[digest]
        self._sign_bytes = self._signature_function()
        marked = self._marked_template()
        # SignedInfo alone (what is signed: ds declared on it) and the whole Signature (what goes in the token).
        self._signed_info_parts = _split(c14n(marked[0]), (_URI_MARK, _DIGEST_MARK))
        self._signature_parts = _split(c14n(marked), (_URI_MARK, _DIGEST_MARK, _VALUE_MARK))

    def signature_for(self, parts: SignableParts, reference_id: str) -> bytes:
        """The enveloped ds:Signature over a token given in canonical form, as canonical bytes to go between
        ``parts.sent_head`` and ``parts.tail`` (``parts.signed``): no tree is built or canonicalised."""
        digest_value = base64.b64encode(self._hash(parts.head + parts.tail).digest()).decode("ascii")
        uri = canonical.attribute("#" + reference_id).encode("utf-8")
        value = self._signature_value(uri, digest_value)
        before_uri, before_digest, before_value, rest = self._signature_parts
        return b"".join((before_uri, uri, before_digest, digest_value.encode("ascii"), before_value,
                         value.encode("ascii"), rest))

    def _signature_value(self, uri: bytes, digest_value: str) -> str:
        """The SignatureValue over SignedInfo's exclusive c14n (what a verifier computes from the document)."""
        before_uri, before_digest, rest = self._signed_info_parts
        signed_info = b"".join((before_uri, uri, before_digest, digest_value.encode("ascii"), rest))
        # With the other requests' signatures on the event loop: the key's code and data stay warm (an RSA-2048
        # signature costs 300 µs among a request's other work, 256 µs right after another).
        return base64.b64encode(together("sign", self._sign_bytes, signed_info)).decode("ascii")

    def sign(
        self, element: etree._Element, reference_id: str, *, after: etree._Element | None = None
    ) -> etree._Element:
        """Insert an enveloped ds:Signature over ``element`` (whose Id is ``reference_id``) and return it.

        The Signature goes right after ``after`` (SAML 2.0: after Issuer) or last (SAML 1.1). The element must
        not change afterwards: the digest covers it as it is now.
        """
        if reference_id not in element.attrib.values():
            # A Reference to an Id the element does not carry would verify nothing (or something else).
            raise ValueError(f"the element has no Id attribute {reference_id!r}")
        if after is not None and after.getparent() is not element:
            raise ValueError("the Signature must go after a child of the signed element")
        # Digest before inserting: what the enveloped-signature transform yields (the Signature removed). The
        # Signature itself is made as for a token written in canonical form: one way to make one.
        canonical_form = c14n(element)
        parts = SignableParts(head=canonical_form, tail=b"", sent_head=canonical_form)
        signature = parse_trusted(self.signature_for(parts, reference_id))
        if after is None:
            element.append(signature)
        else:
            after.addnext(signature)
        return signature

    def _signature_function(self) -> Callable[[bytes], bytes]:
        private_key = self.key.private_key
        if isinstance(private_key, rsa.RSAPrivateKey):
            return _rsa_signer(private_key, _RSA_ALGORITHMS[self.algorithm]())
        return _ecdsa_signer(private_key, _EC_ALGORITHMS[self.algorithm]())

    def _marked_template(self) -> etree._Element:
        """The ds:Signature with marks where the Reference URI, DigestValue and SignatureValue go: its canonical
        parts are worked out from it once, by lxml, so the fixed bytes are exactly what c14n writes."""
        signature = etree.Element(_ds("Signature"), nsmap=_DS)
        signed_info = etree.SubElement(signature, _ds("SignedInfo"))
        etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
        etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=self.algorithm.value)
        reference = etree.SubElement(signed_info, _ds("Reference"), URI=_URI_MARK)
        transforms = etree.SubElement(reference, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=ENVELOPED)
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=self.digest.value)
        etree.SubElement(reference, _ds("DigestValue")).text = _DIGEST_MARK
        etree.SubElement(signature, _ds("SignatureValue")).text = _VALUE_MARK
        key_info = etree.SubElement(signature, _ds("KeyInfo"))
        x509_data = etree.SubElement(key_info, _ds("X509Data"))
        etree.SubElement(x509_data, _ds("X509Certificate")).text = self.key.cert_b64
        return signature


_URI_MARK: Final = "urn:x-sts:reference-uri"
_DIGEST_MARK: Final = "x-sts-digest-value"
_VALUE_MARK: Final = "x-sts-signature-value"


def _split(canonical_form: bytes, marks: tuple[str, ...]) -> tuple[bytes, ...]:
    """``canonical_form`` cut at each mark in turn: the fixed bytes between the values, exactly as c14n wrote them."""
    parts: list[bytes] = []
    rest = canonical_form
    for mark in marks:
        before, rest = rest.split(mark.encode("ascii"))
        parts.append(before)
    return (*parts, rest)


def _rsa_signer(key: rsa.RSAPrivateKey, digest: hashes.HashAlgorithm) -> Callable[[bytes], bytes]:
    pkcs1 = padding.PKCS1v15()
    return lambda data: key.sign(data, pkcs1, digest)


def _ecdsa_signer(key: ec.EllipticCurvePrivateKey, digest: hashes.HashAlgorithm) -> Callable[[bytes], bytes]:
    ecdsa = ec.ECDSA(digest)
    size = (key.curve.key_size + 7) // 8

    def sign(data: bytes) -> bytes:
        # XML-DSig 1.1 §6.4.3: the value is r || s, each left-padded to the curve size, not DER.
        r, s = decode_dss_signature(key.sign(data, ecdsa))
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")

    return sign
