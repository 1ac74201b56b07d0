from __future__ import annotations

import datetime as dt
import math
import re
import time
from collections.abc import Iterator
from io import StringIO
from pathlib import Path
from typing import Any, get_args

import pytest
from django.apps import AppConfig
from django.apps.registry import Apps
from django.core.checks import Error, Tags, Warning
from django.core.checks.registry import registry as check_registry
from django.core.management import call_command
from django.core.management.base import SystemCheckError
from django.db import connection, connections, models, router
from django.db.models import F, Q
from django.db.models.functions import Lower
from django.test import override_settings
from django.test.utils import isolate_apps

from django_flakeid import checks
from django_flakeid.conf import ProblemKind
from django_flakeid.fields import SnowflakeField
from django_flakeid.layout import Layout
from django_flakeid.partition_sql import backend_for
from django_flakeid.partitions import SnowflakePartitions
from tests.partapp.models import Event, Reading

YEAR_MS = int(365.25 * 24 * 60 * 60 * 1000)


def check_setting(setting: Any) -> list[Any]:
    with override_settings(FLAKEID=setting):
        return checks.check_setting()


def set_hostname(monkeypatch: pytest.MonkeyPatch, name: str) -> None:
    monkeypatch.setattr("django_flakeid.settings_reader.socket.gethostname", lambda: name)


def now_ms() -> int:
    return time.time_ns() // 1_000_000


class TestTable:
    def test_ids_unique(self) -> None:
        ids = [check_id for check_id, _summary in checks.CHECKS]

        assert len(ids) == len(set(ids))

    def test_ids_well_formed(self) -> None:
        for check_id, summary in checks.CHECKS:
            assert re.fullmatch(r"django_flakeid\.[EW]\d{3}", check_id)
            assert summary.endswith(".")

    def test_every_problem_kind_has_an_id(self) -> None:
        table = {check_id for check_id, _summary in checks.CHECKS}

        assert set(checks.PROBLEM_IDS) == set(get_args(ProblemKind))
        assert set(checks.PROBLEM_IDS.values()) <= table
        assert len(set(checks.PROBLEM_IDS.values())) == len(checks.PROBLEM_IDS)

    def test_every_id_in_the_source_is_in_the_table(self) -> None:
        package = Path(checks.__file__).parent
        used = set()
        for module in package.rglob("*.py"):
            used.update(re.findall(r"django_flakeid\.[EW]\d{3}", module.read_text()))
        table = {check_id for check_id, _summary in checks.CHECKS}

        assert used == table


