"""drf-spectacular extensions: Snowflake IDs in OpenAPI schemas as strings of 1 to 19 digits.

The app loads this module in ``ready()`` whenever drf-spectacular is importable, so there is
nothing to configure. Needs the ``spectacular`` extra:
``pip install "django-flakeid[spectacular]"``.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

from django.core.exceptions import FieldError
from django.db import models
from django.db.models.fields.related import ForeignObject
from django.utils.translation import gettext_lazy as _

try:
    from drf_spectacular.extensions import (
        OpenApiSerializerExtension,
        OpenApiSerializerFieldExtension,
    )
    from drf_spectacular.plumbing import (
        ComponentIdentity,
        follow_model_field_lookup,
        get_doc,
        get_view_model,
    )
except ImportError as error:
    raise ImportError(
        "django_flakeid.openapi needs drf-spectacular: pip install 'django-flakeid[spectacular]'"
    ) from error
from rest_framework import serializers

from . import conf
from . import rest_framework as flakeid_drf
from .converters import SnowflakeConverter
from .errors import ConfigurationError
from .fields import SnowflakeField
from .layout import MAX_ID, Layout

# drf-spectacular annotates little: its extension classes' __init_subclass__() and the helpers
# called here have no hints, hence the "no-untyped-call" ignores.
if TYPE_CHECKING:
    from drf_spectacular.openapi import AutoSchema
    from drf_spectacular.utils import Direction

#: The pattern of an ID written as a string: the ``snowflake`` converter's, anchored.
ID_PATTERN = f"^{SnowflakeConverter.regex}$"

# 2025-06-01T09:30:12.345Z: a fixed moment, so that the schema only changes when the code does.
_EXAMPLE_MS = 1_748_770_212_345
# drf-spectacular's path template, "/orders/{id}/".
_PATH_VARIABLE = re.compile(r"\{([^/{}]+)\}")

STRING_DESCRIPTION = _(
    "Snowflake ID: a 64-bit, time-ordered integer, written as a string of digits since a "
    "JavaScript number would round it. Requests may also send an integer."
)
NUMBER_DESCRIPTION = _(
    "Snowflake ID: a 64-bit, time-ordered integer. Requests may also send a string of digits."
)


def example_id() -> int:
    """An ID of the project's layout, made on node 1 at a fixed moment in 2025."""
    try:
        layout = conf.get_layout()
    except ConfigurationError:
        # The checks report the setting; a schema is still worth serving meanwhile.
        layout = Layout()
    moment = min(max(_EXAMPLE_MS, layout.epoch_ms), layout.max_timestamp_ms)
    return layout.encode(
        moment,
        min(1, layout.max_datacenter_id),
        min(1, layout.max_machine_id),
        min(5, layout.max_sequence),
    )


def id_schema(*, as_string: bool = True, description: bool = True) -> dict[str, Any]:
    """The OpenAPI schema of one Snowflake ID, as a string or as an integer."""
    schema: dict[str, Any]
    if as_string:
        schema = {"type": "string", "pattern": ID_PATTERN, "example": str(example_id())}
        text = STRING_DESCRIPTION
    else:
        schema = {
            "type": "integer",
            "format": "int64",
            "minimum": 0,
            "maximum": MAX_ID,
            "example": example_id(),
        }
        text = NUMBER_DESCRIPTION
    if description:
        schema["description"] = text
    return schema


