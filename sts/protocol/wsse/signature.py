"""Signed SOAP requests: WSS 1.0/1.1 §8 (XML Signature in wsse:Security) with the X.509 Token Profile 1.1.

A client signs the soap:Body and the wsu:Timestamp with exclusive c14n and names its key in ds:KeyInfo through a
wsse:SecurityTokenReference: a Reference to a wsse:BinarySecurityToken (X509v3, Base64Binary), a KeyIdentifier
(X509SubjectKeyIdentifier, ThumbprintSHA1, X509v3) or ds:X509Data (X509IssuerSerial, X509Certificate). The key is
always a REGISTERED client certificate found through a ``KeyResolver``; a raw ds:KeyValue is refused.

Verification (:func:`verify_message`), in this order, cheapest refusals first:

1. Ids through ``xmlsafe.id_map`` (a duplicate Id is ``FailedCheck``: wrapping attacks need two elements with one Id);
2. the SignedInfo read: exclusive c14n everywhere, only ``#Id`` References (else ``UnsupportedAlgorithm`` /
   ``FailedCheck``); the key reference resolved to a registered certificate (else ``FailedAuthentication``);
3. the algorithms checked against the policy (RSA-SHA1/SHA-1 only when the client may use them);
4. coverage decided by identity, not by trusting the tree: a Reference that lands on a soap:Body which is not
   the Envelope's own Body child, or on a wsu:Timestamp other than this header's, is a wrapping attempt
   (``FailedCheck``); the real Body and Timestamp must both be referenced (else ``AuthenticationBadElements``);
5. signxml's ``XMLVerifier`` checks the signature value and every digest (``FailedCheck``);
6. the bytes signxml digested for the Body and the Timestamp are compared with the exclusive c14n of the
   identity-checked originals, so that signxml's own Id lookup and ours provably picked the same elements.
"""

from __future__ import annotations

import base64
import binascii
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from cryptography import x509
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml.verifier import SignatureConfiguration, VerifyResult, XMLVerifier
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod
from signxml.exceptions import SignXMLException

from sts import ns
from sts.tokens.crypto.keys import check_certificate
from sts.errors import (
    AuthenticationBadElements,
    FailedAuthentication,
    FailedCheck,
    InvalidRequest,
    SecurityHeaderError,
    UnsupportedAlgorithm,
    UnsupportedSecurityToken,
)
from sts.uris import BASE64_BINARY, EXC_C14N, DigestAlgorithm, SignatureAlgorithm
from sts.protocol.xmlsafe import id_map

_X509_PROFILE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3: Final = f"{_X509_PROFILE}#X509v3"
X509_SKI: Final = f"{_X509_PROFILE}#X509SubjectKeyIdentifier"
THUMBPRINT_SHA1: Final = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
_INCLUSIVE_NAMESPACES = ns.qn(EXC_C14N, "InclusiveNamespaces")
_SOAP_NAMESPACES = (ns.SOAP11, ns.SOAP12)


def _ds(local: str) -> str:
    return ns.qn(ns.DS, local)


def _wsse(local: str) -> str:
    return ns.qn(ns.WSSE, local)


# --- policy ---------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class AlgorithmPolicy:
    """The signature and digest algorithms a signed request may use."""

    signature_methods: frozenset[SignatureAlgorithm]
    digest_methods: frozenset[DigestAlgorithm]

    @classmethod
    def strict(cls) -> AlgorithmPolicy:
        """RSA-SHA256 / ECDSA-SHA256 with SHA-256 digests (the default)."""
        return cls(
            frozenset({SignatureAlgorithm.RSA_SHA256, SignatureAlgorithm.ECDSA_SHA256}),
            frozenset({DigestAlgorithm.SHA256}),
        )

    def with_sha1(self) -> AlgorithmPolicy:
        """This policy plus RSA-SHA1 and SHA-1 (legacy clients such as zeep's default signer)."""
        return AlgorithmPolicy(
            self.signature_methods | {SignatureAlgorithm.RSA_SHA1}, self.digest_methods | {DigestAlgorithm.SHA1}
        )

    def check(self, signature_method: str, digest_methods: tuple[str, ...]) -> None:
        """Raise ``UnsupportedAlgorithm`` (naming the algorithm) unless every algorithm is allowed."""
        if signature_method not in {a.value for a in self.signature_methods}:
            raise UnsupportedAlgorithm(f"signature method {signature_method}", detail=signature_method)
        allowed = {a.value for a in self.digest_methods}
        for digest in digest_methods:
            if digest not in allowed:
                raise UnsupportedAlgorithm(f"digest method {digest}", detail=digest)

    def signxml_config(self, location: str, now: datetime) -> SignatureConfiguration:
        return SignatureConfiguration(
            location=location,
            expect_references=True,  # any number: each one is matched to its element below
            signature_methods=frozenset(SxMethod(a.value) for a in self.signature_methods),
            digest_algorithms=frozenset(SxDigest(a.value) for a in self.digest_methods),
            verification_time=now,
        )


