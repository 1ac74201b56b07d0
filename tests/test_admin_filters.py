from __future__ import annotations

import datetime as dt
import re
import zoneinfo
from typing import TYPE_CHECKING, Any
from urllib.parse import parse_qsl

import pytest
from django.contrib import admin
from django.contrib.admin.views.main import ChangeList
from django.contrib.auth.models import User
from django.db import connection
from django.test import Client, RequestFactory, override_settings
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from django_flakeid.admin_filters import SnowflakeDateFilter, SnowflakeDateHierarchyFilter
from django_flakeid.layout import Layout
from tests.testapp.models import NullableThing, Order, OrderLine

if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin

pytestmark = pytest.mark.django_db

UTC = dt.timezone.utc
LAYOUT = Layout()
PARIS = zoneinfo.ZoneInfo("Europe/Paris")
URL = "/admin/testapp/order/"


@pytest.fixture
def admin_user() -> User:
    # pytest-django's admin_client logs this user in. Without a password there is nothing to
    # hash, and Django's hashers are slow by design.
    user: User = User.objects.create_superuser("admin", password=None)
    return user


def utc(*parts: int) -> dt.datetime:
    return dt.datetime(*parts).replace(tzinfo=UTC)  # type: ignore[arg-type]


def id_at(moment: dt.datetime) -> int:
    return LAYOUT.min_id_at(moment) | (1 << 17) | (7 << 12)


def orders_at(*moments: dt.datetime) -> None:
    Order.objects.bulk_create(
        Order(id=id_at(moment), reference=f"{moment:%Y-%m-%d %H:%M:%S.%f}") for moment in moments
    )


def listed(client: Client, params: dict[str, str]) -> list[str]:
    """The references the Order changelist shows for a query string, oldest first."""
    response = client.get(URL, params)
    assert response.status_code == 200
    return sorted(order.reference for order in response.context["cl"].result_list)


def choices(client: Client, params: dict[str, str], kind: type[Any]) -> list[tuple[str, bool]]:
    """The links of the Order changelist's filter of ``kind``, with which one is selected."""
    response = client.get(URL, params)
    assert response.status_code == 200
    changelist = response.context["cl"]
    [spec] = [spec for spec in changelist.filter_specs if isinstance(spec, kind)]
    return [(str(choice["display"]), choice["selected"]) for choice in spec.choices(changelist)]


def link(client: Client, params: dict[str, str], kind: type[Any], display: str) -> str:
    response = client.get(URL, params)
    changelist = response.context["cl"]
    [spec] = [spec for spec in changelist.filter_specs if isinstance(spec, kind)]
    [choice] = [choice for choice in spec.choices(changelist) if str(choice["display"]) == display]
    return str(choice["query_string"])


def local_midnight(zone: dt.tzinfo, days: int = 0) -> dt.datetime:
    today = timezone.localtime(timezone=zone).date() + dt.timedelta(days=days)
    return dt.datetime.combine(today, dt.time(), tzinfo=zone).astimezone(UTC)


def just_before(moment: dt.datetime) -> dt.datetime:
    return moment - dt.timedelta(milliseconds=1)


class TestPage:
    def test_both_filters_on_the_changelist(self, admin_client: Client) -> None:
        content = admin_client.get(URL).content.decode()

        assert "By date (from ID)" in content
        assert "By year, month and day (from ID)" in content
        assert '<ul class="flakeid-drilldown">' in content


