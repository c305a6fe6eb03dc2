"""The dashboard's activity chart as numbers: hourly buckets, the count scale, bars and labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from sts.web.console.chart import BOTTOM, HOURS, TOP, activity_chart, count_scale, first_hour, per_hour

NOW = datetime(2026, 3, 4, 15, 42, tzinfo=UTC)


def test_buckets_are_clock_hours_up_to_now() -> None:
    assert first_hour(NOW) == datetime(2026, 3, 3, 16, 0, tzinfo=UTC)
    times = [NOW, NOW.replace(minute=0), NOW - timedelta(hours=1), datetime(2026, 3, 3, 16, 0, tzinfo=UTC),
             datetime(2026, 3, 3, 15, 59, tzinfo=UTC),  # before the oldest hour shown: left out
             datetime(2026, 3, 4, 15, 1)]  # naive, as SQLite returns UTC
    counts = per_hour(times, NOW)
    assert len(counts) == HOURS
    assert counts[-1] == 3 and counts[-2] == 1 and counts[0] == 1 and sum(counts) == 5


@pytest.mark.parametrize(("peak", "scale"), [(0, (1, 1)), (1, (1, 1)), (4, (4, 1)), (5, (6, 2)), (7, (8, 2)),
                                             (9, (10, 5)), (37, (40, 10)), (1234, (1500, 500))])
def test_the_count_scale_reaches_the_peak_in_at_most_four_round_steps(peak: int, scale: tuple[int, int]) -> None:
    top, step = count_scale(peak)
    assert (top, step) == scale
    assert top >= peak and top // step <= 4


def test_bars_stand_side_by_side_on_the_scale() -> None:
    issued = [0] * HOURS
    failed = [0] * HOURS
    issued[-1], failed[-1], failed[0] = 4, 2, 1
    chart = activity_chart(issued, failed, NOW)
    assert [t.text for t in chart.counts] == ["0", "1", "2", "3", "4"]
    assert chart.counts[0].at == BOTTOM and chart.counts[-1].at == TOP
    assert chart.issued[-1].y == TOP and chart.issued[-1].height == BOTTOM - TOP  # the peak fills the plot
    assert chart.failed[-1].height == (BOTTOM - TOP) / 2
    assert chart.failed[-1].x >= chart.issued[-1].x + chart.issued[-1].width
    assert chart.failed[0].title == "1 failed, 16:00-17:00 UTC"
    assert chart.issued[-1].title == "4 issued, 15:00-16:00 UTC"
    assert [t.text for t in chart.times] == ["16:00", "22:00", "04:00", "10:00"]
    assert (chart.total_issued, chart.total_failed) == (4, 3)
    assert "4 issued, 3 failed" in chart.summary
