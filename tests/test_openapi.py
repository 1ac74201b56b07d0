from __future__ import annotations

import contextlib
import importlib
import io
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

pytest.importorskip("drf_spectacular", reason="needs the spectacular extra")

from django.core.management import call_command, load_command_class
from django.db import models
from django.test.utils import isolate_apps, override_settings
from drf_spectacular.drainage import GENERATOR_STATS
from drf_spectacular.extensions import OpenApiSerializerExtension, OpenApiSerializerFieldExtension
from pytest_django import Settings
from rest_framework import serializers

from django_flakeid import openapi
from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import MAX_ID, Layout
from django_flakeid.rest_framework import SnowflakeIDField, SnowflakeModelSerializer
from tests.openapi_urls import CustomerSerializer, MentionSerializer, OrderSerializer
from tests.testapp.models import Order

ROOT = Path(__file__).resolve().parent.parent
# The test settings' layout (twitter, default epoch) at openapi's moment, node 1/1, sequence 5.
EXAMPLE = "716946695132418053"
PATTERN = "^[0-9]{1,19}$"
STRING_ID = {
    "type": "string",
    "pattern": PATTERN,
    "example": EXAMPLE,
    "description": (
        "Snowflake ID: a 64-bit, time-ordered integer, written as a string of digits since a "
        "JavaScript number would round it. Requests may also send an integer."
    ),
}
NUMBER_ID = {
    "type": "integer",
    "format": "int64",
    "minimum": 0,
    "maximum": MAX_ID,
    "example": int(EXAMPLE),
    "description": (
        "Snowflake ID: a 64-bit, time-ordered integer. Requests may also send a string of digits."
    ),
}
PATH_ID = {"type": "string", "pattern": PATTERN, "example": EXAMPLE}
#: Passed to the spectacular command as --custom-settings.
OPENAPI_31 = {"OAS_VERSION": "3.1.0", "COMPONENT_SPLIT_REQUEST": True}


def generate(directory: Path, *options: str) -> dict[str, Any]:
    """The schema of tests.openapi_urls, as ``manage.py spectacular --fail-on-warn --validate``."""
    output = directory / "schema.json"
    # Warnings are counted per process: only this run's may fail it.
    GENERATOR_STATS.reset()
    stderr = io.StringIO()
    with (
        override_settings(
            REST_FRAMEWORK={"DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema"}
        ),
        contextlib.redirect_stderr(stderr),
    ):
        call_command(
            load_command_class("drf_spectacular", "spectacular"),
            "--urlconf=tests.openapi_urls",
            "--format=openapi-json",
            f"--file={output}",
            "--fail-on-warn",
            "--validate",
            *options,
        )
    # Warnings and errors are printed as they happen, whatever --fail-on-warn makes of them.
    assert stderr.getvalue() == ""
    schema: dict[str, Any] = json.loads(output.read_text())
    return schema


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return generate(tmp_path_factory.mktemp("openapi"))


@pytest.fixture(scope="module")
def schema_31(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Any]:
    return generate(
        tmp_path_factory.mktemp("openapi31"), "--custom-settings=tests.test_openapi.OPENAPI_31"
    )


