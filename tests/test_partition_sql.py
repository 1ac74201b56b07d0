from __future__ import annotations

import datetime as dt
import itertools
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest
from django.db import DatabaseError, OperationalError, connection, connections, models
from django.test.utils import isolate_apps

from django_flakeid import conf, partition_base, pg_introspection
from django_flakeid.fields import SnowflakeField
from django_flakeid.intervals import Span, span_at, spans_from
from django_flakeid.partition_sql import (
    MariaDBPartitions,
    Partition,
    PartitionBackend,
    PostgresPartitions,
    backend_for,
)
from django_flakeid.partitions import SnowflakePartitions

UTC = dt.timezone.utc
POSTGRESQL = connection.vendor == "postgresql"
# Known without a query: the suite runs MySQL's backend only against MariaDB.
PARTITIONING = connection.vendor in {"postgresql", "mysql"}
pytestmark = pytest.mark.skipif(
    not PARTITIONING, reason="only PostgreSQL and MariaDB partition tables"
)


def month(year: int, number: int) -> Span:
    return span_at(conf.get_layout(), "month", dt.datetime(year, number, 1, tzinfo=UTC))


def first_id(year: int, number: int, day: int = 1) -> int:
    return conf.get_layout().min_id_at(dt.datetime(year, number, day, tzinfo=UTC))


def backend() -> PartitionBackend:
    found = backend_for(connection)
    assert found is not None
    return found


def name(suffix: str) -> str:
    # PostgreSQL partitions are tables named after theirs; MariaDB's are names within it.
    return f"partapp_log_{suffix}" if POSTGRESQL else suffix


CATCH_ALL = "default" if POSTGRESQL else "pmax"


def counts() -> dict[str, int]:
    """Rows per partition of the log table, counted (not estimated)."""
    found = {}
    with connection.cursor() as cursor:
        for part in backend().partitions(connection, "partapp_log"):
            if POSTGRESQL:
                cursor.execute(f'SELECT count(*) FROM "{part.name}"')
            else:
                cursor.execute(f"SELECT count(*) FROM partapp_log PARTITION (`{part.name}`)")
            found[part.name] = cursor.fetchone()[0]
    return found


def analyse() -> None:
    with connection.cursor() as cursor:
        if POSTGRESQL:
            cursor.execute("ANALYZE partapp_log")
        else:
            cursor.execute("ANALYZE TABLE partapp_log")
            cursor.fetchall()


@pytest.fixture
def log(transactional_db: None) -> Iterator[type[models.Model]]:
    """A table made by CreateModel with month partitions: the one this month, one more."""
    with isolate_apps("tests.partapp"):

        class Log(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)
            note = models.CharField(max_length=20, blank=True)
            # A default of the database's own makes CREATE TABLE take parameters, and Django
            # then asks for the declaration's SQL another way (create_sql, deferred).
            kind = models.CharField(max_length=10, db_default="info")

            class Meta:
                app_label = "partapp"
                constraints = (SnowflakePartitions(name="log_by_month", ahead=1),)

    with connection.schema_editor() as editor:
        editor.create_model(Log)
    try:
        yield Log
    finally:
        with connection.cursor() as cursor:
            tables = connection.introspection.table_names(cursor)
        with connection.schema_editor() as editor:
            for table in tables:
                if table.startswith("partapp_log_"):  # partitions detached by a test
                    editor.execute(f"DROP TABLE {editor.quote_name(table)}")
            editor.delete_model(Log)


def now_spans() -> list[Span]:
    return SnowflakePartitions(name="x", ahead=1).spans()


class TestBackendFor:
    def test_this_database(self) -> None:
        expected = PostgresPartitions if POSTGRESQL else MariaDBPartitions
        assert isinstance(backend_for(connection), expected)

    @pytest.mark.parametrize(
        "fake",
        [
            SimpleNamespace(vendor="sqlite"),
            SimpleNamespace(vendor="mysql", mysql_is_mariadb=False),
            SimpleNamespace(vendor="oracle"),
        ],
    )
    def test_others_cannot(self, fake: Any) -> None:
        assert backend_for(fake) is None


def test_catch_all_is_the_open_high_end() -> None:
    assert Partition("d", None, None, 0).catch_all
    assert Partition("pmax", 5, None, 0).catch_all
    assert not Partition("before", None, 5, 0).catch_all


