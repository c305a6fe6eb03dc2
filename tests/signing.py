"""Test-side helpers for signed requests: client keys and certificates, RST envelopes to sign, zeep as a peer."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import xmlsec
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from zeep.wsse.signature import BinarySignature

from sts import ns
from sts.protocol.addressing import render_request_headers
from sts.tokens.crypto.keys import PrivateKey
from sts.protocol.soap import build_envelope
from sts.uris import RequestType, SoapVersion, TrustVersion
from sts.protocol.wsse.build import build_security_header
from sts.protocol.wstrust.render import render_rst
from sts.protocol.xmlsafe import parse

RP = "https://rp.example/"


def make_client(
    name: str = "client", *, not_before: datetime | None = None, days: int = 365
) -> tuple[rsa.RSAPrivateKey, x509.Certificate, bytes]:
    """An RSA key and a self-signed certificate (with an SKI), valid from ``not_before`` for ``days``."""
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    start = not_before or datetime.now(UTC) - timedelta(minutes=5)
    subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name),
                         x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Example, Inc.")])
    cert = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(start)
        .not_valid_after(start + timedelta(days=days))
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    return key, cert, cert.public_bytes(serialization.Encoding.PEM)


def key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.NoEncryption())


def rst_root(
    soap: SoapVersion = SoapVersion.SOAP12, *, applies_to: str = RP, username: tuple[str, str] | None = None,
    timestamp: bool = False,
) -> etree._Element:
    """An unsigned Issue request as a parsed tree (optionally with a UsernameToken / Timestamp header)."""
    version = TrustVersion.WST13
    headers = render_request_headers(RequestType.ISSUE.request_action(version), None)
    if username is not None:
        headers.append(build_security_header(*username, soap_ns=soap.value))
    elif timestamp:
        security = build_security_header("x", "y", soap_ns=soap.value)
        token = security.find(ns.qn(ns.WSSE, "UsernameToken"))
        assert token is not None
        security.remove(token)
        headers.append(security)
    return parse(build_envelope(soap, render_rst(version, applies_to=applies_to), headers))


def reparse(root: etree._Element) -> etree._Element:
    """What the STS receives: the serialized message parsed by the hardened parser."""
    return parse(etree.tostring(root))


def security_of(root: etree._Element) -> etree._Element:
    namespace = etree.QName(root).namespace
    security = root.find(f"{{{namespace}}}Header/{{{ns.WSSE}}}Security")
    assert security is not None
    return security


def zeep_sign(root: etree._Element, key: PrivateKey, cert: x509.Certificate, tmp_path: Path, *,
              sha256: bool = True) -> etree._Element:
    """Sign with zeep's BinarySignature (python-xmlsec underneath): an independent peer."""
    key_file, cert_file = tmp_path / "client.key", tmp_path / "client.crt"
    key_file.write_bytes(key_pem(key))
    cert_file.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    options = {"signature_method": xmlsec.Transform.RSA_SHA256, "digest_method": xmlsec.Transform.SHA256} if sha256 else {}
    signer = BinarySignature(str(key_file), str(cert_file), **options)
    signed, _ = signer.apply(root, {})
    return reparse(signed)
