"""Frozen, typed models: what the STS decides on once untrusted XML has been parsed.

No XML is built or parsed in here. Two models carry an element parsed or built elsewhere: a ``TokenTarget``
holds the token the hardened parser already read (parsed once, never serialised to be parsed again), and an
``IssuedToken`` holds the signed token that goes into the response as it was built.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from cryptography import x509
from cryptography.hazmat.primitives import hashes
from lxml import etree

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
from sts.protocol.xmlsafe import parse_trusted
from sts.xmltime import parse_datetime

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

    Either a reference (the token id from a wsse:SecurityTokenReference) or the token element itself, as the
    hardened parser read it with the request: unverified until a validator has checked it.
    """

    reference: str | None = None
    unverified_token: etree._Element | None = None


@dataclass(frozen=True)
class EncryptedSecret:
    """An xenc:EncryptedKey reduced to what decrypting or rendering it needs (XML Encryption 1.0 §3.5.1).

    Incoming (requester entropy for the STS): the algorithms as written and the cipher value, decrypted by the
    service. Outgoing (a proof secret for the requester): already encrypted by the service for ``recipient_der``;
    the protocol layer only writes it out.
    """

    algorithm: str
    cipher_value: bytes = field(repr=False)
    digest_algorithm: str | None = None
    recipient_der: bytes | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Entropy:
    """Requester entropy for a symmetric proof key: a clear BinarySecret or an xenc:EncryptedKey for the STS."""

    binary_secret: bytes | None = field(default=None, repr=False)
    encrypted_key: EncryptedSecret | None = None


@dataclass(frozen=True)
class UseKey:
    """The requester's public key for a PublicKey (holder-of-key) token."""

    certificate_der: bytes | None = None
    rsa_modulus: int | None = None
    rsa_exponent: int | None = None
    #: A wsse:SecurityTokenReference to a token of the request (WSS4J: the signing BinarySecurityToken's Id);
    #: the service binds it to the certificate that signed the request.
    token_reference: str | None = None


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
    #: ``soap_version`` was announced by the transport (the HTTP Content-Type): the envelope must be of that version.
    soap_version_announced: bool = False
    #: The actions the transport carried, as (where, action): the SOAPAction header, the content type's action
    #: parameter. An empty SOAPAction ("") means none and is left out.
    transport_actions: tuple[tuple[str, str], ...] = ()


@dataclass(frozen=True)
class ProofKey:
    """The key a holder-of-key token binds: a symmetric secret (never stored) or the requester's public key."""

    symmetric_key: bytes | None = None
    certificate_der: bytes | None = None
    rsa_modulus: int | None = None
    rsa_exponent: int | None = None


@dataclass(frozen=True)
class ProofResponse:
    """What an RSTR says about the proof key (WS-Trust 1.3 §4.4): the key itself, or how to compute it.

    Decided and encrypted by the service: when the requester proved a certificate, ``encrypted`` holds the secret
    (the key, or the issuer's entropy of a computed key) encrypted for it, and no secret is kept in clear.
    """

    key_size: int
    binary_secret: bytes | None = field(default=None, repr=False)  # an STS-generated key, in clear (TLS/loopback)
    server_entropy: bytes | None = field(default=None, repr=False)  # a computed key: the issuer's entropy, in clear
    computed_key_algorithm: str | None = None
    encrypted: EncryptedSecret | None = None  # the key or the issuer's entropy, encrypted for the requester


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
    """A token ready to go into an RSTR: signed and (unless the RP opted out) encrypted, as bytes.

    The assertion is written as canonical bytes (``sts.service.providers``); ``xml`` is the encrypted wrapper
    serialised around them, or, for a token sent unencrypted, those bytes themselves. An Issue answer carries them
    as they are (``wstrust.render.issue_response_bytes``); the element renderers parse them (``element``).
    """

    token_id: str
    token_type: TokenType
    #: The token serialised (UTF-8, no XML declaration, every namespace it uses declared in it).
    xml: bytes = field(repr=False, compare=False)
    encrypted: bool
    created: datetime
    expires: datetime
    applies_to: str
    subject: str
    #: SHA-256 of the token's exclusive canonical form: how an encrypted token is recognised later.
    token_hash: str
    claims: tuple[Claim, ...] = ()

    @property
    def element(self) -> etree._Element:
        """The token parsed, a new tree each time (a renderer moves it into its RSTR)."""
        return parse_trusted(self.xml)


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
class Resolution:
    """What a token target resolves to: a recorded token, or why it is not one (foreign, tampered, unknown)."""

    record: TokenRecord | None
    problem: str | None = None


