"""Converting a table with rows into a partitioned one, while another connection writes to it."""

from __future__ import annotations

import datetime as dt
import itertools
import random
import threading
import time
from collections.abc import Iterator
from typing import Any, ClassVar

import pytest
from django.apps.registry import Apps
from django.db import DatabaseError, IntegrityError, connection, connections, models, transaction
from django.db.migrations.operations import AddConstraint
from django.db.migrations.state import ModelState, ProjectState
from django.db.models import F
from django.utils import timezone

from django_flakeid import conf
from django_flakeid.fields import SnowflakeField
from django_flakeid.intervals import interval_start, next_start
from django_flakeid.partition_convert import ConversionError, ConversionResult, convert
from django_flakeid.partition_sql import Partition, backend_for
from django_flakeid.partitions import SnowflakePartitions
from django_flakeid.progress import Progress

needs_partitions = pytest.mark.skipif(
    connection.vendor == "sqlite", reason="SQLite has no partitioned tables"
)
postgres_only = pytest.mark.skipif(
    connection.vendor != "postgresql", reason="the online conversion is PostgreSQL's"
)
MARIADB = connection.vendor == "mysql"

# Models of their own registry: their tables are made and dropped by the tests, never by migrate.
_apps = Apps()


class Item(models.Model):
    id = SnowflakeField(primary_key=True)
    kind = models.CharField(max_length=20, db_index=True)
    count = models.IntegerField(default=0)

    # Declared: the type checker adds managers to the installed apps' models only.
    objects: ClassVar[models.Manager[Item]] = models.Manager()

    class Meta:
        apps = _apps
        app_label = "convert"
        db_table = "convert_item"

    def __str__(self) -> str:
        return self.kind


class Note(models.Model):
    id = SnowflakeField(primary_key=True)
    # InnoDB refuses foreign keys to a partitioned table.
    item = models.ForeignKey(Item, on_delete=models.CASCADE, db_constraint=not MARIADB)

    objects: ClassVar[models.Manager[Note]] = models.Manager()

    class Meta:
        apps = _apps
        app_label = "convert"
        db_table = "convert_note"

    def __str__(self) -> str:
        return str(self.pk)


class Shape(models.Model):
    id = SnowflakeField(primary_key=True)

    class Meta:
        apps = _apps
        app_label = "convert"
        db_table = "convert_shape"
        managed = False

    def __str__(self) -> str:
        return str(self.pk)


BY_MONTH = SnowflakePartitions(name="convert_item_by_month", interval="month", ahead=1)
# Tables that refer to others first: MariaDB drops no table another one's foreign key needs.
LEFTOVERS = [
    "convert_note",
    "convert_item_reader",
    "convert_item",
    "convert_item_unpartitioned",
    "convert_item_partitioned",
    "convert_shape",
    "convert_shape_unpartitioned",
    "convert_shape_partitioned",
    "convert_shape_parent",
]


def months_ago(count: int) -> dt.datetime:
    moment = interval_start(timezone.now(), "month")
    for _ in range(count):
        moment = interval_start(moment - dt.timedelta(days=1), "month")
    return moment


class Ids:
    """IDs made in chosen months: in the past, now, ahead, and far past every partition."""

    def __init__(self) -> None:
        layout = conf.get_layout()
        now = timezone.now()
        next_month = next_start(interval_start(now, "month"), "month") + dt.timedelta(days=1)
        moments = [months_ago(14), months_ago(2), now, next_month, now + dt.timedelta(days=800)]
        self.bases = [layout.min_id_at(moment) for moment in moments]
        self.made = 0
        self.lock = threading.Lock()

    def next(self, where: int | None = None) -> int:
        with self.lock:
            self.made += 1
            base = self.bases[self.made % len(self.bases) if where is None else where]
            return base + self.made


def drop_leftovers() -> None:
    with connection.cursor() as cursor:
        for table in LEFTOVERS:
            cascade = "" if MARIADB else " CASCADE"
            cursor.execute(f"DROP TABLE IF EXISTS {connection.ops.quote_name(table)}{cascade}")
        if connection.vendor == "postgresql":
            for function in ["convert_item_mirror", "convert_shape_mirror", "convert_item_audit"]:
                cursor.execute(f"DROP FUNCTION IF EXISTS {function}() CASCADE")


