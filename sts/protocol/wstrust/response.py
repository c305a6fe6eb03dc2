"""Read an STS's answers on the requester's side (WS-Trust 1.3 §4-§7 and §11, 2005/02 alike).

The client's counterpart of ``wstrust.render``: ``read_reply`` takes a SOAP reply's bytes to the Body's child
(a soap:Fault raises, made by ``parse_fault``: SOAP 1.1 §4.4, SOAP 1.2 §5.4); ``parse_issued_token``,
``parse_validation`` and ``check_cancelled`` read the RSTR or RSTRC of an Issue/Renew, Validate or Cancel
answer; ``parse_response(data)`` turns a recorded reply (envelope, RSTRC or RSTR) into an
``IssuedTokenResult`` without any HTTP. The proof key comes from ``RequestedProofToken`` (WS-Trust 1.3 §4.4):
a ``BinarySecret``, an ``xenc:EncryptedKey`` for the requester's key, or a ``ComputedKey`` (P_SHA1 of both
entropies).

Errors (all subclasses of ``TrustClientError``)::

    TrustClientError
    ├─ TrustFault        the STS answered with a SOAP fault: .fault_code (ns, local), .fault_reason, .error_class.
    │                    When the code is a WS-Trust or WS-Security fault, the instance is also an instance of
    │                    the matching ``sts.errors`` class (``except FailedAuthentication`` works).
    ├─ TransportError    no answer, or an answer that is not SOAP (connection refused, timeout, HTTP 502 + HTML)
    └─ ResponseError     a SOAP answer that is not the RSTR expected (or a proof key that cannot be computed)
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from typing import cast

from lxml import etree

from sts import ns
from sts.tokens.crypto.encryption import decrypt_key
from sts.tokens.crypto.keys import PrivateKey
from sts.tokens.crypto.proof import p_sha1
from sts.errors import SECURITY_FAULTS, TRUST_FAULTS, StsError
from sts.model import Lifetime
from sts.uris import KeyType, TrustVersion
from sts.protocol.xmlsafe import parse as safe_parse
from sts.xmltime import parse_datetime

__all__ = [
    "IssuedTokenResult", "ResponseError", "TokenReference", "TransportError", "TrustClientError",
    "TrustFault", "ValidationResult", "check_cancelled", "fault_error", "parse_fault", "parse_issued_token",
    "parse_response", "parse_validation", "read_reply",
]

_MAX_REPLY_BYTES = 8 * 1024 * 1024
_POLICY_NS = (ns.WSP12, ns.WSP15, ns.WSP2006)
_WSA_NS = (ns.WSA, ns.WSA2004)

# --- errors ---------------------------------------------------------------------------------------------------


class TrustClientError(Exception):
    """Base of everything the client raises."""


class TransportError(TrustClientError):
    """The STS could not be reached, or answered with something that is not SOAP."""


class ResponseError(TrustClientError):
    """A SOAP answer that is not the WS-Trust response expected."""


class TrustFault(TrustClientError):
    """A SOAP fault from the STS: its most specific code, its reason, and the ``sts.errors`` class it names."""

    error_class: type[StsError] | None = None

    def __init__(self, fault_code: tuple[str, str], fault_reason: str) -> None:
        Exception.__init__(self, f"{_prefixed(fault_code)}: {fault_reason}")
        self.fault_code = fault_code
        self.fault_reason = fault_reason
        self.detail: str | None = None  # what StsError.__init__ would set: the typed subclasses are StsErrors too

    @property
    def code_name(self) -> str:
        """The code as ``wst:Local`` / ``wsse:Local`` / ``{ns}Local`` for messages."""
        return _prefixed(self.fault_code)


def _prefixed(code: tuple[str, str]) -> str:
    prefix = {ns.WST13: "wst", ns.WST2005: "wst", ns.WSSE: "wsse", ns.SOAP11: "soap", ns.SOAP12: "soap"}
    return f"{prefix[code[0]]}:{code[1]}" if code[0] in prefix else f"{{{code[0]}}}{code[1]}" if code[0] else code[1]


_TYPED_FAULTS: dict[type[StsError], type[TrustFault]] = {}


def _typed_fault(error_class: type[StsError]) -> type[TrustFault]:
    """``FailedAuthenticationFault(TrustFault, FailedAuthentication)`` and so on, made once per class."""
    if error_class not in _TYPED_FAULTS:
        made = type(f"{error_class.__name__}Fault", (TrustFault, error_class), {"error_class": error_class})
        _TYPED_FAULTS[error_class] = cast(type[TrustFault], made)
    return _TYPED_FAULTS[error_class]


def fault_error(fault_code: tuple[str, str], fault_reason: str) -> TrustFault:
    """The exception for a received fault: typed by ``sts.errors`` when its code is a WS-Trust/WSS code."""
    namespace, local = fault_code
    error_class: type[StsError] | None = None
    if namespace in (ns.WST13, ns.WST2005, ns.WST14):
        error_class = TRUST_FAULTS.get(local)
    elif namespace == ns.WSSE:
        error_class = SECURITY_FAULTS.get(local)
    if error_class is None:
        return TrustFault(fault_code, fault_reason)
    return _typed_fault(error_class)(fault_code, fault_reason)


# --- results --------------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TokenReference:
    """A wsse:SecurityTokenReference from the RSTR (serialized) and the token id it names."""

    xml: bytes
    token_id: str | None


@dataclass(frozen=True)
class IssuedTokenResult:
    """One issued token as the RSTR describes it; ``proof_key`` is the symmetric proof key, if any."""

    token: bytes
    token_type: str | None
    attached_reference: TokenReference | None
    unattached_reference: TokenReference | None
    lifetime: Lifetime
    applies_to: str | None
    proof_key: bytes | None = field(repr=False)
    key_type: KeyType | None
    version: TrustVersion
    raw: bytes = field(repr=False)

    @property
    def token_id(self) -> str | None:
        """The id to reference the token by: from the RSTR's references, else the token's own ID attribute."""
        for reference in (self.unattached_reference, self.attached_reference):
            if reference is not None and reference.token_id:
                return reference.token_id
        root = etree.fromstring(self.token)
        for attribute in ("ID", "AssertionID", ns.qn(ns.WSU, "Id"), "Id"):
            value = root.get(attribute)
            if value:
                return str(value)
        return None

    def token_element(self) -> etree._Element:
        """The token parsed again (a fresh tree each call)."""
        return safe_parse(self.token, max_bytes=len(self.token) + 1, max_depth=256)


@dataclass(frozen=True)
class ValidationResult:
    """A Validate answer: the status and, for validate-and-exchange, the new token."""

    valid: bool
    code: str
    reason: str | None
    token: IssuedTokenResult | None = None


# --- reading replies ------------------------------------------------------------------------------------------


def read_reply(status: int, content_type: str, content: bytes, url: str) -> etree._Element:
    """The Body's child of a SOAP reply; TrustFault for a fault; TransportError for anything not SOAP."""
    try:
        root = safe_parse(content, max_bytes=_MAX_REPLY_BYTES, max_depth=256)
    except Exception:
        root = None
    if root is None or etree.QName(root).localname != "Envelope" or etree.QName(root).namespace not in (
            ns.SOAP11, ns.SOAP12):
        snippet = " ".join(content[:200].decode("utf-8", "replace").split())
        raise TransportError(f"HTTP {status} from {url} is not a SOAP reply ({content_type or 'no content type'})"
                             + (f": {snippet}" if snippet else "")) from None
    body = root.find(ns.qn(etree.QName(root).namespace, "Body"))
    child = next((c for c in body if isinstance(c.tag, str)), None) if body is not None else None
    if child is None:
        raise ResponseError(f"HTTP {status} from {url}: an empty SOAP Body")
    if etree.QName(child).localname == "Fault":
        raise parse_fault(child)
    if status >= 400:
        raise TransportError(f"HTTP {status} from {url} without a SOAP fault")
    return child


