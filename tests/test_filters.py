from __future__ import annotations

import datetime as dt
import importlib
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

pytest.importorskip("django_filters")

import django_filters  # type: ignore[import-untyped]
from django.db import connection, models
from django.db.models import QuerySet
from django.http import QueryDict
from django.test import override_settings
from django.test.utils import isolate_apps
from django.utils import timezone
from django_filters.filterset import filterset_factory  # type: ignore[import-untyped]
from pytest_django import DjangoAssertNumQueries

from django_flakeid.fields import SnowflakeField
from django_flakeid.filters import (
    GeneratedAtFilter,
    GeneratedAtRangeFilter,
    GeneratedDateFilter,
    GeneratedDateRangeFilter,
    SnowflakeFilterSet,
    SnowflakeFilterSetMixin,
    SnowflakeIDFilter,
    SnowflakeIDInFilter,
    SnowflakeIDRangeFilter,
)
from django_flakeid.layout import MAX_ID, Layout
from tests.autoapp.models import Author, Book
from tests.testapp.models import Customer, LegacyEvent, Order, OrderLine, Profile, Tag

pytestmark = pytest.mark.django_db

ROOT = Path(__file__).resolve().parent.parent
UTC = dt.timezone.utc
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
LAYOUT = Layout()  # tests.settings: twitter, the 2020 epoch, datacenter 1, machine 7
INVALID = "A Snowflake ID must be a whole number, as a string of digits."
OUT_OF_RANGE = f"A Snowflake ID must be from 0 to {MAX_ID}."
# Two IDs that are one float apart from no other: a double rounds both to 915375601857069056.
ID = 915375601857069056
NEXT_ID = ID + 1


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def id_at(moment: dt.datetime, sequence: int = 0) -> int:
    """The ID datacenter 1, machine 7 stamps at ``moment`` (to the millisecond)."""
    return LAYOUT.min_id_at(moment) | (1 << 17) | (7 << 12) | sequence


def ms_of(moment: dt.datetime) -> int:
    return (moment - utc(1970, 1, 1)) // dt.timedelta(milliseconds=1)


def ms(moment: dt.datetime, milliseconds: int) -> dt.datetime:
    return moment + dt.timedelta(milliseconds=milliseconds)


def orders_at(*moments: dt.datetime) -> list[Order]:
    return list(Order.objects.bulk_create(Order(id=id_at(moment)) for moment in moments))


def made(queryset: QuerySet[Any]) -> list[dt.datetime]:
    """The times of the rows a queryset finds, in ID order."""
    ids = queryset.order_by("pk").values_list("pk", flat=True)
    return [LAYOUT.decode(pk).datetime for pk in ids]


def column(table: str, name: str) -> str:
    return f"{connection.ops.quote_name(table)}.{connection.ops.quote_name(name)}"


def where(queryset: QuerySet[Any]) -> str:
    return str(queryset.query).split(" WHERE ", 1)[1]


ORDER_ID = column("testapp_order", "id")
START = utc(2024, 3, 1)
END = utc(2024, 4, 1)
EDGES = [ms(START, -1), START, ms(START, 1), ms(END, -1), END, ms(END, 1)]
FIRST_ID = LAYOUT.min_snowflake_id


class OrderFilter(SnowflakeFilterSet):
    since = GeneratedAtFilter(field_name="id", lookup_expr="gte")
    until = GeneratedAtFilter(field_name="id", lookup_expr="lt")
    created = GeneratedAtRangeFilter(field_name="id")
    created_on = GeneratedDateFilter(field_name="id")
    day = GeneratedDateRangeFilter(field_name="id")

    class Meta:
        model = Order
        fields = {  # noqa: RUF012 - django-filter reads it once
            "id": ["exact", "in", "range", "gte"],
            "customer": ["exact", "in"],
            "reference": ["exact"],
            "tags": ["exact"],
        }


def filtered(data: dict[str, str]) -> OrderFilter:
    filterset = OrderFilter(data=data, queryset=Order.objects.all())
    assert filterset.is_valid(), filterset.errors
    return filterset


def errors(data: dict[str, str]) -> dict[str, list[str]]:
    filterset = OrderFilter(data=data, queryset=Order.objects.all())
    assert not filterset.is_valid()
    return {name: list(messages) for name, messages in filterset.errors.items()}


