"""SnowflakeField: a 64-bit integer column filled with a new ID from the project's generator."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, Generic, TypeVar

from django.core import checks
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

from . import conf
from .layout import MAX_ID, DecodedID

if TYPE_CHECKING:
    from django.forms import Field as FormField

_ST_contra = TypeVar("_ST_contra", contravariant=True)
_GT_co = TypeVar("_GT_co", covariant=True)

# Type checkers see Django's generic field (django-stubs); at run time it takes no parameters.
if TYPE_CHECKING:
    _BigIntegerField = models.BigIntegerField
else:

    class _BigIntegerField(models.BigIntegerField, Generic[_ST_contra, _GT_co]):
        pass


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

    def check(self, **kwargs: Any) -> list[checks.CheckMessage]:
        return [
            *super().check(**kwargs),
            *self._check_snowflake_default(),
            *self._check_snowflake_db_default(),
        ]

    def _check_snowflake_default(self) -> list[checks.CheckMessage]:
        default = self.default
        if not self.unique or not self.has_default() or callable(default):
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
        """
        return conf.get_layout().decode(value)
