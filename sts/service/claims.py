"""Which claims go into a token: the relying party's policy applied to the requested claims.

WS-Trust 1.3, section 4.1 (wst:Claims) with the WS-Federation 1.2 identity dialect, section 9.3: each
auth:ClaimType may be Optional and may carry an auth:Value the claim must have. The rule is pure (no I/O):

* the relying party's required claims are always carried; the user must have each of them;
* a requested claim is carried when the relying party permits it; a non-optional one it does not permit,
  or one the user lacks, fails the request; an optional one is then silently left out;
* a requested value restricts the claim to that value, and the user must have it;
* each URI appears once: required claims first, then requested ones, each in the order given.
"""

from __future__ import annotations

from collections.abc import Sequence

from sts.errors import RequestFailed
from sts.interfaces import UserLookup
from sts.model import Claim, ClaimRequest, Principal, RelyingParty, UserRecord

# For each URI chosen so far: None for all of the user's values, else the requested values only.
_Selection = dict[str, set[str] | None]


def collect_claims(
    user: UserRecord, requested: Sequence[ClaimRequest], rp: RelyingParty
) -> tuple[Claim, ...]:
    """The claims a token for ``user`` at ``rp`` carries; RequestFailed (naming the claim) if it cannot."""
    have = {claim.uri: claim.values for claim in user.claims if claim.values}
    chosen: _Selection = {}
    for uri in rp.required_claims:
        if uri not in have:
            raise RequestFailed(f"user {user.name!r} lacks required claim {uri}", detail=uri)
        chosen[uri] = None
    for request in requested:
        _choose(chosen, request, have, user.name, rp)
    return tuple(_build(uri, have[uri], values) for uri, values in chosen.items())


def _choose(
    chosen: _Selection, request: ClaimRequest, have: dict[str, tuple[str, ...]], name: str, rp: RelyingParty
) -> None:
    uri = request.uri
    if not rp.permits(uri):
        if request.optional:
            return
        raise RequestFailed(f"claim {uri} is not permitted for {rp.endpoint}", detail=uri)
    if uri not in have or (request.value is not None and request.value not in have[uri]):
        if request.optional:
            return
        raise RequestFailed(f"user {name!r} lacks requested claim {uri} ({request.value!r})", detail=uri)
    if request.value is None:
        chosen[uri] = None
        return
    selected = chosen.get(uri, set())
    if selected is not None:  # None: already carried with every value
        chosen[uri] = selected | {request.value}


def _build(uri: str, user_values: tuple[str, ...], selected: set[str] | None) -> Claim:
    # Values keep the user's order whichever order they were requested in.
    if selected is None:
        return Claim(uri, user_values)
    return Claim(uri, tuple(v for v in user_values if v in selected))


class StoreClaimsSource:
    """``ClaimsSource`` over a user directory: the claims stored for the principal, filtered by the rule above.

    A principal with no directory entry (e.g. authenticated by a certificate only) has no claims: it gets a
    token when the relying party requires none.
    """

    def __init__(self, users: UserLookup) -> None:
        self._users = users

    def claims_for(
        self, principal: Principal, requested: Sequence[ClaimRequest], rp: RelyingParty
    ) -> list[Claim]:
        user = self._users.get(principal.name)
        if user is None:
            user = UserRecord(principal.name)
        elif user.disabled:
            # The authenticator should have refused already; a disabled account never gets claims.
            raise RequestFailed(f"user {principal.name!r} is disabled")
        return list(collect_claims(user, requested, rp))
