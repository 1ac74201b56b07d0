from __future__ import annotations

from django.apps import apps
from django.core.checks.registry import registry
from django.test import override_settings

import django_flakeid
from django_flakeid import checks, conf, factory
from django_flakeid.apps import DjangoFlakeIDConfig


def test_app_config() -> None:
    config = apps.get_app_config("django_flakeid")

    assert isinstance(config, DjangoFlakeIDConfig)
    assert config.verbose_name == "django-flakeid"


def test_checks_registered() -> None:
    everyday = set[object](registry.get_checks(include_deployment_checks=False))
    with_deploy = set[object](registry.get_checks(include_deployment_checks=True))

    assert checks.check_setting in everyday
    assert checks.check_layout_lifetime in everyday
    assert checks.check_node_identity not in everyday
    assert checks.check_node_identity in with_deploy


def test_module_level_functions_follow_the_setting() -> None:
    assert factory.default_generator() is conf.get_generator()

    with override_settings(FLAKEID={"datacenter_id": 3, "machine_id": 21}):
        decoded = conf.get_layout().decode(django_flakeid.next_id())
        batch = django_flakeid.next_ids(3)

    assert (decoded.datacenter_id, decoded.machine_id) == (3, 21)
    assert len(batch) == 3
    assert batch[0] > decoded.raw
