from __future__ import annotations

import datetime as dt
import os
import re
import subprocess
import sys
import textwrap
import zoneinfo
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from django.contrib.admin.models import LogEntry
from django.core.exceptions import FieldError, ValidationError
from django.db import NotSupportedError, connection
from django.db.models import Count, F, Q, QuerySet
from django.test import override_settings
from django.utils import timezone

from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import Layout
from tests.testapp.models import Customer, NullableThing, Order, OrderLine, Profile, Tag

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
LAYOUT = Layout()  # tests.settings: twitter, the 2020 epoch, datacenter 1, machine 7
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
SANTIAGO = zoneinfo.ZoneInfo("America/Santiago")


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def ms_of(moment: dt.datetime) -> int:
    return (moment - utc(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def id_at(moment: dt.datetime, sequence: int = 0) -> int:
    """The ID datacenter 1, machine 7 stamps at ``moment`` (to the millisecond)."""
    return LAYOUT.min_id_at(moment) | (1 << 17) | (7 << 12) | sequence


def orders_at(*moments: dt.datetime) -> list[Order]:
    return list(Order.objects.bulk_create(Order(id=id_at(moment)) for moment in moments))


def made(queryset: QuerySet[Any]) -> list[dt.datetime]:
    """The times of the rows a queryset finds, in ID order."""
    return [
        LAYOUT.decode(pk).datetime for pk in queryset.order_by("pk").values_list("pk", flat=True)
    ]


def ms(moment: dt.datetime, milliseconds: int) -> dt.datetime:
    return moment + dt.timedelta(milliseconds=milliseconds)


def quoted(table: str, name: str) -> str:
    return f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(name)}"


ORDER_ID = quoted("testapp_order", "id")
LINE_ORDER_ID = quoted("testapp_orderline", "order_id")
START = utc(2024, 3, 1)
END = utc(2024, 4, 1)
EDGES = [ms(START, -1), START, ms(START, 1), ms(END, -1), END, ms(END, 1)]
# Keys below the first Snowflake ID, made a day after the epoch, are kept from an AutoField.
FIRST_ID = LAYOUT.min_snowflake_id
FIRST_TIME = utc(2020, 1, 2)


class TestSQL:
    def test_plain_comparisons_on_the_raw_column(self) -> None:
        low, high = LAYOUT.id_range(START, END)

        sql = str(Order.objects.filter(id__generated_at__gte=START, id__generated_at__lt=END).query)
        one_sql = str(Order.objects.filter(id__generated_at__range=(START, ms(END, -1))).query)

        pk = ORDER_ID
        # "Before END" holds for Snowflake IDs only: a smaller key has no time.
        assert sql.endswith(f"WHERE ({pk} >= {low} AND ({pk} >= {FIRST_ID} AND {pk} < {high}))")
        assert one_sql.endswith(f"WHERE ({pk} >= {low} AND {pk} < {high})")

    @pytest.mark.parametrize(
        "lookup",
        [
            {"id__generated_at__date": dt.date(2024, 3, 5)},
            {"id__generated_at__year": 2024, "id__generated_at__month": 3},
            {"id__generated_at__range": (START, END)},
            {"id__generated_at__in": [START, END]},
            {"id__generated_at__date__gte": dt.date(2024, 3, 5)},
        ],
        ids=["date", "year-month", "range", "in", "date-gte"],
    )
    def test_no_arithmetic_in_sql(self, lookup: dict[str, Any]) -> None:
        with timezone.override(PARIS):
            sql = str(Order.objects.filter(**lookup).query)

        where = sql.split(" WHERE ", 1)[1]
        pk = re.escape(ORDER_ID)
        assert re.fullmatch(rf"[()\s]*(({pk} (>=|<) \d+|AND|OR)[()\s]*)+", where), where

    def test_foreign_key_compares_its_own_column(self) -> None:
        low, high = LAYOUT.id_range(utc(2024, 3, 5), utc(2024, 3, 6))

        for lookup in ("order__id__generated_at__date", "order__generated_at__date"):
            sql = str(OrderLine.objects.filter(**{lookup: dt.date(2024, 3, 5)}).query)

            assert "JOIN" not in sql
            assert sql.endswith(f"WHERE ({LINE_ORDER_ID} >= {low} AND {LINE_ORDER_ID} < {high})")

    def test_top_of_the_id_space_has_no_upper_bound(self) -> None:
        sql = str(Order.objects.filter(id__generated_at__gte=START).query)

        assert sql.endswith(f"WHERE {ORDER_ID} >= {LAYOUT.min_id_at(START)}")

    def test_follows_the_configured_layout(self) -> None:
        layout = Layout(41, 0, 10, 12, epoch_ms=ms_of(utc(2024, 1, 1)))

        with override_settings(FLAKEID={"preset": "single_dc", "epoch_ms": layout.epoch_ms}):
            sql = str(Order.objects.filter(id__generated_at__gte=START).query)

        assert sql.endswith(f">= {layout.min_id_at(START)}")
        assert layout.min_id_at(START) == (ms_of(START) - ms_of(utc(2024, 1, 1))) << 22


class TestInstantLookups:
    @pytest.mark.parametrize(
        ("lookup", "value", "expected"),
        [
            ("gte", START, [START, ms(START, 1), ms(END, -1), END, ms(END, 1)]),
            ("gt", START, [ms(START, 1), ms(END, -1), END, ms(END, 1)]),
            ("lt", END, [ms(START, -1), START, ms(START, 1), ms(END, -1)]),
            ("lte", END, [ms(START, -1), START, ms(START, 1), ms(END, -1), END]),
            ("exact", START, [START]),
            ("range", (START, END), [START, ms(START, 1), ms(END, -1), END]),
            ("in", [START, ms(END, -1), utc(2023, 1, 1)], [START, ms(END, -1)]),
        ],
    )
    def test_first_and_last_millisecond(self, lookup: str, value: Any, expected: list[Any]) -> None:
        orders_at(*EDGES)

        found = made(Order.objects.filter(**{f"id__generated_at__{lookup}": value}))

        assert found == expected

    def test_default_lookup_is_exact(self) -> None:
        orders_at(*EDGES)

        assert made(Order.objects.filter(id__generated_at=END)) == [END]

    @pytest.mark.parametrize(
        ("lookup", "expected"),
        [
            ("exact", []),
            ("gt", [ms(START, 1)]),
            ("gte", [ms(START, 1)]),
            ("lt", [START]),
            ("lte", [START]),
        ],
    )
    def test_a_value_between_milliseconds(self, lookup: str, expected: list[Any]) -> None:
        # An ID's time is a whole millisecond: START < START + 0.5 ms < START + 1 ms.
        orders_at(START, ms(START, 1))
        value = START + dt.timedelta(microseconds=500)

        assert made(Order.objects.filter(**{f"id__generated_at__{lookup}": value})) == expected

    def test_several_ids_in_one_millisecond(self) -> None:
        Order.objects.bulk_create(Order(id=id_at(START, sequence)) for sequence in (0, 1, 4095))
        Order.objects.create(id=id_at(ms(START, 1)))

        assert Order.objects.filter(id__generated_at=START).count() == 3
        assert Order.objects.filter(id__generated_at__gt=START).count() == 1

    def test_any_time_zone(self) -> None:
        orders_at(*EDGES)
        new_york = zoneinfo.ZoneInfo("America/New_York")

        found = made(Order.objects.filter(id__generated_at__gte=START.astimezone(new_york)))

        assert found[0] == START

    def test_strings_are_parsed(self) -> None:
        orders_at(*EDGES)

        found = made(Order.objects.filter(id__generated_at__gte="2024-03-31T23:59:59.999Z"))

        assert found == [ms(END, -1), END, ms(END, 1)]

    def test_a_naive_value_is_in_the_default_time_zone(self) -> None:
        orders_at(utc(2024, 3, 4, 23), utc(2024, 3, 5, 1))

        with (
            override_settings(TIME_ZONE="Europe/Paris"),
            pytest.warns(RuntimeWarning, match="received a naive datetime"),
        ):
            found = made(Order.objects.filter(id__generated_at__gte=dt.datetime(2024, 3, 5, 1)))

        assert found == [utc(2024, 3, 5, 1)]

    @override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
    def test_without_time_zone_support_naive_values_are_local(self) -> None:
        orders_at(utc(2024, 3, 4, 23), utc(2024, 3, 5, 1))

        found = made(Order.objects.filter(id__generated_at__gte=dt.datetime(2024, 3, 5, 1)))

        assert found == [utc(2024, 3, 5, 1)]

    def test_outside_the_layout(self) -> None:
        orders_at(*EDGES)

        assert Order.objects.filter(id__generated_at__lt=utc(2019, 1, 1)).count() == 0
        assert Order.objects.filter(id__generated_at__gte=utc(2019, 1, 1)).count() == 6
        assert Order.objects.filter(id__generated_at__lt=utc(2100, 1, 1)).count() == 6
        assert Order.objects.filter(id__generated_at__gte=utc(2100, 1, 1)).count() == 0

    def test_values_that_are_not_ids_have_no_time(self) -> None:
        orders_at(START)
        Order.objects.create(id=-5)

        assert made(Order.objects.filter(id__generated_at__lt=END)) == [START]
        assert Order.objects.exclude(id__generated_at__lt=END).get().id == -5

    def test_empty_lists_and_ranges_match_nothing(self) -> None:
        orders_at(*EDGES)

        assert Order.objects.filter(id__generated_at__in=[]).count() == 0
        assert Order.objects.filter(id__generated_at__range=(END, START)).count() == 0
        assert Order.objects.exclude(id__generated_at__in=[]).count() == 6


class TestCalendarLookups:
    def test_date_in_utc(self) -> None:
        day = utc(2024, 3, 5)
        orders_at(ms(day, -1), day, ms(day, 86_400_000 - 1), ms(day, 86_400_000))

        found = made(Order.objects.filter(id__generated_at__date=dt.date(2024, 3, 5)))

        assert found == [day, ms(day, 86_400_000 - 1)]

    def test_date_in_the_current_time_zone(self) -> None:
        # 2024-03-05 in Tokyo (+09:00) runs from 2024-03-04T15:00Z to 2024-03-05T15:00Z.
        first, after = utc(2024, 3, 4, 15), utc(2024, 3, 5, 15)
        orders_at(ms(first, -1), first, ms(after, -1), after)

        with timezone.override("Asia/Tokyo"):
            found = made(Order.objects.filter(id__generated_at__date="2024-03-05"))

        assert found == [first, ms(after, -1)]

    @pytest.mark.parametrize(
        ("zone", "day", "first", "after"),
        [
            (PARIS, dt.date(2024, 3, 31), utc(2024, 3, 30, 23), utc(2024, 3, 31, 22)),
            (PARIS, dt.date(2024, 10, 27), utc(2024, 10, 26, 22), utc(2024, 10, 27, 23)),
            # Santiago skips from 00:00 to 01:00: the day begins at 01:00, at 04:00 UTC.
            (SANTIAGO, dt.date(2024, 9, 8), utc(2024, 9, 8, 4), utc(2024, 9, 9, 3)),
            (SANTIAGO, dt.date(2024, 4, 6), utc(2024, 4, 6, 3), utc(2024, 4, 7, 4)),
        ],
        ids=["paris-23h", "paris-25h", "santiago-no-midnight", "santiago-25h"],
    )
    def test_daylight_saving_days(
        self, zone: dt.tzinfo, day: dt.date, first: dt.datetime, after: dt.datetime
    ) -> None:
        orders_at(ms(first, -1), first, ms(after, -1), after)

        with timezone.override(zone):
            found = made(Order.objects.filter(id__generated_at__date=day))
            before = made(Order.objects.filter(id__generated_at__date__lt=day))
            later = made(Order.objects.filter(id__generated_at__date__gt=day))

        assert found == [first, ms(after, -1)]
        assert before == [ms(first, -1)]
        assert later == [after]
        assert [timezone.localtime(moment, zone).date() for moment in found] == [day, day]

    @override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo")
    def test_date_without_time_zone_support_is_in_the_default_zone(self) -> None:
        first, after = utc(2024, 3, 4, 15), utc(2024, 3, 5, 15)
        orders_at(ms(first, -1), first, ms(after, -1), after)

        found = made(Order.objects.filter(id__generated_at__date=dt.date(2024, 3, 5)))

        assert found == [first, ms(after, -1)]

    def test_date_comparisons(self) -> None:
        days = [utc(2024, 3, day) for day in (4, 5, 6, 7)]
        orders_at(*days)
        five, six = dt.date(2024, 3, 5), dt.date(2024, 3, 6)

        def on(**lookup: Any) -> list[int]:
            return [moment.day for moment in made(Order.objects.filter(**lookup))]

        assert on(id__generated_at__date__gte=five) == [5, 6, 7]
        assert on(id__generated_at__date__gt=five) == [6, 7]
        assert on(id__generated_at__date__lte=five) == [4, 5]
        assert on(id__generated_at__date__lt=five) == [4]
        assert on(id__generated_at__date__range=(five, six)) == [5, 6]
        assert on(id__generated_at__date__in=[five, dt.date(2024, 3, 7)]) == [5, 7]

    def test_year(self) -> None:
        first, after = utc(2023, 12, 31, 23), utc(2024, 12, 31, 23)  # Paris: +01:00
        orders_at(ms(first, -1), first, ms(after, -1), after)

        with timezone.override(PARIS):
            assert made(Order.objects.filter(id__generated_at__year=2024)) == [first, ms(after, -1)]
            assert made(Order.objects.filter(id__generated_at__year__gte=2025)) == [after]
            assert made(Order.objects.filter(id__generated_at__year__lt=2024)) == [ms(first, -1)]
            assert made(Order.objects.filter(id__generated_at__year__range=(2020, 2023))) == [
                ms(first, -1)
            ]

    def test_month_of_every_year(self) -> None:
        moments = [utc(year, month, 15) for year in (2021, 2024) for month in (2, 3, 4)]
        orders_at(*moments)

        def months(**lookup: Any) -> list[tuple[int, int]]:
            return [(moment.year, moment.month) for moment in made(Order.objects.filter(**lookup))]

        assert months(id__generated_at__month=3) == [(2021, 3), (2024, 3)]
        assert months(id__generated_at__month__gt=3) == [(2021, 4), (2024, 4)]
        assert months(id__generated_at__month__lte=3) == [
            (2021, 2),
            (2021, 3),
            (2024, 2),
            (2024, 3),
        ]
        assert months(id__generated_at__month__range=(3, 4)) == [
            (2021, 3),
            (2021, 4),
            (2024, 3),
            (2024, 4),
        ]
        assert months(id__generated_at__month__in=[2, 4]) == [
            (2021, 2),
            (2021, 4),
            (2024, 2),
            (2024, 4),
        ]
        assert months(id__generated_at__year=2024, id__generated_at__month=3) == [(2024, 3)]
        assert months(id__generated_at__month=13) == []
        assert months(id__generated_at__month__gte=0) == months(id__generated_at__isnull=False)

    def test_month_boundaries_are_local(self) -> None:
        first = utc(2024, 2, 29, 23)  # March 1st in Paris
        orders_at(ms(first, -1), first)

        with timezone.override(PARIS):
            assert made(Order.objects.filter(id__generated_at__month=3)) == [first]

    def test_past_the_years_of_datetime(self) -> None:
        orders_at(utc(2024, 3, 5))

        assert Order.objects.filter(id__generated_at__year__gte=1).count() == 1
        assert Order.objects.filter(id__generated_at__year__lte=0).count() == 0
        assert Order.objects.filter(id__generated_at__year=9999).count() == 0
        assert Order.objects.filter(id__generated_at__date__lte=dt.date.max).count() == 1

    def test_month_spans_merge(self) -> None:
        sql = str(Order.objects.filter(id__generated_at__month__gte=1).query)

        assert sql.count(">=") == 1
        assert sql.endswith(f"WHERE {ORDER_ID} >= {FIRST_ID}")

    def test_against_the_decoded_time(self) -> None:
        # Every lookup agrees with Python reading the time out of each ID; the epoch's first
        # day holds keys from before Snowflake IDs, which have no time.
        moments = [
            utc(2020, 1, 1),
            ms(FIRST_TIME, -1),
            FIRST_TIME,
            utc(2023, 12, 31, 22, 59, 59, 999_000),
            utc(2023, 12, 31, 23),
            *EDGES,
            utc(2024, 10, 26, 21, 59, 59, 999_000),
            utc(2024, 10, 26, 22),
            utc(2024, 10, 27, 22, 59, 59, 999_000),
            utc(2024, 10, 27, 23),
            utc(2089, 9, 6, 15, 47, 35, 551_000),
        ]
        orders_at(*moments)

        def local(moment: dt.datetime) -> dt.datetime:
            return timezone.localtime(moment, PARIS)

        cases: list[tuple[dict[str, Any], Callable[[dt.datetime], bool]]] = [
            ({"date": dt.date(2024, 10, 27)}, lambda m: local(m).date() == dt.date(2024, 10, 27)),
            ({"date__lt": dt.date(2024, 3, 1)}, lambda m: local(m).date() < dt.date(2024, 3, 1)),
            ({"year": 2024}, lambda m: local(m).year == 2024),
            ({"year__lte": 2023}, lambda m: local(m).year <= 2023),
            ({"month": 10}, lambda m: local(m).month == 10),
            ({"month__lt": 3}, lambda m: local(m).month < 3),
            ({"gte": START}, lambda m: m >= START),
            ({"lte": END}, lambda m: m <= END),
        ]
        with timezone.override(PARIS):
            for lookup, predicate in cases:
                filters = {f"id__generated_at__{key}": value for key, value in lookup.items()}
                found = made(Order.objects.filter(**filters))
                assert found == [m for m in moments if m >= FIRST_TIME and predicate(m)], lookup


class TestThroughRelations:
    def test_foreign_key(self) -> None:
        early, late = orders_at(utc(2024, 3, 4, 12), utc(2024, 3, 5, 12))
        OrderLine.objects.create(order=early, product="a")
        OrderLine.objects.create(order=late, product="b")

        for lookup in ("order__id__generated_at__date", "order__generated_at__date"):
            lines = OrderLine.objects.filter(**{lookup: dt.date(2024, 3, 5)})

            assert [line.product for line in lines] == ["b"]

    def test_one_to_one(self) -> None:
        customer = Customer.objects.create(id=id_at(utc(2024, 3, 5)), name="Ada")
        Profile.objects.create(customer=customer)

        assert Profile.objects.filter(customer__generated_at__year=2024).count() == 1
        assert Profile.objects.filter(customer__generated_at__year=2023).count() == 0

    def test_reverse_and_many_to_many_name_the_key(self) -> None:
        customer = Customer.objects.create(name="Ada")
        order = Order.objects.create(id=id_at(utc(2024, 3, 5)), customer=customer)
        order.tags.add(Tag.objects.create(id=id_at(utc(2023, 6, 1)), name="gift"))

        assert Customer.objects.filter(orders__id__generated_at__year=2024).get() == customer
        assert Order.objects.filter(tags__id__generated_at__year=2023).get() == order
        assert not Order.objects.filter(tags__id__generated_at__year=2024).exists()

    def test_foreign_key_to_another_kind_of_key(self) -> None:
        with pytest.raises(FieldError, match=r"'generated_at' needs a SnowflakeField; .*user"):
            LogEntry.objects.filter(user__generated_at__year=2024)

    def test_filtered_aggregate(self) -> None:
        orders_at(utc(2024, 3, 4), utc(2024, 3, 5), utc(2024, 3, 6))

        counts = Order.objects.aggregate(
            march_5=Count("pk", filter=Q(id__generated_at__date=dt.date(2024, 3, 5))),
            later=Count("pk", filter=Q(id__generated_at__gt=utc(2024, 3, 5))),
        )

        assert counts == {"march_5": 1, "later": 1}


LEGACY = [1, 2, 3, FIRST_ID - 1]


def legacy_and_new_orders() -> tuple[list[int], list[int]]:
    """Orders keyed 1, 2, 3, ... from before Snowflake IDs, and two with a time."""
    new = [FIRST_ID, id_at(START)]
    Order.objects.bulk_create(Order(id=pk) for pk in LEGACY + new)
    return LEGACY, new


def pks(queryset: QuerySet[Any]) -> list[int]:
    return sorted(queryset.values_list("pk", flat=True))


class TestLegacyKeys:
    """Keys below ``min_snowflake_id`` read, as integers, as a time on the epoch's first day."""

    @pytest.mark.parametrize(
        "lookup",
        [
            {"id__generated_at__gte": utc(2019, 1, 1)},
            {"id__generated_at__gt": utc(2019, 1, 1)},
            {"id__generated_at__lt": utc(2030, 1, 1)},
            {"id__generated_at__lte": START},
            {"id__generated_at__range": (utc(2020, 1, 1), START)},
            {"id__generated_at__in": [utc(2020, 1, 1), FIRST_TIME, START]},
            {"id__generated_at__date__lte": dt.date(2024, 3, 1)},
            {"id__generated_at__date__range": (dt.date(2020, 1, 1), dt.date(2024, 3, 1))},
            {"id__generated_at__date__in": [dt.date(2020, 1, 1), dt.date(2020, 1, 2), START]},
            {"id__generated_at__year__gte": 1},
            {"id__generated_at__year__in": [2020, 2024]},
            {"id__generated_at__year__range": (2020, 2024)},
            {"id__generated_at__month__in": [1, 3]},
            {"id__generated_at__month__lte": 3},
            {"id__generated_at__month__range": (1, 3)},
        ],
        ids=lambda lookup: next(iter(lookup)).removeprefix("id__generated_at__"),
    )
    def test_time_lookups_match_only_ids(self, lookup: dict[str, Any]) -> None:
        _, new = legacy_and_new_orders()

        assert pks(Order.objects.filter(**lookup)) == new

    @pytest.mark.parametrize(
        "lookup",
        [
            {"id__generated_at": utc(2020, 1, 1)},
            {"id__generated_at__lt": FIRST_TIME},
            {"id__generated_at__date": dt.date(2020, 1, 1)},
            {"id__generated_at__year": 2020, "id__generated_at__date__lt": dt.date(2020, 1, 2)},
        ],
        ids=["exact", "lt", "date", "year"],
    )
    def test_the_epochs_first_day_matches_nothing(self, lookup: dict[str, Any]) -> None:
        legacy_and_new_orders()

        assert pks(Order.objects.filter(**lookup)) == []

    def test_isnull(self) -> None:
        legacy, new = legacy_and_new_orders()

        assert pks(Order.objects.filter(id__generated_at__isnull=True)) == legacy
        assert pks(Order.objects.filter(id__generated_at=None)) == legacy
        assert pks(Order.objects.filter(id__generated_at__date__isnull=True)) == legacy
        assert pks(Order.objects.filter(id__generated_at__isnull=False)) == new
        assert pks(Order.objects.filter(id__generated_at__year__isnull=False)) == new
        assert pks(Order.objects.exclude(id__generated_at__isnull=True)) == new

    def test_isnull_of_a_nullable_column(self) -> None:
        values = [None, 2, FIRST_ID - 1, FIRST_ID, id_at(START)]
        things = NullableThing.objects.bulk_create(NullableThing(empty=value) for value in values)
        no_time, timed = [thing.pk for thing in things[:3]], [thing.pk for thing in things[3:]]

        def found(queryset: QuerySet[NullableThing]) -> list[int]:
            return sorted(queryset.values_list("pk", flat=True))

        things_ = NullableThing.objects
        assert found(things_.filter(empty__generated_at__isnull=True)) == no_time
        assert found(things_.filter(empty__generated_at__isnull=False)) == timed
        assert found(things_.exclude(empty__generated_at__isnull=False)) == no_time
        assert found(things_.exclude(empty__generated_at__isnull=True)) == timed
        assert found(things_.exclude(empty__generated_at__year=2024)) == [*no_time, timed[0]]

    def test_decode_agrees(self) -> None:
        legacy, new = legacy_and_new_orders()
        field = Order._meta.get_field("id")
        assert isinstance(field, SnowflakeField)

        assert [pk for pk in legacy + new if field.generated_at(pk) is None] == legacy

    def test_through_a_foreign_key(self) -> None:
        legacy_and_new_orders()
        OrderLine.objects.bulk_create(
            OrderLine(order_id=pk, product=str(pk)) for pk in (1, FIRST_ID - 1, FIRST_ID)
        )

        def products(**lookup: Any) -> list[str]:
            lines = OrderLine.objects.filter(**lookup).order_by("order_id")
            return list(lines.values_list("product", flat=True))

        assert products(order__generated_at__year=2020) == [str(FIRST_ID)]
        assert products(order__generated_at__isnull=True) == ["1", str(FIRST_ID - 1)]
        assert products(order__id__generated_at__isnull=False) == [str(FIRST_ID)]

    def test_sql_compares_the_raw_column(self) -> None:
        pk = ORDER_ID

        is_null = str(Order.objects.filter(id__generated_at__isnull=True).query)
        not_null = str(Order.objects.filter(id__generated_at__isnull=False).query)
        before = str(Order.objects.filter(id__generated_at__year__lte=2024).query)

        assert is_null.endswith(f"WHERE ({pk} IS NULL OR {pk} < {FIRST_ID})")
        assert not_null.endswith(f"WHERE ({pk} IS NOT NULL AND {pk} >= {FIRST_ID})")
        high = LAYOUT.min_id_at(utc(2025, 1, 1))
        assert before.endswith(f"WHERE ({pk} >= {FIRST_ID} AND {pk} < {high})")

    def test_isnull_needs_a_boolean(self) -> None:
        with pytest.raises(ValueError, match="isnull lookup must be True or False"):
            list(Order.objects.filter(id__generated_at__isnull=1))


class TestMisuse:
    @pytest.mark.parametrize(
        ("lookup", "names"),
        [
            ("id__generated_at__day", "generated_at"),
            ("id__generated_at__contains", "generated_at"),
            ("id__generated_at__date__week_day", "generated_at__date"),
        ],
    )
    def test_unsupported_lookup(self, lookup: str, names: str) -> None:
        with pytest.raises(FieldError) as caught:
            Order.objects.filter(**{lookup: 1})

        unsupported = lookup.rsplit("__", 1)[1]
        assert str(caught.value).startswith(
            f"Unsupported lookup '{unsupported}' for {names} of a Snowflake ID; use one of "
        )

    def test_not_a_value_for_selecting(self) -> None:
        with pytest.raises(NotSupportedError, match="'generated_at' of a Snowflake ID can only"):
            list(Order.objects.values("id__generated_at"))

    def test_expressions_are_refused(self) -> None:
        with pytest.raises(ValueError, match="'generated_at__gte' needs a value, not an expr"):
            Order.objects.filter(id__generated_at__gte=F("reference"))

    @pytest.mark.parametrize(
        ("lookup", "value", "error"),
        [
            ("id__generated_at__gte", "yesterday", ValidationError),
            ("id__generated_at__date", "2024-02-30", ValidationError),
            ("id__generated_at__year", "MMXXIV", ValueError),
            ("id__generated_at__range", START, ValueError),
            ("id__generated_at__in", "2024-03-05", ValueError),
            ("id__generated_at__lt", None, ValueError),
        ],
    )
    def test_bad_values(self, lookup: str, value: Any, error: type[Exception]) -> None:
        with pytest.raises(error):
            Order.objects.filter(**{lookup: value})

    def test_none_means_null(self) -> None:
        orders_at(START)

        assert not Order.objects.filter(id__generated_at=None).exists()
        assert Order.objects.filter(id__generated_at__isnull=False).count() == 1


@pytest.mark.skipif(
    os.environ.get("FLAKEID_TEST_DB", "sqlite") != "postgresql",
    reason="EXPLAIN output is PostgreSQL's",
)
def test_postgresql_answers_from_the_primary_key_index() -> None:
    # 20,000 orders over 200 days; one day is 0.5% of the table, which the planner reads
    # through the index rather than scanning every row, once ANALYZE has told it the sizes.
    start = utc(2024, 1, 1)
    step = dt.timedelta(days=200) / 20_000
    Order.objects.bulk_create(
        (Order(id=id_at(start + step * index)) for index in range(20_000)), batch_size=5_000
    )
    with connection.cursor() as cursor:
        cursor.execute("ANALYZE testapp_order")

    queryset = Order.objects.filter(id__generated_at__date=dt.date(2024, 3, 5))
    plan = queryset.explain()

    assert queryset.count() == 100
    assert re.search(r"Index (Only )?Scan .*testapp_order_pkey", plan), plan
    assert "Seq Scan" not in plan
    where = str(queryset.query).split(" WHERE ", 1)[1]
    pk = re.escape(ORDER_ID)
    assert re.fullmatch(rf"\({pk} >= \d+ AND {pk} < \d+\)", where), where


def test_a_field_imported_before_setup_gets_the_lookups_once_ready(tmp_path: Path) -> None:
    # The lookups are registered when the app is ready; a project may import the field earlier.
    script = textwrap.dedent(
        """
        import django
        from django_flakeid.fields import SnowflakeField
        django.setup()
        from tests.testapp.models import Order, OrderLine
        print(Order.objects.filter(id__generated_at__year=2024).query)
        print(OrderLine.objects.filter(order__generated_at__year=2024).query)
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}
    env["FLAKEID_LOCK_DIR"] = str(tmp_path)
    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=Path(__file__).resolve().parent.parent,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    order_sql, line_sql = completed.stdout.splitlines()
    assert f"WHERE ({ORDER_ID} >= " in order_sql
    assert f"WHERE ({LINE_ORDER_ID} >= " in line_sql