@pytest.mark.django_db(transaction=True)
class TestPartitions:
    def test_made_by_create_model(self, log: type[models.Model]) -> None:
        spans = now_spans()

        found = backend().partitions(connection, "partapp_log")

        assert [(p.name, p.low, p.high) for p in found] == [
            (name("before"), None, spans[0].low),
            (name(spans[0].suffix), spans[0].low, spans[0].high),
            (name(spans[1].suffix), spans[1].low, spans[1].high),
            (name(CATCH_ALL), None if POSTGRESQL else spans[1].high, None),
        ]
        assert backend().is_partitioned(connection, "partapp_log")

    def test_plain_and_missing_tables(self) -> None:
        assert backend().partitions(connection, "partapp_sensor") == []
        assert not backend().is_partitioned(connection, "partapp_sensor")
        assert backend().partitions(connection, "no_such_table") == []
        assert not backend().is_partitioned(connection, "no_such_table")

    def test_row_estimates(self, log: type[models.Model]) -> None:
        spans = now_spans()
        log._default_manager.bulk_create(log(id=spans[0].low + n) for n in range(30))
        log._default_manager.bulk_create(log(id=first_id(2020, 1) + n) for n in range(4))
        analyse()

        rows = {p.name: p.rows for p in backend().partitions(connection, "partapp_log")}

        assert rows[name(spans[0].suffix)] == 30
        assert rows[name("before")] == 4
        assert rows[name(CATCH_ALL)] == 0

    def test_create_partitions_sql_on_an_empty_table(self, log: type[models.Model]) -> None:
        spans = spans_from(conf.get_layout(), "week", dt.datetime(2026, 3, 4, tzinfo=UTC), 2)
        with connection.cursor() as cursor:
            if POSTGRESQL:
                cursor.execute(
                    "CREATE TABLE partapp_log_w (id bigint PRIMARY KEY) PARTITION BY RANGE (id)"
                )
            else:
                cursor.execute("CREATE TABLE partapp_log_w (id bigint PRIMARY KEY)")
            for statement in backend().create_partitions_sql("partapp_log_w", "id", spans):
                cursor.execute(statement)

        found = backend().partitions(connection, "partapp_log_w")

        assert [p.high for p in found] == [spans[0].low, spans[0].high, spans[1].high, None]
        assert spans[0].suffix == "p20260302"  # weeks start on Monday
        if POSTGRESQL:
            assert [p.name for p in found] == [
                "partapp_log_w_before",
                "partapp_log_w_p20260302",
                "partapp_log_w_p20260309",
                "partapp_log_w_default",
            ]


@pytest.mark.django_db(transaction=True)
class TestAdd:
    def fill_catch_all(self, log: type[models.Model]) -> list[int]:
        # Past the newest partition (next month): rows the catch-all takes.
        ids = [first_id(2027, 2, 3), first_id(2027, 3, 9) + 1, first_id(2027, 5, 1) + 2]
        log._default_manager.bulk_create(log(id=i, note=str(i)) for i in ids)
        return ids

    def test_moves_rows_out_of_the_catch_all(self, log: type[models.Model]) -> None:
        ids = self.fill_catch_all(log)
        assert counts()[name(CATCH_ALL)] == 3
        analyse()
        assert backend().partitions(connection, "partapp_log")[-1].rows == 3

        backend().add(connection, "partapp_log", [month(2027, 1), month(2027, 2), month(2027, 3)])

        found = counts()
        assert found[name("p20270101")] == 0
        assert found[name("p20270201")] == 1
        assert found[name("p20270301")] == 1
        assert found[name(CATCH_ALL)] == 1
        assert sorted(log._default_manager.values_list("id", flat=True)) == ids
        # The estimates follow at once: the command warns of a catch-all holding rows.
        assert backend().partitions(connection, "partapp_log")[-1].rows == 1
        if POSTGRESQL:  # and the planner knows the new partition
            with connection.cursor() as cursor:
                cursor.execute(
                    "SELECT count(*) FROM pg_stats WHERE tablename = %s", [name("p20270301")]
                )
                assert cursor.fetchone()[0] > 0
        assert log._default_manager.filter(id=ids[1], note=str(ids[1])).exists()

    def test_new_partitions_are_contiguous_and_estimated(self, log: type[models.Model]) -> None:
        self.fill_catch_all(log)

        # A gap after the newest partition (next month) is closed by the new one.
        backend().add(connection, "partapp_log", [month(2027, 3)])

        found = backend().partitions(connection, "partapp_log")
        ranged = [p for p in found if p.low is not None and not p.catch_all]
        assert all(a.high == b.low for a, b in itertools.pairwise(ranged))
        assert found[-2].name == name("p20270301")
        assert (found[-2].low, found[-2].high) == (now_spans()[-1].high, month(2027, 3).high)
        assert counts()[name("p20270301")] == 2
        if POSTGRESQL:  # analysed right away, so the estimate is the count
            assert found[-2].rows == 2

    def test_spans_covered_by_an_earlier_one_are_skipped(self, log: type[models.Model]) -> None:
        backend().add(connection, "partapp_log", [month(2027, 3), month(2027, 1), month(2027, 3)])

        found = backend().partitions(connection, "partapp_log")
        assert [p.name for p in found][-2:] == [name("p20270301"), name(CATCH_ALL)]
        assert found[-2].high == month(2027, 3).high

    def test_is_idempotent(self, log: type[models.Model]) -> None:
        spans = [month(2027, 1), month(2027, 2)]
        backend().add(connection, "partapp_log", spans)
        before = backend().partitions(connection, "partapp_log")

        backend().add(connection, "partapp_log", spans)
        backend().add(connection, "partapp_log", now_spans())
        backend().add(connection, "partapp_log", [])

        assert backend().partitions(connection, "partapp_log") == before

    def test_rows_keep_landing_in_the_right_partition(self, log: type[models.Model]) -> None:
        backend().add(connection, "partapp_log", [month(2027, 1)])

        log._default_manager.create(id=first_id(2027, 1, 15))
        log._default_manager.create(id=first_id(2027, 6, 1))

        found = counts()
        assert found[name("p20270101")] == 1
        assert found[name(CATCH_ALL)] == 1


