"""Time partitions on PostgreSQL: declarative range partitions with a ``DEFAULT`` catch-all.

PostgreSQL cannot turn a table into a partitioned one, so converting rebuilds it in one
transaction: a partitioned twin made ``LIKE`` the table, the rows copied, the table dropped and
the twin renamed, then its key, indexes, foreign keys of both directions, comment, owner and
privileges given back under their old names. New partitions are made ``LIKE`` the table, filled
with their rows from the ``DEFAULT`` partition and attached.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from django.db import transaction
from django.db.backends.utils import truncate_name

from . import partition_base
from .intervals import Span
from .partition_base import Partition, PartitionBackend, sql_text, with_retries

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["PostgresPartitions"]

_PG_MAX_NAME = 63
_PG_BOUND = re.compile(r"FROM \((.+)\) TO \((.+)\)")


def _pg_ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _pg_bound(text: str) -> int | None:
    text = text.strip("'")
    return None if text == "MINVALUE" else int(text)


# The blocks below build their statements by concatenation rather than format(): Django runs
# a RemoveConstraint's SQL with parameters, which would take every percent sign for one.

# Declarations shared by the blocks: the table, its key, the columns a copy writes (not the
# generated ones), its DEFAULT partition and where its newest ranged partition ends.
_PG_DECLARE = """
DECLARE
  tbl regclass := to_regclass({table});
  pk text := {pk};
  cols text;
  dflt regclass;
  newest numeric;
  low numeric;
  own text[] := '{{}}';
  later text[] := '{{}}';
  note text;
  owner text;
  r record;
  stmt text;
BEGIN
  IF tbl IS NULL THEN
    RAISE EXCEPTION USING MESSAGE = 'table ' || {table} || ' does not exist';
  END IF;
  SELECT string_agg(quote_ident(attname), ', ' ORDER BY attnum) INTO cols FROM pg_attribute
    WHERE attrelid = tbl AND attnum > 0 AND NOT attisdropped AND attgenerated = '';
"""

_PG_FIND_NEWEST = """
  SELECT a.attname INTO pk FROM pg_partitioned_table p
    JOIN pg_attribute a ON a.attrelid = p.partrelid AND a.attnum = p.partattrs[0]
    WHERE p.partrelid = tbl;
  SELECT c.oid::regclass INTO dflt FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid
    WHERE i.inhparent = tbl AND pg_get_expr(c.relpartbound, c.oid) = 'DEFAULT';
  SELECT max(substring(pg_get_expr(c.relpartbound, c.oid)
      FROM 'TO \\(''?(-?[0-9]+)''?\\)')::numeric)
    INTO newest FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid WHERE i.inhparent = tbl;
"""

# One span (its partition's quoted name, low and high): cut from the catch-all if it reaches
# past the newest partition, starting where that one ends.
_PG_EXTEND = """
  IF newest IS NULL OR {high} > newest THEN
    low := coalesce(newest, {low});
    EXECUTE 'CREATE TABLE ' || {part} || ' (LIKE ' || tbl::text
      || ' INCLUDING DEFAULTS INCLUDING CONSTRAINTS INCLUDING GENERATED)';
    IF dflt IS NOT NULL THEN
      EXECUTE 'WITH moved AS (DELETE FROM ' || dflt::text || ' WHERE ' || quote_ident(pk)
        || ' >= ' || low || ' AND ' || quote_ident(pk) || ' < {high} RETURNING ' || cols
        || ') INSERT INTO ' || {part} || ' (' || cols || ') SELECT ' || cols || ' FROM moved';
    END IF;
    EXECUTE 'ALTER TABLE ' || tbl::text || ' ATTACH PARTITION ' || {part}
      || ' FOR VALUES FROM (' || low || ') TO ({high})';
    EXECUTE 'ANALYZE ' || {part};
    newest := {high};
  END IF;
