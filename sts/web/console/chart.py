"""The dashboard's activity chart: tokens issued and failed requests per clock hour, laid out for a static SVG.

The console's Content-Security-Policy allows no script and no inline style, so the chart is drawn by the server:
this module turns two hourly series into bars, a count scale and time labels; the template only places them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

HOURS = 24
# The SVG's user space (the viewBox); CSS scales it to the card's width.
WIDTH, HEIGHT = 560, 188
LEFT, RIGHT, TOP, BOTTOM = 48, 552, 8, 160  # LEFT: room for a four-digit count
_SLOT = (RIGHT - LEFT) / HOURS
_BAR = (_SLOT - 4) / 2  # two bars a slot (issued, failed), 1 unit apart, 1.5 units of margin each side


@dataclass(frozen=True)
class Bar:
    x: float
    y: float
    height: float
    width: float
    count: int
    title: str  # the bar's tooltip and accessible text, e.g. "3 failed, 14:00-15:00 UTC"


@dataclass(frozen=True)
class Tick:
    at: float  # x for a time label, y for a count
    text: str


@dataclass(frozen=True)
class ActivityChart:
    issued: tuple[Bar, ...]
    failed: tuple[Bar, ...]
    counts: tuple[Tick, ...]  # the count scale on the left, 0 at the bottom
    times: tuple[Tick, ...]  # hour labels under the axis, every 6 hours
    total_issued: int
    total_failed: int
    summary: str  # the chart as one sentence, for screen readers
    # The plot area and the viewBox, for the template.
    left: int = LEFT
    right: int = RIGHT
    top: int = TOP
    bottom: int = BOTTOM
    width: int = WIDTH
    height: int = HEIGHT


def first_hour(now: datetime) -> datetime:
    """The start of the oldest of the 24 clock hours shown (the newest is the hour under way)."""
    return now.astimezone(UTC).replace(minute=0, second=0, microsecond=0) - timedelta(hours=HOURS - 1)


def per_hour(times: Iterable[datetime], now: datetime) -> list[int]:
    """How many of ``times`` fall in each of the 24 clock hours up to ``now``, oldest first."""
    start = first_hour(now)
    counts = [0] * HOURS
    for when in times:
        when = when if when.tzinfo else when.replace(tzinfo=UTC)  # SQLite gives naive UTC back
        index = int((when - start).total_seconds() // 3600)
        if 0 <= index < HOURS:
            counts[index] += 1
    return counts


def count_scale(peak: int) -> tuple[int, int]:
    """(top, step) of a count axis with at most 4 steps of 1, 2 or 5 × 10^k that reaches ``peak``."""
    step = 1
    while True:
        for factor in (1, 2, 5):
            if -(-max(peak, 1) // (step * factor)) <= 4:
                size = step * factor
                return size * -(-max(peak, 1) // size), size
        step *= 10


def activity_chart(issued: list[int], failed: list[int], now: datetime) -> ActivityChart:
    """Bars for two series of 24 hourly counts (oldest first), with their scale and time labels."""
    top, step = count_scale(max([*issued, *failed, 0]))
    start = first_hour(now)

    def bars(series: list[int], offset: float, what: str) -> tuple[Bar, ...]:
        made = []
        for index, count in enumerate(series):
            height = (BOTTOM - TOP) * count / top
            hour = start + timedelta(hours=index)
            made.append(Bar(x=round(LEFT + index * _SLOT + offset, 2), y=round(BOTTOM - height, 2),
                            height=round(height, 2), width=round(_BAR, 2), count=count,
                            title=f"{count} {what}, {hour:%H:00}-{hour + timedelta(hours=1):%H:00} UTC"))
        return tuple(made)

    counts = tuple(Tick(round(BOTTOM - (BOTTOM - TOP) * value / top, 2), str(value))
                   for value in range(0, top + 1, step))
    times = tuple(Tick(round(LEFT + index * _SLOT, 2), f"{start + timedelta(hours=index):%H:00}")
                  for index in range(0, HOURS, 6))
    total_issued, total_failed = sum(issued), sum(failed)
    summary = (f"Tokens issued and failed requests per hour since {start:%H:00} UTC: {total_issued} issued, "
               f"{total_failed} failed; busiest hour {max([*issued, *failed, 0])}")
    return ActivityChart(bars(issued, 1.5, "issued"), bars(failed, 2.5 + _BAR, "failed"), counts,
                         times, total_issued, total_failed, summary)


__all__ = ["ActivityChart", "Bar", "Tick", "activity_chart", "count_scale", "first_hour", "per_hour"]
