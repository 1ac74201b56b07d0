"""Changelist filters on the time inside Snowflake IDs, answered by the key's index.

``SnowflakeDateFilter`` offers Today, Past 7 days, This month and This year, and takes any span
through the URL; ``SnowflakeDateHierarchyFilter`` drills down by year, month and day, as
``date_hierarchy`` does for date fields (Django refuses it for other fields). Both filter with
``id >= low AND id < high``; the drill-down finds the years, months or days that have rows with
one index lookup each ("the first ID at or after ..."), never by reading the table through.

Both use the parameters ``<field>__generated_at__...``, and choosing in one clears the other.
Neither counts a key kept from before the table took Snowflake IDs as made at any time.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any, cast

from django.conf import settings
from django.contrib.admin import FieldListFilter
from django.contrib.admin.options import IncorrectLookupParameters
from django.contrib.admin.views.main import ChangeList
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Count, Min, Q
from django.http import HttpRequest
from django.utils import timezone
from django.utils.dateparse import parse_datetime
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.text import format_lazy
from django.utils.translation import gettext_lazy as _

from . import conf
from .errors import FlakeIDError
from .layout import MAX_ID
from .lookups import day_start_ms, id_bounds, local_zone, month_start_ms, next_day_start_ms
from .timefmt import ms_to_datetime


def field_label(field: models.Field[Any, Any]) -> str | Promise:
    """The field's verbose name; an automatic "id" reads better as "ID", as on auto fields."""
    return _("ID") if field.verbose_name == "id" else field.verbose_name


def _local_now() -> dt.datetime:
    # Aware in the current time zone with USE_TZ, naive local time without, as Django's own
    # date filter does.
    return timezone.localtime() if settings.USE_TZ else dt.datetime.now()


def _read_moment(text: str) -> dt.datetime:
    """A URL value, a date or a datetime, read in the current time zone when it has none."""
    # A date alone parses as its midnight.
    moment = parse_datetime(text)
    if moment is None:
        raise ValidationError(f"{text!r} is not a date or a date and time.")
    if timezone.is_naive(moment):
        moment = moment.replace(tzinfo=local_zone())
    return moment


def _id_filter(path: str, start_ms: int | None, end_ms: int | None) -> dict[str, int]:
    # The IDs of a span of milliseconds as plain bounds on the column. Keys kept from before
    # the table took Snowflake IDs hold no time: no span of time holds them, the epoch's
    # first day included, so the drill-down never lists a year for them.
    layout = conf.get_layout()
    low, high = id_bounds(layout, (start_ms, end_ms))
    bounds = {f"{path}__gte": max(low, layout.min_snowflake_id)}
    if high <= MAX_ID:
        bounds[f"{path}__lt"] = high
    return bounds