class TestDateFilter:
    @override_settings(TIME_ZONE="Asia/Tokyo")
    def test_today_is_the_local_day(self, admin_client: Client) -> None:
        tokyo = zoneinfo.ZoneInfo("Asia/Tokyo")
        start, end = local_midnight(tokyo), local_midnight(tokyo, 1)
        orders_at(just_before(start), start, just_before(end), end)
        today = link(admin_client, {}, SnowflakeDateFilter, "Today")

        found = listed(admin_client, params_of(today))

        assert found == [
            f"{start:%Y-%m-%d %H:%M:%S.%f}",
            f"{just_before(end):%Y-%m-%d %H:%M:%S.%f}",
        ]

    def test_the_periods(self, admin_client: Client) -> None:
        now = timezone.now()
        orders_at(now, now - dt.timedelta(days=3), now - dt.timedelta(days=400))

        counts = {}
        for period in ("Any date", "Today", "Past 7 days", "This month", "This year"):
            query = link(admin_client, {}, SnowflakeDateFilter, period)
            counts[period] = len(listed(admin_client, params_of(query)))

        assert counts["Any date"] == 3
        assert counts["Today"] == 1
        assert counts["Past 7 days"] == 2
        assert 1 <= counts["This month"] <= 2
        assert 1 <= counts["This year"] <= 2

    def test_a_span_from_the_url(self, admin_client: Client) -> None:
        start, end = utc(2024, 3, 1), utc(2024, 4, 1)
        orders_at(just_before(start), start, just_before(end), end)
        params = {"id__generated_at__gte": "2024-03-01", "id__generated_at__lt": "2024-04-01"}

        assert listed(admin_client, params) == [
            "2024-03-01 00:00:00.000000",
            "2024-03-31 23:59:59.999000",
        ]
        assert choices(admin_client, params, SnowflakeDateFilter)[-1] == (
            "From 2024-03-01 to 2024-04-01",
            True,
        )

    def test_a_span_from_the_url_in_the_current_time_zone(self, admin_client: Client) -> None:
        orders_at(utc(2024, 2, 29, 22, 59, 59, 999_000), utc(2024, 2, 29, 23))

        with override_settings(TIME_ZONE="Europe/Paris"):
            found = listed(admin_client, {"id__generated_at__gte": "2024-03-01T00:00"})

        assert found == ["2024-02-29 23:00:00.000000"]

    def test_an_open_span(self, admin_client: Client) -> None:
        orders_at(utc(2024, 3, 1), utc(2024, 5, 1))

        assert listed(admin_client, {"id__generated_at__lt": "2024-04-01T00:00:00+00:00"}) == [
            "2024-03-01 00:00:00.000000"
        ]
        assert choices(admin_client, {"id__generated_at__lt": "2024-04-01"}, SnowflakeDateFilter)[
            -1
        ] == ("Before 2024-04-01", True)
        assert choices(admin_client, {"id__generated_at__gte": "2024-04-01"}, SnowflakeDateFilter)[
            -1
        ] == ("From 2024-04-01", True)

    @pytest.mark.parametrize("value", ["yesterday", "2024-02-30", "2024-03-01T25:00"])
    def test_a_bad_value_is_an_admin_error(self, admin_client: Client, value: str) -> None:
        response = admin_client.get(URL, {"id__generated_at__gte": value})

        assert response.status_code == 302
        assert response["Location"] == f"{URL}?e=1"

    def test_any_date_is_selected_by_default(self, admin_client: Client) -> None:
        links = choices(admin_client, {}, SnowflakeDateFilter)

        assert links == [
            ("Any date", True),
            ("Today", False),
            ("Past 7 days", False),
            ("This month", False),
            ("This year", False),
        ]

    def test_a_period_is_selected_once_chosen(self, admin_client: Client) -> None:
        query = link(admin_client, {}, SnowflakeDateFilter, "This year")

        links = choices(admin_client, params_of(query), SnowflakeDateFilter)

        assert [display for display, selected in links if selected] == ["This year"]

    def test_facets(self, admin_client: Client) -> None:
        now = timezone.now()
        orders_at(now, now - dt.timedelta(days=3))

        links = choices(admin_client, {"_facets": "True"}, SnowflakeDateFilter)

        assert links[:3] == [
            ("Any date (2)", True),
            ("Today (1)", False),
            ("Past 7 days (2)", False),
        ]

    def test_choosing_clears_the_drill_down(self, admin_client: Client) -> None:
        query = link(admin_client, {"id__generated_at__year": "2024"}, SnowflakeDateFilter, "Today")

        assert "year" not in query
        assert "id__generated_at__gte=" in query

    @override_settings(USE_TZ=False, TIME_ZONE="Asia/Tokyo")
    def test_without_time_zone_support(self, admin_client: Client) -> None:
        orders_at(utc(2024, 2, 29, 14, 59, 59), utc(2024, 2, 29, 15))  # Tokyo: March 1st, 0:00

        assert listed(admin_client, {"id__generated_at__gte": "2024-03-01"}) == [
            "2024-02-29 15:00:00.000000"
        ]