@dataclass(frozen=True, eq=False)
class TokenDetails(Mapping[str, object]):
    """What the store keeps about an issued token beyond its columns (never a proof key), typed.

    The service reads the fields. The store writes the JSON form (``to_json``) and reads it back with
    ``from_json``, tolerant of rows written before a field existed; readers that want the raw form (the console)
    see the record as a read-only mapping of that JSON, with any key it holds that no field names.
    """

    claims: tuple[Claim, ...] = ()
    name_id_format: str | None = None
    authn_method: AuthnMethod | None = None
    authn_instant: datetime | None = None
    holder_of_key: bool = False
    renew_allow: bool = True
    renew_ok: bool = False
    encrypted: bool = False
    signature_algorithm: str | None = None
    data_encryption: str | None = None
    key_transport: str | None = None
    identity: str | None = None  # whom the token is about, when the NameID is a claim instead
    delegation: str | None = None  # "ActAs" / "OnBehalfOf"
    delegates: tuple[Delegate, ...] = ()  # oldest first
    #: The JSON form, kept once made or read (not an init field, so ``dataclasses.replace`` never copies it).
    _json: dict[str, object] | None = field(default=None, init=False, repr=False)

    def to_json(self) -> dict[str, object]:
        """The JSON form kept in the store (the keys the store has always held)."""
        if self._json is not None:
            return self._json
        made: dict[str, object] = {
            "claims": [{"uri": c.uri, "values": list(c.values)} for c in self.claims],
            "name_id_format": self.name_id_format,
            "authn_instant": self.authn_instant.isoformat() if self.authn_instant else None,
            "key_type": "holder-of-key" if self.holder_of_key else "bearer",
            "renew_allow": self.renew_allow,
            "renew_ok": self.renew_ok,
            "encrypted": self.encrypted,
            "signature_algorithm": self.signature_algorithm,
            "data_encryption": self.data_encryption,
            "key_transport": self.key_transport,
            "authn_method": self.authn_method.value if self.authn_method else None,
            "identity": self.identity,
            "delegation": self.delegation,
            "delegates": [{"name": d.name, "instant": d.instant.isoformat()} for d in self.delegates],
        }
        object.__setattr__(self, "_json", made)  # made once: the store and the console read it again
        return made

    @classmethod
    def from_json(cls, raw: Mapping[str, object]) -> TokenDetails:
        """The typed record of a stored JSON form; entries of a shape it does not know are left out."""
        method = raw.get("authn_method")
        details = cls(
            claims=tuple(Claim(str(c["uri"]), tuple(str(v) for v in c.get("values") or ()))
                         for c in _dicts(raw.get("claims")) if "uri" in c),
            name_id_format=_text(raw.get("name_id_format")),
            authn_method=AuthnMethod(method) if method in _AUTHN_METHODS else None,
            authn_instant=_instant(raw.get("authn_instant")),
            holder_of_key=raw.get("key_type", "bearer") != "bearer",
            renew_allow=bool(raw.get("renew_allow", True)),
            renew_ok=bool(raw.get("renew_ok", False)),
            encrypted=bool(raw.get("encrypted", False)),
            signature_algorithm=_text(raw.get("signature_algorithm")),
            data_encryption=_text(raw.get("data_encryption")),
            key_transport=_text(raw.get("key_transport")),
            identity=_text(raw.get("identity")),
            delegation=_text(raw.get("delegation")),
            delegates=tuple(Delegate(str(d["name"]), instant) for d in _dicts(raw.get("delegates"))
                            if "name" in d and (instant := _instant(d.get("instant"))) is not None),
        )
        object.__setattr__(details, "_json", dict(raw))  # the mapping shows what is stored, unknown keys too
        return details

    def __getitem__(self, key: str) -> object:
        return self.to_json()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self.to_json())

    def __len__(self) -> int:
        return len(self.to_json())


_AUTHN_METHODS = frozenset(m.value for m in AuthnMethod)


def _dicts(value: object) -> list[dict[str, Any]]:
    return [v for v in value if isinstance(v, dict)] if isinstance(value, list) else []


def _text(value: object) -> str | None:
    return None if value is None else str(value)


def _instant(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return parse_datetime(value)
    except ValueError:
        return None


@dataclass(frozen=True)
class TokenRecord:
    """The store's row for one issued token (never a proof key).

    ``details`` may be given as the store's JSON form (a mapping): it is read into a ``TokenDetails``.
    """

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
    details: TokenDetails = field(default_factory=TokenDetails)

    def __post_init__(self) -> None:
        if not isinstance(self.details, TokenDetails):
            object.__setattr__(self, "details", TokenDetails.from_json(self.details))


@dataclass(frozen=True)
class UserRecord:
    name: str
    claims: tuple[Claim, ...] = ()
    disabled: bool = False
    admin: bool = False


@dataclass(frozen=True)
class ClientRecord:
    """A registered client, its certificate and claims."""

    name: str
    certificate: x509.Certificate
    claims: tuple[Claim, ...] = ()
    allow_sha1: bool = False
    disabled: bool = False

    @property
    def fingerprint(self) -> str:
        return self.certificate.fingerprint(hashes.SHA256()).hex()

    def as_user(self) -> UserRecord:
        """The client as the claims code sees a principal (``sts.service.claims.collect_claims`` takes a UserRecord)."""
        return UserRecord(self.name, self.claims, self.disabled)
