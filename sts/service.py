"""The Security Token Service's decisions: models in, models out; no XML, no HTTP (WS-Trust 1.3 §3-§4)."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from .claims import collect_claims
from .errors import BadRequest, FailedAuthentication, InvalidRequest, InvalidScope, InvalidTimeRange
from .interfaces import Clock, RelyingPartyRegistry, TokenStore, UserDirectory
from .model import (
    AssertionContent,
    Claim,
    IssuedToken,
    Principal,
    RelyingParty,
    RequestSecurityToken,
    RequestSecurityTokenResponse,
    TokenRecord,
    UserRecord,
)
from .uris import NAMEID_UNSPECIFIED, KeyType, RequestType, TokenType
from .wstrust.render import token_type_uri_for


class TokenProvider(Protocol):
    def issue(self, content: AssertionContent, rp: RelyingParty, token_type: TokenType) -> IssuedToken: ...


@dataclass(frozen=True)
class IssuePolicy:
    """Service-wide rules that are not a relying party's own."""

    issuer: str
    clock_skew: timedelta = timedelta(minutes=5)
    allow_unregistered_audiences: bool = False
    default_lifetime: timedelta = timedelta(minutes=30)
    max_lifetime: timedelta = timedelta(hours=8)


@dataclass(frozen=True)
class IssuancePlan:
    """Everything decided before any cryptography: what ``issue`` will build (also what a dry run shows)."""

    rp: RelyingParty
    token_type: TokenType
    token_type_uri: str
    content: AssertionContent


class SecurityTokenService:
    """Issue (and, in later bindings, validate, renew, cancel) security tokens."""

    def __init__(
        self,
        *,
        policy: IssuePolicy,
        registry: RelyingPartyRegistry,
        users: UserDirectory,
        provider: TokenProvider,
        tokens: TokenStore,
        clock: Clock,
    ) -> None:
        self._policy = policy
        self._registry = registry
        self._users = users
        self._provider = provider
        self._tokens = tokens
        self._clock = clock

    def issue(self, rst: RequestSecurityToken, principal: Principal) -> RequestSecurityTokenResponse:
        plan = self.plan_issue(rst, principal)
        token = self._provider.issue(plan.content, plan.rp, plan.token_type)
        self._tokens.put(_record(token, principal, plan))
        return RequestSecurityTokenResponse(
            version=rst.version,
            token=token,
            token_type_uri=plan.token_type_uri,
            applies_to_ns=rst.applies_to_ns,
            context=rst.context,
        )

    def plan_issue(self, rst: RequestSecurityToken, principal: Principal) -> IssuancePlan:
        """Decide scope, token type, lifetime and claims, or raise the fault the request deserves."""
        if rst.request_type is not RequestType.ISSUE:
            raise BadRequest(f"request type {rst.request_type.value}", detail=rst.request_type.uri(rst.version))
        if rst.key_type not in (None, KeyType.BEARER):
            raise BadRequest("only Bearer tokens are issued", detail=rst.key_type_uri)
        rp = self._relying_party(rst.applies_to)
        token_type = rst.token_type or rp.token_type
        now = self._clock()
        created, expires = self._lifetime(rst, rp, now)
        user = self._users.get(principal.name)
        if user is None or user.disabled:
            raise FailedAuthentication(f"user {principal.name!r} vanished or is disabled")
        claims = collect_claims(user, rst.claims, rp)
        content = AssertionContent(
            assertion_id="_" + secrets.token_hex(16),
            issuer=self._policy.issuer,
            subject_name=_name_id(user, rp),
            name_id_format=NAMEID_UNSPECIFIED,
            audience=rst.applies_to or rp.endpoint,
            issue_instant=now,
            not_before=created,
            not_on_or_after=expires,
            authn_method=principal.authn_method,
            authn_instant=principal.authn_instant,
            claims=claims,
        )
        return IssuancePlan(rp, token_type, token_type_uri_for(rst.token_type_uri, token_type), content)

    def _relying_party(self, applies_to: str | None) -> RelyingParty:
        if not applies_to:
            raise InvalidRequest("AppliesTo is required", detail="AppliesTo")
        rp = self._registry.lookup(applies_to)
        if rp is not None:
            return rp
        if self._policy.allow_unregistered_audiences:
            return RelyingParty(
                endpoint=applies_to,
                encrypt=False,
                default_lifetime=self._policy.default_lifetime,
                max_lifetime=self._policy.max_lifetime,
            )
        raise InvalidScope(f"no relying party for {applies_to!r}", detail=applies_to)

    def _lifetime(self, rst: RequestSecurityToken, rp: RelyingParty, now: datetime) -> tuple[datetime, datetime]:
        """Honour a requested Lifetime up to the RP's cap; no postdating (AllowPostdating comes later)."""
        skew = self._policy.clock_skew
        if rst.lifetime is None or (rst.lifetime.created is None and rst.lifetime.expires is None):
            return now, now + rp.default_lifetime
        created = rst.lifetime.created or now
        if created > now + skew:
            raise InvalidTimeRange("Created in the future (postdating not allowed)", detail="Created")
        created = max(created, now)
        expires = rst.lifetime.expires or created + rp.default_lifetime
        if expires <= created or expires <= now:
            raise InvalidTimeRange("Expires not after Created and now", detail="Expires")
        if expires - created > rp.max_lifetime:
            if rp.refuse_long_lifetime:
                raise InvalidTimeRange("lifetime beyond the relying party's cap", detail="Expires")
            expires = created + rp.max_lifetime
        return created, expires


def _name_id(user: UserRecord, rp: RelyingParty) -> str:
    if rp.name_id_claim:
        for claim in user.claims:
            if claim.uri == rp.name_id_claim and claim.values:
                return claim.values[0]
    return user.name


def _record(token: IssuedToken, principal: Principal, plan: IssuancePlan) -> TokenRecord:
    return TokenRecord(
        token_id=token.token_id,
        token_type=token.token_type,
        subject=token.subject,
        applies_to=token.applies_to,
        issued=token.created,
        expires=token.expires,
        token_hash=hashlib.sha256(token.xml).hexdigest(),
        requester=principal.name,
        details={
            "claims": [_claim_detail(c) for c in token.claims],
            "encrypted": token.encrypted,
            "signature_algorithm": plan.rp.signature_algorithm.value,
            "data_encryption": plan.rp.data_encryption.value if token.encrypted else None,
            "key_transport": plan.rp.key_transport.value if token.encrypted else None,
            "authn_method": principal.authn_method.value,
        },
    )


def _claim_detail(claim: Claim) -> dict[str, object]:
    return {"uri": claim.uri, "values": list(claim.values)}
