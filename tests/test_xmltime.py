"""xs:dateTime output: the exact text form every token and RSTR carries, and the round trip through parsing."""

from __future__ import annotations

import random
from datetime import datetime, timedelta, timezone

import pytest

from sts.xmltime import format_datetime, parse_datetime

UTC = timezone.utc


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (datetime(2026, 12, 3, 5, 30, 0, 123456, tzinfo=UTC), "2026-12-03T05:30:00.123Z"),
        (datetime(2026, 12, 3, 5, 30, 0, 999999, tzinfo=UTC), "2026-12-03T05:30:00.999Z"),  # truncated, not rounded
        (datetime(2026, 1, 1, 0, 0, 0, tzinfo=UTC), "2026-01-01T00:00:00.000Z"),
        (datetime(2026, 12, 3, 7, 30, 1, 5000, tzinfo=timezone(timedelta(hours=2))), "2026-12-03T05:30:01.005Z"),
        (datetime(2026, 1, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))), "2025-12-31T23:30:00.000Z"),
    ],
)
def test_the_text_form_is_utc_milliseconds_and_z(value: datetime, text: str) -> None:
    assert format_datetime(value) == text


def test_the_same_second_formats_alike_whatever_came_between() -> None:
    first = datetime(2026, 12, 3, 5, 30, 0, 1000, tzinfo=UTC)
    assert format_datetime(first) == "2026-12-03T05:30:00.001Z"
    assert format_datetime(first + timedelta(days=400)) == "2028-01-07T05:30:00.001Z"
    assert format_datetime(first.replace(microsecond=2000)) == "2026-12-03T05:30:00.002Z"


def test_it_agrees_with_strftime_over_many_instants() -> None:
    rng = random.Random(7)
    start = datetime(2000, 1, 1, tzinfo=UTC)
    for _ in range(5000):
        value = start + timedelta(microseconds=rng.randrange(60 * 365 * 86400 * 10**6))
        expected = value.strftime("%Y-%m-%dT%H:%M:%S.") + f"{value.microsecond // 1000:03d}Z"
        assert format_datetime(value) == expected


def test_output_parses_back_to_the_millisecond() -> None:
    value = datetime(2026, 12, 3, 5, 30, 0, 123456, tzinfo=UTC)
    assert parse_datetime(format_datetime(value)) == value.replace(microsecond=123000)