class TestIDFilters:
    def test_19_digits_stay_exact(self) -> None:
        Order.objects.bulk_create([Order(id=ID), Order(id=NEXT_ID), Order(id=ID - 1)])

        found = filtered({"id": str(NEXT_ID)}).qs

        assert list(found.values_list("id", flat=True)) == [NEXT_ID]
        assert where(found) == f"{ORDER_ID} = {NEXT_ID}"

    def test_in(self) -> None:
        Order.objects.bulk_create([Order(id=ID), Order(id=NEXT_ID), Order(id=ID + 2)])

        found = filtered({"id__in": f"{ID}, {ID + 2}"}).qs

        assert sorted(found.values_list("id", flat=True)) == [ID, ID + 2]

    def test_range_and_comparisons_of_ids(self) -> None:
        Order.objects.bulk_create([Order(id=ID + step) for step in range(5)])

        between = filtered({"id__range": f"{ID + 1},{ID + 3}"}).qs
        from_ = filtered({"id__gte": str(ID + 3)}).qs

        assert sorted(between.values_list("id", flat=True)) == [ID + 1, ID + 2, ID + 3]
        assert sorted(from_.values_list("id", flat=True)) == [ID + 3, ID + 4]

    def test_foreign_key_by_id_string(self) -> None:
        customer, other = Customer.objects.bulk_create(
            [Customer(id=ID, name="Ada"), Customer(id=NEXT_ID, name="Bob")]
        )
        mine = Order.objects.create(customer=customer)
        Order.objects.create(customer=other)

        found = filtered({"customer": str(ID)}).qs

        assert list(found) == [mine]
        assert where(found) == f"{column('testapp_order', 'customer_id')} = {ID}"
        assert list(filtered({"customer__in": f"{ID},{NEXT_ID}"}).qs.order_by("id")) == [
            mine,
            *Order.objects.filter(customer=other),
        ]

    def test_a_foreign_key_to_an_id_with_no_row_matches_nothing(
        self, django_assert_num_queries: DjangoAssertNumQueries
    ) -> None:
        Order.objects.create(customer=Customer.objects.create(name="Ada"))
        filterset = filtered({"customer": str(ID)})

        # One query, the list's own: the customer is not loaded to check it exists.
        with django_assert_num_queries(1):
            assert list(filterset.qs) == []

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            ("1.5", INVALID),
            (f"{ID}.0", INVALID),
            ("9.15375601857069057E17", INVALID),
            ("1e3", INVALID),
            ("0x1F", INVALID),
            ("1_000", INVALID),
            ("\u0661\u0662", INVALID),  # Arabic-Indic digits, which int() accepts
            ("abc", INVALID),
            ("-1", OUT_OF_RANGE),
            (str(MAX_ID + 1), OUT_OF_RANGE),
            # Past Python's 4300 digits, int() itself would raise.
            ("9" * 5000, OUT_OF_RANGE),
        ],
    )
    def test_refuses_anything_but_an_id(self, value: str, message: str) -> None:
        assert errors({"id": value}) == {"id": [message]}
        assert errors({"customer": value}) == {"customer": [message]}
        assert errors({"id__in": f"{ID},{value}"}) == {"id__in": [message]}

    def test_bounds_of_the_id_space(self) -> None:
        Order.objects.bulk_create([Order(id=0), Order(id=MAX_ID)])

        assert list(filtered({"id": "0"}).qs.values_list("id", flat=True)) == [0]
        assert list(filtered({"id": f"000{MAX_ID}"}).qs.values_list("id", flat=True)) == [MAX_ID]

    def test_empty_value_filters_nothing(self) -> None:
        Order.objects.bulk_create([Order(id=ID), Order(id=NEXT_ID)])

        empty = {"id": "", "customer": "", "since": "", "created_after": ""}

        assert filtered(empty).qs.count() == 2

    def test_django_filters_own_number_filter_would_match_a_fraction(self) -> None:
        # Why the Snowflake fields get their own filter: a NumberFilter reads a decimal,
        # which the integer column then truncates.
        class PlainOrderFilter(django_filters.FilterSet):  # type: ignore[misc]
            class Meta:
                model = Order
                fields = ("id",)

        Order.objects.create(id=ID)

        assert PlainOrderFilter(data={"id": f"{ID}.7"}).qs.get().id == ID
        assert errors({"id": f"{ID}.7"}) == {"id": [INVALID]}

    def test_the_html_form_lists_no_rows(
        self, django_assert_num_queries: DjangoAssertNumQueries
    ) -> None:
        Customer.objects.bulk_create(Customer(name=f"c{number}") for number in range(3))
        form = OrderFilter(data={"customer": str(ID)}).form

        # The form the browsable API shows: an ID is typed in, never picked from every row.
        with django_assert_num_queries(0):
            html = str(form["customer"])

        assert html == (
            f'<input type="text" name="customer" value="{ID}" inputmode="numeric" id="id_customer">'
        )