"""

# Everything that names the table and that LIKE does not copy, as statements to run once the
# rebuilt table has its name: key and unique constraints, exclusions and foreign keys (its own
# first, then those of other tables pointing at it, which must go before the old table can), the
# other indexes, and the table's comment.
_PG_CAPTURE = """
  EXECUTE 'LOCK TABLE ' || tbl::text || ' IN ACCESS EXCLUSIVE MODE';
  FOR r IN SELECT conname, pg_get_constraintdef(oid) AS def FROM pg_constraint
      WHERE conrelid = tbl AND contype IN ('p', 'u', 'x', 'f') AND conparentid = 0
      ORDER BY contype = 'f', conname LOOP
    own := array_append(own, 'ALTER TABLE ' || {table} || ' ADD CONSTRAINT '
      || quote_ident(r.conname) || ' ' || r.def);
  END LOOP;
  FOR r IN SELECT pg_get_indexdef(i.indexrelid) AS def FROM pg_index i
      WHERE i.indrelid = tbl AND NOT EXISTS (SELECT 1 FROM pg_constraint c
        WHERE c.conindid = i.indexrelid AND c.conrelid = tbl AND c.contype IN ('p', 'u', 'x'))
      ORDER BY i.indexrelid LOOP
    own := array_append(own, r.def);
  END LOOP;
  -- The rebuilt table (and its partitions) belong to whoever runs this: give them back to the
  -- table's owner, with the privileges it granted others, so the application keeps its access.
  FOR r IN SELECT c.relowner::regrole::text AS owner, a.privilege_type,
        CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE a.grantee::regrole::text END AS grantee
      FROM pg_class c LEFT JOIN LATERAL aclexplode(c.relacl) a ON a.grantee <> c.relowner
      WHERE c.oid = tbl LOOP
    owner := r.owner;
    IF r.privilege_type IS NOT NULL THEN
      own := array_append(own, 'GRANT ' || r.privilege_type || ' ON ' || {table} || ' TO '
        || r.grantee);
    END IF;
  END LOOP;
  note := obj_description(tbl, 'pg_class');
  IF note IS NOT NULL THEN
    own := array_append(own, 'COMMENT ON TABLE ' || {table} || ' IS ' || quote_literal(note));
  END IF;
  FOR r IN SELECT conname, conrelid::regclass::text AS rel, pg_get_constraintdef(oid) AS def
      FROM pg_constraint WHERE confrelid = tbl AND conrelid <> tbl AND contype = 'f'
      AND conparentid = 0 ORDER BY conrelid, conname LOOP
    EXECUTE 'ALTER TABLE ' || r.rel || ' DROP CONSTRAINT ' || quote_ident(r.conname);
    later := array_append(later, 'ALTER TABLE ' || r.rel || ' ADD CONSTRAINT '
      || quote_ident(r.conname) || ' ' || r.def);
  END LOOP;
"""

_PG_SWAP = """
  EXECUTE 'INSERT INTO ' || {twin} || ' (' || cols || ') SELECT ' || cols || ' FROM '
    || tbl::text;
  EXECUTE 'DROP TABLE ' || tbl::text;
  EXECUTE 'ALTER TABLE ' || {twin} || ' RENAME TO ' || {table};
  FOREACH stmt IN ARRAY own || later LOOP
    EXECUTE stmt;
  END LOOP;
  FOR r IN SELECT {table}::regclass AS rel UNION ALL SELECT inhrelid::regclass FROM pg_inherits
      WHERE inhparent = {table}::regclass LOOP
    EXECUTE 'ALTER TABLE ' || r.rel::text || ' OWNER TO ' || owner;
  END LOOP;
  EXECUTE 'ANALYZE ' || {table};