@pytest.fixture
def tables(transactional_db: None) -> Iterator[Ids]:
    drop_leftovers()
    with connection.schema_editor() as editor:
        editor.create_model(Item)
        editor.create_model(Note)
    ids = Ids()
    Item.objects.bulk_create(
        Item(id=ids.next(), kind=f"k{number % 7}", count=number) for number in range(1500)
    )
    yield ids
    connections.close_all()
    drop_leftovers()


def table_state() -> dict[int, tuple[str, int]]:
    return {
        pk: (kind, count) for pk, kind, count in Item.objects.values_list("pk", "kind", "count")
    }


def index_names(table: str) -> set[str]:
    if MARIADB:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT DISTINCT index_name FROM information_schema.statistics "
                "WHERE table_schema = DATABASE() AND table_name = %s",
                [table],
            )
            return {row[0] for row in cursor.fetchall()}
    with connection.cursor() as cursor:
        cursor.execute("SELECT indexname FROM pg_indexes WHERE tablename = %s", [table])
        return {row[0] for row in cursor.fetchall()}


class Interrupted(Exception):
    pass


def is_partitioned(table: str) -> bool:
    backend = backend_for(connection)
    assert backend is not None
    return backend.is_partitioned(connection, table)


def partitions(table: str) -> list[Partition]:
    backend = backend_for(connection)
    assert backend is not None
    return backend.partitions(connection, table)


class Writer(threading.Thread):
    """Inserts, updates, re-keys and deletes rows on a connection of its own, and keeps the
    table as it should be after each statement committed."""

    def __init__(self, ids: Ids, expected: dict[int, tuple[str, int]]) -> None:
        super().__init__(daemon=True)
        self.ids = ids
        self.expected = expected
        self.random = random.Random(14)
        self.done = 0
        self.stop = threading.Event()
        self.errors: list[BaseException] = []
        self.cond = threading.Condition()

    def run(self) -> None:
        after_stop = 0
        try:
            while after_stop < 30:
                self.step()
                with self.cond:
                    self.done += 1
                    self.cond.notify_all()
                if self.stop.is_set():
                    after_stop += 1
        except BaseException as error:
            self.errors.append(error)
        finally:
            connections.close_all()
            with self.cond:
                self.done = 10**9
                self.cond.notify_all()

    def step(self) -> None:
        choice = self.random.random()
        keys = list(self.expected)
        if choice < 0.35 or not keys:
            pk = self.ids.next()
            Item.objects.create(id=pk, kind="new", count=0)
            self.expected[pk] = ("new", 0)
            return
        pk = self.random.choice(keys)
        count = self.expected[pk][1]
        if choice < 0.75:
            Item.objects.filter(pk=pk).update(kind=f"u{self.done % 100}", count=F("count") + 1)
            self.expected[pk] = (f"u{self.done % 100}", count + 1)
        elif choice < 0.85:
            # A key that changes moves the row to another partition, or the mirror's row.
            moved = self.ids.next()
            with connection.cursor() as cursor:
                cursor.execute("UPDATE convert_item SET id = %s WHERE id = %s", [moved, pk])
            self.expected[moved] = self.expected.pop(pk)
        else:
            Item.objects.filter(pk=pk).delete()
            del self.expected[pk]

    def wait_for(self, steps: int) -> None:
        """Let the writer commit ``steps`` more statements: they land between two batches."""
        with self.cond:
            target = self.done + steps
            assert self.cond.wait_for(lambda: self.done >= target, timeout=30)


@needs_partitions
def test_a_live_writer_loses_nothing_and_duplicates_nothing(tables: Ids) -> None:
    indexes = index_names("convert_item")
    expected = table_state()
    writer = Writer(tables, expected)
    reports: list[Progress] = []

    def progress(report: Progress) -> None:
        reports.append(report)
        writer.wait_for(3)

    writer.start()
    try:
        result = convert(
            connection, Item, BY_MONTH, conf.get_layout(), batch_size=160, progress=progress
        )
    finally:
        writer.stop.set()
        writer.join(60)
    assert not writer.errors
    assert not writer.is_alive()

    assert is_partitioned("convert_item")
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*), COUNT(DISTINCT id) FROM convert_item")
        assert cursor.fetchone() == (len(expected), len(expected))
    assert table_state() == expected
    assert index_names("convert_item") == indexes
    # Copied a batch at a time, from nothing to every row it read.
    assert len(reports) >= (2 if MARIADB else 10)
    assert reports[0].done == 0
    assert [r.done for r in reports] == sorted(r.done for r in reports)
    assert reports[-1].done == result.rows >= 1500
    assert result.table == "convert_item"
    if MARIADB:
        assert result.kept is None
    else:
        assert result.kept == "convert_item_unpartitioned"
        assert result.attempts == 1
        assert 0 < result.lock_seconds < result.seconds
        assert index_names("convert_item_unpartitioned") == {
            f"{name}_unpartitioned" for name in indexes
        }


