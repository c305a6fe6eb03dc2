"""Validate, Renew and Cancel (WS-Trust 1.3 §5-§7, 2005/02 §5-§8): decisions on recorded tokens, no XML.

Statuses of a recorded token: ``valid`` -> ``cancelled`` (Cancel) or ``renewed`` (superseded by its renewal).
Only the original requester, or an identity configured as a token administrator, may renew or cancel a token.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sts.errors import InvalidRequest, RenewNeeded, RequestFailed, UnableToRenew
from sts.model import (
    CancelResponse,
    Principal,
    RequestSecurityToken,
    RequestSecurityTokenResponse,
    TokenRecord,
    TokenTarget,
    ValidateResponse,
    ValidationStatus,
)
from sts.interfaces import TokenStatuses, TokenValidator
from sts.model import Resolution
from sts.tokens import validators

VALID, CANCELLED, RENEWED = "valid", "cancelled", "renewed"


#: The names this module has always used for ``sts.interfaces.TokenStatuses`` and ``TokenValidator``.
Records = TokenStatuses
Resolver = TokenValidator


#: Re-issue a recorded token's content: (request, the record, whose renewal count) -> the new token's RSTR.
Reissue = Callable[[RequestSecurityToken, TokenRecord, Principal, int], RequestSecurityTokenResponse]


@dataclass(frozen=True)
class LifecyclePolicy:
    clock_skew: timedelta = timedelta(minutes=5)
    #: How long after expiry a token issued with Renewing OK="true" may still be renewed.
    renew_after_expiry: timedelta = timedelta(minutes=30)
    #: Identities that may renew or cancel any token.
    token_admins: frozenset[str] = field(default_factory=frozenset)


class TokenLifecycle:
    def __init__(self, policy: LifecyclePolicy, records: Records, resolver: Resolver,
                 clock: Callable[[], datetime]) -> None:
        self._policy = policy
        self._records = records
        self._resolver = resolver
        self._clock = clock

    def validate(self, rst: RequestSecurityToken, principal: Principal,
                 exchange: Reissue | None) -> ValidateResponse:
        """Status valid/invalid (never a fault for a bad token); a SAML TokenType also asks for a new token."""
        resolution = self._resolver.resolve(_target(rst.validate_target, "ValidateTarget"))
        status = self._status(resolution)
        issued = None
        if status.valid and exchange is not None and resolution.record is not None:
            issued = exchange(rst, resolution.record, principal, 0)
        return ValidateResponse(rst.version, status, rst.context, issued)

    def renew(self, rst: RequestSecurityToken, principal: Principal, reissue: Reissue) -> RequestSecurityTokenResponse:
        record = self._owned_record(rst.renew_target, "RenewTarget", principal, UnableToRenew)
        if record.status != VALID:
            raise UnableToRenew(f"token {record.token_id} is {record.status}", detail=record.status)
        if not record.details.renew_allow:
            raise UnableToRenew(f"token {record.token_id} was issued with Renewing Allow=false")
        if record.details.holder_of_key:
            # The proof key is never stored, so a holder-of-key token cannot be re-bound to it.
            raise UnableToRenew(f"token {record.token_id} is a holder-of-key token", detail="KeyType")
        now = self._clock()
        if now >= record.expires:
            late = now - record.expires
            if not record.details.renew_ok or late > self._policy.renew_after_expiry:
                raise RenewNeeded(f"token {record.token_id} expired {late} ago")
        # Claim the token first (a compare-and-set every node sees): of two nodes renewing it at once, only the one
        # that won mints and records a successor; the other mints nothing.
        if not self._records.transition(record.token_id, VALID, RENEWED):
            raise UnableToRenew(f"token {record.token_id} changed while being renewed")
        try:
            return reissue(rst, record, principal, record.renewal_count + 1)
        except BaseException:
            self._records.transition(record.token_id, RENEWED, VALID)  # no successor: the token stays valid
            raise

    def cancel(self, rst: RequestSecurityToken, principal: Principal) -> CancelResponse:
        record = self._owned_record(rst.cancel_target, "CancelTarget", principal, RequestFailed)
        if record.status == VALID and not self._records.transition(record.token_id, VALID, CANCELLED):
            current = self._records.get(record.token_id)
            if current is None or current.status != CANCELLED:
                raise RequestFailed(f"token {record.token_id} changed while being cancelled")
        return CancelResponse(rst.version, rst.context)

    def _owned_record(self, target: TokenTarget | None, local: str, principal: Principal,
                      refusal: type[RequestFailed] | type[UnableToRenew]) -> TokenRecord:
        resolution = self._resolver.resolve(_target(target, local))
        if resolution.record is None:
            raise validators.refusal(resolution.problem)
        record = resolution.record
        if principal.name != record.requester and principal.name not in self._policy.token_admins:
            raise refusal(f"{principal.name!r} may not {local[:-6].lower()} a token of {record.requester!r}",
                          detail=local)
        return record

    def _status(self, resolution: Resolution) -> ValidationStatus:
        record = resolution.record
        if record is None:
            return ValidationStatus(False, resolution.problem or "The token is unknown to this STS")
        now = self._clock()
        if record.status == CANCELLED:
            return ValidationStatus(False, "The token was cancelled")
        if record.status == RENEWED:
            return ValidationStatus(False, "The token was superseded by its renewal")
        if now >= record.expires:
            return ValidationStatus(False, "The token has expired")
        if now < record.issued - self._policy.clock_skew:
            return ValidationStatus(False, "The token is not yet valid")
        return ValidationStatus(True, "The token is valid")


def _target(target: TokenTarget | None, local: str) -> TokenTarget:
    if target is None:
        raise InvalidRequest(f"{local} is required", detail=local)
    return target
