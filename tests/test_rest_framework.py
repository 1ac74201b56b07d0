from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import pytest

pytest.importorskip("rest_framework")

from django.contrib.contenttypes.models import ContentType
from django.db import models
from django.test.utils import isolate_apps
from pytest_django import Settings
from rest_framework import generics, serializers
from rest_framework.exceptions import ErrorDetail
from rest_framework.relations import ManyRelatedField, PrimaryKeyRelatedField
from rest_framework.renderers import JSONRenderer
from rest_framework.request import Request
from rest_framework.schemas.openapi import AutoSchema
from rest_framework.test import APIRequestFactory
from rest_framework.utils.model_meta import RelationInfo

from django_flakeid import conf
from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import MAX_ID
from django_flakeid.rest_framework import (
    SnowflakeHyperlinkedModelSerializer,
    SnowflakeIDField,
    SnowflakeModelSerializer,
)
from tests.autoapp.models import Author, Book, Comment, Entry, Series
from tests.testapp.models import Article, Customer, ExternalRecord, Order, OrderLine, Tag

ID = 913686285393227776
INVALID = "A Snowflake ID must be a whole number, as a string of digits or an integer."
OUT_OF_RANGE = f"A Snowflake ID must be from 0 to {MAX_ID}."


class OrderSerializer(SnowflakeModelSerializer[Order]):
    class Meta:
        model = Order
        fields = ("id", "customer", "reference", "tags")


class OrderNumbersSerializer(SnowflakeModelSerializer[Order]):
    ids_as_strings = False

    class Meta:
        model = Order
        fields = ("id", "customer", "tags")


class OrderStringsSerializer(SnowflakeModelSerializer[Order]):
    ids_as_strings = True

    class Meta:
        model = Order
        fields = ("id", "customer", "tags")


class CustomerSerializer(SnowflakeModelSerializer[Customer]):
    class Meta:
        model = Customer
        fields = ("id", "name", "orders", "profile")