def parse_fault(fault: etree._Element) -> TrustFault:
    """The exception for a soap:Fault element (SOAP 1.1 faultcode, or SOAP 1.2's most specific Subcode)."""
    env_ns = etree.QName(fault).namespace or ns.SOAP12
    if env_ns == ns.SOAP11:
        code_el = fault.find("faultcode")
        reason = fault.findtext("faultstring") or ""
    else:
        values = fault.findall(f".//{{{env_ns}}}Code//{{{env_ns}}}Value")
        code_el = values[-1] if values else None
        reason = fault.findtext(f"{{{env_ns}}}Reason/{{{env_ns}}}Text") or ""
    code = (code_el.text or "").strip() if code_el is not None else ""
    prefix, _, local = code.rpartition(":")
    namespace = (code_el.nsmap.get(prefix or None) if code_el is not None else None) or ""
    return fault_error((namespace, local), " ".join(reason.split()))


def _rstrs(root: etree._Element, version: TrustVersion) -> list[etree._Element]:
    namespace, local = etree.QName(root).namespace, etree.QName(root).localname
    if namespace != version.ns:
        raise ResponseError(f"expected a WS-Trust {version.name} response, got {{{namespace}}}{local}")
    if local == "RequestSecurityTokenResponse":
        return [root]
    if local == "RequestSecurityTokenResponseCollection":
        return list(root.iterchildren(ns.qn(version.ns, "RequestSecurityTokenResponse")))
    raise ResponseError(f"expected an RSTR, got {local}")