def component(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = schema["components"]["schemas"][name]
    return found


def properties(schema: dict[str, Any], name: str) -> dict[str, Any]:
    found: dict[str, Any] = component(schema, name)["properties"]
    return found


def path_parameters(schema: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    operation = schema["paths"][path]["get"]
    return {
        parameter["name"]: parameter
        for parameter in operation["parameters"]
        if parameter["in"] == "path"
    }


class TestValid:
    def test_openapi_30(self, schema: dict[str, Any]) -> None:
        validator = pytest.importorskip("openapi_spec_validator", reason="needs the test extra")

        validator.validate(schema)
        assert schema["openapi"] == "3.0.3"

    def test_openapi_31_with_split_components(self, schema_31: dict[str, Any]) -> None:
        validator = pytest.importorskip("openapi_spec_validator", reason="needs the test extra")

        validator.validate(schema_31)
        assert schema_31["openapi"] == "3.1.0"
        assert properties(schema_31, "OrderRequest")["customer"] == {
            **STRING_ID,
            "type": ["string", "null"],
        }
        assert properties(schema_31, "MentionRequest")["weight"] == {"type": ["integer", "null"]}


class TestFields:
    def test_own_key(self, schema: dict[str, Any]) -> None:
        assert properties(schema, "Order")["id"] == {**STRING_ID, "readOnly": True}
        assert component(schema, "Order")["required"] == ["id"]

    def test_foreign_key_and_many_to_many(self, schema: dict[str, Any]) -> None:
        order = properties(schema, "Order")

        assert order["customer"] == {**STRING_ID, "nullable": True}
        assert order["tags"] == {"type": "array", "items": STRING_ID}

    def test_reverse_relations(self, schema: dict[str, Any]) -> None:
        assert properties(schema, "Customer")["orders"] == {"type": "array", "items": STRING_ID}

    def test_editable_column(self, schema: dict[str, Any]) -> None:
        assert properties(schema, "Record")["source_id"] == STRING_ID

    def test_relation_through_to_field(self, schema: dict[str, Any]) -> None:
        assert properties(schema, "Mention")["article"] == STRING_ID

    def test_snowflake_auto_field(self, schema: dict[str, Any]) -> None:
        author, entry = properties(schema, "Author"), properties(schema, "Entry")

        assert author["id"] == {**STRING_ID, "readOnly": True}
        assert author["books"] == author["co_written"] == {"type": "array", "items": STRING_ID}
        assert entry["series"] == entry["book"] == STRING_ID
        assert properties(schema, "Comment")["object_id"] == STRING_ID

    def test_numbers(self, schema: dict[str, Any]) -> None:
        assert properties(schema, "OrderNumbers")["id"] == {**NUMBER_ID, "readOnly": True}
        assert properties(schema, "NestedCustomerNumbers")["id"] == {**NUMBER_ID, "readOnly": True}

    def test_numbers_from_the_setting(self, settings: Settings) -> None:
        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}
        no_schema: Any = None
        extensions = (
            # drf-spectacular's extensions take their target untyped.
            openapi.SnowflakeIDFieldExtension(SnowflakeIDField()),  # type: ignore[no-untyped-call]
            openapi.SnowflakeSlugRelatedFieldExtension(  # type: ignore[no-untyped-call]
                MentionSerializer().fields["article"]
            ),
        )

        for extension in extensions:
            assert extension.map_serializer_field(no_schema, "response") == NUMBER_ID

    def test_other_fields_keep_drf_spectacular_types(self, schema: dict[str, Any]) -> None:
        line = properties(schema, "Line")

        assert line["id"] == {"type": "integer", "readOnly": True}
        assert line["order"] == STRING_ID
        assert line["quantity"]["type"] == "integer"
        assert properties(schema, "Mention")["weight"] == {"type": "integer", "nullable": True}

    def test_plain_model_serializer_is_untouched(self, schema: dict[str, Any]) -> None:
        # It writes numbers, so its schema says numbers.
        assert properties(schema, "PlainOrder") == {
            "id": {"type": "integer", "readOnly": True},
            "customer": {"type": "integer", "nullable": True},
            "customer_number": {"type": "integer", "readOnly": True},
        }


class TestNested:
    def test_named_after_their_model(self, schema: dict[str, Any]) -> None:
        book = properties(schema, "Book")

        ref = {"$ref": "#/components/schemas/NestedAuthor"}
        assert book["author"] == {"allOf": [ref], "readOnly": True}
        assert book["co_authors"] == {"type": "array", "items": ref, "readOnly": True}
        assert properties(schema, "NestedAuthor")["id"] == {**STRING_ID, "readOnly": True}
        assert properties(schema, "NestedSeries")["books"] == {
            "type": "array",
            "items": STRING_ID,
            "readOnly": True,
        }

    def test_hyperlinked(self, schema: dict[str, Any]) -> None:
        order = properties(schema, "HyperlinkedOrder")

        assert order["id"] == {**STRING_ID, "readOnly": True}
        assert order["customer"]["allOf"] == [
            {"$ref": "#/components/schemas/NestedHyperlinkedCustomer"}
        ]
        assert set(properties(schema, "NestedHyperlinkedTag")) == {"url", "name"}

    def test_depth_is_in_the_name(self, schema: dict[str, Any]) -> None:
        # The order nested at depth 1 nests its customer; the one at depth 0 does not.
        assert properties(schema, "DeepLine")["order"]["allOf"] == [
            {"$ref": "#/components/schemas/NestedOrderDepth1"}
        ]
        assert properties(schema, "NestedLine")["order"]["allOf"] == [
            {"$ref": "#/components/schemas/NestedOrder"}
        ]
        assert properties(schema, "NestedOrderDepth1")["customer"]["allOf"] == [
            {"$ref": "#/components/schemas/NestedCustomer"}
        ]
        assert properties(schema, "NestedOrder")["customer"] == {**STRING_ID, "nullable": True}

    def test_no_component_named_nested(self, schema: dict[str, Any]) -> None:
        assert "Nested" not in schema["components"]["schemas"]


class TestDescriptions:
    def test_own_docstring(self, schema: dict[str, Any]) -> None:
        assert component(schema, "Order")["description"] == "An order of the shop."

    def test_never_the_base_class_docstring(self, schema: dict[str, Any]) -> None:
        described = {
            name: body["description"]
            for name, body in schema["components"]["schemas"].items()
            if "description" in body
        }

        assert described == {
            "Order": "An order of the shop.",
            "PatchedOrder": "An order of the shop.",
        }

    def test_the_base_class_keeps_its_docstring(self) -> None:
        assert SnowflakeModelSerializer.__doc__
        assert "Snowflake ID" in SnowflakeModelSerializer.__doc__


class TestPathParameters:
    @pytest.mark.parametrize(
        ("path", "description"),
        [
            ("/api/orders/{id}/", "A unique value identifying this order."),
            ("/api/tags/{id}/", "A unique value identifying this tag."),
            ("/api/hyperlinked-orders/{id}/", "A unique value identifying this order."),
            # Django's wording for any AutoField.
            ("/api/books/{id}/", "A unique integer value identifying this book."),
        ],
    )
    def test_router(self, schema: dict[str, Any], path: str, description: str) -> None:
        assert path_parameters(schema, path) == {
            "id": {
                "in": "path",
                "name": "id",
                "schema": PATH_ID,
                "description": description,
                "required": True,
            }
        }

    def test_lookup_field(self, schema: dict[str, Any]) -> None:
        parameters = path_parameters(schema, "/api/articles/{public_id}/")

        assert parameters["public_id"]["schema"] == PATH_ID

    def test_lookup_url_kwarg(self, schema: dict[str, Any]) -> None:
        parameters = path_parameters(schema, "/api/articles-by-kwarg/{article}/")

        assert parameters["article"]["schema"] == PATH_ID

    def test_converter(self, schema: dict[str, Any]) -> None:
        parameters = path_parameters(schema, "/api/by-converter/{id}/")

        assert parameters["id"]["schema"] == {"type": "string", "pattern": PATTERN}

    def test_ordinary_keys_stay_integers(self, schema: dict[str, Any]) -> None:
        assert path_parameters(schema, "/api/lines/{id}/")["id"]["schema"] == {"type": "integer"}
        assert path_parameters(schema, "/api/records/{id}/")["id"]["schema"] == {"type": "integer"}

    def test_int_converter_is_left_as_declared(self, schema: dict[str, Any]) -> None:
        assert path_parameters(schema, "/api/plain/{id}/")["id"]["schema"] == {"type": "integer"}

    def test_parent_in_a_nested_route(self, schema: dict[str, Any]) -> None:
        parameters = path_parameters(schema, "/api/orders/{order_pk}/lines/")

        assert parameters["order_pk"]["schema"] == PATH_ID

    def test_filter_of_a_list_view_stays_integer(self, schema: dict[str, Any]) -> None:
        pytest.importorskip("django_filters", reason="needs the filter extra")

        [parameter] = schema["paths"]["/api/comments/"]["get"]["parameters"]

        assert parameter == {"in": "query", "name": "content_type", "schema": {"type": "integer"}}

    @pytest.mark.parametrize(
        ("path", "name", "expected"),
        [
            ("/api/orders/{id}/", "id", True),
            ("/api/orders/{pk}/", "id", True),
            ("/api/orders/{id}/", "reference", False),
            ("/api/orders/{id}/", None, False),
            ("/api/orders/", "id", False),
            ("/api/orders/{nope}/", "id", False),
        ],
    )
    def test_which_fields_are_path_ids(self, path: str, name: str | None, expected: bool) -> None:
        auto_schema: Any = SimpleNamespace(
            view=SimpleNamespace(queryset=Order.objects.all()), path=path
        )

        assert openapi._names_snowflake_path_fields(auto_schema, name) is expected

    def test_same_name_different_types_stays_integer(self, schema: dict[str, Any]) -> None:
        # Both end at a field named "id": the order's and the line's. drf-spectacular tells
        # the extension no more than the name, so neither is guessed to be a Snowflake ID.
        parameters = path_parameters(schema, "/api/orders/{order_pk}/lines/{id}/")

        assert parameters["order_pk"]["schema"] == {"type": "integer"}
        assert parameters["id"]["schema"] == {"type": "integer"}


@pytest.mark.usefixtures("isolated_apps")
def test_a_relation_to_a_relation_is_followed_to_its_end() -> None:
    root = make_model("Root", id=SnowflakeField(primary_key=True))
    extension = make_model(
        "Extension", root=models.OneToOneField(root, models.CASCADE, primary_key=True)
    )
    leaf = make_model("Leaf", extension=models.ForeignKey(extension, models.CASCADE))

    field = openapi._path_field(object(), leaf, "extension_pk")

    assert isinstance(field, SnowflakeField)
    assert field.model is root


@pytest.fixture
def isolated_apps() -> Iterator[None]:
    with isolate_apps("tests.testapp"):
        yield


def make_model(name: str, **fields: object) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": "testapp"})
    return type(name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


@pytest.fixture
def registered() -> Iterator[list[type[Any]]]:
    """Extensions a test defines, taken out of drf-spectacular's registry afterwards."""
    extensions: list[type[Any]] = []
    yield extensions
    for extension in extensions:
        extension._registry.remove(extension)


class TestYourExtensionsWin:
    def test_serializer(self, registered: list[type[Any]]) -> None:
        class Yours(OpenApiSerializerExtension):  # type: ignore[no-untyped-call]
            target_class = CustomerSerializer

        registered.append(Yours)

        assert type(OpenApiSerializerExtension.get_match(CustomerSerializer())) is Yours
        assert (
            type(OpenApiSerializerExtension.get_match(OrderSerializer()))
            is openapi.SnowflakeModelSerializerExtension
        )

    def test_integer_field(self, registered: list[type[Any]]) -> None:
        field = serializers.IntegerField()
        assert (
            type(OpenApiSerializerFieldExtension.get_match(field))
            is openapi.SnowflakePathParameterExtension
        )

        class Yours(OpenApiSerializerFieldExtension):  # type: ignore[no-untyped-call]
            target_class = serializers.IntegerField

            def map_serializer_field(self, auto_schema: Any, direction: Any) -> Any:
                return {}

        registered.append(Yours)

        assert type(OpenApiSerializerFieldExtension.get_match(field)) is Yours

    def test_a_nullable_integer_field_is_not_ours(self) -> None:
        field = serializers.IntegerField(allow_null=True)

        assert OpenApiSerializerFieldExtension.get_match(field) is None


class TestExample:
    def test_decodes_in_the_project_layout(self) -> None:
        decoded = Layout().decode(openapi.example_id())

        assert str(decoded.raw) == EXAMPLE
        assert decoded.generated_at == "2025-06-01T09:30:12.345Z"
        assert (decoded.datacenter_id, decoded.machine_id, decoded.sequence) == (1, 1, 5)

    def test_other_layout(self, settings: Settings) -> None:
        settings.FLAKEID = {"preset": "minimal", "epoch_ms": 1_700_000_000_000}
        layout = Layout(53, 0, 0, 10, epoch_ms=1_700_000_000_000)

        decoded = layout.decode(openapi.example_id())

        assert decoded.generated_at == "2025-06-01T09:30:12.345Z"
        assert (decoded.datacenter_id, decoded.machine_id, decoded.sequence) == (0, 0, 5)

    def test_a_moment_outside_the_layout(self, settings: Settings) -> None:
        settings.FLAKEID = {"preset": "minimal", "epoch_ms": 1_800_000_000_000}

        decoded = Layout(53, 0, 0, 10, epoch_ms=1_800_000_000_000).decode(openapi.example_id())

        assert decoded.timestamp_ms == 1_800_000_000_000

    def test_invalid_setting_uses_the_default_layout(self, settings: Settings) -> None:
        settings.FLAKEID = {"preset": "no-such-preset"}

        assert str(openapi.example_id()) == EXAMPLE


def test_importing_without_drf_spectacular(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "drf_spectacular.extensions", None)
    monkeypatch.delitem(sys.modules, "django_flakeid.openapi")

    with pytest.raises(ImportError, match=r"pip install 'django-flakeid\[spectacular\]'"):
        importlib.import_module("django_flakeid.openapi")


# Starts Django in a fresh process, optionally with drf_spectacular made unimportable, and
# serves one DRF request with a SnowflakeModelSerializer.
_PROJECT = """
import json
import sys


class NoSpectacular:
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] == "drf_spectacular":
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return None


if sys.argv[1] == "without":
    sys.meta_path.insert(0, NoSpectacular())

import django

django.setup()

from rest_framework.response import Response
from rest_framework.test import APIRequestFactory
from rest_framework.views import APIView

from django_flakeid.rest_framework import SnowflakeModelSerializer
from tests.testapp.models import Order


class OrderSerializer(SnowflakeModelSerializer):
    class Meta:
        model = Order
        fields = ("id", "customer", "reference")


class OrderView(APIView):
    def get(self, request):
        return Response(OrderSerializer(Order(id=2**62 + 1, reference="x")).data)


response = OrderView.as_view()(APIRequestFactory().get("/"))
response.render()
print(json.dumps({
    "status": response.status_code,
    "body": json.loads(response.content),
    "loaded": sorted(name for name in ("drf_spectacular", "django_flakeid.openapi")
                     if name in sys.modules),
}))
"""


def run_project(mode: str) -> Any:
    result = subprocess.run(
        [sys.executable, "-c", _PROJECT, mode],
        cwd=ROOT,
        env={**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings"},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


@pytest.mark.parametrize(
    ("mode", "loaded"),
    [("without", []), ("with", ["django_flakeid.openapi", "drf_spectacular"])],
)
def test_a_project_with_and_without_drf_spectacular(mode: str, loaded: list[str]) -> None:
    assert run_project(mode) == {
        "status": 200,
        "body": {"id": str(2**62 + 1), "customer": None, "reference": "x"},
        "loaded": loaded,
    }


def test_the_id_filters_of_a_filterset_are_strings_of_digits(schema: dict[str, Any]) -> None:
    pytest.importorskip("django_filters", reason="needs the filter extra")
    operation = schema["paths"]["/api/orders/"]["get"]
    query = {p["name"]: p for p in operation["parameters"] if p["in"] == "query"}
    one_id = {key: value for key, value in STRING_ID.items() if key != "description"}

    assert query["id"]["schema"] == one_id
    assert query["customer"]["schema"] == one_id
    # A comma-separated list of them, as django-filter reads "in" and "range".
    for name in ("id__in", "id__range"):
        assert query[name]["schema"] == {"type": "array", "items": one_id}
        assert (query[name]["style"], query[name]["explode"]) == ("form", False)
    # The time filters stay what django-filter makes of them: date-times.
    assert query["created_after"]["schema"] == {"type": "string", "format": "date-time"}
