from __future__ import annotations

from django.contrib import admin
from django.urls import path

from tests.testapp import views
from tests.testapp.models import Customer, Order, Tag

# Named as DRF's hyperlinked serializers expect: "<model>-detail".
urlpatterns = [
    path("admin/", admin.site.urls),
    path("orders/<snowflake:pk>/", views.detail, {"model": Order}, name="order-detail"),
    path("customers/<snowflake:pk>/", views.detail, {"model": Customer}, name="customer-detail"),
    path("tags/<snowflake:pk>/", views.detail, {"model": Tag}, name="tag-detail"),
]