class TestNullableAndRelated:
    def changelist(self, model_admin: ModelAdmin, admin_user: User, **params: str) -> ChangeList:
        request = RequestFactory().get("/", params)
        request.user = admin_user
        return model_admin.get_changelist_instance(request)

    def test_no_date_and_has_date(self, admin_user: User) -> None:
        class Admin(ModelAdmin):
            list_filter = (("filled", SnowflakeDateFilter),)

        model_admin = Admin(NullableThing, admin.AdminSite(name="nullable"))
        NullableThing.objects.create(filled=id_at(utc(2024, 3, 5)))
        NullableThing.objects.create(filled=None)

        empty = self.changelist(model_admin, admin_user, filled__generated_at__isnull="True")
        full = self.changelist(model_admin, admin_user, filled__generated_at__isnull="False")
        [spec] = full.filter_specs

        assert [thing.filled for thing in empty.queryset] == [None]
        assert [thing.filled for thing in full.queryset] == [id_at(utc(2024, 3, 5))]
        assert [choice["display"] for choice in spec.choices(full)][-2:] == ["No date", "Has date"]
        assert [choice["selected"] for choice in spec.choices(full)][-2:] == [False, True]

    def test_through_a_foreign_key(self, admin_user: User) -> None:
        class Admin(ModelAdmin):
            list_filter = (
                ("order__id", SnowflakeDateFilter),
                ("order__id", SnowflakeDateHierarchyFilter),
            )

        model_admin = Admin(OrderLine, admin.AdminSite(name="lines"))
        for moment in (utc(2023, 5, 1), utc(2024, 3, 5)):
            OrderLine.objects.create(
                order=Order.objects.create(id=id_at(moment)), product=str(moment.year)
            )

        spanned = self.changelist(
            model_admin, admin_user, order__id__generated_at__gte="2024-01-01"
        )
        drilled = self.changelist(model_admin, admin_user, order__id__generated_at__year="2023")
        top = self.changelist(model_admin, admin_user)
        years = [str(choice["display"]) for choice in top.filter_specs[1].choices(top)]

        assert [line.product for line in spanned.queryset] == ["2024"]
        assert [line.product for line in drilled.queryset] == ["2023"]
        assert years == ["All dates", "2023", "2024"]


