"""django-filter for the orders of the REST API (``shop/rest_api.py``).

``?customer=<ID>`` keeps one customer's orders, the ID read exactly. ``?created_after=`` and
``?created_before=`` (ISO 8601, either or both) keep the orders made in that span of time, as
their IDs say: the query is a range of keys, with no column of dates.
"""

from __future__ import annotations

# django-filter ships no type hints.
from django_filters import rest_framework as filters  # type: ignore[import-untyped]

from django_flakeid.filters import GeneratedAtRangeFilter, SnowflakeFilterSetMixin

from .models import Order


class OrderFilterSet(SnowflakeFilterSetMixin, filters.FilterSet):  # type: ignore[misc]
    created = GeneratedAtRangeFilter(field_name="id")

    class Meta:
        model = Order
        fields = ("customer", "created")
