"""SnowflakeField: a 64-bit integer column filled with a new ID from the project's generator."""

from __future__ import annotations

import datetime as dt
from functools import partialmethod
from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.apps import apps as global_apps
from django.conf import settings
from django.core import checks
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.module_loading import import_string
from django.utils.translation import gettext_lazy as _

from . import conf
from .errors import LegacyIDError
from .layout import MAX_ID, DecodedID

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.forms import Field as FormField

_ST_contra = TypeVar("_ST_contra", contravariant=True)
_GT_co = TypeVar("_GT_co", covariant=True)

# Type checkers see Django's generic fields (django-stubs); at run time they take no parameters.
if TYPE_CHECKING:
    _BigIntegerField = models.BigIntegerField
    _BigAutoField = models.BigAutoField
else:

    class _BigIntegerField(models.BigIntegerField, Generic[_ST_contra, _GT_co]):
        pass

    class _BigAutoField(models.BigAutoField, Generic[_ST_contra, _GT_co]):
        pass


_BIGINT = models.BigIntegerField()
_MIGRATION_RECORDER = "django.db.migrations.recorder"


def generate_id() -> int:
    """A new ID from the generator ``settings.FLAKEID`` describes: SnowflakeField's default.

    Migrations record this import path, so it must not move.
    """
    return conf.get_generator().next_id()


class SnowflakeField(_BigIntegerField[_ST_contra, _GT_co]):
    """A ``BigIntegerField`` whose default is a new time-ordered Snowflake ID.

    Like an auto field it stays off forms unless given ``editable=True``. With ``null=True``
    new rows still get an ID; pass ``default=None`` to leave them empty.
    """

    description = _("Snowflake ID (64-bit, time-ordered)")
    # Django reads this class attribute and never changes it.
    default_validators = [MinValueValidator(0), MaxValueValidator(MAX_ID)]  # noqa: RUF012

    # Type checkers keep BigIntegerField's own signature, so a misspelt option is an error.
    if not TYPE_CHECKING:

        def __init__(self, *args, **kwargs):
            kwargs.setdefault("default", generate_id)
            kwargs.setdefault("editable", False)
            super().__init__(*args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Any, dict[str, Any]]:
        name, path, args, kwargs = super().deconstruct()
        if kwargs.get("default") is generate_id:
            del kwargs["default"]
        # Field.deconstruct() records editable only when False, the reverse of this default.
        if self.editable:
            kwargs["editable"] = True
        else:
            kwargs.pop("editable", None)
        return name, path, args, kwargs

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        # SQLite makes an "integer primary key" the rowid itself; any other type keeps the key
        # in an index of its own beside a hidden rowid.
        if self.primary_key and connection.vendor == "sqlite":
            return "integer"
        return _BIGINT.db_type(connection)

    def rel_db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return _BIGINT.db_type(connection)

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *self._check_snowflake_default(),
            *self._check_snowflake_db_default(),
        ]

    def _check_snowflake_default(self) -> list[checks.CheckMessage]:
        default = self.default
        if not self.unique or default is models.NOT_PROVIDED or callable(default):
            return []
        # NULLs never clash, so a unique, nullable column may default to None.
        if default is None and not self.primary_key:
            return []
        return [
            checks.Error(
                f"SnowflakeField has the constant default {default!r}, so every new row "
                "would get the same value.",
                hint="Remove 'default' to get a new ID for each row, or pass a callable.",
                obj=self,
                id="django_flakeid.E101",
            )
        ]

    def _check_snowflake_db_default(self) -> list[checks.CheckMessage]:
        if not self.has_db_default():
            return []
        return [
            checks.Error(
                "SnowflakeField cannot have a db_default: the database cannot make Snowflake IDs.",
                hint="Remove 'db_default'; new rows get an ID from 'default'.",
                obj=self,
                id="django_flakeid.E102",
            )
        ]

    def formfield(self, **kwargs: Any) -> FormField | None:
        return super().formfield(**{"min_value": 0, "max_value": MAX_ID, **kwargs})

    def decode(self, value: int) -> DecodedID:
        """Split a stored value into its time, datacenter, machine and sequence.

        Uses the layout in ``settings.FLAKEID``, e.g. ``Order._meta.get_field("id").decode(pk)``.
        A key kept from before the table took Snowflake IDs (below
        ``Layout.min_snowflake_id``) holds no time: :class:`LegacyIDError`.
        """
        layout = conf.get_layout()
        decoded = layout.decode(value)
        if decoded.raw < layout.min_snowflake_id:
            raise LegacyIDError(
                f"{decoded.raw} is an integer key from before this table took Snowflake IDs "
                f"(every Snowflake ID is {layout.min_snowflake_id} or more): it holds no time"
            )
        return decoded

    def generated_at(self, value: int | None) -> dt.datetime | None:
        """The time inside ``value``, or None for NULL and for a key from before Snowflake IDs."""
        if value is None:
            return None
        try:
            return self.decode(value).datetime
        except LegacyIDError:
            return None

    def contribute_to_class(
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)
        method = f"get_{name}_generated_at"
        # As Django does for get_FOO_display(): a method the model defines itself wins.
        if method not in cls.__dict__:
            setattr(cls, method, partialmethod(_instance_generated_at, field=self))


