from __future__ import annotations

import importlib
import json
import os
import re
import subprocess
import sys
import textwrap
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

pytest.importorskip("ninja")

from django.db import models
from django.test import Client
from django.test.utils import isolate_apps
from ninja import ModelSchema, Schema
from ninja.errors import ConfigError
from ninja.testing import TestClient
from pydantic import Field, ValidationError

from django_flakeid.fields import SnowflakeAutoField
from django_flakeid.layout import MAX_ID
from django_flakeid.ninja import SnowflakeID, SnowflakeModelSchema
from tests.autoapp.models import Author, Book, Comment
from tests.ninja_urls import BookIn, BookOut, LineOut, OrderIn, OrderOut, api
from tests.testapp.models import (
    Article,
    Customer,
    ExternalRecord,
    NullableThing,
    Order,
    OrderLine,
    Tag,
)

ROOT = Path(__file__).resolve().parent.parent
ID = 913686285393227776
INVALID = "A Snowflake ID must be a whole number, as a string of digits or an integer."
OUT_OF_RANGE = f"A Snowflake ID must be from 0 to {MAX_ID}."
ID_SCHEMA = {
    "type": "string",
    "pattern": "^[0-9]{1,19}$",
    "example": "913686285393227776",
    "description": (
        "A Snowflake ID: a 64-bit integer written as a string of digits, "
        "which JavaScript numbers cannot hold exactly."
    ),
}
NULLABLE_ID_SCHEMA = {"anyOf": [ID_SCHEMA, {"type": "null"}]}

client = TestClient(api)


@pytest.fixture(autouse=True)
def ninja_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    # Older Ninja (1.3) makes an API's URLs only once per process unless told otherwise, and
    # the URLconf and the test client both make them.
    monkeypatch.setenv("NINJA_SKIP_REGISTRY", "1")


class Refund(Schema):
    order_id: SnowflakeID
    customer_id: SnowflakeID | None = None
    line_ids: list[SnowflakeID] = Field(default_factory=list)


def errors(data: dict[str, object]) -> list[tuple[str, tuple[int | str, ...], str]]:
    with pytest.raises(ValidationError) as caught:
        Refund.model_validate(data)
    return [(error["type"], error["loc"], error["msg"]) for error in caught.value.errors()]


