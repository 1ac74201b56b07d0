"""A small DRF API over the test apps, for the OpenAPI schema tests (tests/test_openapi.py)."""

from __future__ import annotations

import importlib
from typing import Any

from django.urls import include, path, re_path
from rest_framework import generics, routers, serializers, viewsets
from rest_framework.utils.model_meta import RelationInfo

from django_flakeid.rest_framework import (
    SnowflakeHyperlinkedModelSerializer,
    SnowflakeModelSerializer,
)
from tests.autoapp.models import Author, Book, Comment, Entry
from tests.testapp.models import Article, Customer, ExternalRecord, Order, OrderLine, Tag


class OrderSerializer(SnowflakeModelSerializer[Order]):
    """An order of the shop."""

    class Meta:
        model = Order
        fields = ("id", "customer", "reference", "tags")


class CustomerSerializer(SnowflakeModelSerializer[Customer]):
    class Meta:
        model = Customer
        fields = ("id", "name", "orders")


class TagSerializer(SnowflakeHyperlinkedModelSerializer[Tag]):
    class Meta:
        model = Tag
        fields = ("url", "id", "name")


class HyperlinkedOrderSerializer(SnowflakeHyperlinkedModelSerializer[Order]):
    class Meta:
        model = Order
        fields = ("url", "id", "customer", "tags")
        depth = 1


class OrderNumbersSerializer(SnowflakeModelSerializer[Order]):
    ids_as_strings = False

    class Meta:
        model = Order
        fields = ("id", "customer", "tags")
        depth = 1


