from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import pytest
from django.core.exceptions import ValidationError
from django.db import connection, models
from django.forms import modelform_factory
from django.test import override_settings
from django.test.utils import isolate_apps

from django_flakeid.errors import ConfigurationError, InvalidIDError
from django_flakeid.fields import SnowflakeField, generate_id
from django_flakeid.layout import MAX_ID
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


def column_type(table: str, column: str) -> str:
    with connection.cursor() as cursor:
        description = connection.introspection.get_table_description(cursor, table)
    [info] = [info for info in description if info.name == column]
    return connection.introspection.get_field_type(info.type_code, info)


class TestDeconstruct:
    @pytest.mark.parametrize(
        "kwargs",
        [
            {},
            {"primary_key": True},
            {"unique": True},
            {"null": True, "blank": True},
            {"null": True, "default": None},
            {"editable": True},
            {"default": time.time_ns},
            {"db_index": True, "verbose_name": "public ID"},
        ],
    )
    def test_round_trip(self, kwargs: dict[str, Any]) -> None:
        field = SnowflakeField(**kwargs)

        _name, path, args, recorded = field.deconstruct()
        rebuilt = SnowflakeField(*args, **recorded)

        assert path == "django_flakeid.fields.SnowflakeField"
        assert rebuilt.deconstruct() == field.deconstruct()
        for attribute in ("primary_key", "unique", "null", "editable", "default", "db_index"):
            assert getattr(rebuilt, attribute) == getattr(field, attribute)

    def test_standard_default_is_not_recorded(self) -> None:
        field = SnowflakeField(primary_key=True)

        _name, _path, _args, kwargs = field.deconstruct()

        assert field.default is generate_id
        assert kwargs == {"primary_key": True}

    def test_editable_recorded_only_when_true(self) -> None:
        assert "editable" not in SnowflakeField().deconstruct()[3]
        assert SnowflakeField(editable=True).deconstruct()[3] == {"editable": True}
        assert SnowflakeField(editable=False).deconstruct()[3] == {}

    def test_other_defaults_are_recorded(self) -> None:
        assert SnowflakeField(null=True, default=None).deconstruct()[3] == {
            "null": True,
            "default": None,
        }


class TestDefault:
    def test_pk_known_at_instantiation(self) -> None:
        order = Order()

        assert isinstance(order.pk, int)
        assert order.pk > 0
        decoded = Order._meta.get_field("id").decode(order.pk)  # type: ignore[union-attr]
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)
        assert abs(decoded.timestamp_ms - time.time() * 1000) < 60_000

    def test_ids_grow_in_creation_order(self) -> None:
        ids = [Order().pk for _ in range(100)]

        assert ids == sorted(ids)
        assert len(set(ids)) == 100

    def test_generate_id_follows_the_setting(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 4, "machine_id": 9}):
            decoded = Order._meta.get_field("id").decode(generate_id())  # type: ignore[union-attr]

        assert (decoded.datacenter_id, decoded.machine_id) == (4, 9)

    def test_invalid_setting_raises_when_an_id_is_needed(self) -> None:
        with override_settings(FLAKEID={"machine_id": 99}), pytest.raises(ConfigurationError):
            Order()

    def test_explicit_value_wins(self) -> None:
        assert Order(id=12345).pk == 12345


