"""The requester's side of WS-Security: a Security header with a Timestamp and a UsernameToken, or a signature."""

from __future__ import annotations

import base64
import hashlib
import os
import secrets
from datetime import datetime, timedelta
from typing import Literal

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from lxml import etree

from sts import ns
from sts.tokens.crypto.keys import PrivateKey
from sts.uris import BASE64_BINARY, EXC_C14N, PASSWORD_DIGEST, PASSWORD_TEXT, DigestAlgorithm, SignatureAlgorithm
from sts.xmltime import format_datetime, utcnow
from sts.protocol.wsse.signature import THUMBPRINT_SHA1, X509_SKI, X509V3
from sts.protocol.wsse.username import password_digest


def build_security_header(
    username: str,
    password: str,
    *,
    digest: bool = False,
    password_type_attr: bool = True,
    now: datetime | None = None,
    ttl: timedelta = timedelta(minutes=5),
    nonce: bytes | None = None,
    soap_ns: str = ns.SOAP12,
) -> etree._Element:
    """wsse:Security (mustUnderstand) with wsu:Timestamp and a text or digest UsernameToken."""
    now = now or utcnow()
    created = format_datetime(now)
    security = etree.Element(ns.qn(ns.WSSE, "Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
    security.set(ns.qn(soap_ns, "mustUnderstand"), "1")
    timestamp = etree.SubElement(security, ns.qn(ns.WSU, "Timestamp"))
    timestamp.set(ns.qn(ns.WSU, "Id"), "_0")
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Created")).text = created
    etree.SubElement(timestamp, ns.qn(ns.WSU, "Expires")).text = format_datetime(now + ttl)
    token = etree.SubElement(security, ns.qn(ns.WSSE, "UsernameToken"))
    etree.SubElement(token, ns.qn(ns.WSSE, "Username")).text = username
    password_el = etree.SubElement(token, ns.qn(ns.WSSE, "Password"))
    if digest:
        nonce = nonce if nonce is not None else os.urandom(16)
        password_el.set("Type", PASSWORD_DIGEST)
        password_el.text = password_digest(nonce, created, password)
        etree.SubElement(token, ns.qn(ns.WSSE, "Nonce"), EncodingType=BASE64_BINARY).text = (
            base64.b64encode(nonce).decode()
        )
        etree.SubElement(token, ns.qn(ns.WSU, "Created")).text = created
    else:
        if password_type_attr:
            password_el.set("Type", PASSWORD_TEXT)
        password_el.text = password
    return security


# --- signed requests (WSS 1.1 §8 with the X.509 Token Profile) ---------------------------------------------------

KeyReferenceStyle = Literal["bst", "ski", "thumbprint", "issuer-serial"]

_HASHES: dict[SignatureAlgorithm, type[hashes.HashAlgorithm]] = {
    SignatureAlgorithm.RSA_SHA256: hashes.SHA256,
    SignatureAlgorithm.RSA_SHA1: hashes.SHA1,
    SignatureAlgorithm.ECDSA_SHA256: hashes.SHA256,
}
_DIGEST_FUNCTIONS = {DigestAlgorithm.SHA256: hashlib.sha256, DigestAlgorithm.SHA1: hashlib.sha1}


def sign_envelope(
    envelope_root: etree._Element,
    key: PrivateKey,
    cert: x509.Certificate,
    *,
    algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256,
    digest: DigestAlgorithm | None = None,
    key_reference: KeyReferenceStyle = "bst",
    now: datetime | None = None,
    ttl: timedelta = timedelta(minutes=5),
    sign_body: bool = True,
    sign_timestamp: bool = True,
) -> etree._Element:
    """Sign a SOAP envelope in place as a WS-Security client does; return its wsse:Security header.

    Adds (or reuses) wsse:Security with a wsu:Timestamp, a wsse:BinarySecurityToken carrying ``cert`` (for the
    ``bst`` style), and a ds:Signature over the soap:Body and the Timestamp (each given a wsu:Id), exclusive c14n
    throughout, the key named in KeyInfo by a SecurityTokenReference of the chosen style. ``sign_body`` and
    ``sign_timestamp`` exist for negative tests: the STS refuses a request that leaves either out.
    """
    digest = digest or (DigestAlgorithm.SHA1 if algorithm is SignatureAlgorithm.RSA_SHA1 else DigestAlgorithm.SHA256)
    soap_ns = ns.split_qn(envelope_root.tag)[0]
    security = _security_header(envelope_root, soap_ns)
    timestamp = security.find(ns.qn(ns.WSU, "Timestamp"))
    if timestamp is None:
        now = now or utcnow()
        timestamp = etree.Element(ns.qn(ns.WSU, "Timestamp"))
        etree.SubElement(timestamp, ns.qn(ns.WSU, "Created")).text = format_datetime(now)
        etree.SubElement(timestamp, ns.qn(ns.WSU, "Expires")).text = format_datetime(now + ttl)
        security.insert(0, timestamp)
    body = envelope_root.find(ns.qn(soap_ns, "Body"))
    if body is None:
        raise ValueError("the envelope has no Body")
    targets = [(_ensure_id(e, hint), e) for e, hint, wanted in
               ((body, "Body", sign_body), (timestamp, "TS", sign_timestamp)) if wanted]
    der = cert.public_bytes(serialization.Encoding.DER)
    token_id = None
    if key_reference == "bst":
        token = etree.Element(_wsse("BinarySecurityToken"), ValueType=X509V3, EncodingType=BASE64_BINARY)
        token_id = _ensure_id(token, "X509")
        token.text = base64.b64encode(der).decode("ascii")
        timestamp.addnext(token)
    signature = _signature_template(algorithm, digest, cert, key_reference, token_id)
    signed_info = signature[0]
    for target_id, target in targets:
        reference = etree.SubElement(signed_info, _ds("Reference"), URI=f"#{target_id}")
        transforms = etree.SubElement(reference, _ds("Transforms"))
        etree.SubElement(transforms, _ds("Transform"), Algorithm=EXC_C14N)
        etree.SubElement(reference, _ds("DigestMethod"), Algorithm=digest.value)
        value = _DIGEST_FUNCTIONS[digest](_exc_c14n(target)).digest()
        etree.SubElement(reference, _ds("DigestValue")).text = base64.b64encode(value).decode("ascii")
    (token.addnext if key_reference == "bst" else timestamp.addnext)(signature)  # after the token it names
    signature_value = _sign(key, algorithm, _exc_c14n(signed_info))
    signature[1].text = base64.b64encode(signature_value).decode("ascii")
    return security


def _security_header(root: etree._Element, soap_ns: str) -> etree._Element:
    header = root.find(ns.qn(soap_ns, "Header"))
    if header is None:
        header = etree.Element(ns.qn(soap_ns, "Header"))
        root.insert(0, header)
    security = header.find(_wsse("Security"))
    if security is None:
        security = etree.SubElement(header, _wsse("Security"), nsmap={"wsse": ns.WSSE, "wsu": ns.WSU})
        security.set(ns.qn(soap_ns, "mustUnderstand"), "1")
    return security


def _ensure_id(element: etree._Element, hint: str) -> str:
    existing = element.get(ns.qn(ns.WSU, "Id"))
    if existing:
        return str(existing)
    value = f"{hint}-{secrets.token_hex(8)}"
    element.set(ns.qn(ns.WSU, "Id"), value)
    return value


def _signature_template(
    algorithm: SignatureAlgorithm,
    digest: DigestAlgorithm,
    cert: x509.Certificate,
    style: KeyReferenceStyle,
    token_id: str | None,
) -> etree._Element:
    signature = etree.Element(_ds("Signature"), nsmap={"ds": ns.DS})
    signed_info = etree.SubElement(signature, _ds("SignedInfo"))
    etree.SubElement(signed_info, _ds("CanonicalizationMethod"), Algorithm=EXC_C14N)
    etree.SubElement(signed_info, _ds("SignatureMethod"), Algorithm=algorithm.value)
    etree.SubElement(signature, _ds("SignatureValue"))
    key_info = etree.SubElement(signature, _ds("KeyInfo"))
    reference = etree.SubElement(key_info, _wsse("SecurityTokenReference"), nsmap={"wsse": ns.WSSE})
    if style == "bst":
        etree.SubElement(reference, _wsse("Reference"), URI=f"#{token_id}", ValueType=X509V3)
    elif style == "issuer-serial":
        issuer_serial = etree.SubElement(etree.SubElement(reference, _ds("X509Data")), _ds("X509IssuerSerial"))
        etree.SubElement(issuer_serial, _ds("X509IssuerName")).text = cert.issuer.rfc4514_string()
        etree.SubElement(issuer_serial, _ds("X509SerialNumber")).text = str(cert.serial_number)
    else:
        if style == "ski":
            value_type, value = X509_SKI, subject_key_identifier(cert)
        else:
            value_type, value = THUMBPRINT_SHA1, cert.fingerprint(hashes.SHA1())
        identifier = etree.SubElement(
            reference, _wsse("KeyIdentifier"), ValueType=value_type, EncodingType=BASE64_BINARY
        )
        identifier.text = base64.b64encode(value).decode("ascii")
    return signature


def subject_key_identifier(cert: x509.Certificate) -> bytes:
    """The certificate's SubjectKeyIdentifier extension, else RFC 5280 §4.2.1.2 method 1 over its key."""
    try:
        return cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    except x509.ExtensionNotFound:
        return x509.SubjectKeyIdentifier.from_public_key(cert.public_key()).digest


def _exc_c14n(element: etree._Element) -> bytes:
    return bytes(etree.tostring(element, method="c14n", exclusive=True, with_comments=False))


def _sign(key: PrivateKey, algorithm: SignatureAlgorithm, data: bytes) -> bytes:
    digest = _HASHES[algorithm]()
    if isinstance(key, rsa.RSAPrivateKey):
        if algorithm is SignatureAlgorithm.ECDSA_SHA256:
            raise ValueError("ECDSA signatures need an EC key")
        return key.sign(data, padding.PKCS1v15(), digest)
    if algorithm is not SignatureAlgorithm.ECDSA_SHA256:
        raise ValueError(f"{algorithm.name} signatures need an RSA key")
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(digest)))
    size = (key.curve.key_size + 7) // 8
    return r.to_bytes(size, "big") + s.to_bytes(size, "big")


def _ds(local: str) -> str:
    return ns.qn(ns.DS, local)


def _wsse(local: str) -> str:
    return ns.qn(ns.WSSE, local)
