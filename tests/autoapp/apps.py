from __future__ import annotations

from django.apps import AppConfig


class AutoAppConfig(AppConfig):
    """Models that declare no key: the auto field in use is Snowflake's."""

    name = "tests.autoapp"
    label = "autoapp"
    default_auto_field = "django_flakeid.fields.SnowflakeAutoField"
