"""Reading a certificate an administrator gives (a file, an upload, pasted PEM, metadata) once, with clear errors.

Relying parties and X.509 clients both hand the STS a public certificate. What can go wrong is the same every
time, and every front-end says it the same way: a private key instead of a certificate, something that is not a
PEM or DER X.509 certificate, an empty or oversized file, a certificate that is expired or not yet valid.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding

from sts.admin.base import InvalidInput
from sts.tokens.crypto.keys import check_certificate, fingerprint_sha256, load_certificate

#: More than any certificate chain needs; a bigger "certificate" is a mistake (or an attack on memory).
MAX_CERTIFICATE_BYTES = 256 * 1024


@dataclass(frozen=True)
class CertificateSummary:
    """What an administrator reads about a certificate (and the audit log keeps): never key material."""

    subject: str
    issuer: str
    fingerprint: str  # SHA-256, colon-separated upper-case hex
    not_before: datetime
    not_after: datetime

    @classmethod
    def of(cls, certificate: x509.Certificate) -> CertificateSummary:
        return cls(certificate.subject.rfc4514_string(), certificate.issuer.rfc4514_string(),
                   fingerprint_sha256(certificate), certificate.not_valid_before_utc,
                   certificate.not_valid_after_utc)

    def as_data(self) -> dict[str, object]:
        """Plain data for the audit detail and JSON."""
        return {"subject": self.subject, "fingerprint": self.fingerprint, "expires": self.not_after.isoformat()}


def read_certificate(data: bytes, now: datetime, *, field: str = "cert") -> x509.Certificate:
    """The certificate in ``data`` (PEM or DER), valid at ``now``; InvalidInput for ``field`` saying what is wrong."""
    if not data.strip():
        raise InvalidInput("the certificate is empty", field=field)
    if len(data) > MAX_CERTIFICATE_BYTES:
        raise InvalidInput("the file is too large for a certificate", field=field)
    if b"PRIVATE KEY-----" in data:
        raise InvalidInput("this is a private key: give the certificate only (the key stays with its owner)",
                           field=field)
    try:
        certificate = load_certificate(data)
        check_certificate(certificate, now)
    except ValueError as exc:
        raise InvalidInput(str(exc), field=field) from None
    return certificate


def read_certificate_file(path: Path, now: datetime, *, field: str = "cert") -> x509.Certificate:
    """:func:`read_certificate` on a file; an unreadable file is InvalidInput too (never a traceback)."""
    try:
        with path.open("rb") as handle:
            data = handle.read(MAX_CERTIFICATE_BYTES + 1)
    except OSError as exc:
        raise InvalidInput(f"cannot read {path}: {exc.strerror or exc}", field=field) from None
    return read_certificate(data, now, field=field)


def certificate_pem(certificate: x509.Certificate) -> bytes:
    """The form the store keeps: PEM, whatever form it was given in."""
    return certificate.public_bytes(Encoding.PEM)


def summarize_pem(pem: bytes | None) -> CertificateSummary | None:
    """The summary of a stored certificate; None when there is none (or it cannot be read any more)."""
    if not pem:
        return None
    try:
        return CertificateSummary.of(load_certificate(pem))
    except ValueError:
        return None


__all__ = ["MAX_CERTIFICATE_BYTES", "CertificateSummary", "certificate_pem", "read_certificate",
           "read_certificate_file", "summarize_pem"]
