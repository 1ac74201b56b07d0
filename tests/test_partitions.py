from __future__ import annotations

import datetime as dt
import os
import threading
import time
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.db import IntegrityError, connection, connections, migrations, models
from django.db.migrations.state import ModelState, ProjectState
from django.db.migrations.writer import MigrationWriter
from django.test.utils import isolate_apps

from django_flakeid import conf
from django_flakeid.fields import SnowflakeField
from django_flakeid.partition_sql import backend_for
from django_flakeid.partitions import SnowflakePartitions, declaration, partitioned_models
from tests.partapp.models import Event, EventNote, Reading, Sensor

UTC = dt.timezone.utc
POSTGRESQL = connection.vendor == "postgresql"
# Known without a query: the suite runs MySQL's backend only against MariaDB.
PARTITIONING = connection.vendor in {"postgresql", "mysql"}
needs_partitions = pytest.mark.skipif(
    not PARTITIONING, reason="only PostgreSQL and MariaDB partition tables"
)


def at(year: int, month: int, day: int = 1) -> int:
    """The first ID of a day, under the test layout."""
    return conf.get_layout().min_id_at(dt.datetime(year, month, day, tzinfo=UTC))


class TestDeclaration:
    def test_defaults(self) -> None:
        declared = SnowflakePartitions(name="p")

        assert (declared.interval, declared.ahead) == ("month", 3)

    @pytest.mark.parametrize("interval", ["year", "Month", "", None])
    def test_bad_interval(self, interval: Any) -> None:
        with pytest.raises(ValueError, match="interval must be one of 'day', 'week', 'month'"):
            SnowflakePartitions(name="p", interval=interval)

    @pytest.mark.parametrize("ahead", [-1, 1.5, "3", True, None])
    def test_bad_ahead(self, ahead: Any) -> None:
        with pytest.raises(ValueError, match="ahead must be a whole number from 0 up"):
            SnowflakePartitions(name="p", ahead=ahead)

    def test_ahead_zero_is_allowed(self) -> None:
        assert SnowflakePartitions(name="p", ahead=0).ahead == 0

    def test_deconstruct_round_trip(self) -> None:
        declared = SnowflakePartitions(name="p", interval="week", ahead=5)

        path, args, kwargs = declared.deconstruct()
        rebuilt = SnowflakePartitions(*args, **kwargs)

        assert path == "django_flakeid.partitions.SnowflakePartitions"
        assert kwargs == {"name": "p", "interval": "week", "ahead": 5}
        assert rebuilt == declared
        assert hash(rebuilt) == hash(declared)
        assert rebuilt.clone() == declared

    def test_migration_writer_records_an_importable_call(self) -> None:
        text, imports = MigrationWriter.serialize(SnowflakePartitions(name="p", interval="day"))

        assert text == (
            "django_flakeid.partitions.SnowflakePartitions(ahead=3, interval='day', name='p')"
        )
        assert imports == {"import django_flakeid.partitions"}

    @pytest.mark.parametrize(
        "other",
        [
            SnowflakePartitions(name="q"),
            SnowflakePartitions(name="p", interval="day"),
            SnowflakePartitions(name="p", ahead=4),
            SnowflakePartitions(name="p", violation_error_message="no"),
        ],
    )
    def test_any_difference_is_a_change(self, other: SnowflakePartitions) -> None:
        assert SnowflakePartitions(name="p") != other

    def test_not_equal_to_other_constraints(self) -> None:
        unique = models.UniqueConstraint(fields=["id"], name="p")

        assert SnowflakePartitions(name="p") != unique
        assert SnowflakePartitions(name="p").__eq__(unique) is NotImplemented

    def test_repr(self) -> None:
        assert repr(SnowflakePartitions(name="p", interval="week", ahead=1)) == (
            "<SnowflakePartitions: name='p' interval='week' ahead=1>"
        )

    @pytest.mark.django_db
    def test_validate_accepts_every_row(self) -> None:
        # full_clean() runs every constraint's validate(); a partition scheme refuses nothing.
        event = Event(kind="x")

        event.full_clean()

    def test_spans_start_with_the_current_interval(self) -> None:
        declared = SnowflakePartitions(name="p", interval="day", ahead=2)

        spans = declared.spans(dt.datetime(2026, 3, 4, 15, tzinfo=UTC))

        assert [span.suffix for span in spans] == ["p20260304", "p20260305", "p20260306"]
        assert spans[0].low == at(2026, 3, 4)
        assert spans[-1].high == at(2026, 3, 7)


