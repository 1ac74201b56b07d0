"""The shop through Django Ninja, every ID a JSON string.

``SnowflakeModelSchema`` types each Snowflake column and relation of a model as
``SnowflakeID``: a string in JSON, an ``int`` in Python. Mounted at ``/api/ninja/`` by
``example/urls.py`` when Django Ninja is installed; its docs page is ``/api/ninja/docs``.
"""

from __future__ import annotations

from decimal import Decimal

from django.db import transaction
from django.db.models import QuerySet
from django.http import HttpRequest
from django.shortcuts import get_object_or_404
from ninja import NinjaAPI, Schema
from ninja.errors import HttpError
from pydantic import Field

from django_flakeid.ninja import SnowflakeID, SnowflakeModelSchema

from .models import Customer, Order, Tag

CENTS = Decimal("0.01")

api = NinjaAPI(
    title="Example shop (Django Ninja)",
    version="1.0.0",
    description="The example shop through Django Ninja. Every ID is a string.",
    urls_namespace="ninja-shop",
)


class CustomerOut(SnowflakeModelSchema):
    class Meta:
        model = Customer
        fields = ("id", "name", "email")


class OrderOut(SnowflakeModelSchema):
    lines: list[SnowflakeID]
    total: Decimal

    class Meta:
        model = Order
        fields = ("id", "customer", "tags")

    @staticmethod
    def resolve_lines(order: Order) -> list[int]:
        return [line.pk for line in order.lines.all()]

    @staticmethod
    def resolve_total(order: Order) -> Decimal:
        return order.total.quantize(CENTS)


class OrderIn(Schema):
    # Written by hand, as the REST API's body: a ModelSchema would name the key customer_id.
    customer: SnowflakeID
    tags: list[SnowflakeID] = Field(default_factory=list)


@api.get("/customers", response=list[CustomerOut], tags=["customers"])
def list_customers(request: HttpRequest) -> QuerySet[Customer]:
    customers: QuerySet[Customer] = Customer.objects.order_by("id")
    return customers


@api.get("/orders", response=list[OrderOut], tags=["orders"])
def list_orders(request: HttpRequest, customer: SnowflakeID | None = None) -> QuerySet[Order]:
    """The orders, newest first: all of them, or those of one customer."""
    orders: QuerySet[Order] = Order.objects.prefetch_related("tags", "lines")
    return orders if customer is None else orders.filter(customer_id=customer)


@api.get("/orders/{order_id}", response=OrderOut, tags=["orders"])
def get_order(request: HttpRequest, order_id: SnowflakeID) -> Order:
    order: Order = get_object_or_404(Order.objects.prefetch_related("tags", "lines"), pk=order_id)
    return order


@api.post("/orders", response={201: OrderOut}, tags=["orders"])
def create_order(request: HttpRequest, payload: OrderIn) -> tuple[int, Order]:
    # A SnowflakeID is an int in Python: a key as the ORM takes it.
    customer = get_object_or_404(Customer, pk=payload.customer)
    tags = list(Tag.objects.filter(pk__in=payload.tags))
    if len(tags) != len(set(payload.tags)):
        raise HttpError(422, "No tag has one of these IDs.")
    with transaction.atomic():
        order = Order.objects.create(customer=customer)
        order.tags.set(tags)
    return 201, order
