from __future__ import annotations

import datetime as dt
import itertools

import pytest

from django_flakeid.intervals import Interval, Span, span_at, spans_from
from django_flakeid.layout import Layout
from django_flakeid.partition_plan import count, keep_cut, plan_partitions
from django_flakeid.partition_sql import Partition

UTC = dt.timezone.utc
LAYOUT = Layout()
NOW = dt.datetime(2026, 6, 12, 15, 30, tzinfo=UTC)


def utc(year: int, month: int, day: int, hour: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, tzinfo=UTC)


def table(
    since: dt.datetime, count: int, interval: Interval = "month", *, catch_all: bool = True
) -> list[Partition]:
    """Partitions as migrate makes them: 'before', ``count`` intervals, the catch-all."""
    spans = spans_from(LAYOUT, interval, since, count)
    found = [Partition("before", None, spans[0].low, 3)]
    found += [Partition(span.suffix, span.low, span.high, 10) for span in spans]
    if catch_all:
        found.append(Partition("pmax", None, None, 0))
    return found


def starts(spans: tuple[Span, ...]) -> list[dt.datetime]:
    return [span.start for span in spans]


def names(partitions: tuple[Partition, ...]) -> list[str]:
    return [partition.name for partition in partitions]


class TestCreate:
    def test_a_table_as_migrate_made_it_needs_nothing(self) -> None:
        plan = plan_partitions(table(NOW, 4), LAYOUT, "month", NOW, ahead=3)

        assert plan.create == ()
        assert plan.drop == ()
        assert plan.problems == ()
        assert plan.covers_now
        assert plan.ends_at == utc(2026, 10, 1)
        assert plan.current == span_at(LAYOUT, "month", NOW)

    def test_the_next_interval_once_the_month_turns(self) -> None:
        plan = plan_partitions(table(NOW, 4), LAYOUT, "month", utc(2026, 7, 1), ahead=3)

        [span] = plan.create
        assert (span.start, span.end) == (utc(2026, 10, 1), utc(2026, 11, 1))
        assert span.low == LAYOUT.min_id_at(utc(2026, 10, 1))
        assert span.high == LAYOUT.min_id_at(utc(2026, 11, 1))

    def test_the_last_millisecond_of_a_month_still_needs_nothing(self) -> None:
        last = utc(2026, 7, 1) - dt.timedelta(milliseconds=1)

        assert plan_partitions(table(NOW, 4), LAYOUT, "month", last, ahead=3).create == ()

    def test_months_missed_are_all_created_from_the_newest_partition_on(self) -> None:
        later = utc(2027, 2, 3)

        plan = plan_partitions(table(NOW, 4), LAYOUT, "month", later, ahead=3)

        # The cron job stopped in June: October to May (February and three ahead).
        assert starts(plan.create) == [
            *(utc(2026, month, 1) for month in (10, 11, 12)),
            *(utc(2027, month, 1) for month in range(1, 6)),
        ]
        assert plan.create[0].low == LAYOUT.min_id_at(utc(2026, 10, 1))
        for before, after in itertools.pairwise(plan.create):
            assert before.high == after.low
            assert before.end == after.start
        assert plan.create[-1].end == utc(2027, 6, 1)
        assert not plan.covers_now
        assert plan.ends_at == utc(2026, 10, 1)

    def test_more_ahead_than_declared(self) -> None:
        plan = plan_partitions(table(NOW, 4), LAYOUT, "month", NOW, ahead=5)

        assert starts(plan.create) == [utc(2026, 10, 1), utc(2026, 11, 1)]

    def test_ahead_zero_is_the_current_interval_alone(self) -> None:
        assert plan_partitions(table(NOW, 1), LAYOUT, "month", NOW, ahead=0).create == ()
        plan = plan_partitions(table(NOW, 1), LAYOUT, "month", utc(2026, 7, 1), ahead=0)
        assert starts(plan.create) == [utc(2026, 7, 1)]

    def test_negative_ahead(self) -> None:
        with pytest.raises(ValueError, match="ahead must be 0 or more, not -1"):
            plan_partitions(table(NOW, 4), LAYOUT, "month", NOW, ahead=-1)

    def test_days_across_the_end_of_a_leap_february(self) -> None:
        plan = plan_partitions(
            table(utc(2028, 2, 27), 2, "day"), LAYOUT, "day", utc(2028, 2, 28, 23), ahead=2
        )

        assert starts(plan.create) == [utc(2028, 2, 29), utc(2028, 3, 1)]
        assert [span.suffix for span in plan.create] == ["p20280229", "p20280301"]

    def test_weeks_start_on_monday(self) -> None:
        # 2026-06-12 is a Friday.
        plan = plan_partitions([Partition("pmax", None, None, 0)], LAYOUT, "week", NOW, ahead=1)

        assert starts(plan.create) == [utc(2026, 6, 8), utc(2026, 6, 15)]
        assert all(span.start.weekday() == 0 for span in plan.create)

    def test_without_any_ranged_partition_it_starts_at_the_current_interval(self) -> None:
        plan = plan_partitions([Partition("pmax", None, None, 0)], LAYOUT, "month", NOW, ahead=1)

        assert starts(plan.create) == [utc(2026, 6, 1), utc(2026, 7, 1)]
        assert plan.create[0].low == LAYOUT.min_id_at(utc(2026, 6, 1))
        assert plan.ends_at is None
        assert not plan.covers_now

    def test_a_newest_partition_ending_inside_an_interval_is_continued(self) -> None:
        # Cut by day before, by month now: the rest of June first, so no ID is left out.
        partitions = table(utc(2026, 6, 1), 15, "day")

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=1)

        first, second = plan.create
        assert (first.start, first.end) == (utc(2026, 6, 16), utc(2026, 7, 1))
        assert first.low == partitions[-2].high
        assert first.suffix == "p20260616"
        assert (second.start, second.low) == (utc(2026, 7, 1), first.high)

    def test_a_newest_partition_ending_between_two_milliseconds_ids(self) -> None:
        top = LAYOUT.min_id_at(utc(2026, 8, 1)) + 5
        partitions = [
            Partition("before", None, top, 0),
            Partition("pmax", None, None, 0),
        ]

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3)

        assert plan.create[0].low == top
        assert plan.create[0].high == LAYOUT.min_id_at(utc(2026, 9, 1))
        assert starts(plan.create) == [utc(2026, 8, 1), utc(2026, 9, 1)]

    def test_nothing_past_the_layouts_last_millisecond(self) -> None:
        layout = Layout(timestamp_bits=35, datacenter_bits=5, machine_bits=5, sequence_bits=18)
        last = dt.datetime(1970, 1, 1, tzinfo=UTC) + dt.timedelta(
            milliseconds=layout.max_timestamp_ms
        )
        partitions = [Partition("pmax", None, None, 0)]

        plan = plan_partitions(partitions, layout, "day", last, ahead=3)

        assert len(plan.create) == 1
        assert plan.create[0].start == utc(last.year, last.month, last.day)


