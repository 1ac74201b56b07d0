from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register
from django.urls import register_converter
from django.urls.converters import get_converters

from . import checks, conf
from .converters import SnowflakeConverter
from .factory import set_default_source

#: The name routes use: ``path("orders/<snowflake:pk>/", ...)``.
CONVERTER_NAME = "snowflake"


class DjangoFlakeIDConfig(AppConfig):
    name = "django_flakeid"
    label = "django_flakeid"
    verbose_name = "django-flakeid"

    def ready(self) -> None:
        register(checks.check_setting)
        register(checks.check_layout_lifetime)
        register(checks.check_lock_dir)
        register(checks.check_node_identity, deploy=True)
        # Inside a project, django_flakeid.next_id() follows FLAKEID like the model fields do.
        set_default_source(conf.get_generator)
        # Django 6 refuses a second registration of a name, and ready() may run again (a test
        # repopulating the app registry, say): the converter already there is kept.
        if CONVERTER_NAME not in get_converters():
            register_converter(SnowflakeConverter, CONVERTER_NAME)
