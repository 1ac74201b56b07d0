"""The admin, a plain JSON endpoint, and the shop's APIs whose packages are installed.

- ``/api/orders/``: ``shop.views.orders``, with Django alone.
- ``/api/rest/``: Django REST framework (``shop/rest_api.py``); with drf-spectacular, its
  OpenAPI schema at ``/api/rest/schema/`` and Swagger UI at ``/api/rest/docs/``.
- ``/api/ninja/``: Django Ninja (``shop/ninja_api.py``), its docs at ``/api/ninja/docs``.
"""

from __future__ import annotations

from django.apps import apps
from django.contrib import admin
from django.urls import URLPattern, URLResolver, include, path
from shop import views

urlpatterns: list[URLPattern | URLResolver] = [
    path("admin/", admin.site.urls),
    path("api/orders/", views.orders, name="orders"),
]

# Imported only when installed: each API module imports its packages at the top.
if apps.is_installed("rest_framework"):
    from shop import rest_api

    urlpatterns.append(path("api/rest/", include(rest_api.urlpatterns)))

if apps.is_installed("ninja"):
    from shop import ninja_api

    urlpatterns.append(path("api/ninja/", ninja_api.api.urls))
