"""The views the uWSGI and gunicorn runs serve: IDs on demand, and a ping to wait for."""

from __future__ import annotations

import os
import time

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import path

import django_flakeid


def ids(request: HttpRequest) -> JsonResponse:
    """``n`` new IDs as strings, with the serving process's pid; 503 with the error if refused.

    ``pause`` (seconds) keeps the worker busy a while after making them, so that concurrent
    requests spread over the workers.
    """
    try:
        issued = django_flakeid.next_ids(int(request.GET.get("n", "1")))
    except django_flakeid.FlakeIDError as error:
        body = {"pid": os.getpid(), "error": type(error).__name__, "message": str(error)}
        return JsonResponse(body, status=503)
    time.sleep(float(request.GET.get("pause", "0")))
    return JsonResponse({"pid": os.getpid(), "ids": [str(uid) for uid in issued]})


def ping(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok")


urlpatterns = [path("ids", ids), path("ping", ping)]
