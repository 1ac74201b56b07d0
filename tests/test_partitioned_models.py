"""Saves, lookups, the admin, DRF, backfill and deletes on tables cut into time partitions.

Rows are placed by the time in their keys: before the partitions migrate made, in each of them,
and past the last one (the catch-all). Where a row went is read from the partition itself, not
through the parent table, and which partitions a query reads comes from the database's EXPLAIN.
"""

from __future__ import annotations

import datetime as dt
import json
import re
from collections.abc import Iterator, Sequence
from io import StringIO
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.core.management import call_command
from django.db import connection, models
from django.test import Client
from django.test.utils import CaptureQueriesContext
from django.urls import include, path
from django.utils import timezone
from django.utils.formats import date_format
from pytest_django import Settings
from rest_framework import routers, viewsets
from rest_framework.test import APIClient

from django_flakeid import conf
from django_flakeid.admin_filters import SnowflakeDateHierarchyFilter
from django_flakeid.intervals import Span, spans_from
from django_flakeid.partition_sql import backend_for
from django_flakeid.rest_framework import SnowflakeModelSerializer
from django_flakeid.timefmt import unix_ms
from tests.partapp.models import Event, EventNote, Reading, Sensor

pytestmark = pytest.mark.django_db

CATCH_ALL = "catch-all"
# Not the node of the test settings, so a key made here never equals one the generator makes.
NODE = (3, 5)
CHANGELIST = "/admin/partapp/event/"


@pytest.fixture(autouse=True)
def partitioning_database() -> None:
    if backend_for(connection) is None:
        pytest.skip(
            f"{connection.display_name} cannot partition a table: SnowflakePartitions makes "
            "no partitions there (check W201), so no row has a partition to land in"
        )


class EventSerializer(SnowflakeModelSerializer[Event]):
    class Meta:
        model = Event
        fields = ("id", "kind", "ref", "notes")
        extra_kwargs = {"notes": {"read_only": True}}  # noqa: RUF012 - DRF reads it as is


class NoteSerializer(SnowflakeModelSerializer[EventNote]):
    class Meta:
        model = EventNote
        fields = ("id", "event", "text")


class EventViewSet(viewsets.ModelViewSet[Event]):
    queryset = Event.objects.order_by("id")
    serializer_class = EventSerializer


class NoteViewSet(viewsets.ModelViewSet[EventNote]):
    queryset = EventNote.objects.order_by("id")
    serializer_class = NoteSerializer


router = routers.SimpleRouter()
router.register("events", EventViewSet)
router.register("notes", NoteViewSet)
# The URLconf of TestRestFramework: this module.
urlpatterns = [path("api/", include(router.urls))]


def months(count: int = 4) -> list[Span]:
    """This month and the next ones: the partitions migrate gave Event (ahead=3)."""
    return spans_from(conf.get_layout(), "month", timezone.now(), count)


def days(count: int = 3) -> list[Span]:
    """Today and the next days: the partitions migrate gave Reading (ahead=2)."""
    return spans_from(conf.get_layout(), "day", timezone.now(), count)


def key_at(moment: dt.datetime, sequence: int = 0) -> int:
    return conf.get_layout().encode(unix_ms(moment), *NODE, sequence)


def moment_in(span: Span, **offset: float) -> dt.datetime:
    return span.start + dt.timedelta(**offset)


def partitions_of(table: str) -> list[tuple[str, str]]:
    """(name, what to select from) for each partition of ``table``.

    Names are the suffixes migrate gives: ``before``, ``p20261201``..., and ``catch-all`` for
    PostgreSQL's DEFAULT partition and MariaDB's ``pmax``.
    """
    quote = connection.ops.quote_name
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql":
            cursor.execute(
                "SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = %s::regclass",
                [table],
            )
            return [(short_name(table, name), quote(name)) for (name,) in cursor.fetchall()]
        cursor.execute(
            "SELECT PARTITION_NAME FROM information_schema.PARTITIONS "
            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s AND PARTITION_NAME IS NOT NULL",
            [table],
        )
        return [
            (short_name(table, name), f"{quote(table)} PARTITION ({quote(name)})")
            for (name,) in cursor.fetchall()
        ]


