"""Turning a table that already holds rows into one partitioned by its Snowflake key.

PostgreSQL, while the table stays in use: a partitioned twin ``<table>_partitioned`` gets the
table's columns, defaults, checks, keys, indexes and foreign keys, and a trigger on the table
mirrors every insert, update, delete and truncate into it. The rows are then copied a key range
at a time, one committed batch each. The rows of a batch are locked against deletes while it
copies them and the trigger writes the newest version over an older copy, so a row changed or
deleted during the copy ends up as the table has it. One short transaction then swaps the
tables: the old one is kept as ``<table>_unpartitioned`` (yours to drop), the twin takes its
name, and foreign keys from other tables are pointed at it unchecked, then validated after the
lock is released. Only that transaction blocks readers and writers: it waits at most
``lock_timeout`` seconds for the lock and is retried, so a long transaction elsewhere delays
the swap instead of queueing everyone behind it.

MariaDB has no such path: ``ALTER TABLE ... PARTITION BY RANGE`` copies the table in place;
reads go on, writes wait until it ends.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.db import DatabaseError, models, transaction
from django.db.backends.utils import truncate_name
from django.utils import timezone

from .backfill import ProgressCallback, check_batch_size
from .errors import ConversionError
from .fields import SnowflakeField
from .intervals import spans_from
from .progress import Progress

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

    from .intervals import Span
    from .layout import Layout
    from .partition_sql import PartitionBackend
    from .partitions import SnowflakePartitions
    from .timefmt import Moment

__all__ = ["ConversionError", "ConversionResult", "convert"]

#: PostgreSQL's codes for a lock not granted in time and for a deadlock: the swap is retried.
_RETRIED = frozenset({"55P03", "40P01"})


@dataclass(frozen=True)
class ConversionResult:
    """What :func:`convert` did.

    ``kept`` is the old table's new name (PostgreSQL) or None (MariaDB converts in place).
    ``lock_seconds`` is how long writers were held up: the swap transaction from asking for
    its lock to commit (PostgreSQL), or the whole ``ALTER TABLE`` (MariaDB). ``attempts`` counts
    the swap's tries.
    """

    table: str
    kept: str | None
    rows: int
    seconds: float
    lock_seconds: float
    attempts: int


def convert(
    connection: BaseDatabaseWrapper,
    model: type[models.Model],
    declaration: SnowflakePartitions | None,
    layout: Layout,
    *,
    batch_size: int = 10_000,
    now: Moment | None = None,
    progress: ProgressCallback | None = None,
    lock_timeout: float = 2.0,
    attempts: int = 5,
) -> ConversionResult:
    """Partition ``model``'s existing table as ``declaration`` says, keeping every row.

    The partitions are those ``migrate`` makes: ``before`` the interval holding ``now``, that
    interval and ``declaration.ahead`` more, and the catch-all. ``progress`` is called with a
    :class:`~django_flakeid.progress.Progress` before the copy and after each batch. A run that
    stopped during the copy (PostgreSQL) is resumed by calling it again. Raises
    :class:`ConversionError` for a database that cannot partition, a missing declaration, a
    table already partitioned, or a table whose shape cannot be partitioned.
    """
    from .partition_sql import backend_for

    backend = backend_for(connection)
    if backend is None:
        raise ConversionError(
            f"{connection.display_name} cannot partition tables: "
            "only PostgreSQL and MariaDB can be converted."
        )
    if declaration is None:
        raise ConversionError(
            f"{model._meta.label} declares no SnowflakePartitions in Meta.constraints."
        )
    pk = model._meta.pk
    if not isinstance(pk, SnowflakeField):
        raise ConversionError(f"{model._meta.label}'s primary key is not a SnowflakeField.")
    check_batch_size(batch_size, ConversionError)
    if connection.in_atomic_block:
        raise ConversionError("convert commits as it goes: call it outside transaction.atomic().")
    table = model._meta.db_table
    with connection.cursor() as cursor:
        if table not in connection.introspection.table_names(cursor):
            raise ConversionError(f"There is no table {table}: run migrate first.")
    if backend.is_partitioned(connection, table):
        raise ConversionError(f"{table} is already partitioned: nothing to convert.")
    spans = spans_from(layout, declaration.interval, now or timezone.now(), declaration.ahead + 1)
    job = _Job(connection, backend, table, pk.column or pk.attname, spans)
    started = time.monotonic()
    if connection.vendor == "postgresql":
        return _Postgres(job, lock_timeout, attempts).run(batch_size, progress, started)
    return _mariadb(job, progress, started)


@dataclass(frozen=True)
class _Job:
    connection: BaseDatabaseWrapper
    backend: PartitionBackend
    table: str
    pk: str
    spans: list[Span]

    def name(self, *parts: str) -> str:
        """A name made of the parts, shortened as Django shortens names that are too long."""
        return truncate_name("_".join(parts), self.connection.ops.max_name_length())

    def quote(self, name: str) -> str:
        return self.connection.ops.quote_name(name)

    def rows(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self.connection.cursor() as cursor:
            cursor.execute(sql, params)
            return list(cursor.fetchall())

    def value(self, sql: str, params: Sequence[Any] = ()) -> Any:
        found = self.rows(sql, params)
        return found[0][0] if found else None

    def progress(
        self, report: ProgressCallback | None, done: int, total: int, since: float
    ) -> None:
        if report is not None:
            report(Progress(done, max(total, done), time.monotonic() - since))


def _mariadb(job: _Job, progress: ProgressCallback | None, started: float) -> ConversionResult:
    keys = job.rows(
        "SELECT constraint_name FROM information_schema.referential_constraints "
        "WHERE constraint_schema = DATABASE() AND (table_name = %s OR referenced_table_name = %s)",
        [job.table, job.table],
    )
    if keys:
        raise ConversionError(
            f"InnoDB cannot partition {job.table}: foreign keys lead to or from it "
            f"({', '.join(sorted(row[0] for row in keys))}). Give those fields "
            "db_constraint=False and migrate first."
        )
    _refuse_unique_without_key(job, _mariadb_unique(job))
    total = job.value(f"SELECT COUNT(*) FROM {job.quote(job.table)}")
    job.progress(progress, 0, total, started)
    locked = time.monotonic()
    with job.connection.cursor() as cursor:
        for statement in job.backend.create_partitions_sql(job.table, job.pk, job.spans):
            cursor.execute(statement)
    done = time.monotonic()
    job.progress(progress, total, total, started)
    return ConversionResult(job.table, None, total, done - started, done - locked, 1)


def _mariadb_unique(job: _Job) -> list[tuple[str, bool]]:
    return job.rows(
        "SELECT index_name, SUM(column_name = %s) > 0 FROM information_schema.statistics "
        "WHERE table_schema = DATABASE() AND table_name = %s AND non_unique = 0 "
        "GROUP BY index_name ORDER BY index_name",
        [job.pk, job.table],
    )


def _refuse_unique_without_key(job: _Job, unique: list[tuple[str, bool]]) -> None:
    without = sorted(name for name, has_key in unique if not has_key)
    if without:
        raise ConversionError(
            f"Every unique index of a partitioned table must hold its key {job.pk}: "
            f"{', '.join(without)} on {job.table} does not. Drop it, or add {job.pk} to it."
        )


@dataclass(frozen=True)
class _Index:
    """An index of the old table: backing a constraint (PRIMARY KEY, UNIQUE) or standalone."""

    name: str
    constraint: str | None
    definition: str


@dataclass(frozen=True)
class _ForeignKey:
    table: str
    name: str
    definition: str
    # PostgreSQL cannot add a foreign key NOT VALID on a partitioned table: it is checked at once.
    partitioned: bool
    # A key of the table to itself: made again on the new table once it has the table's name.
    own: bool


@dataclass(frozen=True)
class _Column:
    name: str
    identity: bool
    sequence: str | None


class _Postgres:
    def __init__(self, job: _Job, lock_timeout: float, attempts: int) -> None:
        self.job = job
        self.lock_timeout_ms = max(1, round(lock_timeout * 1000))
        self.attempts = attempts
        self.twin = job.name(job.table, "partitioned")
        self.kept = job.name(job.table, "unpartitioned")
        self.mirror = job.name(job.table, "mirror")
        self.mirror_truncate = job.name(job.table, "mirror", "truncate")
        self.old = job.quote(job.table)
        self.locked_at = 0.0

    # What the old table is made of, read from the catalog.

    def columns(self) -> list[_Column]:
        found = self.job.rows(
            "SELECT attname, attidentity <> '', pg_get_serial_sequence(%s, attname) "
            "FROM pg_attribute WHERE attrelid = %s::regclass AND attnum > 0 "
            "AND NOT attisdropped AND attgenerated = '' ORDER BY attnum",
            [self.old, self.old],
        )
        return [_Column(*row) for row in found]

    def indexes(self) -> list[_Index]:
        found = self.job.rows(
            "SELECT c.relname, con.conname, "
            "COALESCE(pg_get_constraintdef(con.oid), pg_get_indexdef(i.indexrelid)), "
            "i.indisunique, a.attnum = ANY(i.indkey::int2[]) "
            "FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid "
            "JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attname = %s "
            "LEFT JOIN pg_constraint con ON con.conindid = i.indexrelid "
            "AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x') "
            "WHERE i.indrelid = %s::regclass ORDER BY c.relname",
            [self.job.pk, self.old],
        )
        _refuse_unique_without_key(self.job, [(row[0], row[4]) for row in found if row[3]])
        return [
            _Index(name, constraint, definition) for name, constraint, definition, _, _ in found
        ]

    def foreign_keys(self, *, incoming: bool) -> list[_ForeignKey]:
        """Foreign keys to the table from other tables, or those of the table itself."""
        side = "confrelid" if incoming else "conrelid"
        found = self.job.rows(
            "SELECT con.conrelid::regclass::text, con.conname, pg_get_constraintdef(con.oid), "
            "c.relkind = 'p', con.conrelid = con.confrelid "
            "FROM pg_constraint con JOIN pg_class c ON c.oid = con.conrelid "
            f"WHERE con.{side} = %s::regclass AND con.contype = 'f' AND con.conparentid = 0 "
            "ORDER BY 1, 2",
            [self.old],
        )
        return [
            _ForeignKey(table, name, definition.removesuffix(" NOT VALID"), partitioned, own)
            for table, name, definition, partitioned, own in found
            if not (incoming and own)
        ]

    def refuse(self) -> None:
        """Refuse what the swap cannot carry over, before anything is made."""
        table, old = self.job.table, self.old
        if self.job.value("SELECT to_regclass(%s)", [self.job.quote(self.kept)]) is not None:
            raise ConversionError(
                f"{self.kept} exists, kept by an earlier conversion: drop or rename it first."
            )
        relatives = self.names(
            "SELECT inhparent::regclass::text FROM pg_inherits WHERE inhrelid = %s::regclass "
            "UNION SELECT inhrelid::regclass::text FROM pg_inherits WHERE inhparent = %s::regclass",
            [old, old],
        )
        if relatives:
            raise ConversionError(f"{table} takes part in table inheritance with {relatives}.")
        views = self.names(
            "SELECT DISTINCT r.ev_class::regclass::text FROM pg_depend d "
            "JOIN pg_rewrite r ON r.oid = d.objid WHERE d.classid = 'pg_rewrite'::regclass "
            "AND d.refobjid = %s::regclass AND r.ev_class <> %s::regclass",
            [old, old],
        )
        if views:
            raise ConversionError(
                f"Views read {table}: {views}. They would go on reading the old table; drop "
                "them, convert, and make them again."
            )
        triggers = self.names(
            "SELECT tgname FROM pg_trigger WHERE tgrelid = %s::regclass AND NOT tgisinternal "
            "AND tgname <> ALL(%s)",
            [old, [self.mirror, self.mirror_truncate]],
        )
        if triggers:
            raise ConversionError(
                f"{table} has triggers of its own, which a conversion does not carry over: "
                f"{triggers}."
            )

    def names(self, sql: str, params: Sequence[Any]) -> str:
        return ", ".join(sorted(row[0] for row in self.job.rows(sql, params)))

    def resumable(self) -> bool:
        """Whether an earlier run left its twin and mirror trigger: then the copy goes on."""
        twin = self.job.value(
            "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [self.job.quote(self.twin)]
        )
        if twin is None:
            return False
        mirrored = self.job.value(
            "SELECT 1 FROM pg_trigger WHERE tgrelid = %s::regclass AND tgname = %s",
            [self.old, self.mirror],
        )
        if twin != "p" or not mirrored:
            raise ConversionError(
                f"{self.twin} exists but is not an unfinished conversion of {self.job.table}: "
                "drop it first."
            )
        return True

    # The steps.

    def run(
        self, batch_size: int, progress: ProgressCallback | None, started: float
    ) -> ConversionResult:
        self.refuse()
        columns = self.columns()
        indexes = self.indexes()
        outgoing = self.foreign_keys(incoming=False)
        if not self.resumable():
            self.retried(lambda cursor: self.make_twin(cursor, columns, indexes, outgoing))
        rows = self.copy(columns, batch_size, progress, started)
        with self.job.connection.cursor() as cursor:
            cursor.execute(f"ANALYZE {self.job.quote(self.twin)}")
        tries, unchecked = self.retried(
            lambda cursor: self.swap(cursor, columns, indexes, outgoing)
        )
        lock_seconds = time.monotonic() - self.locked_at
        with self.job.connection.cursor() as cursor:
            for key in unchecked:
                cursor.execute(
                    f"ALTER TABLE {key.table} VALIDATE CONSTRAINT {self.job.quote(key.name)}"
                )
        seconds = time.monotonic() - started
        return ConversionResult(self.job.table, self.kept, rows, seconds, lock_seconds, tries)

    def retried(self, step: Callable[[CursorWrapper], Any]) -> Any:
        """Run ``step`` in a transaction that waits for locks ``lock_timeout`` at most, retrying.

        Returns how many tries it took, and what ``step`` gave.
        """
        for attempt in range(1, self.attempts + 1):
            try:
                with (
                    transaction.atomic(using=self.job.connection.alias),
                    self.job.connection.cursor() as cursor,
                ):
                    cursor.execute(f"SET LOCAL lock_timeout = {self.lock_timeout_ms}")
                    outcome = step(cursor)
                return attempt, outcome
            except DatabaseError as error:
                code = getattr(error.__cause__, "sqlstate", None)
                if code not in _RETRIED:
                    raise
                if attempt == self.attempts:
                    raise ConversionError(
                        f"{self.job.table} stayed locked by other transactions through "
                        f"{self.attempts} tries of {self.lock_timeout_ms} ms: run it again when "
                        "they are done; it goes on from the rows copied so far."
                    ) from error
                time.sleep(min(0.1 * 2**attempt, 5.0))
        raise AssertionError("unreachable")  # pragma: no cover

    def make_twin(
        self,
        cursor: CursorWrapper,
        columns: list[_Column],
        indexes: list[_Index],
        outgoing: list[_ForeignKey],
    ) -> None:
        q, twin = self.job.quote, self.job.quote(self.twin)
        cursor.execute(
            f"CREATE TABLE {twin} (LIKE {self.old} INCLUDING ALL EXCLUDING INDEXES) "
            f"PARTITION BY RANGE ({q(self.job.pk)})"
        )
        for statement in self.job.backend.create_partitions_sql(
            self.twin, self.job.pk, self.job.spans
        ):
            cursor.execute(statement)
        # The partitions take their final names now, while no one else can see them; indexes
        # made afterwards are named after them.
        for partition in self.job.backend.partitions(self.job.connection, self.twin):
            final = self.job.name(self.job.table, self.suffix(partition.low, partition.catch_all))
            cursor.execute(f"ALTER TABLE {q(partition.name)} RENAME TO {q(final)}")
        for index in indexes:
            made = q(self.job.name(index.name, "partitioned"))
            if index.constraint is not None:
                cursor.execute(f"ALTER TABLE {twin} ADD CONSTRAINT {made} {index.definition}")
            else:
                unique = "UNIQUE " if index.definition.startswith("CREATE UNIQUE ") else ""
                method = index.definition.partition(" USING ")[2]
                cursor.execute(f"CREATE {unique}INDEX {made} ON {twin} USING {method}")
        for key in outgoing:
            if not key.own:
                cursor.execute(f"ALTER TABLE {twin} ADD CONSTRAINT {q(key.name)} {key.definition}")
        self.make_mirror(cursor, columns)

    def suffix(self, low: int | None, catch_all: bool) -> str:
        if catch_all:
            return "default"
        if low is None:
            return "before"
        return next(span.suffix for span in self.job.spans if span.low == low)

    def make_mirror(self, cursor: CursorWrapper, columns: list[_Column]) -> None:
        q, twin, pk = self.job.quote, self.job.quote(self.twin), self.job.quote(self.job.pk)
        names = ", ".join(q(column.name) for column in columns)
        values = ", ".join(f"NEW.{q(column.name)}" for column in columns)
        changed = ", ".join(
            f"{q(c.name)} = EXCLUDED.{q(c.name)}" for c in columns if c.name != self.job.pk
        )
        upsert = f"DO UPDATE SET {changed}" if changed else "DO NOTHING"
        cursor.execute(
            f"CREATE FUNCTION {q(self.mirror)}() RETURNS trigger LANGUAGE plpgsql AS $mirror$\n"
            "BEGIN\n"
            f"  IF TG_OP = 'TRUNCATE' THEN TRUNCATE {twin}; RETURN NULL; END IF;\n"
            f"  IF TG_OP = 'DELETE' OR (TG_OP = 'UPDATE' AND OLD.{pk} <> NEW.{pk}) THEN\n"
            f"    DELETE FROM {twin} WHERE {pk} = OLD.{pk};\n"
            "  END IF;\n"
            "  IF TG_OP <> 'DELETE' THEN\n"
            f"    INSERT INTO {twin} ({names}) OVERRIDING SYSTEM VALUE VALUES ({values})\n"
            f"    ON CONFLICT ({pk}) {upsert};\n"
            "  END IF;\n"
            "  RETURN NULL;\n"
            "END\n"
            "$mirror$"
        )
        cursor.execute(
            f"CREATE TRIGGER {q(self.mirror)} AFTER INSERT OR UPDATE OR DELETE ON {self.old} "
            f"FOR EACH ROW EXECUTE FUNCTION {q(self.mirror)}()"
        )
        cursor.execute(
            f"CREATE TRIGGER {q(self.mirror_truncate)} AFTER TRUNCATE ON "
            f"{self.old} FOR EACH STATEMENT EXECUTE FUNCTION {q(self.mirror)}()"
        )

    def copy(
        self,
        columns: list[_Column],
        batch_size: int,
        progress: ProgressCallback | None,
        started: float,
    ) -> int:
        """Copy the rows a key range at a time; returns how many were read."""
        q, pk = self.job.quote, self.job.quote(self.job.pk)
        names = ", ".join(q(column.name) for column in columns)
        # Rows written from now on reach the twin through the trigger: the copy stops at the
        # highest key the table holds now.
        last, total = self.job.rows(f"SELECT MAX({pk}), COUNT(*) FROM {self.old}")[0]
        done = 0
        self.job.progress(progress, done, total, started)
        low = -(2**63)
        while last is not None and low <= last:
            high = self.job.value(
                f"SELECT {pk} FROM {self.old} WHERE {pk} >= %s AND {pk} <= %s "
                f"ORDER BY {pk} OFFSET %s LIMIT 1",
                [low, last, batch_size - 1],
            )
            high = last if high is None else high
            with transaction.atomic(using=self.job.connection.alias):
                # KEY SHARE makes a delete of these rows wait until the batch commits, so the
                # trigger's delete of the copy comes after it; updates go on, and the trigger
                # writes their newer version over the copy.
                read = self.job.value(
                    f"WITH batch AS (SELECT {names} FROM {self.old} "
                    f"WHERE {pk} >= %s AND {pk} <= %s FOR KEY SHARE), copied AS ("
                    f"INSERT INTO {q(self.twin)} ({names}) OVERRIDING SYSTEM VALUE "
                    f"SELECT {names} FROM batch ON CONFLICT DO NOTHING) SELECT COUNT(*) FROM batch",
                    [low, high],
                )
            done += read
            low = high + 1
            self.job.progress(progress, done, total, started)
        return done

    def swap(
        self,
        cursor: CursorWrapper,
        columns: list[_Column],
        indexes: list[_Index],
        outgoing: list[_ForeignKey],
    ) -> list[_ForeignKey]:
        """Put the twin in the table's place; returns the foreign keys left to validate."""
        q, table, twin = self.job.quote, self.job.quote(self.job.table), self.job.quote(self.twin)
        self.locked_at = time.monotonic()
        cursor.execute(f"LOCK TABLE {self.old}, {twin} IN ACCESS EXCLUSIVE MODE")
        incoming = self.foreign_keys(incoming=True)
        swap = [
            f"DROP TRIGGER {q(self.mirror)} ON {self.old}",
            f"DROP TRIGGER {q(self.mirror_truncate)} ON {self.old}",
            f"DROP FUNCTION {q(self.mirror)}()",
        ]
        swap += [f"ALTER TABLE {key.table} DROP CONSTRAINT {q(key.name)}" for key in incoming]
        # The kept copy refers to nothing, or deleting a row it still points at would fail.
        swap += [f"ALTER TABLE {self.old} DROP CONSTRAINT {q(key.name)}" for key in outgoing]
        swap += [
            self.rename(self.old, index, index.name, self.job.name(index.name, "unpartitioned"))
            for index in indexes
        ]
        swap += [
            f"ALTER TABLE {self.old} RENAME TO {q(self.kept)}",
            f"ALTER TABLE {twin} RENAME TO {table}",
        ]
        swap += [
            self.rename(table, index, self.job.name(index.name, "partitioned"), index.name)
            for index in indexes
        ]
        swap += [
            f"ALTER TABLE {table} ADD CONSTRAINT {q(key.name)} {key.definition}"
            for key in outgoing
            if key.own
        ]
        for column in columns:
            if column.identity and column.sequence:
                # The twin's identity has a sequence of its own, which the copy did not move.
                swap.append(
                    f"SELECT setval(pg_get_serial_sequence({_literal(table)}, "
                    f"{_literal(column.name)}), last_value, is_called) FROM {column.sequence}"
                )
            elif column.sequence:
                # Else dropping the kept table would drop the sequence the column's default uses.
                swap.append(f"ALTER SEQUENCE {column.sequence} OWNED BY {table}.{q(column.name)}")
        swap += [
            f"ALTER TABLE {key.table} ADD CONSTRAINT {q(key.name)} {key.definition}"
            + ("" if key.partitioned else " NOT VALID")
            for key in incoming
        ]
        # One round trip: the lock is held for the statements' work, not for a trip each.
        cursor.execute(";\n".join(swap))
        return [key for key in incoming if not key.partitioned]

    def rename(self, table: str, index: _Index, name: str, to: str) -> str:
        q = self.job.quote
        if index.constraint is not None:
            return f"ALTER TABLE {table} RENAME CONSTRAINT {q(name)} TO {q(to)}"
        return f"ALTER INDEX {q(name)} RENAME TO {q(to)}"


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"