class SnowflakeIDFieldExtension(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """``SnowflakeIDField``, and the ``pk_field`` of the relations Snowflake serializers build."""

    target_class = flakeid_drf.SnowflakeIDField
    match_subclasses = True

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> Any:
        return id_schema(as_string=self.target.writes_strings)


class SnowflakeSlugRelatedFieldExtension(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """A relation through a ``to_field`` that is a ``SnowflakeField`` other than the key."""

    target_class = flakeid_drf._SnowflakeSlugRelatedField

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> Any:
        return id_schema(as_string=self.target.id_field.writes_strings)


class SnowflakePathParameterExtension(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
    """The ``{id}`` of a route whose regex says nothing, such as a router's, to a Snowflake key.

    drf-spectacular types such a parameter from the model field the view looks up, through
    the integer field a plain ``ModelSerializer`` makes of it: ``integer``, which generated
    clients hold in a JavaScript number. A ``<snowflake:pk>`` route needs none of this:
    drf-spectacular reads the converter's regex.
    """

    target_class = serializers.IntegerField
    match_subclasses = True
    # It matches integer fields at large; an extension of anyone else's for one is preferred.
    priority = -1

    @classmethod
    def _matches(cls, target: Any) -> bool:
        # Nullable fields are never keys, and are left out: on the fallback below drf-spectacular
        # would add their null a second time (a type list holding "null" twice, in OpenAPI 3.1).
        return super()._matches(target) and not target.allow_null

    def map_serializer_field(self, auto_schema: AutoSchema, direction: Direction) -> Any:
        # URL parameters are mapped with no direction; bodies always have one.
        if direction is None and _names_snowflake_path_fields(auto_schema, self.target.field_name):
            # Without a description drf-spectacular adds its "A unique value identifying...".
            return id_schema(description=False)
        return auto_schema._map_serializer_field(self.target, direction, bypass_extensions=True)  # type: ignore[no-untyped-call]


def _names_snowflake_path_fields(auto_schema: AutoSchema, name: str | None) -> bool:
    # The field drf-spectacular maps carries only the model field's name, so every path
    # variable is resolved as drf-spectacular resolves it: when all those that end at a field
    # of that name end at a SnowflakeField, the field is one of them.
    view = auto_schema.view
    model = get_view_model(view, emit_warnings=False)  # type: ignore[no-untyped-call]
    if model is None:
        return False
    named = [
        field
        for variable in _PATH_VARIABLE.findall(auto_schema.path)
        if (field := _path_field(view, model, variable)) is not None and field.name == name
    ]
    return bool(named) and all(isinstance(field, SnowflakeField) for field in named)


def _path_field(
    view: Any, model: type[models.Model], variable: str
) -> models.Field[Any, Any] | None:
    # The rules of drf-spectacular's AutoSchema._resolve_path_parameters().
    if getattr(view, "lookup_url_kwarg", None) == variable:
        lookup = getattr(view, "lookup_field", variable)
    elif variable.endswith("_pk"):
        lookup = f"{variable[:-3]}_id"
    else:
        lookup = variable
    try:
        field = follow_model_field_lookup(model, lookup)  # type: ignore[no-untyped-call]
    except FieldError:
        return None
    # A relation's parameter is typed by the field it points to.
    while isinstance(field, ForeignObject) and len(field.foreign_related_fields) == 1:
        field = field.foreign_related_fields[0]
    return field if isinstance(field, models.Field) else None


class SnowflakeModelSerializerExtension(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
    """``SnowflakeModelSerializer`` subclasses, as drf-spectacular maps any serializer, except:

    - the description of a component is its own serializer's docstring, never the one of
      ``SnowflakeModelSerializer`` (drf-spectacular reads docstrings up to DRF's classes);
    - the serializers ``Meta.depth`` nests are named after their model (``NestedCustomer``),
      where DRF's all share the name ``Nested``.
    """

    target_class = flakeid_drf.SnowflakeModelSerializer
    match_subclasses = True
    # Matches every subclass: an extension of yours for one of them is preferred.
    priority = -1

    def get_name(self, auto_schema: AutoSchema, direction: Direction) -> str | None:
        nesting = self._nesting()
        if nesting is None:
            return None
        model, hyperlinked, depth, as_strings = nesting
        return "".join(
            (
                "Nested",
                "Hyperlinked" if hyperlinked else "",
                model.__name__,
                f"Depth{depth}" if depth else "",
                "" if as_strings else "Numbers",
            )
        )

    def get_identity(self, auto_schema: AutoSchema, direction: Direction) -> Any:
        nesting = self._nesting()
        return None if nesting is None else ComponentIdentity(nesting)  # type: ignore[no-untyped-call]

    def map_serializer(self, auto_schema: AutoSchema, direction: Direction) -> Any:
        schema: dict[str, Any] = auto_schema._map_serializer(  # type: ignore[no-untyped-call]
            self.target, direction, bypass_extensions=True
        )
        library_docs = {
            get_doc(flakeid_drf.SnowflakeModelSerializer),
            get_doc(flakeid_drf.SnowflakeHyperlinkedModelSerializer),
        }
        if schema.get("description") in library_docs:
            del schema["description"]
        return schema

    def _nesting(self) -> tuple[type[models.Model], bool, int, bool] | None:
        # What a nested serializer's schema depends on, for one that build_nested_field() made:
        # the only serializer classes of that module besides the public ones.
        cls = type(self.target)
        if cls.__module__ != flakeid_drf.__name__ or cls in (
            flakeid_drf.SnowflakeModelSerializer,
            flakeid_drf.SnowflakeHyperlinkedModelSerializer,
        ):
            return None
        meta = cls.Meta
        as_strings = conf.ids_as_strings() if cls.ids_as_strings is None else cls.ids_as_strings
        return (
            meta.model,
            issubclass(cls, serializers.HyperlinkedModelSerializer),
            getattr(meta, "depth", 0),
            as_strings,
        )