def short_name(table: str, name: str) -> str:
    name = name.removeprefix(f"{table}_")
    return CATCH_ALL if name in {"default", "pmax"} else name


def partition_rows(model: type[models.Model], *columns: str) -> dict[str, list[tuple[Any, ...]]]:
    """The rows (key first, then ``columns``) of each non-empty partition, read from it."""
    quote = connection.ops.quote_name
    table = model._meta.db_table
    assert model._meta.pk is not None
    selected = ", ".join(quote(column) for column in (model._meta.pk.column, *columns))
    found: dict[str, list[tuple[Any, ...]]] = {}
    for name, source in partitions_of(table):
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {selected} FROM {source}")
            rows = [tuple(row) for row in cursor.fetchall()]
        if rows:
            found[name] = rows
    return found


def partition_contents(model: type[models.Model]) -> dict[str, set[int]]:
    """The keys each non-empty partition of the model's table holds."""
    return {name: {row[0] for row in rows} for name, rows in partition_rows(model).items()}


def explain(sql: str, params: Sequence[Any] | None = None) -> str:
    """The database's plan for a query: text on PostgreSQL, JSON on MariaDB.

    Asked through the cursor: on MariaDB, Django's ``explain(format="JSON")`` encodes the
    document a second time, as a JSON string.
    """
    # MariaDB's traditional EXPLAIN has no partitions column; its JSON plan lists them.
    prefix = "EXPLAIN" if connection.vendor == "postgresql" else "EXPLAIN FORMAT=JSON"
    with connection.cursor() as cursor:
        cursor.execute(f"{prefix} {sql}", params)
        return "\n".join(str(row[0]) for row in cursor.fetchall())


def read_by(table: str, sql: str, params: Sequence[Any] | None = None) -> set[str]:
    """The partitions of ``table`` that the database's plan for a query reads."""
    plan = explain(sql, params)
    if connection.vendor == "postgresql":
        # A scan names the partition's table; an index scan also its "<partition>_pkey".
        found = re.findall(rf"\b{table}_(before|default|p\d{{8}})(?![0-9])", plan)
        return {short_name(table, name) for name in found}
    return {
        short_name(table, name)
        for node in walk(json.loads(plan))
        if node.get("table_name") == table
        for name in node.get("partitions", [])
    }


def scanned(queryset: models.QuerySet[Any]) -> set[str]:
    """The partitions of the queryset's table that the database's plan reads."""
    sql, params = queryset.query.sql_with_params()
    return read_by(queryset.model._meta.db_table, sql, params)


def walk(node: Any) -> Iterator[dict[str, Any]]:
    if isinstance(node, dict):
        yield node
        for value in node.values():
            yield from walk(value)
    elif isinstance(node, list):
        for value in node:
            yield from walk(value)


def spread_events() -> dict[str, list[Event]]:
    """Events by partition: one before the partitions, one past the last (in the catch-all),
    and in each month the first and the last ID it can hold, so a bound one off shows."""
    current, *later = months()
    placed: dict[str, list[Event]] = {
        "before": [Event(id=current.low - 1, kind="before")],
        CATCH_ALL: [Event(id=later[-1].high, kind="past")],
    }
    for span in (current, *later):
        placed[span.suffix] = [
            Event(id=span.low, kind=f"{span.suffix} first"),
            Event(id=span.high - 1, kind=f"{span.suffix} last"),
        ]
    Event.objects.bulk_create(event for events in placed.values() for event in events)
    return placed


def keys(placed: dict[str, list[Event]]) -> dict[str, set[int]]:
    return {name: {event.pk for event in events} for name, events in placed.items()}