@needs_partitions
def test_rows_land_in_the_partitions_of_their_time(tables: Ids) -> None:
    convert(connection, Item, BY_MONTH, conf.get_layout())

    found = partitions("convert_item")
    ends = ["before", "pmax"] if MARIADB else ["convert_item_before", "convert_item_default"]
    assert [found[0].name, found[-1].name] == ends
    # before, the current month, the one ahead, the catch-all: each holds rows of its own.
    assert len(found) == 4
    for partition in found:
        low = -(2**63) if partition.low is None else partition.low
        high = 2**63 if partition.high is None else partition.high
        outside = Item.objects.exclude(pk__gte=low, pk__lt=high)
        if MARIADB:
            sql = f"SELECT id FROM convert_item PARTITION (`{partition.name}`)"
        else:
            sql = f'SELECT id FROM "{partition.name}"'
        with connection.cursor() as cursor:
            cursor.execute(sql)
            held = {row[0] for row in cursor.fetchall()}
        assert held
        assert held.isdisjoint(outside.values_list("pk", flat=True))


@postgres_only
def test_a_row_deleted_while_its_batch_is_copied_stays_deleted(tables: Ids) -> None:
    """The delete commits after the batch read the row: the batch must not bring it back."""
    expected = table_state()
    first = min(expected)
    del expected[first]
    deleting = threading.Event()
    copied = threading.Event()

    def delete_the_first_row() -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("DELETE FROM convert_item WHERE id = %s", [first])
            deleting.set()
            # Commit once the batch waits for this row, or has gone past it.
            for _ in range(3000):
                cursor.execute("SELECT EXISTS (SELECT 1 FROM pg_locks WHERE NOT granted)")
                if copied.is_set() or cursor.fetchone() == (True,):
                    break
                time.sleep(0.01)
        connections.close_all()

    deleter = threading.Thread(target=delete_the_first_row)

    def progress(report: Progress) -> None:
        if report.done == 0:
            deleter.start()
            assert deleting.wait(30)
        else:
            copied.set()
            deleter.join(60)

    convert(connection, Item, BY_MONTH, conf.get_layout(), batch_size=100, progress=progress)

    assert table_state() == expected


@postgres_only
def test_foreign_keys_from_other_tables_hold_after_the_swap(tables: Ids) -> None:
    item = Item.objects.first()
    assert item is not None
    Note.objects.create(id=tables.next(), item=item)

    convert(connection, Item, BY_MONTH, conf.get_layout())

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT conname, confrelid::regclass::text, convalidated FROM pg_constraint "
            "WHERE conrelid = 'convert_note'::regclass AND contype = 'f' AND conparentid = 0"
        )
        ((name, target, validated),) = cursor.fetchall()
    assert target == "convert_item"
    assert validated
    assert name.startswith("convert_note_item_id_")
    with pytest.raises(IntegrityError), transaction.atomic():
        Note.objects.create(id=tables.next(), item_id=12345)
    with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
        cursor.execute("DELETE FROM convert_item WHERE id = %s", [item.pk])
    # The kept table is no one's target any more: its rows can go.
    with connection.cursor() as cursor:
        cursor.execute("DELETE FROM convert_item_unpartitioned")
    assert Note.objects.get().item_id == item.pk


@needs_partitions
def test_migrate_afterwards_only_adds_the_missing_partitions(tables: Ids) -> None:
    """Converted as of two months ago; the model's AddConstraint then runs as migrate does."""
    convert(connection, Item, BY_MONTH, conf.get_layout(), now=months_ago(2))
    made = partitions("convert_item")
    rows = table_state()

    before = ProjectState()
    before.add_model(ModelState.from_model(Item))
    after = before.clone()
    operation = AddConstraint("item", BY_MONTH)
    operation.state_forwards("convert", after)
    with connection.schema_editor() as editor:
        operation.database_forwards("convert", editor, before, after)

    now = partitions("convert_item")
    assert table_state() == rows
    if MARIADB:
        # MariaDB's migrate leaves a partitioned table as it is; the command adds the rest.
        assert now == made
        return
    kept = [p for p in made if not p.catch_all]
    assert [(p.name, p.low, p.high) for p in now[: len(kept)]] == [
        (p.name, p.low, p.high) for p in kept
    ]
    added = now[len(kept) : -1]
    assert added
    assert added[0].low == kept[-1].high
    assert all(a.high == b.low for a, b in itertools.pairwise(added))
    assert added[-1].high == BY_MONTH.spans()[-1].high
    assert now[-1].catch_all