class LineSerializer(SnowflakeModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("id", "order", "product", "quantity")


class NestedLineSerializer(SnowflakeModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("id", "order", "product")
        depth = 2


class NestedLineNumbersSerializer(NestedLineSerializer):
    ids_as_strings = False


class RecordSerializer(SnowflakeModelSerializer[ExternalRecord]):
    class Meta:
        model = ExternalRecord
        fields = ("id", "source_id", "note")


class HyperlinkedOrderSerializer(SnowflakeHyperlinkedModelSerializer[Order]):
    class Meta:
        model = Order
        fields = ("url", "id", "customer", "tags", "reference")


class HyperlinkedNestedOrderSerializer(SnowflakeHyperlinkedModelSerializer[Order]):
    class Meta:
        model = Order
        fields = ("url", "id", "customer", "tags")
        depth = 1


class PlainOrderSerializer(serializers.ModelSerializer[Order]):
    class Meta:
        model = Order
        fields = ("id", "customer", "tags")


def rendered(data: Any) -> Any:
    """What a client gets: the data through DRF's JSON renderer and back."""
    return json.loads(JSONRenderer().render(data))


def api_request() -> Request:
    return Request(APIRequestFactory().get("/"))


@pytest.fixture
def order() -> Order:
    customer = Customer.objects.create(name="Ada")
    order: Order = Order.objects.create(customer=customer, reference="first")
    order.tags.set([Tag.objects.create(name="a"), Tag.objects.create(name="b")])
    return order


def tag_ids(order: Order) -> list[int]:
    return sorted(order.tags.values_list("pk", flat=True))


class TestField:
    @pytest.mark.parametrize(
        ("data", "expected"),
        [
            ("0", 0),
            (str(ID), ID),
            (ID, ID),
            (str(MAX_ID), MAX_ID),
            (MAX_ID, MAX_ID),
            ("007", 7),
            ("0" * 30 + "1", 1),
            ("-0", 0),
        ],
    )
    def test_reads_strings_and_integers(self, data: object, expected: int) -> None:
        assert SnowflakeIDField().run_validation(data) == expected

    @pytest.mark.parametrize(
        "data",
        ["", "abc", "12a", " 12", "12 ", "+12", "1_000", "1.0", "1e3", "١٢", 1.0, 12.5, True,
         False, [], {}, [ID]],
    )  # fmt: skip
    def test_rejects_what_is_not_a_whole_number(self, data: object) -> None:
        with pytest.raises(serializers.ValidationError) as caught:
            SnowflakeIDField().run_validation(data)

        assert caught.value.detail == [ErrorDetail(INVALID, code="invalid")]

    @pytest.mark.parametrize(
        "data", ["-1", -1, str(MAX_ID + 1), MAX_ID + 1, "9" * 19, "1" * 25, "-" + "9" * 25,
                 "9" * 100_000],
    )  # fmt: skip
    def test_rejects_numbers_out_of_range(self, data: object) -> None:
        with pytest.raises(serializers.ValidationError) as caught:
            SnowflakeIDField().run_validation(data)

        assert caught.value.detail == [ErrorDetail(OUT_OF_RANGE, code="out_of_range")]

    def test_null(self) -> None:
        assert SnowflakeIDField(allow_null=True).run_validation(None) is None
        with pytest.raises(serializers.ValidationError, match="may not be null"):
            SnowflakeIDField().run_validation(None)

    def test_narrower_range(self) -> None:
        field = SnowflakeIDField(min_value=10, max_value=20)

        assert field.run_validation("15") == 15
        with pytest.raises(serializers.ValidationError, match="greater than or equal to 10"):
            field.run_validation("9")
        with pytest.raises(serializers.ValidationError, match="less than or equal to 20"):
            field.run_validation(21)

    def test_the_full_range_adds_no_validators(self) -> None:
        assert SnowflakeIDField(min_value=0, max_value=MAX_ID).validators == []

    def test_writes_strings_by_default(self) -> None:
        assert SnowflakeIDField().to_representation(ID) == str(ID)

    def test_coerce_to_string(self, settings: Settings) -> None:
        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}

        assert SnowflakeIDField(coerce_to_string=True).to_representation(ID) == str(ID)
        assert SnowflakeIDField(coerce_to_string=False).to_representation(ID) == ID
        assert SnowflakeIDField().to_representation(ID) == ID

    def test_setting_read_at_each_use(self, settings: Settings) -> None:
        field = SnowflakeIDField()
        assert field.writes_strings

        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}

        assert not field.writes_strings

    def test_declared_on_a_plain_serializer(self) -> None:
        class Event(serializers.Serializer[Any]):
            key = SnowflakeIDField()
            reply_to = SnowflakeIDField(required=False, allow_null=True)

        event = Event(data={"key": str(ID), "reply_to": ID})

        assert event.is_valid()
        assert event.validated_data == {"key": ID, "reply_to": ID}
        assert rendered(Event({"key": ID, "reply_to": None}).data) == {
            "key": str(ID),
            "reply_to": None,
        }


