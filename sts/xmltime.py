"""xs:dateTime in and out: tolerant parsing (any fraction, ``Z`` or ``+00:00``, no zone = UTC), strict UTC output."""

from __future__ import annotations

import re
from datetime import datetime, timedelta, timezone

_DATETIME = re.compile(
    r"^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?(Z|[+-]\d{2}:\d{2})?$"
)


def parse_datetime(text: str | None) -> datetime:
    """Parse an xs:dateTime into an aware UTC datetime; ValueError when malformed."""
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


def format_datetime(value: datetime) -> str:
    """UTC with millisecond precision and ``Z``, the form every SAML and WS-Trust peer accepts."""
    value = value.astimezone(timezone.utc)
    return value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"


def utcnow() -> datetime:
    return datetime.now(timezone.utc)
