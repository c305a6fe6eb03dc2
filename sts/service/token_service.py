"""The Security Token Service's decisions: models in, models out; no XML, no HTTP (WS-Trust 1.3 §3-§4)."""

from __future__ import annotations

import secrets
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from sts.errors import BadRequest, FailedAuthentication, InvalidRequest, InvalidScope, InvalidTimeRange
from sts.interfaces import (
    ClaimsSource,
    Clock,
    RelyingPartyRegistry,
    TokenProvider,
    TokenStore,
    TokenValidator,
    UserDirectory,
)
from sts.model import (
    AssertionContent,
    CancelResponse,
    IssuedToken,
    Principal,
    ProofKey,
    ProofResponse,
    RelyingParty,
    RequestSecurityToken,
    RequestSecurityTokenResponse,
    TokenDetails,
    TokenRecord,
    UseKey,
    UserRecord,
    ValidateResponse,
)
from sts.service.claims import collect_claims
from sts.service.delegation import resolve_delegation
from sts.service.lifecycle import LifecyclePolicy, TokenLifecycle
from sts.service.request_options import check_request_options
from sts.tokens.crypto.proof import ProofKeyFactory, use_key_matches
from sts.uris import normalize_endpoint, NAMEID_UNSPECIFIED, AuthnMethod, KeyType, RequestType, TokenType

__all__ = ["IssuancePlan", "IssuePolicy", "SecurityTokenService", "TokenProvider", "audience_for", "check_rp_policy",
           "token_type_uri_for"]


@dataclass(frozen=True)
class IssuePolicy:
    """Service-wide rules that are not a relying party's own."""

    issuer: str
    clock_skew: timedelta = timedelta(minutes=5)
    allow_unregistered_audiences: bool = False
    default_lifetime: timedelta = timedelta(minutes=30)
    max_lifetime: timedelta = timedelta(hours=8)
    #: Requesters allowed to ask for tokens ActAs / OnBehalfOf another identity.
    delegates: frozenset[str] = frozenset()


@dataclass(frozen=True)
class IssuancePlan:
    """Everything decided before any cryptography: what ``issue`` will build (also what a dry run shows)."""

    rp: RelyingParty
    token_type: TokenType
    token_type_uri: str
    content: AssertionContent
    identity: str  # whom the token is about (a user or client name; the NameID may be a claim instead)
    delegation: str | None = None  # "ActAs" / "OnBehalfOf" when issued for another identity