# --- key references (what ds:KeyInfo names; never itself trusted) ----------------------------------------------


@dataclass(frozen=True)
class CertificateReference:
    """A certificate carried in the message (BinarySecurityToken, X509Certificate): must still be registered."""

    certificate: x509.Certificate


@dataclass(frozen=True)
class IssuerSerialReference:
    issuer: str
    serial: int


@dataclass(frozen=True)
class SkiReference:
    ski: bytes


@dataclass(frozen=True)
class ThumbprintReference:
    sha1: bytes


KeyReference = CertificateReference | IssuerSerialReference | SkiReference | ThumbprintReference


@dataclass(frozen=True)
class TrustedKey:
    """A registered certificate the resolver vouches for, and whether its owner may use SHA-1."""

    certificate: x509.Certificate
    allow_sha1: bool = False


class KeyResolver(Protocol):
    """Registered certificate for a key reference; raises ``FailedAuthentication`` when none is registered."""

    def __call__(self, reference: KeyReference) -> TrustedKey: ...


# --- the result -------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class SignedMessage:
    """What one verified signature covers.

    ``signed_body`` is the soap:Body as signxml returns it for the Body's Reference: re-parsed from the exact
    bytes that were digested, so nothing unsigned (comments, a sibling added later) can be read through it. The
    original Body was additionally proved to be the Envelope's own Body child and to canonicalise to those very
    bytes, so the two are the same content; callers read the RST from ``signed_body`` only (DESIGN.md,
    "trust only what it returns").
    """

    certificate: x509.Certificate
    signed_ids: frozenset[str]
    body_signed: bool
    timestamp_signed: bool
    signed_body: etree._Element
    signature_value: bytes
    signature_method: SignatureAlgorithm


@dataclass(frozen=True)
class _Reference:
    uri_id: str
    digest_method: str
    inclusive_prefixes: tuple[str, ...] | None


@dataclass(frozen=True)
class UnverifiedSignature:
    """The one ds:Signature of a Security header as read, before any check of its value."""

    element: etree._Element
    signature_method: str
    references: tuple[_Reference, ...]
    key_reference: KeyReference


# --- reading ----------------------------------------------------------------------------------------------------


def find_signature(security: etree._Element | None) -> etree._Element | None:
    """The ds:Signature child of wsse:Security (None when unsigned); more than one is refused."""
    if security is None:
        return None
    signatures = security.findall(_ds("Signature"))
    if len(signatures) > 1:
        raise SecurityHeaderError("more than one ds:Signature in wsse:Security")
    return signatures[0] if signatures else None


def read_signature(
    signature: etree._Element, security: etree._Element, ids: Mapping[str, etree._Element]
) -> UnverifiedSignature:
    """Read SignedInfo and KeyInfo; refuse every shape this STS does not verify."""
    signed_info = signature.find(_ds("SignedInfo"))
    if signed_info is None:
        raise FailedCheck("Signature without SignedInfo")
    c14n = signed_info.find(_ds("CanonicalizationMethod"))
    c14n_alg = c14n.get("Algorithm", "") if c14n is not None else ""
    if c14n_alg != EXC_C14N:
        raise UnsupportedAlgorithm(f"canonicalization {c14n_alg}", detail=c14n_alg or "none")
    method = signed_info.find(_ds("SignatureMethod"))
    signature_method = method.get("Algorithm", "") if method is not None else ""
    references = tuple(_read_reference(r) for r in signed_info.findall(_ds("Reference")))
    if not references:
        raise FailedCheck("SignedInfo without a Reference")
    return UnverifiedSignature(
        element=signature,
        signature_method=signature_method,
        references=references,
        key_reference=_read_key_info(signature.find(_ds("KeyInfo")), security, ids),
    )


