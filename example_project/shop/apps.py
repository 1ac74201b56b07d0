from __future__ import annotations

from django.apps import AppConfig


class DefaultAutoFieldShopConfig(AppConfig):
    """The shop keyed by the project's ``DEFAULT_AUTO_FIELD``: see ``example/settings_auto.py``."""

    name = "shop"
    verbose_name = "Shop"


class ShopConfig(DefaultAutoFieldShopConfig):
    """The shop keyed by Snowflake IDs whatever the project's ``DEFAULT_AUTO_FIELD`` says."""

    default = True
    default_auto_field = "django_flakeid.fields.SnowflakeAutoField"