class SecurityTokenService:
    """Issue, validate, renew and cancel security tokens.

    Typed requests in (parsed once by ``sts.protocol.wstrust``), typed responses out: every decision, the
    cryptographic ones included (the proof key, its encryption for the requester), is made here; the token is
    built, signed and encrypted by the ``TokenProvider``; rendering the RSTR is the protocol layer's alone.
    """

    def __init__(
        self,
        *,
        policy: IssuePolicy,
        registry: RelyingPartyRegistry,
        users: UserDirectory,
        provider: TokenProvider,
        tokens: TokenStore,
        clock: Clock,
        resolver: TokenValidator | None = None,
        lifecycle: LifecyclePolicy | None = None,
        proof_keys: ProofKeyFactory | None = None,
        require_use_key_proof: bool = True,
        claims: ClaimsSource | None = None,
    ) -> None:
        """``claims``: where a token's claims come from; by default the claims stored for the user (read from
        the record the service looks up anyway, as ``StoreClaimsSource`` would: one lookup, not two)."""
        self._proof_keys = proof_keys
        self._require_use_key_proof = require_use_key_proof
        self._resolver = resolver
        self._policy = policy
        self._registry = registry
        self._users = users
        self._claims = claims
        self._provider = provider
        self._tokens = tokens
        self._clock = clock
        self._lifecycle = (
            TokenLifecycle(lifecycle or LifecyclePolicy(clock_skew=policy.clock_skew), tokens, resolver, clock)
            if resolver is not None else None
        )

    def now(self) -> datetime:
        """The service's clock (a dry run asks for the same instant the decisions use)."""
        return self._clock()

    def issue(self, rst: RequestSecurityToken, principal: Principal, *,
              requester_cert: x509.Certificate | None = None,
              secure_channel: bool = False) -> RequestSecurityTokenResponse:
        """Issue a token; ``requester_cert`` is the certificate that verifiably signed the request, if any.

        ``secure_channel`` (TLS, or a loopback development bind) lets a proof key travel in clear.
        """
        if rst.request_type is not RequestType.ISSUE:
            raise BadRequest(f"request type {rst.request_type.value}", detail=rst.request_type.uri(rst.version))
        delegation = resolve_delegation(rst, principal, allowed=self._policy.delegates, resolver=self._resolver,
                                        users=self._users, clock=self._clock)
        plan = self.plan_issue(rst, delegation.subject if delegation else principal)
        if delegation is not None:
            content = replace(plan.content, delegates=delegation.delegates)
            plan = replace(plan, content=content, delegation=delegation.kind)
        rst = _bind_use_key_reference(rst, requester_cert)
        proof_key, proof = self._proof(rst, plan.rp, requester_cert, secure_channel)
        if proof_key is not None:
            plan = replace(plan, content=replace(plan.content, proof_key=proof_key))
        return self._mint(rst, principal, plan, renewal_count=0, proof=proof)

    def _proof(self, rst: RequestSecurityToken, rp: RelyingParty, requester_cert: x509.Certificate | None,
               secure_channel: bool) -> tuple[ProofKey | None, ProofResponse | None]:
        """The holder-of-key proof for SymmetricKey/PublicKey requests (none for Bearer)."""
        if rst.key_type in (None, KeyType.BEARER):
            return None, None
        if self._proof_keys is None:
            raise BadRequest("holder-of-key tokens need the STS encryption key", detail=rst.key_type_uri)
        proof_key, proof = self._proof_keys.make(rst, rp, requester_cert=requester_cert,
                                                 secure_channel=secure_channel)
        if proof_key is not None and proof_key.symmetric_key is None and self._require_use_key_proof and (
            requester_cert is None or not use_key_matches(proof_key, requester_cert)
        ):
            # UseKey names a key; only a request signed with that key proves the requester holds it.
            raise FailedAuthentication("UseKey not proven by the request signature", detail="UseKey")
        return proof_key, proof

    def validate(self, rst: RequestSecurityToken, principal: Principal) -> ValidateResponse:
        """Status of a token; with a SAML TokenType, also a new token for the AppliesTo (validate-and-exchange)."""
        exchange = self._reissue if rst.token_type is not None else None
        return self._bindings().validate(rst, principal, exchange)

    def renew(self, rst: RequestSecurityToken, principal: Principal) -> RequestSecurityTokenResponse:
        return self._bindings().renew(rst, principal, self._reissue)

    def cancel(self, rst: RequestSecurityToken, principal: Principal) -> CancelResponse:
        return self._bindings().cancel(rst, principal)

    def _bindings(self) -> TokenLifecycle:
        if self._lifecycle is None:
            raise BadRequest("this STS issues tokens only", detail="RequestType")
        return self._lifecycle

    def _mint(self, rst: RequestSecurityToken, principal: Principal, plan: IssuancePlan,
              renewal_count: int, proof: ProofResponse | None = None) -> RequestSecurityTokenResponse:
        token = self._provider.issue(plan.content, plan.rp, plan.token_type)
        self._tokens.put(_record(token, principal, plan, rst, renewal_count))
        return RequestSecurityTokenResponse(
            version=rst.version,
            token=token,
            token_type_uri=plan.token_type_uri,
            applies_to_ns=rst.applies_to_ns,
            context=rst.context,
            proof=proof,
            request_type_uri=rst.request_type_uri,
            key_type_uri=rst.key_type_uri.strip() if rst.key_type_uri else None,
        )

    def _reissue(self, rst: RequestSecurityToken, record: TokenRecord, principal: Principal,
                 renewal_count: int) -> RequestSecurityTokenResponse:
        """A fresh token (new id, lifetime and signature) with a recorded token's subject and claims.

        Renew keeps the relying party; validate-and-exchange issues for the request's AppliesTo instead.
        """
        renewing = rst.request_type is RequestType.RENEW
        rp = self._relying_party(record.applies_to if renewing else rst.applies_to)
        token_type = (record.token_type if renewing else rst.token_type) or rp.token_type
        if not renewing:
            check_rp_policy(rp, token_type, None)
        now = self._clock()
        created, expires = self._lifetime(rst, rp, now)
        details = record.details
        content = AssertionContent(
            assertion_id="_" + secrets.token_hex(16),
            issuer=self._policy.issuer,
            subject_name=record.subject,
            name_id_format=details.name_id_format or NAMEID_UNSPECIFIED,
            audience=rp.endpoint if renewing else audience_for(rst.applies_to, rp),
            issue_instant=now,
            not_before=created,
            not_on_or_after=expires,
            authn_method=details.authn_method or AuthnMethod.PASSWORD,
            authn_instant=details.authn_instant or now,
            claims=details.claims,
            delegates=details.delegates,
            additional_audiences=rp.additional_audiences,
        )
        plan = IssuancePlan(rp, token_type, token_type_uri_for(rst.token_type_uri, token_type), content,
                            identity=details.identity or record.subject, delegation=details.delegation or None)
        owner = principal if not renewing else Principal(record.requester, principal.authn_method,
                                                          principal.authn_instant)
        return self._mint(rst, owner, plan, renewal_count)

    def plan_issue(self, rst: RequestSecurityToken, principal: Principal) -> IssuancePlan:
        """Decide scope, token type, lifetime and claims, or raise the fault the request deserves."""
        rp = self._relying_party(rst.applies_to)
        check_request_options(rst, rp, principal, self._policy.issuer)
        token_type = rst.token_type or rp.token_type
        check_rp_policy(rp, token_type, rst.key_type)
        now = self._clock()
        created, expires = self._lifetime(rst, rp, now)
        user = self._users.get(principal.name)
        if user is None or user.disabled:
            raise FailedAuthentication(f"user {principal.name!r} vanished or is disabled")
        if self._claims is None:
            claims = collect_claims(user, rst.claims, rp)
        else:
            claims = tuple(self._claims.claims_for(principal, rst.claims, rp))
        content = AssertionContent(
            assertion_id="_" + secrets.token_hex(16),
            issuer=self._policy.issuer,
            subject_name=_name_id(user, rp),
            name_id_format=NAMEID_UNSPECIFIED,
            audience=audience_for(rst.applies_to, rp),
            issue_instant=now,
            not_before=created,
            not_on_or_after=expires,
            authn_method=principal.authn_method,
            authn_instant=principal.authn_instant,
            claims=claims,
            additional_audiences=rp.additional_audiences,
        )
        return IssuancePlan(rp, token_type, token_type_uri_for(rst.token_type_uri, token_type), content,
                            identity=principal.name)

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
        """Honour a requested Lifetime up to the RP's cap; a future Created only with AllowPostdating."""
        skew = self._policy.clock_skew
        if rst.lifetime is None or (rst.lifetime.created is None and rst.lifetime.expires is None):
            return now, now + rp.default_lifetime
        created = rst.lifetime.created or now
        if created > now + skew and not rst.allow_postdating:
            raise InvalidTimeRange("Created in the future without AllowPostdating", detail="Created")
        created = max(created, now)
        expires = rst.lifetime.expires or created + rp.default_lifetime
        if expires <= created or expires <= now:
            raise InvalidTimeRange("Expires not after Created and now", detail="Expires")
        if expires - created > rp.max_lifetime:
            if rp.refuse_long_lifetime:
                raise InvalidTimeRange("lifetime beyond the relying party's cap", detail="Expires")
            expires = created + rp.max_lifetime
        return created, expires


