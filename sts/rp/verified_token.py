"""What the relying-party verifier returns (``VerifiedToken``) and its one error (``TokenRejected``, defined with
the one verification path in ``sts.tokens.verification``)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Final, Union

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from sts.model import Delegate
from sts.tokens.verification import TokenRejected as TokenRejected
from sts.xmltime import parse_datetime

PublicKey = Union[rsa.RSAPublicKey, ec.EllipticCurvePublicKey]

_MAX_BYTES: Final = 1024 * 1024


@dataclass(frozen=True)
class VerifiedToken:
    """What a verified token says; every value was read from the signed XML."""

    token_id: str
    version: str  # "1.1" or "2.0"
    issuer: str
    subject: str
    subject_format: str | None
    claims: dict[str, tuple[str, ...]]
    not_before: datetime | None
    not_on_or_after: datetime
    audiences: tuple[str, ...]
    authn_method: str | None
    authn_instant: datetime | None
    confirmation_method: str | None
    proof_key: bytes | None = field(default=None, repr=False)
    proof_certificate: x509.Certificate | None = None
    delegates: tuple[Delegate, ...] = ()
    proof_public_key: PublicKey | None = None

    def claim(self, uri: str) -> str | None:
        """The first value of a claim, or None."""
        values = self.claims.get(uri)
        return values[0] if values else None

    @property
    def holder_of_key(self) -> bool:
        return self.confirmation_method is not None and self.confirmation_method.endswith(":cm:holder-of-key")


def parse_time(text: str | None, what: str) -> datetime | None:
    """An optional xs:dateTime attribute, or ``TokenRejected`` (malformed)."""
    if text is None:
        return None
    try:
        return parse_datetime(text)
    except ValueError:
        raise TokenRejected(f"{what} is not an xs:dateTime", "malformed") from None


def first(values: Iterable[str | None]) -> str | None:
    for value in values:
        if value:
            return value
    return None