def _read_reference(reference: etree._Element) -> _Reference:
    uri = reference.get("URI", "")
    if not uri.startswith("#") or not _NCNAME.match(uri[1:]):
        # Only same-document bare-name references: no whole-document "", no XPointer, no external URIs.
        raise FailedCheck(f"Reference URI {uri!r}")
    transforms = reference.findall(f"{_ds('Transforms')}/{_ds('Transform')}")
    if len(transforms) != 1 or transforms[0].get("Algorithm") != EXC_C14N:
        algs = ",".join(t.get("Algorithm", "?") for t in transforms) or "none"
        raise UnsupportedAlgorithm(f"reference transforms {algs}", detail=algs)
    inclusive = transforms[0].find(_INCLUSIVE_NAMESPACES)
    prefixes = tuple(inclusive.get("PrefixList", "").split()) if inclusive is not None else None
    digest = reference.find(_ds("DigestMethod"))
    return _Reference(uri[1:], digest.get("Algorithm", "") if digest is not None else "", prefixes)


def _read_key_info(
    key_info: etree._Element | None, security: etree._Element, ids: Mapping[str, etree._Element]
) -> KeyReference:
    if key_info is None:
        raise UnsupportedSecurityToken("Signature without KeyInfo")
    if key_info.find(_ds("KeyValue")) is not None or key_info.find(ns.qn(ns.DS11, "DEREncodedKeyValue")) is not None:
        # A bare public key proves possession of some key, never who holds it.
        raise UnsupportedSecurityToken("ds:KeyValue keys are refused: reference a registered certificate")
    token_reference = key_info.find(_wsse("SecurityTokenReference"))
    if token_reference is not None:
        return _read_token_reference(token_reference, security, ids)
    x509_data = key_info.find(_ds("X509Data"))
    if x509_data is not None:
        return _read_x509_data(x509_data)
    raise UnsupportedSecurityToken("KeyInfo names no certificate")


def _read_token_reference(
    token_reference: etree._Element, security: etree._Element, ids: Mapping[str, etree._Element]
) -> KeyReference:
    reference = token_reference.find(_wsse("Reference"))
    if reference is not None:
        return _read_bst_reference(reference, security, ids)
    identifier = token_reference.find(_wsse("KeyIdentifier"))
    if identifier is not None:
        value_type = identifier.get("ValueType", "")
        encoding = identifier.get("EncodingType", BASE64_BINARY)
        if encoding != BASE64_BINARY:
            raise UnsupportedSecurityToken(f"KeyIdentifier encoding {encoding}")
        data = _b64(identifier.text)
        if value_type == X509_SKI:
            return SkiReference(data)
        if value_type == THUMBPRINT_SHA1:
            return ThumbprintReference(data)
        if value_type == X509V3:
            return CertificateReference(_certificate(data))
        raise UnsupportedSecurityToken(f"KeyIdentifier ValueType {value_type}")
    x509_data = token_reference.find(_ds("X509Data"))
    if x509_data is not None:
        return _read_x509_data(x509_data)
    raise UnsupportedSecurityToken("SecurityTokenReference names no certificate")


def _read_bst_reference(
    reference: etree._Element, security: etree._Element, ids: Mapping[str, etree._Element]
) -> KeyReference:
    uri = reference.get("URI", "")
    value_type = reference.get("ValueType")
    if value_type is not None and value_type != X509V3:
        raise UnsupportedSecurityToken(f"token reference ValueType {value_type}")
    token = ids.get(uri[1:]) if uri.startswith("#") else None
    # The token must be a BinarySecurityToken of this very header, found by its unique Id.
    if token is None or token.tag != _wsse("BinarySecurityToken") or token.getparent() is not security:
        raise UnsupportedSecurityToken(f"token reference {uri!r} names no BinarySecurityToken of this header")
    if token.get("ValueType") != X509V3:
        raise UnsupportedSecurityToken(f"BinarySecurityToken ValueType {token.get('ValueType')}")
    if token.get("EncodingType", BASE64_BINARY) != BASE64_BINARY:
        raise UnsupportedSecurityToken(f"BinarySecurityToken EncodingType {token.get('EncodingType')}")
    return CertificateReference(_certificate(_b64(token.text)))


