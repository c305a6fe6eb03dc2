"""Present an issued token to a service: in a SOAP wsse:Security header, or in an HTTP Authorization header.

WSS SOAP Message Security 1.1 §6-§8 with the SAML Token Profile 1.1 §3: the token goes into ``wsse:Security``
(mustUnderstand) with a ``wsu:Timestamp``. For a holder-of-key token, ``ds:Signature`` covers Body and Timestamp
(exclusive c14n, SHA-256 digests) and is made with the proof key: HMAC-SHA1 (default, what WCF relying parties
expect) or HMAC-SHA256 for a symmetric key, RSA-SHA256 with the requester's private key for a public key. Its
KeyInfo is a ``wsse:SecurityTokenReference`` with a ``KeyIdentifier`` of ValueType SAMLID (SAML 2.0) or
SAMLAssertionID (SAML 1.1) naming the token.

``IssuedTokenPlugin`` does this as a zeep egress plugin; ``present_token`` does it on any envelope element.
``authorization_header(result)`` is ``{"Authorization": "SAML <base64 of the token>"}`` for non-SOAP services.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import uuid
from datetime import timedelta
from typing import Any, Final

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from lxml import etree

from sts import ns
from sts.client.trust import IssuedTokenResult
from sts.tokens.crypto.keys import PrivateKey
from sts.uris import EXC_C14N, KeyType, TokenType
from sts.xmltime import format_datetime, utcnow

__all__ = ["HMAC_SHA1", "HMAC_SHA256", "RSA_SHA256", "IssuedTokenPlugin", "authorization_header", "present_token"]

HMAC_SHA1: Final = "http://www.w3.org/2000/09/xmldsig#hmac-sha1"
HMAC_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256"
RSA_SHA256: Final = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
SHA256_DIGEST: Final = "http://www.w3.org/2001/04/xmlenc#sha256"
_SOAP_NS = (ns.SOAP11, ns.SOAP12)


def authorization_header(result: IssuedTokenResult) -> dict[str, str]:
    """The agreed HTTP header for non-SOAP services: ``Authorization: SAML <base64(token bytes)>``."""
    return {"Authorization": "SAML " + base64.b64encode(result.token).decode("ascii")}


class IssuedTokenPlugin:
    """A zeep plugin (egress) that puts the token into every outgoing message; see ``present_token``."""

    def __init__(self, result: IssuedTokenResult, *, sign_with_proof_key: bool = True,
                 private_key: PrivateKey | None = None, signature_method: str = HMAC_SHA1,
                 timestamp_ttl: timedelta = timedelta(minutes=5)) -> None:
        self.result = result
        self.sign_with_proof_key = sign_with_proof_key
        self.private_key = private_key
        self.signature_method = signature_method
        self.timestamp_ttl = timestamp_ttl

    def egress(self, envelope: Any, http_headers: Any, operation: Any, binding_options: Any) -> tuple[Any, Any]:
        present_token(envelope, self.result, sign=self.sign_with_proof_key, private_key=self.private_key,
                      signature_method=self.signature_method, timestamp_ttl=self.timestamp_ttl)
        return envelope, http_headers

    def ingress(self, envelope: Any, http_headers: Any, operation: Any) -> tuple[Any, Any]:
        return envelope, http_headers


def present_token(envelope: etree._Element, result: IssuedTokenResult, *, sign: bool = True,
                  private_key: PrivateKey | None = None, signature_method: str = HMAC_SHA1,
                  timestamp_ttl: timedelta = timedelta(minutes=5)) -> etree._Element:
    """Add the token (and a Timestamp; a signature for holder-of-key tokens when ``sign``) to ``envelope``."""
    soap_ns = etree.QName(envelope).namespace
    if soap_ns not in _SOAP_NS:
        raise ValueError("not a SOAP 1.1 or 1.2 envelope")
    security = _security_header(envelope, soap_ns)
    timestamp = security.find(ns.qn(ns.WSU, "Timestamp"))
    if timestamp is None:
        timestamp = _timestamp(timestamp_ttl)
        security.insert(0, timestamp)
    token = etree.fromstring(result.token)
    security.append(token)
    if sign and _holder_of_key(result):
        body = envelope.find(ns.qn(soap_ns, "Body"))
        if body is None:
            raise ValueError("the envelope has no Body")
        _append_signature(security, result, [timestamp, body], private_key, signature_method)
    return envelope


def _holder_of_key(result: IssuedTokenResult) -> bool:
    return result.proof_key is not None or result.key_type in (KeyType.SYMMETRIC, KeyType.PUBLIC_KEY)


def _security_header(envelope: etree._Element, soap_ns: str) -> etree._Element:
    header = envelope.find(ns.qn(soap_ns, "Header"))
    if header is None:
        header = etree.Element(ns.qn(soap_ns, "Header"))
        envelope.insert(0, header)
    security = header.find(ns.qn(ns.WSSE, "Security"))
    if security is None:
        security = etree.SubElement(header, ns.qn(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(ns.qn(soap_ns, "mustUnderstand"), "1")
    return security


def _timestamp(ttl: timedelta) -> etree._Element:
    now = utcnow()
    timestamp = etree.Element(ns.qn(ns.WSU, "Timestamp"), nsmap={"wsu": ns.WSU})
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Created")).text = format_datetime(now)
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Expires")).text = format_datetime(now + ttl)
    return timestamp


def _ensure_id(element: etree._Element, prefix: str) -> str:
    wsu_id = ns.qn(ns.WSU, "Id")
    value = element.get(wsu_id)
    if value:
        return str(value)
    made = f"{prefix}-{uuid.uuid4().hex}"
    element.set(wsu_id, made)
    return made


def _exc_c14n(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _append_signature(security: etree._Element, result: IssuedTokenResult, targets: list[etree._Element],
                      private_key: PrivateKey | None, signature_method: str) -> etree._Element:
    """A detached ds:Signature over ``targets`` (by wsu:Id), keyed by the proof key, appended to ``security``."""
    method = signature_method
    if result.proof_key is None:
        if not isinstance(private_key, rsa.RSAPrivateKey):
            raise ValueError("a PublicKey token is presented with the requester's RSA private key (private_key=)")
        method = RSA_SHA256
    elif method not in (HMAC_SHA1, HMAC_SHA256):
        raise ValueError(f"a symmetric proof key signs with HMAC-SHA1 or HMAC-SHA256, not {method}")
    ds = {"ds": ns.DS}
    signature = etree.Element(ns.qn(ns.DS, "Signature"), nsmap=ds)
    signed_info = etree.SubElement(signature, ns.qn(ns.DS, "SignedInfo"))
    etree.SubElement(signed_info, ns.qn(ns.DS, "CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, ns.qn(ns.DS, "SignatureMethod"), Algorithm=method)
    for target in targets:
        reference = etree.SubElement(signed_info, ns.qn(ns.DS, "Reference"), URI="#" + _ensure_id(target, "id"))
        transforms = etree.SubElement(reference, ns.qn(ns.DS, "Transforms"))
        etree.SubElement(transforms, ns.qn(ns.DS, "Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, ns.qn(ns.DS, "DigestMethod"), Algorithm=SHA256_DIGEST)
        digest = hashlib.sha256(_exc_c14n(target)).digest()
        etree.SubElement(reference, ns.qn(ns.DS, "DigestValue")).text = base64.b64encode(digest).decode("ascii")
    value = etree.SubElement(signature, ns.qn(ns.DS, "SignatureValue"))
    key_info = etree.SubElement(signature, ns.qn(ns.DS, "KeyInfo"))
    key_info.append(_token_reference(result))
    # Canonicalize SignedInfo where it will be verified: in place, after the token it references.
    security.append(signature)
    data = _exc_c14n(signed_info)
    value.text = base64.b64encode(_sign(result, private_key, method, data)).decode("ascii")
    return signature


def _sign(result: IssuedTokenResult, private_key: PrivateKey | None, method: str, data: bytes) -> bytes:
    if method == RSA_SHA256:
        assert isinstance(private_key, rsa.RSAPrivateKey)
        return private_key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    assert result.proof_key is not None
    return hmac.new(result.proof_key, data, hashlib.sha1 if method == HMAC_SHA1 else hashlib.sha256).digest()


def _token_reference(result: IssuedTokenResult) -> etree._Element:
    """wsse:SecurityTokenReference/KeyIdentifier (SAMLID or SAMLAssertionID) naming the token."""
    token_type = _token_type(result)
    reference = etree.Element(ns.qn(ns.WSSE, "SecurityTokenReference"), nsmap={"wsse": ns.WSSE, "wsse11": ns.WSSE11})
    reference.set(ns.qn(ns.WSSE11, "TokenType"), token_type.profile_uri)
    key_id = etree.SubElement(reference, ns.qn(ns.WSSE, "KeyIdentifier"))
    key_id.set("ValueType", token_type.key_identifier_value_type)
    key_id.text = result.token_id
    if not key_id.text:
        raise ValueError("the token's id is unknown: the RSTR had no reference and the token no ID")
    return reference


def _token_type(result: IssuedTokenResult) -> TokenType:
    if result.token_type:
        try:
            return TokenType(result.token_type.strip())
        except ValueError:
            pass
    root = etree.fromstring(result.token)
    return TokenType.SAML11 if etree.QName(root).namespace == ns.SAML1 else TokenType.SAML20