class TestDrillDown:
    def test_years_with_rows(self, admin_client: Client) -> None:
        orders_at(utc(2021, 6, 1), utc(2023, 1, 1), utc(2023, 12, 31), utc(2025, 2, 2))

        assert choices(admin_client, {}, SnowflakeDateHierarchyFilter) == [
            ("All dates", True),
            ("2021", False),
            ("2023", False),
            ("2025", False),
        ]

    def test_months_of_a_year_then_days_of_a_month(self, admin_client: Client) -> None:
        orders_at(
            utc(2024, 3, 5, 12),
            utc(2024, 3, 7),
            utc(2024, 3, 7, 1),
            utc(2024, 11, 1),
            utc(2023, 3, 5),
        )
        year = {"id__generated_at__year": "2024"}
        month = {**year, "id__generated_at__month": "3"}
        day = {**month, "id__generated_at__day": "7"}

        assert choices(admin_client, year, SnowflakeDateHierarchyFilter) == [
            ("All dates", False),
            ("2024", True),
            ("March 2024", False),
            ("November 2024", False),
        ]
        assert choices(admin_client, month, SnowflakeDateHierarchyFilter) == [
            ("All dates", False),
            ("2024", False),
            ("March 2024", True),
            ("March 5, 2024", False),
            ("March 7, 2024", False),
        ]
        assert choices(admin_client, day, SnowflakeDateHierarchyFilter) == [
            ("All dates", False),
            ("2024", False),
            ("March 2024", False),
            ("March 7, 2024", True),
        ]
        assert listed(admin_client, year) == [
            "2024-03-05 12:00:00.000000",
            "2024-03-07 00:00:00.000000",
            "2024-03-07 01:00:00.000000",
            "2024-11-01 00:00:00.000000",
        ]
        assert len(listed(admin_client, month)) == 3
        assert listed(admin_client, day) == [
            "2024-03-07 00:00:00.000000",
            "2024-03-07 01:00:00.000000",
        ]

    def test_links_go_one_level_down(self, admin_client: Client) -> None:
        orders_at(utc(2024, 3, 5))

        query = link(
            admin_client,
            {"id__generated_at__year": "2024"},
            SnowflakeDateHierarchyFilter,
            "March 2024",
        )

        assert params_of(query) == {
            "id__generated_at__month": "3",
            "id__generated_at__year": "2024",
        }

    def test_the_calendar_of_the_current_time_zone(self, admin_client: Client) -> None:
        orders_at(utc(2024, 12, 31, 23, 30))  # 00:30 on New Year's Day in Paris

        with override_settings(TIME_ZONE="Europe/Paris"):
            years = choices(admin_client, {}, SnowflakeDateHierarchyFilter)
            in_2025 = listed(admin_client, {"id__generated_at__year": "2025"})

        assert years == [("All dates", True), ("2025", False)]
        assert in_2025 == ["2024-12-31 23:30:00.000000"]

    def test_one_index_lookup_per_year_found(self, admin_client: Client) -> None:
        orders_at(*(utc(year, 6, 1) for year in range(2020, 2031)))
        response = admin_client.get(URL)
        changelist = response.context["cl"]
        [spec] = [s for s in changelist.filter_specs if isinstance(s, SnowflakeDateHierarchyFilter)]

        with CaptureQueriesContext(connection) as queries:
            years = [choice["display"] for choice in spec.choices(changelist)][1:]

        assert years == [str(year) for year in range(2020, 2031)]
        assert len(queries) == 12  # one per year, one finding nothing after the last
        for query in queries:
            sql = query["sql"].upper()
            assert "MIN(" in sql
            assert not re.search(r"GROUP BY|DISTINCT|EXTRACT|STRFTIME|DATE_TRUNC|>>|/", sql), sql

    def test_the_last_year_of_the_layout(self, admin_client: Client) -> None:
        Order.objects.create(id=2**63 - 1, reference="last")

        assert choices(admin_client, {}, SnowflakeDateHierarchyFilter) == [
            ("All dates", True),
            ("2089", False),
        ]

    @override_settings(FLAKEID={"preset": "minimal"})
    def test_no_calendar_past_the_year_9999(self, admin_client: Client) -> None:
        Order.objects.create(id=2**63 - 1, reference="far")

        assert choices(admin_client, {}, SnowflakeDateHierarchyFilter) == [("All dates", True)]

    @pytest.mark.parametrize(
        "params",
        [
            {"id__generated_at__month": "3"},
            {"id__generated_at__year": "2024", "id__generated_at__day": "3"},
            {"id__generated_at__year": "2024", "id__generated_at__month": "13"},
            {"id__generated_at__year": "MMXXIV"},
        ],
    )
    def test_a_bad_combination_is_an_admin_error(
        self, admin_client: Client, params: dict[str, str]
    ) -> None:
        response = admin_client.get(URL, params)

        assert response.status_code == 302
        assert response["Location"] == f"{URL}?e=1"

    def test_facets(self, admin_client: Client) -> None:
        orders_at(utc(2023, 1, 1), utc(2024, 3, 5), utc(2024, 4, 5))

        links = choices(
            admin_client,
            {"_facets": "True", "id__generated_at__year": "2024"},
            SnowflakeDateHierarchyFilter,
        )

        assert links == [
            ("All dates", False),
            ("2024 (2)", True),
            ("March 2024 (1)", False),
            ("April 2024 (1)", False),
        ]

    def test_choosing_clears_the_date_filter(self, admin_client: Client) -> None:
        orders_at(utc(2024, 3, 5))

        query = link(
            admin_client,
            {"id__generated_at__gte": "2024-01-01"},
            SnowflakeDateHierarchyFilter,
            "2024",
        )

        assert params_of(query) == {"id__generated_at__year": "2024"}


