from __future__ import annotations

import datetime as dt
import json
import os
import re
import subprocess
import sys
from contextlib import nullcontext
from io import StringIO
from pathlib import Path
from typing import Any

import pytest
from django.conf import global_settings
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError
from django.test import override_settings

from django_flakeid import conf
from django_flakeid.errors import FlakeIDError
from django_flakeid.layout import MAX_ID, Layout
from django_flakeid.management.commands.flakeid import GENERATE_BATCH
from tests.testapp.models import LegacyEvent

ROOT = Path(__file__).resolve().parent.parent

# Stamped 2024-03-05T06:07:08.009Z by datacenter 1, machine 7 (tests.settings), sequence 2.
ORDER_ID = 552733887206420482
# The same moment with the "minimal" preset (no node bits), sequence 5.
MINIMAL_ID = 134944796681221
# The smallest value read as a Snowflake ID with the twitter layout: 2020-01-02T00:00:00.000Z.
FIRST_ID = 362387865600000


def run(*args: str, **options: Any) -> str:
    stdout, stderr = StringIO(), StringIO()
    call_command("flakeid", *args, stdout=stdout, stderr=stderr, **options)
    assert stderr.getvalue() == ""
    return stdout.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as excinfo:
        run(*args)
    return str(excinfo.value)


def command_line_environ() -> dict[str, str]:
    return {**os.environ, "DJANGO_SETTINGS_MODULE": "tests.settings", "PYTHONPATH": str(ROOT)}


# Runs the command given in its arguments, then reports the process's own peak memory.
PEAK_MEMORY = """
import resource, sys
from django.core.management import execute_from_command_line
execute_from_command_line(["manage.py", "flakeid", *sys.argv[1:]])
sys.stdout.flush()
print("peak", resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, file=sys.stderr)
"""


def generate_in_a_process(count: int, output: Path) -> int:
    """The peak memory, in bytes, of a new process writing ``count`` IDs in JSON to output."""
    with output.open("w") as stdout:
        result = subprocess.run(
            [sys.executable, "-c", PEAK_MEMORY, "generate", f"-n{count}", "--format=json"],
            cwd=ROOT,
            env=command_line_environ(),
            stdout=stdout,
            stderr=subprocess.PIPE,
            text=True,
            check=True,
        )
    # Coverage, when it measures the process, may warn on stderr before the line we want.
    peak = re.search(r"^peak ([0-9]+)$", result.stderr, re.MULTILINE)
    assert peak, result.stderr
    # ru_maxrss is in kilobytes on Linux, in bytes on macOS.
    return int(peak[1]) * (1 if sys.platform == "darwin" else 1024)


def scan_json_ids(path: Path) -> int:
    """Check the JSON array of ID strings at path line by line, in constant memory; its length.

    It accepts only what json.dumps(ids, indent=2) writes for increasing ID strings.
    """
    with path.open() as lines:
        assert next(lines) == "[\n"
        previous, count, closed = -1, 0, False
        for line in lines:
            assert not closed, "the array goes on after its last item"
            match = re.fullmatch(r'  "([0-9]+)"(,?)\n', line)
            assert match, line
            number = int(match[1])
            assert str(number) == match[1]
            assert number > previous
            previous, count, closed = number, count + 1, not match[2]
            if closed:
                break
        assert next(lines) == "]\n"
        assert next(lines, None) is None
    return count