class TestLookup:
    def test_declaration(self) -> None:
        found = declaration(Event)

        assert found is not None
        assert (found.name, found.interval, found.ahead) == ("partapp_event_by_month", "month", 3)
        assert declaration(EventNote) is None

    def test_partitioned_models(self) -> None:
        found = {model: declared.name for model, declared in partitioned_models()}

        assert found == {Event: "partapp_event_by_month", Reading: "partapp_reading_by_day"}


@pytest.mark.django_db
def test_makemigrations_is_clean_twice() -> None:
    for _ in range(2):
        stdout = StringIO()
        call_command("makemigrations", "partapp", "--check", "--dry-run", stdout=stdout)
        assert stdout.getvalue() == "No changes detected in app 'partapp'\n"


def test_autodetector_adds_and_removes_the_declaration() -> None:
    from django.db.migrations.autodetector import MigrationAutodetector
    from django.db.migrations.graph import MigrationGraph
    from django.db.migrations.questioner import MigrationQuestioner

    def state(*constraints: SnowflakePartitions) -> ProjectState:
        project = ProjectState()
        project.add_model(
            ModelState(
                "partapp",
                "Log",
                [("id", SnowflakeField(primary_key=True))],
                {"constraints": list(constraints)},
            )
        )
        return project

    def changes(before: ProjectState, after: ProjectState) -> list[str]:
        questioner = MigrationQuestioner(specified_apps={"partapp"})
        found = MigrationAutodetector(before, after, questioner).changes(MigrationGraph())
        return [type(op).__name__ for found in found.get("partapp", []) for op in found.operations]

    month, week = SnowflakePartitions(name="p"), SnowflakePartitions(name="p", interval="week")
    assert changes(state(), state(month)) == ["AddConstraint"]
    assert changes(state(month), state()) == ["RemoveConstraint"]
    assert changes(state(month), state(week)) == ["RemoveConstraint", "AddConstraint"]
    assert changes(state(month), state(SnowflakePartitions(name="p"))) == []


# Models made and dropped by the tests: a plain table with rows that gets the declaration.


@pytest.fixture
def shop() -> Iterator[dict[str, type[models.Model]]]:
    # Real foreign keys where the database allows them next to a partitioned table.
    real = POSTGRESQL
    with isolate_apps("tests.partapp"):

        class Owner(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)
            name = models.CharField(max_length=20)

            class Meta:
                app_label = "partapp"

        class Item(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)
            owner = models.ForeignKey(Owner, models.CASCADE, db_constraint=real)
            parent = models.ForeignKey("self", models.CASCADE, null=True, db_constraint=real)
            label = models.CharField(max_length=20, db_index=True)
            size = models.IntegerField(default=0)
            # A copy must leave it out: the database computes it.
            double = models.GeneratedField(
                expression=models.F("size") * 2,
                output_field=models.IntegerField(),
                db_persist=True,
            )

            class Meta:
                app_label = "partapp"
                db_table_comment = "the items"
                indexes = (models.Index(fields=["label", "owner"], name="item_label_owner"),)
                constraints = (
                    models.CheckConstraint(condition=models.Q(size__gte=0), name="item_size"),
                )

        class Line(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)
            item = models.ForeignKey(Item, models.CASCADE, db_constraint=real)

            class Meta:
                app_label = "partapp"

    made = {"owner": Owner, "item": Item, "line": Line}
    with connection.schema_editor() as editor:
        for model in made.values():
            editor.create_model(model)
    try:
        yield made
    finally:
        with connection.schema_editor() as editor:
            for model in reversed(made.values()):
                editor.delete_model(model)


