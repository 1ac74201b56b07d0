"""django-filter: filter Snowflake-keyed models by the time inside their IDs, and by ID strings.

Needs the ``filter`` extra: ``pip install "django-flakeid[filter]"``.

The time filters compile to the ``generated_at`` lookups, so a span of time is a range of the
raw key (``id >= low AND id < high``) that its index answers, and a key kept from before the
table took Snowflake IDs matches none of them. The ID filters read the digits exactly (no
float, no decimal rounding) and refuse anything else with a message saying what an ID is.
"""

from __future__ import annotations

import re
from typing import Any, ClassVar

from django import forms
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models.constants import LOOKUP_SEP
from django.utils.text import capfirst
from django.utils.translation import gettext_lazy as _

# django-filter ships no type hints: to mypy its classes are Any, and subclassing them is
# allowed one class at a time below.
try:
    from django_filters import filters  # type: ignore[import-untyped]
    from django_filters.fields import RangeField  # type: ignore[import-untyped]
    from django_filters.filterset import FilterSet  # type: ignore[import-untyped]
    from django_filters.utils import verbose_field_name  # type: ignore[import-untyped]
    from django_filters.widgets import DateRangeWidget  # type: ignore[import-untyped]
except ImportError as error:
    raise ImportError(
        "django_flakeid.filters needs django-filter: pip install 'django-flakeid[filter]'"
    ) from error

from .fields import SnowflakeField
from .layout import MAX_ID
from .serialization import holds_snowflake_ids

__all__ = [
    "GeneratedAtFilter",
    "GeneratedAtRangeFilter",
    "GeneratedDateFilter",
    "GeneratedDateRangeFilter",
    "SnowflakeFilterSet",
    "SnowflakeFilterSetMixin",
    "SnowflakeIDFilter",
    "SnowflakeIDFormField",
    "SnowflakeIDInFilter",
    "SnowflakeIDRangeFilter",
]

# ASCII digits only: int() would also take "1_000" and the digits of other scripts.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = len(str(MAX_ID))
_COMPARISONS = ("exact", "gt", "gte", "lt", "lte")


class SnowflakeIDFormField(forms.Field):
    """A Snowflake ID typed as digits: an ``int`` from 0 to ``2**63 - 1``, read exactly.

    Surrounding spaces are ignored; a fraction, an exponent, a sign or any other character is
    refused, so ``1.5`` never matches the ID 1.
    """

    default_error_messages: ClassVar[dict[str, Any]] = {
        "invalid": _("A Snowflake ID must be a whole number, as a string of digits."),
        "out_of_range": _("A Snowflake ID must be from 0 to %(max_id)s."),
    }

    def to_python(self, value: Any) -> int | None:
        if value in self.empty_values:
            return None
        text = str(value).strip()
        if not _INTEGER.fullmatch(text):
            raise ValidationError(self.error_messages["invalid"], code="invalid")
        # More digits than MAX_ID has, leading zeros aside, is out of range: no need to make
        # an int of a string of any length.
        if len(text.lstrip("-").lstrip("0")) > _MAX_DIGITS or not 0 <= int(text) <= MAX_ID:
            raise ValidationError(
                self.error_messages["out_of_range"], code="out_of_range", params={"max_id": MAX_ID}
            )
        return int(text)

    def widget_attrs(self, widget: forms.Widget) -> dict[str, Any]:
        # A text input, not type=number: browsers hold those as floats, which round an ID.
        return {**super().widget_attrs(widget), "inputmode": "numeric"}


class SnowflakeIDFilter(filters.Filter):  # type: ignore[misc]
    """Filters a ``SnowflakeField``, or a ``ForeignKey`` to one, by an ID given as digits.

    ``SnowflakeIDFilter(field_name="customer")`` filters ``?customer=915375601857069056``
    with ``customer_id = 915375601857069056``; any ``lookup_expr`` of an integer works
    (``gte`` and ``lt`` for a page of IDs, say).
    """

    field_class = SnowflakeIDFormField


class SnowflakeIDInFilter(filters.BaseInFilter, SnowflakeIDFilter):  # type: ignore[misc]
    """IDs separated by commas: ``?id__in=915375601857069056,915375601857069057``."""


class SnowflakeIDRangeFilter(filters.BaseRangeFilter, SnowflakeIDFilter):  # type: ignore[misc]
    """Two IDs separated by a comma, both included: ``?id__range=low,high``."""


