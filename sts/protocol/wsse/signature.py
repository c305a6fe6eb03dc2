"""Signed SOAP requests: WSS 1.0/1.1 §8 (XML Signature in wsse:Security) with the X.509 Token Profile 1.1.

A client signs the soap:Body and the wsu:Timestamp and names its key in ds:KeyInfo: a wsse:SecurityTokenReference
to a wsse:BinarySecurityToken (X509v3, Base64Binary; before or after the Signature), a KeyIdentifier
(X509SubjectKeyIdentifier, ThumbprintSHA1, X509v3) or ds:X509Data (X509IssuerSerial, X509Certificate), or
ds:X509Data directly. The key is always a REGISTERED client certificate found through a ``KeyResolver``; a raw
ds:KeyValue is refused.

What XML-DSig and WSS allow is accepted, and nothing more (issue 13; pinned against libxmlsec1 in
tests/protocol/wsse/test_signature_layouts.py and the differential test): exclusive c14n with or without
ec:InclusiveNamespaces, or C14N 1.0, for SignedInfo and for each Reference; per Reference an optional
enveloped-signature transform (accepted only where it is a no-op: the element does not contain the Signature)
then at most one c14n; #Id references by wsu:Id, Id, ID or xml:id; any prefix for ds (or the default namespace).

Verification (:func:`verify_message`) is our own, one pass, cheapest refusals first:

1. Ids through ``xmlsafe.id_map`` plus xml:id (a duplicate Id is ``FailedCheck``: wrapping needs two elements
   with one Id);
2. the SignedInfo read (transforms and c14n outside the above are ``UnsupportedAlgorithm``, other than ``#Id``
   References ``FailedCheck``); the key reference resolved to a registered certificate (else
   ``FailedAuthentication``);
3. the algorithms checked against the policy (RSA-SHA1/SHA-1 only when the client may use them);
4. coverage decided by identity: a Reference that lands on a soap:Body which is not the Envelope's own Body
   child, or on a wsu:Timestamp other than this header's, is a wrapping attempt (``FailedCheck``); the real Body
   and Timestamp must both be referenced (else ``AuthenticationBadElements``);
5. the SignatureValue over the canonical SignedInfo with the registered key, then each Reference's digest over
   the very element step 4 chose (``FailedCheck``, naming the Reference, its transforms and the algorithm);
6. the Body handed on is re-parsed from the bytes that were digested: nothing unsigned can be read through it.

``str()`` of every refusal says what failed; the wire fault stays generic (sts.errors).
"""

from __future__ import annotations

import base64
import binascii
import copy
import hashlib
import hmac
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Final, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree

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
from sts.uris import (
    BASE64_BINARY,
    DIGEST_NAMES,
    ENVELOPED,
    EXC_C14N,
    SIGNATURE_NAMES,
    DigestAlgorithm,
    SignatureAlgorithm,
)
from sts.protocol.xmlsafe import id_map, parse_trusted

_X509_PROFILE: Final = "http://docs.oasis-open.org/wss/2004/01/oasis-200401-wss-x509-token-profile-1.0"
X509V3: Final = f"{_X509_PROFILE}#X509v3"
X509_SKI: Final = f"{_X509_PROFILE}#X509SubjectKeyIdentifier"
THUMBPRINT_SHA1: Final = "http://docs.oasis-open.org/wss/oasis-wss-soap-message-security-1.1#ThumbprintSHA1"

C14N10: Final = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
_WITH_COMMENTS: Final = {f"{C14N10}#WithComments": C14N10, f"{EXC_C14N}WithComments": EXC_C14N}
_XML_NS: Final = "{http://www.w3.org/XML/1998/namespace}"
_XML_ID: Final = f"{_XML_NS}id"
_NCNAME = re.compile(r"^[A-Za-z_][\w.\-]*$")
_INCLUSIVE_NAMESPACES = ns.qn(EXC_C14N, "InclusiveNamespaces")
#: Short names for the refusal reasons (the log and the audit view; the wire fault stays generic).
_SHORT_NAMES: Final = {EXC_C14N: "exc-c14n", C14N10: "c14n", ENVELOPED: "enveloped-signature",
                       f"{C14N10}#WithComments": "c14n-with-comments", f"{EXC_C14N}WithComments": "exc-c14n-with-comments"}
