from __future__ import annotations

import datetime as dt
import json
import uuid
from collections.abc import Iterator
from decimal import Decimal

import pytest
from django.core import serializers
from django.core.serializers.json import DjangoJSONEncoder
from django.db import models
from django.http import JsonResponse
from django.test.utils import isolate_apps
from pytest_django import DjangoAssertNumQueries, Settings

from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import MAX_ID
from django_flakeid.serialization import (
    MAX_SAFE_INTEGER,
    SnowflakeJSONEncoder,
    holds_snowflake_ids,
    model_to_json_dict,
)
from tests.autoapp.models import Author, Book, Comment, Entry, Note, Series
from tests.testapp.models import (
    Article,
    Customer,
    ExternalRecord,
    NullableThing,
    Order,
    OrderLine,
    Profile,
    Tag,
)

ID = 913686285393227776


def dumps(value: object) -> str:
    return json.dumps(value, cls=SnowflakeJSONEncoder)


class TestHoldsSnowflakeIDs:
    @pytest.mark.parametrize(
        ("model", "name"),
        [
            (Order, "id"),
            (Order, "customer"),
            (Order, "tags"),
            (OrderLine, "order"),
            (Profile, "customer"),
            (Customer, "orders"),
            (Tag, "orders"),
            (Article, "public_id"),
            (NullableThing, "empty"),
            (ExternalRecord, "source_id"),
        ],
    )
    def test_ids(self, model: type[models.Model], name: str) -> None:
        assert holds_snowflake_ids(model._meta.get_field(name))

    @pytest.mark.parametrize(
        ("model", "name"),
        [
            (Order, "reference"),
            (OrderLine, "id"),
            (OrderLine, "quantity"),
            (Customer, "profile"),
            (Order, "lines"),
            (Article, "id"),
        ],
    )
    def test_other_fields(self, model: type[models.Model], name: str) -> None:
        assert not holds_snowflake_ids(model._meta.get_field(name))

    @pytest.mark.parametrize("thing", [None, "id", ID, Order])
    def test_not_fields(self, thing: object) -> None:
        assert not holds_snowflake_ids(thing)


@pytest.fixture
def isolated_apps() -> Iterator[None]:
    with isolate_apps("tests.testapp"):
        yield