class TestThePartitions:
    def test_migrate_cut_event_by_month_and_reading_by_day(self) -> None:
        event = {name for name, _ in partitions_of(Event._meta.db_table)}
        reading = {name for name, _ in partitions_of(Reading._meta.db_table)}

        assert event == {"before", *(span.suffix for span in months()), CATCH_ALL}
        assert reading == {"before", *(span.suffix for span in days()), CATCH_ALL}


class TestWrites:
    def test_save_puts_each_row_in_the_partition_of_its_time(self) -> None:
        now = Event.objects.create(kind="now")
        current, *later = months()
        made = {
            "before": current.low - 1,
            current.suffix: current.low,
            later[0].suffix: key_at(moment_in(later[0], days=9)),
            later[-1].suffix: later[-1].high - 1,
            CATCH_ALL: later[-1].high,
        }
        for name, key in made.items():
            Event(id=key, kind=name).save()

        contents = partition_contents(Event)

        assert contents == {
            **{name: {key} for name, key in made.items()},
            current.suffix: {made[current.suffix], now.pk},
        }

    def test_save_of_a_loaded_row_updates_it_where_it_is(self) -> None:
        placed = spread_events()
        [event, _] = placed[months()[2].suffix]
        loaded = Event.objects.get(pk=event.pk)

        loaded.kind = "changed"
        loaded.save()
        updated = Event.objects.filter(kind__endswith="last").update(kind="late")

        assert updated == 4
        assert Event.objects.get(pk=event.pk).kind == "changed"
        assert partition_contents(Event) == keys(placed)

    def test_bulk_create_spreads_rows_over_the_partitions(self) -> None:
        placed = spread_events()
        made_now = Event.objects.bulk_create(Event(kind="now") for _ in range(3))

        contents = partition_contents(Event)

        expected = keys(placed)
        expected[months()[0].suffix] |= {event.pk for event in made_now}
        assert contents == expected
        assert Event.objects.count() == 13

    def test_day_partitions_of_readings(self) -> None:
        sensor = Sensor.objects.create(name="roof")
        today, *later = days()
        made = {
            "before": today.low - 1,
            today.suffix: key_at(moment_in(today, hours=5)),
            later[0].suffix: later[0].low,
            later[1].suffix: later[1].high - 1,
            CATCH_ALL: later[1].high,
        }
        Reading.objects.bulk_create(
            Reading(id=key, sensor=sensor, value=index) for index, key in enumerate(made.values())
        )

        assert partition_contents(Reading) == {name: {key} for name, key in made.items()}


