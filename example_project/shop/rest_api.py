"""The shop through Django REST framework: viewsets on a router, every ID a JSON string.

``SnowflakeModelSerializer`` writes each key and each relation to a Snowflake-keyed model as
a string, and reads a string or an integer back. Mounted at ``/api/rest/`` by
``example/urls.py`` when Django REST framework is installed. With drf-spectacular (the
``spectacular`` extra) come the OpenAPI schema and its Swagger UI page; with
django-filter (the ``filter`` extra), filters of the orders by customer and by the time in
their IDs.
"""

from __future__ import annotations

from typing import Any

from django.apps import apps
from django.urls import URLPattern, URLResolver, include, path
from rest_framework import routers, serializers, viewsets

from django_flakeid.rest_framework import SnowflakeModelSerializer

from .models import Customer, Order, OrderLine, Tag


class CustomerSerializer(SnowflakeModelSerializer[Customer]):
    """A customer of the shop."""

    class Meta:
        model = Customer
        fields = ("id", "name", "email")


class TagSerializer(SnowflakeModelSerializer[Tag]):
    """A label orders can carry."""

    class Meta:
        model = Tag
        fields = ("id", "name")


class OrderSerializer(SnowflakeModelSerializer[Order]):
    """An order: its customer and tags by ID; read-only, its lines by ID and their total."""

    total = serializers.DecimalField(max_digits=12, decimal_places=2, read_only=True)

    class Meta:
        model = Order
        fields = ("id", "customer", "tags", "lines", "total")
        read_only_fields = ("lines",)


class OrderLineSerializer(SnowflakeModelSerializer[OrderLine]):
    """A product on an order, with its quantity and unit price."""

    class Meta:
        model = OrderLine
        fields = ("id", "order", "product", "quantity", "unit_price")


class CustomerViewSet(viewsets.ModelViewSet[Customer]):
    queryset = Customer.objects.all()
    serializer_class = CustomerSerializer


class TagViewSet(viewsets.ModelViewSet[Tag]):
    queryset = Tag.objects.all()
    serializer_class = TagSerializer


def _order_filterset() -> type[Any] | None:
    if not apps.is_installed("django_filters"):
        return None
    from .filters import OrderFilterSet

    return OrderFilterSet


class OrderViewSet(viewsets.ModelViewSet[Order]):
    # Newest first by the ID alone (Order.Meta.ordering); the total reads the lines.
    queryset = Order.objects.prefetch_related("tags", "lines")
    serializer_class = OrderSerializer
    # Read by DjangoFilterBackend, which the settings enable when django-filter is installed.
    filterset_class = _order_filterset()


class OrderLineViewSet(viewsets.ModelViewSet[OrderLine]):
    queryset = OrderLine.objects.order_by("id")
    serializer_class = OrderLineSerializer


router = routers.DefaultRouter()
router.register("customers", CustomerViewSet)
router.register("tags", TagViewSet)
router.register("orders", OrderViewSet)
router.register("lines", OrderLineViewSet)

urlpatterns: list[URLPattern | URLResolver] = [path("", include(router.urls))]

if apps.is_installed("drf_spectacular"):
    from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

    # No Redoc page: Redoc loads its logo from cdn.redoc.ly, and drf-spectacular's page for it
    # links Google Fonts, whatever REDOC_DIST says.
    urlpatterns += [
        path("schema/", SpectacularAPIView.as_view(), name="schema"),
        path("docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    ]