class LineSerializer(SnowflakeModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("id", "order", "product", "quantity")


class DeepLineSerializer(SnowflakeModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("id", "order")
        depth = 2


class NestedLineSerializer(SnowflakeModelSerializer[OrderLine]):
    class Meta:
        model = OrderLine
        fields = ("id", "order")
        depth = 1


class PlainOrderSerializer(serializers.ModelSerializer[Order]):
    customer_number = serializers.ReadOnlyField(source="customer.id")

    class Meta:
        model = Order
        fields = ("id", "customer", "customer_number")


class ArticleSerializer(SnowflakeModelSerializer[Article]):
    class Meta:
        model = Article
        fields = ("public_id", "title")


def _article_by_public_id() -> serializers.Field[Any, Any, Any, Any]:
    # What SnowflakeModelSerializer builds for a ForeignKey(Article, to_field="public_id").
    relation = RelationInfo(
        model_field=None,
        related_model=Article,
        to_many=False,
        to_field="public_id",
        has_through_model=False,
        reverse=False,
    )
    field_class, kwargs = OrderSerializer().build_relational_field("article", relation)
    return field_class(**kwargs)


class MentionSerializer(serializers.Serializer[Any]):
    article = _article_by_public_id()
    # A nullable integer, which drf-spectacular must map as usual (in OpenAPI 3.1 too).
    weight = serializers.IntegerField(allow_null=True)


class RecordSerializer(SnowflakeModelSerializer[ExternalRecord]):
    class Meta:
        model = ExternalRecord
        fields = ("id", "source_id", "note")


class BookSerializer(SnowflakeModelSerializer[Book]):
    class Meta:
        model = Book
        fields = ("id", "title", "author", "co_authors", "series")
        depth = 1


class AuthorSerializer(SnowflakeModelSerializer[Author]):
    class Meta:
        model = Author
        fields = ("id", "name", "books", "co_written")


class EntrySerializer(SnowflakeModelSerializer[Entry]):
    class Meta:
        model = Entry
        fields = ("id", "series", "book", "position")


class CommentSerializer(SnowflakeModelSerializer[Comment]):
    class Meta:
        model = Comment
        fields = ("id", "content_type", "object_id", "text")


def viewset(model: type[Any], serializer: type[Any], **attributes: Any) -> type[Any]:
    return type(
        f"{model.__name__}ViewSet",
        (viewsets.ModelViewSet,),
        {"queryset": model.objects.all(), "serializer_class": serializer, **attributes},
    )


class OrderByConverter(generics.RetrieveAPIView[Order]):
    queryset = Order.objects.all()
    serializer_class = OrderSerializer


class OrderAsNumbers(generics.RetrieveAPIView[Order]):
    queryset = Order.objects.all()
    serializer_class = OrderNumbersSerializer


class PlainOrder(generics.RetrieveAPIView[Order]):
    queryset = Order.objects.all()
    serializer_class = PlainOrderSerializer


class Mention(generics.CreateAPIView[Any]):
    serializer_class = MentionSerializer


class LinesOfOrder(generics.ListAPIView[OrderLine]):
    queryset = OrderLine.objects.all()
    serializer_class = LineSerializer


class LineOfOrder(generics.RetrieveAPIView[OrderLine]):
    queryset = OrderLine.objects.all()
    serializer_class = LineSerializer


try:
    # Imported by name: django-filter ships no type hints.
    DjangoFilterBackend = importlib.import_module(
        "django_filters.rest_framework"
    ).DjangoFilterBackend
except ImportError:  # the filter extra: without it, the lists have no filters
    comment_filters: dict[str, Any] = {}
    order_filters: dict[str, Any] = {}
else:
    # A filter on a relation to an ordinary key, in a list view with no path variables.
    comment_filters = {
        "filter_backends": [DjangoFilterBackend],
        "filterset_fields": ["content_type"],
    }
    from django_flakeid.filters import GeneratedAtRangeFilter, SnowflakeFilterSet

    class OrderFilter(SnowflakeFilterSet):
        created = GeneratedAtRangeFilter(field_name="id")

        class Meta:
            model = Order
            fields = {"id": ["exact", "in", "range"], "customer": ["exact"]}  # noqa: RUF012

    order_filters = {"filter_backends": [DjangoFilterBackend], "filterset_class": OrderFilter}


router = routers.DefaultRouter()
router.register("orders", viewset(Order, OrderSerializer, **order_filters))
router.register("customers", viewset(Customer, CustomerSerializer))
router.register("tags", viewset(Tag, TagSerializer))
router.register("hyperlinked-orders", viewset(Order, HyperlinkedOrderSerializer), "h-order")
router.register("lines", viewset(OrderLine, LineSerializer))
router.register("articles", viewset(Article, ArticleSerializer, lookup_field="public_id"))
router.register(
    "articles-by-kwarg",
    viewset(Article, ArticleSerializer, lookup_field="public_id", lookup_url_kwarg="article"),
    "article-by-kwarg",
)
router.register("deep-lines", viewset(OrderLine, DeepLineSerializer), "deep-line")
router.register("nested-lines", viewset(OrderLine, NestedLineSerializer), "nested-line")
router.register("records", viewset(ExternalRecord, RecordSerializer))
router.register("books", viewset(Book, BookSerializer))
router.register("authors", viewset(Author, AuthorSerializer))
router.register("entries", viewset(Entry, EntrySerializer))
router.register("comments", viewset(Comment, CommentSerializer, **comment_filters))

urlpatterns = [
    path("api/", include(router.urls)),
    path("api/by-converter/<snowflake:pk>/", OrderByConverter.as_view()),
    path("api/as-numbers/<snowflake:pk>/", OrderAsNumbers.as_view()),
    path("api/plain/<int:pk>/", PlainOrder.as_view()),
    path("api/mentions/", Mention.as_view()),
    # Routes as drf-nested-routers writes them: the regex of a router, which types nothing.
    re_path(r"^api/orders/(?P<order_pk>[^/.]+)/lines/$", LinesOfOrder.as_view()),
    re_path(r"^api/orders/(?P<order_pk>[^/.]+)/lines/(?P<pk>[^/.]+)/$", LineOfOrder.as_view()),
]
