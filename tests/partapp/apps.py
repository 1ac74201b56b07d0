from __future__ import annotations

from django.apps import AppConfig


class PartAppConfig(AppConfig):
    """Tables cut into time partitions by their Snowflake keys, and the tables around them."""

    name = "tests.partapp"
    label = "partapp"
    default_auto_field = "django_flakeid.fields.SnowflakeAutoField"