class TestNoCatchAll:
    def test_partitions_that_do_not_hold_now(self) -> None:
        partitions = table(NOW, 4, catch_all=False)

        plan = plan_partitions(partitions, LAYOUT, "month", utc(2026, 10, 1), ahead=3)

        assert plan.problems == (
            "The table ends at 2026-10-01T00:00:00.000Z and has no catch-all partition, so the "
            "IDs made now (2026-10-01T00:00:00.000Z) fit in no partition and new rows cannot "
            "be inserted.",
        )

    def test_no_partitions_at_all(self) -> None:
        nothing: list[Partition] = []

        plan = plan_partitions(nothing, LAYOUT, "month", NOW, ahead=3)

        assert plan.problems == (
            "The table has no partitions and has no catch-all partition, so the IDs made now "
            "(2026-06-12T15:30:00.000Z) fit in no partition and new rows cannot be inserted.",
        )

    def test_partitions_that_hold_now_are_fine(self) -> None:
        last = utc(2026, 10, 1) - dt.timedelta(milliseconds=1)

        plan = plan_partitions(table(NOW, 4, catch_all=False), LAYOUT, "month", last, ahead=3)

        assert plan.problems == ()
        assert plan.covers_now
        assert starts(plan.create) == [utc(2026, 10, 1), utc(2026, 11, 1), utc(2026, 12, 1)]