class TestSnowflakeID:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ("0", 0),
            (0, 0),
            ("913686285393227776", ID),
            (ID, ID),
            (str(MAX_ID), MAX_ID),
            (MAX_ID, MAX_ID),
            # Leading zeros are not digits of the value.
            ("0" * 25 + "7", 7),
        ],
    )
    def test_reads_strings_and_integers(self, data: object, expected: int) -> None:
        refund = Refund.model_validate({"order_id": data})

        assert refund.order_id == expected
        assert type(refund.order_id) is int

    @pytest.mark.parametrize(
        "data",
        [
            True,
            False,
            1.0,
            float(ID),
            Decimal(12),
            "abc",
            "12.5",
            "1e3",
            " 12",
            "12 ",
            "12\n",
            "+12",
            "1_000",
            "",
            "\uff11\uff12",  # fullwidth digits, which int() reads
            "\u0663",  # an Arabic-Indic digit, ditto
            b"12",
            None,
            [ID],
        ],
    )
    def test_refuses_what_is_not_a_whole_number(self, data: object) -> None:
        assert errors({"order_id": data}) == [("snowflake_id_invalid", ("order_id",), INVALID)]

    @pytest.mark.parametrize(
        "data",
        [
            -1,
            "-1",
            MAX_ID + 1,
            str(MAX_ID + 1),
            "1" + "0" * 24,
            "-" + "9" * 30,
            # Longer than int() takes from a string (sys.get_int_max_str_digits()).
            "1" * 5000,
        ],
    )
    def test_refuses_numbers_out_of_range(self, data: object) -> None:
        assert errors({"order_id": data}) == [
            ("snowflake_id_out_of_range", ("order_id",), OUT_OF_RANGE)
        ]

    def test_the_error_holds_no_number_a_browser_would_round(self) -> None:
        with pytest.raises(ValidationError) as caught:
            Refund.model_validate({"order_id": str(MAX_ID + 1)})

        assert "ctx" not in caught.value.errors()[0]

    def test_in_lists_and_optional(self) -> None:
        refund = Refund.model_validate({"order_id": ID, "line_ids": ["1", 2]})

        assert refund.customer_id is None
        assert refund.line_ids == [1, 2]
        assert errors({"order_id": ID, "customer_id": 1.5, "line_ids": ["1", "x"]}) == [
            ("snowflake_id_invalid", ("customer_id",), INVALID),
            ("snowflake_id_invalid", ("line_ids", 1), INVALID),
        ]

    def test_written_as_strings(self) -> None:
        refund = Refund(order_id=ID, line_ids=[MAX_ID])
        expected = {"order_id": str(ID), "customer_id": None, "line_ids": [str(MAX_ID)]}

        # Ninja writes responses from the Python mode, so both modes give strings.
        assert refund.model_dump() == expected
        assert refund.model_dump(mode="json") == expected
        assert json.loads(refund.model_dump_json()) == expected

    def test_round_trip(self) -> None:
        refund = Refund(order_id=MAX_ID, customer_id=0)

        assert Refund.model_validate_json(refund.model_dump_json()) == refund

    def test_json_schema(self) -> None:
        for mode in ("validation", "serialization"):
            properties = Refund.model_json_schema(mode=mode)["properties"]

            assert properties["order_id"] == {**ID_SCHEMA, "title": "Order Id"}
            assert properties["customer_id"] == {
                **NULLABLE_ID_SCHEMA,
                "default": None,
                "title": "Customer Id",
            }
            assert properties["line_ids"]["items"] == ID_SCHEMA

    def test_the_pattern_and_example_fit(self) -> None:
        pattern = re.compile(ID_SCHEMA["pattern"])

        assert pattern.fullmatch(str(MAX_ID))
        assert pattern.fullmatch("0")
        assert not pattern.fullmatch("-1")
        assert not pattern.fullmatch("1" * 20)
        example = ID_SCHEMA["example"]
        assert Refund.model_validate({"order_id": example}).order_id == int(example)

    @pytest.mark.django_db
    def test_read_from_the_orm(self) -> None:
        line = OrderLine.objects.create(order=Order.objects.create(), product="tea")

        assert LineOut.from_orm(line).model_dump() == {
            "id": line.pk,
            "order_id": str(line.order_id),
            "product": "tea",
            "quantity": 1,
        }

    @pytest.mark.django_db
    def test_a_model_instance_is_not_an_id(self) -> None:
        # Only the many-to-many fields of a SnowflakeModelSchema read a row's key.
        assert errors({"order_id": Order.objects.create()}) == [
            ("snowflake_id_invalid", ("order_id",), INVALID)
        ]


def properties(schema: type[Schema]) -> dict[str, Any]:
    """The schema's properties as a request body has them: a foreign key by its column."""
    props: dict[str, Any] = schema.json_schema()["properties"]
    return props


def titled(title: str, schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "title": title}


