"""A small JSON endpoint: enough to serve order creation from many worker processes."""

from __future__ import annotations

from django.http import HttpRequest, JsonResponse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_http_methods

from django_flakeid.fields import SnowflakeField

from .models import Customer, Order


@csrf_exempt
@require_http_methods(["GET", "POST"])
def orders(request: HttpRequest) -> JsonResponse:
    """GET: how many orders there are. POST: create one; answers with its ID as a string."""
    if request.method == "GET":
        return JsonResponse({"orders": Order.objects.count()})
    customer, _ = Customer.objects.get_or_create(
        email="api@example.com", defaults={"name": "API client"}
    )
    order = Order.objects.create(customer=customer)
    field = Order._meta.get_field("id")
    assert isinstance(field, SnowflakeField)
    decoded = field.decode(order.pk)
    # As a string: JavaScript numbers cannot hold every 64-bit ID exactly.
    body = {"id": str(order.pk), "machine_id": decoded.machine_id, "at": decoded.generated_at}
    return JsonResponse(body, status=201)