class TestLookups:
    def test_one_month_reads_one_partition(self) -> None:
        placed = spread_events()
        span = months()[1]

        found = Event.objects.filter(
            id__generated_at__gte=span.start, id__generated_at__lt=span.end
        )

        assert {event.pk for event in found} == keys(placed)[span.suffix]
        assert scanned(found) == {span.suffix}

    def test_a_range_over_two_months_reads_two(self) -> None:
        placed = spread_events()
        first, second = months()[1:3]

        found = Event.objects.filter(
            id__generated_at__range=(first.start, moment_in(second, days=1))
        )

        [second_first, _] = placed[second.suffix]
        assert {event.pk for event in found} == keys(placed)[first.suffix] | {second_first.pk}
        assert scanned(found) == {first.suffix, second.suffix}

    def test_a_day_reads_the_partition_of_its_month(self) -> None:
        placed = spread_events()
        span = months()[3]
        last_day = (span.end - dt.timedelta(days=1)).date()

        found = Event.objects.filter(id__generated_at__date=last_day)

        assert [event.pk for event in found] == [placed[span.suffix][1].pk]
        assert scanned(found) == {span.suffix}

    def test_year_and_month(self) -> None:
        placed = spread_events()
        span = months()[2]

        found = Event.objects.filter(
            id__generated_at__year=span.start.year, id__generated_at__month=span.start.month
        )

        assert {event.pk for event in found} == keys(placed)[span.suffix]
        # PostgreSQL prunes with each condition on its own and keeps what either may need:
        # the year runs past the last partition, and so does that month of later years, so
        # it reads the catch-all as well (kept empty: one look into an empty index). MariaDB
        # intersects the ranges first and reads the month's partition alone.
        assert scanned(found) - {CATCH_ALL} == {span.suffix}

    def test_before_the_partitions(self) -> None:
        placed = spread_events()

        found = Event.objects.filter(id__generated_at__lt=months()[0].start)

        assert {event.pk for event in found} == keys(placed)["before"]
        assert scanned(found) == {"before"}

    def test_an_open_end_reads_every_later_partition(self) -> None:
        placed = spread_events()
        spans = months()

        found = Event.objects.filter(id__generated_at__gte=spans[1].start)

        later = {span.suffix for span in spans[1:]} | {CATCH_ALL}
        assert {event.pk for event in found} == set().union(*(keys(placed)[n] for n in later))
        assert scanned(found) == later

    def test_through_a_foreign_key(self) -> None:
        placed = spread_events()
        sensor = Sensor.objects.create(name="roof")
        span = months()[1]
        [inside, _] = placed[span.suffix]
        [outside, _] = placed[months()[2].suffix]
        Reading.objects.bulk_create(
            [
                Reading(sensor=sensor, event=inside, value=1),
                Reading(sensor=sensor, event=outside, value=2),
                Reading(sensor=sensor, value=3),
            ]
        )

        found = Reading.objects.filter(
            event__generated_at__gte=span.start, event__generated_at__lt=span.end
        )
        today = found.filter(id__generated_at__date=days()[0].start.date())

        assert [reading.value for reading in found] == [1]
        assert [reading.value for reading in today] == [1]
        # The event's time bounds reading.event_id, not Reading's partition key: only a bound
        # on Reading's own key narrows the partitions of Reading.
        assert scanned(found) == {"before", *(span.suffix for span in days()), CATCH_ALL}
        assert scanned(today) == {days()[0].suffix}


@pytest.fixture
def admin_user() -> User:
    # pytest-django's admin_client logs this user in; without a password nothing is hashed.
    user: User = User.objects.create_superuser("admin", password=None)
    return user


def drill_down(client: Client, query: dict[str, str]) -> tuple[list[str], list[tuple[str, str]]]:
    """The kinds the changelist lists, and the drill-down's links as (label, query string)."""
    response = client.get(CHANGELIST, query)
    assert response.status_code == 200
    changelist = response.context["cl"]
    [spec] = [s for s in changelist.filter_specs if isinstance(s, SnowflakeDateHierarchyFilter)]
    links = [(str(c["display"]), str(c["query_string"])) for c in spec.choices(changelist)]
    return sorted(event.kind for event in changelist.result_list), links


def follow(links: list[tuple[str, str]], shown: str) -> dict[str, str]:
    [query] = [query for label, query in links if label == shown]
    return dict(pair.split("=") for pair in query.lstrip("?").split("&") if pair)


def labels(links: list[tuple[str, str]]) -> list[str]:
    return [label for label, _query in links]