class TestBuiltFields:
    def test_own_snowflake_field(self) -> None:
        field = OrderSerializer().fields["id"]

        assert isinstance(field, SnowflakeIDField)
        assert field.read_only

    def test_foreign_key_and_many_to_many(self) -> None:
        fields = OrderSerializer().fields

        customer, tags = fields["customer"], fields["tags"]
        assert isinstance(customer, PrimaryKeyRelatedField)
        assert isinstance(customer.pk_field, SnowflakeIDField)
        assert customer.allow_null
        assert isinstance(tags, ManyRelatedField)
        assert isinstance(tags.child_relation, PrimaryKeyRelatedField)
        assert isinstance(tags.child_relation.pk_field, SnowflakeIDField)

    def test_other_fields_are_drf_defaults(self) -> None:
        fields = LineSerializer().fields

        # BigIntegerField in recent DRF, IntegerField in older ones: a number either way.
        assert isinstance(fields["id"], serializers.IntegerField)
        assert type(fields["quantity"]) is serializers.IntegerField
        assert type(fields["product"]) is serializers.CharField

    def test_reverse_relations(self) -> None:
        fields = CustomerSerializer().fields

        orders, profile = fields["orders"], fields["profile"]
        assert isinstance(orders, ManyRelatedField)
        assert isinstance(orders.child_relation, PrimaryKeyRelatedField)
        assert isinstance(orders.child_relation.pk_field, SnowflakeIDField)
        assert isinstance(profile, PrimaryKeyRelatedField)
        assert profile.pk_field is None

    def test_editable_unique_field_keeps_its_validators(self) -> None:
        field = RecordSerializer().fields["source_id"]

        assert isinstance(field, SnowflakeIDField)
        assert not field.read_only
        assert [type(validator).__name__ for validator in field.validators] == ["UniqueValidator"]

    def test_plain_model_serializer_is_untouched(self) -> None:
        fields = PlainOrderSerializer().fields

        assert isinstance(fields["id"], serializers.IntegerField)
        customer = fields["customer"]
        assert isinstance(customer, PrimaryKeyRelatedField)
        assert customer.pk_field is None

    def test_your_own_pk_field_is_kept(self) -> None:
        class Custom(OrderSerializer):
            class Meta(OrderSerializer.Meta):
                extra_kwargs = {"customer": {"pk_field": serializers.CharField()}}  # noqa: RUF012

        # extra_kwargs are applied after the field is built, so they win.
        customer = Custom().fields["customer"]
        assert isinstance(customer, PrimaryKeyRelatedField)
        assert type(customer.pk_field) is serializers.CharField


@pytest.mark.django_db
class TestOut:
    def test_ids_are_strings(self, order: Order) -> None:
        assert rendered(OrderSerializer(order).data) == {
            "id": str(order.pk),
            "customer": str(order.customer_id),
            "reference": "first",
            "tags": [str(pk) for pk in tag_ids(order)],
        }

    def test_a_javascript_client_reads_them_exactly(self, order: Order) -> None:
        body = JSONRenderer().render(OrderSerializer(order).data)

        # JSON.parse reads every number as a double; parse_int=float does the same here.
        data = json.loads(body, parse_int=float)

        assert int(data["id"]) == order.pk
        assert int(data["customer"]) == order.customer_id
        assert [int(pk) for pk in data["tags"]] == tag_ids(order)

    def test_many(self, order: Order) -> None:
        other = Order.objects.create()

        data = rendered(OrderSerializer(Order.objects.order_by("pk"), many=True).data)

        assert [row["id"] for row in data] == [str(order.pk), str(other.pk)]
        assert data[1]["customer"] is None

    def test_foreign_key_from_a_model_with_an_ordinary_key(self, order: Order) -> None:
        line = OrderLine.objects.create(order=order, product="pen", quantity=2)

        assert rendered(LineSerializer(line).data) == {
            "id": line.pk,
            "order": str(order.pk),
            "product": "pen",
            "quantity": 2,
        }

    def test_reverse_relations(self, order: Order) -> None:
        customer = order.customer
        assert customer is not None

        assert rendered(CustomerSerializer(customer).data) == {
            "id": str(customer.pk),
            "name": "Ada",
            "orders": [str(order.pk)],
            "profile": None,
        }

    def test_nested(self, order: Order) -> None:
        line = OrderLine.objects.create(order=order, product="pen")

        data = rendered(NestedLineSerializer(line).data)

        assert data["id"] == line.pk
        assert data["order"]["id"] == str(order.pk)
        assert data["order"]["customer"] == {"id": str(order.customer_id), "name": "Ada"}
        assert [tag["id"] for tag in data["order"]["tags"]] == [str(pk) for pk in tag_ids(order)]

    def test_nested_numbers(self, order: Order) -> None:
        line = OrderLine.objects.create(order=order, product="pen")

        data = rendered(NestedLineNumbersSerializer(line).data)

        assert data["order"]["id"] == order.pk
        assert data["order"]["customer"]["id"] == order.customer_id

    def test_nested_depth_one_relations(self, order: Order) -> None:
        class Shallow(SnowflakeModelSerializer[OrderLine]):
            class Meta:
                model = OrderLine
                fields = ("order",)
                depth = 1

        line = OrderLine.objects.create(order=order, product="pen")

        nested = rendered(Shallow(line).data)["order"]

        assert nested["customer"] == str(order.customer_id)
        assert nested["tags"] == [str(pk) for pk in tag_ids(order)]

    def test_nested_serializers_you_declare(self, order: Order) -> None:
        class Inner(SnowflakeModelSerializer[Customer]):
            class Meta:
                model = Customer
                fields = ("id", "name")

        class Outer(SnowflakeModelSerializer[Order]):
            customer = Inner(read_only=True)

            class Meta:
                model = Order
                fields = ("id", "customer")

        assert rendered(Outer(order).data)["customer"]["id"] == str(order.customer_id)

    def test_hyperlinked(self, order: Order) -> None:
        data = rendered(HyperlinkedOrderSerializer(order, context={"request": api_request()}).data)

        assert data == {
            "url": f"http://testserver/orders/{order.pk}/",
            "id": str(order.pk),
            "customer": f"http://testserver/customers/{order.customer_id}/",
            "tags": [f"http://testserver/tags/{pk}/" for pk in tag_ids(order)],
            "reference": "first",
        }

    def test_hyperlinked_nested(self, order: Order) -> None:
        serializer = HyperlinkedNestedOrderSerializer(order, context={"request": api_request()})

        data = rendered(serializer.data)

        assert data["id"] == str(order.pk)
        assert data["customer"]["url"] == f"http://testserver/customers/{order.customer_id}/"
        assert data["tags"][0]["url"] == f"http://testserver/tags/{tag_ids(order)[0]}/"

    def test_numbers_from_the_setting(self, order: Order, settings: Settings) -> None:
        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}

        data = rendered(OrderSerializer(order).data)

        assert data["id"] == order.pk
        assert data["customer"] == order.customer_id
        assert data["tags"] == tag_ids(order)

    def test_class_attribute_wins_over_the_setting(self, order: Order, settings: Settings) -> None:
        assert rendered(OrderNumbersSerializer(order).data)["id"] == order.pk

        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}

        assert rendered(OrderStringsSerializer(order).data)["id"] == str(order.pk)