class TestFilterChoice:
    def test_snowflake_fields_and_foreign_keys_to_them(self) -> None:
        found = {name: type(item) for name, item in OrderFilter.base_filters.items()}

        assert found["id"] is SnowflakeIDFilter
        assert found["id__in"] is SnowflakeIDInFilter
        assert found["id__range"] is SnowflakeIDRangeFilter
        assert found["id__gte"] is SnowflakeIDFilter
        assert OrderFilter.base_filters["id__gte"].lookup_expr == "gte"
        assert found["customer"] is SnowflakeIDFilter
        assert found["customer__in"] is SnowflakeIDInFilter
        # Left to django-filter: other fields, and a many-to-many field.
        assert found["reference"] is django_filters.CharFilter
        assert found["tags"] is django_filters.ModelMultipleChoiceFilter

    def test_auto_field_keys_and_other_models(self) -> None:
        book = self.filters_of(Book, ["id", "author", "co_authors"])
        profile = self.filters_of(Profile, ["customer"])
        line = self.filters_of(OrderLine, ["order", "quantity"])
        legacy = self.filters_of(LegacyEvent, ["id", "public_id"])

        assert book["id"] is SnowflakeIDFilter  # SnowflakeAutoField
        assert book["author"] is SnowflakeIDFilter  # to a model keyed by one
        assert book["co_authors"] is django_filters.ModelMultipleChoiceFilter
        assert profile["customer"] is SnowflakeIDFilter  # OneToOneField
        assert line["order"] is SnowflakeIDFilter
        assert line["quantity"] is django_filters.NumberFilter
        assert legacy == {"id": django_filters.NumberFilter, "public_id": SnowflakeIDFilter}

    def test_generated_at_in_meta_fields(self) -> None:
        lookups = ["generated_at__gte", "generated_at__lt", "generated_at", "generated_at__date"]
        found = self.filters_of(Order, {"id": [*lookups, "generated_at__year"]})
        related = self.filters_of(OrderLine, {"order": ["generated_at__date__gte"]})

        assert found == {
            "id__generated_at__gte": GeneratedAtFilter,
            "id__generated_at__lt": GeneratedAtFilter,
            "id__generated_at": GeneratedAtFilter,
            "id__generated_at__date": GeneratedDateFilter,
            # Years and months are plain numbers: django-filter's filter serves them.
            "id__generated_at__year": django_filters.NumberFilter,
        }
        assert related == {"order__generated_at__date__gte": GeneratedDateFilter}

    def test_meta_filter_overrides_win(self) -> None:
        class Overridden(SnowflakeFilterSet):
            class Meta:
                model = Order
                fields = ("id", "customer")
                filter_overrides = {  # noqa: RUF012 - django-filter reads it once
                    SnowflakeField: {"filter_class": django_filters.CharFilter},
                    models.ForeignKey: {
                        "filter_class": django_filters.ModelChoiceFilter,
                        "extra": lambda field: {"queryset": Customer.objects.all()},
                    },
                }

        class ForAllBigIntegers(SnowflakeFilterSet):
            class Meta:
                model = Order
                fields = ("id",)
                filter_overrides = {  # noqa: RUF012 - django-filter reads it once
                    models.BigIntegerField: {"filter_class": django_filters.CharFilter}
                }

        assert type(Overridden.base_filters["id"]) is django_filters.CharFilter
        assert type(Overridden.base_filters["customer"]) is django_filters.ModelChoiceFilter
        # A rule for a parent class of SnowflakeField is less specific than this one's.
        assert type(ForAllBigIntegers.base_filters["id"]) is SnowflakeIDFilter

    @isolate_apps("tests.testapp")
    def test_the_mixin_keeps_another_filterset_base(self) -> None:
        drf = drf_filters()
        base: Any = drf.FilterSet

        class Flagged(models.Model):  # noqa: DJ008 - never shown
            id = SnowflakeField(primary_key=True)
            flag = models.BooleanField(null=True)
            kind = SnowflakeField(choices=[(ID, "first")], editable=True)

            class Meta:
                app_label = "testapp"

        class DRFOrderFilter(SnowflakeFilterSetMixin, base):  # type: ignore[misc]
            class Meta:
                model = Flagged
                fields = {  # noqa: RUF012 - django-filter reads it once
                    "id": ["exact", "isnull"],
                    "flag": ["exact"],
                    "kind": ["exact", "gt"],
                }

        # Its base's choice for a boolean, which reads "true" and "false".
        assert type(DRFOrderFilter.base_filters["flag"]) is drf.BooleanFilter
        assert type(DRFOrderFilter.base_filters["id"]) is SnowflakeIDFilter
        assert type(DRFOrderFilter.base_filters["id__isnull"]) is drf.BooleanFilter
        # Choices are offered as such; other comparisons read an ID.
        assert type(DRFOrderFilter.base_filters["kind"]) is django_filters.ChoiceFilter
        assert type(DRFOrderFilter.base_filters["kind__gt"]) is SnowflakeIDFilter

    def test_a_time_filter_takes_one_comparison(self) -> None:
        with pytest.raises(ValueError, match=r"lookup_expr of exact, gt, gte, lt, lte, not 'in'"):
            GeneratedAtFilter(field_name="id", lookup_expr="in")
        with pytest.raises(ValueError, match="not 'generated_at__gte'"):
            GeneratedDateFilter(field_name="id", lookup_expr="generated_at__gte")

    def test_labels_say_what_is_compared(self) -> None:
        labels = {name: str(item.label) for name, item in OrderFilter().filters.items()}
        excluded = GeneratedAtFilter(field_name="id", lookup_expr="lt", exclude=True)
        excluded.model = Order

        assert labels["since"] == "ID made at or after"
        assert labels["until"] == "ID made before"
        assert labels["created"] == "ID made between"
        assert labels["created_on"] == "ID made on"
        assert labels["day"] == "ID made on the days between"
        assert excluded.label == "Exclude ID made before"
        named = GeneratedAtFilter(field_name="id", label="Placed since")
        named.model = Order
        assert named.label == "Placed since"

    @staticmethod
    def filters_of(model: type[models.Model], fields: Any) -> dict[str, type[Any]]:
        filterset = filterset_factory(model, SnowflakeFilterSet, fields)
        return {name: type(item) for name, item in filterset.base_filters.items()}


