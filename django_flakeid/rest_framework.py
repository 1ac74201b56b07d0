"""Django REST framework: Snowflake IDs as JSON strings, in and out.

Needs the ``drf`` extra: ``pip install "django-flakeid[drf]"``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, ClassVar, TypedDict, TypeVar, cast

from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.utils.translation import gettext_lazy as _

try:
    from rest_framework import serializers
    from rest_framework.relations import PKOnlyObject
    from rest_framework.utils.model_meta import RelationInfo
except ImportError as error:
    raise ImportError(
        "django_flakeid.rest_framework needs Django REST framework: "
        "pip install 'django-flakeid[drf]'"
    ) from error

from . import conf
from .fields import SnowflakeField
from .ints import is_int
from .layout import MAX_ID
from .serialization import holds_snowflake_ids

if TYPE_CHECKING:
    from django_stubs_ext import StrOrPromise
    from rest_framework.validators import Validator
    from typing_extensions import Unpack

    class FieldOptions(TypedDict, total=False):
        """The keyword arguments of DRF's ``Field``."""

        read_only: bool
        write_only: bool
        required: bool | None
        default: int | Callable[[], int] | None
        initial: int | Callable[[], int] | None
        source: str | None
        label: StrOrPromise | None
        help_text: StrOrPromise | None
        style: dict[str, object] | None
        error_messages: dict[str, StrOrPromise] | None
        validators: Sequence[Validator[int]] | None
        allow_null: bool

    # What DRF's ModelSerializer.build_*_field() return: any field class, with its arguments.
    _FieldClass = type[serializers.Field[Any, Any, Any, Any]]


_M = TypeVar("_M", bound=models.Model)
# ASCII digits only: int() would also take "1_000", " 12 " and digits of other scripts.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = len(str(MAX_ID))


class SnowflakeIDField(serializers.Field[int, object, int | str, object]):
    """A Snowflake ID, written as a JSON string or number and read from either.

    ``coerce_to_string`` chooses strings (True) or numbers (False); None, the default, follows
    ``FLAKEID['ids_as_strings']`` (True unless set). Input must be an integer or a string of
    digits from 0 to ``2**63 - 1``; anything else is a validation error. ``min_value`` and
    ``max_value`` narrow the range further.
    """

    default_error_messages: ClassVar[dict[str, StrOrPromise]] = {
        "invalid": _("A Snowflake ID must be a whole number, as a string of digits or an integer."),
        "out_of_range": _("A Snowflake ID must be from 0 to {max_id}."),
    }

    def __init__(
        self,
        *,
        coerce_to_string: bool | None = None,
        min_value: int | None = None,
        max_value: int | None = None,
        **kwargs: Unpack[FieldOptions],
    ) -> None:
        super().__init__(**kwargs)
        self.coerce_to_string = coerce_to_string
        # The model field's own validators bring the ID range here; only a narrower one is
        # worth a validator, as to_internal_value() enforces the range already.
        if min_value is not None and min_value > 0:
            self.validators.append(MinValueValidator(min_value))
        if max_value is not None and max_value < MAX_ID:
            self.validators.append(MaxValueValidator(max_value))

    @property
    def writes_strings(self) -> bool:
        """Whether IDs are written as strings: ``coerce_to_string``, else the setting."""
        return conf.ids_as_strings() if self.coerce_to_string is None else self.coerce_to_string

    def to_internal_value(self, data: object) -> int:
        if isinstance(data, str) and _INTEGER.fullmatch(data):
            # Leading zeros aside, more digits than MAX_ID has is out of range: no need to
            # make an int of a string of any length.
            if len(data.lstrip("-").lstrip("0")) > _MAX_DIGITS:
                self.fail("out_of_range", max_id=MAX_ID)
            value = int(data)
        elif is_int(data):
            value = int(data)
        else:
            # Floats included: one that looks whole may already have lost an ID's low digits.
            self.fail("invalid")
        if not 0 <= value <= MAX_ID:
            self.fail("out_of_range", max_id=MAX_ID)
        return value

    def to_representation(self, value: int) -> int | str:
        number = int(value)
        return str(number) if self.writes_strings else number


