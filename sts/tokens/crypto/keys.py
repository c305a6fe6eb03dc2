"""Keys and X.509 certificates: generate, load (PEM or DER), check; loaded once per process (RFC 5280)."""

from __future__ import annotations

import base64
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import NameOID

#: The private keys the STS can sign with (and relying parties decrypt with).
PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey]

_PEM_CERT = b"-----BEGIN CERTIFICATE-----"
_PEM_KEY_MARKERS = (b"PRIVATE KEY-----",)


def generate_key_and_cert(common_name: str, *, days: int = 3650, ec: bool = False) -> tuple[bytes, bytes]:
    """A new private key (PKCS #8 PEM, unencrypted) and a self-signed certificate (PEM) for it."""
    key = _new_key(ec)
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)])
    # Backdate a little: a peer whose clock runs slightly behind must not see a not-yet-valid certificate.
    now = datetime.now(timezone.utc) - timedelta(minutes=5)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now)
        .not_valid_after(now + timedelta(days=days))
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_key_usage(rsa_key=not ec), critical=True)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .sign(key, hashes.SHA256())
    )
    key_pem = key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, cert.public_bytes(serialization.Encoding.PEM)


def _new_key(use_ec: bool) -> PrivateKey:
    if use_ec:
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_usage(*, rsa_key: bool) -> x509.KeyUsage:
    # dataEncipherment only means something for RSA keys; EC keys sign (and would use key agreement).
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=True,
        data_encipherment=rsa_key,
        key_agreement=False,
        key_cert_sign=False,
        crl_sign=False,
        encipher_only=False,
        decipher_only=False,
    )


def load_private_key(data: bytes, password: bytes | None = None) -> PrivateKey:
    """An RSA or EC private key from PEM or DER bytes; ValueError with a message fit for a user."""
    if _PEM_CERT in data:
        raise ValueError("this is a certificate, not a private key")
    try:
        if data.lstrip().startswith(b"-----"):
            key = serialization.load_pem_private_key(data, password=password)
        else:
            key = serialization.load_der_private_key(data, password=password)
    except TypeError:
        raise ValueError("the private key is encrypted: a password is needed") from None
    except ValueError:
        raise ValueError("not a PEM or DER private key (or the password is wrong)") from None
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError("only RSA and EC private keys are supported")
    return key


def load_certificate(data: bytes) -> x509.Certificate:
    """An X.509 certificate from PEM or DER bytes; ValueError with a message fit for a user."""
    if any(marker in data for marker in _PEM_KEY_MARKERS):
        raise ValueError("this is a private key, upload the certificate")
    try:
        if _PEM_CERT in data:
            return x509.load_pem_x509_certificate(data)
        return x509.load_der_x509_certificate(data)
    except ValueError:
        raise ValueError("not a PEM or DER X.509 certificate") from None


def check_certificate(cert: x509.Certificate, now: datetime) -> None:
    """Raise ValueError when ``cert`` is expired or not yet valid at ``now`` (an aware datetime)."""
    if now < cert.not_valid_before_utc:
        raise ValueError(f"the certificate is not valid before {cert.not_valid_before_utc.isoformat()}")
    if now > cert.not_valid_after_utc:
        raise ValueError(f"the certificate expired on {cert.not_valid_after_utc.isoformat()}")


def fingerprint_sha256(cert: x509.Certificate) -> str:
    """The SHA-256 fingerprint as colon-separated upper-case hex, as browsers and openssl show it."""
    return cert.fingerprint(hashes.SHA256()).hex(":").upper()


def public_keys_match(key: PrivateKey, cert: x509.Certificate) -> bool:
    """Whether ``cert`` certifies the public half of ``key``."""
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return key.public_key().public_bytes(der, spki) == cert.public_key().public_bytes(der, spki)


@dataclass(frozen=True)
class SigningKey:
    """The STS's signing key and certificate, with the encodings every KeyInfo needs precomputed."""

    private_key: PrivateKey
    certificate: x509.Certificate
    cert_der: bytes
    cert_b64: str

    @classmethod
    def load(cls, key_path: Path, cert_path: Path, password: bytes | None = None) -> SigningKey:
        return cls.from_pem(key_path.read_bytes(), cert_path.read_bytes(), password)

    @classmethod
    def from_pem(cls, key_pem: bytes, cert_pem: bytes, password: bytes | None = None) -> SigningKey:
        """From PEM (or DER) bytes; ValueError when the certificate is not the key's."""
        return cls.of(load_private_key(key_pem, password), load_certificate(cert_pem))

    @classmethod
    def of(cls, key: PrivateKey, cert: x509.Certificate) -> SigningKey:
        """From a loaded key (in memory, or an HSM's: ``sts.tokens.crypto.pkcs11``) and its certificate;
        ValueError when the certificate is not the key's."""
        if not public_keys_match(key, cert):
            raise ValueError("the certificate does not belong to the private key")
        der = cert.public_bytes(serialization.Encoding.DER)
        return cls(key, cert, der, base64.b64encode(der).decode("ascii"))

    @property
    def is_ec(self) -> bool:
        return isinstance(self.private_key, ec.EllipticCurvePrivateKey)


def random_id() -> str:
    """An XML ID (NCName) with 128 random bits: ``_`` + 32 hex digits."""
    return "_" + secrets.token_hex(16)
