"""The one token-verification path: Validate, Renew, Cancel, ActAs/OnBehalfOf and the relying party's verifier.

Specs: XML-DSig 1.1 §3.2 and SAML 2.0 core §5.4 (the signature profile: one enveloped Signature, a child of the
Assertion, one Reference to its own ID, exclusive c14n), SAML 1.1 core §5, XML-Enc 1.0 §3-§5 and 1.1 §5.2.4.

What every caller gets from here, in this order, before anything reads the token:

1. exactly one token in the document (``check_one_token``): one saml:Assertion (1.1 or 2.0), EncryptedAssertion
   or xenc:EncryptedData, and it is the element the caller was asked about; a second one anywhere (beside the
   signed one, in Advice, elsewhere in the RSTR or envelope) is refused: an application that reads "the
   assertion" must never read an unsigned one (the crewjam/saml and samlify CVEs);
2. Ids unique across the whole document (``xmlsafe.id_map``);
3. the algorithms checked against an ``AlgorithmAllowList`` BEFORE any cryptography: an EncryptedKey transported
   with RSA PKCS#1 v1.5 is never decrypted (Bleichenbacher), AES-CBC data never when the policy is AES-GCM
   (Jager and Somorovsky), a SHA-1 signature never checked when SHA-256 is required;
4. the signature verified with the pinned certificates only (never the one in KeyInfo; each within its validity
   period; a KeyValue beside it must name the same key), in one pass of our own (``verify_assertion``: the
   Signature against the XML-DSig schema, one c14n of SignedInfo, one public-key operation with the cached key
   of the certificate, one c14n of the assertion without its Signature; the SignatureValue check is
   ``sts.protocol.wsse.signature.verify_signature_value``, the one signed requests use). What is returned is the
   digested bytes, re-parsed (no comment, nothing unsigned), and it must be the token element itself: same tag,
   same ID, the Signature its child. Never an ancestor or a sibling (XML signature wrapping). Until issue 14 this
   step was signxml's XMLVerifier; tests/differential/test_token_differential.py holds the two (and xmlsec1) to
   the same answers.

Every failure is a ``TokenRejected`` with a reason and a code; the codes are listed on the class.
"""

from __future__ import annotations

import base64
import binascii
import functools
import hashlib
import hmac
import logging
import threading
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from enum import Enum
from typing import Final, TypeVar

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml.algorithms import DigestAlgorithm as SxDigest
from signxml.algorithms import SignatureMethod as SxMethod
from signxml.verifier import XMLVerifier

from sts import ns
from sts.errors import FailedCheck, InvalidRequest
from sts.protocol import xmlsafe
from sts.protocol.wsse.signature import Canonicalization, verify_signature_value
from sts.tokens.crypto.encryption import decrypt_element, key_transport_uri
from sts.tokens.crypto.keys import PrivateKey
from sts.uris import (DATA_ENCRYPTION_NAMES, DIGEST_NAMES, ENVELOPED, EXC_C14N, KEY_TRANSPORT_NAMES,
                      LEGACY_ALGORITHM_NAMES, SIGNATURE_NAMES, DataEncryption, DigestAlgorithm, KeyTransport,
                      SignatureAlgorithm)

__all__ = [
    "AlgorithmAllowList",
    "TokenRejected",
    "check_one_token",
    "decrypt_token",
    "verify_assertion",
]

log = logging.getLogger(__name__)
_E = TypeVar("_E", bound=Enum)

ASSERTION_ID: Final = {ns.qn(ns.SAML2, "Assertion"): "ID", ns.qn(ns.SAML1, "Assertion"): "AssertionID"}
ENCRYPTED_ASSERTION: Final = ns.qn(ns.SAML2, "EncryptedAssertion")
ENCRYPTED_DATA: Final = ns.qn(ns.XENC, "EncryptedData")
#: Where an xenc:EncryptedData stands as a token (elsewhere, e.g. an encrypted SOAP Body, it is not one).
_TOKEN_HOLDERS: Final = frozenset({
    "RequestedSecurityToken", "Security", "ValidateTarget", "RenewTarget", "CancelTarget", "ActAs", "OnBehalfOf",
})


