"""A dry run of Issue: what a token for this user at this relying party would carry, and why.

The answer comes from ``SecurityTokenService.plan_issue``, the very decision an Issue makes, so it cannot drift
from the real thing. Nothing is signed, encrypted or recorded. A request the STS would refuse gives
``ok=False`` with the fault code and the public reason a client would see.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from sts.tokens.crypto.signing import algorithm_fits_key
from sts.errors import StsError
from sts.model import ClaimRequest, Lifetime, Principal, RequestSecurityToken
from sts.uris import AuthnMethod, RequestType, TokenType, TrustVersion

if TYPE_CHECKING:
    from sts.runtime import Runtime

REQUIRED = "required by the relying party"
REQUESTED = "requested"
REQUIRED_AND_REQUESTED = "required by the relying party (also requested)"


@dataclass(frozen=True)
class Explanation:
    ok: bool
    fault: dict[str, str] | None = None
    token_type: str | None = None
    subject: str | None = None
    name_id_format: str | None = None
    audience: list[str] = field(default_factory=list)
    lifetime: dict[str, Any] | None = None
    claims: list[dict[str, Any]] = field(default_factory=list)
    omitted: list[dict[str, str]] = field(default_factory=list)
    algorithms: dict[str, Any] | None = None

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (datetimes are ISO 8601 strings already)."""
        return asdict(self)


def explain_issuance(runtime: Runtime, *, user: str, rp: str, claims: Sequence[tuple[str, bool]] = (),
                     token_type: str | None = None, lifetime_seconds: int | None = None) -> Explanation:
    """What Issue would answer ``user`` asking for a token for ``rp``.

    ``claims``: (URI, optional) pairs as a wst:Claims would ask; ``token_type``: ``saml11``/``saml20`` or a
    token type URI (None: the relying party's default); ``lifetime_seconds``: a requested Lifetime from now.
    """
    service = runtime.service
    now = service.now()
    try:
        wanted = _token_type(token_type)
    except (KeyError, ValueError, StsError):
        return Explanation(ok=False, fault={"code": "wst:BadRequest",
                                            "reason": f"The request was invalid or malformed: {token_type}"})
    requested = tuple(ClaimRequest(uri, optional) for uri, optional in claims)
    rst = RequestSecurityToken(
        version=TrustVersion.WST13,
        request_type=RequestType.ISSUE,
        token_type=wanted,
        token_type_uri=wanted.value if wanted else None,
        applies_to=rp,
        lifetime=Lifetime(None, now + timedelta(seconds=lifetime_seconds)) if lifetime_seconds else None,
        claims=requested,
    )
    principal = Principal(name=user, authn_method=AuthnMethod.PASSWORD, authn_instant=now)
    try:
        plan = service.plan_issue(rst, principal)
    except StsError as err:
        return Explanation(ok=False, fault={"code": f"wst:{err.code}", "reason": err.public_reason})
    content, party = plan.content, plan.rp
    seconds = int((content.not_on_or_after - content.not_before).total_seconds())
    capped = bool(lifetime_seconds) and seconds < int(lifetime_seconds or 0)
    carried = {claim.uri for claim in content.claims}
    asked = {request.uri for request in requested}
    listed = []
    for claim in content.claims:
        required = claim.uri in party.required_claims
        source = (REQUIRED_AND_REQUESTED if claim.uri in asked else REQUIRED) if required else REQUESTED
        listed.append({"uri": claim.uri, "values": list(claim.values), "source": source})
    record = runtime.stores.users.get(user)
    have = {c.uri: c.values for c in record.claims if c.values} if record is not None else {}
    omitted = []
    for request in requested:
        if request.uri in carried:
            continue
        if not party.permits(request.uri):
            why = "optional, and the relying party does not permit it"
        else:
            why = "optional, and the user has no value for it" if request.uri not in have else "optional"
        omitted.append({"uri": request.uri, "why": why})
    cert = party.encryption_cert_pem(content.issue_instant)
    encrypted = bool(party.encrypt and cert)
    key = runtime.keyring.current(content.issue_instant) if runtime.keyring is not None else runtime.signer.key
    signature = party.signature_algorithm if algorithm_fits_key(party.signature_algorithm, key) else \
        runtime.signer.algorithm
    return Explanation(
        ok=True,
        token_type=plan.token_type_uri,
        subject=content.subject_name,
        name_id_format=content.name_id_format,
        audience=list(dict.fromkeys((content.audience, *content.additional_audiences))),
        lifetime={
            "created": content.not_before.isoformat(),
            "expires": content.not_on_or_after.isoformat(),
            "seconds": seconds,
            "capped": capped,
        },
        claims=listed,
        omitted=omitted,
        algorithms={
            "signature": signature.value,
            "data_encryption": party.data_encryption.value if encrypted else None,
            "key_transport": party.key_transport.value if encrypted else None,
            "encrypted": encrypted,
            "encrypted_for": "next certificate" if encrypted and cert is not party.cert_pem else
                             ("certificate" if encrypted else None),
        },
    )


def _token_type(value: str | None) -> TokenType | None:
    if not value:
        return None
    if value.lower() in ("saml11", "saml20"):
        return TokenType.from_short(value)
    return TokenType.parse(value)


__all__ = ["Explanation", "explain_issuance"]
