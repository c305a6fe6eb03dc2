"""The seams of the STS: the Protocols that storage, claims and tokens implement, in one place.

``SecurityTokenService`` and the endpoint receive implementations of these through their constructors (no
globals, no registries); tests pass in-memory fakes (``tests/service/conftest.py``) and a fixed ``Clock``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Protocol

from cryptography import x509

from sts.model import (
    AssertionContent,
    Claim,
    ClaimRequest,
    ClientRecord,
    IssuedToken,
    Principal,
    RelyingParty,
    Resolution,
    TokenRecord,
    TokenTarget,
    UserRecord,
)
from sts.uris import TokenType

if TYPE_CHECKING:  # a type only (and a module that imports nothing of ours back)
    from sts.tokens.crypto.keys import SigningKey

#: The time as the service sees it (``sts.xmltime.utcnow`` in production, a fixed instant in tests).
Clock = Callable[[], datetime]


class RelyingPartyRegistry(Protocol):
    def lookup(self, applies_to: str) -> RelyingParty | None: ...


class ClaimsSource(Protocol):
    """The claims a token for ``principal`` at ``rp`` carries; RequestFailed (naming the claim) if it cannot."""

    def claims_for(
        self, principal: Principal, requested: Sequence[ClaimRequest], rp: RelyingParty
    ) -> list[Claim]: ...


class UserLookup(Protocol):
    def get(self, name: str) -> UserRecord | None: ...


class UserDirectory(UserLookup, Protocol):
    """Users and their credentials; the text password check is slow and constant-time by design."""

    def check_password(self, name: str, password: str) -> bool: ...
    def digest_secret(self, name: str) -> str | None: ...


class ClientLookup(Protocol):
    """Registered clients by name; ``as_user()`` on the record gives the subject the claims code sees."""

    def get(self, name: str) -> object: ...


class ClientDirectory(Protocol):
    """Registered clients by each way a KeyInfo names a certificate (``sts.store.clients.SqlClientStore``)."""

    def by_certificate(self, cert: x509.Certificate) -> ClientRecord | None: ...
    def by_issuer_serial(self, issuer: str, serial: int) -> ClientRecord | None: ...
    def by_ski(self, ski: bytes) -> ClientRecord | None: ...
    def by_thumbprint(self, sha1: bytes) -> ClientRecord | None: ...


class TokenProvider(Protocol):
    """Builds, signs and encrypts one token from the decided content (``sts.service.providers``)."""

    def issue(self, content: AssertionContent, rp: RelyingParty, token_type: TokenType) -> IssuedToken: ...


class TokenValidator(Protocol):
    """Finds the recorded token a Validate/Renew/Cancel/ActAs/OnBehalfOf target names, verified."""

    def resolve(self, target: TokenTarget) -> Resolution: ...


class TokenRecords(Protocol):
    """What token lookups need of the store: by id and by hash (an encrypted token is known by its hash)."""

    def get(self, token_id: str) -> TokenRecord | None: ...
    def get_by_hash(self, token_hash: str) -> TokenRecord | None: ...


class TokenStatuses(Protocol):
    """What Renew and Cancel need of the store: a record, and an atomic change of its status."""

    def get(self, token_id: str) -> TokenRecord | None: ...
    def transition(self, token_id: str, from_status: str, to_status: str) -> bool: ...


class TokenStore(TokenRecords, Protocol):
    def put(self, record: TokenRecord) -> None: ...
    def update(self, token_id: str, **changes: object) -> bool: ...
    def transition(self, token_id: str, from_status: str, to_status: str) -> bool: ...


class ReplayCache(Protocol):
    def first_seen(self, key: bytes, until: datetime) -> bool: ...


class ThrottleStore(Protocol):
    """Failed password checks per user key and per address key, shared by every process
    (``sts.store.throttle.SqlThrottleStore``); the rule that reads them is ``sts.service.throttle``."""

    def counts(self, user: str, address: str, since: datetime) -> tuple[int, int]: ...
    def failed(self, user: str, address: str, now: datetime, since: datetime) -> None: ...
    def reset(self, user: str) -> None: ...
    def forgive(self, address: str) -> None: ...


class SigningKeys(Protocol):
    """A keyring: the signing key in use at an instant (``sts.tokens.keyring.Keyring``)."""

    def current(self, now: datetime) -> SigningKey: ...


class AuditSink(Protocol):
    """Where audit entries go (``sts.store.audit.AuditTrail``; a list in tests)."""

    def record(self, event: str, *, actor: str | None, outcome: str, subject: str | None = None,
               detail: Mapping[str, object] | None = None) -> None: ...
