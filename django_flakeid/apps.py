from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import Tags, register
from django.db.models import ForeignKey
from django.urls import register_converter
from django.urls.converters import get_converters

from . import checks, conf, pg_introspection
from .converters import SnowflakeConverter
from .factory import set_default_source
from .fields import SnowflakeField
from .lookups import GeneratedAt, RelatedGeneratedAt

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
        register(checks.check_partition_foreign_keys, Tags.models)
        register(checks.check_partition_unique, Tags.models)
        register(checks.check_partition_key, Tags.models)
        # They ask the database, so they run only where one is named: migrate, check --database.
        register(checks.check_partition_runway, Tags.database)
        # Inside a project, django_flakeid.next_id() follows FLAKEID like the model fields do.
        set_default_source(conf.get_generator)
        # Django 6 refuses a second registration of a name, and ready() may run again (a test
        # repopulating the app registry, say): the converter already there is kept.
        if CONVERTER_NAME not in get_converters():
            register_converter(SnowflakeConverter, CONVERTER_NAME)
        # Before ready() nothing can run a query, so registering here is early enough, and
        # importing the field alone changes no class of Django's. Registering twice is harmless.
        SnowflakeField.register_lookup(GeneratedAt)
        # On every ForeignKey: order__generated_at then filters on the key a line points to,
        # without a join; RelatedGeneratedAt refuses a ForeignKey to anything but a Snowflake key.
        ForeignKey.register_lookup(RelatedGeneratedAt)
        # PostgreSQL keeps a copy of a foreign key per partition of the table it points at, which
        # Django's schema editor would take for more keys on the column and fail to alter.
        pg_introspection.install()
        _register_openapi_extensions()


def _register_openapi_extensions() -> None:
    # drf-spectacular finds extensions by their class definitions, so importing the module is
    # the registration; a project without drf-spectacular imports nothing more.
    try:
        import drf_spectacular  # noqa: F401
    except ImportError:
        return
    try:
        from . import openapi  # noqa: F401
    except ImportError:  # drf-spectacular without Django REST framework: nothing to describe
        return
