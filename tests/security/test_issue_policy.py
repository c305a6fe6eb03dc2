"""Issue requests the policy refuses, against any target: an unregistered AppliesTo, a lifetime that ended before
it began or lies in the past, an unknown token type. (Claims a relying party does not permit and a lifetime over a
relying party's cap need a policy of our own: test_faults.py.)"""

from __future__ import annotations

from datetime import timedelta

import pytest

from attack_target import Target
from sts import ns
from sts.xmltime import format_datetime, utcnow

WST = ns.WST13


@pytest.mark.parametrize("applies_to", [
    "https://unknown.example/x", "https://attack-plain.example.evil.example/", "urn:attacker", "",
], ids=["unknown", "registered-name-as-prefix", "urn", "empty"])
def test_unregistered_applies_to(target: Target, applies_to: str) -> None:
    reply = target.issue(applies_to=applies_to)
    assert reply.fault_code in ((WST, "InvalidScope"), (WST, "InvalidRequest")), reply.fault_reason
    if applies_to:
        assert reply.fault_code == (WST, "InvalidScope")


@pytest.mark.parametrize("lifetime", [
    pytest.param((timedelta(0), timedelta(minutes=-1)), id="expires-before-created"),
    pytest.param((timedelta(hours=-2), timedelta(hours=-1)), id="in-the-past"),
])
def test_impossible_lifetime(target: Target, lifetime: tuple[timedelta, timedelta]) -> None:
    now = utcnow()
    reply = target.issue(lifetime=(format_datetime(now + lifetime[0]), format_datetime(now + lifetime[1])))
    assert reply.fault_code == (WST, "InvalidTimeRange"), reply.fault_reason


def test_lifetime_overflow(target: Target) -> None:
    """A year 9999 expiry: clamped to the cap (a token) or refused, never an overflow."""
    now = utcnow()
    reply = target.issue(lifetime=(format_datetime(now), "9999-12-31T23:59:59Z"))
    assert reply.status == 200 or reply.fault_code == (WST, "InvalidTimeRange"), reply.fault_reason


def test_unknown_token_type(target: Target) -> None:
    reply = target.issue(token_type_uri="urn:ietf:params:oauth:token-type:jwt")
    assert reply.fault_code == (WST, "BadRequest"), reply.fault_reason
