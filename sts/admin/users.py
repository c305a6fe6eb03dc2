"""Users, their claims and console administrators: every change once, validated and audited.

Local users are managed here; users of an LDAP directory (setting ``user_store``) are only looked up, by search
(:func:`search_directory`), with the claims the directory mapping gives them.

Claim names go through the claim dictionary (``givenname`` -> its URI; an unknown short name is refused; a URI
outside the dictionary is kept with a warning). An administrator's password has a minimum length
(``admin_password_min_length``, default 12) and may not be the user name. The audit record of a change carries
the user before and after (name, role, state, claims), never a password or its hash.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from sts.admin.base import (Actor, AdminContext, AdminError, Change, Conflict, InvalidInput, NotFound,
                            record_change, refusals_audited)
from sts.model import UserRecord
from sts.store.password_policy import record_policy
from sts.claim_dictionary import UnknownClaimName, resolve_claim

if TYPE_CHECKING:  # ldap3 is imported only when a directory is searched
    from sts.store.ldap_directory import DirectorySearch, LdapUserStore

ClaimPairs = Sequence[tuple[str, str]]


@dataclass(frozen=True)
class UserChange:
    """What an operation left: the user as now stored, and warnings the administrator should read."""

    user: UserRecord
    warnings: tuple[str, ...] = ()


def user_data(record: UserRecord) -> dict[str, object]:
    """A user as plain data (audit before/after, JSON): never a password."""
    return {"name": record.name, "admin": record.admin, "disabled": record.disabled,
            "claims": {claim.uri: list(claim.values) for claim in record.claims}}


# -- input ---------------------------------------------------------------------------------------------------


def parse_claim_lines(lines: Iterable[str]) -> list[tuple[str, str]]:
    """``NAME=VALUE`` lines (a short claim name or a URI) as pairs, names not yet resolved; blank lines skipped."""
    pairs = []
    for line in lines:
        if not line.strip():
            continue
        name, sep, value = line.partition("=")
        if not sep or not name.strip() or any(ch.isspace() for ch in name.strip()):
            raise InvalidInput(f"{line.strip()!r} is not NAME=VALUE or URI=VALUE (a claim name or URI, =, the value)",
                               field="claims")
        pairs.append((name.strip(), value.strip()))
    return pairs


def resolve_claims(pairs: ClaimPairs) -> tuple[list[tuple[str, str]], tuple[str, ...]]:
    """Short names expanded to their URIs, and the warnings for URIs outside the dictionary (each once)."""
    resolved, warnings = [], []
    for name, value in pairs:
        try:
            claim = resolve_claim(name)
        except (UnknownClaimName, ValueError) as exc:
            raise InvalidInput(str(exc), field="claims") from None
        if claim.warning and claim.warning not in warnings:
            warnings.append(claim.warning)
        resolved.append((claim.uri, value))
    return resolved, tuple(warnings)


def check_admin_password(ctx: AdminContext, name: str, password: str) -> None:
    """An administrator's password: at least the configured length, and not the user name."""
    minimum = ctx.settings.admin_password_min_length
    if len(password) < minimum:
        raise InvalidInput(f"an administrator's password needs at least {minimum} characters", field="password")
    if password.casefold() == name.casefold():
        raise InvalidInput("an administrator's password may not be the user name", field="password")


def _check_password(password: str) -> None:
    if not password:
        raise InvalidInput("give a password", field="password")


# -- reading -------------------------------------------------------------------------------------------------


def list_users(ctx: AdminContext) -> list[UserRecord]:
    """Every user, by name."""
    return ctx.stores.users.list()


def search_directory(ctx: AdminContext, text: str, directory: LdapUserStore | None = None) -> DirectorySearch:
    """Directory users whose login name contains ``text``, with the claims the mapping gives them (read-only:
    they are managed in the directory). ``directory``: the runtime's; without one it is opened from the settings
    for this search. Never the whole directory: at least a few characters, at most a page of users."""
    from sts.store.ldap_directory import DirectoryUnavailable, LdapUserStore

    if directory is None and not ctx.settings.user_store:
        raise InvalidInput("no directory is configured (setting user_store)", field="directory")
    try:
        opened = directory if directory is not None else LdapUserStore.from_settings(ctx.settings)
    except ValueError as exc:
        raise InvalidInput(f"the directory settings: {exc}", field="directory") from None
    try:
        return opened.search(text)
    except ValueError as exc:
        raise InvalidInput(str(exc), field="directory") from None
    except DirectoryUnavailable as exc:
        raise AdminError(f"the directory did not answer: {exc}", field="directory") from None
    finally:
        if directory is None:
            opened.close()


def get_user(ctx: AdminContext, name: str) -> UserRecord:
    """The user, or NotFound."""
    record = ctx.stores.users.get(name)
    if record is None:
        raise NotFound(f"no user named {name}", field="name")
    return record


# -- changes -------------------------------------------------------------------------------------------------