@pytest.mark.django_db
class TestDatabase:
    def test_save_is_a_single_insert(self, django_assert_num_queries: Any) -> None:
        order = Order(reference="A-1")
        pk = order.pk

        with django_assert_num_queries(1) as captured:
            order.save()

        assert captured.captured_queries[0]["sql"].upper().startswith("INSERT")
        assert order.pk == pk
        assert Order.objects.get().pk == pk

    def test_create_is_a_single_insert(self, django_assert_num_queries: Any) -> None:
        with django_assert_num_queries(1) as captured:
            Customer.objects.create(name="Ada")

        assert captured.captured_queries[0]["sql"].upper().startswith("INSERT")

    def test_saving_again_updates(self, django_assert_num_queries: Any) -> None:
        order = Order.objects.create(reference="A-1")
        order.reference = "A-2"

        with django_assert_num_queries(1) as captured:
            order.save()

        assert captured.captured_queries[0]["sql"].upper().startswith("UPDATE")
        assert Order.objects.get(pk=order.pk).reference == "A-2"

    def test_bulk_create_returns_primary_keys(self) -> None:
        orders = Order.objects.bulk_create(Order(reference=f"B-{n}") for n in range(50))

        assert all(isinstance(order.pk, int) for order in orders)
        assert sorted(Order.objects.values_list("pk", flat=True)) == [o.pk for o in orders]
        assert Order.objects.get(pk=orders[7].pk).reference == "B-7"

    def test_round_trips_the_largest_id(self) -> None:
        Order.objects.create(id=MAX_ID, reference="max")

        assert Order.objects.get(reference="max").pk == MAX_ID

    def test_foreign_key_one_to_one_and_many_to_many(self) -> None:
        customer = Customer.objects.create(name="Ada")
        Profile.objects.create(customer=customer, bio="Mathematician")
        order = Order.objects.create(customer=customer, reference="C-1")
        OrderLine.objects.create(order=order, product="Engine", quantity=2)
        tags = Tag.objects.bulk_create([Tag(name="gift"), Tag(name="urgent")])
        order.tags.add(*tags)

        fetched = Order.objects.select_related("customer__profile").get(pk=order.pk)
        assert fetched.customer == customer
        assert fetched.customer.profile.bio == "Mathematician"
        assert [line.product for line in fetched.lines.all()] == ["Engine"]
        assert sorted(tag.name for tag in fetched.tags.all()) == ["gift", "urgent"]
        assert list(Order.objects.filter(tags__name="urgent", customer__name="Ada")) == [order]
        assert list(Customer.objects.filter(orders__lines__product="Engine")) == [customer]

    @pytest.mark.parametrize(
        ("table", "column"),
        [
            ("testapp_order", "customer_id"),
            ("testapp_orderline", "order_id"),
            ("testapp_profile", "customer_id"),
            ("testapp_order_tags", "order_id"),
            ("testapp_order_tags", "tag_id"),
            ("testapp_article", "public_id"),
        ],
    )
    def test_columns_are_64_bit(self, table: str, column: str) -> None:
        assert column_type(table, column) == "BigIntegerField"

    def test_primary_key_and_related_fields_are_bigint(self) -> None:
        bigint = connection.data_types["BigIntegerField"]
        through = Order._meta.get_field("tags").remote_field.through  # type: ignore[union-attr]
        fields = [
            Order._meta.get_field("id"),
            Order._meta.get_field("customer"),
            Profile._meta.get_field("customer"),
            through._meta.get_field("order"),
            through._meta.get_field("tag"),
        ]

        # On SQLite the key is the rowid itself, which only "integer primary key" gives.
        key = "integer" if connection.vendor == "sqlite" else bigint
        assert [field.db_type(connection) for field in fields] == [key] + [bigint] * 4

    def test_plain_unique_column(self) -> None:
        first = Article.objects.create(title="One")
        second = Article.objects.create(title="Two")

        assert isinstance(first.pk, int)
        assert second.public_id > first.public_id
        assert Article.objects.get(public_id=second.public_id) == second

    def test_nullable_column_is_still_filled(self) -> None:
        thing = NullableThing.objects.create()

        thing.refresh_from_db()
        assert isinstance(thing.filled, int)
        assert thing.empty is None

    def test_nullable_column_accepts_null(self) -> None:
        thing = NullableThing.objects.create(filled=None)

        thing.refresh_from_db()
        assert thing.filled is None