class TestSnowflakeModelSchema:
    def test_own_field_foreign_key_and_many_to_many(self) -> None:
        props = properties(OrderOut)

        assert props["id"] == titled("Id", NULLABLE_ID_SCHEMA)
        assert props["customer_id"] == titled("Customer", NULLABLE_ID_SCHEMA)
        assert props["tags"] == {"items": ID_SCHEMA, "title": "Tags", "type": "array"}
        # Ninja's own mapping for the rest.
        assert props["reference"]["anyOf"][0] == {"maxLength": 100, "type": "string"}

    def test_responses_name_a_foreign_key_by_its_field(self) -> None:
        props = OrderOut.model_json_schema(by_alias=False, mode="serialization")["properties"]

        assert sorted(props) == ["customer", "id", "reference", "tags"]
        assert props["customer"]["anyOf"] == NULLABLE_ID_SCHEMA["anyOf"]

    def test_snowflake_auto_field(self) -> None:
        assert properties(BookOut)["id"] == titled("ID", NULLABLE_ID_SCHEMA)
        assert properties(BookOut)["author_id"] == titled("Author", ID_SCHEMA)
        assert properties(BookIn)["author_id"] == titled("Author", ID_SCHEMA)

    def test_an_input_without_its_auto_key_leaves_it_empty(self) -> None:
        class BookAll(SnowflakeModelSchema):
            class Meta:
                model = Book
                fields = "__all__"

        book = BookAll.model_validate({"title": "t", "author_id": "1", "co_authors": []})

        # A plain ModelSchema takes the SnowflakeAutoField for one with a default factory.
        assert book.model_dump()["id"] is None

    def test_other_integers_stay_numbers(self) -> None:
        class LineSchema(SnowflakeModelSchema):
            class Meta:
                model = OrderLine
                fields = ("id", "order", "quantity")

        props = properties(LineSchema)

        assert props["id"]["anyOf"][0] == {"type": "integer"}
        assert props["quantity"]["type"] == "integer"
        assert props["order_id"] == titled("Order", ID_SCHEMA)

    def test_snowflake_field_that_is_not_the_key(self) -> None:
        class ArticleSchema(SnowflakeModelSchema):
            class Meta:
                model = Article
                fields = ("id", "public_id")

        class RecordSchema(SnowflakeModelSchema):
            class Meta:
                model = ExternalRecord
                fields = ("source_id",)

        class CommentSchema(SnowflakeModelSchema):
            class Meta:
                model = Comment
                fields = ("object_id",)

        assert properties(ArticleSchema)["id"]["anyOf"][0] == {"type": "integer"}
        assert properties(ArticleSchema)["public_id"] == titled("Public Id", ID_SCHEMA)
        assert properties(RecordSchema)["source_id"] == titled("Source Id", ID_SCHEMA)
        assert properties(CommentSchema)["object_id"] == titled("Object Id", ID_SCHEMA)

    def test_nullable(self) -> None:
        class ThingSchema(SnowflakeModelSchema):
            class Meta:
                model = NullableThing
                fields = ("filled", "empty")

        props = properties(ThingSchema)

        assert props["filled"] == titled("Filled", NULLABLE_ID_SCHEMA)
        assert props["empty"] == titled("Empty", NULLABLE_ID_SCHEMA)
        assert ThingSchema.model_validate({"empty": None}).model_dump()["empty"] is None

    def test_fields_optional(self) -> None:
        class OrderPatch(SnowflakeModelSchema):
            class Meta:
                model = Order
                fields = ("customer", "tags")
                fields_optional = "__all__"

        patch = OrderPatch.model_validate({"tags": ["5"]})

        assert patch.model_dump(exclude_unset=True) == {"tags": ["5"]}
        assert properties(OrderPatch)["tags"]["anyOf"][0] == {
            "items": ID_SCHEMA,
            "type": "array",
        }
        assert OrderPatch.model_validate({"tags": None}).model_dump()["tags"] is None

    def test_fields_you_declare_are_kept(self) -> None:
        class OrderNumbers(SnowflakeModelSchema):
            id: int
            extra: SnowflakeID = 5

            class Meta:
                model = Order
                fields = ("id", "customer")

        props = properties(OrderNumbers)

        assert props["id"] == {"title": "Id", "type": "integer"}
        assert props["customer_id"] == titled("Customer", NULLABLE_ID_SCHEMA)
        assert OrderNumbers.model_validate({"id": ID}).model_dump() == {
            "id": ID,
            "customer": None,
            "extra": "5",
        }

    def test_foreign_key_to_a_snowflake_field_that_is_not_the_key(self) -> None:
        with isolate_apps("tests.testapp"):

            class Mention(models.Model):
                article = models.ForeignKey(Article, on_delete=models.CASCADE, to_field="public_id")

                class Meta:
                    app_label = "testapp"

                def __str__(self) -> str:
                    return f"Mention of {self.article}"

            class MentionSchema(SnowflakeModelSchema):
                class Meta:
                    model = Mention
                    fields = ("article",)

        # Ninja types a foreign key by the target's primary key, an integer here.
        assert properties(MentionSchema)["article_id"] == titled("Article", ID_SCHEMA)
        assert MentionSchema.model_validate({"article_id": ID}).model_dump() == {"article": str(ID)}

    def test_model_named_by_a_string(self) -> None:
        try:

            class Probe(ModelSchema):
                class Meta:
                    model = "testapp.Tag"
                    fields = ("id",)

        except (AssertionError, TypeError):
            pytest.skip("this Ninja takes no model as 'app_label.Model'")

        class BookByName(SnowflakeModelSchema):
            class Meta:
                model = "autoapp.Book"
                fields = ("id", "author")

        assert properties(BookByName)["author_id"] == titled("Author", ID_SCHEMA)

    def test_is_a_model_schema(self) -> None:
        assert issubclass(OrderOut, ModelSchema)
        assert issubclass(OrderOut, SnowflakeModelSchema)
        assert OrderOut.__doc__ is None

    def test_docstring_is_the_schemas_own(self) -> None:
        class Documented(SnowflakeModelSchema):
            """An order, as the shop shows it."""

            class Meta:
                model = Order
                fields = ("id",)

        assert Documented.json_schema()["description"] == "An order, as the shop shows it."

    def test_subclass_of_a_schema(self) -> None:
        class OrderDetail(OrderOut):
            note: str = ""

        assert properties(OrderDetail)["id"] == titled("Id", NULLABLE_ID_SCHEMA)
        assert OrderDetail.model_validate({"id": ID, "tags": []}).model_dump()["id"] == str(ID)

    def test_a_subclass_declares_fields_as_it_likes(self) -> None:
        class OrderKey(SnowflakeModelSchema):
            class Meta:
                model = Order
                fields = ("id",)

        class OrderWithNumbers(OrderKey):
            customer: int | None = None

        assert properties(OrderWithNumbers)["customer"]["anyOf"][0] == {"type": "integer"}

    def test_model_schema_named_as_a_base_too(self) -> None:
        class OrderKey(SnowflakeModelSchema, ModelSchema):
            class Meta:
                model = Order
                fields = ("id",)

        assert properties(OrderKey)["id"] == titled("Id", NULLABLE_ID_SCHEMA)

    def test_an_auto_key_keeps_its_help_text(self) -> None:
        with isolate_apps("tests.autoapp"):

            class Ticket(models.Model):
                id = SnowflakeAutoField(primary_key=True, help_text="The ticket's number.")

                class Meta:
                    app_label = "autoapp"

                def __str__(self) -> str:
                    return f"Ticket {self.pk}"

            class TicketSchema(SnowflakeModelSchema):
                class Meta:
                    model = Ticket
                    fields = ("id",)

        assert properties(TicketSchema)["id"] == {
            **titled("Id", NULLABLE_ID_SCHEMA),
            "description": "The ticket's number.",
        }
        assert TicketSchema.model_validate({}).model_dump() == {"id": None}

    def test_plain_model_schema_is_untouched(self) -> None:
        class PlainOrder(ModelSchema):
            class Meta:
                model = Order
                fields = ("id", "customer")

        assert properties(PlainOrder)["id"]["anyOf"][0] == {"type": "integer"}
        assert properties(PlainOrder)["customer_id"]["anyOf"][0] == {"type": "integer"}

    def test_meta_is_required_as_for_ninja(self) -> None:
        with pytest.raises(ConfigError, match="requires a 'Meta'"):

            class NoMeta(SnowflakeModelSchema):
                pass

    @pytest.mark.django_db
    def test_read_from_the_orm(self) -> None:
        customer = Customer.objects.create(name="Ada")
        order = Order.objects.create(customer=customer, reference="first")
        tags = Tag.objects.bulk_create([Tag(name="a"), Tag(name="b")])
        order.tags.set(tags)

        assert OrderOut.from_orm(order).model_dump(mode="json") == {
            "id": str(order.pk),
            "customer": str(customer.pk),
            "reference": "first",
            "tags": [str(tag.pk) for tag in sorted(tags, key=lambda tag: tag.pk)],
        }

    def test_many_to_many_refuses_what_is_not_an_id(self) -> None:
        with pytest.raises(ValidationError, match=re.escape(INVALID)):
            OrderIn.model_validate({"tags": [1.5]})