class TestCheckSetting:
    def test_valid(self) -> None:
        assert checks.check_setting() == []

    def test_absent(self, settings: Any) -> None:
        del settings.FLAKEID

        assert checks.check_setting() == []

    def test_e001_not_a_dict(self) -> None:
        assert check_setting("twitter") == [
            Error(
                "FLAKEID must be a dict, not str.",
                hint="Set FLAKEID to a dict such as {'preset': 'twitter', 'machine_id': 1}, "
                "or remove it to use the defaults.",
                id="django_flakeid.E001",
            )
        ]

    def test_e002_unknown_key_with_suggestion(self) -> None:
        assert check_setting({"machine_idd": 1}) == [
            Error(
                "FLAKEID has an unknown key 'machine_idd'.",
                hint="Did you mean 'machine_id'?",
                id="django_flakeid.E002",
            )
        ]

    def test_e002_unknown_key_without_suggestion(self) -> None:
        assert check_setting({"colour": "blue"}) == [
            Error(
                "FLAKEID has an unknown key 'colour'.",
                hint="Remove it; the known keys are preset, timestamp_bits, datacenter_bits, "
                "machine_bits, sequence_bits, datacenter_id, machine_id, epoch_ms, lease_ttl, "
                "lease_database, ids_as_strings.",
                id="django_flakeid.E002",
            )
        ]

    def test_e003_unknown_preset(self) -> None:
        assert check_setting({"preset": "twiter"}) == [
            Error(
                "FLAKEID['preset'] 'twiter' is not a known preset.",
                hint="Did you mean 'twitter'? Choose one of twitter, minimal, single_dc, "
                "large_cluster, high_throughput, or give a dict of the four widths.",
                id="django_flakeid.E003",
            )
        ]

    def test_e003_unknown_preset_without_suggestion(self) -> None:
        [error] = check_setting({"preset": "zzz"})

        assert error.id == "django_flakeid.E003"
        assert error.hint.startswith("Choose one of twitter,")

    def test_e004_preset_of_wrong_type(self) -> None:
        assert check_setting({"preset": 41}) == [
            Error(
                "FLAKEID['preset'] must be a preset name or a dict of the four widths, not int.",
                hint="Use one of twitter, minimal, single_dc, large_cluster, high_throughput, "
                "or a dict with the keys timestamp_bits, datacenter_bits, machine_bits, "
                "sequence_bits.",
                id="django_flakeid.E004",
            )
        ]

    def test_e004_preset_dict_with_wrong_keys(self) -> None:
        preset = {"timestamp_bits": 41, "datacenter_bits": 5, "machine_bits": 5, "seq": 12}

        assert check_setting({"preset": preset}) == [
            Error(
                "FLAKEID['preset'] must have exactly the four width keys "
                "(missing sequence_bits, unknown key 'seq').",
                hint="Give FLAKEID['preset'] the keys timestamp_bits, datacenter_bits, "
                "machine_bits, sequence_bits, or use a preset name.",
                id="django_flakeid.E004",
            )
        ]

    def test_e005_width_not_an_integer(self) -> None:
        assert check_setting({"machine_bits": "5"}) == [
            Error(
                "FLAKEID['machine_bits'] must be an integer, not str '5'.",
                hint="Set machine_bits to a whole number of bits.",
                id="django_flakeid.E005",
            )
        ]

    def test_e005_width_in_a_preset_dict(self) -> None:
        preset = {
            "timestamp_bits": 41.0,
            "datacenter_bits": 5,
            "machine_bits": 5,
            "sequence_bits": 12,
        }

        [error] = check_setting({"preset": preset})

        assert error.id == "django_flakeid.E005"
        assert (
            error.msg == "FLAKEID['preset']['timestamp_bits'] must be an integer, not float 41.0."
        )

    def test_e006_negative_width(self) -> None:
        assert check_setting({"datacenter_bits": -1, "machine_bits": 11}) == [
            Error(
                "FLAKEID['datacenter_bits'] is -1; a bit width cannot be negative.",
                hint="Set datacenter_bits to 0 or more bits.",
                id="django_flakeid.E006",
            )
        ]

    def test_e007_widths_do_not_add_up(self) -> None:
        assert check_setting({"sequence_bits": 13}) == [
            Error(
                "FLAKEID's bit widths add up to 64 (41 + 5 + 5 + 13), not 63.",
                hint="Change timestamp_bits, datacenter_bits, machine_bits, sequence_bits so that "
                "they add up to 63.",
                id="django_flakeid.E007",
            )
        ]

    def test_e008_width_too_small(self) -> None:
        assert check_setting({"timestamp_bits": 53, "sequence_bits": 0}) == [
            Error(
                "sequence_bits is 0; it must be at least 1.",
                hint="Give sequence_bits at least one bit, taken from another field.",
                id="django_flakeid.E008",
            )
        ]

    def test_e009_node_id_not_an_integer(self) -> None:
        assert check_setting({"machine_id": "7"}) == [
            Error(
                "FLAKEID['machine_id'] must be an integer or 'auto' or 'lease' or 'hostname', "
                "not str '7'.",
                hint="Set FLAKEID['machine_id'] to a whole number. It also accepts 'auto', "
                "'lease', 'hostname'.",
                id="django_flakeid.E009",
            )
        ]

    def test_e009_datacenter_id_takes_hostname_only(self) -> None:
        assert check_setting({"datacenter_id": "auto"}) == [
            Error(
                "FLAKEID['datacenter_id'] must be an integer or 'hostname', not str 'auto'.",
                hint="Set FLAKEID['datacenter_id'] to a whole number. It also accepts 'hostname'.",
                id="django_flakeid.E009",
            )
        ]

    def test_e010_environment_not_an_integer(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "east")

        assert check_setting({}) == [
            Error(
                "Environment variable FLAKEID_DATACENTER_ID='east' is not an integer or "
                "'hostname'.",
                hint="Set FLAKEID_DATACENTER_ID to a whole number, or unset it.",
                id="django_flakeid.E010",
            )
        ]

    def test_e010_environment_machine_word(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "leased")

        assert check_setting({}) == [
            Error(
                "Environment variable FLAKEID_MACHINE_ID='leased' is not an integer or 'auto' "
                "or 'lease' or 'hostname'.",
                hint="Set FLAKEID_MACHINE_ID to a whole number, or unset it.",
                id="django_flakeid.E010",
            )
        ]

    def test_e010_environment_epoch(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "")

        [error] = check_setting({})

        assert error.id == "django_flakeid.E010"
        assert error.msg == "Environment variable FLAKEID_EPOCH_MS='' is not an integer."

    def test_e010_setting_wins_over_a_bad_environment(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "x")

        assert check_setting({"machine_id": 3}) == []

    def test_e011_node_id_out_of_range(self) -> None:
        assert check_setting({"machine_id": 32}) == [
            Error(
                "machine_id 32 from setting FLAKEID['machine_id'] is out of range for "
                "5 machine bits (0 to 31).",
                hint="Set FLAKEID['machine_id'] to an integer from 0 to 31.",
                id="django_flakeid.E011",
            )
        ]

    def test_e011_node_id_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "-1")

        assert check_setting({}) == [
            Error(
                "datacenter_id -1 from environment FLAKEID_DATACENTER_ID is out of range for "
                "5 datacenter bits (0 to 31).",
                hint="Set FLAKEID_DATACENTER_ID to an integer from 0 to 31.",
                id="django_flakeid.E011",
            )
        ]

    def test_e011_layout_without_node_bits(self) -> None:
        assert check_setting({"preset": "single_dc", "datacenter_id": 2}) == [
            Error(
                "datacenter_id 2 from setting FLAKEID['datacenter_id'] is out of range for "
                "0 datacenter bits (0 to 0).",
                hint="The layout has no datacenter bits: set FLAKEID['datacenter_id'] to 0, "
                "or give FLAKEID['datacenter_bits'] some bits.",
                id="django_flakeid.E011",
            )
        ]

    def test_e011_hostname_out_of_range(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web-40")

        [error] = check_setting({"machine_id": "hostname"})

        assert error.id == "django_flakeid.E011"
        assert error.msg == (
            "machine_id 40 from setting FLAKEID['machine_id'] = 'hostname' (web-40) is out of "
            "range for 5 machine bits (0 to 31)."
        )
        assert error.hint == "Set FLAKEID['machine_id'] to an integer from 0 to 31."

    def test_w002_hint_without_datacenter_bits(self, settings: Any) -> None:
        settings.FLAKEID = {"preset": "single_dc"}

        [warning] = checks.check_node_identity()

        assert warning.id == "django_flakeid.W002"
        assert warning.hint == (
            "This layout has no datacenter field to tell hosts apart: set "
            "FLAKEID['machine_id'] to 'lease'."
        )

    def test_e012_epoch_not_an_integer(self) -> None:
        assert check_setting({"epoch_ms": "2020-01-01"}) == [
            Error(
                "FLAKEID['epoch_ms'] must be an integer, not str '2020-01-01'.",
                hint="Set FLAKEID['epoch_ms'] to a whole number of milliseconds since 1970.",
                id="django_flakeid.E012",
            )
        ]

    def test_e013_epoch_before_1970(self) -> None:
        assert check_setting({"epoch_ms": -1}) == [
            Error(
                "epoch_ms -1 from setting FLAKEID['epoch_ms'] is before 1970.",
                hint="Set FLAKEID['epoch_ms'] to 0 or more, e.g. 1577836800000 (2020-01-01).",
                id="django_flakeid.E013",
            )
        ]

    def test_e013_epoch_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "-5")

        [error] = check_setting({})

        assert error.id == "django_flakeid.E013"
        assert error.hint == "Set FLAKEID_EPOCH_MS to 0 or more, e.g. 1577836800000 (2020-01-01)."

    def test_e016_hostname_without_a_number(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web")

        assert check_setting({"machine_id": "hostname"}) == [
            Error(
                "FLAKEID['machine_id'] is 'hostname', but the host name 'web' does not end with "
                "a number.",
                hint="Use 'hostname' only where host names end with their ordinal, like a "
                "Kubernetes StatefulSet's web-0, web-1, ...; otherwise set a number.",
                id="django_flakeid.E016",
            )
        ]

    def test_e016_names_the_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "db.internal")
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "hostname")

        [error] = check_setting({})

        assert error.id == "django_flakeid.E016"
        assert error.msg == (
            "FLAKEID_DATACENTER_ID is 'hostname', but the host name 'db.internal' does not end "
            "with a number."
        )

    def test_hostname_with_a_number(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web-3")

        assert check_setting({"datacenter_id": "hostname", "machine_id": "hostname"}) == []

    @pytest.mark.parametrize("ttl", [0, -1, "30", True, math.nan, math.inf, 86_401])
    def test_e017_lease_ttl(self, ttl: object) -> None:
        assert check_setting({"lease_ttl": ttl}) == [
            Error(
                "FLAKEID['lease_ttl'] must be a number of seconds above 0 and at most 86400, "
                f"not {ttl!r}.",
                hint="Set FLAKEID['lease_ttl'] to e.g. 30; leases are renewed every third of it.",
                id="django_flakeid.E017",
            )
        ]

    def test_fractional_lease_ttl(self) -> None:
        assert check_setting({"lease_ttl": 3.5}) == []

    def test_e021_lease_ttl_too_short(self) -> None:
        assert check_setting({"lease_ttl": 1.5}) == [
            Error(
                "FLAKEID['lease_ttl'] is 1.5 s; renewals every 0.5 s cannot be kept up "
                "reliably, and a lease that lapses stops IDs.",
                hint="Set FLAKEID['lease_ttl'] to 3 seconds or more, e.g. 30.",
                id="django_flakeid.E021",
            )
        ]

    @pytest.mark.parametrize("database", ["nope", ["default"], {"default": {}}])
    def test_e018_lease_database(self, database: object) -> None:
        assert check_setting({"lease_database": database}) == [
            Error(
                f"FLAKEID['lease_database'] {database!r} is not the name of a database in "
                "DATABASES.",
                hint="Set it to one of 'default'.",
                id="django_flakeid.E018",
            )
        ]


class TestCheckLayoutLifetime:
    def test_valid(self) -> None:
        assert checks.check_layout_lifetime() == []

    def test_invalid_setting_left_to_check_setting(self) -> None:
        with override_settings(FLAKEID={"epoch_ms": "soon"}):
            assert checks.check_layout_lifetime() == []

    def test_e014_epoch_in_the_future(self) -> None:
        # 2100-01-01T00:00:00Z
        with override_settings(FLAKEID={"epoch_ms": 4102444800000}):
            result = checks.check_layout_lifetime()

        assert result == [
            Error(
                "The epoch 2100-01-01T00:00:00.000Z from setting FLAKEID['epoch_ms'] is in the "
                "future; no ID can be generated before then.",
                hint="Set FLAKEID['epoch_ms'] to a time in the past, e.g. 1577836800000 "
                "(2020-01-01).",
                id="django_flakeid.E014",
            )
        ]

    def test_e014_names_the_environment_variable(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "4102444800000")

        with override_settings(FLAKEID={}):
            [error] = checks.check_layout_lifetime()

        assert error.id == "django_flakeid.E014"
        assert "from environment FLAKEID_EPOCH_MS" in error.msg
        assert str(error.hint).startswith("Set FLAKEID_EPOCH_MS to a time in the past")

    def test_e015_layout_ran_out(self) -> None:
        # A 30-bit timestamp lasts about 12 days from its epoch, 2020-01-01.
        setting = {"timestamp_bits": 30, "sequence_bits": 23}

        with override_settings(FLAKEID=setting):
            result = checks.check_layout_lifetime()

        assert result == [
            Error(
                "The ID layout ran out at 2020-01-13T10:15:41.823Z: a 30-bit timestamp cannot "
                "hold the current time.",
                hint="A later epoch_ms or more timestamp_bits re-stamps times already used, "
                "so new IDs can repeat stored ones: use such a layout only for tables that "
                "start empty (see 'Changing the layout' in the README).",
                id="django_flakeid.E015",
            )
        ]

    def test_w001_runs_out_within_ten_years(self) -> None:
        # A 39-bit timestamp lasts about 17.4 years.
        epoch_ms = now_ms() + 9 * YEAR_MS - (1 << 39)
        setting = {"timestamp_bits": 39, "sequence_bits": 14, "epoch_ms": epoch_ms}

        with override_settings(FLAKEID=setting):
            [warning] = checks.check_layout_lifetime()

        assert isinstance(warning, Warning)
        assert warning.id == "django_flakeid.W001"
        assert warning.msg.startswith("The ID layout runs out at ")
        assert warning.msg.endswith(", less than 10 years from now.")
        assert warning.hint == (
            "After that time no ID can be generated. A later epoch_ms or more timestamp_bits "
            "re-stamps times already used, so new IDs can repeat stored ones: plan it for "
            "tables that start empty (see 'Changing the layout' in the README)."
        )

    def test_no_warning_beyond_ten_years(self) -> None:
        epoch_ms = now_ms() + 11 * YEAR_MS - (1 << 39)
        setting = {"timestamp_bits": 39, "sequence_bits": 14, "epoch_ms": epoch_ms}

        with override_settings(FLAKEID=setting):
            assert checks.check_layout_lifetime() == []


W002 = Warning(
    "Machine IDs are claimed per host ('auto') and no datacenter_id is set, so two hosts can "
    "generate the same IDs.",
    hint="Give each host its own FLAKEID_DATACENTER_ID (or 'datacenter_id': 'hostname' on a "
    "StatefulSet), or set FLAKEID['machine_id'] to 'lease'.",
    id="django_flakeid.W002",
)


def w003(value: int, source: str) -> Warning:
    return Warning(
        f"machine_id is fixed at {value} ({source}): only one process per host can generate "
        "IDs with it; others get NodeInUseError.",
        hint="If a host runs several worker processes, set FLAKEID['machine_id'] to 'lease' "
        "(or to 'auto', with a datacenter_id per host).",
        id="django_flakeid.W003",
    )


class TestCheckNodeIdentity:
    def test_invalid_setting_left_to_check_setting(self) -> None:
        with override_settings(FLAKEID=[]):
            assert checks.check_node_identity() == []

    def test_w002_default_configuration(self, settings: Any) -> None:
        del settings.FLAKEID

        assert checks.check_node_identity() == [W002]

    def test_w002_auto_without_a_datacenter(self) -> None:
        with override_settings(FLAKEID={"machine_id": "auto"}):
            assert checks.check_node_identity() == [W002]

    def test_w002_auto_from_the_environment(
        self, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        del settings.FLAKEID
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "auto")

        assert checks.check_node_identity() == [W002]

    def test_w003_fixed_in_the_setting(self) -> None:
        assert checks.check_node_identity() == [w003(7, "setting FLAKEID['machine_id']")]

    def test_w003_fixed_in_the_environment(
        self, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        del settings.FLAKEID
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "4")

        assert checks.check_node_identity() == [w003(4, "environment FLAKEID_MACHINE_ID")]

    def test_w003_fixed_by_the_hostname(self, monkeypatch: pytest.MonkeyPatch) -> None:
        set_hostname(monkeypatch, "web-3")

        with override_settings(FLAKEID={"machine_id": "hostname"}):
            result = checks.check_node_identity()

        assert result == [w003(3, "setting FLAKEID['machine_id'] = 'hostname' (web-3)")]

    def test_w003_even_with_a_datacenter(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 4, "machine_id": 0}):
            assert checks.check_node_identity() == [w003(0, "setting FLAKEID['machine_id']")]

    @pytest.mark.parametrize(
        "setting",
        [
            {"machine_id": "lease"},
            {"machine_id": "lease", "datacenter_id": 3},
            {"machine_id": "auto", "datacenter_id": 0},
            {"machine_id": "auto", "datacenter_id": 3},
        ],
    )
    def test_no_warning(self, setting: dict[str, Any]) -> None:
        with override_settings(FLAKEID=setting):
            assert checks.check_node_identity() == []

    def test_no_warning_for_auto_with_a_datacenter_from_the_environment(
        self, settings: Any, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        del settings.FLAKEID
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "2")

        assert checks.check_node_identity() == []

    def test_no_warning_for_auto_with_a_datacenter_from_the_hostname(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        set_hostname(monkeypatch, "web-3")

        with override_settings(FLAKEID={"datacenter_id": "hostname"}):
            assert checks.check_node_identity() == []


class TestRegistration:
    def test_check_command_reports_setting_errors(self) -> None:
        with (
            override_settings(FLAKEID={"machine_idd": 1}),
            pytest.raises(SystemCheckError) as excinfo,
        ):
            call_command("check", stdout=StringIO(), stderr=StringIO())

        assert "(django_flakeid.E002) FLAKEID has an unknown key 'machine_idd'." in str(
            excinfo.value
        )

    def test_check_command_reports_lifetime_errors(self) -> None:
        with (
            override_settings(FLAKEID={"epoch_ms": 4102444800000}),
            pytest.raises(SystemCheckError) as excinfo,
        ):
            call_command("check", stdout=StringIO(), stderr=StringIO())

        assert "django_flakeid.E014" in str(excinfo.value)

    def test_check_command_reports_lease_errors(self) -> None:
        with (
            override_settings(FLAKEID={"lease_database": ["default", "other"]}),
            pytest.raises(SystemCheckError) as excinfo,
        ):
            call_command("check", stdout=StringIO(), stderr=StringIO())

        assert (
            "(django_flakeid.E018) FLAKEID['lease_database'] ['default', 'other'] is not the name"
        ) in str(excinfo.value)

    def test_deploy_warning_only_with_deploy(self, settings: Any) -> None:
        del settings.FLAKEID
        plain, deploy = StringIO(), StringIO()

        call_command("check", stdout=StringIO(), stderr=plain)
        call_command("check", "--deploy", stdout=StringIO(), stderr=deploy)

        assert "django_flakeid.W002" not in plain.getvalue()
        assert "django_flakeid.W003" not in plain.getvalue()
        assert (
            "(django_flakeid.W002) Machine IDs are claimed per host ('auto') and no "
            "datacenter_id is set" in deploy.getvalue()
        )
        assert "django_flakeid.W003" not in deploy.getvalue()

    def test_deploy_warns_of_a_fixed_machine(self) -> None:
        deploy = StringIO()

        call_command("check", "--deploy", stdout=StringIO(), stderr=deploy)

        assert "(django_flakeid.W003) machine_id is fixed at 7" in deploy.getvalue()
        assert "django_flakeid.W002" not in deploy.getvalue()


class TestBackfillNode:
    def test_e019_the_backfill_node(self) -> None:
        assert check_setting({"datacenter_id": 31, "machine_id": 31}) == [
            Error(
                "datacenter_id 31 with machine_id 31 is the node set aside for backfilled IDs; "
                "no live process may generate IDs with it.",
                hint="Set FLAKEID['machine_id'] to a number from 0 to 30.",
                id="django_flakeid.E019",
            )
        ]

    def test_e019_from_the_environment(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "7")
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "7")

        [error] = check_setting({"preset": "high_throughput"})

        assert error.id == "django_flakeid.E019"
        assert error.hint == "Set FLAKEID_MACHINE_ID to a number from 0 to 6."

    @pytest.mark.parametrize("machine", ["auto", "lease", 0])
    def test_e019_a_datacenter_with_one_machine(self, machine: object) -> None:
        widths = {"timestamp_bits": 41, "datacenter_bits": 3, "machine_bits": 0}
        setting = {**widths, "sequence_bits": 19, "datacenter_id": 7, "machine_id": machine}

        [error] = check_setting(setting)

        assert error.id == "django_flakeid.E019"
        assert error.hint == "Set FLAKEID['datacenter_id'] to a number from 0 to 6."

    @pytest.mark.parametrize(
        "setting",
        [
            {"datacenter_id": 31, "machine_id": 30},
            {"datacenter_id": 30, "machine_id": 31},
            {"datacenter_id": 31, "machine_id": "auto"},
            {"datacenter_id": 31, "machine_id": "lease"},
            {"preset": "minimal"},
        ],
    )
    def test_other_nodes_are_fine(self, setting: dict[str, Any]) -> None:
        assert check_setting(setting) == []

    def test_reported_by_manage_py_check(self) -> None:
        with (
            override_settings(FLAKEID={"datacenter_id": 31, "machine_id": 31}),
            pytest.raises(SystemCheckError) as excinfo,
        ):
            call_command("check", stdout=StringIO(), stderr=StringIO())

        assert "(django_flakeid.E019) datacenter_id 31 with machine_id 31 is the node" in str(
            excinfo.value
        )