class _SnowflakeSlugRelatedField(serializers.SlugRelatedField[models.Model]):
    """A relation through a ``to_field`` that is a ``SnowflakeField`` but not the key."""

    def __init__(
        self, slug_field: str, *, coerce_to_string: bool | None = None, **kwargs: Any
    ) -> None:
        self.id_field = SnowflakeIDField(coerce_to_string=coerce_to_string)
        super().__init__(slug_field, **kwargs)

    def to_internal_value(self, data: object) -> models.Model:
        return super().to_internal_value(str(self.id_field.to_internal_value(data)))

    # DRF's stubs say a slug is a string; a Snowflake ID may be written as a number.
    def to_representation(self, obj: models.Model | PKOnlyObject) -> int | str:  # type: ignore[override]
        return self.id_field.to_representation(getattr(obj, self.slug_field))


class SnowflakeModelSerializer(serializers.ModelSerializer[_M]):
    """A ``ModelSerializer`` that writes and reads every Snowflake ID of its model as a string.

    That covers the model's ``SnowflakeField`` columns, its ``ForeignKey`` and
    ``OneToOneField`` to models keyed by a ``SnowflakeField``, its ``ManyToManyField`` to
    them, the reverse relations it lists, and the serializers that ``Meta.depth`` nests.
    Fields you declare yourself are left as they are. Set ``ids_as_strings = False`` on a
    subclass for numbers.
    """

    #: True for strings, False for numbers; None follows ``FLAKEID['ids_as_strings']``.
    ids_as_strings: ClassVar[bool | None] = None

    def build_standard_field(
        self, field_name: str, model_field: models.Field[Any, Any]
    ) -> tuple[_FieldClass, dict[str, Any]]:
        field_class, field_kwargs = super().build_standard_field(field_name, model_field)
        # An IntegerField is what DRF maps a BigIntegerField to; anything else (a
        # ChoiceField, a mapping of your own) is kept.
        if isinstance(model_field, SnowflakeField) and issubclass(
            field_class, serializers.IntegerField
        ):
            field_class = SnowflakeIDField
            field_kwargs["coerce_to_string"] = self.ids_as_strings
        elif issubclass(field_class, serializers.PrimaryKeyRelatedField) and holds_snowflake_ids(
            model_field
        ):
            # A OneToOneField that is the primary key: DRF builds it here, not as a relation.
            field_kwargs.setdefault("pk_field", self._id_field())
        return field_class, field_kwargs

    def build_relational_field(
        self, field_name: str, relation_info: RelationInfo
    ) -> tuple[_FieldClass, dict[str, Any]]:
        field_class, field_kwargs = super().build_relational_field(field_name, relation_info)
        related_meta = relation_info.related_model._meta
        if issubclass(field_class, serializers.PrimaryKeyRelatedField):
            if holds_snowflake_ids(related_meta.pk):
                field_kwargs.setdefault("pk_field", self._id_field())
        elif field_class is serializers.SlugRelatedField and holds_snowflake_ids(
            related_meta.get_field(field_kwargs["slug_field"])
        ):
            field_class = _SnowflakeSlugRelatedField
            field_kwargs["coerce_to_string"] = self.ids_as_strings
        return field_class, field_kwargs

    def build_nested_field(
        self, field_name: str, relation_info: RelationInfo, nested_depth: int
    ) -> tuple[_FieldClass, dict[str, Any]]:
        field_class, field_kwargs = super().build_nested_field(
            field_name, relation_info, nested_depth
        )
        if not issubclass(field_class, SnowflakeModelSerializer):
            # DRF's nested class is a plain (or hyperlinked) ModelSerializer; the same class
            # with this one's rules in front keeps its Meta and whatever else it does.
            field_class = cast(
                "_FieldClass",
                type(
                    field_class.__name__,
                    (SnowflakeModelSerializer, field_class),
                    {"ids_as_strings": self.ids_as_strings, "__module__": __name__},
                ),
            )
        return field_class, field_kwargs

    def _id_field(self) -> SnowflakeIDField:
        return SnowflakeIDField(coerce_to_string=self.ids_as_strings)


class SnowflakeHyperlinkedModelSerializer(
    SnowflakeModelSerializer[_M], serializers.HyperlinkedModelSerializer[_M]
):
    """A ``HyperlinkedModelSerializer`` that writes the model's own Snowflake IDs as strings.

    Relations are hyperlinks, as usual: route the detail views with ``<snowflake:pk>`` so
    that ``reverse()`` and the links work with every ID. Nested serializers follow
    :class:`SnowflakeModelSerializer`.
    """
