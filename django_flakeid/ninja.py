"""Django Ninja: Snowflake IDs as JSON strings in schemas, bodies and path parameters.

Needs the ``ninja`` extra: ``pip install "django-flakeid[ninja]"``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, TypeAlias, get_args

from django.apps import apps
from django.db import models
from django.utils.translation import gettext

try:
    from ninja import ModelSchema, Schema
    from ninja.orm.metaclass import ModelSchemaMetaclass
    from pydantic import Field, PlainSerializer, PlainValidator, WithJsonSchema
    from pydantic_core import PydanticCustomError
except ImportError as error:
    raise ImportError(
        "django_flakeid.ninja needs Django Ninja: pip install 'django-flakeid[ninja]'"
    ) from error

from .ints import is_int
from .layout import MAX_ID
from .serialization import holds_snowflake_ids

__all__ = ["SnowflakeID", "SnowflakeModelSchema"]

# ASCII digits only: int() would also take "1_000", " 12 " and digits of other scripts.
_INTEGER = re.compile(r"-?[0-9]+")
_MAX_DIGITS = len(str(MAX_ID))

# What OpenAPI documents and model_json_schema() say of an ID.
_JSON_SCHEMA: dict[str, Any] = {
    "type": "string",
    "pattern": f"^[0-9]{{1,{_MAX_DIGITS}}}$",
    # "example", not the list "examples": Ninja copies the schema's "examples" into a
    # parameter, where OpenAPI wants a mapping of named examples.
    "example": "913686285393227776",
    "description": (
        "A Snowflake ID: a 64-bit integer written as a string of digits, "
        "which JavaScript numbers cannot hold exactly."
    ),
}


def _invalid() -> PydanticCustomError:
    return PydanticCustomError(
        "snowflake_id_invalid",
        gettext("A Snowflake ID must be a whole number, as a string of digits or an integer."),
    )


def _out_of_range() -> PydanticCustomError:
    # The bound is in the message rather than in the error's context: a context value goes
    # out as a JSON number, one that JavaScript would round.
    return PydanticCustomError(
        "snowflake_id_out_of_range",
        gettext("A Snowflake ID must be from 0 to {max_id}.").format(max_id=MAX_ID),
    )


def _to_id(value: object) -> int:
    if isinstance(value, str) and _INTEGER.fullmatch(value):
        # More digits than MAX_ID has, leading zeros aside, is out of range: no need to make
        # an int of a string of any length.
        if len(value.lstrip("-").lstrip("0")) > _MAX_DIGITS:
            raise _out_of_range()
        number = int(value)
    elif is_int(value):
        number = int(value)
    else:
        # Floats included: one that looks whole may already have lost an ID's low digits.
        raise _invalid()
    if not 0 <= number <= MAX_ID:
        raise _out_of_range()
    return number


def _to_string(value: int) -> str:
    return str(value)


def _related_to_id(value: object) -> int:
    # Read from the database, a many-to-many field is a list of model instances.
    if isinstance(value, models.Model):
        value = value.pk
    return _to_id(value)


#: A Snowflake ID: an ``int`` in Python, a string of digits in JSON.
#:
#: Validation takes an integer or a string of ASCII digits from 0 to ``2**63 - 1`` and refuses
#: anything else (bools and floats included); ``model_dump()``, in either mode, and Ninja's
#: responses write it as a string.
SnowflakeID: TypeAlias = Annotated[
    int,
    PlainValidator(_to_id),
    PlainSerializer(_to_string, return_type=str),
    WithJsonSchema(_JSON_SCHEMA),
]

_RelatedSnowflakeID: TypeAlias = Annotated[
    int,
    PlainValidator(_related_to_id),
    PlainSerializer(_to_string, return_type=str),
    WithJsonSchema(_JSON_SCHEMA),
]


class _SnowflakeModelSchemaMetaclass(ModelSchemaMetaclass):
    def __new__(
        mcs, name: str, bases: tuple[type[Any], ...], namespace: dict[str, Any], **kwargs: Any
    ) -> type:
        # None while SnowflakeModelSchema itself is being made.
        root = globals().get("SnowflakeModelSchema")
        if root in bases and ModelSchema not in bases:
            # Ninja builds a schema from Meta only for a direct subclass of ModelSchema.
            bases = (*bases, ModelSchema)
        elif "Meta" in vars(bases[0]):
            # Ninja makes the schema, a field for each model field, as a subclass of the class
            # written by hand: the one that holds the Meta.
            namespace = _with_snowflake_ids(bases[0], namespace)
        # Ninja's metaclass is untyped; what it makes is a class.
        schema: type = super().__new__(mcs, name, bases, namespace, **kwargs)
        return schema


def _with_snowflake_ids(declared: type[Any], namespace: dict[str, Any]) -> dict[str, Any]:
    model = declared.Meta.model
    if isinstance(model, str):
        model = apps.get_model(model)
    fields = {field.name: field for field in model._meta.get_fields()}
    annotations = dict(namespace.get("__annotations__", {}))
    namespace = {**namespace, "__annotations__": annotations}
    for name, annotation in annotations.items():
        field: Any = fields.get(name)
        # A field the class declares is kept as written.
        if name in declared.model_fields or not holds_snowflake_ids(field):
            continue
        new: Any = list[_RelatedSnowflakeID] if field.many_to_many else SnowflakeID
        if type(None) in get_args(annotation):
            new = new | None
        annotations[name] = new
        info = namespace[name]
        if info.default_factory is models.NOT_PROVIDED:
            # A SnowflakeAutoField has a default as Django sees it (a new ID on save) but no
            # value for it, which Ninja would take for a default factory.
            namespace[name] = Field(None, title=info.title, description=info.description)
    return namespace


class SnowflakeModelSchema(Schema, metaclass=_SnowflakeModelSchemaMetaclass):
    """A ``ModelSchema`` whose Snowflake fields are :data:`SnowflakeID`: strings in JSON.

    Subclass it as you would ``ninja.ModelSchema``, with a ``Meta`` naming the model and its
    fields. That covers the model's ``SnowflakeField`` columns (a ``SnowflakeAutoField`` key
    included), its ``ForeignKey`` and ``OneToOneField`` to models keyed by one, and its
    ``ManyToManyField`` to them. Fields you declare in the class are left as they are.
    """
