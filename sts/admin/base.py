"""What every administrator operation shares: who acts, how it fails, and the audit record it leaves.

An operation is a typed function of the admin core. It validates its input, applies the change, and records one
audit entry naming its actor with the before and after of the change. Front-ends (the CLI, the console pages, the
JSON API) only read input, call the operation and render its result or its :class:`AdminError`.
"""

from __future__ import annotations

import getpass
from contextlib import contextmanager
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING

from sts.interfaces import AuditSink
from sts.store.audit import AuditTrail
from sts.xmltime import utcnow

if TYPE_CHECKING:
    from collections.abc import Callable

    from sts.config import Settings
    from sts.store.database import Database


@dataclass(frozen=True)
class Actor:
    """Who performs an administrator operation, as the audit log names them."""

    name: str

    @classmethod
    def cli(cls) -> Actor:
        """The operating-system user running the ``sts`` command: ``cli:<os user>``."""
        try:
            user = getpass.getuser()
        except (KeyError, OSError):  # no passwd entry for the uid (containers)
            user = "unknown"
        return cls(f"cli:{user}")

    @classmethod
    def console(cls, admin_name: str) -> Actor:
        """A signed-in console administrator (pages and JSON API alike): their user name."""
        return cls(admin_name)


class AdminError(Exception):
    """An operation refused; ``message`` speaks to an administrator, ``field`` names the input at fault."""

    def __init__(self, message: str, *, field: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.field = field


class InvalidInput(AdminError):
    """The input cannot be used as given (a malformed certificate, an unknown claim name, a relative URL)."""


class InvalidFields(InvalidInput):
    """Several inputs at fault at once (a form checked whole): ``errors`` maps each field to its message.

    ``field`` and ``message`` are the first of them, so a front-end that shows one error still can."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        first_field, first_message = next(iter(errors.items()))
        super().__init__(first_message, field=first_field)
        self.errors = dict(errors)


def field_errors(error: AdminError) -> dict[str, str]:
    """Field -> message for any AdminError (``form`` when it names no field): what a form or the API shows."""
    if isinstance(error, InvalidFields):
        return dict(error.errors)
    return {error.field or "form": error.message}


class NotFound(AdminError):
    """The thing to change does not exist (no user named alice, no relying party at that endpoint)."""


class Conflict(AdminError):
    """The change collides with what exists (a duplicate endpoint or user name)."""


class ConfirmationRequired(AdminError):
    """The change is allowed only with an explicit choice (a legacy algorithm, a short rollover lead time).

    ``risk`` says what the administrator accepts by confirming; front-ends show it and offer the override
    (a CLI flag, a console checkbox)."""

    def __init__(self, message: str, *, field: str | None = None, risk: str = "") -> None:
        super().__init__(message, field=field)
        self.risk = risk


@dataclass(frozen=True)
class AdminContext:
    """What every operation works on: the stores, the audit trail, the settings and the clock.

    The CLI builds one per command (``AdminContext.for_settings``), the console one per process."""

    stores: Database
    audit: AuditSink
    settings: Settings
    clock: Callable[[], datetime] = utcnow

    @classmethod
    def for_stores(cls, stores: Database, settings: Settings, *,
                   clock: Callable[[], datetime] = utcnow) -> AdminContext:
        return cls(stores=stores, audit=AuditTrail(stores.engine, clock), settings=settings, clock=clock)


@dataclass(frozen=True)
class Change:
    """One audited change: the event (``rp.add``, ``user.update``, ``keys.rollover``...), its subject, the state
    before and after (``None`` when the thing did not or no longer exists), and warnings the actor accepted."""

    event: str
    subject: str
    before: Mapping[str, object] | None
    after: Mapping[str, object] | None
    warnings: tuple[str, ...] = field(default=())


def record_change(audit: AuditSink, actor: Actor, change: Change, *, outcome: str = "ok") -> None:
    """Append ``change`` to the audit trail under ``actor``; the detail carries ``before``/``after``/``warnings``."""
    detail: dict[str, object] = {"before": dict(change.before) if change.before is not None else None,
                                 "after": dict(change.after) if change.after is not None else None}
    if change.warnings:
        detail["warnings"] = list(change.warnings)
    audit.record(change.event, actor=actor.name, outcome=outcome, subject=change.subject, detail=detail)


@contextmanager
def refusals_audited(ctx: AdminContext, actor: Actor, event: str, subject: str) -> Iterator[None]:
    """An operation's checks and change: an AdminError raised inside is audited as refused, then re-raised."""
    try:
        yield
    except AdminError as err:
        record_refusal(ctx.audit, actor, event, subject, err)
        raise


def record_refusal(audit: AuditSink, actor: Actor, event: str, subject: str, error: AdminError) -> None:
    """A refused operation is audited too, with its reason (never its input secrets)."""
    audit.record(event, actor=actor.name, outcome="refused", subject=subject,
                 detail={"reason": error.message, "field": error.field})


__all__ = ["Actor", "AdminContext", "AdminError", "AuditSink", "Change", "ConfirmationRequired", "Conflict", "InvalidFields", "InvalidInput",
           "NotFound", "field_errors", "record_change", "record_refusal", "refusals_audited"]
