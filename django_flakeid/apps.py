from __future__ import annotations

from django.apps import AppConfig
from django.core.checks import register

from . import checks, conf
from .factory import set_default_source


class DjangoFlakeIDConfig(AppConfig):
    name = "django_flakeid"
    label = "django_flakeid"
    verbose_name = "django-flakeid"

    def ready(self) -> None:
        register(checks.check_setting)
        register(checks.check_layout_lifetime)
        register(checks.check_node_identity, deploy=True)
        # Inside a project, django_flakeid.next_id() follows FLAKEID like the model fields do.
        set_default_source(conf.get_generator)