def order_json(order: Order) -> dict[str, object]:
    return {
        "id": str(order.pk),
        "customer": None if order.customer_id is None else str(order.customer_id),
        "reference": order.reference,
        "tags": [str(pk) for pk in order.tags.order_by("pk").values_list("pk", flat=True)],
    }


@pytest.fixture
def order() -> Order:
    order: Order = Order.objects.create(
        customer=Customer.objects.create(name="Ada"), reference="first"
    )
    order.tags.set(Tag.objects.bulk_create([Tag(name="a"), Tag(name="b")]))
    return order


@pytest.mark.django_db
class TestAPI:
    def test_list(self, order: Order) -> None:
        other = Order.objects.create()

        response = client.get("/orders")

        assert response.status_code == 200
        assert response.json() == [order_json(order), order_json(other)]

    def test_a_javascript_client_reads_them_exactly(self, order: Order) -> None:
        # JSON.parse reads every number as a double; parse_int=float does the same here.
        data = json.loads(client.get("/orders").content, parse_int=float)[0]

        assert int(data["id"]) == order.pk
        assert int(data["customer"]) == order.customer_id
        assert [int(pk) for pk in data["tags"]] == sorted(tag.pk for tag in order.tags.all())

    def test_query_parameter(self, order: Order) -> None:
        Order.objects.create()

        response = client.get(f"/orders?customer={order.customer_id}")

        assert response.json() == [order_json(order)]

    def test_detail_by_string_id(self, order: Order) -> None:
        response = client.get(f"/orders/{order.pk}")

        assert response.status_code == 200
        assert response.json() == order_json(order)

    def test_unknown_id(self) -> None:
        assert client.get(f"/orders/{ID}").status_code == 404

    @pytest.mark.parametrize(
        ("path_id", "code", "message"),
        [
            ("abc", "snowflake_id_invalid", INVALID),
            ("12.5", "snowflake_id_invalid", INVALID),
            ("-1", "snowflake_id_out_of_range", OUT_OF_RANGE),
            (str(MAX_ID + 1), "snowflake_id_out_of_range", OUT_OF_RANGE),
        ],
    )
    def test_bad_path_ids_are_a_422(self, path_id: str, code: str, message: str) -> None:
        response = client.get(f"/orders/{path_id}")

        assert response.status_code == 422
        assert response.json() == {
            "detail": [{"type": code, "loc": ["path", "order_id"], "msg": message}]
        }

    def test_bad_query_parameter(self) -> None:
        response = client.get("/orders?customer=x")

        assert response.status_code == 422
        assert response.json()["detail"][0]["loc"] == ["query", "customer"]

    def test_snowflake_path_converter(self, order: Order) -> None:
        assert client.get(f"/converted/orders/{order.pk}").json() == order_json(order)

    def test_create_with_string_ids(self, order: Order) -> None:
        customer_id = str(order.customer_id)
        tag_ids = [str(tag.pk) for tag in order.tags.all()]

        response = client.post(
            "/orders", json={"customer_id": customer_id, "reference": "new", "tags": tag_ids}
        )

        assert response.status_code == 200
        created = Order.objects.get(reference="new")
        assert created.customer_id == order.customer_id
        assert response.json() == order_json(created)

    def test_create_with_integer_ids(self, order: Order) -> None:
        # From clients that hold 64-bit integers exactly (Python, Go, ...).
        response = client.post("/orders", json={"customer_id": order.customer_id, "tags": []})

        assert response.status_code == 200
        assert response.json()["customer"] == str(order.customer_id)

    def test_create_with_a_snowflake_auto_field_foreign_key(self) -> None:
        author, other = Author.objects.bulk_create([Author(name="Ada"), Author(name="Grace")])

        response = client.post(
            "/books",
            json={"title": "Notes", "author_id": str(author.pk), "co_authors": [str(other.pk)]},
        )

        book = Book.objects.get()
        assert response.json() == {
            "id": str(book.pk),
            "title": "Notes",
            "author": str(author.pk),
            "co_authors": [str(other.pk)],
        }

    @pytest.mark.parametrize(
        ("body", "detail"),
        [
            (
                {"customer_id": "12a", "tags": []},
                [("snowflake_id_invalid", ["body", "payload", "customer_id"], INVALID)],
            ),
            (
                {"customer_id": None, "tags": [str(MAX_ID + 1), True]},
                [
                    ("snowflake_id_out_of_range", ["body", "payload", "tags", 0], OUT_OF_RANGE),
                    ("snowflake_id_invalid", ["body", "payload", "tags", 1], INVALID),
                ],
            ),
            (
                {"customer_id": float(ID), "tags": []},
                [("snowflake_id_invalid", ["body", "payload", "customer_id"], INVALID)],
            ),
        ],
    )
    def test_bad_ids_in_the_body_are_a_422(
        self, body: dict[str, object], detail: list[tuple[str, list[object], str]]
    ) -> None:
        response = client.post("/orders", json=body)

        assert response.status_code == 422
        assert [
            (error["type"], error["loc"], error["msg"]) for error in response.json()["detail"]
        ] == detail
        assert not Order.objects.exists()

    def test_hand_written_schemas(self, order: Order) -> None:
        response = client.post("/lines", json={"order_id": str(order.pk), "product": "tea"})

        line = OrderLine.objects.get()
        assert line.order_id == order.pk
        # The line's own key is an ordinary auto field: a number.
        assert response.json() == {
            "id": line.pk,
            "order_id": str(order.pk),
            "product": "tea",
            "quantity": 1,
        }


