from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from django_flakeid.admin import SnowflakeAdminMixin

from .models import Customer, Order, OrderLine, Tag

# ModelAdmin is generic only to type checkers; at run time it cannot be subscripted.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
    TabularInline = admin.TabularInline[Any, Any]
else:
    ModelAdmin = admin.ModelAdmin
    TabularInline = admin.TabularInline


class OrderLineInline(TabularInline):
    model = OrderLine
    extra = 1


@admin.register(Customer)
class CustomerAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("name", "email")
    search_fields = ("name", "email")


@admin.register(Order)
class OrderAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("id", "customer")
    list_select_related = ("customer",)
    autocomplete_fields = ("customer",)
    filter_horizontal = ("tags",)
    inlines = (OrderLineInline,)


@admin.register(Tag)
class TagAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("name",)
