"""``generated_at``: filter on the time inside Snowflake IDs, as ranges of the raw column.

An ID starts with its timestamp, so "made in March" is ``id >= low AND id < high``: the bounds
are worked out in Python from the layout in ``settings.FLAKEID``, and the database compares
the plain column, which its index on the key answers. The SQL never shifts or divides.

``generated_at`` supports ``exact``, ``gt``, ``gte``, ``lt``, ``lte``, ``range``, ``in`` and
``isnull``, and the transforms ``date``, ``year`` and ``month`` with the same lookups. Local
calendar boundaries follow Django's rules: the current time zone when ``USE_TZ`` is on, the
default one (naive datetimes are local time) when it is off.

A key below ``Layout.min_snowflake_id`` (kept from before the table took Snowflake IDs)
holds no time: no comparison of time matches it, and ``isnull=True`` does, as for NULL.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Iterator
from typing import Any, cast

from django.conf import settings
from django.core.exceptions import EmptyResultSet, FieldError
from django.db import NotSupportedError
from django.db.backends.base.base import BaseDatabaseWrapper
from django.db.models import DateField, DateTimeField, Expression, IntegerField
from django.db.models.lookups import Lookup, Transform
from django.db.models.sql.compiler import SQLCompiler
from django.db.models.sql.where import AND, OR, WhereNode
from django.utils import timezone

from . import conf
from .fields import SnowflakeField
from .layout import MAX_ID, Layout
from .timefmt import ms_to_datetime, unix_ms

#: A half-open span of Unix milliseconds; None is unbounded.
Span = tuple[int | None, int | None]
SQL = tuple[str, tuple[Any, ...]]
# Stands for "before any ID" and "after any ID" when a calendar bound is outside datetime's
# years 1 to 9999; the layout clamps it.
_FAR_MS = 1 << 80
_DATETIME = DateTimeField()
_DATE = DateField()
_INTEGER = IntegerField()


def local_zone() -> dt.tzinfo:
    """The zone calendar lookups use: the current one with ``USE_TZ``, else the default one."""
    if settings.USE_TZ:
        return timezone.get_current_timezone()
    return timezone.get_default_timezone()


def day_start_ms(day: dt.date, zone: dt.tzinfo) -> int:
    """Unix milliseconds of the first instant of ``day`` in ``zone``.

    A midnight skipped by a daylight-saving change reads, with ``fold=0``, as the instant of
    the change, which is when that day begins.
    """
    return unix_ms(dt.datetime.combine(day, dt.time(), tzinfo=zone))


def month_start_ms(year: int, month: int, zone: dt.tzinfo) -> int:
    """Unix milliseconds of the first instant of a month; ``month`` 13 is January next year."""
    year, month = year + (month - 1) // 12, (month - 1) % 12 + 1
    if year > dt.MAXYEAR:
        return _FAR_MS
    if year < dt.MINYEAR:
        return -_FAR_MS
    return day_start_ms(dt.date(year, month, 1), zone)


def next_day_start_ms(day: dt.date, zone: dt.tzinfo) -> int:
    if day == dt.date.max:
        return _FAR_MS
    return day_start_ms(day + dt.timedelta(days=1), zone)


def id_bounds(layout: Layout, span: Span) -> tuple[int, int]:
    """The IDs of a span of milliseconds, as ``(low, high)`` with ``low <= id < high``."""
    start, end = span
    return layout.id_range(
        layout.epoch_ms if start is None else start,
        layout.max_timestamp_ms + 1 if end is None else end,
    )


def _unit_spans(lookup_name: str, start: int, end: int, frame: Span = (None, None)) -> list[Span]:
    # A comparison against one unit of time [start, end): a day, a year, one month of a year.
    # The frame stands in for "unbounded" where the unit repeats (the months of each year).
    first, last = frame
    spans: dict[str, Span] = {
        "exact": (start, end),
        "gt": (end, last),
        "gte": (start, last),
        "lt": (first, start),
        "lte": (first, end),
    }
    return [spans[lookup_name]]


class _TimeTransform(Transform):
    """A time read out of an ID. It filters only: the SQL compares the raw column."""

    lookup_name: str

    def get_lookup(self, lookup_name: str) -> type[Lookup[Any]] | None:
        # Only the lookups registered here: the output field's others would need the time
        # computed in SQL.
        found = self.get_lookups().get(lookup_name)
        return found if isinstance(found, type) and issubclass(found, Lookup) else None

    def get_transform(self, lookup_name: str) -> type[Transform] | None:
        found = self.get_lookups().get(lookup_name)
        if found is None:
            # Django asks for a transform last; its own message would list the lookups of
            # the output field, which do not apply here.
            raise FieldError(
                f"Unsupported lookup '{lookup_name}' for {self.path} of a Snowflake ID; "
                f"use one of {', '.join(sorted(self.get_lookups()))}."
            )
        return found if issubclass(found, Transform) else None

    @property
    def path(self) -> str:
        """``generated_at``, ``generated_at__date``, ...: how the filter names this transform."""
        if isinstance(self.lhs, _TimeTransform):
            return f"{self.lhs.path}__{self.lookup_name}"
        return self.lookup_name

    @property
    def column(self) -> Expression:
        """The expression holding the raw ID, under any chain of time transforms."""
        lhs = self.lhs
        while isinstance(lhs, _TimeTransform):
            lhs = lhs.lhs
        return lhs

    def as_sql(
        self,
        compiler: SQLCompiler,
        connection: BaseDatabaseWrapper,
        function: str | None = None,
        template: str | None = None,
        arg_joiner: str | None = None,
        **extra_context: Any,
    ) -> SQL:
        raise NotSupportedError(
            f"'{self.path}' of a Snowflake ID can only be filtered on, e.g. "
            "filter(id__generated_at__gte=...); to read an ID's time, decode it with "
            "SnowflakeField.decode()."
        )

    def prepare(self, value: Any) -> Any:
        """Check and convert one right-hand value when the filter is built."""
        raise NotImplementedError

    def spans(self, lookup_name: str, value: Any) -> list[Span]:
        """The spans of milliseconds the comparison selects, when the query is compiled."""
        raise NotImplementedError


class GeneratedAt(_TimeTransform):
    """``id__generated_at``: the instant the ID was made, to the millisecond."""

    lookup_name = "generated_at"
    output_field = DateTimeField()

    def prepare(self, value: Any) -> dt.datetime:
        # Django's own conversion: strings and dates are parsed, and with USE_TZ a naive
        # value is read in the default time zone with a RuntimeWarning.
        return cast("dt.datetime", _DATETIME.get_prep_value(value))

    def spans(self, lookup_name: str, value: dt.datetime) -> list[Span]:
        if value.utcoffset() is None:
            # Without USE_TZ, naive datetimes are local time, as Django stores them.
            value = timezone.make_aware(value, timezone.get_default_timezone())
        floor = unix_ms(value)
        whole = unix_ms(value, round_up=True) == floor
        # An ID's time is a whole millisecond: it equals only a whole-millisecond value, is
        # after any instant within the millisecond before it, and so on.
        spans: dict[str, Span] = {
            "exact": (floor, floor + 1) if whole else (floor, floor),
            "gt": (floor + 1, None),
            "gte": (floor if whole else floor + 1, None),
            "lt": (None, floor if whole else floor + 1),
            "lte": (None, floor + 1),
        }
        return [spans[lookup_name]]


class GeneratedDate(_TimeTransform):
    """``id__generated_at__date``: the local calendar day the ID was made."""

    lookup_name = "date"
    output_field = DateField()

    def prepare(self, value: Any) -> dt.date:
        return cast("dt.date", _DATE.get_prep_value(value))

    def spans(self, lookup_name: str, value: dt.date) -> list[Span]:
        zone = local_zone()
        return _unit_spans(lookup_name, day_start_ms(value, zone), next_day_start_ms(value, zone))


class GeneratedYear(_TimeTransform):
    """``id__generated_at__year``: the local calendar year the ID was made."""

    lookup_name = "year"
    output_field = IntegerField()

    def prepare(self, value: Any) -> int:
        return int(_INTEGER.get_prep_value(value))

    def spans(self, lookup_name: str, value: int) -> list[Span]:
        zone = local_zone()
        return _unit_spans(
            lookup_name, month_start_ms(value, 1, zone), month_start_ms(value + 1, 1, zone)
        )


class GeneratedMonth(_TimeTransform):
    """``id__generated_at__month``: the month of the year (1 to 12), in every year.

    One span per year the layout can stamp (71 for a 41-bit timestamp), merged where they
    touch; combine it with ``year``, or use ``range``, to select one month.
    """

    lookup_name = "month"
    output_field = IntegerField()

    def prepare(self, value: Any) -> int:
        return int(_INTEGER.get_prep_value(value))

    def spans(self, lookup_name: str, value: int) -> list[Span]:
        zone = local_zone()
        month = min(max(value, 1), 13)
        after = min(max(value + 1, 1), 13)
        spans: list[Span] = []
        for year in _years(conf.get_layout(), zone):
            spans += _unit_spans(
                lookup_name,
                month_start_ms(year, month, zone),
                month_start_ms(year, after, zone),
                (month_start_ms(year, 1, zone), month_start_ms(year, 13, zone)),
            )
        return spans


def _years(layout: Layout, zone: dt.tzinfo) -> range:
    # The local years of the layout's first and last milliseconds, within datetime's years.
    first = timezone.localtime(ms_to_datetime(max(layout.epoch_ms, 0)), zone).year
    last_ms = min(layout.max_timestamp_ms, unix_ms(dt.datetime(dt.MAXYEAR, 12, 30)))
    last = timezone.localtime(ms_to_datetime(last_ms), zone).year
    return range(first, last + 1)


class _TimeLookup(Lookup):
    """A comparison on a time transform, compiled to ranges of the raw column."""

    prepare_rhs = False
    lhs: _TimeTransform

    def get_prep_lookup(self) -> Any:
        if self.rhs is None:
            return None
        if hasattr(self.rhs, "resolve_expression"):
            raise ValueError(
                f"'{self.lhs.path}__{self.lookup_name}' needs a value, not an "
                "expression: the ID bounds are worked out before the query runs."
            )
        return self.prepare_value(self.rhs)

    def prepare_value(self, value: Any) -> Any:
        return self.lhs.prepare(value)

    def spans(self) -> Iterable[Span]:
        return self.lhs.spans(str(self.lookup_name), self.rhs)

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        return compile_id_ranges(
            self.lhs.column, id_ranges(conf.get_layout(), self.spans()), compiler, connection
        )


def id_ranges(layout: Layout, spans: Iterable[Span]) -> list[tuple[int, int]]:
    """The spans as sorted, merged, non-empty ``(low, high)`` ranges of IDs.

    No range reaches below ``layout.min_snowflake_id``: smaller keys hold no time.
    """
    merged: list[tuple[int, int]] = []
    for bounds in sorted(id_bounds(layout, span) for span in spans):
        low, high = max(bounds[0], layout.min_snowflake_id), bounds[1]
        if low >= high:
            continue
        if merged and low <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], high))
        else:
            merged.append((low, high))
    return merged


def compile_id_ranges(
    column: Expression,
    ranges: list[tuple[int, int]],
    compiler: SQLCompiler,
    connection: BaseDatabaseWrapper,
) -> SQL:
    """``column >= low AND column < high``, OR-ed over the ranges; no ranges match nothing."""
    if not ranges:
        raise EmptyResultSet
    field = column.output_field
    gte, lt = field.get_lookup("gte"), field.get_lookup("lt")
    assert gte is not None
    assert lt is not None
    nodes: list[Any] = []
    for low, high in ranges:
        # The upper bound is left out at the top of the ID space, which no bigint passes.
        conditions: list[Any] = [gte(column, low)]
        if high <= MAX_ID:
            conditions.append(lt(column, high))
        nodes.append(WhereNode(conditions, AND))
    where = nodes[0] if len(nodes) == 1 else WhereNode(nodes, OR)
    sql, params = where.as_sql(compiler, connection)
    return sql, tuple(params)


@_TimeTransform.register_lookup
class TimeExact(_TimeLookup):
    lookup_name = "exact"


@_TimeTransform.register_lookup
class TimeGreaterThan(_TimeLookup):
    lookup_name = "gt"


@_TimeTransform.register_lookup
class TimeGreaterThanOrEqual(_TimeLookup):
    lookup_name = "gte"


@_TimeTransform.register_lookup
class TimeLessThan(_TimeLookup):
    lookup_name = "lt"


@_TimeTransform.register_lookup
class TimeLessThanOrEqual(_TimeLookup):
    lookup_name = "lte"


@_TimeTransform.register_lookup
class TimeRange(_TimeLookup):
    """Both ends included, as Django's ``range`` (SQL ``BETWEEN``)."""

    lookup_name = "range"

    def prepare_value(self, value: Any) -> tuple[Any, Any]:
        try:
            start, end = value
        except (TypeError, ValueError):
            raise ValueError(f"'range' needs two values (start, end), got {value!r}") from None
        return self.lhs.prepare(start), self.lhs.prepare(end)

    def spans(self) -> Iterable[Span]:
        start, end = self.rhs
        # From the start of the first unit to the end of the last; for months, in each year.
        starts = self.lhs.spans("gte", start)
        ends = self.lhs.spans("lte", end)
        return [(low, high) for (low, _), (_, high) in zip(starts, ends, strict=True)]