@pytest.mark.django_db
class TestIn:
    def test_strings_and_integers(self, order: Order) -> None:
        customer = Customer.objects.create(name="Grace")
        first, second = tag_ids(order)

        serializer = OrderSerializer(
            data={"customer": str(customer.pk), "tags": [str(first), second], "reference": "x"}
        )

        assert serializer.is_valid(), serializer.errors
        created = serializer.save()
        assert created.customer == customer
        assert tag_ids(created) == [first, second]
        assert rendered(OrderSerializer(created).data)["customer"] == str(customer.pk)

    def test_update(self, order: Order) -> None:
        customer = Customer.objects.create(name="Grace")

        serializer = OrderSerializer(order, data={"customer": str(customer.pk)}, partial=True)

        assert serializer.is_valid(), serializer.errors
        serializer.save()
        order.refresh_from_db()
        assert order.customer == customer

    def test_own_field(self) -> None:
        serializer = RecordSerializer(data={"source_id": str(ID), "note": "imported"})

        assert serializer.is_valid(), serializer.errors
        assert serializer.save().source_id == ID

    def test_unique(self) -> None:
        ExternalRecord.objects.create(source_id=ID)

        serializer = RecordSerializer(data={"source_id": str(ID)})

        assert not serializer.is_valid()
        assert serializer.errors["source_id"][0].code == "unique"

    def test_read_only_key_is_ignored(self) -> None:
        serializer = OrderSerializer(data={"id": "12", "tags": []})

        assert serializer.is_valid(), serializer.errors
        assert serializer.save().pk != 12

    def test_foreign_key_from_a_model_with_an_ordinary_key(self, order: Order) -> None:
        serializer = LineSerializer(data={"order": str(order.pk), "product": "pen"})

        assert serializer.is_valid(), serializer.errors
        assert serializer.save().order == order

    def test_unknown_id(self) -> None:
        serializer = OrderSerializer(data={"customer": str(ID), "tags": [str(MAX_ID)]})

        assert not serializer.is_valid()
        assert serializer.errors == {
            "customer": [
                ErrorDetail(f'Invalid pk "{ID}" - object does not exist.', "does_not_exist")
            ],
            "tags": [
                ErrorDetail(f'Invalid pk "{MAX_ID}" - object does not exist.', "does_not_exist")
            ],
        }

    @pytest.mark.parametrize(
        ("data", "message", "code"),
        [
            ("abc", INVALID, "invalid"),
            ("12.5", INVALID, "invalid"),
            (12.5, INVALID, "invalid"),
            (True, INVALID, "invalid"),
            ({"id": 1}, INVALID, "invalid"),
            ("-1", OUT_OF_RANGE, "out_of_range"),
            (-1, OUT_OF_RANGE, "out_of_range"),
            (str(MAX_ID + 1), OUT_OF_RANGE, "out_of_range"),
            (MAX_ID + 1, OUT_OF_RANGE, "out_of_range"),
            ("1" * 25, OUT_OF_RANGE, "out_of_range"),
        ],
    )
    def test_bad_ids(self, data: object, message: str, code: str) -> None:
        serializer = OrderSerializer(data={"customer": data, "tags": [data]})
        record = RecordSerializer(data={"source_id": data})

        assert not serializer.is_valid()
        assert not record.is_valid()
        expected = [ErrorDetail(message, code)]
        assert serializer.errors == {"customer": expected, "tags": expected}
        assert record.errors == {"source_id": expected}

    def test_not_a_list_for_many(self) -> None:
        serializer = OrderSerializer(data={"tags": str(ID)})

        assert not serializer.is_valid()
        assert serializer.errors["tags"][0].code == "not_a_list"

    def test_hyperlinked(self, order: Order) -> None:
        customer = order.customer
        assert customer is not None
        first = tag_ids(order)[0]

        serializer = HyperlinkedOrderSerializer(
            data={
                "customer": f"http://testserver/customers/{customer.pk}/",
                "tags": [f"/tags/{first}/"],
            },
            context={"request": api_request()},
        )

        assert serializer.is_valid(), serializer.errors
        assert serializer.validated_data["customer"] == customer
        assert [tag.pk for tag in serializer.validated_data["tags"]] == [first]

    @pytest.mark.parametrize("pk", [str(MAX_ID + 1), "1" * 25, "-1", "abc"])
    def test_hyperlinked_bad_ids(self, pk: str) -> None:
        serializer = HyperlinkedOrderSerializer(
            data={"customer": f"/customers/{pk}/", "tags": []},
            context={"request": api_request()},
        )

        assert not serializer.is_valid()
        assert serializer.errors == {
            "customer": [ErrorDetail("Invalid hyperlink - No URL match.", "no_match")]
        }