class TestDecode:
    def test_text(self) -> None:
        assert run("decode", str(ORDER_ID)) == (
            "552733887206420482\n"
            "  generated at  2024-03-05T06:07:08.009Z\n"
            "  local time    2024-03-05T06:07:08.009+00:00 (UTC)\n"
            "  datacenter    1\n"
            "  machine       7\n"
            "  sequence      2\n"
        )

    def test_several_ids_in_the_current_time_zone(self) -> None:
        with override_settings(TIME_ZONE="Asia/Tokyo"):
            output = run("decode", str(ORDER_ID), str(FIRST_ID))

        assert output == (
            "552733887206420482\n"
            "  generated at  2024-03-05T06:07:08.009Z\n"
            "  local time    2024-03-05T15:07:08.009+09:00 (Asia/Tokyo)\n"
            "  datacenter    1\n"
            "  machine       7\n"
            "  sequence      2\n"
            "\n"
            "362387865600000\n"
            "  generated at  2020-01-02T00:00:00.000Z\n"
            "  local time    2020-01-02T09:00:00.000+09:00 (Asia/Tokyo)\n"
            "  datacenter    0\n"
            "  machine       0\n"
            "  sequence      0\n"
        )

    def test_json(self) -> None:
        output = run("decode", str(ORDER_ID), "--format", "json")

        assert json.loads(output) == [
            {
                "id": str(ORDER_ID),
                "timestamp_ms": 1709618828009,
                "generated_at": "2024-03-05T06:07:08.009Z",
                "local_time": "2024-03-05T06:07:08.009+00:00",
                "datacenter_id": 1,
                "machine_id": 7,
                "sequence": 2,
            }
        ]

    def test_preset_from_the_command_line(self) -> None:
        output = run("decode", str(MINIMAL_ID), "--preset", "minimal", "--format", "json")

        [decoded] = json.loads(output)
        # A string below 2**53 too: a script reads every ID the same way.
        assert decoded["id"] == str(MINIMAL_ID)
        assert decoded["generated_at"] == "2024-03-05T06:07:08.009Z"
        assert (decoded["datacenter_id"], decoded["machine_id"], decoded["sequence"]) == (0, 0, 5)

    def test_widths_and_epoch_from_the_command_line(self) -> None:
        # Epoch 1970: the timestamp field holds Unix milliseconds.
        uid = (1709618828009 << 22) | (3 << 12) | 1
        output = run(
            "decode",
            str(uid),
            "--timestamp-bits=41",
            "--datacenter-bits=0",
            "--machine-bits=10",
            "--sequence-bits=12",
            "--epoch-ms=0",
            "--format=json",
        )

        [decoded] = json.loads(output)
        assert decoded["generated_at"] == "2024-03-05T06:07:08.009Z"
        assert (decoded["datacenter_id"], decoded["machine_id"], decoded["sequence"]) == (0, 3, 1)

    def test_partial_override_takes_the_rest_from_the_setting(self) -> None:
        uid = (86_400_000 << 23) | 4096  # a day after the epoch, in 13 sequence bits
        output = run(
            "decode", str(uid), "--timestamp-bits=40", "--sequence-bits=13", "--format=json"
        )

        [decoded] = json.loads(output)

        assert (decoded["machine_id"], decoded["sequence"]) == (0, 4096)
        assert decoded["generated_at"] == "2020-01-02T00:00:00.000Z"

    def test_epoch_alone_from_the_command_line(self) -> None:
        uid = 86_400_001 << 22
        [decoded] = json.loads(run("decode", str(uid), "--epoch-ms=0", "--format=json"))

        assert decoded["generated_at"] == "1970-01-02T00:00:00.001Z"

    def test_complete_override_works_with_a_broken_setting(self) -> None:
        with override_settings(FLAKEID="broken"):
            output = run("decode", str(MINIMAL_ID), "--preset=minimal", "--epoch-ms=1577836800000")

        assert "  sequence      5\n" in output

    def test_far_future_has_no_local_time(self) -> None:
        output = run("decode", str(2**63 - 1), "--preset", "minimal")

        assert "  generated at  +287446-10-13T08:59:00.991Z\n" in output
        assert "  local time    -\n" in output

    @pytest.mark.parametrize(
        ("text", "message"),
        [
            ("abc", "'abc' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            ("-5", "'-5' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            ("", "'' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            ("1.5", "'1.5' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            (
                "9223372036854775808",
                "'9223372036854775808' is not an ID: IDs go from 0 to 9223372036854775807.",
            ),
            (
                " 123 ",
                "' 123 ' is not an ID: expected a whole number from 0 to 9223372036854775807.",
            ),
            ("+12", "'+12' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            ("١٢", "'١٢' is not an ID: expected a whole number from 0 to 9223372036854775807."),
            (
                "9" * 5000,
                "'99999999999999999999...9999999999 (5000 characters)' is not an ID: IDs go "
                "from 0 to 9223372036854775807.",
            ),
        ],
    )
    def test_bad_id(self, text: str, message: str) -> None:
        assert fails("decode", "1", text) == message

    def test_leading_zeros(self) -> None:
        padded = "0" * 5000 + str(ORDER_ID)
        assert json.loads(run("decode", padded, "--format", "json"))[0]["id"] == str(ORDER_ID)

    def test_unknown_preset(self) -> None:
        assert fails("decode", "1", "--preset", "twiter") == (
            "Unknown preset 'twiter'; choose one of twitter, minimal, single_dc, large_cluster, "
            "high_throughput. Did you mean 'twitter'?"
        )

    def test_invalid_layout(self) -> None:
        assert fails("decode", "1", "--sequence-bits", "14") == (
            "Invalid layout: bit widths must sum to 63, got 65 (41 + 5 + 5 + 14)."
        )

    def test_broken_setting(self) -> None:
        with override_settings(FLAKEID={"preset": "twiter"}):
            message = fails("decode", "1")

        assert message == (
            "Invalid FLAKEID: FLAKEID['preset'] 'twiter' is not a known preset. "
            "Run 'manage.py check' for details."
        )

    def test_id_required(self) -> None:
        assert fails("decode") == "Error: the following arguments are required: id"


def legacy_line(first: int = FIRST_ID) -> str:
    return (
        f"  legacy key    an integer key from before Snowflake IDs (they start at {first}): it "
        "holds no time"
    )


class TestDecodeLegacyKeys:
    def test_text(self) -> None:
        assert run("decode", "42") == f"42\n{legacy_line()}\n"

    def test_among_snowflake_ids(self) -> None:
        output = run("decode", str(FIRST_ID - 1), str(FIRST_ID), "0")

        assert output == (
            f"362387865599999\n{legacy_line()}\n"
            "\n"
            "362387865600000\n"
            "  generated at  2020-01-02T00:00:00.000Z\n"
            "  local time    2020-01-02T00:00:00.000+00:00 (UTC)\n"
            "  datacenter    0\n"
            "  machine       0\n"
            "  sequence      0\n"
            "\n"
            f"0\n{legacy_line()}\n"
        )

    def test_json(self) -> None:
        output = run("decode", "42", str(ORDER_ID), "--format", "json")

        legacy, snowflake = json.loads(output)
        assert legacy == {"id": "42", "legacy": True}
        assert snowflake["generated_at"] == "2024-03-05T06:07:08.009Z"
        assert "legacy" not in snowflake

    def test_the_boundary_is_the_layout_the_ids_are_read_with(self) -> None:
        first_minimal = Layout(
            timestamp_bits=53, datacenter_bits=0, machine_bits=0, sequence_bits=10
        ).min_snowflake_id

        assert run("decode", str(MINIMAL_ID)) == f"{MINIMAL_ID}\n{legacy_line()}\n"
        assert "  sequence      5\n" in run("decode", str(MINIMAL_ID), "--preset", "minimal")
        assert run("decode", str(first_minimal - 1), "--preset=minimal") == (
            f"{first_minimal - 1}\n{legacy_line(first_minimal)}\n"
        )

    def test_an_epoch_from_the_command_line_moves_the_boundary(self) -> None:
        # Epoch 1970: Snowflake IDs start a day after it, here as with any epoch.
        first = 86_400_000 << 22

        assert json.loads(run("decode", str(first - 1), "--epoch-ms=0", "--format=json")) == [
            {"id": str(first - 1), "legacy": True}
        ]
        [decoded] = json.loads(run("decode", str(first), "--epoch-ms=0", "--format=json"))
        assert decoded["generated_at"] == "1970-01-02T00:00:00.000Z"


class TestGenerate:
    def test_one(self) -> None:
        output = run("generate")

        [line] = output.splitlines()
        decoded = conf.get_layout().decode(int(line))
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)

    def test_many_in_order(self) -> None:
        lines = run("generate", "-n", "5").splitlines()

        ids = [int(line) for line in lines]
        assert len(ids) == 5
        assert ids == sorted(set(ids))

    def test_json(self) -> None:
        output = run("generate", "--count=3", "--format=json")

        ids = json.loads(output)
        assert [type(uid) for uid in ids] == [str, str, str]
        assert output == json.dumps(ids, indent=2) + "\n"
        decoded = conf.get_layout().decode(int(ids[0]))
        assert (decoded.datacenter_id, decoded.machine_id) == (1, 7)

    @pytest.mark.parametrize("count", [GENERATE_BATCH, GENERATE_BATCH * 2 + 3])
    def test_json_across_batches(self, count: int) -> None:
        output = run("generate", f"--count={count}", "--format=json")

        ids = json.loads(output)
        assert output == json.dumps(ids, indent=2) + "\n"
        numbers = [int(uid) for uid in ids]
        assert [str(number) for number in numbers] == ids
        assert numbers == sorted(set(numbers))
        assert len(numbers) == count

    def test_text_across_batches(self) -> None:
        output = run("generate", f"-n{GENERATE_BATCH + 1}")

        numbers = [int(line) for line in output.splitlines()]
        assert output == "".join(f"{number}\n" for number in numbers)
        assert numbers == sorted(set(numbers))
        assert len(numbers) == GENERATE_BATCH + 1

    def test_asks_the_generator_for_bounded_batches(self, monkeypatch: pytest.MonkeyPatch) -> None:
        generator = conf.get_generator()
        make = generator.next_ids
        asked: list[int] = []

        def next_ids(count: int) -> list[int]:
            asked.append(count)
            return make(count)

        monkeypatch.setattr(generator, "next_ids", next_ids)
        lines = run("generate", f"--count={GENERATE_BATCH * 3 + 1}").splitlines()

        assert asked == [GENERATE_BATCH, GENERATE_BATCH, GENERATE_BATCH, 1]
        assert len(lines) == GENERATE_BATCH * 3 + 1

    def test_memory_does_not_grow_with_the_count(self, tmp_path: Path) -> None:
        pytest.importorskip("resource", reason="peak memory is read with the resource module")
        small = generate_in_a_process(1_000, tmp_path / "small.json")
        large = generate_in_a_process(1_000_000, tmp_path / "large.json")

        # A list of a million IDs takes 40 MB, their JSON text 24 MB more.
        assert large - small < 16 * 2**20
        ids = json.loads((tmp_path / "small.json").read_text())
        assert [str(int(uid)) for uid in ids] == ids
        assert scan_json_ids(tmp_path / "large.json") == 1_000_000

    def test_an_error_between_batches(self, monkeypatch: pytest.MonkeyPatch) -> None:
        generator = conf.get_generator()
        make = generator.next_ids
        calls: list[int] = []

        def next_ids(count: int) -> list[int]:
            if calls:
                raise FlakeIDError("the clock went back 9 s")
            calls.append(count)
            return make(count)

        monkeypatch.setattr(generator, "next_ids", next_ids)
        stdout = StringIO()
        with pytest.raises(CommandError, match=r"^the clock went back 9 s$"):
            call_command("flakeid", "generate", f"-n{GENERATE_BATCH + 1}", stdout=stdout)

        assert len(stdout.getvalue().splitlines()) == GENERATE_BATCH

    @pytest.mark.parametrize("count", ["0", "-2"])
    def test_count_below_one(self, count: str) -> None:
        assert (
            fails("generate", f"--count={count}") == f"-n/--count must be 1 or more, got {count}."
        )

    def test_broken_setting(self) -> None:
        with override_settings(FLAKEID={"machine_id": 40}):
            message = fails("generate")

        assert message == (
            "Invalid FLAKEID: machine_id 40 from setting FLAKEID['machine_id'] is out of range "
            "for 5 machine bits (0 to 31). Run 'manage.py check' for details."
        )

    def test_generator_error(self) -> None:
        with override_settings(FLAKEID={"epoch_ms": 4102444800000}):
            message = fails("generate")

        assert message.startswith("the clock reads ")
        assert message.endswith("before the epoch 4102444800000 ms; use an earlier epoch_ms")


# tests.testapp keeps BigAutoField through its AppConfig, as an app made by startapp does; its
# models with no key of their own: Profile, OrderLine, Article, NullableThing, ExternalRecord,
# and the through table of Order.tags. Django's admin, auth and contenttypes keep AutoField.
AUTO_FIELD_LINES = (
    "Auto field  django_flakeid.fields.SnowflakeAutoField (setting DEFAULT_AUTO_FIELD)\n"
    "Other keys  testapp: 6 models with django.db.models.BigAutoField "
    "(tests.testapp.apps.TestAppConfig.default_auto_field)\n"
    "            admin, auth, contenttypes: 8 models with django.db.models.AutoField "
    "(Django's own apps; their migrations fix it)\n"
)
OTHER_AUTO_FIELDS = [
    {
        "app": "admin",
        "auto_field": "django.db.models.AutoField",
        "source": "django.contrib.admin.apps.SimpleAdminConfig.default_auto_field",
        "models": 1,
        "django_contrib": True,
    },
    {
        "app": "auth",
        "auto_field": "django.db.models.AutoField",
        "source": "django.contrib.auth.apps.AuthConfig.default_auto_field",
        "models": 6,
        "django_contrib": True,
    },
    {
        "app": "contenttypes",
        "auto_field": "django.db.models.AutoField",
        "source": "django.contrib.contenttypes.apps.ContentTypesConfig.default_auto_field",
        "models": 1,
        "django_contrib": True,
    },
    {
        "app": "testapp",
        "auto_field": "django.db.models.BigAutoField",
        "source": "tests.testapp.apps.TestAppConfig.default_auto_field",
        "models": 6,
        "django_contrib": False,
    },
]


class TestInfo:
    def test_text(self) -> None:
        assert run("info") == (
            "Layout      twitter (41 timestamp, 5 datacenter, 5 machine, 12 sequence bits)\n"
            "Epoch       2020-01-01T00:00:00.000Z (1577836800000 ms, default)\n"
            "Datacenter  1 (setting FLAKEID['datacenter_id'])\n"
            "Machine     7 (setting FLAKEID['machine_id'])\n"
            "Claims      none held on this host\n"
            "Capacity    69.7 years, 32 datacenters x 32 machines (1,024 nodes), "
            "4,096,000 IDs/s per node\n"
            "Runs out    2089-09-06T15:47:35.551Z\n" + AUTO_FIELD_LINES
        )

    def test_sources(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "3")
        monkeypatch.setenv("FLAKEID_EPOCH_MS", "1600000000000")
        setting = {"preset": "single_dc", "sequence_bits": 11, "timestamp_bits": 42}

        with override_settings(FLAKEID=setting):
            output = run("info")

        assert output == (
            "Layout      custom (42 timestamp, 0 datacenter, 10 machine, 11 sequence bits)\n"
            "Epoch       2020-09-13T12:26:40.000Z "
            "(1600000000000 ms, environment FLAKEID_EPOCH_MS)\n"
            "Datacenter  0 (default)\n"
            "Machine     3 (environment FLAKEID_MACHINE_ID)\n"
            "Claims      none held on this host\n"
            "Capacity    139.4 years, 1 datacenter x 1,024 machines (1,024 nodes), "
            "2,048,000 IDs/s per node\n"
            "Runs out    2160-01-26T20:01:51.103Z\n" + AUTO_FIELD_LINES
        )

    def test_json(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_DATACENTER_ID", "2")

        with override_settings(FLAKEID={"machine_id": 5}):
            info = json.loads(run("info", "--format", "json"))

        assert info == {
            "preset": "twitter",
            "timestamp_bits": 41,
            "datacenter_bits": 5,
            "machine_bits": 5,
            "sequence_bits": 12,
            "epoch_ms": 1577836800000,
            "epoch": "2020-01-01T00:00:00.000Z",
            "epoch_source": "default",
            "datacenter_id": 2,
            "datacenter_id_source": "environment",
            "machine_id": 5,
            "machine_id_source": "setting",
            "claims": [],
            "capacity": {
                "years": 69.7,
                "datacenters": 32,
                "machines_per_datacenter": 32,
                "nodes": 1024,
                "ids_per_second_per_node": 4096000,
                "runs_out_ms": "3776860055551",
                "runs_out_at": "2089-09-06T15:47:35.551Z",
            },
            "default_auto_field": "django_flakeid.fields.SnowflakeAutoField",
            "other_auto_fields": OTHER_AUTO_FIELDS,
        }

    def test_broken_setting(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setenv("FLAKEID_MACHINE_ID", "seven")

        with override_settings(FLAKEID={}):
            message = fails("info")

        assert message == (
            "Invalid FLAKEID: Environment variable FLAKEID_MACHINE_ID='seven' is not an integer "
            "or 'auto' or 'lease' or 'hostname'. Run 'manage.py check' for details."
        )


def auto_field_lines(output: str) -> list[str]:
    lines = output.splitlines()
    return lines[[line[:10] for line in lines].index("Auto field") :]


class TestInfoAutoFields:
    @override_settings(DEFAULT_AUTO_FIELD="django.db.models.SmallAutoField")
    def test_the_setting_as_it_is_now(self) -> None:
        output = run("info")

        # The models were made with SnowflakeAutoField: theirs is what they have.
        assert auto_field_lines(output)[:2] == [
            "Auto field  django.db.models.SmallAutoField (setting DEFAULT_AUTO_FIELD)",
            "Other keys  testapp: 6 models with django.db.models.BigAutoField "
            "(tests.testapp.apps.TestAppConfig.default_auto_field)",
        ]

    @override_settings(
        INSTALLED_APPS=["django.contrib.contenttypes", "django_flakeid", "tests.autoapp"]
    )
    def test_only_djangos_own_apps(self) -> None:
        output = run("info")
        others = json.loads(run("info", "--format=json"))["other_auto_fields"]

        assert auto_field_lines(output)[1:] == [
            "Other keys  contenttypes: 1 model with django.db.models.AutoField (Django's own "
            "apps; their migrations fix it)"
        ]
        assert [other["app"] for other in others] == ["contenttypes"]

    @override_settings(INSTALLED_APPS=["django_flakeid"])
    def test_none(self) -> None:
        output = run("info")

        assert auto_field_lines(output)[1:] == ["Other keys  none"]
        assert json.loads(run("info", "--format=json"))["other_auto_fields"] == []

    def test_apps_of_a_project(self, tmp_path: Path) -> None:
        files = {
            "adopting.py": "from tests.settings import *\n"
            "\n"
            "del DEFAULT_AUTO_FIELD\n"
            "INSTALLED_APPS = [\n"
            "    'django.contrib.contenttypes', 'django.contrib.auth', 'django_flakeid',\n"
            "    'blog', 'shop', 'crm.apps.CrmConfig', 'notes',\n"
            "]\n",
            # No AppConfig: the models follow DEFAULT_AUTO_FIELD.
            "blog/models.py": "from django.db import models\n"
            "\n"
            "class Post(models.Model):\n"
            "    related = models.ManyToManyField('self', blank=True)\n"
            "\n"
            "class Draft(Post):\n"
            "    class Meta:\n"
            "        proxy = True\n"
            "\n"
            "class Story(Post):\n"
            "    pass\n",
            # As startapp writes it.
            "shop/apps.py": "from django.apps import AppConfig\n"
            "\n"
            "class ShopConfig(AppConfig):\n"
            "    default_auto_field = 'django.db.models.BigAutoField'\n"
            "    name = 'shop'\n",
            "shop/models.py": "from django.db import models\n"
            "from django_flakeid.fields import SnowflakeField\n"
            "\n"
            "class Item(models.Model):\n"
            "    pass\n"
            "\n"
            "class Invoice(models.Model):\n"
            "    id = models.BigAutoField(primary_key=True)\n"
            "\n"
            "class Order(models.Model):\n"
            "    id = SnowflakeField(primary_key=True)\n",
            "crm/apps.py": "from django.apps import AppConfig\n"
            "\n"
            "class CompanyConfig(AppConfig):\n"
            "    default_auto_field = 'django.db.models.SmallAutoField'\n"
            "\n"
            "class CrmConfig(CompanyConfig):\n"
            "    name = 'crm'\n",
            "crm/models.py": "from django.db import models\n"
            "\n"
            "class Contact(models.Model):\n"
            "    pass\n",
            "notes/apps.py": "from django.apps import AppConfig\n"
            "\n"
            "class NotesConfig(AppConfig):\n"
            "    default_auto_field = 'django_flakeid.fields.SnowflakeAutoField'\n"
            "    name = 'notes'\n",
            "notes/models.py": "from django.db import models\n"
            "\n"
            "class Note(models.Model):\n"
            "    pass\n",
        }
        for name, text in files.items():
            path = tmp_path / name
            path.parent.mkdir(exist_ok=True)
            (path.parent / "__init__.py").touch()
            path.write_text(text)
        root = Path(__file__).resolve().parent.parent
        environ = {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "adopting",
            "PYTHONPATH": os.pathsep.join((str(tmp_path), str(root))),
        }

        def info(*args: str) -> str:
            result = subprocess.run(
                [sys.executable, "-m", "django", "flakeid", "info", *args],
                cwd=tmp_path,
                env=environ,
                capture_output=True,
                text=True,
                check=True,
            )
            return result.stdout

        default = global_settings.DEFAULT_AUTO_FIELD
        assert auto_field_lines(info()) == [
            f"Auto field  {default} (Django's default)",
            f"Other keys  blog: 2 models with {default} (DEFAULT_AUTO_FIELD)",
            "            shop: 1 model with django.db.models.BigAutoField "
            "(shop.apps.ShopConfig.default_auto_field)",
            "            crm: 1 model with django.db.models.SmallAutoField "
            "(crm.apps.CompanyConfig.default_auto_field)",
            "            contenttypes, auth: 7 models with django.db.models.AutoField "
            "(Django's own apps; their migrations fix it)",
        ]
        found = json.loads(info("--format", "json"))
        assert found["default_auto_field"] == default
        assert found["other_auto_fields"][2:] == [
            {
                "app": "blog",
                "auto_field": default,
                "source": "DEFAULT_AUTO_FIELD",
                "models": 2,
                "django_contrib": False,
            },
            {
                "app": "shop",
                "auto_field": "django.db.models.BigAutoField",
                "source": "shop.apps.ShopConfig.default_auto_field",
                "models": 1,
                "django_contrib": False,
            },
            {
                "app": "crm",
                "auto_field": "django.db.models.SmallAutoField",
                "source": "crm.apps.CompanyConfig.default_auto_field",
                "models": 1,
                "django_contrib": False,
            },
        ]


class TestInfoClaims:
    def test_claims_of_running_processes_are_listed(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 3}):
            conf.get_generator()  # this process claims machine 0 of datacenter 3
            output = run("info")
            info = json.loads(run("info", "--format", "json"))

        assert (
            "Machine     auto (default): each process claims the lowest machine ID free on "
            "this host\n"
        ) in output
        assert f"Claims      held on this host: 0 (pid {os.getpid()} (this process))\n" in output
        assert info["machine_id"] == "auto"
        assert info["claims"] == [{"machine_id": 0, "holder": f"pid {os.getpid()} (this process)"}]

    def test_info_never_claims(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 4, "machine_id": 9}):
            run("info")
            held = json.loads(run("info", "--format", "json"))["claims"]

        assert held == []

    @pytest.mark.usefixtures("lease_table")
    def test_leased_machines_are_listed(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 6, "machine_id": "lease"}):
            lease = conf.get_running().lease
            assert lease is not None
            output = run("info")
            leases = json.loads(run("leases", "--format", "json"))
            table = run("leases")
            everything = json.loads(run("leases", "--all", "--format", "json"))
            conf.clear_cache()
            after = run("leases")

        assert (
            "Machine     lease (setting FLAKEID['machine_id']): each process leases a machine "
            "ID from database 'default'\n"
        ) in output
        host = lease.holder.split(":")[0]
        assert f"Claims      leased in the database: 0 ({host} pid {os.getpid()})\n" in output
        assert [(row["datacenter_id"], row["machine_id"], row["pid"]) for row in leases] == [
            (6, 0, os.getpid())
        ]
        # A renewal may have moved the mark on since the table was read, never back.
        assert 0 < leases[0]["high_water_ms"] <= lease.until_ms
        assert table.splitlines()[0].split() == [
            "layout",
            "dc",
            "machine",
            "holder",
            "expires",
            "high-water",
        ]
        assert table.splitlines()[1].split()[:6] == [
            "41-5-5-12@1577836800000",
            "6",
            "0",
            host,
            "pid",
            str(os.getpid()),
        ]
        assert len(everything) == 32
        assert after == "No machine ID is leased.\n"

    @pytest.mark.django_db
    def test_leases_without_time_zone_support(self) -> None:
        from django_flakeid.models import NodeLease

        expires = dt.datetime(2030, 1, 2, 3, 4, 5, tzinfo=dt.timezone.utc)
        NodeLease.objects.create(
            layout="41-5-5-12@1577836800000",
            datacenter_id=2,
            machine_id=5,
            holder="web-1:4242:abc",
            host="web-1",
            pid=4242,
            expires_at=expires,
            high_water_ms=1893553445000,
        )
        with override_settings(USE_TZ=False, TIME_ZONE="UTC"):
            table = run("leases")
            records = json.loads(run("leases", "--format", "json"))

        assert table.splitlines()[1].split() == [
            "41-5-5-12@1577836800000",
            "2",
            "5",
            "web-1",
            "pid",
            "4242",
            "2030-01-02T03:04:05",
            "2030-01-02T03:04:05.000Z",
        ]
        assert records[0]["expires_at"].startswith("2030-01-02T03:04:05")

    @pytest.mark.django_db
    def test_leases_without_the_table_is_a_command_error(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        from django.db import ProgrammingError
        from django.db.models.query import QuerySet

        def missing_table(self: QuerySet[Any]) -> None:
            raise ProgrammingError('relation "django_flakeid_nodelease" does not exist')

        monkeypatch.setattr(QuerySet, "_fetch_all", missing_table)
        message = fails("leases")
        assert message.startswith("Cannot read the leases from database 'default' (")
        assert message.endswith("); run 'manage.py migrate django_flakeid'.")


# The largest integer a JSON number keeps through jq or JavaScript, which read doubles.
MAX_SAFE_INTEGER = 2**53 - 1
# A lone 62-bit sequence: the sequence and the IDs per second of a node are beyond 2**53.
HUGE_SEQUENCE = {
    "timestamp_bits": 1,
    "datacenter_bits": 0,
    "machine_bits": 0,
    "sequence_bits": 62,
}


def json_integers(output: str) -> list[int]:
    """Every integer output writes as a JSON number; the data must read the same as doubles."""
    found: list[int] = []

    def exact(text: str) -> int:
        found.append(int(text))
        return int(text)

    assert json.loads(output, parse_int=float) == json.loads(output, parse_int=exact)
    return found


class TestNoJSONNumberJavaScriptWouldRound:
    @pytest.mark.parametrize(
        ("flakeid", "args"),
        [
            pytest.param(None, ("decode", str(ORDER_ID), "42", str(MAX_ID)), id="decode"),
            # Timestamps of the year 287396 and later.
            pytest.param(None, ("decode", str(MAX_ID), "--preset=minimal"), id="decode-far-future"),
            pytest.param(
                None,
                (
                    "decode",
                    str(MAX_ID),
                    *(f"--{k.replace('_', '-')}={v}" for k, v in HUGE_SEQUENCE.items()),
                ),
                id="decode-huge-sequence",
            ),
            pytest.param(None, ("generate", "-n3"), id="generate"),
            pytest.param(None, ("info",), id="info"),
            pytest.param({"preset": "minimal"}, ("info",), id="info-minimal"),
            pytest.param({**HUGE_SEQUENCE, "machine_id": 0}, ("info",), id="info-huge-sequence"),
        ],
    )
    def test_no_number_above_2_to_the_53(
        self, flakeid: dict[str, Any] | None, args: tuple[str, ...]
    ) -> None:
        with override_settings(FLAKEID=flakeid) if flakeid else nullcontext():
            output = run(*args, "--format=json")

        assert all(abs(number) <= MAX_SAFE_INTEGER for number in json_integers(output))

    @pytest.mark.usefixtures("lease_table")
    def test_leases(self) -> None:
        with override_settings(FLAKEID={"datacenter_id": 6, "machine_id": "lease"}):
            conf.get_running()
            output = run("leases", "--all", "--format", "json")

        numbers = json_integers(output)
        assert os.getpid() in numbers
        assert all(abs(number) <= MAX_SAFE_INTEGER for number in numbers)

    def test_big_integers_that_are_not_ids_become_strings(self) -> None:
        [decoded] = json.loads(run("decode", str(MAX_ID), "--preset=minimal", "--format=json"))
        with override_settings(FLAKEID={"preset": "minimal"}):
            info = json.loads(run("info", "--format=json"))

        layout = Layout(timestamp_bits=53, datacenter_bits=0, machine_bits=0, sequence_bits=10)
        assert decoded["timestamp_ms"] == str(layout.decode(MAX_ID).timestamp_ms)
        assert decoded["sequence"] == 1023
        assert info["capacity"]["runs_out_ms"] == str(layout.max_timestamp_ms)


class TTY(StringIO):
    def isatty(self) -> bool:
        return True


@pytest.mark.django_db(transaction=True)
class TestBackfill:
    def test_log_output(self) -> None:
        LegacyEvent.objects.bulk_create(
            LegacyEvent(created_at=dt.datetime(2024, 3, day, tzinfo=dt.timezone.utc))
            for day in (5, 4, 6)
        )

        output = run("backfill", "testapp.LegacyEvent", "public_id", "--from-field", "created_at")

        header, progress, done = output.splitlines()
        assert header == (
            "Filling testapp.LegacyEvent.public_id: 3 empty rows, each ID stamped with the "
            "row's created_at."
        )
        assert re.fullmatch(r"3/3 rows \(100%\), [\d,]+ rows/s, ETA 0:00:00", progress)
        assert re.fullmatch(r"Filled 3 rows in \d+\.\d s\.", done)
        ids = LegacyEvent.objects.order_by("created_at").values_list("public_id", flat=True)
        assert [Layout().decode(uid).datetime.day for uid in ids] == [4, 5, 6]

    def test_terminal_output(self) -> None:
        LegacyEvent.objects.bulk_create(LegacyEvent() for _ in range(5))
        stdout = TTY()

        call_command(
            "flakeid",
            "backfill",
            "testapp.LegacyEvent",
            "public_id",
            "--batch-size",
            "2",
            stdout=stdout,
        )

        header, bar, done = stdout.getvalue().split("\n", 2)
        assert header == (
            "Filling testapp.LegacyEvent.public_id: 5 empty rows, new IDs in key order."
        )
        frames = bar.split("\r")[1:]
        assert frames[0] == "[------------------------------] 0/5 rows (0%), 0 rows/s, ETA ?\033[K"
        assert frames[-1].startswith("[##############################] 5/5 rows (100%), ")
        assert re.fullmatch(r"Filled 5 rows in \d+\.\d s\.\n", done)
        assert not LegacyEvent.objects.filter(public_id=None).exists()

    def test_nothing_to_do(self) -> None:
        LegacyEvent.objects.create(public_id=1)

        output = run("backfill", "testapp.LegacyEvent", "public_id", "--database", "default")

        assert output == "testapp.LegacyEvent.public_id has no empty rows: nothing to do.\n"

    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ("testapp.Nope", "id"),
                "'testapp.Nope' is not an installed model: expected app_label.Model, e.g. "
                "shop.Order.",
            ),
            (
                ("LegacyEvent", "id"),
                "'LegacyEvent' is not an installed model: expected app_label.Model, e.g. "
                "shop.Order.",
            ),
            (
                ("testapp.LegacyEvent", "name"),
                "testapp.LegacyEvent.name is a CharField, not a SnowflakeField.",
            ),
            (
                ("testapp.LegacyEvent", "public_id", "--batch-size", "0"),
                "batch_size must be a whole number of rows, 1 or more: 0",
            ),
            (
                ("testapp.LegacyEvent", "public_id", "--from-field", "name"),
                "testapp.LegacyEvent.name is a CharField, not a DateTimeField: the IDs' times "
                "must come from a date and time.",
            ),
        ],
    )
    def test_bad_input(self, args: tuple[str, ...], message: str) -> None:
        assert fails("backfill", *args) == message

    def test_invalid_setting(self) -> None:
        with override_settings(FLAKEID={"preset": "nope"}):
            message = fails("backfill", "testapp.LegacyEvent", "public_id")

        assert message.startswith("Invalid FLAKEID: FLAKEID['preset'] 'nope' is not a known")

    def test_unknown_database(self) -> None:
        message = fails("backfill", "testapp.LegacyEvent", "public_id", "--database", "old")

        assert message == "There is no database 'old' in DATABASES."

    def test_database_errors(self, monkeypatch: pytest.MonkeyPatch) -> None:
        from django.db import ProgrammingError
        from django.db.models.query import QuerySet

        def missing_table(self: QuerySet[Any]) -> int:
            raise ProgrammingError('relation "testapp_legacyevent" does not exist\n')

        monkeypatch.setattr(QuerySet, "count", missing_table)

        message = fails("backfill", "testapp.LegacyEvent", "public_id")

        assert message == 'relation "testapp_legacyevent" does not exist'


