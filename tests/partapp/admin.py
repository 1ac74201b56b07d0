from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from django_flakeid.admin import SnowflakeAdminMixin

from .models import Event

# ModelAdmin is generic only to type checkers; at run time it cannot be subscripted.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(Event)
class EventAdmin(SnowflakeAdminMixin, ModelAdmin):
    # The key's list filters (by period, and by year, month and day) come with the mixin: on a
    # partitioned table each choice reads only the partitions of its range.
    list_display = ("kind", "ref")
    search_fields = ("kind",)