def fill(shop: dict[str, type[models.Model]]) -> list[tuple[Any, ...]]:
    Owner, Item, Line = shop["owner"], shop["item"], shop["line"]
    owner = Owner._default_manager.create(id=at(2025, 1, 1), name="o")
    # Rows from long ago, this month, and years ahead (for the catch-all).
    ids = [at(2024, 5, 6) + 1, at(2025, 12, 31) + 2, *range(at(2026, 12, 2), at(2026, 12, 2) + 5)]
    ids += [at(2031, 1, 1) + 3]
    Item._default_manager.bulk_create(
        Item(id=i, owner=owner, label=f"l{n}", size=n) for n, i in enumerate(ids)
    )
    Item._default_manager.filter(id=ids[1]).update(parent_id=ids[0])
    Line._default_manager.bulk_create(
        Line(id=at(2026, 1, 1) + n, item_id=i) for n, i in enumerate(ids)
    )
    return items(shop)


def items(shop: dict[str, type[models.Model]]) -> list[tuple[Any, ...]]:
    rows = shop["item"]._default_manager.order_by("id")
    return list(rows.values_list("id", "owner_id", "parent_id", "label", "size", "double"))


def names(table: str) -> dict[str, tuple[Any, ...]]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return {
        name: (tuple(info["columns"]), info["primary_key"], info["foreign_key"], info["index"])
        for name, info in found.items()
    }


def comment(table: str) -> str | None:
    with connection.cursor() as cursor:
        for info in connection.introspection.get_table_list(cursor):
            if info.name == table:
                return getattr(info, "comment", None)
    return None


