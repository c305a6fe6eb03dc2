"""xs:dateTime in and out: tolerant parsing (any fraction, ``Z`` or ``+00:00``, no zone = UTC), strict UTC output."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$"
)


#: The form nearly every peer sends (ASCII digits, UTC ``Z``, at most microseconds): ``fromisoformat`` reads it
#: in C, ≈ 20× faster than the general path below, with the same result.
_COMMON = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}(?:\.[0-9]{1,6})?Z")


def parse_datetime(text: str | None) -> datetime:
    """Parse an xs:dateTime into an aware UTC datetime; ValueError when malformed."""
    if text is not None and _COMMON.fullmatch(text):
        try:
            return datetime.fromisoformat(text)
        except ValueError:
            pass  # e.g. hour 24 or February 30: the general path below words the error
    match = _DATETIME.match((text or "").strip())
    if not match:
        raise ValueError(f"not an xs:dateTime: {text!r}")
    year, month, day, hour, minute, second, fraction, zone = match.groups()
    micro = int((fraction or "0")[:6].ljust(6, "0"))
    tz = timezone.utc
    if zone and zone != "Z":
        sign = 1 if zone[0] == "+" else -1
        tz = timezone(sign * timedelta(hours=int(zone[1:3]), minutes=int(zone[4:6])))
    value = datetime(int(year), int(month), int(day), int(hour), int(minute), int(second), micro, tzinfo=tz)
    return value.astimezone(timezone.utc)


#: "YYYY-MM-DDTHH:MM:SS." by whole UTC second: a token writes the same few instants several times, and strftime
#: was the largest part of formatting one. Bounded by clearing; a race only recomputes an entry.
_PREFIXES: dict[int, str] = {}
_MAX_PREFIXES = 4096


def format_datetime(value: datetime) -> str:
    """UTC with millisecond precision (truncated) and ``Z``, the form every SAML and WS-Trust peer accepts."""
    if value.tzinfo is not timezone.utc:
        value = value.astimezone(timezone.utc)
    second = value.toordinal() * 86400 + value.hour * 3600 + value.minute * 60 + value.second
    prefix = _PREFIXES.get(second)
    if prefix is None:
        if len(_PREFIXES) >= _MAX_PREFIXES:
            _PREFIXES.clear()
        prefix = _PREFIXES[second] = (
            f"{value.year:04d}-{value.month:02d}-{value.day:02d}T{value.hour:02d}:{value.minute:02d}:{value.second:02d}."
        )
    return f"{prefix}{value.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
