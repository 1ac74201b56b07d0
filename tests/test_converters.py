from __future__ import annotations

import json

import pytest
from django.apps import apps
from django.test import Client
from django.urls import NoReverseMatch, Resolver404, path, resolve, reverse
from django.urls.converters import get_converters
from pytest_django import DjangoAssertNumQueries

from django_flakeid.converters import SnowflakeConverter
from django_flakeid.layout import MAX_ID
from tests.autoapp.models import Author
from tests.testapp import views
from tests.testapp.models import Customer, Order, Tag

ID = 913686285393227776


class TestToPython:
    @pytest.mark.parametrize(
        ("text", "expected"),
        [("0", 0), ("7", 7), ("007", 7), (str(ID), ID), (str(MAX_ID), MAX_ID)],
    )
    def test_ids(self, text: str, expected: int) -> None:
        assert SnowflakeConverter().to_python(text) == expected

    @pytest.mark.parametrize("text", [str(MAX_ID + 1), "9" * 19])
    def test_above_the_largest_id(self, text: str) -> None:
        with pytest.raises(ValueError, match="above the largest Snowflake ID"):
            SnowflakeConverter().to_python(text)


class TestToUrl:
    @pytest.mark.parametrize(
        ("value", "expected"),
        [(0, "0"), (ID, str(ID)), (MAX_ID, str(MAX_ID)), (str(ID), str(ID)), ("007", "7")],
    )
    def test_ids(self, value: int | str, expected: str) -> None:
        assert SnowflakeConverter().to_url(value) == expected

    @pytest.mark.parametrize(
        "value", [-1, MAX_ID + 1, str(MAX_ID + 1), True, 1.0, "-1", "12a", "", "١٢", None]
    )
    def test_not_ids(self, value: object) -> None:
        with pytest.raises(ValueError, match="is not a Snowflake ID"):
            SnowflakeConverter().to_url(value)  # type: ignore[arg-type]


class TestRegistration:
    def test_registered_when_the_app_loads(self) -> None:
        assert isinstance(get_converters()["snowflake"], SnowflakeConverter)

    def test_loading_again_keeps_the_registered_converter(self) -> None:
        converter = get_converters()["snowflake"]

        apps.get_app_config("django_flakeid").ready()

        assert get_converters()["snowflake"] is converter


class TestResolve:
    @pytest.mark.parametrize("pk", [0, ID, MAX_ID])
    def test_passes_an_int(self, pk: int) -> None:
        match = resolve(f"/orders/{pk}/")

        assert match.url_name == "order-detail"
        assert match.kwargs == {"pk": pk, "model": Order}
        assert type(match.kwargs["pk"]) is int

    @pytest.mark.parametrize(
        "pk", [str(MAX_ID + 1), "9" * 19, "9" * 20, "1" * 25, "-1", "12a", "1.0", ""]
    )
    def test_no_match(self, pk: str) -> None:
        with pytest.raises(Resolver404):
            resolve(f"/orders/{pk}/")


class TestReverse:
    @pytest.mark.parametrize("pk", [0, ID, MAX_ID, str(ID)])
    def test_round_trip(self, pk: int | str) -> None:
        url = reverse("order-detail", kwargs={"pk": pk})

        assert url == f"/orders/{pk}/"
        assert resolve(url).kwargs["pk"] == int(pk)

    @pytest.mark.parametrize("pk", [-1, MAX_ID + 1, "abc", True])
    def test_not_an_id(self, pk: object) -> None:
        with pytest.raises(NoReverseMatch):
            reverse("order-detail", kwargs={"pk": pk})


@pytest.mark.django_db
class TestRequests:
    def test_found(self, client: Client) -> None:
        customer = Customer.objects.create(name="Ada")
        order = Order.objects.create(customer=customer, reference="first")

        response = client.get(f"/orders/{order.pk}/")

        assert response.status_code == 200
        assert json.loads(response.content) == {
            "pk_type": "int",
            "id": str(order.pk),
            "customer": str(customer.pk),
            "reference": "first",
            "tags": [],
        }

    def test_other_models(self, client: Client) -> None:
        tag = Tag.objects.create(name="gift")

        response = client.get(reverse("tag-detail", kwargs={"pk": tag.pk}))

        assert json.loads(response.content)["name"] == "gift"

    @pytest.mark.parametrize("pk", [0, MAX_ID])
    def test_unknown_id_is_the_view_404(self, client: Client, pk: int) -> None:
        assert client.get(f"/orders/{pk}/").status_code == 404

    @pytest.mark.parametrize("pk", [str(MAX_ID + 1), "9" * 19, "1" * 25])
    def test_overflow_is_a_404_without_a_query(
        self, client: Client, pk: str, django_assert_num_queries: DjangoAssertNumQueries
    ) -> None:
        with django_assert_num_queries(0):
            response = client.get(f"/orders/{pk}/")

        assert response.status_code == 404


urlpatterns = [
    path("authors/<snowflake:pk>/", views.detail, {"model": Author}, name="author-detail"),
]


@pytest.mark.django_db
@pytest.mark.urls(__name__)
class TestSnowflakeAutoField:
    """A model keyed by SnowflakeAutoField routes as one keyed by SnowflakeField."""

    def test_round_trip(self, client: Client) -> None:
        author = Author.objects.create(name="Ada")

        url = reverse("author-detail", kwargs={"pk": author.pk})
        response = client.get(url)

        assert url == f"/authors/{author.pk}/"
        assert resolve(url).kwargs["pk"] == author.pk
        assert json.loads(response.content) == {
            "pk_type": "int",
            "id": str(author.pk),
            "name": "Ada",
        }

    def test_key_from_before_snowflake_ids(self, client: Client) -> None:
        Author.objects.create(id=3, name="old")

        response = client.get(reverse("author-detail", kwargs={"pk": 3}))

        assert json.loads(response.content)["id"] == "3"

    def test_unsaved_instance_has_no_url(self) -> None:
        with pytest.raises(NoReverseMatch):
            reverse("author-detail", kwargs={"pk": Author(name="Ada").pk})