class TestTimeFilters:
    def test_since_and_until_compile_like_the_orm(self) -> None:
        orders_at(*EDGES)
        low, high = LAYOUT.id_range(START, END)

        found = filtered({"since": "2024-03-01T00:00:00Z", "until": "2024-04-01T00:00:00Z"}).qs
        orm = Order.objects.filter(id__generated_at__gte=START, id__generated_at__lt=END)

        assert made(found) == [START, ms(START, 1), ms(END, -1)]
        assert str(found.query) == str(orm.query)
        # "Before END" holds for Snowflake IDs only: a key kept from an AutoField has no time.
        assert where(found) == (
            f"({ORDER_ID} >= {low} AND ({ORDER_ID} >= {FIRST_ID} AND {ORDER_ID} < {high}))"
        )

    def test_range_is_one_pair_of_bounds_with_both_ends_included(self) -> None:
        orders_at(*EDGES)
        low, high = LAYOUT.id_range(START, ms(END, 1))

        found = filtered(
            {"created_after": "2024-03-01T00:00:00Z", "created_before": "2024-04-01T00:00:00Z"}
        ).qs

        assert made(found) == [START, ms(START, 1), ms(END, -1), END]
        assert where(found) == f"({ORDER_ID} >= {low} AND {ORDER_ID} < {high})"
        assert str(found.query) == str(
            Order.objects.filter(id__generated_at__range=(START, END)).query
        )

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ({"created_after": "2024-04-01T00:00:00Z"}, [END, ms(END, 1)]),
            ({"created_before": "2024-03-01T00:00:00Z"}, [ms(START, -1), START]),
        ],
    )
    def test_range_with_one_end(self, data: dict[str, str], expected: list[dt.datetime]) -> None:
        orders_at(*EDGES)

        assert made(filtered(data).qs) == expected

    def test_offsets_are_honoured(self) -> None:
        orders_at(*EDGES)

        found = filtered({"since": "2024-03-01T01:00:00+01:00"}).qs
        assert made(found) == EDGES[1:]
        assert str(found.query) == str(filtered({"since": "2024-03-01T00:00:00Z"}).qs.query)

    def test_values_without_an_offset_are_local_time(self) -> None:
        paris_start = START.replace(tzinfo=PARIS)
        orders_at(ms(paris_start, -1), paris_start, START)

        with timezone.override(PARIS):
            found = filtered({"since": "2024-03-01T00:00:00"}).qs
            assert made(found) == [paris_start, START]

    @override_settings(USE_TZ=False, TIME_ZONE="Europe/Paris")
    def test_an_offset_is_kept_without_use_tz(self) -> None:
        # django-filter's IsoDateTimeField would turn it into naive UTC, which Django then
        # reads as Paris time, an hour off.
        found = filtered({"since": "2024-03-01T00:00:00Z"}).qs

        assert where(found) == f"{ORDER_ID} >= {LAYOUT.min_id_at(START)}"

    def test_date_is_the_local_calendar_day(self) -> None:
        day = dt.date(2024, 3, 5)
        paris_day = dt.datetime(2024, 3, 5, tzinfo=PARIS)
        orders_at(ms(paris_day, -1), paris_day, utc(2024, 3, 5, 22, 30), utc(2024, 3, 6, 0, 1))

        with timezone.override(PARIS):
            found = filtered({"created_on": "2024-03-05"}).qs
            orm = Order.objects.filter(id__generated_at__date=day)
            low, high = LAYOUT.id_range(paris_day, paris_day + dt.timedelta(days=1))

            assert made(found) == [paris_day, utc(2024, 3, 5, 22, 30)]
            assert str(found.query) == str(orm.query)
            assert where(found) == f"({ORDER_ID} >= {low} AND {ORDER_ID} < {high})"

    def test_date_range_takes_whole_days(self) -> None:
        orders_at(*EDGES, utc(2024, 3, 31, 23, 59, 59))
        low, high = LAYOUT.id_range(START, END)

        found = filtered({"day_after": "2024-03-01", "day_before": "2024-03-31"}).qs
        orm = Order.objects.filter(
            id__generated_at__date__range=(dt.date(2024, 3, 1), dt.date(2024, 3, 31))
        )

        assert made(found) == [START, ms(START, 1), utc(2024, 3, 31, 23, 59, 59), ms(END, -1)]
        assert str(found.query) == str(orm.query)
        assert where(found) == f"({ORDER_ID} >= {low} AND {ORDER_ID} < {high})"
        assert made(filtered({"day_before": "2024-02-29"}).qs) == [ms(START, -1)]
        queryset = Order.objects.all()
        assert GeneratedDateRangeFilter(field_name="id").filter(queryset, slice(None)) is queryset
        assert made(filtered({"day_after": "2024-04-01"}).qs) == [END, ms(END, 1)]

    def test_legacy_keys_match_no_time(self) -> None:
        Order.objects.bulk_create(Order(id=pk) for pk in (1, 2, FIRST_ID - 1))
        epoch = utc(2020, 1, 1)
        assert ms_of(epoch) == LAYOUT.epoch_ms
        orders_at(utc(2020, 1, 2), START)
        # Every time filter over all of time, each from its own end.
        data = [
            {"since": epoch.isoformat()},
            {"until": "9999-12-31T00:00:00Z"},
            {"created_after": epoch.isoformat(), "created_before": "9999-12-31T00:00:00Z"},
            {"created_before": "9999-12-31T00:00:00Z"},
            {"day_after": "2020-01-01", "day_before": "9999-12-31"},
            {"day_before": "9999-12-31"},
            {"day_after": "2020-01-01"},
        ]

        for query in data:
            assert made(filtered(query).qs) == [utc(2020, 1, 2), START], query
        assert list(filtered({"created_on": "2020-01-01"}).qs) == []

    def test_foreign_key_time_without_a_join(self) -> None:
        order = orders_at(START)[0]
        OrderLine.objects.create(order=order, product="tea")
        lines = filterset_factory(OrderLine, SnowflakeFilterSet, {"order": ["generated_at__gte"]})

        found = lines(data={"order__generated_at__gte": "2024-03-01T00:00:00Z"}).qs

        assert "JOIN" not in str(found.query)
        assert where(found) == (
            f"{column('testapp_orderline', 'order_id')} >= {LAYOUT.min_id_at(START)}"
        )
        assert [line.order_id for line in found] == [order.id]

    def test_auto_field_keys(self) -> None:
        author = Author.objects.create(name="Ada")
        Book.objects.bulk_create(
            Book(id=id_at(moment), title=str(moment), author=author) for moment in EDGES
        )

        class BookFilter(SnowflakeFilterSet):
            created = GeneratedAtRangeFilter(field_name="id")

            class Meta:
                model = Book
                fields = ("id", "author")

        found = BookFilter(
            data={"created_after": "2024-04-01T00:00:00Z", "author": str(author.id)}
        ).qs

        assert made(found) == [END, ms(END, 1)]
        assert "JOIN" not in str(found.query)

    def test_exclude_and_distinct(self) -> None:
        orders_at(*EDGES)

        class Options(SnowflakeFilterSet):
            not_before = GeneratedAtFilter(field_name="id", lookup_expr="lt", exclude=True)
            created = GeneratedAtRangeFilter(field_name="id", distinct=True)

            class Meta:
                model = Order
                fields = ()

        kept = Options(data={"not_before": "2024-04-01T00:00:00Z"}).qs
        unique = Options(data={"created_before": "2024-03-01T00:00:00Z"}).qs

        assert made(kept) == [END, ms(END, 1)]
        assert unique.query.distinct
        assert not Options(data={"not_before": "2024-04-01T00:00:00Z"}).qs.query.distinct

    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ({"since": "yesterday"}, {"since": ["Enter a valid date/time."]}),
            ({"until": "2024-13-01T00:00:00Z"}, {"until": ["Enter a valid date/time."]}),
            ({"created_on": "2024-02-30"}, {"created_on": ["Enter a valid date."]}),
            ({"created_after": "soon"}, {"created": ["Enter a valid date/time."]}),
            ({"day_before": "31/03/2024"}, {"day": ["Enter a valid date."]}),
        ],
    )
    def test_refuses_what_is_not_a_date(
        self, data: dict[str, str], expected: dict[str, list[str]]
    ) -> None:
        assert errors(data) == expected


