"""FLAKEID['ids_as_strings']: how Snowflake IDs are written to JSON."""

from __future__ import annotations

import pytest
from django.core.checks import Error
from django.test import override_settings
from pytest_django import Settings

from django_flakeid import checks, conf
from django_flakeid.errors import ConfigurationError

BASE = {"preset": "twitter", "datacenter_id": 1, "machine_id": 7}


class TestIdsAsStrings:
    def test_strings_by_default(self) -> None:
        assert conf.ids_as_strings()

    def test_without_any_setting(self, settings: Settings) -> None:
        del settings.FLAKEID

        assert conf.ids_as_strings()

    @pytest.mark.parametrize(("value", "expected"), [(True, True), (False, False), (None, True)])
    def test_set(self, value: bool | None, expected: bool) -> None:
        with override_settings(FLAKEID={**BASE, "ids_as_strings": value}):
            assert conf.ids_as_strings() is expected

    @pytest.mark.parametrize("value", ["no", 0, 1, "False"])
    def test_invalid_counts_as_the_default(self, value: object) -> None:
        with override_settings(FLAKEID={**BASE, "ids_as_strings": value}):
            assert conf.ids_as_strings()

    def test_setting_not_a_dict(self, settings: Settings) -> None:
        settings.FLAKEID = "twitter"

        assert conf.ids_as_strings()

    def test_follows_changes_at_once(self, settings: Settings) -> None:
        assert conf.ids_as_strings()

        settings.FLAKEID = {**BASE, "ids_as_strings": False}

        assert not conf.ids_as_strings()

    def test_does_not_need_the_rest_of_the_setting(self, settings: Settings) -> None:
        settings.FLAKEID = {"machine_id": "nope", "ids_as_strings": False}

        assert not conf.ids_as_strings()


class TestValidation:
    @pytest.mark.parametrize("value", [True, False, None])
    def test_valid(self, value: bool | None) -> None:
        with override_settings(FLAKEID={**BASE, "ids_as_strings": value}):
            config, problems = conf.validate()

        assert problems == []
        assert config is not None

    def test_check(self) -> None:
        with override_settings(FLAKEID={**BASE, "ids_as_strings": "no"}):
            errors = checks.check_setting()

        assert errors == [
            Error(
                "FLAKEID['ids_as_strings'] must be True or False, not str 'no'.",
                hint="Set FLAKEID['ids_as_strings'] to True to write Snowflake IDs to JSON as "
                "strings, or to False for numbers.",
                id="django_flakeid.E020",
            )
        ]

    def test_an_invalid_value_stops_ids_like_any_other(self) -> None:
        with (
            override_settings(FLAKEID={**BASE, "ids_as_strings": 1}),
            pytest.raises(ConfigurationError, match=r"FLAKEID\['ids_as_strings'\] must be True"),
        ):
            conf.get_generator()

    def test_known_key(self) -> None:
        assert "ids_as_strings" in conf.SETTING_KEYS
        assert ("django_flakeid.E020", "FLAKEID['ids_as_strings'] is not True or False.") in (
            checks.CHECKS
        )
