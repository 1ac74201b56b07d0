"""SnowflakeAdminMixin: the time and node decoded from a model's Snowflake IDs, and filters."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from functools import cached_property
from typing import TYPE_CHECKING, Any

from django.contrib import admin
from django.contrib.admin.utils import flatten, flatten_fieldsets
from django.db import models
from django.http import HttpRequest
from django.utils import timezone
from django.utils.formats import date_format
from django.utils.functional import Promise
from django.utils.html import format_html, format_html_join
from django.utils.text import capfirst, format_lazy
from django.utils.translation import gettext_lazy as _

from .admin_filters import SnowflakeDateFilter, SnowflakeDateHierarchyFilter, field_label
from .errors import FlakeIDError, InvalidIDError, LegacyIDError
from .fields import SnowflakeField
from .layout import DecodedID

if TYPE_CHECKING:
    _ModelAdmin = admin.ModelAdmin[Any]
else:
    _ModelAdmin = object

PANEL = "snowflake_id_details"
_Column = Callable[[models.Model], "str | Promise | None"]
_LEGACY_DETAILS = _(
    "A legacy key from before Snowflake IDs: it holds no time, datacenter, machine or sequence."
)
_HEADINGS = (_("Field"), _("Generated"), _("Datacenter"), _("Machine"), _("Sequence"))


class SnowflakeAdminMixin(_ModelAdmin):
    """Add to a ModelAdmin: a time column per Snowflake field and a read-only ID panel.

    The column shows when each ID was generated, in the current time zone, and sorts by the
    ID. The change page gets a "Snowflake ID" fieldset with the decoded time, datacenter,
    machine and sequence, unless ``"snowflake_id_details"`` is placed in ``fields`` or
    ``fieldsets`` by hand. Set ``snowflake_fields`` to limit which fields are shown.

    Each of those fields that has an index (the key, unique, db_index) also gets two list
    filters, by period and by year, month and day; set ``snowflake_filters = False`` to
    leave ``list_filter`` alone.

    A key kept from before the table took Snowflake IDs holds no time: the column shows
    ``snowflake_legacy_display`` for it, and the panel says so, as ``empty_value_display``
    stands for an empty value.
    """

    snowflake_fields: Sequence[str] | None = None
    snowflake_filters: bool = True
    snowflake_legacy_display: str | Promise = _("legacy key")

    @cached_property
    def _snowflake_fields(self) -> list[SnowflakeField[Any, Any]]:
        fields = [
            field for field in self.model._meta.concrete_fields if isinstance(field, SnowflakeField)
        ]
        if self.snowflake_fields is not None:
            fields = [field for field in fields if field.name in self.snowflake_fields]
        return fields

    @cached_property
    def _snowflake_columns(self) -> list[_Column]:
        # Built once per admin: the changelist recognises sortable columns by identity.
        return [self._time_column(field) for field in self._snowflake_fields]

    def _time_column(self, field: SnowflakeField[Any, Any]) -> _Column:
        def column(obj: models.Model) -> str | Promise | None:
            try:
                decoded = _decode(field, getattr(obj, field.attname))
            except LegacyIDError:
                return self.snowflake_legacy_display
            return None if decoded is None else _local_time(decoded)

        column.__name__ = f"{field.name}_created"
        return admin.display(
            description=format_lazy(_("Created (from {})"), field_label(field)),
            ordering=field.name,
        )(column)

    def get_list_display(self, request: HttpRequest) -> list[Any]:
        return [*super().get_list_display(request), *self._snowflake_columns]

    def get_list_filter(self, request: HttpRequest) -> Any:
        filters = list(super().get_list_filter(request))
        if not self.snowflake_filters:
            return filters
        for field in self._snowflake_fields:
            # Without an index, a range of IDs is a scan of the table.
            if not (field.primary_key or field.unique or getattr(field, "db_index", False)):
                continue
            for kind in (SnowflakeDateFilter, SnowflakeDateHierarchyFilter):
                if (field.name, kind) not in filters:
                    filters.append((field.name, kind))
        return filters

    def get_readonly_fields(self, request: HttpRequest, obj: Any = None) -> list[str]:
        readonly = list(super().get_readonly_fields(request, obj))
        if self._snowflake_fields and PANEL not in readonly:
            readonly.append(PANEL)
        return readonly

    def get_fieldsets(self, request: HttpRequest, obj: Any = None) -> Any:
        fieldsets = super().get_fieldsets(request, obj)
        if not self._snowflake_fields or self._panel_placed_by_hand():
            return fieldsets
        # The default fieldset lists every read-only field, the panel included: move it out.
        merged = [
            (name, {**options, "fields": [f for f in options["fields"] if f != PANEL]})
            for name, options in fieldsets
        ]
        if obj is not None:
            merged.append((_("Snowflake ID"), {"fields": [PANEL]}))
        return merged

    def _panel_placed_by_hand(self) -> bool:
        return PANEL in flatten_fieldsets(self.fieldsets or ()) or PANEL in flatten(
            self.fields or ()
        )

    @admin.display(description=_("Snowflake ID"))
    def snowflake_id_details(self, obj: models.Model | None) -> str:
        empty = self.get_empty_value_display()
        if obj is None or obj._state.adding:
            return empty
        rows = [
            self._panel_row(field, getattr(obj, field.attname)) for field in self._snowflake_fields
        ]
        return format_html(
            '<table class="flakeid-details"><thead><tr>{}</tr></thead><tbody>{}</tbody></table>',
            format_html_join("", "<th>{}</th>", ((heading,) for heading in _HEADINGS)),
            format_html_join("", "<tr>{}</tr>", ((row,) for row in rows)),
        )

    def _panel_row(self, field: SnowflakeField[Any, Any], value: Any) -> str:
        name = capfirst(str(field_label(field)))
        empty = self.get_empty_value_display()
        try:
            decoded = _decode(field, value)
        except LegacyIDError:
            return format_html(
                '<td>{}</td><td colspan="{}">{}</td>', name, len(_HEADINGS) - 1, _LEGACY_DETAILS
            )
        if decoded is None:
            cells: tuple[Any, ...] = (empty, empty, empty, empty)
        else:
            generated = format_html(
                "{} <code>{}</code>", _local_time(decoded) or empty, decoded.generated_at
            )
            cells = (generated, decoded.datacenter_id, decoded.machine_id, decoded.sequence)
        return format_html_join("", "<td>{}</td>", ((cell,) for cell in (name, *cells)))


def _decode(field: SnowflakeField[Any, Any], value: Any) -> DecodedID | None:
    if value is None:
        return None
    try:
        return field.decode(value)
    except LegacyIDError:
        raise  # an old key is told apart, not shown as a value that cannot be read
    except FlakeIDError:
        return None


def _local_time(decoded: DecodedID) -> str | None:
    try:
        moment = decoded.datetime
    except InvalidIDError:
        # Past the year 9999 there is no datetime to show; the ISO form still works.
        return None
    return date_format(timezone.localtime(moment), "DATETIME_FORMAT")