def drf_filters() -> Any:
    """django-filter's module for Django REST framework; the test skips without DRF."""
    pytest.importorskip("rest_framework")
    import django_filters.rest_framework  # type: ignore[import-untyped]

    return django_filters.rest_framework


def order_list_view(**attributes: Any) -> Callable[..., Any]:
    """A DRF list of orders with django-filter's backend; its IDs are strings."""
    backend = drf_filters().DjangoFilterBackend
    from rest_framework import generics

    from django_flakeid.rest_framework import SnowflakeModelSerializer

    class OrderSerializer(SnowflakeModelSerializer[Order]):
        class Meta:
            model = Order
            fields = ("id", "customer", "tags", "reference")

    class OrderList(generics.ListAPIView[Order]):
        queryset = Order.objects.order_by("id")
        serializer_class = OrderSerializer
        filter_backends = (backend,)
        filterset_class: type[Any] | None = OrderFilter
        filterset_fields: dict[str, list[str]] | None = None

    return OrderList.as_view(**attributes)


def get(view: Callable[..., Any], query: dict[str, str]) -> Any:
    from rest_framework.test import APIRequestFactory

    response = view(APIRequestFactory().get("/orders/", query))
    response.render()
    return response


class TestDjangoRestFramework:
    def test_filters_by_id_strings(self) -> None:
        customer = Customer.objects.create(id=ID, name="Ada")
        Order.objects.bulk_create(
            [Order(id=NEXT_ID, customer=customer), Order(id=ID + 2), Order(id=ID - 1)]
        )
        view = order_list_view()

        by_id = get(view, {"id": str(NEXT_ID)})
        by_ids = get(view, {"id__in": f"{ID - 1},{NEXT_ID}"})
        by_customer = get(view, {"customer": str(ID)})

        expected = {"id": str(NEXT_ID), "customer": str(ID), "tags": [], "reference": ""}
        assert (by_id.status_code, by_id.data) == (200, [expected])
        assert [row["id"] for row in by_ids.data] == [str(ID - 1), str(NEXT_ID)]
        assert by_customer.data == [expected]

    def test_filters_by_time(self) -> None:
        orders_at(*EDGES)
        view = order_list_view()

        response = get(view, {"created_after": "2024-03-01T00:00:00Z", "until": "2024-04-01"})

        assert response.status_code == 200
        ids = [int(row["id"]) for row in response.data]
        assert [LAYOUT.decode(pk).datetime for pk in ids] == [START, ms(START, 1), ms(END, -1)]

    @pytest.mark.parametrize(
        ("query", "name", "message", "code"),
        [
            ({"id": "1.5"}, "id", INVALID, "invalid"),
            ({"id": str(MAX_ID + 1)}, "id", OUT_OF_RANGE, "out_of_range"),
            ({"customer": "abc"}, "customer", INVALID, "invalid"),
            ({"id__in": f"{ID},x"}, "id__in", INVALID, "invalid"),
            ({"since": "yesterday"}, "since", "Enter a valid date/time.", "invalid"),
            ({"day_after": "2024-02-30"}, "day", "Enter a valid date.", "invalid"),
        ],
    )
    def test_bad_input_is_a_400_that_says_why(
        self, query: dict[str, str], name: str, message: str, code: str
    ) -> None:
        response = get(order_list_view(), query)

        assert response.status_code == 400
        assert response.data == {name: [message]}
        assert response.data[name][0].code == code

    def test_filterset_fields_with_a_backend_of_snowflake_filtersets(self) -> None:
        backend: Any = drf_filters().DjangoFilterBackend

        class SnowflakeFilterBackend(backend):  # type: ignore[misc]
            filterset_base = SnowflakeFilterSet

        Order.objects.bulk_create([Order(id=ID), Order(id=NEXT_ID)])
        view = order_list_view(
            filter_backends=[SnowflakeFilterBackend],
            filterset_class=None,
            filterset_fields={"id": ["exact"], "customer": ["exact"]},
        )

        assert [row["id"] for row in get(view, {"id": str(NEXT_ID)}).data] == [str(NEXT_ID)]
        assert get(view, {"id": f"{ID}.9"}).data == {"id": [INVALID]}


