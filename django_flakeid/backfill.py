"""Filling a Snowflake column added to a table that already has rows.

A migration adding a unique ``SnowflakeField`` to such a table gives every row the same value:
Django computes a callable default once for the existing rows. The cure takes three steps: add
the field with ``null=True, default=None``, fill it with :func:`backfill` (or
``manage.py flakeid backfill``), then make it unique and not null.

Without ``from_field`` the rows get new IDs from the project's generator, in primary key order.
With it, each ID carries the time the row's own datetime holds:

- Such IDs are stamped for the node the layout sets aside, ``Layout.backfill_node``, which the
  project's generator never uses. Live generators stamp only other nodes, so no backfilled ID
  can equal one of theirs, whatever time it carries. A claim on that node keeps two backfills
  of one host from running at once.
- Rows are numbered in (time, primary key) order as a generator would number them: rows that
  share a millisecond get the sequence numbers 0, 1, 2, ..., and past the last sequence number
  they go on into the following milliseconds, so ID order is always (time, primary key) order.
- Every new ID is above the highest ID the column already holds for that node, so a resumed or
  repeated run never repeats one. A row that turns up later with an earlier time (a transaction
  that committed late) still gets an ID of its own, right after the ones already given.

The numbering (:class:`NewIDs`, :class:`StampedIDs`) and the batched write
(:func:`update_pairs`) serve :mod:`django_flakeid.rekey` as well, which numbers keys.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from functools import partial
from itertools import chain
from typing import TYPE_CHECKING, Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models, router, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import conf

# The explicit re-export keeps ``django_flakeid.backfill.BackfillError`` valid for type checkers.
from .errors import BackfillError as BackfillError  # noqa: PLC0414
from .errors import FlakeIDError, InvalidIDError
from .fields import SnowflakeField
from .generator import SnowflakeGenerator
from .hostclaim import NodeClaim, claim_node
from .ints import is_int
from .layout import Layout
from .progress import Progress
from .timefmt import ms_to_datetime, ms_to_iso, unix_ms

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper

DEFAULT_BATCH_SIZE = 1000

ProgressCallback = Callable[[Progress], None]
#: Writes one batch: the rows' primary keys and their new IDs; returns how many rows it changed.
Write = Callable[[list[Any], list[int]], int]
#: Opens the transaction of one batch.
Atomic = Callable[[], AbstractContextManager[object]]


@dataclass(frozen=True)
class BackfillResult:
    """How many rows a backfill filled, and in how many seconds."""

    filled: int
    seconds: float


def backfill(
    model: type[models.Model],
    field_name: str,
    *,
    from_field: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    using: str | None = None,
    progress: ProgressCallback | None = None,
) -> BackfillResult:
    """Give every row whose ``field_name`` is NULL a Snowflake ID, one committed batch at a time.

    With ``from_field`` (a ``DateTimeField`` of the model) each ID's time is that row's value
    and ID order follows it, ties broken by primary key; without it the IDs are new, in primary
    key order. Only NULL values are filled, so running it again changes nothing and an
    interrupted run resumes. ``progress`` is called with a :class:`Progress` before the first
    batch and after each one. In a ``RunPython`` migration, pass the historical model and
    ``using=schema_editor.connection.alias``.
    """
    target = _target_field(model, field_name)
    check_batch_size(batch_size, BackfillError)
    db = using or router.db_for_write(model)
    empty = model._base_manager.db_manager(db).filter(**{f"{target.name}__isnull": True})
    numbering: Numbering
    if from_field is None:
        numbering = NewIDs(empty, conf.get_generator())
    else:
        source = source_field(model, from_field, BackfillError)
        numbering = StampedIDs(empty, source, conf.get_layout(), column=target.name)
    numbering.check()

    def fill(pks: list[Any], ids: list[int]) -> int:
        connection = connections[db]
        meta = model._meta
        assert meta.pk is not None
        keys = [meta.pk.get_db_prep_value(value, connection) for value in pks]
        # Rows someone else filled meanwhile keep their value.
        return update_pairs(
            connection,
            meta.db_table,
            str(target.column),
            str(meta.pk.column),
            list(zip(keys, ids, strict=True)),
            cast=target.cast_db_type(connection),
            match_cast=meta.pk.cast_db_type(connection),
            where=f"{connection.ops.quote_name(str(target.column))} IS NULL",
        )

    done, seconds = numbering.run(batch_size, progress, fill, partial(transaction.atomic, using=db))
    return BackfillResult(done, seconds)


def _target_field(model: type[models.Model], name: str) -> SnowflakeField[Any, Any]:
    field = model_field(model, name, BackfillError)
    if not isinstance(field, SnowflakeField):
        raise BackfillError(
            f"{model._meta.label}.{name} is a {type(field).__name__}, not a SnowflakeField."
        )
    if not field.null:
        raise BackfillError(
            f"{model._meta.label}.{name} is not nullable, so it has no empty rows to fill: "
            "add it with null=True and default=None, backfill it, then make it unique and "
            "not null."
        )
    return field


def check_batch_size(batch_size: object, error: type[FlakeIDError]) -> None:
    """Refuse a batch size that is not a whole number of rows, 1 or more."""
    if not is_int(batch_size) or batch_size < 1:
        raise error(f"batch_size must be a whole number of rows, 1 or more: {batch_size!r}")


def source_field(
    model: type[models.Model], name: str, error: type[FlakeIDError]
) -> models.DateTimeField[Any, Any]:
    """The ``DateTimeField`` IDs take their times from."""
    field = model_field(model, name, error)
    if not isinstance(field, models.DateTimeField):
        raise error(
            f"{model._meta.label}.{name} is a {type(field).__name__}, not a DateTimeField: "
            "the IDs' times must come from a date and time."
        )
    return field


def model_field(
    model: type[models.Model], name: str, error: type[FlakeIDError]
) -> models.Field[Any, Any]:
    """The field of the model that is a column of its table."""
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise error(f"{model._meta.label} has no field {name!r}.") from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise error(f"{model._meta.label}.{name} is not a column of the table.")
    return field


def update_pairs(
    connection: BaseDatabaseWrapper,
    table: str,
    column: str,
    match: str,
    pairs: list[tuple[Any, Any]],
    *,
    cast: str | None,
    match_cast: str | None = None,
    where: str = "",
    params: Sequence[Any] = (),
) -> int:
    """Set ``column`` to ``new`` in the rows whose ``match`` is ``old``, for each (old, new) pair.

    ``where`` (with ``params``) narrows the rows further. ``cast`` and ``match_cast`` (the
    same by default) are the types of ``column`` and ``match``: PostgreSQL reads the pairs as
    two arrays of them, joined to the table, in a statement whose size does not grow with the
    batch. Elsewhere the statement is the one ``bulk_update()`` makes, written out: building
    it from ``Case`` and ``When`` expressions costs more than the database spends running it.
    Returns how many rows it changed.
    """
    quote = connection.ops.quote_name
    target, key = quote(column), quote(match)
    condition = f" AND {where}" if where else ""
    match_cast = match_cast or cast
    with connection.cursor() as cursor:
        if connection.vendor == "postgresql" and cast and match_cast:
            cursor.execute(
                f"UPDATE {quote(table)} SET {target} = flakeid_pairs.new "
                f"FROM unnest(%s::{match_cast}[], %s::{cast}[]) AS flakeid_pairs(old, new) "
                f"WHERE {quote(table)}.{key} = flakeid_pairs.old{condition}",
                [[old for old, _new in pairs], [new for _old, new in pairs], *params],
            )
            return int(cursor.rowcount)
        limit = connection.features.max_query_params
        # Two placeholders per row in the CASE and one in the IN list, plus those of ``where``.
        step = len(pairs) if limit is None else max(1, (limit - len(params)) // 3)
        changed = 0
        for start in range(0, len(pairs), step):
            chunk = pairs[start : start + step]
            case = f"CASE {key}{' WHEN %s THEN %s' * len(chunk)} END"
            cursor.execute(
                f"UPDATE {quote(table)} SET {target} = {case} "
                f"WHERE {key} IN ({', '.join(['%s'] * len(chunk))}){condition}",
                [*chain.from_iterable(chunk), *(old for old, _new in chunk), *params],
            )
            changed += cursor.rowcount
        return changed


class Numbering:
    """Walks the rows to number a batch at a time, in the order of the IDs they get.

    Subclasses choose the order and make the IDs; the job says where they go (``write``) and
    in which transaction (``atomic``). With ``lock`` each batch locks its rows as it reads
    them, so that no one refers to them anew until the batch commits.
    """

    def __init__(self, rows: models.QuerySet[Any], *, lock: bool = False) -> None:
        self.rows = rows
        self.lock = lock

    def run(
        self,
        batch_size: int,
        progress: ProgressCallback | None,
        write: Write,
        atomic: Atomic,
    ) -> tuple[int, float]:
        """Number every pending row; returns how many ``write`` changed, and the seconds."""
        started = time.monotonic()
        done = 0
        try:
            self.prepare()
            # One pass walks the pending rows in order. Rows that appear behind it while it
            # runs are picked up by the next pass, until a pass finds nothing to do.
            while remaining := self.pending().count():
                total = done + remaining
                if progress is not None:
                    progress(Progress(done, total, time.monotonic() - started))
                before = done
                for changed in self.batches(batch_size, write, atomic):
                    done += changed
                    total = max(total, done)
                    if progress is not None:
                        progress(Progress(done, total, time.monotonic() - started))
                if done == before:
                    break
        finally:
            self.finish()
        return done, time.monotonic() - started

    def check(self) -> None:
        """Refuse, before anything is written, rows this numbering cannot number."""

    def prepare(self) -> None:
        """Claims made before the first batch."""

    def finish(self) -> None:
        """Release what :meth:`prepare` claimed."""

    def pending(self) -> models.QuerySet[Any]:
        """The rows left to number."""
        return self.rows

    def read(self, rows: models.QuerySet[Any]) -> models.QuerySet[Any]:
        return rows.select_for_update() if self.lock else rows

    def batches(self, batch_size: int, write: Write, atomic: Atomic) -> Iterator[int]:
        """Number the pending rows a batch at a time, yielding how many each batch changed."""
        raise NotImplementedError


class NewIDs(Numbering):
    """New IDs from a generator, in primary key order."""

    def __init__(
        self, rows: models.QuerySet[Any], generator: SnowflakeGenerator, *, lock: bool = False
    ) -> None:
        super().__init__(rows, lock=lock)
        self.generator = generator

    def batches(self, batch_size: int, write: Write, atomic: Atomic) -> Iterator[int]:
        last = None
        while True:
            with atomic():
                rows = self.pending().order_by("pk")
                if last is not None:
                    rows = rows.filter(pk__gt=last)
                pks = list(self.read(rows).values_list("pk", flat=True)[:batch_size])
                if not pks:
                    return
                changed = write(pks, self.generator.next_ids(len(pks)))
            last = pks[-1]
            yield changed


class StampedIDs(Numbering):
    """IDs stamped with each row's own time, for the layout's backfill node.

    ``column`` holds the IDs: every ID stamped is above the highest of the backfill node
    there, counting only values from ``floor`` up. Times before ``earliest_ms`` (the epoch
    unless given, with ``too_early`` saying why) are refused; ``job`` and ``error`` name the
    job in messages and errors.
    """

    def __init__(
        self,
        rows: models.QuerySet[Any],
        source: models.DateTimeField[Any, Any],
        layout: Layout,
        *,
        column: str,
        floor: int = 0,
        earliest_ms: int | None = None,
        too_early: str = "before the layout's epoch ({at}): no ID can carry that time.",
        job: str = "backfill",
        error: type[FlakeIDError] = BackfillError,
        lock: bool = False,
    ) -> None:
        super().__init__(rows, lock=lock)
        self.source = source
        self.layout = layout
        self.column = column
        self.floor = floor
        self.earliest_ms = layout.epoch_ms if earliest_ms is None else earliest_ms
        self.too_early = too_early
        self.job = job
        self.error = error
        node = layout.backfill_node
        if node is None:
            raise error(
                "The layout has no datacenter or machine bits, so no node can be set aside "
                f"for IDs with past times; {job} without from_field (new IDs), or use a "
                "layout with machine bits."
            )
        self.node = node
        self.claim: NodeClaim | None = None
        self.stamper: Stamper | None = None

    def pending(self) -> models.QuerySet[Any]:
        rows: models.QuerySet[Any] = self.rows.filter(**{f"{self.source.name}__isnull": False})
        return rows

    def check(self) -> None:
        label = f"{self.rows.model._meta.label}.{self.source.name}"
        missing = self.rows.filter(**{f"{self.source.name}__isnull": True}).count()
        if missing:
            raise self.error(
                f"{missing:,} {self.described(missing)} no {label} to take the time from; "
                f"give them one, or {self.job} without from_field."
            )
        for lookup, limit, why in (
            ("lt", self.earliest_ms, self.too_early),
            (
                "gte",
                self.layout.max_timestamp_ms + 1,
                "past the layout's last millisecond ({at}): no ID can carry that time.",
            ),
        ):
            moment = _db_datetime(limit)
            if moment is None:
                continue
            row = self.pending().filter(**{f"{self.source.name}__{lookup}": moment}).first()
            if row is not None:
                raise self.error(f"{label} of row {row.pk} is {why.format(at=ms_to_iso(limit))}")

    def described(self, count: int) -> str:
        noun = "empty row" if self.job == "backfill" else "legacy row"
        return f"{noun}s have" if count > 1 else f"{noun} has"

    def prepare(self) -> None:
        self.claim = claim_node(
            self.layout, *self.node, fix=f"Let the other {self.job} finish, then run this one."
        )
        self.stamper = Stamper(self.layout, self.node, self.highest_stamped(), error=self.error)

    def finish(self) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    def highest_stamped(self) -> int | None:
        """The highest ID in the column that belongs to the backfill node."""
        layout = self.layout
        everything = self.rows.model._base_manager.db_manager(self.rows.db)
        # One scan of the table per run: the column has no index yet, or the node bits
        # are in the middle of an ID.
        found = (
            everything.filter(**{f"{self.column}__gte": self.floor})
            .alias(_flakeid_node=F(self.column).bitand(layout.node_mask))
            .filter(_flakeid_node=layout.node_bits(*self.node))
            .aggregate(highest=Max(self.column))["highest"]
        )
        return None if found is None else int(found)

    def batches(self, batch_size: int, write: Write, atomic: Atomic) -> Iterator[int]:
        assert self.stamper is not None
        name = self.source.name
        after: tuple[dt.datetime, Any] | None = None
        while True:
            with atomic():
                rows = self.pending().order_by(name, "pk")
                if after is not None:
                    moment, key = after
                    # The first condition follows from the second; it is there so that the
                    # database starts reading the index at the cursor, not at its beginning.
                    rows = rows.filter(
                        Q(**{f"{name}__gte": moment}),
                        Q(**{f"{name}__gt": moment}) | Q(**{name: moment, "pk__gt": key}),
                    )
                batch = list(self.read(rows).values_list("pk", name)[:batch_size])
                if not batch:
                    return
                ids = [self.stamper.stamp(_ms(moment), key) for key, moment in batch]
                changed = write([key for key, _ in batch], ids)
            after = batch[-1][1], batch[-1][0]
            yield changed


def _db_datetime(ms: int) -> dt.datetime | None:
    # As the database compares it: aware with USE_TZ, local time without. None past datetime.
    try:
        moment = ms_to_datetime(ms)
    except InvalidIDError:
        return None
    if settings.USE_TZ:
        return moment
    return timezone.make_naive(moment, timezone.get_default_timezone())


def _ms(moment: dt.datetime) -> int:
    if timezone.is_naive(moment):
        # Without USE_TZ Django stores local time.
        moment = timezone.make_aware(moment, timezone.get_default_timezone())
    return unix_ms(moment)


class Stamper:
    """Numbers IDs for one node like a generator whose clock reads each row's time.

    ``after`` is an ID of that node already given: every ID stamped is above it. A time
    no ID can carry raises ``error``.
    """

    def __init__(
        self,
        layout: Layout,
        node: tuple[int, int],
        after: int | None = None,
        *,
        error: type[FlakeIDError] = BackfillError,
    ) -> None:
        self.layout = layout
        self.error = error
        self.node = node
        self.node_bits = layout.node_bits(*node)
        self.last_sequence = layout.max_sequence
        if after is None:
            self.ms, self.sequence = layout.epoch_ms - 1, self.last_sequence
        else:
            decoded = layout.decode(after)
            self.ms, self.sequence = decoded.timestamp_ms, decoded.sequence

    def stamp(self, ms: int, key: object = None) -> int:
        """The next ID for a row made at Unix millisecond ``ms`` (``key`` names it in errors)."""
        layout = self.layout
        if ms < layout.epoch_ms:
            raise self.error(
                f"row {key} was made at {ms} ms, before the layout's epoch: no ID can carry "
                "that time."
            )
        if ms > self.ms:
            self.ms, self.sequence = ms, 0
        elif self.sequence < self.last_sequence:
            self.sequence += 1
        else:
            self.ms, self.sequence = self.ms + 1, 0
        if self.ms > layout.max_timestamp_ms:
            raise self.error(
                f"row {key} would need a time past the layout's last millisecond "
                f"({ms_to_iso(layout.max_timestamp_ms)})."
            )
        # Layout.encode() without its checks: the time and sequence are in range by now.
        return (
            ((self.ms - layout.epoch_ms) << layout.timestamp_shift) | self.node_bits | self.sequence
        )
