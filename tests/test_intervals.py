from __future__ import annotations

import datetime as dt
import itertools
import random

import pytest

from django_flakeid.intervals import (
    INTERVALS,
    check_interval,
    interval_start,
    next_start,
    span_at,
    spans_from,
)
from django_flakeid.layout import Layout

UTC = dt.timezone.utc
TWITTER = Layout()


class TestCheckInterval:
    @pytest.mark.parametrize("interval", INTERVALS)
    def test_each_interval_is_accepted(self, interval: str) -> None:
        assert check_interval(interval) == interval

    @pytest.mark.parametrize("interval", ["Month", "year", "", None, 30])
    def test_anything_else_is_refused_by_name(self, interval: object) -> None:
        with pytest.raises(ValueError, match="interval must be one of 'day', 'week', 'month', not"):
            check_interval(interval)


class TestIntervalStart:
    moment = dt.datetime(2026, 12, 3, 17, 45, 12, 345_000, tzinfo=UTC)  # a Thursday

    def test_a_day_starts_at_midnight_utc(self) -> None:
        assert interval_start(self.moment, "day") == dt.datetime(2026, 12, 3, tzinfo=UTC)

    def test_a_week_starts_on_monday(self) -> None:
        assert interval_start(self.moment, "week") == dt.datetime(2026, 11, 30, tzinfo=UTC)

    def test_a_month_starts_on_its_first_day(self) -> None:
        assert interval_start(self.moment, "month") == dt.datetime(2026, 12, 1, tzinfo=UTC)

    def test_an_aware_time_elsewhere_counts_in_utc(self) -> None:
        # 00:30 on December 1st in Paris is still November in UTC.
        paris = dt.timezone(dt.timedelta(hours=1))
        moment = dt.datetime(2026, 12, 1, 0, 30, tzinfo=paris)
        assert interval_start(moment, "month") == dt.datetime(2026, 11, 1, tzinfo=UTC)

    def test_unix_milliseconds_and_naive_times_are_utc(self) -> None:
        ms = int(self.moment.timestamp() * 1000)
        naive = self.moment.replace(tzinfo=None)
        assert (
            interval_start(ms, "day")
            == interval_start(naive, "day")
            == dt.datetime(2026, 12, 3, tzinfo=UTC)
        )

    @pytest.mark.parametrize("interval", INTERVALS)
    def test_a_start_is_its_own_start(self, interval: str) -> None:
        start = interval_start(self.moment, check_interval(interval))
        assert interval_start(start, check_interval(interval)) == start
        last_ms = start - dt.timedelta(milliseconds=1)
        assert interval_start(last_ms, check_interval(interval)) < start


class TestNextStart:
    @pytest.mark.parametrize(
        ("start", "interval", "expected"),
        [
            (dt.datetime(2026, 12, 31, tzinfo=UTC), "day", dt.datetime(2027, 1, 1, tzinfo=UTC)),
            (dt.datetime(2028, 2, 28, tzinfo=UTC), "day", dt.datetime(2028, 2, 29, tzinfo=UTC)),
            (dt.datetime(2026, 12, 28, tzinfo=UTC), "week", dt.datetime(2027, 1, 4, tzinfo=UTC)),
            (dt.datetime(2026, 12, 1, tzinfo=UTC), "month", dt.datetime(2027, 1, 1, tzinfo=UTC)),
            (dt.datetime(2026, 1, 1, tzinfo=UTC), "month", dt.datetime(2026, 2, 1, tzinfo=UTC)),
        ],
    )
    def test_the_next_interval_starts_where_this_one_ends(
        self, start: dt.datetime, interval: str, expected: dt.datetime
    ) -> None:
        assert next_start(start, check_interval(interval)) == expected


class TestSpans:
    def test_a_month_holds_exactly_the_ids_made_in_it(self) -> None:
        span = span_at(TWITTER, "month", dt.datetime(2026, 12, 15, tzinfo=UTC))
        assert (span.start, span.end) == (
            dt.datetime(2026, 12, 1, tzinfo=UTC),
            dt.datetime(2027, 1, 1, tzinfo=UTC),
        )
        assert span.low == TWITTER.min_id_at(span.start)
        assert span.high == TWITTER.max_id_at(span.end - dt.timedelta(milliseconds=1)) + 1
        assert (span.low, span.high) == TWITTER.id_range(span.start, span.end)
        assert span.suffix == "p20261201"

    @pytest.mark.parametrize("interval", INTERVALS)
    def test_consecutive_spans_tile_the_ids(self, interval: str) -> None:
        spans = spans_from(TWITTER, check_interval(interval), dt.datetime(2026, 2, 27), 40)
        assert len(spans) == 40
        for before, after in itertools.pairwise(spans):
            assert before.end == after.start
            assert before.high == after.low
            assert before.low < before.high

    def test_every_id_falls_in_the_span_of_its_own_time(self) -> None:
        rng = random.Random(14)
        first = TWITTER.min_id_at(dt.datetime(2026, 1, 1, tzinfo=UTC))
        last = TWITTER.min_id_at(dt.datetime(2027, 1, 1, tzinfo=UTC))
        for _ in range(500):
            uid = rng.randrange(first, last)
            made = TWITTER.decode(uid).datetime
            for interval in INTERVALS:
                span = span_at(TWITTER, interval, made)
                assert span.low <= uid < span.high
                assert span.start <= made < span.end