def _bind_use_key_reference(rst: RequestSecurityToken, requester_cert: x509.Certificate | None
                            ) -> RequestSecurityToken:
    """A UseKey that refers to a token of the request (WSS4J: ``wsse:Reference URI="#<BST Id>"``) names the
    key that signed it: the only key in a request the request itself proves. It becomes that certificate."""
    use_key = rst.use_key
    if use_key is None or use_key.token_reference is None:
        return rst
    if requester_cert is None:
        raise BadRequest("UseKey refers to a token of the request, but no certificate signed the request",
                         detail="UseKey SecurityTokenReference without a request signature")
    der = requester_cert.public_bytes(serialization.Encoding.DER)
    return replace(rst, use_key=UseKey(certificate_der=der))


def check_rp_policy(rp: RelyingParty, token_type: TokenType, key_type: KeyType | None) -> None:
    """wst:BadRequest naming TokenType or KeyType when the relying party does not accept it."""
    if rp.allowed_token_types and token_type not in rp.allowed_token_types:
        raise BadRequest(f"token type {token_type.short} not allowed for {rp.endpoint}", detail="TokenType")
    key = key_type or KeyType.BEARER
    if rp.allowed_key_types and key not in rp.allowed_key_types:
        raise BadRequest(f"key type {key.value} not allowed for {rp.endpoint}", detail="KeyType")