@pytest.mark.django_db
class TestValidation:
    @pytest.mark.parametrize("value", [0, 1, MAX_ID])
    def test_in_range(self, value: int) -> None:
        ExternalRecord(source_id=value).full_clean()

    @pytest.mark.parametrize(
        ("value", "message"),
        [
            (-1, "Ensure this value is greater than or equal to 0."),
            (MAX_ID + 1, f"Ensure this value is less than or equal to {MAX_ID}."),
        ],
    )
    def test_out_of_range(self, value: int, message: str) -> None:
        with pytest.raises(ValidationError) as excinfo:
            ExternalRecord(source_id=value).full_clean(validate_unique=False)

        assert excinfo.value.message_dict == {"source_id": [message]}

    def test_no_duplicate_validators(self) -> None:
        field = ExternalRecord._meta.get_field("source_id")
        assert isinstance(field, SnowflakeField)

        kinds = [type(validator).__name__ for validator in field.validators]
        assert sorted(kinds) == ["MaxValueValidator", "MinValueValidator"]


@pytest.mark.django_db
class TestForms:
    def test_not_editable_by_default(self) -> None:
        form_class = modelform_factory(Order, fields="__all__")

        assert "id" not in form_class.base_fields
        assert "public_id" not in modelform_factory(Article, fields="__all__").base_fields

    def test_editable_when_asked(self) -> None:
        form_class = modelform_factory(ExternalRecord, fields="__all__")
        form_field = form_class.base_fields["source_id"]

        assert form_field.min_value == 0  # type: ignore[attr-defined]
        assert form_field.max_value == MAX_ID  # type: ignore[attr-defined]
        assert not form_class(data={"source_id": "-3"}).is_valid()
        assert form_class(data={"source_id": str(MAX_ID)}).is_valid()


class TestDecode:
    def test_decode_stored_value(self) -> None:
        field = Article._meta.get_field("public_id")
        assert isinstance(field, SnowflakeField)
        article = Article(title="Decode me")

        decoded = field.decode(article.public_id)

        assert decoded.raw == article.public_id
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)

    def test_decode_rejects_non_ids(self) -> None:
        field = SnowflakeField()

        with pytest.raises(InvalidIDError):
            field.decode(-1)


@pytest.fixture
def isolated_apps() -> Iterator[None]:
    with isolate_apps("tests.testapp"):
        yield


def make_model(**fields: Any) -> type[models.Model]:
    meta = type("Meta", (), {"app_label": "testapp"})
    return type("Model", (models.Model,), {"__module__": __name__, "Meta": meta, **fields})


@pytest.mark.usefixtures("isolated_apps")
class TestChecks:
    def test_standard_field_is_fine(self) -> None:
        model = make_model(
            id=SnowflakeField(primary_key=True),
            public_id=SnowflakeField(unique=True, null=True, default=None),
        )

        assert model.check() == []

    def test_e101_constant_default_on_primary_key(self) -> None:
        model = make_model(id=SnowflakeField(primary_key=True, default=42))
        field = model._meta.get_field("id")

        errors = field.check()  # type: ignore[union-attr]

        assert [(error.id, error.obj) for error in errors] == [("django_flakeid.E101", field)]
        assert errors[0].msg == (
            "SnowflakeField has the constant default 42, so every new row would get the same value."
        )
        assert errors[0].hint == (
            "Remove 'default' to get a new ID for each row, or pass a callable."
        )

    def test_e101_none_default_on_primary_key(self) -> None:
        model = make_model(id=SnowflakeField(primary_key=True, default=None))

        assert [error.id for error in model.check()] == ["django_flakeid.E101"]

    def test_e101_constant_default_on_unique_field(self) -> None:
        model = make_model(public_id=SnowflakeField(unique=True, default=7))

        assert [error.id for error in model.check()] == ["django_flakeid.E101"]

    def test_constant_default_fine_when_not_unique(self) -> None:
        model = make_model(legacy_id=SnowflakeField(default=0))

        assert model.check() == []

    def test_callable_default_fine(self) -> None:
        model = make_model(id=SnowflakeField(primary_key=True, default=time.time_ns))

        assert model.check() == []

    def test_e102_db_default(self) -> None:
        model = make_model(public_id=SnowflakeField(db_default=1))
        field = model._meta.get_field("public_id")

        errors = field.check(databases=["default"])  # type: ignore[union-attr]

        assert [(error.id, error.obj) for error in errors] == [("django_flakeid.E102", field)]
        assert errors[0].msg == (
            "SnowflakeField cannot have a db_default: the database cannot make Snowflake IDs."
        )