def make_model(name: str, **fields: object) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": "testapp"})
    return type(name, (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


@pytest.mark.usefixtures("isolated_apps")
class TestHoldsSnowflakeIDsThroughRelations:
    def test_chains_of_keys(self) -> None:
        root = make_model("Root", id=SnowflakeField(primary_key=True))
        extension = make_model(
            "Extension",
            root=models.OneToOneField(root, on_delete=models.CASCADE, primary_key=True),
        )
        leaf = make_model("Leaf", extension=models.ForeignKey(extension, models.CASCADE))

        assert holds_snowflake_ids(extension._meta.get_field("root"))
        assert holds_snowflake_ids(leaf._meta.get_field("extension"))
        assert holds_snowflake_ids(root._meta.get_field("extension"))
        assert not holds_snowflake_ids(extension._meta.get_field("leaf"))

    def test_to_field(self) -> None:
        target = make_model("Target", public_id=SnowflakeField(unique=True))
        by_public_id = make_model(
            "ByPublicID",
            target=models.ForeignKey(target, models.CASCADE, to_field="public_id"),
        )
        by_key = make_model("ByKey", target=models.ForeignKey(target, models.CASCADE))

        assert holds_snowflake_ids(by_public_id._meta.get_field("target"))
        assert not holds_snowflake_ids(by_key._meta.get_field("target"))

    def test_a_relation_over_two_columns_is_not_an_id(self) -> None:
        target = make_model("Pair", left=SnowflakeField(), right=SnowflakeField())
        link = make_model(
            "PairLink",
            left=SnowflakeField(),
            right=SnowflakeField(),
            pair=models.ForeignObject(
                target,
                on_delete=models.CASCADE,
                from_fields=["left", "right"],
                to_fields=["left", "right"],
            ),
        )

        assert not holds_snowflake_ids(link._meta.get_field("pair"))


class TestEncoder:
    def test_integers_javascript_cannot_hold_become_strings(self) -> None:
        data = {
            "id": ID,
            "max": MAX_ID,
            "unsafe": MAX_SAFE_INTEGER + 1,
            "negative": -(MAX_SAFE_INTEGER + 1),
            "safe": MAX_SAFE_INTEGER,
            "small": -MAX_SAFE_INTEGER,
        }

        assert json.loads(dumps(data)) == {
            "id": str(ID),
            "max": str(MAX_ID),
            "unsafe": "9007199254740992",
            "negative": "-9007199254740992",
            "safe": MAX_SAFE_INTEGER,
            "small": -MAX_SAFE_INTEGER,
        }

    def test_inside_lists_tuples_and_dicts(self) -> None:
        data = [ID, (1, ID), {"ids": [ID], "nested": {"id": ID}}]

        assert json.loads(dumps(data)) == [
            str(ID),
            [1, str(ID)],
            {"ids": [str(ID)], "nested": {"id": str(ID)}},
        ]

    def test_top_level_integer(self) -> None:
        assert dumps(ID) == f'"{ID}"'
        assert dumps(12) == "12"

    def test_other_values_as_django_writes_them(self) -> None:
        data = {
            "flag": True,
            "ratio": 0.5,
            "none": None,
            "text": "x",
            "when": dt.datetime(2025, 3, 15, 10, 22, 1, 123000, tzinfo=dt.timezone.utc),
            "price": Decimal("9.90"),
            "uuid": uuid.UUID(int=1),
            "big float": 1e300,
        }

        assert dumps(data) == json.dumps(data, cls=DjangoJSONEncoder)

    def test_integer_keys(self) -> None:
        assert json.loads(dumps({ID: 1})) == {str(ID): 1}

    def test_values_from_another_encoders_default(self) -> None:
        class Point:
            def __init__(self, uid: int) -> None:
                self.uid = uid

        class PointEncoder(DjangoJSONEncoder):
            def default(self, o: object) -> object:
                if isinstance(o, Point):
                    return {"id": o.uid}
                return super().default(o)

        class Encoder(SnowflakeJSONEncoder, PointEncoder):
            pass

        assert json.loads(json.dumps([Point(ID)], cls=Encoder)) == [{"id": str(ID)}]
        with pytest.raises(TypeError, match="not JSON serializable"):
            json.dumps(object(), cls=Encoder)

    def test_json_dump_to_a_stream(self) -> None:
        class Stream:
            def __init__(self) -> None:
                self.parts: list[str] = []

            def write(self, part: str) -> None:
                self.parts.append(part)

        stream = Stream()
        json.dump({"id": ID}, stream, cls=SnowflakeJSONEncoder, indent=2)

        assert json.loads("".join(stream.parts)) == {"id": str(ID)}

    def test_json_response(self) -> None:
        response = JsonResponse({"id": ID}, encoder=SnowflakeJSONEncoder)

        assert response.content == f'{{"id": "{ID}"}}'.encode()

    def test_what_a_javascript_client_reads(self) -> None:
        # JSON.parse reads every number as a double; parse_int=float does the same here.
        ids = [ID + sequence for sequence in range(4096)]

        as_numbers = json.loads(json.dumps(ids), parse_int=float)
        as_strings = json.loads(dumps(ids), parse_int=float)

        # A double keeps 53 significant bits: of 4,096 neighbours, one in 2**(bits - 53) survives.
        survivors = sum(int(number) == uid for number, uid in zip(as_numbers, ids, strict=True))
        assert survivors == 4096 // 2 ** (ID.bit_length() - 53) == 32
        assert [int(text) for text in as_strings] == ids


@pytest.mark.django_db
class TestDjangoSerializers:
    def test_dumpdata_format_round_trip(self) -> None:
        customer = Customer.objects.create(name="Ada")
        tag = Tag.objects.create(name="gift")
        order = Order.objects.create(customer=customer, reference="first")
        order.tags.add(tag)

        text = serializers.serialize("json", [order], cls=SnowflakeJSONEncoder)

        [record] = json.loads(text)
        assert record["pk"] == str(order.pk)
        assert record["fields"]["customer"] == str(customer.pk)
        assert record["fields"]["tags"] == [str(tag.pk)]
        Order.objects.all().delete()
        [restored] = serializers.deserialize("json", text)
        restored.save()
        copy = Order.objects.get()
        assert (copy.pk, copy.customer_id, list(copy.tags.all())) == (
            order.pk,
            customer.pk,
            [tag],
        )


@pytest.mark.django_db
class TestModelToJSONDict:
    @pytest.fixture
    def order(self) -> Order:
        customer = Customer.objects.create(name="Ada")
        order: Order = Order.objects.create(customer=customer, reference="first")
        order.tags.set([Tag.objects.create(name="a"), Tag.objects.create(name="b")])
        return order

    def test_ids_are_strings(self, order: Order) -> None:
        tags = sorted(order.tags.values_list("pk", flat=True))

        data = model_to_json_dict(order)

        assert data == {
            "id": str(order.pk),
            "customer": str(order.customer_id),
            "reference": "first",
            "tags": [str(pk) for pk in tags],
        }

    def test_other_numbers_stay_numbers(self, order: Order) -> None:
        line = OrderLine.objects.create(order=order, product="pen", quantity=2)

        assert model_to_json_dict(line) == {
            "id": line.pk,
            "order": str(order.pk),
            "product": "pen",
            "quantity": 2,
        }

    def test_fields_and_exclude(self, order: Order) -> None:
        assert model_to_json_dict(order, fields=["id", "tags"], exclude=["tags"]) == {
            "id": str(order.pk)
        }
        assert list(model_to_json_dict(order, exclude=["reference", "tags"])) == [
            "id",
            "customer",
        ]

    def test_none_stays_none(self) -> None:
        thing = NullableThing.objects.create()
        order = Order.objects.create()

        assert model_to_json_dict(thing) == {
            "id": thing.pk,
            "filled": str(thing.filled),
            "empty": None,
        }
        assert model_to_json_dict(order)["customer"] is None

    def test_reads_prefetched_relations(
        self, order: Order, django_assert_num_queries: DjangoAssertNumQueries
    ) -> None:
        prefetched = Order.objects.prefetch_related("tags").get(pk=order.pk)

        with django_assert_num_queries(0):
            data = model_to_json_dict(prefetched)

        assert len(data["tags"]) == 2  # type: ignore[arg-type]

    def test_numbers_when_asked(self, order: Order) -> None:
        data = model_to_json_dict(order, fields=["id", "customer"], ids_as_strings=False)

        assert data == {"id": order.pk, "customer": order.customer_id}

    def test_follows_the_setting(self, order: Order, settings: Settings) -> None:
        settings.FLAKEID = {**settings.FLAKEID, "ids_as_strings": False}

        assert model_to_json_dict(order, fields=["id"]) == {"id": order.pk}
        assert model_to_json_dict(order, fields=["id"], ids_as_strings=True) == {
            "id": str(order.pk)
        }

    def test_with_the_encoder_in_a_response(self, order: Order) -> None:
        response = JsonResponse(model_to_json_dict(order), encoder=SnowflakeJSONEncoder)

        assert json.loads(response.content)["id"] == str(order.pk)

    def test_unsaved_object_without_a_key(self) -> None:
        line = OrderLine(order=Order(), product="pen")

        assert model_to_json_dict(line)["id"] is None


AUTO_THROUGH = Book.co_authors.through


class TestSnowflakeAutoField:
    """A model keyed by SnowflakeAutoField, and relations to it, as for a SnowflakeField."""

    @pytest.mark.parametrize(
        ("model", "name"),
        [
            (Author, "id"),
            (Author, "books"),
            (Author, "co_written"),
            (Author, "comments"),
            (Book, "author"),
            (Book, "co_authors"),
            (Book, "series"),
            (AUTO_THROUGH, "id"),
            (AUTO_THROUGH, "book"),
            (AUTO_THROUGH, "author"),
            (Series, "books"),
            (Entry, "id"),
            (Entry, "series"),
            (Comment, "object_id"),
            (Note, "id"),
        ],
    )
    def test_holds_snowflake_ids(self, model: type[models.Model], name: str) -> None:
        assert holds_snowflake_ids(model._meta.get_field(name))

    @pytest.mark.parametrize(
        ("model", "name"), [(Comment, "content_type"), (Comment, "text"), (Entry, "position")]
    )
    def test_other_fields(self, model: type[models.Model], name: str) -> None:
        assert not holds_snowflake_ids(model._meta.get_field(name))

    @pytest.mark.django_db
    def test_model_to_json_dict(self) -> None:
        author, other = Author.objects.bulk_create([Author(name="Ada"), Author(name="Grace")])
        book = Book.objects.create(title="t", author=author)
        book.co_authors.add(other)
        link = AUTO_THROUGH.objects.get()

        assert model_to_json_dict(book) == {
            "id": str(book.pk),
            "title": "t",
            "author": str(author.pk),
            "co_authors": [str(other.pk)],
        }
        assert model_to_json_dict(link) == {
            "id": str(link.pk),
            "book": str(book.pk),
            "author": str(other.pk),
        }

    @pytest.mark.django_db
    def test_explicit_through_model(self) -> None:
        author = Author.objects.create(name="Ada")
        book = Book.objects.create(title="t", author=author)
        series = Series.objects.create(name="s")
        series.books.add(book)
        entry = Entry.objects.get()

        assert model_to_json_dict(series)["books"] == [str(book.pk)]
        assert model_to_json_dict(entry) == {
            "id": str(entry.pk),
            "series": str(series.pk),
            "book": str(book.pk),
            "position": 1,
        }

    def test_unsaved_instance_has_no_id(self) -> None:
        assert model_to_json_dict(Note(text="hi")) == {"id": None, "text": "hi"}

    def test_key_from_before_snowflake_ids(self) -> None:
        assert model_to_json_dict(Author(id=3, name="old")) == {"id": "3", "name": "old"}

    @pytest.mark.django_db
    def test_generic_relation_object_id(self) -> None:
        author = Author.objects.create(name="Ada")
        comment = Comment.objects.create(content_object=author, text="hi")

        data = model_to_json_dict(comment)

        assert data["object_id"] == str(author.pk)
        assert data["content_type"] == comment.content_type_id

    @pytest.mark.usefixtures("isolated_apps")
    def test_a_plain_64_bit_object_id_is_a_number(self) -> None:
        # A PositiveBigIntegerField holds the ID just as well, but is not known as one:
        # model_to_json_dict leaves it a number, which only SnowflakeJSONEncoder saves.
        model = make_model("Tagged", object_id=models.PositiveBigIntegerField())

        data = model_to_json_dict(model(object_id=ID))

        assert data["object_id"] == ID
        assert json.loads(dumps(data))["object_id"] == str(ID)
        assert json.loads(json.dumps(data, cls=DjangoJSONEncoder))["object_id"] == ID

    @pytest.mark.django_db
    def test_dumpdata_format_round_trip(self) -> None:
        author, other = Author.objects.bulk_create([Author(name="Ada"), Author(name="Grace")])
        book = Book.objects.create(title="t", author=author)
        book.co_authors.add(other)

        text = serializers.serialize("json", [book], cls=SnowflakeJSONEncoder)

        [record] = json.loads(text)
        assert record["pk"] == str(book.pk)
        assert record["fields"] == {
            "title": "t",
            "author": str(author.pk),
            "co_authors": [str(other.pk)],
        }
        Book.objects.all().delete()
        [restored] = serializers.deserialize("json", text)
        restored.save()
        copy = Book.objects.get()
        assert (copy.pk, copy.author_id, list(copy.co_authors.all())) == (
            book.pk,
            author.pk,
            [other],
        )
        # Loading over the row it came from updates it, as for an AutoField key.
        Book.objects.update(title="changed")
        [again] = serializers.deserialize("json", text)
        again.save()
        assert list(Book.objects.values_list("pk", "title")) == [(book.pk, "t")]