@needs_partitions
@pytest.mark.django_db(transaction=True)
class TestAddConstraint:
    declared = SnowflakePartitions(name="item_by_month", interval="month", ahead=2)

    def convert(self, shop: dict[str, type[models.Model]], kind: str = "item") -> None:
        with connection.schema_editor() as editor:
            editor.add_constraint(shop[kind], self.declared)

    def test_keeps_every_row_and_every_name(self, shop: dict[str, type[models.Model]]) -> None:
        rows = fill(shop)
        before = {table: names(table) for table in ("partapp_item", "partapp_line")}

        self.convert(shop)

        backend = backend_for(connection)
        assert backend is not None
        assert backend.is_partitioned(connection, "partapp_item")
        assert items(shop) == rows
        assert {table: names(table) for table in before} == before
        if POSTGRESQL:
            assert comment("partapp_item") == "the items"
            assert analysed("partapp_item")

    @pytest.mark.skipif(not POSTGRESQL, reason="a PostgreSQL rebuild makes a new table")
    def test_owner_and_privileges_are_kept(self, shop: dict[str, type[models.Model]]) -> None:
        # Migrations run by a superuser must not take the table away from the application.
        fill(shop)
        role = f"flakeid_owner_{os.getpid()}"
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE ROLE {role} NOLOGIN")
        try:
            with connection.cursor() as cursor:
                cursor.execute(f"ALTER TABLE partapp_item OWNER TO {role}")
                cursor.execute("GRANT SELECT, INSERT ON partapp_item TO PUBLIC")

            self.convert(shop)

            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT DISTINCT relowner::regrole::text FROM pg_class "
                    "WHERE relname LIKE 'partapp_item%%' AND relkind IN ('r', 'p')"
                )
                assert cursor.fetchall() == [(role,)]
                cursor.execute(
                    "SELECT privilege_type FROM information_schema.role_table_grants "
                    "WHERE table_name = 'partapp_item' AND grantee = 'PUBLIC' ORDER BY 1"
                )
                assert cursor.fetchall() == [("INSERT",), ("SELECT",)]
        finally:
            with connection.cursor() as cursor:
                cursor.execute(f"REASSIGN OWNED BY {role} TO CURRENT_USER")
                cursor.execute(f"DROP OWNED BY {role}")
                cursor.execute(f"DROP ROLE {role}")

    def test_builds_before_current_ahead_and_catch_all(
        self, shop: dict[str, type[models.Model]]
    ) -> None:
        fill(shop)

        self.convert(shop)

        backend = backend_for(connection)
        assert backend is not None
        found = backend.partitions(connection, "partapp_item")
        spans = self.declared.spans()
        assert [p.high for p in found] == [spans[0].low, *(s.high for s in spans), None]
        assert [p.low for p in found[1:-1]] == [s.low for s in spans]
        assert found[-1].catch_all
        assert not any(p.catch_all for p in found[:-1])

    def test_rows_land_in_their_partitions(self, shop: dict[str, type[models.Model]]) -> None:
        rows = fill(shop)

        self.convert(shop)

        spans = self.declared.spans()
        counts = partition_counts("partapp_item")
        assert sum(counts.values()) == len(rows)
        assert counts[PG_BEFORE if POSTGRESQL else "before"] == sum(
            1 for row in rows if row[0] < spans[0].low
        )
        assert counts[catch_all_name()] == sum(1 for row in rows if row[0] >= spans[-1].high)

    def test_writes_and_joins_after(self, shop: dict[str, type[models.Model]]) -> None:
        fill(shop)
        self.convert(shop)
        Owner, Item, Line = shop["owner"], shop["item"], shop["line"]

        owner = Owner._default_manager.get()
        made = Item._default_manager.create(owner=owner, label="new")
        Item._default_manager.bulk_create([Item(owner=owner, label="bulk") for _ in range(3)])
        Line._default_manager.create(item=made)

        assert Item._default_manager.filter(label__in=["new", "bulk"]).count() == 4
        assert Line._default_manager.filter(item__label="new").count() == 1

    # Line: no foreign key points at it, so only the conversion's own lock makes it wait.
    @pytest.mark.parametrize("kind", ["item", "line"])
    def test_a_write_in_flight_is_waited_for(
        self, shop: dict[str, type[models.Model]], kind: str
    ) -> None:
        # A row inserted but not yet committed when the conversion starts: the conversion must
        # wait for it rather than copy the table without it and then drop the table.
        fill(shop)
        model = shop[kind]
        rows = list(model._default_manager.order_by("id").values_list("id", flat=True))
        late = at(2026, 12, 3)
        writer = connections.create_connection("default")
        writer.set_autocommit(False)
        with writer.cursor() as cursor:
            if kind == "item":
                cursor.execute(
                    "INSERT INTO partapp_item (id, owner_id, label, size) "
                    "SELECT %s, id, 'late', 0 FROM partapp_owner",
                    [late],
                )
            else:
                cursor.execute(
                    "INSERT INTO partapp_line (id, item_id) SELECT %s, min(id) FROM partapp_item",
                    [late],
                )
        failures: list[BaseException] = []

        def convert() -> None:
            try:
                self.convert(shop, kind)
            except BaseException as error:  # reported by the assertion below
                failures.append(error)
            finally:
                connection.close()

        converter = threading.Thread(target=convert)
        converter.start()
        try:
            assert wait_for_a_blocked_session(), "the conversion never waited for the writer"
        finally:
            writer.commit()
            writer.close()
            converter.join(60)

        assert failures == []
        assert list(model._default_manager.order_by("id").values_list("id", flat=True)) == sorted(
            [*rows, late]
        )

    @pytest.mark.skipif(not POSTGRESQL, reason="MariaDB refuses FKs next to partitioned tables")
    def test_foreign_keys_still_refuse_orphans(self, shop: dict[str, type[models.Model]]) -> None:
        fill(shop)
        self.convert(shop)
        Item, Line = shop["item"], shop["line"]
        owner_id = shop["owner"]._default_manager.get().pk

        with pytest.raises(IntegrityError):  # into the partitioned table
            Item._default_manager.create(owner_id=owner_id + 1, label="orphan")
        with pytest.raises(IntegrityError):  # from it to itself
            Item._default_manager.create(owner_id=owner_id, parent_id=12345, label="orphan")
        with pytest.raises(IntegrityError):  # into it from a plain table
            Line._default_manager.create(item_id=12345)
        with pytest.raises(IntegrityError), connection.cursor() as cursor:  # removing a target
            cursor.execute("DELETE FROM partapp_item")

    def test_remove_constraint_restores_a_plain_table(
        self, shop: dict[str, type[models.Model]]
    ) -> None:
        rows = fill(shop)
        before = names("partapp_item")
        self.convert(shop)

        with connection.schema_editor() as editor:
            editor.remove_constraint(shop["item"], self.declared)

        backend = backend_for(connection)
        assert backend is not None
        assert not backend.is_partitioned(connection, "partapp_item")
        assert backend.partitions(connection, "partapp_item") == []
        assert items(shop) == rows
        assert names("partapp_item") == before
        assert partition_tables() == []

    def test_second_conversion_only_adds_missing_partitions(
        self, shop: dict[str, type[models.Model]]
    ) -> None:
        # Partitioned beforehand (by the online conversion) and migrated later: no rebuild.
        rows = fill(shop)
        self.convert(shop)
        backend = backend_for(connection)
        assert backend is not None
        first = backend.partitions(connection, "partapp_item")

        longer = SnowflakePartitions(name="item_by_month", interval="month", ahead=4)
        with connection.schema_editor() as editor:
            editor.add_constraint(shop["item"], longer)

        after = backend.partitions(connection, "partapp_item")
        assert items(shop) == rows
        if POSTGRESQL:
            assert [p.name for p in after[:-1]] == [
                *(p.name for p in first[:-1]),
                *(f"partapp_item_{s.suffix}" for s in longer.spans()[-2:]),
            ]
        else:
            assert [p.name for p in after] == [p.name for p in first]

    def test_through_the_migration_operation(self, shop: dict[str, type[models.Model]]) -> None:
        rows = fill(shop)
        state = ProjectState(real_apps=set())
        for model in shop.values():
            state.add_model(ModelState.from_model(model))
        operation = migrations.AddConstraint("item", self.declared)
        after = state.clone()
        operation.state_forwards("partapp", after)

        with connection.schema_editor() as editor:
            operation.database_forwards("partapp", editor, state, after)
        assert backend_for(connection).is_partitioned(connection, "partapp_item")  # type: ignore[union-attr]
        with connection.schema_editor() as editor:
            operation.database_backwards("partapp", editor, after, state)

        assert not backend_for(connection).is_partitioned(connection, "partapp_item")  # type: ignore[union-attr]
        assert items(shop) == rows


