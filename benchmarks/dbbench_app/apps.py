from __future__ import annotations

from django.apps import AppConfig


class DbbenchConfig(AppConfig):
    name = "benchmarks.dbbench_app"
    label = "dbbench"
    default_auto_field = "django.db.models.BigAutoField"