@needs_partitions
def test_migrating_back_makes_it_a_plain_table_again(tables: Ids) -> None:
    """The way back: migrate to before the AddConstraint, whose reverse removes it."""
    item = Item.objects.first()
    assert item is not None
    Note.objects.create(id=tables.next(), item=item)
    indexes = index_names("convert_item")
    convert(connection, Item, BY_MONTH, conf.get_layout())
    Item.objects.create(id=tables.next(), kind="after")
    rows = table_state()

    before = ProjectState()
    before.add_model(ModelState.from_model(Item))
    after = before.clone()
    operation = AddConstraint("item", BY_MONTH)
    operation.state_forwards("convert", after)
    with connection.schema_editor() as editor:
        operation.database_backwards("convert", editor, after, before)

    assert not is_partitioned("convert_item")
    assert table_state() == rows
    assert index_names("convert_item") == indexes
    if not MARIADB:
        with pytest.raises(IntegrityError), transaction.atomic():
            Note.objects.create(id=tables.next(), item_id=12345)


@needs_partitions
def test_a_second_conversion_is_refused(tables: Ids) -> None:
    convert(connection, Item, BY_MONTH, conf.get_layout())
    with pytest.raises(ConversionError, match=r"^convert_item is already partitioned"):
        convert(connection, Item, BY_MONTH, conf.get_layout())


def test_a_database_that_cannot_partition_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(connection, "vendor", "oracle")
    with pytest.raises(ConversionError, match="cannot partition tables: only PostgreSQL and"):
        convert(connection, Item, BY_MONTH, conf.get_layout())


@needs_partitions
@pytest.mark.parametrize(
    ("model", "declaration", "options", "message"),
    [
        (Item, None, {}, "convert.Item declares no SnowflakePartitions in Meta.constraints."),
        (Item, BY_MONTH, {"batch_size": 0}, "batch_size must be a whole number of rows"),
    ],
)
def test_what_is_refused_before_touching_the_table(
    model: type[models.Model], declaration: Any, options: dict[str, Any], message: str
) -> None:
    with pytest.raises(ConversionError, match=message):
        convert(connection, model, declaration, conf.get_layout(), **options)


class Plain(models.Model):
    id = models.BigAutoField(primary_key=True)

    class Meta:
        apps = _apps
        app_label = "convert"
        db_table = "convert_item"

    def __str__(self) -> str:
        return str(self.pk)


@needs_partitions
def test_a_key_that_is_no_snowflake_is_refused() -> None:
    with pytest.raises(ConversionError, match=r"^convert\.Plain's primary key is not a Snowf"):
        convert(connection, Plain, BY_MONTH, conf.get_layout())


@needs_partitions
@pytest.mark.django_db(transaction=True)
def test_a_missing_table_is_refused() -> None:
    with pytest.raises(ConversionError, match=r"^There is no table convert_shape: run migrate"):
        convert(connection, Shape, BY_MONTH, conf.get_layout())


@postgres_only
def test_a_failure_while_making_the_twin_leaves_nothing_behind(tables: Ids) -> None:
    with connection.cursor() as cursor:
        # Not a unique index, so let through; a partitioned table cannot have it.
        cursor.execute(
            "ALTER TABLE convert_item ADD CONSTRAINT convert_item_one_kind "
            "EXCLUDE USING btree (kind WITH =) WHERE (count < 0)"
        )
    with pytest.raises(DatabaseError, match="partition"):
        convert(connection, Item, BY_MONTH, conf.get_layout())
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT to_regclass('convert_item_partitioned'), "
            "(SELECT COUNT(*) FROM pg_trigger WHERE tgrelid = 'convert_item'::regclass "
            "AND NOT tgisinternal)"
        )
        assert cursor.fetchone() == (None, 0)


@needs_partitions
def test_a_transaction_around_it_is_refused(tables: Ids) -> None:
    with pytest.raises(ConversionError, match=r"outside transaction\.atomic"), transaction.atomic():
        convert(connection, Item, BY_MONTH, conf.get_layout())