@pytest.mark.django_db
@pytest.mark.urls("tests.ninja_urls")
class TestThroughDjango:
    def test_detail(self, client: Client, order: Order) -> None:
        response = client.get(f"/api/orders/{order.pk}")

        assert response.status_code == 200
        assert response["Content-Type"] == "application/json; charset=utf-8"
        assert json.loads(response.content) == order_json(order)
        assert f'"id": "{order.pk}"' in response.content.decode()

    @pytest.mark.parametrize("path_id", ["abc", "-1", str(MAX_ID + 1), "1" * 20])
    def test_converter_turns_away_what_is_not_an_id(self, client: Client, path_id: str) -> None:
        assert client.get(f"/api/converted/orders/{path_id}").status_code == 404
        assert client.get(f"/api/orders/{path_id}").status_code == 422


@pytest.mark.urls("tests.ninja_urls")
class TestOpenAPI:
    @pytest.fixture
    def schema(self) -> dict[str, Any]:
        document: dict[str, Any] = api.get_openapi_schema()
        return document

    def parameter(self, schema: dict[str, Any], path: str, method: str = "get") -> Any:
        return schema["paths"][path][method]["parameters"][0]

    def test_path_parameters(self, schema: dict[str, Any]) -> None:
        for path in ("/api/orders/{order_id}", "/api/converted/orders/{order_id}"):
            parameter = self.parameter(schema, path)

            assert parameter["in"] == "path"
            assert parameter["name"] == "order_id"
            assert parameter["schema"] == titled("Order Id", ID_SCHEMA)

    def test_query_parameter(self, schema: dict[str, Any]) -> None:
        parameter = self.parameter(schema, "/api/orders")

        assert parameter["schema"] == titled("Customer", NULLABLE_ID_SCHEMA)

    def test_components(self, schema: dict[str, Any]) -> None:
        components = schema["components"]["schemas"]

        assert components["OrderOut"]["properties"]["id"] == titled("Id", NULLABLE_ID_SCHEMA)
        assert components["OrderOut"]["properties"]["tags"]["items"] == ID_SCHEMA
        assert components["OrderIn"]["properties"]["customer_id"] == titled(
            "Customer", NULLABLE_ID_SCHEMA
        )
        assert components["BookOut"]["properties"]["author"] == titled("Author", ID_SCHEMA)
        assert components["LineIn"]["properties"]["order_id"] == titled("Order Id", ID_SCHEMA)
        assert components["LineOut"]["properties"]["id"] == {"title": "Id", "type": "integer"}

    def test_valid(self, schema: dict[str, Any]) -> None:
        validator = pytest.importorskip("openapi_spec_validator")

        # As a client reads it: JSON, where the status codes Ninja keys by int are strings.
        validator.validate(json.loads(json.dumps(schema)))