class TestAdmin:
    def test_drill_down_by_year_month_and_day(self, admin_client: Client) -> None:
        current, following = months(2)
        made = {
            "older": current.start - dt.timedelta(days=40),
            "a": moment_in(current, hours=6),
            "b": moment_in(current, days=1, hours=6),
            "c": moment_in(following, days=4),
            "d": moment_in(following, days=4, hours=20),
        }
        Event.objects.bulk_create(Event(id=key_at(at), kind=kind) for kind, at in made.items())
        year = str(following.start.year)
        month = date_format(following.start, "YEAR_MONTH_FORMAT")
        day = date_format(moment_in(following, days=4), "DATE_FORMAT")

        everything, top = drill_down(admin_client, {})
        in_year, year_links = drill_down(admin_client, follow(top, year))
        in_month, month_links = drill_down(admin_client, follow(year_links, month))
        on_day, day_links = drill_down(admin_client, follow(month_links, day))

        assert everything == sorted(made)
        assert labels(top) == ["All dates", *sorted({str(at.year) for at in made.values()})]
        assert in_year == sorted(kind for kind, at in made.items() if str(at.year) == year)
        assert month in labels(year_links)
        assert in_month == ["c", "d"]
        assert labels(month_links) == ["All dates", year, month, day]
        assert on_day == ["c", "d"]
        assert labels(day_links) == ["All dates", year, month, day]

    def test_a_month_of_the_drill_down_reads_its_partition(self, admin_client: Client) -> None:
        placed = spread_events()
        span = months()[1]
        table = Event._meta.db_table
        month = {
            "id__generated_at__year": str(span.start.year),
            "id__generated_at__month": str(span.start.month),
        }

        with CaptureQueriesContext(connection) as queries:
            response = admin_client.get(CHANGELIST, month)

        listed = {event.pk for event in response.context["cl"].result_list}
        assert listed == keys(placed)[span.suffix]
        reads = {q["sql"]: read_by(table, q["sql"]) for q in queries if table in q["sql"]}
        # One MIN() for each of the month's two days with rows, and one finding no more.
        assert sum("MIN(" in sql for sql in reads) == 3
        # Past the month, only the admin's count of the whole table (show_full_result_count).
        wide = [sql for sql, read in reads.items() if not read <= {span.suffix}]
        assert len(wide) == 1
        assert "COUNT(" in wide[0]
        assert "WHERE" not in wide[0]

    def test_change_page_of_a_row_in_a_later_partition(self, admin_client: Client) -> None:
        span = months()[3]
        event = Event.objects.create(id=key_at(moment_in(span, days=2)), kind="old")
        url = f"{CHANGELIST}{event.pk}/change/"

        page = admin_client.get(url)
        saved = admin_client.post(url, {"kind": "new"})

        assert page.status_code == 200
        assert saved.status_code == 302
        assert Event.objects.get(pk=event.pk).kind == "new"
        assert partition_contents(Event) == {span.suffix: {event.pk}}


class TestRestFramework:
    @pytest.fixture(autouse=True)
    def api_urls(self, settings: Settings) -> None:
        settings.ROOT_URLCONF = __name__

    def test_create_lands_in_the_current_month(self) -> None:
        response = APIClient().post("/api/events/", {"kind": "posted"}, format="json")

        body = response.json()
        assert response.status_code == 201
        assert isinstance(body["id"], str)
        assert partition_contents(Event) == {months()[0].suffix: {int(body["id"])}}

    def test_read_change_and_delete_rows_of_every_partition(self) -> None:
        placed = spread_events()
        client = APIClient()
        [later, _] = placed[months()[3].suffix]
        [past] = placed[CATCH_ALL]

        listed = client.get("/api/events/").json()
        one = client.get(f"/api/events/{later.pk}/").json()
        patched = client.patch(f"/api/events/{later.pk}/", {"kind": "patched"}, format="json")
        deleted = client.delete(f"/api/events/{past.pk}/")

        every_key = sorted(key for found in keys(placed).values() for key in found)
        assert [row["id"] for row in listed] == [str(key) for key in every_key]
        assert one == {"id": str(later.pk), "kind": later.kind, "ref": str(later.ref), "notes": []}
        assert patched.status_code == 200
        assert Event.objects.get(pk=later.pk).kind == "patched"
        assert deleted.status_code == 204
        assert CATCH_ALL not in partition_contents(Event)

    def test_a_note_names_its_event_by_the_id_as_a_string(self) -> None:
        event = Event.objects.create(id=key_at(moment_in(months()[2], days=1)), kind="x")
        client = APIClient()

        posted = client.post("/api/notes/", {"event": str(event.pk), "text": "hi"}, format="json")
        shown = client.get(f"/api/events/{event.pk}/").json()

        assert posted.status_code == 201
        assert posted.json()["event"] == str(event.pk)
        assert shown["notes"] == [posted.json()["id"]]


