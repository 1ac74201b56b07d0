from __future__ import annotations

from django.db import models
from django.http import HttpRequest, JsonResponse
from django.shortcuts import get_object_or_404

from django_flakeid.serialization import SnowflakeJSONEncoder, model_to_json_dict


def detail(request: HttpRequest, pk: int, model: type[models.Model]) -> JsonResponse:
    """One row as JSON, found by the ``int`` the ``snowflake`` converter passes."""
    instance = get_object_or_404(model, pk=pk)
    return JsonResponse(
        {"pk_type": type(pk).__name__, **model_to_json_dict(instance)},
        encoder=SnowflakeJSONEncoder,
    )
