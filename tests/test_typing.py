"""What a type checker tells users. mypy (strict, with django-stubs) checks this module in CI;
the ``assert_type`` calls fail that run, not this one, when a type is wrong."""

from __future__ import annotations

import importlib
import inspect
import re
import sys
from collections.abc import Iterator
from types import ModuleType

import pytest

from django_flakeid.converters import SnowflakeConverter
from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import DecodedID
from django_flakeid.serialization import holds_snowflake_ids, model_to_json_dict
from tests.testapp.models import Article, Customer, NullableThing, Order, OrderLine, Profile

if sys.version_info >= (3, 11):
    from typing import assert_type
else:
    from typing_extensions import assert_type


def test_model_attributes_are_ints() -> None:
    order = Order(customer=Customer())

    assert_type(order.id, int)
    assert_type(order.pk, int)
    assert_type(order.customer_id, int | None)
    assert_type(OrderLine(order=order).order_id, int)
    assert_type(Profile(customer=Customer()).customer_id, int)
    assert_type(Article().public_id, int)
    assert_type(NullableThing().filled, int | None)
    assert_type(NullableThing().empty, int | None)
    assert isinstance(order.id, int)


def test_field_methods() -> None:
    field = Order._meta.get_field("id")
    assert isinstance(field, SnowflakeField)

    assert_type(field.decode(Order().id), DecodedID)


def test_converter() -> None:
    converter = SnowflakeConverter()

    assert_type(converter.to_python("12"), int)
    assert_type(converter.to_url(12), str)


def test_serialization() -> None:
    assert_type(holds_snowflake_ids(Order._meta.pk), bool)
    assert_type(model_to_json_dict(Order(), fields=["id"]), dict[str, object])


def test_rest_framework() -> None:
    pytest.importorskip("rest_framework")
    from django_flakeid.rest_framework import SnowflakeIDField

    field = SnowflakeIDField()

    assert_type(field.to_internal_value("12"), int)
    assert_type(field.to_representation(12), int | str)
    assert_type(field.writes_strings, bool)


# DRF's own hooks, whose signatures these methods must repeat.
FRAMEWORK_HOOKS = {"build_standard_field", "build_relational_field", "build_nested_field"}


def public_modules() -> Iterator[ModuleType]:
    for name in ("converters", "serialization", "rest_framework"):
        try:
            yield importlib.import_module(f"django_flakeid.{name}")
        except ImportError:
            continue


def signatures() -> Iterator[tuple[str, dict[str, object]]]:
    for module in public_modules():
        for name, value in vars(module).items():
            if name.startswith("_") or getattr(value, "__module__", None) != module.__name__:
                continue
            where = f"{module.__name__}.{name}"
            if inspect.isfunction(value):
                yield where, value.__annotations__
            elif inspect.isclass(value):
                for attribute, member in vars(value).items():
                    if attribute in FRAMEWORK_HOOKS or (
                        attribute.startswith("_") and attribute != "__init__"
                    ):
                        continue
                    function = member.fget if isinstance(member, property) else member
                    if inspect.isfunction(function):
                        yield f"{where}.{attribute}", function.__annotations__


def test_no_any_in_the_public_api() -> None:
    found = {
        f"{where} {name}: {annotation}"
        for where, annotations in signatures()
        for name, annotation in annotations.items()
        if re.search(r"\bAny\b", str(annotation))
    }

    assert found == set()


def test_the_scan_sees_the_api() -> None:
    scanned = {where for where, _annotations in signatures()}

    assert {
        "django_flakeid.converters.SnowflakeConverter.to_python",
        "django_flakeid.serialization.model_to_json_dict",
        "django_flakeid.serialization.SnowflakeJSONEncoder.iterencode",
    } <= scanned