def add_user(ctx: AdminContext, actor: Actor, name: str, password: str, claims: ClaimPairs = (), *,
             admin: bool = False) -> UserChange:
    """Create a user (an administrator with ``admin``); the claims may use short names. Event ``user.add``
    (``admin.add`` for an administrator)."""
    event = "admin.add" if admin else "user.add"
    with refusals_audited(ctx, actor, event, name):
        if ctx.stores.users.get(name) is not None:
            raise Conflict(f"user {name} already exists", field="name")
        _check_password(password)
        if admin:
            check_admin_password(ctx, name, password)
        resolved, warnings = resolve_claims(claims)
        try:
            ctx.stores.users.add(name, password, resolved, admin=admin)
        except ValueError as exc:
            message = str(exc)
            raise (Conflict if "already exists" in message else InvalidInput)(message, field="name") from None
    _record_policy(ctx, name, admin)
    record = get_user(ctx, name)
    record_change(ctx.audit, actor, Change(event, name, None, user_data(record), warnings))
    return UserChange(record, warnings)


def add_admin(ctx: AdminContext, actor: Actor, name: str, password: str) -> UserChange:
    """A new console administrator (``sts admin add``): the same as :func:`add_user` with ``admin``."""
    return add_user(ctx, actor, name, password, admin=True)


def set_claims(ctx: AdminContext, actor: Actor, name: str, claims: ClaimPairs) -> UserChange:
    """Replace every claim of the user (short names allowed). Event ``user.update``."""
    with refusals_audited(ctx, actor, "user.update", name):
        before = get_user(ctx, name)
        resolved, warnings = resolve_claims(claims)
    ctx.stores.users.set_claims(name, resolved)
    return _changed(ctx, actor, "user.update", before, warnings)


def set_password(ctx: AdminContext, actor: Actor, name: str, password: str) -> UserChange:
    """Reset the password (an administrator's must meet the policy). Event ``user.password``."""
    with refusals_audited(ctx, actor, "user.password", name):
        before = get_user(ctx, name)
        _check_password(password)
        if before.admin:
            check_admin_password(ctx, name, password)
    ctx.stores.users.set_password(name, password)
    _record_policy(ctx, name, before.admin)
    return _changed(ctx, actor, "user.password", before)


def set_disabled(ctx: AdminContext, actor: Actor, name: str, disabled: bool) -> UserChange:
    """Disable (or enable) the user; an administrator cannot disable their own account. Event ``user.update``."""
    with refusals_audited(ctx, actor, "user.update", name):
        before = get_user(ctx, name)
        if disabled and name == actor.name:
            raise InvalidInput("you cannot disable your own account", field="disable")
    ctx.stores.users.set_disabled(name, disabled)
    return _changed(ctx, actor, "user.update", before)


def promote(ctx: AdminContext, actor: Actor, name: str, password: str) -> UserChange:
    """Make an existing user an administrator. The stored password cannot be checked against the policy (only
    its hash is kept), so promotion sets a new one that meets it. Event ``admin.add``."""
    with refusals_audited(ctx, actor, "admin.add", name):
        before = get_user(ctx, name)
        if before.admin:
            raise Conflict(f"{name} is already an administrator", field="name")
        check_admin_password(ctx, name, password)
    ctx.stores.users.set_password(name, password)
    _record_policy(ctx, name, True)
    ctx.stores.users.set_admin(name, True)
    return _changed(ctx, actor, "admin.add", before)


def demote(ctx: AdminContext, actor: Actor, name: str) -> UserChange:
    """Take the administrator role away (never from yourself). Event ``user.update``."""
    with refusals_audited(ctx, actor, "user.update", name):
        before = get_user(ctx, name)
        if name == actor.name:
            raise InvalidInput("you cannot take the administrator role from your own account", field="admin")
    ctx.stores.users.set_admin(name, False)
    return _changed(ctx, actor, "user.update", before)


def remove_user(ctx: AdminContext, actor: Actor, name: str) -> UserRecord:
    """Remove the user and its claims (never yourself). Event ``user.remove``; returns the removed user."""
    with refusals_audited(ctx, actor, "user.remove", name):
        before = get_user(ctx, name)
        if name == actor.name:
            raise InvalidInput("you cannot remove your own account", field="disable")
    ctx.stores.users.remove(name)
    record_change(ctx.audit, actor, Change("user.remove", name, user_data(before), None))
    return before


def _record_policy(ctx: AdminContext, name: str, checked: bool) -> None:
    """Remember whether (and under which minimum length) the new password met the administrators' policy."""
    record_policy(ctx.stores.engine, name, ctx.settings.admin_password_min_length if checked else None)


def _changed(ctx: AdminContext, actor: Actor, event: str, before: UserRecord,
             warnings: tuple[str, ...] = ()) -> UserChange:
    after = get_user(ctx, before.name)
    record_change(ctx.audit, actor, Change(event, before.name, user_data(before), user_data(after), warnings))
    return UserChange(after, warnings)


__all__ = ["UserChange", "add_admin", "add_user", "check_admin_password", "demote", "get_user", "list_users",
           "parse_claim_lines", "promote", "remove_user", "resolve_claims", "search_directory", "set_claims", "set_disabled",
           "set_password", "user_data"]