def _single_rstr(root: etree._Element, version: TrustVersion) -> etree._Element:
    rstrs = _rstrs(root, version)
    if not rstrs:
        raise ResponseError("an empty RequestSecurityTokenResponseCollection")
    return rstrs[0]


def parse_issued_token(root: etree._Element, version: TrustVersion, *, client_entropy: bytes | None,
                       private_key: PrivateKey | None, key_type: KeyType | None, raw: bytes,
                       require_token: bool = True) -> IssuedTokenResult:
    """The token of an Issue or Renew answer: its RSTR, or the first RSTR of its RSTRC (WS-Trust 1.3 §4.3)."""
    return _from_rstr(_single_rstr(root, version), version, client_entropy=client_entropy,
                      private_key=private_key, key_type=key_type, raw=raw, require_token=require_token)


def parse_validation(root: etree._Element, version: TrustVersion, *,
                     private_key: PrivateKey | None) -> ValidationResult:
    """A Validate answer: wst:Status, and the new token of a validate-and-exchange (WS-Trust 1.3 §7)."""
    rstr = _single_rstr(root, version)
    status = rstr.find(ns.qn(version.ns, "Status"))
    if status is None:
        raise ResponseError("the Validate answer has no wst:Status")
    code = (status.findtext(ns.qn(version.ns, "Code")) or "").strip()
    reason = status.findtext(ns.qn(version.ns, "Reason"))
    new_token = None
    if rstr.find(ns.qn(version.ns, "RequestedSecurityToken")) is not None:
        new_token = _from_rstr(rstr, version, client_entropy=None, private_key=private_key,
                               key_type=None, raw=etree.tostring(root))
    return ValidationResult(valid=code.endswith("/status/valid"), code=code,
                            reason=reason.strip() if reason else None, token=new_token)


def check_cancelled(root: etree._Element, version: TrustVersion) -> None:
    """None when a Cancel answer says RequestedTokenCancelled (WS-Trust 1.3 §6), else ResponseError."""
    rstr = _single_rstr(root, version)
    if rstr.find(ns.qn(version.ns, "RequestedTokenCancelled")) is None:
        raise ResponseError("the Cancel answer has no wst:RequestedTokenCancelled")


def parse_response(data: bytes, *, client_entropy: bytes | None = None, private_key: PrivateKey | None = None,
                   require_token: bool = True) -> IssuedTokenResult:
    """An ``IssuedTokenResult`` from a recorded reply: a SOAP envelope (faults raise), an RSTRC or an RSTR.

    ``require_token=False`` reads an RSTR without RequestedSecurityToken (``token`` is then ``b""``).
    """
    root = safe_parse(data, max_bytes=_MAX_REPLY_BYTES, max_depth=256)
    if etree.QName(root).localname == "Envelope":
        root = read_reply(200, "", data, "the recorded reply")
    namespace = etree.QName(root).namespace
    try:
        version = TrustVersion(namespace)
    except ValueError:
        raise ResponseError(f"not a WS-Trust response: {{{namespace}}}{etree.QName(root).localname}") from None
    return parse_issued_token(root, version, client_entropy=client_entropy, private_key=private_key,
                              key_type=None, raw=data, require_token=require_token)


def _from_rstr(rstr: etree._Element, version: TrustVersion, *, client_entropy: bytes | None,
               private_key: PrivateKey | None, key_type: KeyType | None, raw: bytes,
               require_token: bool = True) -> IssuedTokenResult:
    wst = version.ns
    requested = rstr.find(ns.qn(wst, "RequestedSecurityToken"))
    token = next((c for c in requested if isinstance(c.tag, str)), None) if requested is not None else None
    if token is None and require_token:
        raise ResponseError("the RSTR has no RequestedSecurityToken")
    proof_key = _proof_key(rstr, version, client_entropy, private_key)
    token_type = rstr.findtext(ns.qn(wst, "TokenType"))
    if key_type is None and proof_key is not None:
        key_type = KeyType.SYMMETRIC
    return IssuedTokenResult(
        token=etree.tostring(token) if token is not None else b"",
        token_type=token_type.strip() if token_type else None,
        attached_reference=_reference(rstr.find(ns.qn(wst, "RequestedAttachedReference"))),
        unattached_reference=_reference(rstr.find(ns.qn(wst, "RequestedUnattachedReference"))),
        lifetime=_read_lifetime(rstr.find(ns.qn(wst, "Lifetime"))),
        applies_to=_read_applies_to(rstr),
        proof_key=proof_key,
        key_type=key_type,
        version=version,
        raw=raw,
    )


