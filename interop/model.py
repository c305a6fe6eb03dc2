"""The vocabulary shared by the replay, the peers and the report: verdicts, token cases and client cases."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field


class Status(enum.Enum):
    PASS = "pass"
    FAIL = "fail"
    SKIP = "skipped"       # the peer could not run here (not installed, ...): never counted as a pass
    NA = "n/a"             # the cell does not apply (the peer has no such feature, e.g. ECDSA or SAML 1.1)


@dataclass(frozen=True)
class Verdict:
    status: Status
    detail: str = ""

    @classmethod
    def passed(cls, detail: str = "") -> Verdict:
        return cls(Status.PASS, detail)

    @classmethod
    def failed(cls, detail: str) -> Verdict:
        return cls(Status.FAIL, detail)

    @classmethod
    def skipped(cls, reason: str) -> Verdict:
        return cls(Status.SKIP, reason)

    @classmethod
    def not_applicable(cls, reason: str) -> Verdict:
        return cls(Status.NA, reason)


@dataclass(frozen=True)
class Expected:
    """What a correct token for a case carries: a verifier peer compares what it read against this."""

    subject: str                                   # the NameID / NameIdentifier value
    audience: str                                  # the relying party's address (AppliesTo)
    claims: dict[str, tuple[str, ...]] = field(default_factory=dict)
    # claim URI -> values; SAML 2.0 carries the URI as Attribute/@Name, SAML 1.1 splits it into
    # AttributeNamespace (everything up to the last '/') and AttributeName (the rest)


@dataclass(frozen=True)
class TokenCase:
    """One issued token, handed to every verifier peer.

    ``token`` is RequestedSecurityToken's first child, serialised on its own: a ``saml:Assertion`` (1.1),
    a ``saml2:Assertion`` (2.0), an ``xenc:EncryptedData`` (1.1 encrypted) or a ``saml2:EncryptedAssertion``
    (2.0 encrypted). ``rstr`` is the whole SOAP answer it came in.
    """

    name: str                 # e.g. "saml20-encrypted-wst13"
    saml: str                 # "1.1" | "2.0"
    encrypted: bool
    signature: str            # "rsa-sha256" | "rsa-sha1" | "ecdsa-sha256"
    data_encryption: str | None   # "aes256-gcm" | "aes256-cbc" | ... when encrypted
    key_transport: str | None     # "rsa-oaep-mgf1p" | "rsa-1_5" when encrypted
    token: bytes
    rstr: bytes
    sts_cert_pem: bytes       # the only key a peer may trust
    rp_key_pem: bytes | None  # the relying party's private key (to decrypt), when encrypted
    expected: Expected


@dataclass(frozen=True)
class ClientCase:
    """One Issue a client peer makes: for which relying-party profile, in which protocol versions."""

    name: str                 # e.g. "saml11-plain-wst2005-soap12"
    profile: str              # a key of interop.target.PROFILES
    wstrust: str              # "1.3" | "2005"
    soap: str                 # "1.1" | "1.2"
    auth: str = "username-text"   # | "username-digest" | "x509"
    act_as: bool = False          # WS-Trust 1.4 ActAs: the requester (a delegate) asks on a user's behalf
    key_type: str = "bearer"      # | "symmetric" (a proof key from both entropies) | "public" (UseKey, proven)


@dataclass(frozen=True)
class Exchange:
    """One request and its answer as they crossed the wire (for the report and `make record`)."""

    url: str
    request: bytes
    response: bytes
    status: int


@dataclass(frozen=True)
class ClientOutcome:
    """What a client peer got: its verdict on the exchange and, when it succeeded, the token it extracted."""

    verdict: Verdict
    token: bytes | None = None          # RequestedSecurityToken's first child, as the peer extracted it
    token_type: str | None = None       # the TokenType the peer read from the RSTR
    exchanges: tuple[Exchange, ...] = ()