def readme_section() -> str:
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    found = re.search(r"^### django-filter\n(.*?)(?=^##)", readme, re.MULTILINE | re.DOTALL)
    if found is None:
        pytest.skip('README.md has no "### django-filter" section')
    return found[1]


def test_readme_query_strings_compile_to_its_sql() -> None:
    samples = re.findall(r"((?:^-- \?.+\n)+)(?:^-- .+\n)?^WHERE (.+)$", readme_section(), re.M)

    assert len(samples) >= 5
    for queries, expected in samples:
        for query in re.findall(r"^-- \?(.+)$", queries, re.M):
            filterset = OrderFilter(data=QueryDict(query), queryset=Order.objects.all())
            assert filterset.is_valid(), (query, filterset.errors)
            # The README quotes names as PostgreSQL and SQLite do; MariaDB uses backticks.
            compiled = where(filterset.qs).replace("`", '"')
            assert compiled == expected.replace('"shop_order"', '"testapp_order"')


def test_readme_curl_output() -> None:
    found = re.search(r"^\$ curl '[^?]+\?(.+)'\n(.+)$", readme_section(), re.M)
    assert found is not None
    query, output = found.groups()
    customer = Customer.objects.create(id=913690969688379392, name="Ada")
    tags = Tag.objects.bulk_create(
        [Tag(id=913690969688379393, name="a"), Tag(id=913690969692573696, name="b")]
    )
    order = Order.objects.create(id=913690969692573697, customer=customer)
    order.tags.set(tags)
    # The same customer a day later, and another customer the same day.
    Order.objects.create(id=order.id + (86_400_000 << 22), customer=customer)
    Order.objects.create(id=order.id + 1, customer=Customer.objects.create(name="Bob"))

    response = get(order_list_view(), QueryDict(query).dict())

    assert response.status_code == 200
    assert response.content.decode() == output


def test_importing_the_package_leaves_django_filter_alone() -> None:
    script = textwrap.dedent(
        """
        import sys
        import django
        import django_flakeid
        django.setup()
        from django_flakeid import admin, admin_filters, fields, lookups, serialization
        print(sorted(name for name in sys.modules if name.startswith("django_filters")))
        """
    )
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"}

    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    assert completed.stdout == "[]\n"


def test_without_django_filter(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "django_filters", None)
    monkeypatch.delitem(sys.modules, "django_flakeid.filters")

    with pytest.raises(ImportError, match=r"pip install 'django-flakeid\[filter\]'"):
        importlib.import_module("django_flakeid.filters")