class TestLegacyKeys:
    """Keys kept from before the table took Snowflake IDs: listed, never given a date."""

    def old_orders(self, *ids: int) -> None:
        Order.objects.bulk_create(Order(id=uid, reference=f"old {uid}") for uid in ids)

    def test_the_drill_down_lists_no_year_for_them(self, admin_client: Client) -> None:
        self.old_orders(1, 2, LAYOUT.min_snowflake_id - 1)
        orders_at(utc(2024, 3, 5))

        assert choices(admin_client, {}, SnowflakeDateHierarchyFilter) == [
            ("All dates", True),
            ("2024", False),
        ]
        assert len(listed(admin_client, {})) == 4

    def test_only_old_keys_give_no_year(self, admin_client: Client) -> None:
        self.old_orders(1, 2, 3)

        assert choices(admin_client, {}, SnowflakeDateHierarchyFilter) == [("All dates", True)]

    def test_the_epochs_year_holds_only_new_ids(self, admin_client: Client) -> None:
        self.old_orders(1, LAYOUT.min_snowflake_id - 1)
        orders_at(utc(2020, 1, 2), utc(2020, 6, 1))
        year = {"id__generated_at__year": "2020"}

        assert choices(admin_client, {"_facets": "True", **year}, SnowflakeDateHierarchyFilter) == [
            ("All dates", False),
            ("2020 (2)", True),
            ("January 2020 (1)", False),
            ("June 2020 (1)", False),
        ]
        assert listed(admin_client, year) == [
            "2020-01-02 00:00:00.000000",
            "2020-06-01 00:00:00.000000",
        ]
        january = {**year, "id__generated_at__month": "1"}
        assert choices(admin_client, january, SnowflakeDateHierarchyFilter)[3:] == [
            ("Jan. 2, 2020", False)
        ]
        assert listed(admin_client, {**january, "id__generated_at__day": "1"}) == []

    def test_any_date_lists_them(self, admin_client: Client) -> None:
        self.old_orders(5)
        orders_at(utc(2024, 3, 5))

        assert listed(admin_client, {}) == ["2024-03-05 00:00:00.000000", "old 5"]
        assert choices(admin_client, {"_facets": "True"}, SnowflakeDateFilter)[0] == (
            "Any date (2)",
            True,
        )

    def test_no_date_holds_them_with_the_empty_ones(self, admin_user: User) -> None:
        class Admin(ModelAdmin):
            list_filter = (("filled", SnowflakeDateFilter),)

        model_admin = Admin(NullableThing, admin.AdminSite(name="legacy"))
        for value in (None, 9, id_at(utc(2024, 3, 5))):
            NullableThing.objects.create(filled=value)

        def filled(isnull: str) -> list[int | None]:
            request = RequestFactory().get("/", {"filled__generated_at__isnull": isnull})
            request.user = admin_user
            rows = model_admin.get_changelist_instance(request).queryset
            return sorted(rows.values_list("filled", flat=True), key=lambda value: value or 0)

        assert filled("True") == [None, 9]
        assert filled("False") == [id_at(utc(2024, 3, 5))]

    def test_a_span_before_a_date_leaves_them_out(self, admin_client: Client) -> None:
        self.old_orders(5)
        orders_at(utc(2024, 3, 5))

        assert listed(admin_client, {"id__generated_at__lt": "2024-04-01"}) == [
            "2024-03-05 00:00:00.000000"
        ]


def params_of(query: str) -> dict[str, str]:
    return dict(parse_qsl(query.lstrip("?")))
