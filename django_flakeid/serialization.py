"""Snowflake IDs in plain Django JSON: which fields hold them, an encoder, and a dict helper.

JavaScript reads JSON numbers as 64-bit floats, which hold integers exactly only up to
``2**53 - 1``; a Snowflake ID is usually above that, so a browser would silently change it.
"""

from __future__ import annotations

from collections.abc import Collection, Iterator

from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.db.models.fields.related import ForeignObject
from django.db.models.fields.reverse_related import ForeignObjectRel

from . import conf
from .fields import SnowflakeField
from .ints import is_int

#: The largest integer a JavaScript number holds exactly (``Number.MAX_SAFE_INTEGER``).
MAX_SAFE_INTEGER = 2**53 - 1


def holds_snowflake_ids(field: object) -> bool:
    """True if the values of a model field are Snowflake IDs.

    That is a ``SnowflakeField``, a ``ForeignKey`` or ``OneToOneField`` whose target is one,
    a ``ManyToManyField`` to a model keyed by one, and the reverse side of any relation to
    such a model, as ``Model._meta.get_fields()`` lists it.
    """
    current = field
    while not isinstance(current, SnowflakeField):
        if isinstance(current, ForeignObject):
            targets = current.foreign_related_fields
            if len(targets) != 1:
                return False
            current = targets[0]
        elif isinstance(current, models.ManyToManyField | ForeignObjectRel):
            current = current.related_model._meta.pk
        else:
            return False
    return True


class SnowflakeJSONEncoder(DjangoJSONEncoder):
    """``DjangoJSONEncoder`` that writes integers JavaScript cannot hold exactly as strings.

    Every integer beyond ``±(2**53 - 1)`` becomes a string; smaller ones stay numbers. Use it
    with ``JsonResponse(data, encoder=SnowflakeJSONEncoder)`` or
    ``serializers.serialize("json", queryset, cls=SnowflakeJSONEncoder)``.
    """

    def iterencode(self, o: object, _one_shot: bool = False) -> Iterator[str]:
        # The json module writes ints itself and never asks default() about them, so they
        # are converted before encoding starts.
        return super().iterencode(_safe_for_javascript(o), _one_shot)

    def default(self, o: object) -> object:
        return _safe_for_javascript(super().default(o))


def _safe_for_javascript(value: object) -> object:
    if is_int(value):
        if -MAX_SAFE_INTEGER <= value <= MAX_SAFE_INTEGER:
            return value
        return str(int(value))
    if isinstance(value, dict):
        return {key: _safe_for_javascript(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_safe_for_javascript(item) for item in value]
    return value


def model_to_json_dict(
    instance: models.Model,
    fields: Collection[str] | None = None,
    exclude: Collection[str] | None = None,
    *,
    ids_as_strings: bool | None = None,
) -> dict[str, object]:
    """The fields of ``instance`` as a dict for ``JsonResponse``, Snowflake IDs as strings.

    Like Django's ``model_to_dict``, with ``fields`` and ``exclude`` to choose fields by name,
    but it includes fields that are not editable (such as a ``SnowflakeField``), and gives a
    many-to-many field as a list of primary keys. Every value :func:`holds_snowflake_ids`
    says is an ID is a string, unless ``ids_as_strings`` (by default
    ``FLAKEID['ids_as_strings']``) is False. Other values are left for the encoder.
    """
    as_strings = conf.ids_as_strings() if ids_as_strings is None else ids_as_strings
    meta = instance._meta
    data: dict[str, object] = {}
    for field in (*meta.concrete_fields, *meta.many_to_many):
        if (fields is not None and field.name not in fields) or (exclude and field.name in exclude):
            continue
        value: object
        if isinstance(field, models.ManyToManyField):
            # value_from_object() reads a prefetch_related() cache when there is one.
            value = [related.pk for related in field.value_from_object(instance)]
        else:
            value = field.value_from_object(instance)
        if as_strings and holds_snowflake_ids(field):
            value = _id_to_string(value)
        data[field.name] = value
    return data


def _id_to_string(value: object) -> object:
    if isinstance(value, list):
        return [_id_to_string(item) for item in value]
    return None if value is None else str(value)