class TestBackfill:
    def test_fills_the_column_in_every_partition(self) -> None:
        placed = spread_events()
        Event.objects.update(ref=None)
        out = StringIO()

        call_command("flakeid", "backfill", "partapp.Event", "ref", "--batch-size", "3", stdout=out)

        rows = partition_rows(Event, "ref")
        assert {name: {key for key, _ in found} for name, found in rows.items()} == keys(placed)
        refs = [ref for _key, ref in sorted(row for found in rows.values() for row in found)]
        # New IDs from the project's generator, in key order: all different, all increasing.
        assert refs == sorted(set(refs))
        decoded = [conf.get_layout().decode(ref) for ref in refs]
        assert {(uid.datacenter_id, uid.machine_id) for uid in decoded} == {(1, 7)}
        assert re.search(r"^Filled 10 rows in \d+\.\d s\.$", out.getvalue(), re.MULTILINE)

    def test_again_finds_nothing(self) -> None:
        spread_events()
        Event.objects.update(ref=None)
        call_command("flakeid", "backfill", "partapp.Event", "ref", stdout=StringIO())
        out = StringIO()

        call_command("flakeid", "backfill", "partapp.Event", "ref", stdout=out)

        assert out.getvalue() == "partapp.Event.ref has no empty rows: nothing to do.\n"
        assert Event.objects.filter(ref__isnull=True).count() == 0


class TestDeletes:
    def test_an_event_takes_its_notes(self) -> None:
        placed = spread_events()
        [event, other] = placed[months()[1].suffix]
        EventNote.objects.bulk_create(
            [EventNote(event=event, text=str(n)) for n in range(3)]
            + [EventNote(event=other, text="kept")]
        )
        reading = Reading.objects.create(
            sensor=Sensor.objects.create(name="roof"), event=event, value=1
        )

        deleted, per_model = event.delete()

        assert (deleted, per_model) == (4, {"partapp.Event": 1, "partapp.EventNote": 3})
        assert list(EventNote.objects.values_list("text", flat=True)) == ["kept"]
        reading.refresh_from_db()
        assert reading.event_id is None
        expected = keys(placed)
        expected[months()[1].suffix] = {other.pk}
        assert partition_contents(Event) == expected

    def test_a_queryset_over_several_partitions(self) -> None:
        placed = spread_events()
        spans = months()
        EventNote.objects.bulk_create(
            EventNote(event=event, text=event.kind)
            for events in placed.values()
            for event in events
        )

        deleted, per_model = Event.objects.filter(
            id__generated_at__gte=spans[1].start, id__generated_at__lt=spans[3].end
        ).delete()

        kept = {name: placed[name] for name in ("before", spans[0].suffix, CATCH_ALL)}
        assert (deleted, per_model) == (12, {"partapp.Event": 6, "partapp.EventNote": 6})
        assert partition_contents(Event) == keys(kept)
        assert sorted(EventNote.objects.values_list("text", flat=True)) == sorted(
            event.kind for events in kept.values() for event in events
        )

    def test_a_sensor_takes_its_readings_from_every_day(self) -> None:
        roof, cellar = Sensor.objects.bulk_create([Sensor(name="roof"), Sensor(name="cellar")])
        today, *later = days()
        moments = [today.start - dt.timedelta(days=2), today.start, later[0].start, later[1].end]
        Reading.objects.bulk_create(
            Reading(id=key_at(at), sensor=roof, value=index) for index, at in enumerate(moments)
        )
        kept = Reading.objects.create(sensor=cellar, value=9)

        deleted, per_model = roof.delete()

        assert (deleted, per_model) == (5, {"partapp.Sensor": 1, "partapp.Reading": 4})
        assert partition_contents(Reading) == {today.suffix: {kept.pk}}
