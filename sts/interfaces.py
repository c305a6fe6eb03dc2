"""The seams of the STS: Protocols that storage, claims and authentication implement (the whole list)."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Protocol

from sts.model import Claim, ClaimRequest, Principal, RelyingParty, TokenRecord, UserRecord

Clock = Callable[[], datetime]


class RelyingPartyRegistry(Protocol):
    def lookup(self, applies_to: str) -> RelyingParty | None: ...


class ClaimsSource(Protocol):
    def claims_for(
        self, principal: Principal, requested: Sequence[ClaimRequest], rp: RelyingParty
    ) -> list[Claim]: ...


class UserDirectory(Protocol):
    """Users and their credentials; the text password check is slow and constant-time by design."""

    def get(self, name: str) -> UserRecord | None: ...
    def check_password(self, name: str, password: str) -> bool: ...
    def digest_secret(self, name: str) -> str | None: ...


class ReplayCache(Protocol):
    def first_seen(self, key: bytes, until: datetime) -> bool: ...


class TokenStore(Protocol):
    def put(self, record: TokenRecord) -> None: ...
    def get(self, token_id: str) -> TokenRecord | None: ...
    def get_by_hash(self, token_hash: str) -> TokenRecord | None: ...
    def update(self, token_id: str, **changes: object) -> bool: ...
    def transition(self, token_id: str, from_status: str, to_status: str) -> bool: ...