class _MadeFilter:
    """What the filters on the time inside an ID share: their lookup and their label."""

    #: The transform under ``generated_at`` the filter compares: ``""`` or ``"date"``.
    transform: ClassVar[str]
    #: How a label says each comparison, after the field's name.
    phrases: ClassVar[dict[str, Any]]
    field_name: str
    exclude: bool
    distinct: bool
    get_method: Any
    model: type[models.Model]
    _label: Any
    #: The comparison the label describes.
    comparison: str

    @property
    def label(self) -> Any:
        if self._label is None and hasattr(self, "model"):
            # django-filter's own label would read "ID generated_at is greater than ...".
            words = [str(_("exclude"))] if self.exclude else []
            # A key declared as "id" has the verbose name "id"; Django's own keys say "ID".
            name = verbose_field_name(self.model, self.field_name).split(" ")
            words += ["ID" if word == "id" else word for word in name]
            words += [str(self.phrases[self.comparison])]
            self._label = capfirst(" ".join(words))
        return self._label

    @label.setter
    def label(self, value: Any) -> None:
        self._label = value

    def lookup_for(self, comparison: str) -> str:
        """``<field_name>__generated_at[__date]__<comparison>``."""
        parts = (self.field_name, "generated_at", self.transform, comparison)
        return LOOKUP_SEP.join(part for part in parts if part)

    def apply(self, qs: models.QuerySet[Any], lookups: dict[str, Any]) -> models.QuerySet[Any]:
        if self.distinct:
            qs = qs.distinct()
        filtered: models.QuerySet[Any] = self.get_method(qs)(**lookups)
        return filtered


class _MadeAt(_MadeFilter):
    """One query parameter, compared with the time inside the ID."""

    def __init__(
        self, field_name: str | None = None, lookup_expr: str | None = None, **kwargs: Any
    ) -> None:
        self.comparison = lookup_expr or "exact"
        if self.comparison not in _COMPARISONS:
            raise ValueError(
                f"{type(self).__name__} takes a lookup_expr of {', '.join(_COMPARISONS)}, "
                f"not {lookup_expr!r}; for a span read from two parameters use "
                "GeneratedAtRangeFilter or GeneratedDateRangeFilter."
            )
        super().__init__(field_name, self.comparison, **kwargs)  # type: ignore[call-arg]

    def filter(self, qs: models.QuerySet[Any], value: Any) -> models.QuerySet[Any]:
        if value is None:
            return qs
        return self.apply(qs, {self.lookup_for(self.comparison): value})


class GeneratedAtFilter(_MadeAt, filters.DateTimeFilter):  # type: ignore[misc]
    """The instant an ID was made, compared with a date and time from the query string.

    Declare it with the ID's field and a comparison (``exact``, ``gt``, ``gte``, ``lt`` or
    ``lte``)::

        created_after = GeneratedAtFilter(field_name="id", lookup_expr="gte")

    ``?created_after=2026-11-01T00:00:00Z`` then filters with ``id__generated_at__gte``.
    Values are ISO 8601; one without an offset is read in the current time zone, as
    Django's ``DateTimeField`` does.
    """

    transform = ""
    phrases: ClassVar[dict[str, Any]] = {
        "exact": _("made at"),
        "gt": _("made after"),
        "gte": _("made at or after"),
        "lt": _("made before"),
        "lte": _("made at or before"),
    }


class GeneratedDateFilter(_MadeAt, filters.DateFilter):  # type: ignore[misc]
    """The local calendar day an ID was made, compared with a date from the query string.

    ``created_on = GeneratedDateFilter(field_name="id")`` filters ``?created_on=2026-11-05``
    with ``id__generated_at__date``: the day in the current time zone.
    """

    transform = "date"
    phrases: ClassVar[dict[str, Any]] = {
        "exact": _("made on"),
        "gt": _("made after"),
        "gte": _("made on or after"),
        "lt": _("made before"),
        "lte": _("made on or before"),
    }


class _MadeRange(_MadeFilter):
    """A span read from two query parameters, ``<name>_after`` and ``<name>_before``."""

    comparison = "range"

    def filter(self, qs: models.QuerySet[Any], value: slice | None) -> models.QuerySet[Any]:
        if not value:
            return qs
        start, stop = value.start, value.stop
        # One range lookup when both ends are given: a single "id >= low AND id < high".
        if start is not None and stop is not None:
            return self.apply(qs, {self.lookup_for("range"): (start, stop)})
        if start is not None:
            return self.apply(qs, {self.lookup_for("gte"): start})
        if stop is not None:
            return self.apply(qs, {self.lookup_for("lte"): stop})
        return qs


class GeneratedAtRangeFilter(_MadeRange, filters.DateTimeFromToRangeFilter):  # type: ignore[misc]
    """A span of instants, as django-filter's ``IsoDateTimeFromToRangeFilter``: both ends included.

    ``created = GeneratedAtRangeFilter(field_name="id")`` reads ``?created_after=...`` and
    ``?created_before=...`` (either or both), ISO 8601 dates and times.
    """

    transform = ""
    phrases: ClassVar[dict[str, Any]] = {"range": _("made between")}


class _DateRangeField(RangeField):  # type: ignore[misc]
    # django-filter's DateRangeField turns the days into datetimes; the date lookup keeps the
    # days, and with them the calendar rules of the generated_at lookups.
    widget = DateRangeWidget

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__((forms.DateField(), forms.DateField()), *args, **kwargs)


class GeneratedDateRangeFilter(_MadeRange, filters.DateFromToRangeFilter):  # type: ignore[misc]
    """A span of local calendar days, as django-filter's ``DateFromToRangeFilter``.

    ``day = GeneratedDateRangeFilter(field_name="id")`` reads
    ``?day_after=2026-11-01&day_before=2026-11-30``: both days whole, in the current time zone.
    """

    transform = "date"
    field_class = _DateRangeField
    phrases: ClassVar[dict[str, Any]] = {"range": _("made on the days between")}