PG_BEFORE = "partapp_item_before"


def wait_for_a_blocked_session(seconds: float = 10) -> bool:
    if POSTGRESQL:
        query = (
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE wait_event_type = 'Lock' AND datname = current_database()"
        )
    else:
        query = (
            "SELECT count(*) FROM information_schema.PROCESSLIST "
            "WHERE STATE LIKE 'Waiting for table metadata lock%'"
        )
    deadline = time.monotonic() + seconds
    with connection.cursor() as cursor:
        while time.monotonic() < deadline:
            cursor.execute(query)
            if cursor.fetchone()[0]:
                return True
            time.sleep(0.05)
    return False


def catch_all_name() -> str:
    return "partapp_item_default" if POSTGRESQL else "pmax"


def partition_counts(table: str) -> dict[str, int]:
    backend = backend_for(connection)
    assert backend is not None
    counts = {}
    with connection.cursor() as cursor:
        for found in backend.partitions(connection, table):
            if POSTGRESQL:
                cursor.execute(f'SELECT count(*) FROM "{found.name}"')
            else:
                cursor.execute(f"SELECT count(*) FROM `{table}` PARTITION (`{found.name}`)")
            counts[found.name] = cursor.fetchone()[0]
    return counts


def analysed(table: str) -> bool:
    with connection.cursor() as cursor:
        cursor.execute("SELECT count(*) FROM pg_stats WHERE tablename = %s", [table])
        return bool(cursor.fetchone()[0])


