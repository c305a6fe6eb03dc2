"""Frozen, typed models: what the STS decides on once untrusted XML has been parsed (no XML in here)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sts.uris import (
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
class TokenTarget:
    """The token that a RenewTarget, CancelTarget, ValidateTarget, ActAs or OnBehalfOf names.

    Either a reference (the token id from a wsse:SecurityTokenReference) or the token itself, serialized as it
    was received: unverified until a validator has checked it.
    """

    reference: str | None = None
    unverified_token: bytes | None = None


@dataclass(frozen=True)
class Entropy:
    """Requester entropy for a symmetric proof key: a clear BinarySecret or an xenc:EncryptedKey for the STS."""

    binary_secret: bytes | None = None
    encrypted_key: bytes | None = None  # the serialized xenc:EncryptedKey element


@dataclass(frozen=True)
class UseKey:
    """The requester's public key for a PublicKey (holder-of-key) token."""

    certificate_der: bytes | None = None
    rsa_modulus: int | None = None
    rsa_exponent: int | None = None


@dataclass(frozen=True)
class Renewing:
    """wst:Renewing: may the token be renewed (Allow), and after it expired (OK)."""

    allow: bool = True
    ok: bool = False


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
    key_size: int | None = None
    entropy: Entropy | None = None
    computed_key_algorithm: str | None = None
    use_key: UseKey | None = None
    renewing: Renewing | None = None
    allow_postdating: bool = False
    renew_target: TokenTarget | None = None
    cancel_target: TokenTarget | None = None
    validate_target: TokenTarget | None = None
    act_as: TokenTarget | None = None
    on_behalf_of: TokenTarget | None = None
    #: Algorithm hints the requester relies on (wst:SignatureAlgorithm ... wst:EncryptWith), by local name.
    algorithms: tuple[tuple[str, str], ...] = ()
    authentication_type: str | None = None
    issuer: str | None = None
    batch: bool = False  # a Batch* RequestType, inside a RequestSecurityTokenCollection

    @property
    def request_type_uri(self) -> str:
        """The RequestType as the requester sent it (``.../Issue``, ``.../BatchIssue``)."""
        return self.version.uri(("Batch" if self.batch else "") + self.request_type.value)


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
    allowed_token_types: tuple[TokenType, ...] = ()  # empty: any
    allowed_key_types: tuple[KeyType, ...] = ()  # empty: any
    additional_audiences: tuple[str, ...] = ()  # more Audience values in the AudienceRestriction
    next_cert_pem: bytes | None = None  # certificate rollover: tokens are encrypted for it ...
    next_cert_from: datetime | None = None  # ... from this instant on

    def encryption_cert_pem(self, now: datetime) -> bytes | None:
        """The certificate tokens issued at ``now`` are encrypted for: the next one once its time has come."""
        if self.next_cert_pem and self.next_cert_from is not None and now >= self.next_cert_from:
            return self.next_cert_pem
        return self.cert_pem

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
    #: The certificate the client presented in the TLS handshake (DER), when the server asked for one.
    tls_client_cert_der: bytes | None = None
    #: The endpoint authenticates by the TLS client certificate alone (AD FS's certificatetransport).
    certificate_transport: bool = False
    #: The TLS layer asks clients for a certificate: MEX then lists the certificatetransport endpoints too.
    client_certificates: bool = False


@dataclass(frozen=True)
class ProofKey:
    """The key a holder-of-key token binds: a symmetric secret (never stored) or the requester's public key."""

    symmetric_key: bytes | None = None
    certificate_der: bytes | None = None
    rsa_modulus: int | None = None
    rsa_exponent: int | None = None


@dataclass(frozen=True)
class ProofResponse:
    """What an RSTR says about the proof key (WS-Trust 1.3 §4.4): the key itself, or how to compute it."""

    key_size: int
    binary_secret: bytes | None = None  # an STS-generated key, in clear (TLS or loopback only)
    encrypted_for_der: bytes | None = None  # ... or that key encrypted for this requester certificate
    server_entropy: bytes | None = None  # a computed key: the issuer's entropy
    computed_key_algorithm: str | None = None


@dataclass(frozen=True)
class Delegate:
    """One link of a delegation chain: who acted for the subject, and when (SAML V2.0 Delegation Restriction)."""

    name: str
    instant: datetime


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
    proof_key: ProofKey | None = None  # None: a bearer token
    delegates: tuple[Delegate, ...] = ()  # ActAs/OnBehalfOf: who acts for the subject, oldest first
    additional_audiences: tuple[str, ...] = ()  # more Audience values beside ``audience``


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
    #: SHA-256 of the token's exclusive canonical form: how an encrypted token is recognised later.
    token_hash: str
    claims: tuple[Claim, ...] = ()


@dataclass(frozen=True)
class RequestSecurityTokenResponse:
    """What the service answers to an Issue; rendered by ``wstrust.render``."""

    version: TrustVersion
    token: IssuedToken
    token_type_uri: str
    applies_to_ns: str | None = None
    context: str | None = None
    proof: ProofResponse | None = None
    request_type_uri: str | None = None   # echoed as AD FS does (RequestType, KeyType last in the RSTR)
    key_type_uri: str | None = None


@dataclass(frozen=True)
class ValidationStatus:
    """The answer to a Validate: wst:Status Code valid/invalid and a Reason."""

    valid: bool
    reason: str


@dataclass(frozen=True)
class ValidateResponse:
    version: TrustVersion
    status: ValidationStatus
    context: str | None = None
    issued: RequestSecurityTokenResponse | None = None  # validate-and-exchange: the new token


@dataclass(frozen=True)
class CancelResponse:
    version: TrustVersion
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