def _reference(holder: etree._Element | None) -> TokenReference | None:
    reference = holder.find(ns.qn(ns.WSSE, "SecurityTokenReference")) if holder is not None else None
    if reference is None:
        return None
    key_id = reference.findtext(ns.qn(ns.WSSE, "KeyIdentifier"))
    uri = reference.find(ns.qn(ns.WSSE, "Reference"))
    token_id = key_id.strip() if key_id else (uri.get("URI") or "").removeprefix("#") if uri is not None else None
    return TokenReference(xml=etree.tostring(reference), token_id=token_id or None)


def _read_lifetime(element: etree._Element | None) -> Lifetime:
    if element is None:
        return Lifetime(created=None, expires=None)
    created, expires = element.findtext(ns.qn(ns.WSU, "Created")), element.findtext(ns.qn(ns.WSU, "Expires"))
    try:
        return Lifetime(created=parse_datetime(created) if created else None,
                        expires=parse_datetime(expires) if expires else None)
    except ValueError:
        raise ResponseError("the RSTR's Lifetime does not parse") from None


def _read_applies_to(rstr: etree._Element) -> str | None:
    for policy_ns in _POLICY_NS:
        applies = rstr.find(ns.qn(policy_ns, "AppliesTo"))
        if applies is None:
            continue
        for wsa in _WSA_NS:
            address = applies.findtext(f"{{{wsa}}}EndpointReference/{{{wsa}}}Address")
            if address:
                return str(address).strip()
        uri = applies.findtext(ns.qn(policy_ns, "URI"))
        return str(uri).strip() if uri else None
    return None


def _proof_key(rstr: etree._Element, version: TrustVersion, client_entropy: bytes | None,
               private_key: PrivateKey | None) -> bytes | None:
    """The symmetric proof key: a BinarySecret, an EncryptedKey for our key, or P_SHA1 of both entropies."""
    wst = version.ns
    requested = rstr.find(ns.qn(wst, "RequestedProofToken"))
    if requested is None:
        return None
    computed = requested.find(ns.qn(wst, "ComputedKey"))
    if computed is not None:
        algorithm = (computed.text or "").strip()
        if not algorithm.endswith("/CK/PSHA1"):
            raise ResponseError(f"unsupported computed key algorithm {algorithm!r}")
        if client_entropy is None:
            raise ResponseError("the STS computed a key but this request sent no entropy")
        entropy = rstr.find(ns.qn(wst, "Entropy"))
        secret = next((c for c in entropy if isinstance(c.tag, str)), None) if entropy is not None else None
        if secret is None:
            raise ResponseError("a computed key without the issuer's Entropy")
        size_text = (rstr.findtext(ns.qn(wst, "KeySize")) or "").strip()
        size = int(size_text) // 8 if size_text.isdigit() else len(client_entropy)
        return p_sha1(client_entropy, _secret(secret, private_key), size)
    secret = next((c for c in requested if isinstance(c.tag, str)), None)
    return _secret(secret, private_key) if secret is not None else None


def _secret(element: etree._Element, private_key: PrivateKey | None) -> bytes:
    """A wst:BinarySecret's bytes, or the key in an xenc:EncryptedKey decrypted with the client's key."""
    if element.tag == ns.qn(ns.XENC, "EncryptedKey"):
        if private_key is None:
            raise ResponseError("the proof key is encrypted for a certificate, and no private key was given")
        try:
            return decrypt_key(element, private_key)
        except ValueError as err:
            raise ResponseError(f"the proof key does not decrypt: {err}") from None
    if etree.QName(element).localname != "BinarySecret":
        raise ResponseError(f"unsupported proof token {etree.QName(element).localname}")
    try:
        return base64.b64decode("".join((element.text or "").split()), validate=True)
    except (binascii.Error, ValueError):
        raise ResponseError("a BinarySecret that is not base64") from None


