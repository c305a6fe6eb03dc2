"""ActAs (WS-Trust 1.4) and OnBehalfOf (1.3 / 2005): issuing a token for another identity.

The identity comes from a token this STS issued (still valid) or from a UsernameToken (its password checked when
one is given); the requester must be an identity the configuration allows to delegate. The chain of delegates
is carried into the new token (SAML V2.0 Condition for Delegation Restriction) and into the token record.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from lxml import etree

from sts import ns
from sts.errors import BadRequest, ExpiredSecurityToken, FailedAuthentication, RequestFailed, RevokedSecurityToken
from sts.interfaces import UserDirectory
from sts.service.lifecycle import VALID, Resolver
from sts.tokens.validators import refusal
from sts.model import Delegate, Principal, RequestSecurityToken, TokenDetails, TokenRecord, TokenTarget
from sts.uris import AuthnMethod


@dataclass(frozen=True)
class Delegation:
    """Whom the new token is about, and the delegates who asked for it (oldest first)."""

    kind: str  # "ActAs" or "OnBehalfOf"
    subject: Principal
    delegates: tuple[Delegate, ...]


def resolve_delegation(
    rst: RequestSecurityToken,
    requester: Principal,
    *,
    allowed: frozenset[str],
    resolver: Resolver | None,
    users: UserDirectory,
    clock: Callable[[], datetime],
) -> Delegation | None:
    """The delegation an RST asks for, checked; None when it carries neither ActAs nor OnBehalfOf."""
    if rst.act_as is not None and rst.on_behalf_of is not None:
        raise BadRequest("ActAs and OnBehalfOf together", detail="OnBehalfOf")
    kind, target = ("ActAs", rst.act_as) if rst.act_as is not None else ("OnBehalfOf", rst.on_behalf_of)
    if target is None:
        return None
    if requester.name not in allowed:
        raise RequestFailed(f"{requester.name!r} is not allowed to delegate", detail=kind)
    subject, earlier = _subject_of(target, requester, resolver, users, clock())
    if users.get(subject.name) is None:
        raise FailedAuthentication(f"delegated identity {subject.name!r} is unknown")
    return Delegation(kind, subject, (*earlier, Delegate(requester.name, clock())))


def _subject_of(target: TokenTarget, requester: Principal, resolver: Resolver | None,
                users: UserDirectory, now: datetime) -> tuple[Principal, tuple[Delegate, ...]]:
    element = target.unverified_token
    if element is not None and element.tag == ns.qn(ns.WSSE, "UsernameToken"):
        return _username_subject(element, requester, users), ()
    if resolver is None:
        raise BadRequest("delegation by token needs the token store", detail="ActAs")
    resolution = resolver.resolve(target)
    record = resolution.record
    if record is None:
        raise refusal(resolution.problem)
    if record.status != VALID:
        raise RevokedSecurityToken(f"delegated token {record.token_id} is {record.status}")
    if record.expires <= now:
        raise ExpiredSecurityToken(f"delegated token {record.token_id} expired at {record.expires}")
    return _recorded_subject(record), record.details.delegates


def _username_subject(token: etree._Element, requester: Principal, users: UserDirectory) -> Principal:
    name = (token.findtext(ns.qn(ns.WSSE, "Username")) or "").strip()
    if not name:
        raise BadRequest("UsernameToken without Username", detail="UsernameToken")
    password = token.find(ns.qn(ns.WSSE, "Password"))
    if password is None:
        # The trusted delegate vouches for the name; the subject did not authenticate to us.
        return Principal(name, requester.authn_method, requester.authn_instant)
    if (password.get("Type") or "").endswith("#PasswordDigest"):
        raise BadRequest("a digest password cannot be checked inside ActAs/OnBehalfOf", detail="UsernameToken")
    if not users.check_password(name, password.text or ""):
        raise FailedAuthentication(f"bad delegated credentials for {name!r}")
    return Principal(name, AuthnMethod.PASSWORD, requester.authn_instant)


def _recorded_subject(record: TokenRecord) -> Principal:
    details = record.details
    return Principal(details.identity or record.subject, details.authn_method or AuthnMethod.PASSWORD,
                     details.authn_instant or record.issued)


def recorded_delegates(details: TokenDetails) -> tuple[Delegate, ...]:
    """The delegation chain kept in a token record's details (oldest first)."""
    return details.delegates
