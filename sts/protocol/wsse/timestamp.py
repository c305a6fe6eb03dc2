"""Freshness of wsu:Timestamp and UsernameToken Created (WSS 1.0 §10, UsernameToken Profile §3.1)."""

from __future__ import annotations

from datetime import datetime, timedelta

from sts.errors import MessageExpired, SecurityHeaderError
from sts.protocol.wsse.header import Timestamp


def check_timestamp(timestamp: Timestamp | None, now: datetime, skew: timedelta) -> None:
    """A Timestamp, when present, must be current: not created in the future nor expired (with skew)."""
    if timestamp is None:
        return
    if timestamp.created is not None and timestamp.expires is not None and timestamp.expires < timestamp.created:
        raise SecurityHeaderError("Timestamp expires before it is created")
    if timestamp.created is not None and timestamp.created > now + skew:
        raise MessageExpired("Timestamp created in the future")
    if timestamp.expires is not None and timestamp.expires < now - skew:
        raise MessageExpired("Timestamp expired")


def check_created(created: datetime | None, now: datetime, window: timedelta, skew: timedelta) -> None:
    """A UsernameToken Created must lie within the freshness window (past) and the skew (future)."""
    if created is None:
        return
    if created > now + skew:
        raise MessageExpired("UsernameToken created in the future")
    if created < now - window - skew:
        raise MessageExpired("UsernameToken is stale")