def _read_x509_data(x509_data: etree._Element) -> KeyReference:
    cert_text = x509_data.findtext(_ds("X509Certificate"))
    if cert_text is not None:
        return CertificateReference(_certificate(_b64(cert_text)))
    issuer_serial = x509_data.find(_ds("X509IssuerSerial"))
    if issuer_serial is not None:
        issuer = (issuer_serial.findtext(_ds("X509IssuerName")) or "").strip()
        serial = (issuer_serial.findtext(_ds("X509SerialNumber")) or "").strip()
        if not issuer or not serial.isdigit():
            raise UnsupportedSecurityToken("malformed X509IssuerSerial")
        return IssuerSerialReference(issuer, int(serial))
    ski = x509_data.findtext(_ds("X509SKI"))
    if ski is not None:
        return SkiReference(_b64(ski))
    raise UnsupportedSecurityToken("X509Data names no certificate")


def _b64(text: str | None) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise SecurityHeaderError("malformed base64 in a security token") from None


def _certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise SecurityHeaderError("malformed X.509 certificate in a security token") from None


_NAME_OVERRIDES = {"E": NameOID.EMAIL_ADDRESS, "EMAILADDRESS": NameOID.EMAIL_ADDRESS, "S": NameOID.STATE_OR_PROVINCE_NAME}


def parse_issuer_name(text: str) -> x509.Name | None:
    """An X509IssuerName (RFC 4514/2253, or OpenSSL's ``CN=a, O=b`` with spaces) as a Name; None if unreadable."""
    for candidate in (text, re.sub(r"(?<!\\)\s*,\s*", ",", text)):
        try:
            return x509.Name.from_rfc4514_string(candidate, _NAME_OVERRIDES)
        except ValueError:
            continue
    return None


# --- verifying --------------------------------------------------------------------------------------------------


def verify_message(
    envelope_root: etree._Element,
    security: etree._Element,
    *,
    resolve: KeyResolver,
    allowed: AlgorithmPolicy,
    now: datetime,
) -> SignedMessage:
    """Verify the signature in ``security`` (a wsse:Security header block of ``envelope_root``) and say what it covers.

    Raises ``FailedCheck`` (bad value or digest, wrapping, duplicate Id), ``UnsupportedAlgorithm``,
    ``AuthenticationBadElements`` (Body or Timestamp not signed), ``FailedAuthentication`` (certificate not
    registered, expired or not yet valid) or ``UnsupportedSecurityToken`` (a KeyInfo this STS does not accept).
    """
    signature = find_signature(security)
    if signature is None:
        raise FailedAuthentication("the request is not signed")
    try:
        ids = id_map(envelope_root)
    except InvalidRequest as exc:
        raise FailedCheck(str(exc)) from None
    unverified = read_signature(signature, security, ids)
    trusted = resolve(unverified.key_reference)
    try:
        check_certificate(trusted.certificate, now)
    except ValueError as exc:
        raise FailedAuthentication(f"client certificate: {exc}") from None
    policy = allowed.with_sha1() if trusted.allow_sha1 else allowed
    policy.check(unverified.signature_method, tuple(r.digest_method for r in unverified.references))

    body, timestamp = _envelope_body(envelope_root), security.find(ns.qn(ns.WSU, "Timestamp"))
    targets = [_target(ids, r.uri_id, body, timestamp) for r in unverified.references]
    body_index = next((i for i, t in enumerate(targets) if t is body), None)
    timestamp_index = next((i for i, t in enumerate(targets) if timestamp is not None and t is timestamp), None)
    if body_index is None:
        raise AuthenticationBadElements("the soap:Body is not signed", detail="Body")
    if timestamp_index is None:
        raise AuthenticationBadElements("the wsu:Timestamp is not signed", detail="Timestamp")

    if not "".join((signature.findtext(_ds("SignatureValue")) or "").split()):
        raise FailedCheck("an empty ds:SignatureValue")
    results = _signxml_verify(envelope_root, security, trusted.certificate, policy, now)
    if len(results) != len(unverified.references):
        raise FailedCheck("signxml verified a different number of references")
    for index, element in ((body_index, body), (timestamp_index, timestamp)):
        assert element is not None  # both found above
        if results[index].signed_data != _c14n(element, unverified.references[index].inclusive_prefixes):
            raise FailedCheck("the verified bytes are not the identity-checked element")
    signed_body = results[body_index].signed_xml
    if signed_body is None or signed_body.tag != body.tag:
        raise FailedCheck("the signed Body did not parse back")
    return SignedMessage(
        certificate=trusted.certificate,
        signed_ids=frozenset(r.uri_id for r in unverified.references),
        body_signed=True,
        timestamp_signed=True,
        signed_body=signed_body,
        signature_value=_b64(signature.findtext(_ds("SignatureValue"))),
        signature_method=SignatureAlgorithm(unverified.signature_method),
    )