def _instance_generated_at(
    instance: models.Model, field: SnowflakeField[Any, Any]
) -> dt.datetime | None:
    return field.generated_at(getattr(instance, field.attname))


def unsaved_key() -> None:
    """The default of a :class:`SnowflakeAutoField`: no key until ``save()`` makes one.

    Migrations never record it, but it must not move while a project may import it.
    """
    return None


class SnowflakeAutoField(SnowflakeField[_ST_contra, _GT_co], _BigAutoField[_ST_contra, _GT_co]):
    """An auto field whose values are Snowflake IDs, for ``DEFAULT_AUTO_FIELD``.

    A drop-in for ``AutoField``: an unsaved instance has ``pk is None``, and ``save()``,
    ``create()`` and ``bulk_create()`` give it a new ID from Python in the ``INSERT`` itself.
    The column is a plain 64-bit integer: no identity, sequence or ``AUTO_INCREMENT``.
    """

    @property
    def db_returning(self) -> bool:  # type: ignore[override]
        # A Snowflake ID is written by the INSERT, never read back from it.
        return self._keeps_another_auto_field()

    if not TYPE_CHECKING:

        def __init__(self, *args, **kwargs):
            # A default that gives nothing: save() then INSERTs at once, rather than try an
            # UPDATE of the new key first, while an unsaved instance keeps pk None. Code that
            # reads field.default (forms, schema generators) finds a callable giving None.
            kwargs.setdefault("default", unsaved_key)
            models.BigAutoField.__init__(self, *args, **kwargs)

    def deconstruct(self) -> tuple[str, str, Any, dict[str, Any]]:
        name, path, args, kwargs = models.BigAutoField.deconstruct(self)
        if kwargs.get("default") is unsaved_key:
            del kwargs["default"]
        return name, path, args, kwargs

    def contribute_to_class(  # type: ignore[override]
        self, cls: type[models.Model], name: str, private_only: bool = False
    ) -> None:
        super().contribute_to_class(cls, name, private_only=private_only)

    def formfield(self, **kwargs: Any) -> None:
        return None  # as for every auto field: the key is never typed in

    def get_internal_type(self) -> str:
        # Schema editors drop an identity, sequence or AUTO_INCREMENT when a column changes
        # from an auto field's type to this one, and add none.
        return "BigIntegerField"

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        if self._keeps_another_auto_field():
            return models.BigAutoField().db_type(connection)
        return super().db_type(connection)

    def db_type_suffix(self, connection: BaseDatabaseWrapper) -> str | None:
        if self._keeps_another_auto_field():
            return models.BigAutoField().db_type_suffix(connection)
        return None

    def _keeps_another_auto_field(self) -> bool:
        # True where the table's key is the database's to fill, as for BigAutoField.
        model = getattr(self, "model", None)
        if model is None:
            return False
        # Django's record of applied migrations takes DEFAULT_AUTO_FIELD, but its table is
        # made once and never migrated: in a project older than the setting, its key is a
        # 32-bit serial that a Snowflake ID overflows, failing every migrate.
        if model.__module__ == _MIGRATION_RECORDER:
            return True
        # Migrations build the through table of a ManyToManyField with DEFAULT_AUTO_FIELD,
        # while at run time its key follows its app's AppConfig.default_auto_field. When that
        # is another auto field (django.contrib.auth keeps AutoField), the running code leaves
        # the key to the database, so the table must get an identity after all.
        opts = model._meta
        if not opts.auto_created:
            return False
        config = global_apps.app_configs.get(opts.app_label)
        path = getattr(config, "default_auto_field", None) or settings.DEFAULT_AUTO_FIELD
        try:
            running = import_string(path)
        except ImportError:
            return False
        return not (isinstance(running, type) and issubclass(running, SnowflakeAutoField))

    def get_default(self) -> Any:
        return None

    def get_pk_value_on_save(self, instance: models.Model) -> int | None:
        if self._keeps_another_auto_field():
            return None
        return generate_id()