class OrderList(generics.ListCreateAPIView[Order]):
    queryset = Order.objects.order_by("pk")
    serializer_class = OrderSerializer


@pytest.mark.django_db
class TestAPIView:
    def test_create_and_list(self) -> None:
        customer = Customer.objects.create(name="Ada")
        factory = APIRequestFactory()

        created = OrderList.as_view()(
            factory.post("/", {"customer": str(customer.pk), "tags": []}, format="json")
        )
        listed = OrderList.as_view()(factory.get("/"))

        assert created.status_code == 201
        order = Order.objects.get()
        assert json.loads(created.rendered_content)["id"] == str(order.pk)
        assert json.loads(listed.rendered_content) == [
            {"id": str(order.pk), "customer": str(customer.pk), "reference": "", "tags": []}
        ]

    @pytest.mark.parametrize("bad", [str(MAX_ID + 1), MAX_ID + 1, "1" * 25, "-5", "x"])
    def test_bad_input_is_a_400(self, bad: object) -> None:
        request = APIRequestFactory().post("/", {"customer": bad, "tags": [bad]}, format="json")

        response = OrderList.as_view()(request)

        assert response.status_code == 400
        assert set(json.loads(response.rendered_content)) == {"customer", "tags"}


@pytest.fixture
def isolated_apps() -> Iterator[None]:
    with isolate_apps("tests.testapp"):
        yield