class SnowflakeDateFilter(FieldListFilter):
    """Rows by when their ID was made: today, the past 7 days, this month, this year.

    Any other span comes through the URL, as dates or datetimes read in the current time zone:
    ``?id__generated_at__gte=2024-03-01&id__generated_at__lt=2024-04-01``. A nullable field
    also offers "No date" and "Has date".
    """

    def __init__(  # noqa: PLR0917 - the signature Django calls
        self,
        field: models.Field[Any, Any],
        request: HttpRequest,
        params: dict[str, list[str]],
        model: type[models.Model],
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.prefix = f"{field_path}__generated_at__"
        self.since, self.until = f"{self.prefix}gte", f"{self.prefix}lt"
        self.isnull = f"{self.prefix}isnull"
        self.given = {
            name: values[-1] for name, values in params.items() if name in self.parameters(field)
        }
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = format_lazy(_("date (from {})"), field_label(field))
        self.links = self.periods()

    def parameters(self, field: models.Field[Any, Any]) -> list[str | None]:
        return [self.since, self.until, *([self.isnull] if field.null else [])]

    def expected_parameters(self) -> list[str | None]:
        return self.parameters(self.field)

    def periods(self) -> list[tuple[str | Promise, dict[str, Any]]]:
        today = _local_now().replace(hour=0, minute=0, second=0, microsecond=0)
        # Whole calendar days: adding days to an aware datetime keeps its wall-clock time,
        # and the zone gives the offset of that day.
        tomorrow = today + dt.timedelta(days=1)
        month = today.replace(day=1)
        next_month = (month + dt.timedelta(days=32)).replace(day=1)
        year = today.replace(month=1, day=1)
        links: list[tuple[str | Promise, dict[str, Any]]] = [
            (_("Any date"), {}),
            (_("Today"), {self.since: today, self.until: tomorrow}),
            (_("Past 7 days"), {self.since: today - dt.timedelta(days=7), self.until: tomorrow}),
            (_("This month"), {self.since: month, self.until: next_month}),
            (_("This year"), {self.since: year, self.until: year.replace(year=year.year + 1)}),
        ]
        if self.field.null:
            links += [(_("No date"), {self.isnull: True}), (_("Has date"), {self.isnull: False})]
        return links

    def queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> Any:
        lookups: dict[str, Any] = {}
        try:
            for name, values in self.used_parameters.items():
                value = cast("list[Any]", values)[-1]
                lookups[name] = value if name == self.isnull else _read_moment(value)
            return queryset.filter(**lookups)
        except (ValueError, ValidationError) as error:
            raise IncorrectLookupParameters(error) from error

    def get_facet_counts(self, pk_attname: str, filtered_qs: models.QuerySet[Any]) -> Any:
        return {
            f"{index}__c": Count(pk_attname, filter=Q(**params))
            for index, (_title, params) in enumerate(self.links)
        }

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else None
        chosen = False
        for index, (title, params) in enumerate(self.links):
            as_text = {name: _as_text(value) for name, value in params.items()}
            selected = self.given == as_text
            chosen = chosen or selected
            yield {
                "selected": selected,
                "query_string": changelist.get_query_string(as_text, [self.prefix]),
                "display": title if counts is None else f"{title} ({counts[f'{index}__c']})",
            }
        if not chosen and (self.since in self.given or self.until in self.given):
            # A span typed into the URL: shown, so that the list says what it holds.
            yield {
                "selected": True,
                "query_string": changelist.get_query_string(),
                "display": self.describe_span(),
            }

    def describe_span(self) -> str:
        since, until = self.given.get(self.since), self.given.get(self.until)
        if since and until:
            return str(format_lazy(_("From {} to {}"), since, until))
        if since:
            return str(format_lazy(_("From {}"), since))
        return str(format_lazy(_("Before {}"), until))


def _as_text(value: Any) -> str:
    return value.isoformat() if isinstance(value, dt.datetime) else str(value)


@dataclass(frozen=True)
class _Unit:
    """A year, a month or a day of the local calendar."""

    year: int
    month: int | None = None
    day: int | None = None

    @property
    def depth(self) -> int:
        return 1 if self.month is None else 2 if self.day is None else 3

    def span(self) -> tuple[int, int]:
        zone = local_zone()
        if self.month is None:
            return month_start_ms(self.year, 1, zone), month_start_ms(self.year + 1, 1, zone)
        if self.day is None:
            return (
                month_start_ms(self.year, self.month, zone),
                month_start_ms(self.year, self.month + 1, zone),
            )
        date = dt.date(self.year, self.month, self.day)
        return day_start_ms(date, zone), next_day_start_ms(date, zone)

    def child(self, moment: dt.datetime) -> _Unit:
        """The unit one level down that holds ``moment``."""
        if self.month is None:
            return _Unit(moment.year, moment.month)
        return _Unit(moment.year, moment.month, moment.day)

    def label(self) -> str:
        if self.month is None:
            return str(self.year)
        date = dt.date(self.year, self.month, self.day or 1)
        if self.day is None:
            return date_format(date, "YEAR_MONTH_FORMAT")
        return date_format(date, "DATE_FORMAT")


class SnowflakeDateHierarchyFilter(FieldListFilter):
    """A drill-down by the year, then the month, then the day each ID was made.

    Only years, months and days that have rows are listed, each found with one lookup on the
    index ("the smallest ID at or after the start of ..."), so a large table is never read
    through. The calendar is the current time zone's.
    """

    template = "django_flakeid/drilldown_filter.html"

    def __init__(  # noqa: PLR0917 - the signature Django calls
        self,
        field: models.Field[Any, Any],
        request: HttpRequest,
        params: dict[str, list[str]],
        model: type[models.Model],
        model_admin: Any,
        field_path: str,
    ) -> None:
        self.prefix = f"{field_path}__generated_at__"
        self.names = [f"{self.prefix}{part}" for part in ("year", "month", "day")]
        super().__init__(field, request, params, model, model_admin, field_path)
        self.title = format_lazy(_("year, month and day (from {})"), field_label(field))
        self.entries: list[tuple[_Unit, bool]] = []

    def expected_parameters(self) -> list[str | None]:
        return [*self.names]

    def selected(self) -> _Unit | None:
        """The unit chosen in the URL; IncorrectLookupParameters for a bad combination."""
        parts = [cast("list[str] | None", self.used_parameters.get(name)) for name in self.names]
        given = [values[-1] if values else None for values in parts]
        if given == [None, None, None]:
            return None
        try:
            numbers = [None if text is None else int(text) for text in given]
            year, month, day = numbers
            if year is None or (day is not None and month is None):
                raise ValueError("a day needs a month, and a month a year")
            dt.date(year, month or 1, day or 1)
        except (TypeError, ValueError) as error:
            raise IncorrectLookupParameters(error) from error
        return _Unit(year, month, day)

    def queryset(self, request: HttpRequest, queryset: models.QuerySet[Any]) -> Any:
        unit = self.selected()
        if unit is None:
            return queryset
        return queryset.filter(**_id_filter(self.field_path, *unit.span()))

    def walk(self, queryset: models.QuerySet[Any], within: _Unit | None) -> Iterator[_Unit]:
        """The units one level below ``within`` (years, at the top) that hold rows."""
        layout = conf.get_layout()
        start, end = (None, None) if within is None else within.span()
        while True:
            bounds = _id_filter(self.field_path, start, end)
            if bounds[f"{self.field_path}__gte"] > MAX_ID:
                return
            first = queryset.filter(**bounds).aggregate(first=Min(self.field_path))["first"]
            if first is None:
                return
            try:
                moment = ms_to_datetime(layout.decode(first).timestamp_ms)
            except FlakeIDError:
                return  # past the year 9999: no calendar to show
            local = timezone.localtime(moment, local_zone())
            unit = _Unit(local.year) if within is None else within.child(local)
            yield unit
            start = unit.span()[1]

    def get_facet_counts(self, pk_attname: str, filtered_qs: models.QuerySet[Any]) -> Any:
        return {
            f"{index}__c": Count(pk_attname, filter=Q(**_id_filter(self.field_path, *unit.span())))
            for index, (unit, _link) in enumerate(self.entries)
        }

    def choices(self, changelist: ChangeList) -> Iterator[Any]:
        chosen = self.selected()
        path: list[_Unit] = []
        if chosen is not None:
            path = [_Unit(chosen.year)]
            if chosen.month is not None:
                path.append(_Unit(chosen.year, chosen.month))
            if chosen.day is not None:
                path.append(chosen)
        at_the_bottom = chosen is not None and chosen.day is not None
        children = [] if at_the_bottom else list(self.walk(changelist.queryset, chosen))
        self.entries = [(unit, True) for unit in path] + [(unit, False) for unit in children]
        counts = self.get_facet_queryset(changelist) if changelist.add_facets else None
        yield {
            "selected": chosen is None,
            "query_string": changelist.get_query_string(remove=[self.prefix]),
            "display": _("All dates"),
            "depth": 0,
        }
        for index, (unit, on_path) in enumerate(self.entries):
            label = unit.label()
            yield {
                "selected": on_path and unit == chosen,
                "query_string": changelist.get_query_string(self.params_of(unit), [self.prefix]),
                "display": label if counts is None else f"{label} ({counts[f'{index}__c']})",
                "depth": unit.depth,
            }

    def params_of(self, unit: _Unit) -> dict[str, str]:
        values = (unit.year, unit.month, unit.day)
        return {
            name: str(value)
            for name, value in zip(self.names, values, strict=True)
            if value is not None
        }
