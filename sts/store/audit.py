"""The audit trail: who did what, and how it ended, in the ``audit_log`` table.

Events from the SOAP pipeline: ``issue``, ``renew``, ``cancel``, ``validate`` (outcome ``ok`` or the fault code,
e.g. ``wst:InvalidScope``) and ``auth-failed`` (the user name the request claimed, never a password). The console
records its own ``console.*`` events. Recording is one INSERT in its own transaction and never raises: a failed
audit write is logged, the request goes on. Detail keys that look like secrets are dropped before writing.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Engine, bindparam, insert, select

from sts.interfaces import Clock
from sts.store.schema import audit_log, utcnow
from sts.store.prepared import Prepared, write_later
from sts.store.transactions import reading

log = logging.getLogger("sts.store.audit")

_FIELDS = ("at", "event", "actor", "outcome", "subject", "detail")
# The one statement per audited request, through the store's prepared fast path (no Core execution overhead).
_INSERT = Prepared(insert(audit_log).values({name: bindparam(name, type_=audit_log.c[name].type) for name in _FIELDS}))

_SECRET_WORDS = ("password", "secret", "private", "token_xml", "key_pem", "proof")


@dataclass(frozen=True)
class AuditRecord:
    at: datetime
    event: str
    actor: str | None
    outcome: str | None
    subject: str | None
    detail: dict[str, Any]


class AuditTrail:
    """Built once per process on the database's engine."""

    def __init__(self, engine: Engine, clock: Clock = utcnow) -> None:
        self._engine = engine
        self._clock = clock

    def record(self, event: str, *, actor: str | None, outcome: str, subject: str | None = None,
               detail: Mapping[str, object] | None = None) -> None:
        """Append one entry; never raises into the caller and never stores a secret-looking detail."""
        try:
            row = {
                "at": self._clock(),
                "event": event[:64],
                "actor": None if actor is None else actor[:255],
                "outcome": outcome[:64],
                "subject": None if subject is None else subject[:255],
                "detail": _clean(detail),
            }
            write_later(self._engine, _INSERT, row)
        except Exception:  # noqa: BLE001 - auditing must not break a request
            log.exception("could not record audit event %s", event)

    def search(self, *, event: str | None = None, actor: str | None = None, outcome: str | None = None,
               since: datetime | None = None, until: datetime | None = None,
               limit: int = 200) -> list[AuditRecord]:
        """Newest first. ``event`` ending in ``*`` matches a prefix (``console.*``); ``outcome="fault"`` matches
        every outcome but ``ok``."""
        stmt = select(audit_log).order_by(audit_log.c.id.desc()).limit(max(1, min(limit, 10_000)))
        if event:
            stmt = stmt.where(audit_log.c.event.startswith(event[:-1], autoescape=True) if event.endswith("*")
                              else audit_log.c.event == event)
        if actor:
            stmt = stmt.where(audit_log.c.actor == actor)
        if outcome == "fault":
            stmt = stmt.where(audit_log.c.outcome != "ok")
        elif outcome:
            stmt = stmt.where(audit_log.c.outcome == outcome)
        if since is not None:
            stmt = stmt.where(audit_log.c.at >= since)
        if until is not None:
            stmt = stmt.where(audit_log.c.at <= until)
        with reading(self._engine) as conn:
            rows = conn.execute(stmt).all()
        return [AuditRecord(r.at, r.event, r.actor, r.outcome, r.subject, dict(r.detail or {})) for r in rows]


def _clean(detail: Mapping[str, object] | None) -> dict[str, object]:
    if not detail:
        return {}
    return {str(k): _plain(v) for k, v in detail.items() if not any(w in str(k).lower() for w in _SECRET_WORDS)}


def _plain(value: object) -> object:
    if value is None or isinstance(value, (str, int, float, bool)):
        return value
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, Mapping):
        return _clean(value)
    return str(value)


__all__ = ["AuditRecord", "AuditTrail"]