#: hashlib's name of each DigestMethod the policy can allow.
_DIGESTS: Final[Mapping[str, str]] = {DigestAlgorithm.SHA256.value: "sha256", DigestAlgorithm.SHA1.value: "sha1"}
_SIGNATURE_HASHES: Final[Mapping[SignatureAlgorithm, type[hashes.HashAlgorithm]]] = {
    SignatureAlgorithm.RSA_SHA256: hashes.SHA256, SignatureAlgorithm.ECDSA_SHA256: hashes.SHA256,
    SignatureAlgorithm.RSA_SHA1: hashes.SHA1}
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
            raise UnsupportedAlgorithm(
                f"SignatureMethod {_algorithm_name(signature_method)} is not allowed", detail=signature_method
            )
        allowed = {a.value for a in self.digest_methods}
        for digest in digest_methods:
            if digest not in allowed:
                raise UnsupportedAlgorithm(f"DigestMethod {_algorithm_name(digest)} is not allowed", detail=digest)


def _algorithm_name(uri: str) -> str:
    """``rsa-sha1 (http://...#rsa-sha1)`` for the ones we know by a short name; the URI alone otherwise."""
    names = {a.value: n for n, a in (*SIGNATURE_NAMES.items(), *DIGEST_NAMES.items())}
    return f"{names[uri]} ({uri})" if uri in names else repr(uri)


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

    ``signed_body`` is the soap:Body re-parsed from the exact bytes that were digested for its Reference, so
    nothing unsigned (comments, a sibling added later) can be read through it. Those bytes are the c14n of the
    Envelope's own Body child, proved so by identity before digesting; callers read the RST from ``signed_body``
    only (DESIGN.md, "trust only what it returns").
    """

    certificate: x509.Certificate
    signed_ids: frozenset[str]
    body_signed: bool
    timestamp_signed: bool
    signed_body: etree._Element
    signature_value: bytes
    signature_method: SignatureAlgorithm


@dataclass(frozen=True)
class Canonicalization:
    """A c14n algorithm as XML-DSig names it: exclusive (with its InclusiveNamespaces PrefixList) or 1.0."""

    algorithm: str
    prefixes: tuple[str, ...] = ()

    @property
    def name(self) -> str:
        return _SHORT_NAMES[self.algorithm] + (f" PrefixList={' '.join(self.prefixes)!r}" if self.prefixes else "")

    def apply(self, element: etree._Element, *, reference: bool, where: str) -> bytes:
        """The canonical bytes of ``element`` in its document context (the namespaces in scope of its parents).

        A ``#Id`` Reference's node-set has no comments (XML-DSig §4.3.3.3), whatever the c14n; SignedInfo keeps
        them under a #WithComments method.
        """
        base = _WITH_COMMENTS.get(self.algorithm, self.algorithm)
        exclusive = base == EXC_C14N
        # C14N 1.0 (not exclusive) of a subtree in place is wrong in libxml2 through lxml: a spurious xmlns="" on
        # grandchildren of a default-namespace apex, and no xml:* attributes inherited from the ancestors. So it
        # canonicalises a standalone copy that declares what the apex has in scope, as libxmlsec1 sees it.
        try:
            return bytes(etree.tostring(
                element if exclusive else _standalone(element), method="c14n", exclusive=exclusive,
                with_comments=not reference and base != self.algorithm,
                inclusive_ns_prefixes=list(self.prefixes) if exclusive and self.prefixes else None,
            ))
        except etree.C14NError:
            # libxml2 refuses, as XML-DSig does, a relative namespace URI in what is canonicalised.
            raise FailedCheck(f"{where}: [{self.name}] cannot canonicalise it (a relative namespace URI?)") from None


def _standalone(element: etree._Element) -> etree._Element:
    """A copy of ``element`` as a document root: every namespace in scope declared, inherited xml:* attributes set."""
    nsmap = dict(element.nsmap)
    if etree.QName(element).namespace is None:
        nsmap.pop(None, None)  # an element in no namespace has no default namespace in scope
    apex = etree.Element(element.tag, nsmap=nsmap)
    for name, value in (*_inherited_xml_attributes(element).items(), *element.attrib.items()):
        apex.set(name, value)
    apex.text = element.text
    for child in element:
        apex.append(copy.deepcopy(child))
    return apex


def _inherited_xml_attributes(element: etree._Element) -> dict[str, str]:
    """The xml:* attributes of the ancestors that ``element`` does not set itself (the nearest one wins)."""
    inherited: dict[str, str] = {}
    for ancestor in element.iterancestors():
        for name, value in ancestor.attrib.items():
            if str(name).startswith(_XML_NS) and element.get(name) is None:
                inherited.setdefault(str(name), str(value))
    return inherited


#: XML-DSig §4.3.3.2: a same-document reference whose result is still a node-set is digested in C14N 1.0.
_DEFAULT_C14N: Final = Canonicalization(C14N10)


@dataclass(frozen=True)
class _Reference:
    uri_id: str
    digest_method: str
    digest_value: bytes
    enveloped: bool
    c14n: Canonicalization

    @property
    def transforms(self) -> str:
        names = (["enveloped-signature"] if self.enveloped else []) + [self.c14n.name]
        return "[" + ", ".join(names) + "]"


@dataclass(frozen=True)
class UnverifiedSignature:
    """The one ds:Signature of a Security header as read, before any check of its value."""

    element: etree._Element
    signed_info: etree._Element
    c14n: Canonicalization
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
    if c14n is None:
        raise UnsupportedAlgorithm("SignedInfo without a CanonicalizationMethod", detail="none")
    method = signed_info.find(_ds("SignatureMethod"))
    signature_method = method.get("Algorithm", "") if method is not None else ""
    references = tuple(_read_reference(r) for r in signed_info.findall(_ds("Reference")))
    if not references:
        raise FailedCheck("SignedInfo without a Reference")
    return UnverifiedSignature(
        element=signature,
        signed_info=signed_info,
        c14n=_read_c14n(c14n, "SignedInfo's CanonicalizationMethod"),
        signature_method=signature_method,
        references=references,
        key_reference=_read_key_info(signature.find(_ds("KeyInfo")), security, ids),
    )


def _read_c14n(element: etree._Element, where: str) -> Canonicalization:
    algorithm = element.get("Algorithm", "")
    if _WITH_COMMENTS.get(algorithm, algorithm) == C14N10:
        return Canonicalization(algorithm)
    if _WITH_COMMENTS.get(algorithm, algorithm) != EXC_C14N:
        raise UnsupportedAlgorithm(f"{where}: canonicalization {algorithm or 'none'}", detail=algorithm or "none")
    inclusive = element.find(_INCLUSIVE_NAMESPACES)
    return Canonicalization(algorithm, tuple(inclusive.get("PrefixList", "").split()) if inclusive is not None else ())


def _read_reference(reference: etree._Element) -> _Reference:
    uri = reference.get("URI", "")
    if not uri.startswith("#") or not _NCNAME.match(uri[1:]):
        # Only same-document bare-name references: no whole-document "", no XPointer, no external URIs.
        raise FailedCheck(f"Reference URI {uri!r}: only same-document #Id references are verified")
    where = f"Reference {uri}"
    transforms = reference.findall(f"{_ds('Transforms')}/{_ds('Transform')}")
    algorithms = [t.get("Algorithm", "") for t in transforms]
    # What XML-DSig allows for a #Id reference to an element, within policy: an optional enveloped-signature
    # transform, then at most one canonicalization (none: C14N 1.0). Anything else (XPath, XSLT, base64, a
    # second c14n, a transform after the c14n, which would see octets) is refused by name.
    enveloped = bool(algorithms) and algorithms[0] == ENVELOPED
    rest = transforms[1:] if enveloped else transforms
    if len(rest) > 1 or any(_WITH_COMMENTS.get(a, a) not in (EXC_C14N, C14N10) for a in algorithms[1 if enveloped else 0:]):
        names = ", ".join(_SHORT_NAMES.get(a, a or "?") for a in algorithms)
        raise UnsupportedAlgorithm(f"{where}: transforms [{names}]", detail=",".join(algorithms))
    c14n = _read_c14n(rest[0], f"{where}'s transform") if rest else _DEFAULT_C14N
    digest = reference.find(_ds("DigestMethod"))
    digest_value = reference.findtext(_ds("DigestValue"))
    if digest_value is None or not digest_value.strip():
        raise FailedCheck(f"{where}: no DigestValue")
    return _Reference(
        uri[1:], digest.get("Algorithm", "") if digest is not None else "", _b64_value(digest_value, where), enveloped,
        c14n,
    )


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


def _b64_value(text: str | None, where: str) -> bytes:
    """A DigestValue or SignatureValue: unreadable is a failed check (nothing could match it)."""
    try:
        return base64.b64decode("".join((text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise FailedCheck(f"{where}: malformed base64") from None


def _certificate(der: bytes) -> x509.Certificate:
    try:
        return x509.load_der_x509_certificate(der)
    except ValueError:
        raise SecurityHeaderError("malformed X.509 certificate in a security token") from None


_NAME_OVERRIDES = {"E": NameOID.EMAIL_ADDRESS, "EMAILADDRESS": NameOID.EMAIL_ADDRESS, "S": NameOID.STATE_OR_PROVINCE_NAME}


def parse_issuer_name(text: str) -> x509.Name | None:
    """An X509IssuerName as a Name, None if unreadable.

    Spellings real stacks send: RFC 4514/2253 (Java's ``getName()``, xmlsec), OpenSSL's ``CN=a, O=b`` with spaces,
    and RFC 1779 / .NET's ``CN=a, O="b, c"`` (quoted values, lower-case or ``OID.``-prefixed types).
    """
    for candidate in (text, re.sub(r"(?<!\\)\s*,\s*", ",", text), _from_rfc1779(text)):
        if candidate is None:
            continue
        try:
            return x509.Name.from_rfc4514_string(candidate, _NAME_OVERRIDES)
        except ValueError:
            continue
    return None


_RFC1779_PART = re.compile(r'\s*([A-Za-z][\w.\-]*)\s*=\s*("(?:[^"\\]|\\.)*"|(?:[^,;"\\]|\\.)*?)\s*(?:[,;]|$)')


def _from_rfc1779(text: str) -> str | None:
    """``CN=a, O="b, c"`` as RFC 4514 (``CN=a,O=b\\, c``); None when it does not read as one."""
    parts, position = [], 0
    while position < len(text):
        match = _RFC1779_PART.match(text, position)
        if match is None or match.end() == position:
            return None
        kind, value = match.group(1).upper().removeprefix("OID."), match.group(2)
        if value.startswith('"'):
            value = re.sub(r'\\(.)', r"\1", value[1:-1])
            value = re.sub(r'([,+"\\<>;=])', r"\\\1", value)
        parts.append(f"{kind}={value}")
        position = match.end()
    return ",".join(parts) if parts else None


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
    ``str()`` of each names what failed: which Reference, which transform, which algorithm.
    """
    signature = find_signature(security)
    if signature is None:
        raise FailedAuthentication("the request is not signed")
    _check_placement(envelope_root, security)
    ids = request_ids(envelope_root)
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
    body_index = _coverage(targets, body, timestamp, [r.uri_id for r in unverified.references])
    _refuse_working_enveloped(unverified, targets, body, timestamp)
    signature_value = _b64_value(signature.findtext(_ds("SignatureValue")), "ds:SignatureValue")
    if not signature_value:
        raise FailedCheck("an empty ds:SignatureValue")
    _check_signature_value(unverified, signature_value, trusted.certificate)
    # Each Reference digested over the element our identity checks chose: there is no second lookup to agree with.
    digested = [_check_digest(r, t, body, timestamp) for r, t in zip(unverified.references, targets)]
    signed_body = parse_trusted(digested[body_index])  # our own c14n output of an already-bounded parse
    if signed_body.tag != body.tag:
        raise FailedCheck("the signed Body did not parse back")
    return SignedMessage(
        certificate=trusted.certificate,
        signed_ids=frozenset(r.uri_id for r in unverified.references),
        body_signed=True,
        timestamp_signed=True,
        signed_body=signed_body,
        signature_value=signature_value,
        signature_method=SignatureAlgorithm(unverified.signature_method),
    )


def request_ids(root: etree._Element) -> dict[str, etree._Element]:
    """``xmlsafe.id_map`` plus xml:id (XML-DSig's same-document references may use it): one Id, one element."""
    try:
        ids = id_map(root)
    except InvalidRequest as exc:
        raise FailedCheck(str(exc)) from None
    for element in root.iter(etree.Element):
        value = element.get(_XML_ID)
        if value is None:
            continue
        if ids.get(value, element) is not element:
            raise FailedCheck(f"duplicate Id {value!r}")
        ids[value] = element
    return ids


def _check_placement(root: etree._Element, security: etree._Element) -> None:
    header = security.getparent()
    if header is None or header.getparent() is not root:
        raise SecurityHeaderError("wsse:Security is not a header block of this Envelope")


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


def _coverage(
    targets: list[etree._Element], body: etree._Element, timestamp: etree._Element | None, uri_ids: list[str]
) -> int:
    """The index of the Body's Reference, after checking that the real Body and Timestamp are both signed."""
    covered = ", ".join(f"#{i} ({_describe(t, body, timestamp)})" for i, t in zip(uri_ids, targets))
    body_index = next((i for i, t in enumerate(targets) if t is body), None)
    if body_index is None:
        raise AuthenticationBadElements(f"the soap:Body is not signed (the References: {covered})", detail="Body")
    if timestamp is None or not any(t is timestamp for t in targets):
        missing = "there is no wsu:Timestamp" if timestamp is None else "the wsu:Timestamp is not signed"
        raise AuthenticationBadElements(f"{missing} (the References: {covered})", detail="Timestamp")
    return body_index


def _refuse_working_enveloped(
    unverified: UnverifiedSignature, targets: list[etree._Element], body: etree._Element,
    timestamp: etree._Element | None,
) -> None:
    """The enveloped-signature transform only where it is a no-op: the referenced element holds no Signature."""
    signature = unverified.element
    for reference, target in zip(unverified.references, targets):
        if reference.enveloped and (target is signature or any(a is target for a in signature.iterancestors())):
            where = f"Reference #{reference.uri_id} ({_describe(target, body, timestamp)})"
            raise UnsupportedAlgorithm(
                f"{where}: the enveloped-signature transform on an element that contains the Signature",
                detail=ENVELOPED,
            )


def _describe(element: etree._Element, body: etree._Element, timestamp: etree._Element | None) -> str:
    if element is body:
        return "the soap:Body"
    if element is timestamp:
        return "the wsu:Timestamp"
    return f"a {etree.QName(element).localname}"


def _check_signature_value(unverified: UnverifiedSignature, value: bytes, certificate: x509.Certificate) -> None:
    """XML-DSig §3.2.2: the SignatureValue over the canonical SignedInfo, with the registered certificate's key."""
    method = SignatureAlgorithm(unverified.signature_method)  # the policy admitted it: one of ours
    data = unverified.c14n.apply(unverified.signed_info, reference=False, where="SignedInfo")
    what = f"SignatureValue over SignedInfo [{unverified.c14n.name}] with {method.name.lower().replace('_', '-')}"
    verify_signature_value(certificate.public_key(), method, value, data, what=what,
                           whose="the client certificate's key")


def verify_signature_value(key: object, method: SignatureAlgorithm, value: bytes, data: bytes, *, what: str,
                           whose: str) -> None:
    """A SignatureValue over ``data`` (canonical SignedInfo) with ``key``: RSA PKCS#1 v1.5, or ECDSA as r || s.

    Shared by signed requests and the token verifier (sts.tokens.verification). ``FailedCheck`` naming ``what``
    and ``whose`` key when it does not verify or the key is of the wrong kind.
    """
    algorithm = _SIGNATURE_HASHES[method]()
    try:
        if method is SignatureAlgorithm.ECDSA_SHA256:
            if not isinstance(key, ec.EllipticCurvePublicKey):
                raise FailedCheck(f"{what}: {whose} is not an EC key")
            key.verify(_ecdsa_der(value, key, what), data, ec.ECDSA(algorithm))
        else:
            if not isinstance(key, rsa.RSAPublicKey):
                raise FailedCheck(f"{what}: {whose} is not an RSA key")
            key.verify(value, data, padding.PKCS1v15(), algorithm)
    except InvalidSignature:
        raise FailedCheck(f"{what}: does not verify with {whose}") from None


def _ecdsa_der(value: bytes, key: ec.EllipticCurvePublicKey, what: str) -> bytes:
    """XML-DSig 1.1 §6.4.3: an ECDSA SignatureValue is r || s, each as long as the curve's order."""
    size = (key.curve.key_size + 7) // 8
    if len(value) != 2 * size:
        raise FailedCheck(f"{what}: {len(value)} bytes, expected {2 * size} for {key.curve.name}")
    return encode_dss_signature(int.from_bytes(value[:size], "big"), int.from_bytes(value[size:], "big"))


def _check_digest(
    reference: _Reference,
    target: etree._Element,
    body: etree._Element,
    timestamp: etree._Element | None,
) -> bytes:
    """The transformed bytes of ``target`` after checking them against the Reference's DigestValue."""
    where = f"Reference #{reference.uri_id} ({_describe(target, body, timestamp)})"
    data = reference.c14n.apply(target, reference=True, where=where)
    name = _DIGESTS[reference.digest_method]  # the policy admitted it
    if not hmac.compare_digest(hashlib.new(name, data).digest(), reference.digest_value):
        raise FailedCheck(f"{where}: digest mismatch after transforms {reference.transforms} ({name})")
    return data


__all__ = [
    "THUMBPRINT_SHA1",
    "X509V3",
    "X509_SKI",
    "AlgorithmPolicy",
    "C14N10",
    "Canonicalization",
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
    "request_ids",
    "parse_issuer_name",
    "read_signature",
    "verify_message",
    "verify_signature_value",
]