def make_model(name: str, **fields: object) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": "testapp"})
    return type(name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


def serializer_for(
    model: type[models.Model], **options: object
) -> type[serializers.Serializer[Any]]:
    meta = type("Meta", (), {"model": model, "fields": "__all__", **options})
    return type("Serializer", (SnowflakeModelSerializer,), {"Meta": meta})


@pytest.mark.usefixtures("isolated_apps")
class TestOtherShapes:
    def test_one_to_one_primary_key(self) -> None:
        root = make_model("Root", id=SnowflakeField(primary_key=True))
        extension = make_model(
            "Extension",
            root=models.OneToOneField(root, models.CASCADE, primary_key=True),
            note=models.CharField(max_length=10),
        )
        instance = extension(root=root(id=ID), note="x")

        serializer = serializer_for(extension)

        field = serializer().fields["root"]
        assert isinstance(field, PrimaryKeyRelatedField)
        assert isinstance(field.pk_field, SnowflakeIDField)
        assert rendered(serializer(instance).data) == {"root": str(ID), "note": "x"}
        with pytest.raises(serializers.ValidationError):
            field.run_validation(str(MAX_ID + 1))

    def test_one_to_one_primary_key_to_an_ordinary_key(self) -> None:
        root = make_model("Root")
        extension = make_model(
            "Extension", root=models.OneToOneField(root, models.CASCADE, primary_key=True)
        )

        field = serializer_for(extension)().fields["root"]

        assert isinstance(field, PrimaryKeyRelatedField)
        assert field.pk_field is None

    def test_choices_keep_drfs_choice_field(self) -> None:
        model = make_model(
            "Chosen", code=SnowflakeField(editable=True, choices=[(1, "one"), (2, "two")])
        )

        field = serializer_for(model)().fields["code"]

        assert type(field) is serializers.ChoiceField

    def test_your_own_field_mapping_is_kept(self) -> None:
        model = make_model("Mapped", code=SnowflakeField(editable=True))

        class Mapped(SnowflakeModelSerializer[models.Model]):
            serializer_field_mapping = {  # noqa: RUF012
                **SnowflakeModelSerializer.serializer_field_mapping,
                SnowflakeField: serializers.FloatField,
            }

            class Meta:
                fields = "__all__"

        Mapped.Meta.model = model  # type: ignore[attr-defined]

        assert type(Mapped().fields["code"]) is serializers.FloatField

    def test_nested_class_already_snowflake(self) -> None:
        target = make_model("Target", id=SnowflakeField(primary_key=True))
        source = make_model("Source", target=models.ForeignKey(target, models.CASCADE))

        class Inner(SnowflakeModelSerializer[models.Model]):
            class Meta:
                model = target
                fields = "__all__"

        class BuildsInner(serializers.ModelSerializer[models.Model]):
            def build_nested_field(
                self, field_name: str, relation_info: RelationInfo, nested_depth: int
            ) -> tuple[type[serializers.Field[Any, Any, Any, Any]], dict[str, Any]]:
                return Inner, {"read_only": True}

        class Outer(SnowflakeModelSerializer[models.Model], BuildsInner):
            class Meta:
                model = source
                fields = "__all__"
                depth = 1

        assert type(Outer().fields["target"]) is Inner


@pytest.mark.django_db
class TestToField:
    """A relation through ``to_field`` to a SnowflakeField that is not the primary key."""

    def build(self, ids_as_strings: bool | None = None) -> serializers.Field[Any, Any, Any, Any]:
        class ToArticle(SnowflakeModelSerializer[Order]):
            class Meta:
                model = Order
                fields = ("id",)

        ToArticle.ids_as_strings = ids_as_strings
        relation = RelationInfo(
            model_field=None,
            related_model=Article,
            to_many=False,
            to_field="public_id",
            has_through_model=False,
            reverse=False,
        )
        field_class, kwargs = ToArticle().build_relational_field("article", relation)
        return field_class(**kwargs)

    def test_out(self) -> None:
        article = Article.objects.create(title="On IDs")

        assert self.build().to_representation(article) == str(article.public_id)
        assert self.build(ids_as_strings=False).to_representation(article) == article.public_id

    def test_in(self) -> None:
        article = Article.objects.create(title="On IDs")

        assert self.build().run_validation(str(article.public_id)) == article
        assert self.build().run_validation(article.public_id) == article

    @pytest.mark.parametrize(
        ("data", "code"), [("abc", "invalid"), (str(MAX_ID + 1), "out_of_range")]
    )
    def test_bad_ids(self, data: str, code: str) -> None:
        with pytest.raises(serializers.ValidationError) as caught:
            self.build().run_validation(data)

        assert caught.value.get_codes() == [code]

    def test_unknown_id(self) -> None:
        with pytest.raises(serializers.ValidationError, match="does not exist"):
            self.build().run_validation(str(ID))


def test_without_django_rest_framework(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "rest_framework", None)
    monkeypatch.delitem(sys.modules, "django_flakeid.rest_framework")

    with pytest.raises(ImportError, match=r"pip install 'django-flakeid\[drf\]'"):
        importlib.import_module("django_flakeid.rest_framework")


def test_openapi_describes_strings() -> None:
    properties = AutoSchema().map_serializer(OrderSerializer())["properties"]

    assert properties["id"] == {"type": "string", "readOnly": True}
    assert properties["customer"]["type"] == "string"
    assert properties["tags"]["items"] == {"type": "string"}


class AuthorSerializer(SnowflakeModelSerializer[Author]):
    class Meta:
        model = Author
        fields = ("id", "name", "books", "co_written")


class BookSerializer(SnowflakeModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ("id", "title", "author", "co_authors", "series")


class NestedBookSerializer(SnowflakeModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ("id", "author", "co_authors")
        depth = 1


class EntrySerializer(SnowflakeModelSerializer[Entry]):
    class Meta:
        model = Entry
        fields = ("id", "series", "book", "position")


class CommentSerializer(SnowflakeModelSerializer[Comment]):
    class Meta:
        model = Comment
        fields = ("id", "content_type", "object_id", "text")


class BookList(generics.ListCreateAPIView[Book]):
    queryset = Book.objects.order_by("pk")
    serializer_class = BookSerializer


def is_new_id(value: object) -> bool:
    return isinstance(value, str) and int(value) >= conf.get_layout().min_snowflake_id


@pytest.fixture
def book() -> Book:
    author, other = Author.objects.bulk_create([Author(name="Ada"), Author(name="Grace")])
    book: Book = Book.objects.create(title="t", author=author)
    book.co_authors.add(other)
    return book


class TestSnowflakeAutoField:
    """A model keyed by SnowflakeAutoField, and relations to it, as for a SnowflakeField."""

    def test_built_fields(self) -> None:
        fields = BookSerializer().fields

        key, author, co_authors, series = (
            fields[name] for name in ("id", "author", "co_authors", "series")
        )
        assert isinstance(key, SnowflakeIDField)
        assert key.read_only
        assert isinstance(author, PrimaryKeyRelatedField)
        assert isinstance(author.pk_field, SnowflakeIDField)
        for many in (co_authors, series):
            assert isinstance(many, ManyRelatedField)
            assert isinstance(many.child_relation, PrimaryKeyRelatedField)
            assert isinstance(many.child_relation.pk_field, SnowflakeIDField)
        # DRF cannot write through a model of your own.
        assert series.read_only

    def test_unsaved_instance(self) -> None:
        assert rendered(AuthorSerializer(Author(name="Ada")).data)["id"] is None

    @pytest.mark.django_db
    def test_key_from_before_snowflake_ids(self) -> None:
        author = Author.objects.create(id=3, name="old")

        assert rendered(AuthorSerializer(author).data) == {
            "id": "3",
            "name": "old",
            "books": [],
            "co_written": [],
        }

    @pytest.mark.django_db
    def test_out(self, book: Book) -> None:
        [other] = book.co_authors.all()

        assert rendered(BookSerializer(book).data) == {
            "id": str(book.pk),
            "title": "t",
            "author": str(book.author_id),
            "co_authors": [str(other.pk)],
            "series": [],
        }
        assert rendered(AuthorSerializer(other).data) == {
            "id": str(other.pk),
            "name": "Grace",
            "books": [],
            "co_written": [str(book.pk)],
        }

    @pytest.mark.django_db
    def test_nested(self, book: Book) -> None:
        data = rendered(NestedBookSerializer(book).data)

        assert data["author"] == {"id": str(book.author_id), "name": "Ada"}
        assert [author["id"] for author in data["co_authors"]] == [
            str(pk) for pk in book.co_authors.values_list("pk", flat=True)
        ]

    @pytest.mark.django_db
    def test_explicit_through_model(self, book: Book) -> None:
        series = Series.objects.create(name="s")
        series.books.add(book, through_defaults={"position": 2})
        entry = Entry.objects.get()

        assert rendered(BookSerializer(book).data)["series"] == [str(series.pk)]
        assert rendered(EntrySerializer(entry).data) == {
            "id": str(entry.pk),
            "series": str(series.pk),
            "book": str(book.pk),
            "position": 2,
        }

    @pytest.mark.django_db
    def test_in(self) -> None:
        author, other = Author.objects.bulk_create([Author(name="Ada"), Author(name="Grace")])

        serializer = BookSerializer(
            data={"id": "12", "title": "t", "author": str(author.pk), "co_authors": [other.pk]}
        )

        assert serializer.is_valid(), serializer.errors
        created = serializer.save()
        assert created.pk != 12
        assert created.author == author
        assert list(created.co_authors.all()) == [other]
        data = rendered(BookSerializer(created).data)
        assert is_new_id(data["id"])
        assert data["co_authors"] == [str(other.pk)]
        [link] = Book.co_authors.through.objects.values_list("pk", flat=True)
        assert is_new_id(str(link))

    @pytest.mark.django_db
    def test_unknown_and_bad_ids(self) -> None:
        serializer = BookSerializer(data={"title": "t", "author": str(ID), "co_authors": ["x"]})

        assert not serializer.is_valid()
        assert serializer.errors["author"][0].code == "does_not_exist"
        assert serializer.errors["co_authors"][0].code == "invalid"

    @pytest.mark.django_db
    def test_api_view(self) -> None:
        author = Author.objects.create(name="Ada")
        factory = APIRequestFactory()
        body = {"title": "t", "author": str(author.pk), "co_authors": [str(author.pk)]}

        created = BookList.as_view()(factory.post("/", body, format="json"))
        listed = BookList.as_view()(factory.get("/"))

        assert created.status_code == 201
        book = Book.objects.get()
        expected = {"id": str(book.pk), **body, "series": []}
        assert json.loads(created.rendered_content) == expected
        assert json.loads(listed.rendered_content) == [expected]

    @pytest.mark.django_db
    def test_generic_relation_object_id(self) -> None:
        author = Author.objects.create(name="Ada")
        content_type = ContentType.objects.get_for_model(Author)

        serializer = CommentSerializer(
            data={"content_type": content_type.pk, "object_id": str(author.pk), "text": "hi"}
        )

        assert serializer.is_valid(), serializer.errors
        comment = serializer.save()
        assert comment.content_object == author
        data = rendered(CommentSerializer(comment).data)
        assert data["object_id"] == str(author.pk)
        assert data["content_type"] == content_type.pk
        assert isinstance(CommentSerializer().fields["object_id"], SnowflakeIDField)

    @pytest.mark.usefixtures("isolated_apps")
    def test_a_plain_64_bit_object_id_is_a_number(self) -> None:
        model = make_model("Tagged", object_id=models.PositiveBigIntegerField())

        data = rendered(serializer_for(model)(model(object_id=ID)).data)

        assert data["object_id"] == ID

    def test_openapi(self) -> None:
        properties = AutoSchema().map_serializer(BookSerializer())["properties"]

        assert properties["id"] == {"type": "string", "readOnly": True}
        assert properties["author"]["type"] == "string"
        assert properties["co_authors"]["items"] == {"type": "string"}