def test_without_django_ninja(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "ninja", None)
    monkeypatch.delitem(sys.modules, "django_flakeid.ninja")

    with pytest.raises(ImportError, match=r"pip install 'django-flakeid\[ninja\]'"):
        importlib.import_module("django_flakeid.ninja")


def test_the_package_works_without_ninja_and_pydantic(tmp_path: Path) -> None:
    script = textwrap.dedent(
        """
        import importlib.abc
        import json
        import sys

        BLOCKED = {"ninja", "pydantic", "pydantic_core"}


        class Block(importlib.abc.MetaPathFinder):
            def find_spec(self, name, path=None, target=None):
                if name.partition(".")[0] in BLOCKED:
                    raise ModuleNotFoundError(f"No module named {name!r}", name=name)
                return None


        sys.meta_path.insert(0, Block())

        import django
        from django.core.management import call_command

        django.setup()
        call_command("check")
        call_command("migrate", verbosity=0)

        import django_flakeid
        from django_flakeid.serialization import model_to_json_dict
        from tests.testapp.models import Customer, Order

        order = Order.objects.create(customer=Customer.objects.create(name="Ada"))
        data = model_to_json_dict(order)
        try:
            import django_flakeid.ninja
        except ImportError as error:
            refused = str(error)
        else:
            refused = None
        print(json.dumps({
            "id": django_flakeid.next_id(),
            "order": data["id"] == str(order.pk),
            "refused": refused,
            "loaded": sorted(m for m in sys.modules if m.partition(".")[0] in BLOCKED),
        }))
        """
    )
    env = {
        key: value
        for key, value in os.environ.items()
        # The test database settings go too: the script migrates SQLite in memory.
        if not key.startswith("FLAKEID_")
    }
    env["DJANGO_SETTINGS_MODULE"] = "tests.settings"
    # Its own folder for node claims, so that this process's claims cannot stand in the way.
    env["FLAKEID_LOCK_DIR"] = str(tmp_path)

    completed = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )

    assert completed.returncode == 0, completed.stderr
    result = json.loads(completed.stdout.splitlines()[-1])
    assert result["id"] > 0
    assert result["order"] is True
    assert result["refused"] == (
        "django_flakeid.ninja needs Django Ninja: pip install 'django-flakeid[ninja]'"
    )
    assert result["loaded"] == []