def _takes_id_filter(field: object) -> bool:
    # Forward relations only: a many-to-many field or a reverse relation keeps django-filter's
    # choice of several related objects.
    return isinstance(field, SnowflakeField | models.ForeignKey) and holds_snowflake_ids(field)


def _time_filter(field_name: str, lookup_expr: str) -> filters.Filter | None:
    transform, _sep, rest = lookup_expr.partition(LOOKUP_SEP)
    if transform != "generated_at":
        return None
    made: type[_MadeAt] = GeneratedAtFilter
    if rest.partition(LOOKUP_SEP)[0] == "date":
        made, rest = GeneratedDateFilter, rest.partition(LOOKUP_SEP)[2]
    if (rest or "exact") not in _COMPARISONS:
        return None  # year, month, in, range, isnull: django-filter's own filters
    return made(field_name=field_name, lookup_expr=rest or "exact")


class SnowflakeFilterSetMixin:
    """Chooses the ID and time filters of this module for a ``FilterSet``'s Snowflake fields.

    Put it before any ``FilterSet`` class. For the fields and lookups in ``Meta.fields``:

    - a ``SnowflakeField`` (``SnowflakeAutoField`` included), and a ``ForeignKey`` or
      ``OneToOneField`` to one, get :class:`SnowflakeIDFilter`, :class:`SnowflakeIDInFilter`
      for ``in`` and :class:`SnowflakeIDRangeFilter` for ``range``;
    - ``generated_at`` and ``generated_at__date``, alone or with ``gt``, ``gte``, ``lt`` or
      ``lte``, get :class:`GeneratedAtFilter` and :class:`GeneratedDateFilter`.

    ``Meta.filter_overrides`` for ``SnowflakeField``, ``ForeignKey`` or a subclass of either
    still wins.
    """

    _meta: Any

    @classmethod
    def filter_for_field(
        cls, field: models.Field[Any, Any], field_name: str, lookup_expr: str | None = None
    ) -> filters.Filter | None:
        if lookup_expr and _takes_id_filter(field):
            made = _time_filter(field_name, lookup_expr)
            if made is not None:
                return made
        found: filters.Filter | None = super().filter_for_field(  # type: ignore[misc]
            field, field_name, lookup_expr
        )
        return found

    @classmethod
    def filter_for_lookup(
        cls, field: models.Field[Any, Any], lookup_type: str
    ) -> tuple[type[filters.Filter] | None, dict[str, Any]]:
        # isnull is a yes or no, and a field with choices offers them; the rest compare IDs.
        if (
            not _takes_id_filter(field)
            or cls._overridden(field)
            or lookup_type == "isnull"
            or (lookup_type == "exact" and field.choices)
        ):
            found: tuple[type[filters.Filter] | None, dict[str, Any]]
            found = super().filter_for_lookup(field, lookup_type)  # type: ignore[misc]
            return found
        # Not django-filter's NumberFilter, which reads a decimal and so takes "1.5" for the
        # ID 1, nor its ModelChoiceFilter, which loads the row, refuses an ID that has none,
        # and lists every row in an HTML form.
        by_lookup = {"in": SnowflakeIDInFilter, "range": SnowflakeIDRangeFilter}
        return by_lookup.get(lookup_type, SnowflakeIDFilter), {}

    @classmethod
    def _overridden(cls, field: models.Field[Any, Any]) -> bool:
        """Whether ``Meta.filter_overrides`` maps the field before this mixin's rules would."""
        overrides = getattr(getattr(cls, "_meta", None), "filter_overrides", None) or {}
        mro = type(field).__mro__
        # Classes up to the one these rules are for: an override for BigIntegerField is less
        # specific than the rule for SnowflakeField, as django-filter's own lookup would see it.
        rule = next(klass for klass in mro if klass in {SnowflakeField, models.ForeignKey})
        return any(klass in overrides for klass in mro[: mro.index(rule) + 1])


class SnowflakeFilterSet(SnowflakeFilterSetMixin, FilterSet):  # type: ignore[misc]
    """A ``django_filters.FilterSet`` whose Snowflake fields get the filters of this module.

    See :class:`SnowflakeFilterSetMixin`; use the mixin with another ``FilterSet`` class,
    such as ``django_filters.rest_framework.FilterSet``.
    """


def _describe_id_filters() -> None:
    # drf-spectacular types django-filter's number filters as numbers; these ID filters read
    # strings of digits, and their "in" and "range" variants lists of them, which it derives
    # from this schema. Done here, not in openapi.py, so that django-filter is imported only by
    # a project that uses these filters.
    try:
        from drf_spectacular.utils import extend_schema_field
    except ImportError:  # without drf-spectacular there is no schema to describe them in
        return
    from .openapi import id_schema

    extend_schema_field(id_schema(description=False))(SnowflakeIDFilter)


_describe_id_filters()