@needs_partitions
def test_a_unique_index_without_the_key_is_refused(tables: Ids) -> None:
    with connection.cursor() as cursor:
        cursor.execute("CREATE UNIQUE INDEX convert_item_kind_count ON convert_item (kind, count)")
    with pytest.raises(ConversionError) as refused:
        convert(connection, Item, BY_MONTH, conf.get_layout())
    assert str(refused.value) == (
        "Every unique index of a partitioned table must hold its key id: "
        "convert_item_kind_count on convert_item does not. Drop it, or add id to it."
    )
    assert not is_partitioned("convert_item")


@pytest.mark.skipif(not MARIADB, reason="InnoDB's refusal of foreign keys on partitioned tables")
def test_mariadb_refuses_foreign_keys(tables: Ids) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE convert_item_reader (id bigint PRIMARY KEY, item_id bigint, "
            "CONSTRAINT convert_reader_item FOREIGN KEY (item_id) REFERENCES convert_item (id)) "
            "ENGINE=InnoDB"
        )
    with pytest.raises(ConversionError, match=r"\(convert_reader_item\)\. Give those fields"):
        convert(connection, Item, BY_MONTH, conf.get_layout())


@postgres_only
@pytest.mark.parametrize(
    ("sql", "message"),
    [
        (
            "CREATE VIEW convert_item_view AS SELECT id FROM convert_item",
            "Views read convert_item: convert_item_view. They would go on reading",
        ),
        (
            "CREATE FUNCTION convert_item_audit() RETURNS trigger LANGUAGE plpgsql AS "
            "'BEGIN RETURN NULL; END'; CREATE TRIGGER audit AFTER INSERT ON convert_item "
            "FOR EACH ROW EXECUTE FUNCTION convert_item_audit()",
            "convert_item has triggers of its own, which a conversion does not carry over: audit.",
        ),
        (
            "CREATE TABLE convert_item_child () INHERITS (convert_item)",
            "convert_item takes part in table inheritance with convert_item_child.",
        ),
        (
            "CREATE TABLE convert_item_unpartitioned (id bigint)",
            "convert_item_unpartitioned exists, kept by an earlier conversion",
        ),
        (
            "CREATE TABLE convert_item_partitioned (id bigint)",
            "convert_item_partitioned exists but is not an unfinished conversion of convert_item",
        ),
    ],
)
def test_postgresql_refuses_what_the_swap_cannot_carry(tables: Ids, sql: str, message: str) -> None:
    with connection.cursor() as cursor:
        cursor.execute(sql)
    with pytest.raises(ConversionError, match=message):
        convert(connection, Item, BY_MONTH, conf.get_layout())
    assert not is_partitioned("convert_item")
    assert index_names("convert_item_partitioned") == set()


@postgres_only
def test_an_interrupted_copy_resumes_with_the_writes_made_meanwhile(tables: Ids) -> None:
    def stop_after_two(report: Progress) -> None:
        if report.done >= 2 * 100:
            raise Interrupted

    with pytest.raises(Interrupted):
        convert(
            connection, Item, BY_MONTH, conf.get_layout(), batch_size=100, progress=stop_after_two
        )
    # The mirror goes on until the conversion is finished.
    expected = table_state()
    writer = Writer(tables, expected)
    writer.stop.set()
    writer.run()
    assert not writer.errors

    result = convert(connection, Item, BY_MONTH, conf.get_layout(), batch_size=500)

    assert table_state() == expected
    # The rows copied before are read again, and left as the mirror keeps them.
    assert result.rows == len(expected)


class LongReader(threading.Thread):
    """A transaction that has read the table and stays open: the swap cannot lock it."""

    def __init__(self) -> None:
        super().__init__(daemon=True)
        self.held = threading.Event()
        self.release = threading.Event()

    def run(self) -> None:
        with transaction.atomic(), connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM convert_item")
            self.held.set()
            self.release.wait(30)
        connections.close_all()

    def __enter__(self) -> LongReader:
        self.start()
        assert self.held.wait(30)
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release.set()
        self.join(30)


@postgres_only
def test_the_swap_is_tried_again_when_the_lock_is_not_granted_in_time(
    tables: Ids, monkeypatch: pytest.MonkeyPatch
) -> None:
    pauses: list[float] = []

    with LongReader() as reader:

        def pause(seconds: float) -> None:
            # The long transaction ends while the conversion waits to try again.
            pauses.append(seconds)
            reader.release.set()
            reader.join(30)

        monkeypatch.setattr(time, "sleep", pause)
        result = convert(
            connection, Item, BY_MONTH, conf.get_layout(), lock_timeout=0.05, attempts=3
        )

    assert result.attempts == 2
    assert len(pauses) == 1
    assert is_partitioned("convert_item")