class TestCommandLine:
    def test_subcommand_required(self) -> None:
        assert fails() == (
            "Error: the following arguments are required: "
            "{decode,generate,info,leases,backfill,rekey,partitions}"
        )

    def test_unknown_subcommand(self) -> None:
        # The wording of the list of choices differs between Python versions.
        assert fails("encode").startswith(
            "Error: argument {decode,generate,info,leases,backfill,rekey,partitions}: "
            "invalid choice: 'encode'"
        )

    @pytest.mark.parametrize(
        ("subcommand", "says"),
        [
            ("decode", "each id is a string"),
            ("generate", "array of strings"),
            ("info", "runs_out_ms is a string"),
            ("leases", "high_water_ms is a number"),
        ],
    )
    def test_help_says_how_json_writes_integers(self, subcommand: str, says: str) -> None:
        parser = load_command_class("django_flakeid", "flakeid").create_parser(
            "manage.py", "flakeid"
        )
        (subcommands,) = [action for action in parser._actions if action.dest == "subcommand"]
        assert isinstance(subcommands.choices, dict)
        (format_option,) = [
            action
            for action in subcommands.choices[subcommand]._actions
            if "--format" in action.option_strings
        ]

        assert says in " ".join(str(format_option.help).split())

    def test_bad_input_exits_1_without_traceback(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "django", "flakeid", "decode", "12", "nope"],
            cwd=ROOT,
            env=command_line_environ(),
            capture_output=True,
            text=True,
            check=False,
        )

        assert result.returncode == 1
        assert result.stdout == ""
        assert result.stderr == (
            "CommandError: 'nope' is not an ID: expected a whole number from 0 to "
            "9223372036854775807.\n"
        )

    def test_success_from_the_command_line(self) -> None:
        result = subprocess.run(
            [sys.executable, "-m", "django", "flakeid", "decode", str(ORDER_ID)],
            cwd=ROOT,
            env=command_line_environ(),
            capture_output=True,
            text=True,
            check=False,
        )

        assert result.returncode == 0
        assert result.stdout.startswith("552733887206420482\n  generated at  2024-03-05T06:07")


def test_generate_stops_quietly_when_its_reader_does() -> None:
    # As `generate -n 10000000 | head -2`: the pipe closes long before the last ID.
    process = subprocess.Popen(
        [sys.executable, "-m", "django", "flakeid", "generate", "-n", "10000000"],
        cwd=ROOT,
        env=command_line_environ(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    assert process.stdout is not None
    first = [process.stdout.readline(), process.stdout.readline()]
    process.stdout.close()
    _, stderr = process.communicate(timeout=60)

    assert [int(line) for line in first] == sorted({int(line) for line in first})
    assert stderr == b""
    assert process.returncode == 0
