"""Audit queries for administrators: the trail the STS, the CLI and the console write, read one way everywhere.

Filters: the actor (``cli:alice``, a console user), the event (``user.add``, or a prefix ``rp.*``), a time window
and the outcome (``ok``, ``refused``, a fault code, or ``fault`` for every outcome but ``ok``). Times are ISO 8601
(UTC when no offset is given) or a span back from now (``30m``, ``24h``, ``7d``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sts.admin.base import AdminContext, InvalidInput
from sts.claim_dictionary import short_name
from sts.store.audit import AuditRecord, AuditTrail

DEFAULT_LIMIT = 200
MAX_LIMIT = 10_000
_SPAN = re.compile(r"^(\d+)\s*([smhdw])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days", "w": "weeks"}


@dataclass(frozen=True)
class AuditQuery:
    actor: str | None = None
    action: str | None = None  # an event, or a prefix ending in *
    since: datetime | None = None
    until: datetime | None = None
    outcome: str | None = None
    limit: int = DEFAULT_LIMIT

    @classmethod
    def from_text(cls, values: Mapping[str, str | None], now: datetime) -> AuditQuery:
        """From query-string, form or command-line values (empty means no filter; ``event`` is ``action``)."""
        since = parse_time(values.get("since"), "since", now)
        until = parse_time(values.get("until"), "until", now)
        if since is not None and until is not None and until < since:
            raise InvalidInput("until is before since", field="until")
        limit_text = (values.get("limit") or str(DEFAULT_LIMIT)).strip()
        if not limit_text.isdigit() or int(limit_text) < 1:
            raise InvalidInput("limit must be a whole number, at least 1", field="limit")
        return cls(actor=_text(values.get("actor")), action=_text(values.get("action") or values.get("event")),
                   since=since, until=until, outcome=_text(values.get("outcome")),
                   limit=min(int(limit_text), MAX_LIMIT))


@dataclass(frozen=True)
class AuditEntry:
    at: datetime
    event: str
    actor: str | None
    outcome: str | None
    subject: str | None
    detail: dict[str, Any]

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready; the event is also under ``action``."""
        return {"at": self.at.isoformat(), "event": self.event, "action": self.event, "actor": self.actor,
                "outcome": self.outcome, "subject": self.subject, "detail": self.detail}

    @property
    def summary(self) -> str:
        """The detail in one line: what changed (``disabled: false → true``), else its keys and values."""
        return summarise(self.detail)


def search_audit(ctx: AdminContext, query: AuditQuery) -> list[AuditEntry]:
    """Entries matching every filter, newest first."""
    trail = AuditTrail(ctx.stores.engine, ctx.clock)
    records = trail.search(event=query.action, actor=query.actor, outcome=query.outcome, since=query.since,
                           until=query.until, limit=query.limit)
    return [_entry(record) for record in records]


def parse_time(text: str | None, field: str, now: datetime) -> datetime | None:
    """ISO 8601 (UTC when naive), or ``<n><s|m|h|d|w>`` before ``now``; None for nothing."""
    value = (text or "").strip()
    if not value:
        return None
    span = _SPAN.match(value)
    if span:
        return now - timedelta(**{_UNITS[span.group(2)]: int(span.group(1))})
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        raise InvalidInput(f"{field}: {value!r} is neither an ISO 8601 time nor a span such as 24h or 7d",
                           field=field) from None
    return parsed if parsed.tzinfo is not None else parsed.replace(tzinfo=UTC)


def summarise(detail: Mapping[str, Any]) -> str:
    """A change as its differing fields; a creation or removal as such; other detail as ``key=value`` (a
    refusal's ``reason`` first)."""
    if "before" in detail or "after" in detail:
        before, after = detail.get("before"), detail.get("after")
        parts = [_diff(before, after)]
        parts += [f"warning: {w}" for w in detail.get("warnings") or ()]
        return "; ".join(p for p in parts if p)
    # A refusal's reason (what failed: which reference, algorithm, user...) leads, whatever order it was written in.
    ordered = {"reason": detail["reason"], **detail} if "reason" in detail else detail
    return " ".join(f"{k}={_compact(v)}" for k, v in ordered.items())


def _diff(before: Any, after: Any) -> str:
    if before is None and isinstance(after, Mapping):
        return "created: " + ", ".join(f"{k}={_compact(v, k)}" for k, v in after.items()
                                       if v not in (None, False, [], {}))
    if after is None and before is not None:
        return "removed"
    if isinstance(before, Mapping) and isinstance(after, Mapping):
        changed = [f"{k}: {_compact(before.get(k), k)} → {_compact(after.get(k), k)}"
                   for k in dict.fromkeys([*before, *after]) if before.get(k) != after.get(k)]
        return "; ".join(changed) or "unchanged"
    return ""


def _compact(value: Any, key: str = "") -> str:
    """A value in a few characters: claims as ``givenname=Alice`` (short names), others as compact JSON."""
    if isinstance(value, str):
        return value
    if key == "claims" and isinstance(value, Mapping):
        shown = [f"{short_name(str(uri))}={'|'.join(map(str, values)) if isinstance(values, list) else values}"
                 for uri, values in value.items()]
        return "{" + ", ".join(shown) + "}"
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=str)


def _entry(record: AuditRecord) -> AuditEntry:
    return AuditEntry(record.at, record.event, record.actor, record.outcome, record.subject, dict(record.detail))


def _text(value: str | None) -> str | None:
    return (value or "").strip() or None


__all__ = ["AuditEntry", "AuditQuery", "parse_time", "search_audit", "summarise"]