class TokenRejected(Exception):
    """The token is not acceptable; ``reason`` says why (fit for a log or a 401), ``code`` what kind of failure.

    Codes: signature, unsigned, algorithm (an algorithm the policy does not list, refused before any
    cryptography), expired, not-yet-valid, audience, issuer, claim-missing, decryption, malformed, replay.
    """

    def __init__(self, reason: str, code: str) -> None:
        super().__init__(reason)
        self.reason = reason
        self.code = code

    def __str__(self) -> str:
        return self.reason


# --- the allow-list ------------------------------------------------------------------------------------------------

LEGACY_NAMES: Final = LEGACY_ALGORITHM_NAMES
_TABLES: Final[tuple[Mapping[str, Enum], ...]] = (SIGNATURE_NAMES, DIGEST_NAMES, DATA_ENCRYPTION_NAMES,
                                                  KEY_TRANSPORT_NAMES)
#: The digest an STS signature of each method uses (RSA-SHA1 tokens carry SHA-1 digests).
_DIGEST_OF: Final = {SignatureAlgorithm.RSA_SHA256: DigestAlgorithm.SHA256,
                     SignatureAlgorithm.ECDSA_SHA256: DigestAlgorithm.SHA256,
                     SignatureAlgorithm.RSA_SHA1: DigestAlgorithm.SHA1}
#: How often one legacy algorithm's use is logged (per process): a busy legacy relying party must not flood the log.
LEGACY_LOG_INTERVAL: Final = 60.0


@functools.lru_cache(maxsize=None)
def algorithm_name(value: Enum) -> str:
    """The short name of an algorithm (``rsa-sha1``); its URI when it has none."""
    for table in _TABLES:
        for name, known in table.items():
            if known is value:
                return name
    return str(value.value)


def _lookup(text: str) -> Enum:
    key = text.strip()
    for table in _TABLES:
        found = table.get(key.lower())
        if found is not None:
            return found
        for known in table.values():
            if known.value == key:
                return known
    names = ", ".join(name for table in _TABLES for name in table)
    raise ValueError(f"unknown algorithm {text!r}: use a URI or one of {names}")