@_TimeTransform.register_lookup
class TimeIn(_TimeLookup):
    lookup_name = "in"

    def prepare_value(self, value: Any) -> list[Any]:
        if isinstance(value, str | bytes) or not isinstance(value, Iterable):
            raise ValueError(f"'in' needs a list of values, got {value!r}")
        return [self.lhs.prepare(item) for item in value if item is not None]

    def spans(self) -> Iterator[Span]:
        for item in self.rhs:
            yield from self.lhs.spans("exact", item)


@_TimeTransform.register_lookup
class TimeIsNull(Lookup):
    """``generated_at__isnull``: the value holds no time (NULL, or a key below
    ``Layout.min_snowflake_id``), or it does.
    """

    lookup_name = "isnull"
    prepare_rhs = False

    def as_sql(self, compiler: SQLCompiler, connection: BaseDatabaseWrapper) -> SQL:
        column = self.lhs.column
        field = column.output_field
        isnull, lt, gte = (field.get_lookup(name) for name in ("isnull", "lt", "gte"))
        assert isnull is not None
        assert lt is not None
        assert gte is not None
        lowest = conf.get_layout().min_snowflake_id
        # Compiling Django's own lookup checks the value, with its message. Either way the
        # condition is never NULL, as IS NULL is not, which exclude() relies on.
        condition: Any = isnull(column, self.rhs)
        if self.rhs is True:
            condition = WhereNode([condition, lt(column, lowest)], OR)
        elif self.rhs is False:
            condition = WhereNode([condition, gte(column, lowest)], AND)
        sql, params = compiler.compile(condition)
        return sql, tuple(params)


GeneratedAt.register_lookup(GeneratedDate)
GeneratedAt.register_lookup(GeneratedYear)
GeneratedAt.register_lookup(GeneratedMonth)


class RelatedGeneratedAt(GeneratedAt):
    """``order__generated_at``: the time of the Snowflake ID a ForeignKey points to."""

    def __init__(self, expression: Any, *args: Any, **kwargs: Any) -> None:
        field = getattr(expression, "output_field", None)
        target = getattr(field, "target_field", None)
        if not isinstance(target, SnowflakeField):
            raise FieldError(
                f"'generated_at' needs a SnowflakeField; {field} points to {target}, which is "
                "not one."
            )
        super().__init__(expression, *args, **kwargs)
