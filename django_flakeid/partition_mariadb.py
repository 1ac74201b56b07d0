"""Time partitions on MariaDB: ``PARTITION BY RANGE`` on the key, with a ``pmax`` catch-all.

MariaDB partitions a table in place (``ALTER TABLE ... PARTITION BY``, rows kept, writes
blocked while it copies them) and cuts new partitions out of ``pmax`` with ``REORGANIZE
PARTITION``, which moves the rows itself.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from django.db.backends.utils import truncate_name

from . import partition_base
from .intervals import Span
from .partition_base import Partition, PartitionBackend, sql_text, with_retries

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

__all__ = ["MariaDBPartitions"]

_MARIADB_MAX_NAME = 64
_MARIADB_LOCK_WAIT = "1205"


def _my_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


class MariaDBPartitions(PartitionBackend):
    """``PARTITION BY RANGE`` on the key; the catch-all is ``pmax`` (``LESS THAN MAXVALUE``)."""

    catch_all = "pmax"

    def _ranges(self, spans: list[Span]) -> str:
        parts = [f"PARTITION {_my_ident(self.before)} VALUES LESS THAN ({spans[0].low})"]
        parts.extend(
            f"PARTITION {_my_ident(span.suffix)} VALUES LESS THAN ({span.high})" for span in spans
        )
        parts.append(f"PARTITION {_my_ident(self.catch_all)} VALUES LESS THAN MAXVALUE")
        return ", ".join(parts)

    def _partitioned_test(self, table: str) -> str:
        return (
            "EXISTS (SELECT 1 FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() "
            f"AND TABLE_NAME = {sql_text(table)} AND PARTITION_NAME IS NOT NULL)"
        )

    def convert_sql(self, table: str, pk_column: str, spans: list[Span]) -> str:
        # A table partitioned beforehand (by the online conversion) is left as it is; the
        # partitions command adds whatever intervals it lacks.
        (statement,) = self.create_partitions_sql(table, pk_column, spans)
        return (
            f"BEGIN NOT ATOMIC IF NOT {self._partitioned_test(table)} THEN {statement}; END IF; END"
        )

    def unconvert_sql(self, table: str) -> str:
        return (
            f"BEGIN NOT ATOMIC IF {self._partitioned_test(table)} THEN "
            f"ALTER TABLE {_my_ident(table)} REMOVE PARTITIONING; END IF; END"
        )

    def create_partitions_sql(self, table: str, pk_column: str, spans: list[Span]) -> list[str]:
        # MariaDB makes the partitions together with the partitioning: one statement, which
        # converts a plain table in place (rows kept).
        return [
            f"ALTER TABLE {_my_ident(table)} PARTITION BY RANGE ({_my_ident(pk_column)}) "
            f"({self._ranges(spans)})"
        ]

    def partitions(self, connection: BaseDatabaseWrapper, table: str) -> list[Partition]:
        with connection.cursor() as cursor:
            cursor.execute(
                "SELECT PARTITION_NAME, PARTITION_DESCRIPTION, TABLE_ROWS "
                "FROM information_schema.PARTITIONS WHERE TABLE_SCHEMA = DATABASE() "
                "AND TABLE_NAME = %s AND PARTITION_NAME IS NOT NULL "
                "AND PARTITION_METHOD = 'RANGE' ORDER BY PARTITION_ORDINAL_POSITION",
                [table],
            )
            rows = cursor.fetchall()
        found = []
        low: int | None = None
        for name, description, count in rows:
            high = None if description == "MAXVALUE" else int(description)
            found.append(Partition(name, low, high, max(0, int(count or 0))))
            low = high
        return found

    def is_partitioned(self, connection: BaseDatabaseWrapper, table: str) -> bool:
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {self._partitioned_test(table)}")
            row = cursor.fetchone()
        return bool(row and row[0])

    def _run(self, connection: BaseDatabaseWrapper, statement: str) -> None:
        def attempt() -> None:
            with connection.cursor() as cursor:
                cursor.execute("SELECT @@SESSION.lock_wait_timeout")
                (before,) = cursor.fetchone() or (None,)
                cursor.execute(
                    f"SET SESSION lock_wait_timeout = {partition_base.LOCK_TIMEOUT_SECONDS}"
                )
                try:
                    cursor.execute(statement)
                finally:
                    cursor.execute("SET SESSION lock_wait_timeout = %s", [before])

        with_retries(attempt, {_MARIADB_LOCK_WAIT})

    def add(self, connection: BaseDatabaseWrapper, table: str, spans: list[Span]) -> None:
        existing = self.partitions(connection, table)
        newest = max((p.high for p in existing if p.high is not None), default=None)
        has_catch_all = any(p.catch_all for p in existing)
        added = False
        for span in spans:
            if newest is not None and span.high <= newest:
                continue
            new = f"PARTITION {_my_ident(span.suffix)} VALUES LESS THAN ({span.high})"
            if has_catch_all:
                # REORGANIZE moves the rows of the new range out of pmax itself.
                statement = (
                    f"ALTER TABLE {_my_ident(table)} REORGANIZE PARTITION "
                    f"{_my_ident(self.catch_all)} INTO ({new}, "
                    f"PARTITION {_my_ident(self.catch_all)} VALUES LESS THAN MAXVALUE)"
                )
            else:
                statement = f"ALTER TABLE {_my_ident(table)} ADD PARTITION ({new})"
            self._run(connection, statement)
            newest = span.high
            added = True
        if added:
            # InnoDB leaves the row counts of reorganised partitions at zero until analysed,
            # and a catch-all that seems empty hides rows that belong in new partitions.
            with connection.cursor() as cursor:
                cursor.execute(f"ANALYZE TABLE {_my_ident(table)}")
                cursor.fetchall()

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
        if detach:
            kept = truncate_name(f"{table}_{partition.name}", _MARIADB_MAX_NAME)
            self._run(
                connection,
                f"ALTER TABLE {_my_ident(table)} CONVERT PARTITION {_my_ident(partition.name)} "
                f"TO TABLE {_my_ident(kept)}",
            )
            return kept
        self._run(
            connection,
            f"ALTER TABLE {_my_ident(table)} DROP PARTITION {_my_ident(partition.name)}",
        )
        return None