class TestCheckLockDir:
    def test_the_suite_folder_is_fine(self) -> None:
        assert checks.check_lock_dir() == []

    def test_e022_relative_folder(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_LOCK_DIR", "run/locks")

        [error] = checks.check_lock_dir()

        assert error.id == "django_flakeid.E022"
        assert "run/locks" in error.msg
        assert error.hint
        assert "absolute" in (error.msg + error.hint)

    def test_e022_folder_writable_by_everyone_without_sticky_bit(
        self, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
    ) -> None:
        folder = tmp_path / "locks"
        folder.mkdir()
        folder.chmod(0o777)
        monkeypatch.setenv("FLAKEID_LOCK_DIR", str(folder))

        [error] = checks.check_lock_dir()

        assert error.id == "django_flakeid.E022"
        assert str(folder) in error.msg

    def test_reported_by_the_check_command(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_LOCK_DIR", "relative")

        with pytest.raises(SystemCheckError) as excinfo:
            call_command("check", stdout=StringIO(), stderr=StringIO())

        assert "(django_flakeid.E022)" in str(excinfo.value)


# Partitioned models ----------------------------------------------------------------------------

PARTITIONING = connection.vendor in {"postgresql", "mysql"}
needs_partitions = pytest.mark.skipif(
    not PARTITIONING,
    reason=f"{connection.vendor} cannot partition: the check reads partitions PostgreSQL or "
    "MariaDB made",
)


@pytest.fixture
def registry() -> Iterator[Apps]:
    """A registry of its own for the models a test defines, under the label partapp."""
    with isolate_apps("tests.partapp") as isolated:
        assert isolated is not None
        yield isolated


def by_month(name: str = "by_month") -> SnowflakePartitions:
    return SnowflakePartitions(name=name, interval="month")


def define(
    name: str,
    *,
    partitioned: bool = True,
    meta: dict[str, Any] | None = None,
    **fields: Any,
) -> type[models.Model]:
    """A model of partapp named ``name``, keyed by a SnowflakeField unless ``fields`` say."""
    options: dict[str, Any] = {"app_label": "partapp", **(meta or {})}
    if partitioned:
        options["constraints"] = [*options.get("constraints", ()), by_month()]
    attrs = {
        "__module__": "tests.partapp.models",
        "id": SnowflakeField(primary_key=True),
        **fields,
        "Meta": type("Meta", (), options),
    }
    return type(name, (models.Model,), attrs)


def partapp(registry: Apps) -> list[AppConfig]:
    return [registry.get_app_config("partapp")]


def as_vendor(monkeypatch: pytest.MonkeyPatch, vendor: str, display_name: str) -> None:
    monkeypatch.setattr(connection, "vendor", vendor)
    monkeypatch.setattr(connection, "display_name", display_name)


def ordinary(registry: Apps) -> list[Any]:
    configs = partapp(registry)
    return [
        *checks.check_partition_foreign_keys(configs),
        *checks.check_partition_unique(configs),
        *checks.check_partition_key(configs),
    ]


class TestPartitionDeclarations:
    def test_a_well_made_partitioned_model(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        define(
            "Good",
            kind=models.CharField(max_length=10),
            ref=SnowflakeField(null=True),
            meta={
                "unique_together": [("kind", "id")],
                "constraints": [
                    models.UniqueConstraint(fields=["kind", "id"], name="kind_id"),
                    models.UniqueConstraint(Lower("kind"), F("id"), name="lower_kind_id"),
                ],
            },
        )

        assert ordinary(registry) == []

    def test_an_unpartitioned_model_may_be_unique_anyhow(self, registry: Apps) -> None:
        define(
            "Plain",
            partitioned=False,
            id=models.BigAutoField(primary_key=True),
            code=models.CharField(max_length=10, unique=True),
        )

        assert ordinary(registry) == []

    def test_e204_key_that_is_not_a_snowflake_field(self, registry: Apps) -> None:
        model = define("Counted", id=models.BigAutoField(primary_key=True))

        assert checks.check_partition_key(partapp(registry)) == [
            Error(
                "The table is partitioned by its primary key, which is a BigAutoField, not a "
                "SnowflakeField: it holds no time.",
                hint="Give the model a SnowflakeField primary key (or a SnowflakeAutoField), or "
                "remove SnowflakePartitions from Meta.constraints.",
                obj=model,
                id="django_flakeid.E204",
            )
        ]

    def test_the_auto_field_of_the_setting_is_a_snowflake_field(self, registry: Apps) -> None:
        model = define("Auto", id=None)

        assert type(model._meta.pk).__name__ == "SnowflakeAutoField"
        assert checks.check_partition_key(partapp(registry)) == []

    def test_e204_declared_twice(self, registry: Apps) -> None:
        model = define("Twice", meta={"constraints": [by_month("first")]})

        assert checks.check_partition_key(partapp(registry)) == [
            Error(
                "Meta.constraints holds 2 SnowflakePartitions ('first', 'by_month'); a table is "
                "cut one way.",
                hint="Keep one SnowflakePartitions.",
                obj=model,
                id="django_flakeid.E204",
            )
        ]

    def test_a_proxy_is_its_concrete_models_business(self, registry: Apps) -> None:
        concrete = define("Concrete", id=models.BigAutoField(primary_key=True))
        type(
            "Proxied",
            (concrete,),
            {"__module__": "tests.partapp.models", "Meta": type("Meta", (), {"proxy": True})},
        )

        assert [error.obj for error in checks.check_partition_key(partapp(registry))] == [concrete]

    def test_e203_unique_field(self, registry: Apps) -> None:
        model = define("Coded", code=models.CharField(max_length=10, unique=True))

        assert checks.check_partition_unique(partapp(registry)) == [
            Error(
                "The field is unique, but the table is partitioned: PostgreSQL and MariaDB "
                "require every unique index of a partitioned table to include the partition "
                "key, the primary key 'id'.",
                hint="Remove the uniqueness, or add 'id' to it (which makes only the pair unique).",
                obj=model._meta.get_field("code"),
                id="django_flakeid.E203",
            )
        ]

    def test_e203_one_to_one_and_unique_snowflake_field(self, registry: Apps) -> None:
        other = define("Other", partitioned=False)
        model = define(
            "Linked",
            other=models.OneToOneField(other, models.CASCADE, db_constraint=False),
            public=SnowflakeField(unique=True),
        )

        found = checks.check_partition_unique(partapp(registry))

        assert [(error.id, error.obj) for error in found] == [
            ("django_flakeid.E203", model._meta.get_field("other")),
            ("django_flakeid.E203", model._meta.get_field("public")),
        ]

    def test_e203_unique_together(self, registry: Apps) -> None:
        model = define(
            "Paired",
            kind=models.CharField(max_length=10),
            day=models.DateField(),
            meta={"unique_together": [("kind", "day"), ("kind", "id")]},
        )

        [error] = checks.check_partition_unique(partapp(registry))

        assert error.msg.startswith(
            "unique_together ('kind', 'day') leaves out the primary key, but the table is "
            "partitioned: "
        )
        assert (error.id, error.obj) == ("django_flakeid.E203", model)

    @pytest.mark.parametrize(
        "constraint",
        [
            models.UniqueConstraint(fields=["kind"], name="kind"),
            models.UniqueConstraint(
                fields=["kind"], condition=Q(kind__startswith="a"), name="kind"
            ),
            models.UniqueConstraint(Lower("kind"), name="kind"),
            models.UniqueConstraint(Lower("kind"), F("ref"), name="kind"),
        ],
    )
    def test_e203_unique_constraint(
        self, registry: Apps, constraint: models.UniqueConstraint
    ) -> None:
        model = define(
            "Constrained",
            kind=models.CharField(max_length=10),
            ref=SnowflakeField(null=True),
            meta={"constraints": [constraint]},
        )

        [error] = checks.check_partition_unique(partapp(registry))

        assert error.msg.startswith(
            "The unique constraint 'kind' leaves out the primary key, but the table is "
            "partitioned: "
        )
        assert (error.id, error.obj) == ("django_flakeid.E203", model)

    def test_a_unique_constraint_through_the_key_attname(self, registry: Apps) -> None:
        other = define("Target", partitioned=False)
        define(
            "Keyed",
            id=models.ForeignKey(other, models.CASCADE, primary_key=True, db_constraint=False),
            kind=models.CharField(max_length=10),
            meta={"constraints": [models.UniqueConstraint(fields=["kind", "id_id"], name="k")]},
        )

        assert checks.check_partition_unique(partapp(registry)) == []


class TestPartitionSupport:
    def test_w201_a_database_that_cannot_partition(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "sqlite", "SQLite")
        model = define("Lonely")

        assert runway(app_configs=partapp(registry)) == [
            Warning(
                "SnowflakePartitions does nothing on database 'default' (SQLite): the table "
                "stays whole there.",
                hint="Time partitions need PostgreSQL or MariaDB; elsewhere the model works "
                "unpartitioned and 'manage.py flakeid partitions' refuses to run.",
                obj=model,
                id="django_flakeid.W201",
            )
        ]

    @needs_partitions
    @pytest.mark.django_db
    def test_not_on_a_database_that_partitions(self, registry: Apps) -> None:
        define("Lonely")

        assert runway(app_configs=partapp(registry)) == []

    def test_only_for_the_databases_checked(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "sqlite", "SQLite")
        define("Lonely")

        assert runway(app_configs=partapp(registry), databases=["other"]) == []
        assert checks.check_partition_runway(app_configs=partapp(registry)) == []

    def test_the_database_the_router_writes_to(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "postgresql", "PostgreSQL")
        define("Routed")
        monkeypatch.setattr(router, "db_for_write", lambda model: "other")
        monkeypatch.setitem(
            connections.settings, "other", {"ENGINE": "django.db.backends.sqlite3", "NAME": ""}
        )
        try:
            [warning] = runway(app_configs=partapp(registry), databases=["other"])
        finally:
            del connections["other"]

        assert warning.msg.startswith(
            "SnowflakePartitions does nothing on database 'other' (SQLite): "
        )


class TestPartitionForeignKeys:
    def test_e202_a_key_to_a_partitioned_model(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        event = define("Happening")
        note = define("Note", partitioned=False, event=models.ForeignKey(event, models.CASCADE))

        assert checks.check_partition_foreign_keys(partapp(registry)) == [
            Error(
                "The field is a foreign key to partapp.Happening, whose table is partitioned: "
                "MariaDB refuses foreign key constraints to and from partitioned tables.",
                hint="Pass db_constraint=False to the field: Django follows, joins and cascades "
                "the relation the same, without a constraint in the database.",
                obj=note._meta.get_field("event"),
                id="django_flakeid.E202",
            )
        ]

    def test_e202_a_key_of_a_partitioned_model(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        sensor = define("Gauge", partitioned=False)
        reading = define("Measure", sensor=models.ForeignKey(sensor, models.CASCADE))

        [error] = checks.check_partition_foreign_keys(partapp(registry))

        assert error.msg.startswith(
            "The field is a foreign key of partapp.Measure, whose table is partitioned: "
        )
        assert (error.id, error.obj) == ("django_flakeid.E202", reading._meta.get_field("sensor"))

    def test_e202_a_self_reference(self, registry: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        model = define("Thread", parent=models.ForeignKey("self", models.CASCADE, null=True))

        [error] = checks.check_partition_foreign_keys(partapp(registry))

        assert error.msg.startswith("The field is a foreign key to partapp.Thread, whose ")
        assert error.obj == model._meta.get_field("parent")

    def test_e202_many_to_many_tables(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        tag = define("Tag", partitioned=False)
        post = define("Post", tags=models.ManyToManyField(tag))
        reader = define("Reader", partitioned=False, posts=models.ManyToManyField(post))

        found = checks.check_partition_foreign_keys(partapp(registry))

        assert [(error.obj, error.msg.split(", whose")[0]) for error in found] == [
            (
                post._meta.get_field("tags"),
                "The field's table 'partapp_post_tags' has a foreign key to partapp.Post",
            ),
            (
                reader._meta.get_field("posts"),
                "The field's table 'partapp_reader_posts' has a foreign key to partapp.Post",
            ),
        ]

    def test_e202_an_explicit_through_model(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        tag = define("Label", partitioned=False)
        item = define("Item")
        through = define(
            "Labelled",
            partitioned=False,
            item=models.ForeignKey(item, models.CASCADE),
            label=models.ForeignKey(tag, models.CASCADE),
        )
        define(
            "Holder",
            partitioned=False,
            items=models.ManyToManyField(item, through=through),
        )

        found = checks.check_partition_foreign_keys(partapp(registry))

        assert [error.obj for error in found] == [through._meta.get_field("item")]

    def test_without_database_constraints(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        tag = define("Topic", partitioned=False)
        post = define(
            "Story",
            tags=models.ManyToManyField(tag, db_constraint=False),
            topic=models.ForeignKey(tag, models.CASCADE, db_constraint=False, related_name="+"),
        )
        define(
            "Comment",
            partitioned=False,
            story=models.ForeignKey(post, models.CASCADE, db_constraint=False),
            stories=models.ManyToManyField(post, db_constraint=False, related_name="+"),
        )

        assert checks.check_partition_foreign_keys(partapp(registry)) == []

    def test_postgresql_takes_them(self, registry: Apps, monkeypatch: pytest.MonkeyPatch) -> None:
        as_vendor(monkeypatch, "postgresql", "PostgreSQL")
        event = define("Occasion")
        define("Remark", partitioned=False, event=models.ForeignKey(event, models.CASCADE))

        assert checks.check_partition_foreign_keys(partapp(registry)) == []

    def test_only_the_apps_checked_are_reported(
        self, registry: Apps, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")
        define("Partitioned")
        unchecked = [registry.get_app_config("partapp")]
        monkeypatch.setattr(unchecked[0], "label", "elsewhere")
        define("Pointer", partitioned=False, to=models.ForeignKey("Partitioned", models.CASCADE))

        assert checks.check_partition_foreign_keys(unchecked) == []

    def test_the_test_app_passes(self, monkeypatch: pytest.MonkeyPatch) -> None:
        as_vendor(monkeypatch, "mysql", "MariaDB")

        assert checks.check_partition_foreign_keys() == []


PARTAPP_TABLES = {"partapp.Event": "partapp_event", "partapp.Reading": "partapp_reading"}


def newest_end(label: str) -> dt.datetime:
    """Where the newest partition migrate made ends (the catch-all aside)."""
    backend = backend_for(connection)
    assert backend is not None
    partitions = backend.partitions(connection, PARTAPP_TABLES[label])
    top = max(part.high for part in partitions if part.high is not None)
    return Layout().decode(top).datetime


def runway(now: dt.datetime | None = None, **kwargs: Any) -> list[Any]:
    options: dict[str, Any] = {"databases": ["default"], **kwargs}
    return checks.check_partition_runway(now=now, **options)


@needs_partitions
@pytest.mark.django_db
class TestPartitionRunway:
    def test_as_migrate_made_them(self) -> None:
        assert runway() == []

    def test_w205_running_out(self) -> None:
        end = newest_end("partapp.Event")
        # Three months ahead are kept: with the newest ending on 1 June, from 1 March on.
        now = (end - dt.timedelta(days=80)).replace(day=1)

        found = runway(now)

        assert found == [
            Warning(
                "The partitions of table 'partapp_event' end at "
                f"{end:%Y-%m-%d}T00:00:00.000Z, fewer than 3 months after the current month.",
                hint="Run 'manage.py flakeid partitions partapp.Event' daily, from cron: it "
                "creates the partitions up to 3 months ahead and moves rows out of the "
                "catch-all.",
                obj=Event,
                id="django_flakeid.W205",
            ),
            *(w for w in found if w.obj is Reading),
        ]

    def test_the_day_before_is_fine(self) -> None:
        end = newest_end("partapp.Event")
        now = (end - dt.timedelta(days=80)).replace(day=1) - dt.timedelta(milliseconds=1)

        assert [w for w in runway(now) if w.obj is Event] == []

    def test_w205_days(self) -> None:
        end = newest_end("partapp.Reading")
        # Two days ahead: the newest ends at the start of the day after them.
        [warning] = [w for w in runway(end - dt.timedelta(days=2)) if w.obj is Reading]

        assert warning.msg == (
            f"The partitions of table 'partapp_reading' end at {end:%Y-%m-%d}T00:00:00.000Z, "
            "fewer than 2 days after the current day."
        )
        assert runway(end - dt.timedelta(days=2, milliseconds=1)) == []

    def test_w205_nothing_for_now(self) -> None:
        end = newest_end("partapp.Reading")

        [warning] = [w for w in runway(end) if w.obj is Reading]

        assert warning.msg == (
            "No partition of table 'partapp_reading' holds the IDs made now: new rows go to "
            "its catch-all."
        )

    def test_w205_rows_in_the_catch_all(self) -> None:
        end = newest_end("partapp.Event")
        Event.objects.create(id=Layout().min_id_at(end) + 1, kind="early")

        assert runway() == [
            Warning(
                "The catch-all partition "
                f"{'partapp_event_default' if connection.vendor == 'postgresql' else 'pmax'!r} "
                "of table 'partapp_event' holds rows: they belong in partitions of their own, "
                "and creating one has to move them, holding a lock while it does.",
                hint="Run 'manage.py flakeid partitions partapp.Event' daily, from cron: it "
                "creates the partitions up to 3 months ahead and moves rows out of the "
                "catch-all.",
                obj=Event,
                id="django_flakeid.W205",
            )
        ]

    def test_a_row_just_below_the_catch_all(self) -> None:
        end = newest_end("partapp.Event")
        Event.objects.create(id=Layout().min_id_at(end) - 1, kind="late")

        assert runway() == []

    def test_only_the_databases_named(self) -> None:
        end = newest_end("partapp.Event")

        assert checks.check_partition_runway(now=end) == []
        assert checks.check_partition_runway(databases=["other"], now=end) == []

    def test_a_table_migrate_has_yet_to_partition(self, registry: Apps) -> None:
        define("Unmigrated")

        assert runway(newest_end("partapp.Event"), app_configs=partapp(registry)) == []

    def test_a_table_that_does_not_match_the_model_yet(self, registry: Apps) -> None:
        # As migrate finds it before the migration that renames the key column has run.
        Event.objects.create(id=Layout().min_id_at(newest_end("partapp.Event")), kind="early")
        define(
            "Drifted",
            id=SnowflakeField(primary_key=True, db_column="event_id"),
            meta={"db_table": "partapp_event"},
        )

        assert runway(app_configs=partapp(registry)) == []
        assert [w.obj for w in runway()] == [Event]  # the query still works afterwards

    def test_an_invalid_setting_is_left_to_check_setting(self) -> None:
        with override_settings(FLAKEID={"preset": "nope"}):
            assert runway(newest_end("partapp.Event")) == []

    @pytest.mark.skipif(
        connection.vendor != "mysql",
        reason="the check tells MySQL from MariaDB by asking the server: needs a MariaDB one",
    )
    def test_w201_mysql(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(connection, "mysql_is_mariadb", False)
        monkeypatch.setattr(connection, "display_name", "MySQL")

        found = runway()

        assert [(w.id, w.obj) for w in found] == [
            ("django_flakeid.W201", Event),
            ("django_flakeid.W201", Reading),
        ]
        assert found[0].msg == (
            "SnowflakePartitions does nothing on database 'default' (MySQL): the table stays "
            "whole there."
        )


class TestPartitionRegistration:
    def test_the_model_checks_run_with_every_check_and_the_table_checks_with_a_database(
        self,
    ) -> None:
        tags = {
            getattr(check, "__name__", ""): set(check.tags) for check in check_registry.get_checks()
        }

        for name in (
            "check_partition_foreign_keys",
            "check_partition_unique",
            "check_partition_key",
        ):
            assert tags[name] == {Tags.models}
        assert tags["check_partition_runway"] == {Tags.database}

    def test_check_database_reports_a_database_that_cannot_partition(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        as_vendor(monkeypatch, "oracle", "Oracle")
        plain, database = StringIO(), StringIO()

        call_command("check", stdout=StringIO(), stderr=plain)
        call_command("check", "--database", "default", stdout=StringIO(), stderr=database)

        assert "django_flakeid.W201" not in plain.getvalue()
        assert (
            "partapp.Event: (django_flakeid.W201) SnowflakePartitions does nothing on database "
            "'default' (Oracle): the table stays whole there." in database.getvalue()
        )

    @needs_partitions
    @pytest.mark.django_db
    def test_check_database_reports_the_partitions(self) -> None:
        Event.objects.create(id=Layout().min_id_at(newest_end("partapp.Event")), kind="early")
        plain, database = StringIO(), StringIO()

        call_command("check", stdout=StringIO(), stderr=plain)
        call_command("check", "--database", "default", stdout=StringIO(), stderr=database)

        assert "django_flakeid.W205" not in plain.getvalue()
        assert "partapp.Event: (django_flakeid.W205) The catch-all partition" in database.getvalue()
