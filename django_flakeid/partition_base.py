"""What every database's partition DDL shares: the partition, the backend's API, retries."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from django.db import OperationalError

from .intervals import Span

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

#: How long one attempt waits for a lock held by someone else, and how often it tries.
LOCK_TIMEOUT_SECONDS = 2
ATTEMPTS = 3


@dataclass(frozen=True)
class Partition:
    """One partition: IDs ``low <= id < high``; None for an end that is open."""

    name: str
    low: int | None
    high: int | None
    rows: int

    @property
    def catch_all(self) -> bool:
        """True for the partition past the newest one (``DEFAULT`` / ``MAXVALUE``)."""
        return self.high is None


class PartitionBackend:
    """What one database can do with a table partitioned by ranges of its primary key."""

    #: The name of the partition below the first interval's.
    before = "before"

    def convert_sql(self, table: str, pk_column: str, spans: list[Span]) -> str:
        """One statement partitioning ``table`` (rows kept), or adding missing spans if it is."""
        raise NotImplementedError

    def unconvert_sql(self, table: str) -> str:
        """One statement turning partitioned ``table`` back into a plain one, rows kept."""
        raise NotImplementedError

    def create_partitions_sql(self, table: str, pk_column: str, spans: list[Span]) -> list[str]:
        """The statements making the ``before`` partition, ``spans`` and the catch-all."""
        raise NotImplementedError

    def partitions(self, connection: BaseDatabaseWrapper, table: str) -> list[Partition]:
        """The partitions of ``table`` by ID, the catch-all last; [] when it has none."""
        raise NotImplementedError

    def is_partitioned(self, connection: BaseDatabaseWrapper, table: str) -> bool:
        raise NotImplementedError

    def add(self, connection: BaseDatabaseWrapper, table: str, spans: list[Span]) -> None:
        """Add ``spans`` after the newest partition, moving their rows out of the catch-all.

        Spans that end at or below the newest partition's end are skipped; a new partition
        always starts where the newest one ends, so the ranges stay contiguous.
        """
        raise NotImplementedError

    def drop(
        self,
        connection: BaseDatabaseWrapper,
        table: str,
        partition: Partition,
        *,
        detach: bool = False,
    ) -> str | None:
        """Drop ``partition`` with its rows, or with ``detach`` keep it as a table: its name."""
        raise NotImplementedError


def with_retries(run: Callable[[], None], codes: set[str]) -> None:
    """Run ``run``; when it fails waiting for a lock (error ``codes``), wait and run it again."""
    # A busy table makes an attempt give up after LOCK_TIMEOUT_SECONDS rather than queue every
    # query behind it; trying a few times, a little apart, gets through between long queries.
    for attempt in range(1, ATTEMPTS + 1):
        try:
            run()
        except OperationalError as error:
            if attempt == ATTEMPTS or _error_code(error) not in codes:
                raise
            _wait(0.5 * attempt)
        else:
            return


def _wait(seconds: float) -> None:
    time.sleep(seconds)


def _error_code(error: OperationalError) -> str:
    cause = error.__cause__
    sqlstate = getattr(cause, "sqlstate", None)
    if sqlstate:
        return str(sqlstate)
    args = getattr(cause, "args", None) or error.args
    return str(args[0]) if args else ""


def sql_text(value: str) -> str:
    """``value`` as an SQL string literal."""
    return "'" + value.replace("'", "''") + "'"
