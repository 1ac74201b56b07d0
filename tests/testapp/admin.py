from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.contrib import admin

from django_flakeid.admin import SnowflakeAdminMixin

from .models import Article, Customer, ExternalRecord, NullableThing, Order, Tag

# ModelAdmin is generic only to type checkers; at run time it cannot be subscripted.
if TYPE_CHECKING:
    ModelAdmin = admin.ModelAdmin[Any]
else:
    ModelAdmin = admin.ModelAdmin


@admin.register(Customer)
class CustomerAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("name",)


@admin.register(Order)
class OrderAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("reference", "customer")
    list_select_related = ("customer",)
    readonly_fields = ("line_count",)
    fieldsets = (
        (None, {"fields": ("reference", "customer", "tags")}),
        ("Lines", {"fields": ("line_count",)}),
    )

    @admin.display(description="Lines")
    def line_count(self, obj: Order) -> int:
        return obj.lines.count()


@admin.register(Tag)
class TagAdmin(SnowflakeAdminMixin, ModelAdmin):
    fields = ("name", "snowflake_id_details")


@admin.register(Article)
class ArticleAdmin(SnowflakeAdminMixin, ModelAdmin):
    list_display = ("title", "public_id")


@admin.register(NullableThing)
class NullableThingAdmin(SnowflakeAdminMixin, ModelAdmin):
    snowflake_fields = ("filled",)


@admin.register(ExternalRecord)
class ExternalRecordAdmin(SnowflakeAdminMixin, ModelAdmin):
    pass