@pytest.mark.django_db(transaction=True)
class TestDrop:
    def test_drop_takes_the_rows(self, log: type[models.Model]) -> None:
        spans = now_spans()
        log._default_manager.create(id=spans[0].low)
        log._default_manager.create(id=spans[1].low)
        part = backend().partitions(connection, "partapp_log")[1]

        assert backend().drop(connection, "partapp_log", part) is None

        assert list(log._default_manager.values_list("id", flat=True)) == [spans[1].low]
        assert part.name not in [p.name for p in backend().partitions(connection, "partapp_log")]
        with connection.cursor() as cursor:
            assert part.name not in connection.introspection.table_names(cursor)

    def test_detach_keeps_them_in_a_table(self, log: type[models.Model]) -> None:
        spans = now_spans()
        log._default_manager.create(id=spans[0].low, note="kept")
        log._default_manager.create(id=spans[1].low)
        part = backend().partitions(connection, "partapp_log")[1]

        kept = backend().drop(connection, "partapp_log", part, detach=True)

        assert kept == f"partapp_log_{spans[0].suffix}"
        assert log._default_manager.count() == 1
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, note FROM {connection.ops.quote_name(kept)}")
            assert list(cursor.fetchall()) == [(spans[0].low, "kept")]

    def test_the_catch_all_is_kept(self, log: type[models.Model]) -> None:
        catch_all = backend().partitions(connection, "partapp_log")[-1]

        with pytest.raises(ValueError, match="the catch-all partition is kept"):
            backend().drop(connection, "partapp_log", catch_all)

    def test_waits_for_a_reader_and_tries_again(
        self, log: type[models.Model], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        # A reader holding the table makes the first attempt time out; it finishes while the
        # drop waits to try again, and the second attempt gets through.
        monkeypatch.setattr(partition_base, "LOCK_TIMEOUT_SECONDS", 1)
        reader = connections.create_connection("default")
        reader.set_autocommit(False)
        with reader.cursor() as cursor:
            cursor.execute("SELECT count(*) FROM partapp_log")
        waits: list[float] = []

        def sleep(seconds: float) -> None:
            waits.append(seconds)
            reader.rollback()

        monkeypatch.setattr(partition_base, "_wait", sleep)
        part = backend().partitions(connection, "partapp_log")[1]
        try:
            backend().drop(connection, "partapp_log", part)
        finally:
            reader.close()

        assert waits == [0.5]
        assert part not in backend().partitions(connection, "partapp_log")

    def test_gives_up_after_a_few_attempts(
        self, log: type[models.Model], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setattr(partition_base, "LOCK_TIMEOUT_SECONDS", 1)
        waits: list[float] = []
        monkeypatch.setattr(partition_base, "_wait", waits.append)
        reader = connections.create_connection("default")
        reader.set_autocommit(False)
        part = backend().partitions(connection, "partapp_log")[1]
        try:
            with reader.cursor() as cursor:
                cursor.execute("SELECT count(*) FROM partapp_log")
            with pytest.raises(OperationalError):
                backend().drop(connection, "partapp_log", part)
        finally:
            reader.rollback()
            reader.close()

        assert waits == [0.5, 1.0]
        assert part in backend().partitions(connection, "partapp_log")


def test_other_errors_are_not_retried(monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []

    def fails() -> None:
        calls.append(1)
        raise OperationalError(1146, "no such table")

    monkeypatch.setattr(partition_base, "_wait", lambda seconds: None)
    with pytest.raises(OperationalError):
        partition_base.with_retries(fails, {"1205"})
    assert calls == [1]


# The schema editor next to a partitioned table with real foreign keys (PostgreSQL only).


@pytest.fixture
def pointed_at(transactional_db: None) -> Iterator[dict[str, type[models.Model]]]:
    with isolate_apps("tests.partapp"):

        class Target(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)

            class Meta:
                app_label = "partapp"
                constraints = (SnowflakePartitions(name="target_by_month", ahead=1),)

        class Pointer(models.Model):  # noqa: DJ008 - made for a test, never shown
            id = SnowflakeField(primary_key=True)
            target = models.ForeignKey(Target, models.CASCADE, null=True)

            class Meta:
                app_label = "partapp"

    made = {"target": Target, "pointer": Pointer}
    with connection.schema_editor() as editor:
        for model in made.values():
            editor.create_model(model)
    try:
        yield made
    finally:
        with connection.schema_editor() as editor:
            editor.delete_model(made["pointer"])
            editor.delete_model(made["target"])


def foreign_keys(table: str) -> list[str]:
    with connection.cursor() as cursor:
        found = connection.introspection.get_constraints(cursor, table)
    return [name for name, info in found.items() if info["foreign_key"]]


@pytest.mark.skipif(not POSTGRESQL, reason="MariaDB refuses FKs to a partitioned table")
@pytest.mark.django_db(transaction=True)
class TestIntrospection:
    def test_one_foreign_key_per_column(self, pointed_at: dict[str, Any]) -> None:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT count(*) FROM pg_constraint WHERE conrelid = 'partapp_pointer'::regclass "
                "AND contype = 'f'"
            )
            stored = cursor.fetchone()[0]

        assert stored == 5  # the declared key and one copy per partition
        assert len(foreign_keys("partapp_pointer")) == 1

    def test_alter_field_drops_the_key(self, pointed_at: dict[str, Any]) -> None:
        pointer = pointed_at["pointer"]
        old = pointer._meta.get_field("target")
        new = models.ForeignKey(
            pointed_at["target"], models.CASCADE, null=True, db_constraint=False
        )
        new.set_attributes_from_name("target")
        new.model = pointer

        with connection.schema_editor() as editor:
            editor.alter_field(pointer, old, new)

        assert foreign_keys("partapp_pointer") == []

    def test_remove_field(self, pointed_at: dict[str, Any]) -> None:
        pointer = pointed_at["pointer"]

        with connection.schema_editor() as editor:
            editor.remove_field(pointer, pointer._meta.get_field("target"))

        assert foreign_keys("partapp_pointer") == []

    def test_without_the_fix_django_fails(
        self, pointed_at: dict[str, Any], monkeypatch: pytest.MonkeyPatch
    ) -> None:
        introspection = type(connection.introspection)
        original = introspection.get_constraints.__wrapped__  # type: ignore[attr-defined]
        monkeypatch.setattr(introspection, "get_constraints", original)
        pointer = pointed_at["pointer"]
        old = pointer._meta.get_field("target")
        new = models.ForeignKey(
            pointed_at["target"], models.CASCADE, null=True, db_constraint=False
        )
        new.set_attributes_from_name("target")

        # Each drops the declared key, which takes its copies along, then a copy: gone already.
        with pytest.raises(DatabaseError, match="does not exist"), connection.schema_editor() as e:
            e.alter_field(pointer, old, new)
        with pytest.raises(DatabaseError, match="does not exist"), connection.schema_editor() as e:
            e.remove_field(pointer, old)

    def test_installed_on_every_new_connection(self, monkeypatch: pytest.MonkeyPatch) -> None:
        introspection = type(connection.introspection)
        fixed = introspection.get_constraints
        monkeypatch.setattr(introspection, "get_constraints", fixed.__wrapped__)  # type: ignore[attr-defined]
        other = connections.create_connection("default")
        try:
            other.ensure_connection()
        finally:
            other.close()

        assert introspection.get_constraints is not fixed
        assert introspection.get_constraints.leaves_out_partition_clones  # type: ignore[attr-defined]

    def test_fixing_twice_changes_nothing(self) -> None:
        introspection = type(connection.introspection)
        fixed = introspection.get_constraints

        pg_introspection.install()
        pg_introspection.leave_out_partition_clones(introspection)

        assert introspection.get_constraints is fixed