END
$flakeid$"""


class PostgresPartitions(PartitionBackend):
    """Declarative range partitions; the catch-all is the ``DEFAULT`` partition."""

    def name(self, table: str, suffix: str) -> str:
        """The table of ``table``'s partition ``suffix`` (shortened past 63 characters)."""
        return truncate_name(f"{table}_{suffix}", _PG_MAX_NAME)

    def _declare(self, table: str, pk_column: str) -> str:
        return "DO $flakeid$" + _PG_DECLARE.format(
            table=sql_text(_pg_ident(table)), pk=sql_text(pk_column)
        )

    def _extend(self, table: str, spans: list[Span]) -> str:
        return "".join(
            _PG_EXTEND.format(
                part=sql_text(_pg_ident(self.name(table, s.suffix))), low=s.low, high=s.high
            )
            for s in spans
        )

    def _rebuild(self, table: str, like: str, partitions: list[str]) -> str:
        # ``like`` makes the twin from the table (``{twin}`` stands for its quoted name); the
        # partitions, named after the table, are attached to the twin until it takes the name.
        twin = sql_text(_pg_ident(self._twin(table)))
        made = "".join(f"  {statement};\n" for statement in [like.format(twin=twin), *partitions])
        quoted = sql_text(_pg_ident(table))
        return _PG_CAPTURE.format(table=quoted) + made + _PG_SWAP.format(twin=twin, table=quoted)

    def _twin(self, table: str) -> str:
        return truncate_name(f"{table}_rebuild", _PG_MAX_NAME)

    def convert_sql(self, table: str, pk_column: str, spans: list[Span]) -> str:
        return (
            self._declare(table, pk_column)
            + "  IF (SELECT relkind FROM pg_class WHERE oid = tbl) = 'p' THEN"
            + _PG_FIND_NEWEST
            + self._extend(table, spans)
            + "    RETURN;\n  END IF;"
            + self._rebuild(
                table,
                "EXECUTE 'CREATE TABLE ' || {twin} || ' (LIKE ' || tbl::text || ' INCLUDING ALL "
                "EXCLUDING INDEXES) PARTITION BY RANGE (' || quote_ident(pk) || ')'",
                self._made(self._twin(table), table, spans),
            )
        )

    def unconvert_sql(self, table: str) -> str:
        return (
            self._declare(table, "")
            + "  IF (SELECT relkind FROM pg_class WHERE oid = tbl) <> 'p' THEN\n"
            + "    RETURN;\n  END IF;"
            + self._rebuild(
                table,
                "EXECUTE 'CREATE TABLE ' || {twin} || ' (LIKE ' || tbl::text || ' INCLUDING ALL "
                "EXCLUDING INDEXES)'",
                [],
            )
        )

    def create_partitions_sql(self, table: str, pk_column: str, spans: list[Span]) -> list[str]:
        return self._made(table, table, spans)

    def _made(self, parent_table: str, table: str, spans: list[Span]) -> list[str]:
        parent = _pg_ident(parent_table)
        statements = [
            f"CREATE TABLE {_pg_ident(self.name(table, self.before))} PARTITION OF {parent} "
            f"FOR VALUES FROM (MINVALUE) TO ({spans[0].low})"
        ]
        statements.extend(
            f"CREATE TABLE {_pg_ident(self.name(table, span.suffix))} PARTITION OF {parent} "
            f"FOR VALUES FROM ({span.low}) TO ({span.high})"
            for span in spans
        )
        statements.append(
            f"CREATE TABLE {_pg_ident(self.name(table, 'default'))} PARTITION OF {parent} DEFAULT"
        )
        return statements

    def partitions(self, connection: BaseDatabaseWrapper, table: str) -> list[Partition]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT c.relname, pg_get_expr(c.relpartbound, c.oid), c.reltuples "
                "FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                "WHERE i.inhparent = to_regclass(%s)",
                [_pg_ident(table)],
            )
            rows = cursor.fetchall()
        found = []
        for name, bound, tuples in rows:
            match = _PG_BOUND.search(bound)
            low, high = (_pg_bound(match[1]), _pg_bound(match[2])) if match else (None, None)
            found.append(Partition(name, low, high, max(0, int(tuples))))
        return _in_order(found)

    def is_partitioned(self, connection: BaseDatabaseWrapper, table: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT relkind FROM pg_class WHERE oid = to_regclass(%s)", [_pg_ident(table)]
            )
            row = cursor.fetchone()
        return row is not None and row[0] == "p"

    def _run(self, connection: BaseDatabaseWrapper, statements: list[str]) -> None:
        def attempt() -> None:
            with transaction.atomic(using=connection.alias), connection.cursor() as cursor:
                cursor.execute(f"SET LOCAL lock_timeout = '{partition_base.LOCK_TIMEOUT_SECONDS}s'")
                for statement in statements:
                    cursor.execute(statement)

        with_retries(attempt, {"55P03"})

    def add(self, connection: BaseDatabaseWrapper, table: str, spans: list[Span]) -> None:
        if not spans:
            return
        block = (
            self._declare(table, "")
            + _PG_FIND_NEWEST
            + self._extend(table, spans)
            + "  IF dflt IS NOT NULL THEN\n    EXECUTE 'ANALYZE ' || dflt::text;\n  END IF;\n"
            + "END\n$flakeid$"
        )
        # An insert picks its partition when it locks the parent, which ATTACH's lock lets it do;
        # if it then writes into the catch-all after the ATTACH, its row breaks the catch-all's
        # new bound and the insert fails. Holding writers off the parent first makes them wait
        # for the new partition instead, and reads go on.
        lock = f"LOCK TABLE {_pg_ident(table)} IN SHARE ROW EXCLUSIVE MODE"
        self._run(connection, [lock, block])

    def drop(
        self,
        connection: BaseDatabaseWrapper,
        table: str,
        partition: Partition,
        *,
        detach: bool = False,
    ) -> str | None:
        if partition.catch_all:
            raise ValueError("the catch-all partition is kept: it takes IDs past the newest one")
        statements = [
            f"ALTER TABLE {_pg_ident(table)} DETACH PARTITION {_pg_ident(partition.name)}"
        ]
        if not detach:
            statements.append(f"DROP TABLE {_pg_ident(partition.name)}")
        self._run(connection, statements)
        return partition.name if detach else None


def _in_order(partitions: list[Partition]) -> list[Partition]:
    # The open low end first, the catch-all last.
    return sorted(
        partitions,
        key=lambda p: (p.catch_all, p.low is not None, p.low if p.low is not None else 0),
    )