def partition_tables() -> list[str]:
    with connection.cursor() as cursor:
        tables = connection.introspection.table_names(cursor)
    return [t for t in tables if t.startswith("partapp_item_")]


@needs_partitions
@pytest.mark.django_db
def test_migrate_partitioned_the_test_app() -> None:
    backend = backend_for(connection)
    assert backend is not None
    for model, declared in partitioned_models():
        found = backend.partitions(connection, model._meta.db_table)
        spans = declared.spans()
        assert [p.high for p in found] == [spans[0].low, *(s.high for s in spans), None]
    assert not backend.is_partitioned(connection, Sensor._meta.db_table)
    assert not backend.is_partitioned(connection, EventNote._meta.db_table)


@needs_partitions
@pytest.mark.django_db(transaction=True)
def test_migrating_back_and_forth() -> None:
    backend = backend_for(connection)
    assert backend is not None
    out = StringIO()

    call_command("migrate", "partapp", "zero", stdout=out)
    with connection.cursor() as cursor:
        left = [t for t in connection.introspection.table_names(cursor) if "partapp_" in t]
    call_command("migrate", "partapp", stdout=out)

    assert left == []
    assert len(backend.partitions(connection, "partapp_event")) == 6
    assert len(backend.partitions(connection, "partapp_reading")) == 5


@pytest.mark.skipif(PARTITIONING, reason="the no-op of databases that cannot partition")
class TestNoOp:
    @pytest.mark.django_db(transaction=True)
    def test_no_sql(self) -> None:
        declared = SnowflakePartitions(name="p")
        with connection.schema_editor(collect_sql=True) as editor:
            assert declared.create_sql(Event, editor) is None
            assert declared.remove_sql(Event, editor) is None
            declared.constraint_sql(Event, editor)
            assert editor.deferred_sql == []
            editor.add_constraint(Event, declared)
            editor.remove_constraint(Event, declared)
        # SQLite's schema editor remakes the table for any constraint (copying the rows, as for
        # a CheckConstraint), so there is SQL; none of it is the declaration's.
        assert not any("PARTITION" in sql.upper() for sql in editor.collected_sql)
        with connection.schema_editor(collect_sql=True) as editor:
            editor.create_model(Event)
        assert editor.collected_sql == [
            sql for sql in editor.collected_sql if sql.startswith("CREATE ")
        ]

    @pytest.mark.django_db(transaction=True)
    def test_create_and_use_the_table(self, shop: dict[str, type[models.Model]]) -> None:
        with connection.schema_editor(collect_sql=True) as editor:
            editor.create_model(Event)
        assert "PARTITION" not in " ".join(editor.collected_sql).upper()

        rows = fill(shop)
        with connection.schema_editor() as editor:
            editor.add_constraint(shop["item"], SnowflakePartitions(name="p"))
        assert items(shop) == rows

    @pytest.mark.django_db
    def test_migrated_test_app_works(self) -> None:
        sensor = Sensor.objects.create(name="s")
        Reading.objects.create(sensor=sensor, value=1.5, event=Event.objects.create(kind="k"))

        assert Reading.objects.get().event == Event.objects.get()
