"""A Django Ninja API over the test apps' models, and a URLconf serving it at ``/api/``.

Ninja refuses two APIs with one URL namespace, so the API is made once, here, and every test
of it uses this one.
"""

from __future__ import annotations

from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from django.urls import path
from ninja import NinjaAPI, Schema

from django_flakeid.ninja import SnowflakeID, SnowflakeModelSchema
from tests.autoapp.models import Book
from tests.testapp.models import Order, OrderLine

api = NinjaAPI(urls_namespace="flakeid-ninja-tests")


class OrderOut(SnowflakeModelSchema):
    class Meta:
        model = Order
        fields = ("id", "customer", "reference", "tags")


class OrderIn(SnowflakeModelSchema):
    class Meta:
        model = Order
        fields = ("customer", "reference", "tags")


class BookOut(SnowflakeModelSchema):
    class Meta:
        model = Book
        fields = ("id", "title", "author", "co_authors")


class BookIn(SnowflakeModelSchema):
    class Meta:
        model = Book
        exclude = ("id",)


class LineIn(Schema):
    order_id: SnowflakeID
    product: str
    quantity: int = 1


class LineOut(Schema):
    id: int
    order_id: SnowflakeID
    product: str
    quantity: int


@api.get("/orders", response=list[OrderOut])
def list_orders(request: HttpRequest, customer: SnowflakeID | None = None) -> QuerySet[Order]:
    orders: QuerySet[Order] = Order.objects.order_by("pk")
    return orders if customer is None else orders.filter(customer_id=customer)


@api.get("/orders/{order_id}", response=OrderOut)
def get_order(request: HttpRequest, order_id: SnowflakeID) -> Order:
    return get_object_or_404(Order, pk=order_id)


@api.get("/converted/orders/{snowflake:order_id}", response=OrderOut)
def get_order_converted(request: HttpRequest, order_id: SnowflakeID) -> Order:
    return get_object_or_404(Order, pk=order_id)


@api.post("/orders", response=OrderOut)
def create_order(request: HttpRequest, payload: OrderIn) -> Order:
    # As Ninja's guide does it: model_dump() writes the IDs as strings, which Django takes.
    data = payload.model_dump(by_alias=True, exclude_unset=True)
    tags = data.pop("tags")
    order: Order = Order.objects.create(**data)
    order.tags.set(tags)
    return order


@api.post("/books", response=BookOut)
def create_book(request: HttpRequest, payload: BookIn) -> Book:
    data = payload.model_dump(by_alias=True, exclude_unset=True)
    co_authors = data.pop("co_authors")
    book: Book = Book.objects.create(**data)
    book.co_authors.set(co_authors)
    return book


@api.post("/lines", response=LineOut)
def create_line(request: HttpRequest, payload: LineIn) -> OrderLine:
    # Attributes hold ints.
    order = get_object_or_404(Order, pk=payload.order_id)
    line: OrderLine = OrderLine.objects.create(
        order=order, product=payload.product, quantity=payload.quantity
    )
    return line


urlpatterns = [path("api/", api.urls)]