class TestKeepCut:
    @pytest.mark.parametrize(
        ("interval", "keep", "cut"),
        [
            ("month", 1, utc(2026, 6, 1)),
            ("month", 6, utc(2026, 1, 1)),
            ("month", 7, utc(2025, 12, 1)),
            ("month", 30, utc(2024, 1, 1)),
            ("week", 1, utc(2026, 6, 8)),
            ("week", 3, utc(2026, 5, 25)),
            ("day", 1, utc(2026, 6, 12)),
            ("day", 13, utc(2026, 5, 31)),
        ],
    )
    def test_keeps_the_current_interval_and_those_before(
        self, interval: Interval, keep: int, cut: dt.datetime
    ) -> None:
        assert keep_cut(interval, NOW, keep) == cut

    @pytest.mark.parametrize("keep", [0, -3])
    def test_at_least_the_current_interval(self, keep: int) -> None:
        with pytest.raises(ValueError, match=f"keep must be 1 or more .*, not {keep}"):
            keep_cut("month", NOW, keep)


class TestDrop:
    def test_a_partition_ending_exactly_at_the_cut_goes(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3, cut=utc(2026, 3, 1))

        assert names(plan.drop) == ["before", "p20260101", "p20260201"]
        assert plan.create == ()

    def test_a_partition_ending_after_the_cut_stays(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)

        plan = plan_partitions(
            partitions,
            LAYOUT,
            "month",
            NOW,
            ahead=3,
            cut=utc(2026, 3, 1) - dt.timedelta(milliseconds=1),
        )

        assert names(plan.drop) == ["before", "p20260101"]

    def test_one_id_past_the_cut_stays(self) -> None:
        cut = utc(2026, 3, 1)
        partitions = [
            Partition("before", None, LAYOUT.min_id_at(cut) + 1, 5),
            *table(utc(2026, 3, 1), 7)[1:],
        ]

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3, cut=cut)

        assert plan.drop == ()

    def test_keep_one_drops_all_but_the_current_interval(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)

        plan = plan_partitions(
            partitions, LAYOUT, "month", NOW, ahead=3, cut=keep_cut("month", NOW, 1)
        )

        assert names(plan.drop) == ["before", *(f"p20260{m}01" for m in range(1, 6))]
        assert plan.problems == ()

    def test_never_the_catch_all(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3, cut=utc(2026, 6, 1))

        assert "pmax" not in names(plan.drop)
        assert partitions[-1].catch_all

    def test_a_cut_after_the_start_of_the_current_interval(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)
        cut = utc(2026, 6, 1) + dt.timedelta(milliseconds=1)

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3, cut=cut)

        assert plan.drop == ()
        assert plan.problems == (
            "The cut 2026-06-01T00:00:00.001Z is after the start of the current month "
            "(2026-06-01T00:00:00.000Z): it would drop the partition new rows go to.",
        )

    def test_a_cut_before_the_epoch_drops_nothing(self) -> None:
        partitions = table(utc(2026, 1, 1), 9)

        plan = plan_partitions(partitions, LAYOUT, "month", NOW, ahead=3, cut=utc(2000, 1, 1))

        assert plan.drop == ()

    def test_drop_and_create_at_once(self) -> None:
        plan = plan_partitions(
            table(utc(2026, 1, 1), 9),
            LAYOUT,
            "month",
            utc(2026, 9, 2),
            ahead=3,
            cut=utc(2026, 4, 1),
        )

        assert names(plan.drop) == ["before", "p20260101", "p20260201", "p20260301"]
        assert starts(plan.create) == [utc(2026, 10, 1), utc(2026, 11, 1), utc(2026, 12, 1)]


def test_count() -> None:
    assert count(1, "month") == "1 month"
    assert count(0, "day") == "0 days"
    assert count(3, "week") == "3 weeks"
