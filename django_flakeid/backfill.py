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
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from itertools import chain
from typing import Any

from django.conf import settings
from django.core.exceptions import FieldDoesNotExist
from django.db import connections, models, router, transaction
from django.db.models import F, Max, Q
from django.utils import timezone

from . import conf

# The explicit re-export keeps ``django_flakeid.backfill.BackfillError`` valid for type checkers.
from .errors import BackfillError as BackfillError  # noqa: PLC0414
from .errors import InvalidIDError
from .fields import SnowflakeField
from .generator import SnowflakeGenerator
from .hostclaim import NodeClaim, claim_node
from .ints import is_int
from .layout import Layout
from .progress import Progress
from .timefmt import ms_to_datetime, ms_to_iso, unix_ms

DEFAULT_BATCH_SIZE = 1000

ProgressCallback = Callable[[Progress], None]


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
    if not is_int(batch_size) or batch_size < 1:
        raise BackfillError(f"batch_size must be a whole number of rows, 1 or more: {batch_size!r}")
    db = using or router.db_for_write(model)
    job: _Job
    if from_field is None:
        job = _NewIDs(model, target, db, conf.get_generator())
    else:
        job = _StampedIDs(model, target, db, _source_field(model, from_field), conf.get_layout())
    return job.run(batch_size, progress)


def _target_field(model: type[models.Model], name: str) -> SnowflakeField[Any, Any]:
    field = _field(model, name)
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


def _source_field(model: type[models.Model], name: str) -> models.DateTimeField[Any, Any]:
    field = _field(model, name)
    if not isinstance(field, models.DateTimeField):
        raise BackfillError(
            f"{model._meta.label}.{name} is a {type(field).__name__}, not a DateTimeField: "
            "the IDs' times must come from a date and time."
        )
    return field


def _field(model: type[models.Model], name: str) -> models.Field[Any, Any]:
    try:
        field = model._meta.get_field(name)
    except FieldDoesNotExist:
        raise BackfillError(f"{model._meta.label} has no field {name!r}.") from None
    if not isinstance(field, models.Field) or not field.concrete or field.many_to_many:
        raise BackfillError(f"{model._meta.label}.{name} is not a column of the table.")
    return field


class _Job:
    """Walks the empty rows in batches; subclasses choose the order and make the IDs."""

    def __init__(
        self, model: type[models.Model], target: SnowflakeField[Any, Any], db: str
    ) -> None:
        self.model = model
        self.target = target
        self.db = db
        self.rows: models.QuerySet[Any] = model._base_manager.db_manager(db).all()
        self.empty: models.QuerySet[Any] = self.rows.filter(**{f"{target.name}__isnull": True})

    def run(self, batch_size: int, progress: ProgressCallback | None) -> BackfillResult:
        started = time.monotonic()
        done = 0
        try:
            self.prepare()
            # One pass walks the empty rows in order. Rows that appear behind it while it runs
            # are picked up by the next pass, until a pass finds nothing to do.
            while remaining := self.pending().count():
                total = done + remaining
                if progress is not None:
                    progress(Progress(done, total, time.monotonic() - started))
                before = done
                for filled in self.batches(batch_size):
                    done += filled
                    total = max(total, done)
                    if progress is not None:
                        progress(Progress(done, total, time.monotonic() - started))
                if done == before:
                    break
        finally:
            self.finish()
        return BackfillResult(done, time.monotonic() - started)

    def prepare(self) -> None:
        """Checks and claims made before the first batch."""

    def finish(self) -> None:
        """Release what :meth:`prepare` claimed."""

    def pending(self) -> models.QuerySet[Any]:
        """The rows this job fills."""
        return self.empty

    def batches(self, batch_size: int) -> Iterator[int]:
        """Fill the pending rows a batch at a time, yielding how many each batch filled."""
        raise NotImplementedError

    def write(self, pks: list[Any], ids: list[int]) -> int:
        """Set the IDs of the rows still empty, in as few UPDATEs as the backend allows.

        The statement is the one ``bulk_update()`` makes, written out: building it from
        ``Case`` and ``When`` expressions costs more than the database spends running it.
        """
        connection = connections[self.db]
        quote = connection.ops.quote_name
        meta = self.model._meta
        pk = meta.pk
        assert pk is not None
        table, key = quote(meta.db_table), quote(str(pk.column))
        column = quote(str(self.target.column))
        step = max(1, connection.ops.bulk_batch_size([pk, pk, self.target], pks))
        filled = 0
        with connection.cursor() as cursor:
            for start in range(0, len(pks), step):
                keys = [
                    pk.get_db_prep_value(value, connection) for value in pks[start : start + step]
                ]
                values = ids[start : start + step]
                case = f"CASE {key}{' WHEN %s THEN %s' * len(keys)} END"
                if connection.features.requires_casted_case_in_updates:
                    case = f"CAST({case} AS {self.target.cast_db_type(connection)})"
                # Rows someone else filled meanwhile keep their value.
                cursor.execute(
                    f"UPDATE {table} SET {column} = {case} "
                    f"WHERE {key} IN ({', '.join(['%s'] * len(keys))}) AND {column} IS NULL",
                    [*chain.from_iterable(zip(keys, values, strict=True)), *keys],
                )
                filled += cursor.rowcount
        return filled


