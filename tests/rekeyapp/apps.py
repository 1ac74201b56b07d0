from __future__ import annotations

from django.apps import AppConfig


class RekeyAppConfig(AppConfig):
    """Tables switched to Snowflake keys with their legacy rows, and every kind of reference."""

    name = "tests.rekeyapp"
    label = "rekeyapp"
    default_auto_field = "django_flakeid.fields.SnowflakeAutoField"