def _envelope_body(root: etree._Element) -> etree._Element:
    namespace = ns.split_qn(root.tag)[0] if isinstance(root.tag, str) else ""
    if namespace not in _SOAP_NAMESPACES:
        raise InvalidRequest("root element is not a SOAP Envelope")
    body = root.find(ns.qn(namespace, "Body"))
    if body is None:
        raise InvalidRequest("soap:Body is missing")
    return body


def _target(
    ids: Mapping[str, etree._Element], uri_id: str, body: etree._Element, timestamp: etree._Element | None
) -> etree._Element:
    """The element a Reference names; a Body or Timestamp other than the real ones is a wrapping attempt."""
    element = ids.get(uri_id)
    if element is None:
        raise FailedCheck(f"Reference #{uri_id} names no element")
    tag = element.tag if isinstance(element.tag, str) else ""
    namespace, local = ns.split_qn(tag)
    if local == "Body" and namespace in _SOAP_NAMESPACES and element is not body:
        raise FailedCheck(f"Reference #{uri_id} names a soap:Body that is not the Envelope's")
    if tag == ns.qn(ns.WSU, "Timestamp") and element is not timestamp:
        raise FailedCheck(f"Reference #{uri_id} names a Timestamp outside this Security header")
    return element


def _signxml_verify(
    root: etree._Element, security: etree._Element, certificate: x509.Certificate, policy: AlgorithmPolicy,
    now: datetime,
) -> list[VerifyResult]:
    header = security.getparent()
    if header is None or header.getparent() is not root:
        raise SecurityHeaderError("wsse:Security is not a header block of this Envelope")
    location = f"./{header.tag}/{security.tag}/"
    try:
        results = XMLVerifier().verify(
            root, x509_cert=certificate, expect_config=policy.signxml_config(location, now)
        )
    except (SignXMLException, etree.DocumentInvalid, ValueError, TypeError) as exc:
        # TypeError too: signxml hands malformed values (an absent text) straight to base64 and the like.
        raise FailedCheck(f"signature verification failed: {exc}") from None
    return results if isinstance(results, list) else [results]


def _c14n(element: etree._Element, prefixes: tuple[str, ...] | None) -> bytes:
    return bytes(
        etree.tostring(
            element, method="c14n", exclusive=True, with_comments=False, inclusive_ns_prefixes=list(prefixes or ())
        )
    )


__all__ = [
    "THUMBPRINT_SHA1",
    "X509V3",
    "X509_SKI",
    "AlgorithmPolicy",
    "CertificateReference",
    "IssuerSerialReference",
    "KeyReference",
    "KeyResolver",
    "SignedMessage",
    "SkiReference",
    "ThumbprintReference",
    "TrustedKey",
    "UnverifiedSignature",
    "find_signature",
    "parse_issuer_name",
    "read_signature",
    "verify_message",
]
