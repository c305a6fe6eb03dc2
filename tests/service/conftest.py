"""In-memory fakes of every seam the service takes (``sts.interfaces``) and a fixed clock: no HTTP, no SQLite.

``make_service(**overrides)`` builds a ``SecurityTokenService`` over them; the fake provider builds a plain
element (no signature: what it builds is the real providers' business, tested in tests/test_providers.py), and
the fake validator trusts a token element whose ``Signed`` attribute says so (the real signature check is
tests/tokens' business), so these tests see the service's decisions alone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, timedelta

import pytest
from lxml import etree

from sts.model import (
    AssertionContent,
    Claim,
    IssuedToken,
    Principal,
    RelyingParty,
    TokenRecord,
    TokenTarget,
    UserRecord,
)
from sts.service.lifecycle import LifecyclePolicy
from sts.service.token_service import IssuePolicy, SecurityTokenService
from sts.tokens.crypto.keys import SigningKey, generate_key_and_cert
from sts.tokens.crypto.proof import ProofKeyFactory
from sts.model import Resolution
from sts.uris import AuthnMethod, TokenType

T0 = datetime(2030, 1, 1, 12, 0, tzinfo=UTC)
ISSUER = "https://sts.test/"
RP = "https://rp.test/app"
CLAIMS = "http://schemas.xmlsoap.org/ws/2005/05/identity/claims"
GIVENNAME, SURNAME, EMAIL = f"{CLAIMS}/givenname", f"{CLAIMS}/surname", f"{CLAIMS}/emailaddress"


class FixedClock:
    """A clock that stands still until a test moves it."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, delta: timedelta) -> None:
        self.now += delta


class Registry:
    def __init__(self, *parties: RelyingParty) -> None:
        self.parties = {rp.endpoint: rp for rp in parties}

    def lookup(self, applies_to: str) -> RelyingParty | None:
        return self.parties.get(applies_to)


class Users:
    def __init__(self, *users: UserRecord, passwords: dict[str, str] | None = None) -> None:
        self.users = {u.name: u for u in users}
        self.passwords = passwords or {}

    def get(self, name: str) -> UserRecord | None:
        return self.users.get(name)

    def check_password(self, name: str, password: str) -> bool:
        return self.passwords.get(name) == password

    def digest_secret(self, name: str) -> str | None:
        return None


class Tokens:
    """``TokenStore`` in a dict."""

    def __init__(self) -> None:
        self.records: dict[str, TokenRecord] = {}

    def put(self, record: TokenRecord) -> None:
        if record.token_id in self.records:
            raise ValueError(f"token {record.token_id} already recorded")
        self.records[record.token_id] = record

    def get(self, token_id: str) -> TokenRecord | None:
        return self.records.get(token_id)

    def get_by_hash(self, token_hash: str) -> TokenRecord | None:
        return next((r for r in self.records.values() if r.token_hash == token_hash), None)

    def update(self, token_id: str, **changes: object) -> bool:
        if token_id not in self.records:
            return False
        self.records[token_id] = replace(self.records[token_id], **changes)  # type: ignore[arg-type]
        return True

    def transition(self, token_id: str, from_status: str, to_status: str) -> bool:
        record = self.records.get(token_id)
        if record is None or record.status != from_status:
            return False
        self.records[token_id] = replace(record, status=to_status)
        return True


class Provider:
    """``TokenProvider`` that builds a bare element and remembers what it was asked to build."""

    def __init__(self) -> None:
        self.built: list[tuple[AssertionContent, RelyingParty, TokenType]] = []

    def issue(self, content: AssertionContent, rp: RelyingParty, token_type: TokenType) -> IssuedToken:
        self.built.append((content, rp, token_type))
        element = etree.Element("Token", ID=content.assertion_id, Signed="yes")
        return IssuedToken(
            token_id=content.assertion_id, token_type=token_type, xml=etree.tostring(element), encrypted=False,
            created=content.not_before, expires=content.not_on_or_after, applies_to=content.audience,
            subject=content.subject_name, claims=content.claims,
            token_hash=hashlib.sha256(content.assertion_id.encode()).hexdigest(),
        )


class Validator:
    """``TokenValidator``: a reference is looked up; an element counts as verified when ``Signed="yes"``."""

    def __init__(self, tokens: Tokens) -> None:
        self.tokens = tokens

    def resolve(self, target: TokenTarget) -> Resolution:
        if target.reference is not None:
            return Resolution(self.tokens.get(target.reference), None)
        element = target.unverified_token
        if element is None or element.get("Signed") != "yes":
            return Resolution(None, "the token is not signed by this STS or was altered")
        record = self.tokens.get(str(element.get("ID")))
        return Resolution(record, None if record else "the token is unknown to this STS")


class Claims:
    """A ``ClaimsSource`` that is not the user store: it answers the same claims for everyone."""

    def __init__(self, *claims: Claim) -> None:
        self.claims = list(claims)
        self.asked: list[str] = []

    def claims_for(self, principal: Principal, requested: object, rp: RelyingParty) -> list[Claim]:
        self.asked.append(principal.name)
        return list(self.claims)


@dataclass
class Fakes:
    clock: FixedClock
    registry: Registry
    users: Users
    tokens: Tokens
    provider: Provider
    validator: Validator
    extra: dict[str, object] = field(default_factory=dict)


ALICE = UserRecord("alice", (Claim(GIVENNAME, ("Alice",)), Claim(EMAIL, ("alice@example.org",))))
PORTAL = UserRecord("portal")


@pytest.fixture(scope="session")
def encryption_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("sts encryption"))


@pytest.fixture(scope="session")
def requester_key() -> SigningKey:
    return SigningKey.from_pem(*generate_key_and_cert("requester.test"))


@pytest.fixture(scope="session")
def rp_cert_pem() -> bytes:
    return generate_key_and_cert("rp.test")[1]


@pytest.fixture
def fakes(rp_cert_pem: bytes) -> Fakes:
    tokens = Tokens()
    return Fakes(
        clock=FixedClock(),
        registry=Registry(RelyingParty(RP, cert_pem=rp_cert_pem, required_claims=(GIVENNAME,))),
        users=Users(ALICE, PORTAL, UserRecord("mallory", disabled=True), passwords={"alice": "wonderland"}),
        tokens=tokens,
        provider=Provider(),
        validator=Validator(tokens),
    )


MakeService = Callable[..., SecurityTokenService]


@pytest.fixture
def make_service(fakes: Fakes, encryption_key: SigningKey) -> Iterator[MakeService]:
    def make(**overrides: object) -> SecurityTokenService:
        options: dict[str, object] = {
            "policy": IssuePolicy(issuer=ISSUER, delegates=frozenset({"portal"})),
            "registry": fakes.registry,
            "users": fakes.users,
            "provider": fakes.provider,
            "tokens": fakes.tokens,
            "clock": fakes.clock,
            "resolver": fakes.validator,
            "lifecycle": LifecyclePolicy(token_admins=frozenset({"admin"})),
            "proof_keys": ProofKeyFactory(encryption_key, random_bytes=lambda n: b"\x07" * n),
        }
        options.update(overrides)
        return SecurityTokenService(**options)  # type: ignore[arg-type]

    yield make


def principal(name: str = "alice", method: AuthnMethod = AuthnMethod.PASSWORD) -> Principal:
    return Principal(name, method, T0 - timedelta(seconds=5))