class _NewIDs(_Job):
    """New IDs from the project's generator, in primary key order."""

    def __init__(
        self,
        model: type[models.Model],
        target: SnowflakeField[Any, Any],
        db: str,
        generator: SnowflakeGenerator,
    ) -> None:
        super().__init__(model, target, db)
        self.generator = generator

    def batches(self, batch_size: int) -> Iterator[int]:
        last = None
        while True:
            with transaction.atomic(using=self.db):
                rows = self.empty.order_by("pk")
                if last is not None:
                    rows = rows.filter(pk__gt=last)
                pks = list(rows.values_list("pk", flat=True)[:batch_size])
                if not pks:
                    return
                filled = self.write(pks, self.generator.next_ids(len(pks)))
            last = pks[-1]
            yield filled


class _StampedIDs(_Job):
    """IDs stamped with each row's own time, for the layout's backfill node."""

    def __init__(
        self,
        model: type[models.Model],
        target: SnowflakeField[Any, Any],
        db: str,
        source: models.DateTimeField[Any, Any],
        layout: Layout,
    ) -> None:
        super().__init__(model, target, db)
        self.source = source
        self.layout = layout
        node = layout.backfill_node
        if node is None:
            raise BackfillError(
                "The layout has no datacenter or machine bits, so no node can be set aside "
                "for IDs with past times; backfill without from_field (new IDs), or use a "
                "layout with machine bits."
            )
        self.node = node
        self.claim: NodeClaim | None = None
        self.stamper: Stamper | None = None

    def pending(self) -> models.QuerySet[Any]:
        rows: models.QuerySet[Any] = self.empty.filter(**{f"{self.source.name}__isnull": False})
        return rows

    def prepare(self) -> None:
        label = f"{self.model._meta.label}.{self.source.name}"
        missing = self.empty.filter(**{f"{self.source.name}__isnull": True}).count()
        if missing:
            raise BackfillError(
                f"{missing:,} empty row{'s have' if missing > 1 else ' has'} no {label} to "
                "take the time from; give them one, or backfill without from_field."
            )
        layout = self.layout
        for lookup, limit, where in (
            ("lt", layout.epoch_ms, "before the layout's epoch"),
            ("gte", layout.max_timestamp_ms + 1, "past the layout's last millisecond"),
        ):
            moment = _db_datetime(limit)
            if moment is None:
                continue
            row = self.pending().filter(**{f"{self.source.name}__{lookup}": moment}).first()
            if row is not None:
                raise BackfillError(
                    f"{label} of row {row.pk} is {where} ({ms_to_iso(limit)}): "
                    "no ID can carry that time."
                )
        self.claim = claim_node(
            layout, *self.node, fix="Let the other backfill finish, then run this one."
        )
        self.stamper = Stamper(layout, self.node, self.highest_stamped())

    def finish(self) -> None:
        if self.claim is not None:
            self.claim.release()
            self.claim = None

    def highest_stamped(self) -> int | None:
        """The highest ID in the column that belongs to the backfill node."""
        layout = self.layout
        # One scan of the table per run: the column has no index yet.
        found = (
            self.rows.filter(**{f"{self.target.name}__gte": 0})
            .alias(_flakeid_node=F(self.target.name).bitand(layout.node_mask))
            .filter(_flakeid_node=layout.node_bits(*self.node))
            .aggregate(highest=Max(self.target.name))["highest"]
        )
        return None if found is None else int(found)

    def batches(self, batch_size: int) -> Iterator[int]:
        assert self.stamper is not None
        name = self.source.name
        after: tuple[dt.datetime, Any] | None = None
        while True:
            with transaction.atomic(using=self.db):
                rows = self.pending().order_by(name, "pk")
                if after is not None:
                    moment, key = after
                    # The first condition follows from the second; it is there so that the
                    # database starts reading the index at the cursor, not at its beginning.
                    rows = rows.filter(
                        Q(**{f"{name}__gte": moment}),
                        Q(**{f"{name}__gt": moment}) | Q(**{name: moment, "pk__gt": key}),
                    )
                batch = list(rows.values_list("pk", name)[:batch_size])
                if not batch:
                    return
                ids = [self.stamper.stamp(_ms(moment), key) for key, moment in batch]
                filled = self.write([key for key, _ in batch], ids)
            after = batch[-1][1], batch[-1][0]
            yield filled


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

    ``after`` is an ID of that node already given: every ID stamped is above it.
    """

    def __init__(self, layout: Layout, node: tuple[int, int], after: int | None = None) -> None:
        self.layout = layout
        self.node = node
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
            raise BackfillError(
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
            raise BackfillError(
                f"row {key} would need a time past the layout's last millisecond "
                f"({ms_to_iso(layout.max_timestamp_ms)})."
            )
        return layout.encode(self.ms, *self.node, self.sequence)