@dataclass(frozen=True)
class AlgorithmAllowList:
    """The algorithms a token may use, in four sets; anything else is refused (code ``algorithm``).

    The default is what this STS issues by default: RSA-SHA256 or ECDSA-SHA256 signatures, SHA-256 digests,
    AES-GCM (128/256) data encryption, RSA-OAEP (rsa-oaep-mgf1p) key transport. SHA-1, AES-CBC and RSA PKCS#1
    v1.5 are there only when configured (``allowing``); each use is then logged (``legacy()`` lists them).
    """

    signature_methods: frozenset[SignatureAlgorithm] = frozenset(
        {SignatureAlgorithm.RSA_SHA256, SignatureAlgorithm.ECDSA_SHA256})
    digest_methods: frozenset[DigestAlgorithm] = frozenset({DigestAlgorithm.SHA256})
    data_encryption: frozenset[DataEncryption] = frozenset({DataEncryption.AES256_GCM, DataEncryption.AES128_GCM})
    key_transport: frozenset[KeyTransport] = frozenset({KeyTransport.RSA_OAEP_MGF1P})
    _sx: tuple[frozenset[SxMethod], frozenset[SxDigest]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        sx = (frozenset(SxMethod(m.value) for m in self.signature_methods),
              frozenset(SxDigest(d.value) for d in self.digest_methods))
        object.__setattr__(self, "_sx", sx)

    def allowing(self, *algorithms: str | Enum) -> AlgorithmAllowList:
        """This list plus the named algorithms (short names or URIs; ``rsa-sha1`` brings its ``sha1`` digests).

        Raises ValueError naming an unknown algorithm.
        """
        sets: dict[type[Enum], set[Enum]] = {
            SignatureAlgorithm: set(self.signature_methods), DigestAlgorithm: set(self.digest_methods),
            DataEncryption: set(self.data_encryption), KeyTransport: set(self.key_transport)}
        for named in algorithms:
            value = named if isinstance(named, Enum) else _lookup(named)
            sets[type(value)].add(value)
            if isinstance(value, SignatureAlgorithm):
                sets[DigestAlgorithm].add(_DIGEST_OF[value])
        return AlgorithmAllowList(
            frozenset(sets[SignatureAlgorithm]), frozenset(sets[DigestAlgorithm]),  # type: ignore[arg-type]
            frozenset(sets[DataEncryption]), frozenset(sets[KeyTransport]))  # type: ignore[arg-type]

    def legacy(self) -> tuple[str, ...]:
        """The short names of the legacy algorithms this list allows (for ``sts check-config``), sorted."""
        enabled = {algorithm_name(a) for a in (*self.signature_methods, *self.digest_methods,
                                               *self.data_encryption, *self.key_transport)}
        return tuple(sorted(enabled & LEGACY_NAMES))

    def names(self) -> dict[str, tuple[str, ...]]:
        """Set -> the short names it allows (reports, ``--json``)."""
        return {kind: tuple(sorted(algorithm_name(a) for a in values)) for kind, values in (
            ("signature_methods", self.signature_methods), ("digest_methods", self.digest_methods),
            ("data_encryption", self.data_encryption), ("key_transport", self.key_transport))}

    # --- the checks (before any cryptography) ---

    def check_signature(self, method_uri: str, digest_uri: str) -> tuple[SignatureAlgorithm, DigestAlgorithm]:
        """The SignatureMethod and DigestMethod; ``TokenRejected`` (algorithm) unless both are allowed."""
        method = _allowed(method_uri, SignatureAlgorithm, self.signature_methods, "signature method")
        digest = _allowed(digest_uri, DigestAlgorithm, self.digest_methods, "digest method")
        _log_legacy(method, digest)
        return method, digest

    def check_encryption(self, data_uri: str, transport_uri: str, oaep_digest_uri: str | None) -> None:
        """``TokenRejected`` (algorithm) unless the data encryption and the key transport are allowed."""
        data = _allowed(data_uri, DataEncryption, self.data_encryption, "data encryption")
        self.check_key_transport(transport_uri, oaep_digest_uri)
        _log_legacy(data)

    def check_key_transport(self, transport_uri: str, oaep_digest_uri: str | None) -> None:
        transport = _allowed(transport_uri, KeyTransport, self.key_transport, "key transport")
        if oaep_digest_uri is not None and oaep_digest_uri != DigestAlgorithm.SHA1.value:
            # rsa-oaep-mgf1p is OAEP with SHA-1 (XML-Enc 1.0 §5.4.2); another digest is not what we decrypt.
            raise TokenRejected(f"RSA-OAEP digest {oaep_digest_uri!r} is not allowed", "algorithm")
        _log_legacy(transport)

    @property
    def signxml_methods(self) -> frozenset[SxMethod]:
        return self._sx[0]

    @property
    def signxml_digests(self) -> frozenset[SxDigest]:
        return self._sx[1]


def _allowed(uri: str, kind: type[_E], allowed: frozenset[_E], what: str) -> _E:
    try:
        value = kind(uri)
    except ValueError:
        raise TokenRejected(f"{what} {uri!r} is not allowed", "algorithm") from None
    if value not in allowed:
        raise TokenRejected(f"{what} {algorithm_name(value)} ({uri}) is not allowed by the policy", "algorithm")
    return value


_legacy_lock = threading.Lock()
_legacy_logged: dict[str, float] = {}


def _log_legacy(*used: Enum) -> None:
    """A warning when a legacy algorithm is used, at most once per ``LEGACY_LOG_INTERVAL`` per algorithm."""
    for value in used:
        name = algorithm_name(value)
        if name not in LEGACY_NAMES:
            continue
        now = time.monotonic()
        with _legacy_lock:
            last = _legacy_logged.get(name)
            if last is not None and now - last < LEGACY_LOG_INTERVAL:
                continue
            _legacy_logged[name] = now
        log.warning("legacy algorithm %s accepted in a token (allowed by configuration; at most one such line "
                    "per %d s)", name, LEGACY_LOG_INTERVAL)


# --- one token per document ----------------------------------------------------------------------------------------


def _token_elements(root: etree._Element) -> list[etree._Element]:
    found = []
    for element in root.iter(*ASSERTION_ID, ENCRYPTED_ASSERTION, ENCRYPTED_DATA):
        if element.tag == ENCRYPTED_DATA and element is not root:
            parent = element.getparent()
            if parent is None or parent.tag == ENCRYPTED_ASSERTION:
                continue  # the content of an EncryptedAssertion: the same token
            if not isinstance(parent.tag, str) or ns.split_qn(parent.tag)[1] not in _TOKEN_HOLDERS:
                continue
        found.append(element)
    return found


def check_one_token(scope: etree._Element, token: etree._Element) -> None:
    """``token`` is the one token in ``scope`` (a document or an RST), and Ids are unique in its whole document.

    ``TokenRejected`` (signature) for a duplicate Id or a second token.
    """
    try:
        xmlsafe.id_map(scope.getroottree().getroot())
    except InvalidRequest as exc:
        raise TokenRejected(f"duplicate Id {exc.detail!r} in the document (signature wrapping)", "signature") from None
    others = [e for e in _token_elements(scope) if e is not token]
    if others:
        # A second token is what signature wrapping needs: the signature would cover one, a reader take the other.
        what = ns.split_qn(others[0].tag)[1]
        raise TokenRejected(f"the document holds more than one token (another {what}): only one is accepted",
                            "signature")


# --- decryption ----------------------------------------------------------------------------------------------------


def decrypt_token(element: etree._Element, private_key: PrivateKey | None,
                  algorithms: AlgorithmAllowList) -> etree._Element:
    """The assertion inside an EncryptedAssertion or xenc:EncryptedData, as the root of its own document.

    The algorithms are checked before the key is touched. ``TokenRejected``: algorithm, decryption, malformed.
    """
    if element.tag == ENCRYPTED_ASSERTION:
        inner = element.find(ENCRYPTED_DATA)
        if inner is None:
            raise TokenRejected("an EncryptedAssertion without xenc:EncryptedData", "malformed")
        element = inner
    method = element.find(ns.qn(ns.XENC, "EncryptionMethod"))
    encrypted_key = element.find(f"{{{ns.DS}}}KeyInfo/{{{ns.XENC}}}EncryptedKey")
    if encrypted_key is None:
        raise TokenRejected("no xenc:EncryptedKey in the EncryptedData's KeyInfo", "decryption")
    oaep_digest = encrypted_key.find(f"{{{ns.XENC}}}EncryptionMethod/{{{ns.DS}}}DigestMethod")
    algorithms.check_encryption(
        (method.get("Algorithm") or "").strip() if method is not None else "",
        key_transport_uri(encrypted_key),
        (oaep_digest.get("Algorithm") or "").strip() if oaep_digest is not None else None)
    if private_key is None:
        raise TokenRejected("the token is encrypted and no relying party key is configured", "decryption")
    try:
        decrypted = decrypt_element(element, private_key, allowed_data=algorithms.data_encryption,
                                    allowed_transport=algorithms.key_transport)
    except InvalidRequest as exc:
        raise TokenRejected(f"the decrypted token is malformed: {exc}", "malformed") from None
    except ValueError as exc:
        raise TokenRejected(f"the token does not decrypt: {exc}", "decryption") from None
    check_one_token(decrypted, decrypted)
    return decrypted


# --- the signature -------------------------------------------------------------------------------------------------

_DS_SIGNATURE: Final = ns.qn(ns.DS, "Signature")
_INCLUSIVE_NAMESPACES: Final = ns.qn(EXC_C14N, "InclusiveNamespaces")
_DSIG11: Final = "http://www.w3.org/2009/xmldsig11#"
_KEY_INFO, _KEY_VALUE = ns.qn(ns.DS, "KeyInfo"), ns.qn(ns.DS, "KeyValue")
_DER_KEY_VALUE: Final = ns.qn(_DSIG11, "DEREncodedKeyValue")
#: hashlib's name of each DigestMethod the allow-list can admit.
_HASHLIB: Final = {DigestAlgorithm.SHA256: "sha256", DigestAlgorithm.SHA1: "sha1"}
#: How many attributes of the Id's local name (in any namespace, as signxml resolves a ``#Id``) carry the Id, in
#: the assertion and below (never its ancestors: it is verified as its own document).
_REFERENCED: Final = etree.XPath("count(.//@*[. = $id][local-name() = $name])")


@dataclass(frozen=True)
class _Pinned:
    """What one trusted certificate costs to use, worked out once per certificate (not per token)."""

    certificate: x509.Certificate
    public_key: object
    der: bytes
    spki: bytes
    not_before: datetime
    not_after: datetime


@functools.lru_cache(maxsize=64)
def _pinned(certificate: x509.Certificate) -> _Pinned:
    key = certificate.public_key()
    spki = key.public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
    return _Pinned(certificate, key, certificate.public_bytes(serialization.Encoding.DER), spki,
                   certificate.not_valid_before_utc, certificate.not_valid_after_utc)


@dataclass(frozen=True)
class _SignatureShape:
    """The parts of an assertion's one Signature that ``check_signature_shape`` admitted."""

    signature: etree._Element
    signed_info: etree._Element
    signed_info_c14n: Canonicalization
    reference_c14n: Canonicalization
    method: SignatureAlgorithm
    digest: DigestAlgorithm
    digest_value: etree._Element


def verify_assertion(assertion: etree._Element, certificates: Sequence[x509.Certificate],
                     algorithms: AlgorithmAllowList, *, when: datetime | None = None) -> etree._Element:
    """What the assertion's signature covers (the digested bytes, re-parsed), which is the assertion itself.

    ``assertion`` must be a saml:Assertion already admitted by ``check_one_token``; it is verified as its own
    document (its ancestors take no part, their namespaces only as serialisation carries them). Only
    ``certificates`` are trusted, each only within its validity period at ``when`` (default: now).
    ``TokenRejected``: unsigned, signature, algorithm, malformed.

    One pass, cheapest refusals first (held to signxml's XMLVerifier and xmlsec1 by tests/differential): the
    shape and the algorithms, the Signature against the XML-DSig schema, the SignatureValue over the canonical
    SignedInfo with the pinned key, then the digest over the assertion without its Signature (the enveloped
    transform) in exclusive c14n. Comments are not digested, and what is returned is parsed from those bytes.
    """
    id_attribute = ASSERTION_ID.get(assertion.tag)
    if id_attribute is None:
        raise TokenRejected(f"not a SAML assertion: {ns.split_qn(str(assertion.tag))[1] or '?'}", "malformed")
    assertion_id = assertion.get(id_attribute)
    if not assertion_id:
        raise TokenRejected(f"the assertion has no {id_attribute}", "malformed")
    shape = check_signature_shape(assertion, assertion_id, algorithms)
    if _REFERENCED(assertion, id=assertion_id, name=id_attribute) != 1:
        raise TokenRejected(f"the Id {assertion_id!r} names more than one element (signature wrapping)", "signature")
    if not _signature_schema().validate(shape.signature):
        raise TokenRejected("the Signature does not follow the XML-DSig schema", "signature")
    value = _b64(shape.signature.findtext(ns.qn(ns.DS, "SignatureValue")), "SignatureValue")
    signed_info = _canonical(shape.signed_info_c14n, shape.signed_info, reference=False)
    _check_signature_value(shape, value, signed_info, _hinted_first(assertion, certificates), when)
    digested = _canonical(shape.reference_c14n, _enveloped(assertion, shape.signature), reference=True)
    expected = _b64(_text(shape.digest_value), "DigestValue")
    if not hmac.compare_digest(hashlib.new(_HASHLIB[shape.digest], digested).digest(), expected):
        raise TokenRejected("the signature does not verify with the STS certificate (digest mismatch)", "signature")
    try:
        signed = xmlsafe.parse_trusted(digested)  # our own c14n output of an already-bounded parse
    except etree.XMLSyntaxError:
        raise TokenRejected("the signed bytes do not parse back", "signature") from None
    if signed.tag != assertion.tag or signed.get(id_attribute) != assertion_id:
        raise TokenRejected("the signature does not cover the assertion", "signature")
    return signed


def _check_signature_value(shape: _SignatureShape, value: bytes, signed_info: bytes,
                           certificates: Sequence[x509.Certificate], when: datetime | None) -> None:
    """The SignatureValue verifies with one of the pinned certificates valid at ``when``, else ``TokenRejected``."""
    at = when or datetime.now(timezone.utc)
    at = at.replace(tzinfo=timezone.utc) if at.tzinfo is None else at.astimezone(timezone.utc)  # naive: UTC
    failure = "no STS certificate is configured"
    for certificate in certificates:
        pinned = _pinned(certificate)
        if not pinned.not_before <= at <= pinned.not_after:
            failure = (f"the certificate is not valid at {at.isoformat()} (valid {pinned.not_before.isoformat()} "
                       f"to {pinned.not_after.isoformat()})")
            continue
        try:
            verify_signature_value(pinned.public_key, shape.method, value, signed_info,
                                   what=f"SignatureValue ({algorithm_name(shape.method)})", whose="the key")
        except FailedCheck as exc:
            failure = str(exc)
            continue
        _check_key_values(shape.signature, pinned)
        return
    raise TokenRejected(f"the signature does not verify with the STS certificate ({failure})", "signature")


def _check_key_values(signature: etree._Element, pinned: _Pinned) -> None:
    """A KeyValue or DEREncodedKeyValue beside the pinned key must name that key (never used, only compared):
    an ambiguous KeyInfo is refused as signxml refuses it."""
    key_info = next((child for child in signature if child.tag == _KEY_INFO), None)
    for child in key_info if key_info is not None else ():
        if child.tag == _DER_KEY_VALUE and _b64(_text(child), "DEREncodedKeyValue") != pinned.spki:
            raise TokenRejected("KeyInfo's DEREncodedKeyValue is not the STS certificate's key", "signature")
        if child.tag == _KEY_VALUE and not _key_value_matches(child, pinned.public_key):
            raise TokenRejected("KeyInfo's KeyValue is not the STS certificate's key", "signature")


def _key_value_matches(key_value: etree._Element, key: object) -> bool:
    rsa_value = key_value.find(ns.qn(ns.DS, "RSAKeyValue"))
    if rsa_value is not None:
        if not isinstance(key, rsa.RSAPublicKey):
            return False
        numbers = key.public_numbers()
        modulus = int.from_bytes(_b64(rsa_value.findtext(ns.qn(ns.DS, "Modulus")), "Modulus"), "big")
        exponent = int.from_bytes(_b64(rsa_value.findtext(ns.qn(ns.DS, "Exponent")), "Exponent"), "big")
        return (modulus, exponent) == (numbers.n, numbers.e)
    ec_value = key_value.find(f"{{{_DSIG11}}}ECKeyValue")
    if ec_value is not None:
        if not isinstance(key, ec.EllipticCurvePublicKey):
            return False
        point = key.public_bytes(serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint)
        return _b64(ec_value.findtext(f"{{{_DSIG11}}}PublicKey"), "PublicKey") == point
    return False


@functools.cache
def _signature_schema() -> etree.XMLSchema:
    """The XML-DSig 1.1 schema signxml ships (loaded once, on first use)."""
    return XMLVerifier.schemas()[0]  # type: ignore[no-untyped-call]


def _canonical(c14n: Canonicalization, element: etree._Element, *, reference: bool) -> bytes:
    try:
        return c14n.apply(element, reference=reference, where="the token signature")
    except FailedCheck as exc:
        raise TokenRejected(str(exc), "signature") from None


def _enveloped(assertion: etree._Element, signature: etree._Element) -> etree._Element:
    """A copy of the assertion, as its own document, without its Signature (the enveloped-signature transform).

    A document root is copied in C (its namespace declarations are its own); an element inside a larger document
    is serialised, which declares the namespaces its ancestors put in scope, as signxml and xmlsec see it.
    """
    if assertion.getparent() is None:
        work = assertion.__copy__()
    else:
        work = xmlsafe.parse_trusted(etree.tostring(assertion))
    removed = work[assertion.index(signature)]
    tail, previous = removed.tail, removed.getprevious()
    work.remove(removed)
    if tail:  # the transform removes the element, never the text after it
        if previous is not None:
            previous.tail = (previous.tail or "") + tail
        else:
            work.text = (work.text or "") + tail
    return work


def _text(element: etree._Element) -> str:
    """An element's own character content without comments (what c14n puts in the signed bytes): its text and
    the text after each child (a comment splits it)."""
    if not len(element):
        return element.text or ""
    return "".join([element.text or "", *(child.tail or "" for child in element)])


def _b64(text: str | None, what: str) -> bytes:
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise TokenRejected(f"malformed base64 in the signature's {what}", "signature") from None


def _hinted_first(assertion: etree._Element,
                  certificates: Sequence[x509.Certificate]) -> Sequence[x509.Certificate]:
    """The pinned certificates, the one KeyInfo names first: during a rollover two are published, and trying the
    right one first saves a whole verification. KeyInfo only orders the tries; it never adds a certificate."""
    if len(certificates) < 2:
        return certificates
    text = assertion.findtext(f"{{{ns.DS}}}Signature/{{{ns.DS}}}KeyInfo/{{{ns.DS}}}X509Data/{{{ns.DS}}}X509Certificate")
    try:
        named = base64.b64decode("".join((text or "").split())) if text else None
    except ValueError:
        return certificates
    return sorted(certificates, key=lambda cert: _pinned(cert).der != named)


def check_signature_shape(assertion: etree._Element, assertion_id: str,
                          algorithms: AlgorithmAllowList) -> _SignatureShape:
    """SAML's signature profile: one enveloped Signature over the assertion itself, exclusive c14n only.

    The algorithms are checked here, before anything is computed. (SignedInfo and its Reference are each read in
    one pass over their children, the first of each kind counting as ``find`` would take it.)
    """
    signatures = assertion.findall(_DS_SIGNATURE)
    if not signatures:
        raise TokenRejected("the assertion is not signed", "unsigned")
    if len(signatures) > 1:
        raise TokenRejected("the assertion has more than one Signature", "signature")
    if sum(1 for _ in assertion.iter(_DS_SIGNATURE)) > 1:
        raise TokenRejected("the assertion holds another Signature below its own", "signature")
    signed_info = signatures[0].find(_SIGNED_INFO)
    if signed_info is None:
        raise TokenRejected("a Signature without SignedInfo", "signature")
    parts = _first_children(signed_info)
    c14n = parts.get(_C14N_METHOD)
    if c14n is None or c14n.get("Algorithm") != EXC_C14N:
        raise TokenRejected("SignedInfo is not canonicalised with exclusive c14n", "signature")
    references = [child for child in signed_info if child.tag == _REFERENCE]
    if len(references) != 1:
        raise TokenRejected(f"the signature has {len(references)} References, expected 1", "signature")
    reference = references[0]
    if reference.get("URI") != "#" + assertion_id:
        raise TokenRejected("the signature does not reference the assertion's own ID", "signature")
    of_reference = _first_children(reference)
    holder = of_reference.get(_TRANSFORMS)
    transforms = [t for t in holder if t.tag == _TRANSFORM] if holder is not None else []
    if [t.get("Algorithm") for t in transforms] != [ENVELOPED, EXC_C14N]:
        raise TokenRejected("the Reference's transforms are not enveloped + exclusive c14n", "signature")
    method, digest = parts.get(_SIGNATURE_METHOD), of_reference.get(_DIGEST_METHOD)
    method_value, digest_method = algorithms.check_signature(
        (method.get("Algorithm") or "").strip() if method is not None else "",
        (digest.get("Algorithm") or "").strip() if digest is not None else "")
    digest_value = of_reference.get(_DIGEST_VALUE)
    if digest_value is None:
        raise TokenRejected("a Reference without DigestValue", "signature")
    return _SignatureShape(signatures[0], signed_info, _exclusive(c14n), _exclusive(transforms[1]), method_value,
                           digest_method, digest_value)


_SIGNED_INFO: Final = ns.qn(ns.DS, "SignedInfo")
_C14N_METHOD: Final = ns.qn(ns.DS, "CanonicalizationMethod")
_SIGNATURE_METHOD: Final = ns.qn(ns.DS, "SignatureMethod")
_REFERENCE: Final = ns.qn(ns.DS, "Reference")
_TRANSFORMS: Final = ns.qn(ns.DS, "Transforms")
_TRANSFORM: Final = ns.qn(ns.DS, "Transform")
_DIGEST_METHOD: Final = ns.qn(ns.DS, "DigestMethod")
_DIGEST_VALUE: Final = ns.qn(ns.DS, "DigestValue")


def _first_children(parent: etree._Element) -> dict[object, etree._Element]:
    """Tag -> the first child with it (comments and PIs have non-string tags, never looked up)."""
    first: dict[object, etree._Element] = {}
    for child in parent:
        first.setdefault(child.tag, child)
    return first


def _exclusive(method: etree._Element) -> Canonicalization:
    """Exclusive c14n with the method's InclusiveNamespaces PrefixList (XML-DSig's ec:InclusiveNamespaces)."""
    inclusive = method.find(_INCLUSIVE_NAMESPACES)
    prefixes = inclusive.get("PrefixList") if inclusive is not None else None
    return Canonicalization(EXC_C14N, tuple(prefixes.split()) if prefixes else ())
