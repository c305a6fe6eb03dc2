"""Frozen, typed models: what the STS decides on once untrusted XML has been parsed (no XML in here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from .uris import (
    AuthnMethod,
    DataEncryption,
    KeyTransport,
    KeyType,
    RequestType,
    SignatureAlgorithm,
    SoapVersion,
    TokenType,
    TrustVersion,
)

ANY_CLAIM = "*"


@dataclass(frozen=True)
class Lifetime:
    created: datetime | None
    expires: datetime | None


@dataclass(frozen=True)
class ClaimRequest:
    """One claim the requester asks for (from wst:Claims in any supported dialect)."""

    uri: str
    optional: bool = False
    value: str | None = None


@dataclass(frozen=True)
class Claim:
    """A claim that goes into a token: its URI and its values."""

    uri: str
    values: tuple[str, ...]


@dataclass(frozen=True)
class RequestSecurityToken:
    """A parsed wst:RequestSecurityToken (also the one inside SecondaryParameters, merged in)."""

    version: TrustVersion
    request_type: RequestType
    token_type: TokenType | None = None
    token_type_uri: str | None = None  # the exact URI the client used, echoed in the answer
    applies_to: str | None = None
    applies_to_ns: str | None = None  # the WS-Policy namespace of AppliesTo, echoed in the answer
    lifetime: Lifetime | None = None
    claims: tuple[ClaimRequest, ...] = ()
    claims_dialect: str | None = None
    key_type: KeyType | None = None
    key_type_uri: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class Principal:
    """Who the requester proved to be."""

    name: str
    authn_method: AuthnMethod
    authn_instant: datetime


@dataclass(frozen=True)
class RelyingParty:
    """A trusted relying party and its token policy."""

    endpoint: str
    cert_pem: bytes | None = None
    match_prefix: bool = False
    token_type: TokenType = TokenType.SAML20
    required_claims: tuple[str, ...] = ()
    permitted_claims: tuple[str, ...] = (ANY_CLAIM,)
    encrypt: bool = True
    default_lifetime: timedelta = timedelta(minutes=30)
    max_lifetime: timedelta = timedelta(hours=8)
    refuse_long_lifetime: bool = False  # False: clamp to max_lifetime; True: wst:InvalidTimeRange
    name_id_claim: str | None = None
    signature_algorithm: SignatureAlgorithm = SignatureAlgorithm.RSA_SHA256
    data_encryption: DataEncryption = DataEncryption.AES256_GCM
    key_transport: KeyTransport = KeyTransport.RSA_OAEP_MGF1P

    def permits(self, claim_uri: str) -> bool:
        return ANY_CLAIM in self.permitted_claims or claim_uri in self.permitted_claims


@dataclass(frozen=True)
class RequestContext:
    """What the transport knows about one request."""

    remote: str
    tls: bool
    loopback_bind: bool
    received_at: datetime
    soap_version: SoapVersion = SoapVersion.SOAP12


@dataclass(frozen=True)
class AssertionContent:
    """Everything a SAML builder needs; built by the service from the request, the principal and the RP."""

    assertion_id: str
    issuer: str
    subject_name: str
    name_id_format: str
    audience: str
    issue_instant: datetime
    not_before: datetime
    not_on_or_after: datetime
    authn_method: AuthnMethod
    authn_instant: datetime
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class IssuedToken:
    """A token ready to go into an RSTR: serialized, signed and (unless the RP opted out) encrypted."""

    token_id: str
    token_type: TokenType
    xml: bytes
    encrypted: bool
    created: datetime
    expires: datetime
    applies_to: str
    subject: str
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class RequestSecurityTokenResponse:
    """What the service answers to an Issue; rendered by ``wstrust.render``."""

    version: TrustVersion
    token: IssuedToken
    token_type_uri: str
    applies_to_ns: str | None = None
    context: str | None = None


@dataclass(frozen=True)
class TokenRecord:
    """The store's row for one issued token (never a proof key)."""

    token_id: str
    token_type: TokenType
    subject: str
    applies_to: str
    issued: datetime
    expires: datetime
    status: str = "valid"
    renewal_count: int = 0
    token_hash: str = ""
    requester: str = ""
    details: dict[str, object] = field(default_factory=dict)


@dataclass(frozen=True)
class UserRecord:
    name: str
    claims: tuple[Claim, ...] = ()
    disabled: bool = False
    admin: bool = False