@postgres_only
def test_a_busy_table_makes_the_swap_retry_then_give_up(tables: Ids) -> None:
    refused = pytest.raises(ConversionError, match=r"through 2 tries of 50 ms: run it again")
    with LongReader(), refused:
        convert(connection, Item, BY_MONTH, conf.get_layout(), lock_timeout=0.05, attempts=2)
    assert not is_partitioned("convert_item")
    rows = table_state()

    result = convert(connection, Item, BY_MONTH, conf.get_layout())

    assert result.attempts == 1
    assert table_state() == rows


@postgres_only
def test_what_the_table_is_made_of_comes_across(tables: Ids) -> None:
    with connection.cursor() as cursor:
        cursor.execute(
            "CREATE TABLE convert_shape_parent (id bigint PRIMARY KEY);"
            "INSERT INTO convert_shape_parent VALUES (1), (2);"
            "CREATE TABLE convert_shape ("
            " id bigint PRIMARY KEY, serial_no bigserial,"
            " ident bigint GENERATED BY DEFAULT AS IDENTITY,"
            " kind varchar(20) NOT NULL DEFAULT 'x'"
            "  CONSTRAINT convert_shape_kind CHECK (kind <> ''),"
            " doubled bigint GENERATED ALWAYS AS (serial_no * 2) STORED,"
            " parent_id bigint CONSTRAINT convert_shape_parent_fk REFERENCES convert_shape_parent,"
            " up_id bigint CONSTRAINT convert_shape_up_fk REFERENCES convert_shape"
            "  DEFERRABLE INITIALLY DEFERRED,"
            " CONSTRAINT convert_shape_id_kind UNIQUE (id, kind));"
            "CREATE INDEX convert_shape_partial ON convert_shape (kind) WHERE kind <> 'x';"
        )
        for number in range(40):
            cursor.execute(
                "INSERT INTO convert_shape (id, kind, parent_id, up_id) VALUES (%s, %s, %s, %s)",
                [tables.next(number % 3), "x" if number % 2 else "y", 1 + number % 2, None],
            )
        cursor.execute("UPDATE convert_shape SET up_id = (SELECT MIN(id) FROM convert_shape)")
        cursor.execute("SELECT * FROM convert_shape ORDER BY id")
        rows = cursor.fetchall()
    indexes = index_names("convert_shape")

    convert(connection, Shape, BY_MONTH, conf.get_layout(), batch_size=7)

    with connection.cursor() as cursor:
        cursor.execute("SELECT * FROM convert_shape ORDER BY id")
        assert cursor.fetchall() == rows
        cursor.execute(
            "SELECT conname FROM pg_constraint WHERE conrelid = 'convert_shape'::regclass "
            "AND conparentid = 0 ORDER BY 1"
        )
        assert [row[0] for row in cursor.fetchall()] == [
            "convert_shape_id_kind",
            "convert_shape_kind",
            "convert_shape_parent_fk",
            "convert_shape_pkey",
            "convert_shape_up_fk",
        ]
        cursor.execute(
            "SELECT COUNT(*) FROM pg_constraint "
            "WHERE conrelid = 'convert_shape_unpartitioned'::regclass AND contype = 'f'"
        )
        assert cursor.fetchone() == (0,)
        cursor.execute("DROP TABLE convert_shape_unpartitioned")
        cursor.execute(
            "INSERT INTO convert_shape (id) VALUES (%s) RETURNING serial_no, ident, doubled",
            [tables.next()],
        )
        assert cursor.fetchone() == (41, 41, 82)
    assert index_names("convert_shape") == indexes
    for bad in ["parent_id = 3", "up_id = 3"]:
        with pytest.raises(IntegrityError), transaction.atomic(), connection.cursor() as cursor:
            cursor.execute(f"UPDATE convert_shape SET {bad}")


@needs_partitions
def test_an_empty_table_is_converted(tables: Ids) -> None:
    Item.objects.all().delete()
    result = convert(connection, Item, BY_MONTH, conf.get_layout())
    assert result.rows == 0
    assert isinstance(result, ConversionResult)
    Item.objects.create(id=tables.next(), kind="after")
    assert Item.objects.count() == 1