def audience_for(applies_to: str | None, rp: RelyingParty) -> str:
    """The token's Audience (and the RSTR's AppliesTo): the relying party's registered identifier when the
    AppliesTo names it up to normalisation (scheme and host case, default port, trailing slash), since a relying
    party that compares exactly knows only that spelling; the requested address when a ``--prefix`` party (or
    an allowed unregistered audience) covers it, which is what the requester asked for."""
    if not applies_to:
        return rp.endpoint
    if normalize_endpoint(applies_to) == normalize_endpoint(rp.endpoint):
        return rp.endpoint
    return applies_to


def _name_id(user: UserRecord, rp: RelyingParty) -> str:
    if rp.name_id_claim:
        for claim in user.claims:
            if claim.uri == rp.name_id_claim and claim.values:
                return claim.values[0]
    return user.name


def token_type_uri_for(requested_uri: str | None, token_type: TokenType) -> str:
    """Echo the form the client used; the ``urn:oasis`` form when it named none (ADAL accepts only that)."""
    if requested_uri is not None and TokenType.parse(requested_uri) is token_type:
        return requested_uri
    return token_type.value


def _record(token: IssuedToken, principal: Principal, plan: IssuancePlan, rst: RequestSecurityToken,
            renewal_count: int) -> TokenRecord:
    renewing = rst.renewing
    content = plan.content
    return TokenRecord(
        token_id=token.token_id,
        token_type=token.token_type,
        subject=token.subject,
        applies_to=token.applies_to,
        issued=token.created,
        expires=token.expires,
        renewal_count=renewal_count,
        token_hash=token.token_hash,
        requester=principal.name,
        details=TokenDetails(
            claims=token.claims,
            name_id_format=content.name_id_format,
            authn_method=content.authn_method,
            authn_instant=content.authn_instant,
            holder_of_key=content.proof_key is not None,
            renew_allow=renewing.allow if renewing else True,
            renew_ok=renewing.ok if renewing else False,
            encrypted=token.encrypted,
            signature_algorithm=plan.rp.signature_algorithm.value,
            data_encryption=plan.rp.data_encryption.value if token.encrypted else None,
            key_transport=plan.rp.key_transport.value if token.encrypted else None,
            identity=plan.identity,
            delegation=plan.delegation,
            delegates=content.delegates,
        ),
    )
