"""README.md is the reference: everything a user can name must be in it, and its samples are
what the code prints: every ID in a sample decodes to the fields printed beside it."""

from __future__ import annotations

import contextlib
import datetime as dt
import io
import json
import re
import select
import shlex
import signal
import sqlite3
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from django.core.management import call_command, load_command_class
from django.core.management.base import CommandError, SystemCheckError
from django.db import connection
from django.test import override_settings

import django_flakeid
from django_flakeid import checks, conf, hostclaim
from django_flakeid.layout import Layout

ROOT = Path(__file__).resolve().parent.parent
README = (ROOT / "README.md").read_text()

# Every sample uses the default layout and epoch, and the example project's time zone.
LAYOUT = Layout()
SAMPLE_ZONE = "Europe/Paris"
# Numbers a sample may show that are limits, not IDs.
# The first Snowflake ID, the last ID, and the first integer past it (refused in samples).
LIMITS = {LAYOUT.min_snowflake_id, django_flakeid.MAX_ID, django_flakeid.MAX_ID + 1}
# What the check sample's project has in settings.py: two typos.
BROKEN_FLAKEID = {"preset": "twiter", "machine_idd": 7}


@dataclass(frozen=True)
class Block:
    """A fenced code block of the README, without its fences and its list indentation."""

    line: int
    lang: str
    text: str


def code_blocks(text: str) -> list[Block]:
    blocks: list[Block] = []
    lines = text.splitlines()
    index = 0
    while index < len(lines):
        fence = re.fullmatch(r"( *)```(\S*)\s*", lines[index])
        index += 1
        if fence is None:
            continue
        indent, start, body = len(fence.group(1)), index, []
        while lines[index].strip() != "```":
            body.append(lines[index][indent:] if lines[index][:indent].isspace() else lines[index])
            index += 1
        index += 1
        blocks.append(Block(start, fence.group(2), "\n".join(body)))
    return blocks


BLOCKS = code_blocks(README)


def big_numbers(text: str) -> set[int]:
    """Every number of 15 digits or more: Snowflake IDs, and the limits of the layout."""
    return {int(number) for number in re.findall(r"(?<![\d.,])\d{15,}(?![\d,])", text)}


def section(heading: str) -> str:
    """From a ``##`` or ``###`` heading to the next one (code comments start with one ``#``)."""
    start = README.index(f"\n{heading}\n") + 1
    end = re.compile(r"^#{2,3} ", re.M).search(README, start + len(heading))
    return README[start : end.start() if end else len(README)]


@pytest.mark.parametrize("name", django_flakeid.__all__)
def test_every_public_name_is_documented(name):
    assert f"`{name}" in README


@pytest.mark.parametrize("check_id", [check_id for check_id, _ in checks.CHECKS])
def test_every_check_id_is_documented(check_id):
    assert f"| `{check_id}` |" in README


def test_check_ids_are_unique_and_well_formed():
    ids = [check_id for check_id, _ in checks.CHECKS]
    assert len(ids) == len(set(ids))
    assert all(re.fullmatch(r"django_flakeid\.[EW]\d{3}", check_id) for check_id in ids)


@pytest.mark.parametrize("key", conf.SETTING_KEYS)
def test_every_setting_key_is_in_the_settings_table(key):
    assert f"\n| `{key}` |" in README


@pytest.mark.parametrize(
    "variable", [*conf.ENVIRONMENT_VARIABLES.values(), hostclaim.LOCK_DIR_ENV, "FLAKEID_TEST_DB"]
)
def test_every_environment_variable_is_documented(variable):
    assert variable in README


def test_every_subcommand_has_a_synopsis():
    parser = load_command_class("django_flakeid", "flakeid").create_parser("manage.py", "flakeid")
    (subparsers,) = [action for action in parser._actions if action.dest == "subcommand"]
    assert isinstance(subparsers.choices, dict)
    names = list(subparsers.choices)
    assert names == ["decode", "generate", "info", "leases", "backfill", "rekey", "partitions"]
    for name in names:
        assert f"    manage.py flakeid {name}" in README


def test_readme_shows_the_two_commands_for_a_fresh_machine():
    assert "    python -m pip install -e . && python example_project/manage.py demo\n" in README
    assert '    python -m pip install -e ".[test]" && python -m pytest\n' in README


def test_generator_example_runs_and_prints_what_it_says():
    section = README[README.index("## The generator (no Django needed)") :]
    block = re.search(r"```python\n(.*?)```", section, re.S)
    assert block is not None
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(block.group(1), {})
    decoded, capacity = out.getvalue().splitlines()
    assert re.fullmatch(
        r"DecodedID\(raw=\d+, generated_at='\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z', "
        r"datacenter_id=1, machine_id=7, sequence=0\)",
        decoded,
    )
    assert capacity == "Capacity(years=69.7, nodes=1024, ids_per_sec=4,096,000)"


def test_preset_table_matches_the_presets():
    for name, preset in django_flakeid.ALL_PRESETS.items():
        row = next(line for line in README.splitlines() if line.startswith(f"| `{name}`"))
        cells = [cell.strip() for cell in row.strip("|").split("|")]
        widths = [int(cell) for cell in cells[2:6]]
        assert widths == [
            preset["timestamp_bits"],
            preset["datacenter_bits"],
            preset["machine_bits"],
            preset["sequence_bits"],
        ]
        capacity = django_flakeid.make_generator(name).capacity()
        assert cells[6] == f"{capacity.total_nodes:,}"
        assert cells[7] == f"{capacity.ids_per_sec_per_node:,}"
        assert cells[8] == f"{capacity.timestamp_range_years:,} years"


def test_changelog_has_an_unreleased_section_on_top():
    changelog = (ROOT / "CHANGELOG.md").read_text()
    assert changelog.split("\n## ")[1].startswith("Unreleased")


# Samples: every ID a sample prints decodes to the fields printed beside it.

DECODED_REPR = re.compile(r"DecodedID\(raw=(\d+), [^)]*\)")


def decoded_reprs() -> list[tuple[Block, int, str]]:
    return [
        (block, int(found.group(1)), found.group(0))
        for block in BLOCKS
        for found in DECODED_REPR.finditer(block.text)
    ]


def test_every_decodedid_in_a_sample_is_what_decode_gives():
    samples = decoded_reprs()
    assert len(samples) >= 2
    for block, raw, text in samples:
        assert text == repr(LAYOUT.decode(raw)), f"line {block.line}"


@dataclass(frozen=True)
class Command:
    """``$ python manage.py ...`` in a sample, and the output printed under it."""

    block: Block
    argv: list[str]
    output: str

    def __str__(self) -> str:
        return f"line {self.block.line}: {shlex.join(self.argv)}"


def commands(block: Block) -> list[Command]:
    found: list[Command] = []
    for chunk in re.split(r"^(?=\$ )", block.text, flags=re.M):
        first, _, output = chunk.partition("\n")
        if first.startswith("$ python manage.py "):
            argv = shlex.split(first.removeprefix("$ python manage.py "))
            found.append(Command(block, argv, output.rstrip("\n")))
    return found


COMMANDS = [command for block in BLOCKS for command in commands(block)]


def flakeid_samples(subcommand: str) -> list[Command]:
    return [command for command in COMMANDS if command.argv[:2] == ["flakeid", subcommand]]


def run(*argv: str) -> str:
    """What the terminal shows: the output, or the error line Django prints instead."""
    out = io.StringIO()
    try:
        call_command(*argv, stdout=out, stderr=io.StringIO())
    except SystemCheckError as error:
        return str(error)
    except CommandError as error:
        return f"CommandError: {error}"
    return out.getvalue().rstrip("\n")


@pytest.mark.parametrize("sample", flakeid_samples("decode"), ids=str)
def test_every_decode_sample_is_what_the_command_prints(sample):
    with override_settings(TIME_ZONE=SAMPLE_ZONE):
        assert run(*sample.argv) == sample.output


def test_the_decode_samples_show_text_json_a_legacy_key_and_an_error():
    outputs = [sample.output for sample in flakeid_samples("decode")]
    assert any("  machine       " in output for output in outputs)
    assert any('"machine_id": ' in output for output in outputs)
    assert any('"legacy": true' in output for output in outputs)
    assert any(output.startswith("CommandError: ") for output in outputs)


@pytest.mark.parametrize("sample", flakeid_samples("generate"), ids=str)
def test_every_generate_sample_shows_new_ids_of_one_node_in_order(sample):
    count = int(sample.argv[sample.argv.index("-n") + 1])
    # Piped through jq -r, the JSON array arrives as one ID per line.
    if "json" in sample.argv and "|" not in sample.argv:
        printed = json.loads(sample.output)
        assert all(isinstance(uid, str) for uid in printed)
        ids = [int(uid) for uid in printed]
    else:
        ids = [int(line) for line in sample.output.splitlines()]
    assert len(ids) == count
    assert ids == sorted(set(ids))
    nodes = {(LAYOUT.decode(uid).datacenter_id, LAYOUT.decode(uid).machine_id) for uid in ids}
    assert len(nodes) == 1
    assert min(ids) >= LAYOUT.min_snowflake_id


def test_the_readme_has_a_generate_sample():
    assert flakeid_samples("generate")


def test_the_info_sample_shows_what_the_command_prints_for_its_setting():
    (sample,) = [
        s
        for s in flakeid_samples("info")
        if s.argv == ["flakeid", "info"] and not s.output.startswith("CommandError")
    ]
    # The claims and the other apps' keys are the sample project's own.
    labels = ("Layout", "Epoch", "Datacenter", "Machine", "Capacity", "Runs out", "Auto field")
    with override_settings(FLAKEID={"datacenter_id": 1}):
        printed = run("flakeid", "info").splitlines()
    for label in labels:
        line = next(line for line in sample.output.splitlines() if line.startswith(label))
        assert line in printed


def test_the_invalid_setting_sample_is_what_info_prints():
    (sample,) = [s for s in flakeid_samples("info") if s.output.startswith("CommandError")]
    with override_settings(FLAKEID=BROKEN_FLAKEID):
        assert run(*sample.argv) == sample.output


def test_the_check_sample_is_what_check_prints():
    (sample,) = [command for command in COMMANDS if command.argv == ["check"]]
    with override_settings(FLAKEID=BROKEN_FLAKEID):
        assert run("check") == sample.output


DEMO_HEADER = re.compile(
    r"FLAKEID: (?P<preset>\w+) layout, "
    r"datacenter (?P<dc>\d+) \(.+\), machine (?P<machine>\d+) \(.+\)"
)
DEMO_COLUMNS = re.compile(r"  New row +ID +Generated \((?P<zone>[\w/]+)\) +DC +Machine +Seq +Row")
DEMO_ROW = re.compile(
    r"  (?P<model>\w+) +(?P<id>\d+) +(?P<at>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d\.\d{3}) +"
    r"(?P<dc>\d+) +(?P<machine>\d+) +(?P<seq>\d+)  (?P<row>\S.*)"
)
DEMO_BLOCKS = [block for block in BLOCKS if block.text.startswith("FLAKEID: ")]


def demo_rows(block: Block) -> list[re.Match[str]]:
    """The table's rows; a line of the table that is not a row fails the test."""
    lines = block.text.splitlines()
    start = next(index for index, line in enumerate(lines) if DEMO_COLUMNS.fullmatch(line)) + 1
    end = lines.index("", start)
    rows = [DEMO_ROW.fullmatch(line) for line in lines[start:end]]
    assert None not in rows, f"line {block.line}: a row of the demo table has another shape"
    return [row for row in rows if row is not None]


@pytest.mark.parametrize("block", DEMO_BLOCKS, ids=lambda block: f"line {block.line}")
def test_every_row_of_the_demo_sample_decodes_to_its_columns_and_header(block):
    header = DEMO_HEADER.fullmatch(block.text.splitlines()[0])
    columns = DEMO_COLUMNS.search(block.text)
    assert header is not None
    assert columns is not None
    layout = Layout(**django_flakeid.ALL_PRESETS[header["preset"]])
    zone = ZoneInfo(columns["zone"])
    rows = demo_rows(block)
    assert rows
    for row in rows:
        decoded = layout.decode(int(row["id"]))
        local = decoded.datetime.astimezone(zone)
        assert (row["model"], row["at"], row["dc"], row["machine"], row["seq"]) == (
            row["model"],
            f"{local:%Y-%m-%d %H:%M:%S}.{decoded.timestamp_ms % 1000:03d}",
            str(decoded.datacenter_id),
            str(decoded.machine_id),
            str(decoded.sequence),
        )
        assert (row["dc"], row["machine"]) == (header["dc"], header["machine"])
    newest = re.search(r"newest first by ID alone: (\d+)", block.text)
    assert newest is not None
    orders = [int(row["id"]) for row in rows if row["model"] == "Order"]
    assert int(newest.group(1)) == max(orders)


def test_the_readme_has_a_demo_sample():
    assert len(DEMO_BLOCKS) == 1


SQL_SAMPLES = [
    (block, expression, where)
    for block in BLOCKS
    if block.lang == "sql"
    for expression, where in re.findall(r"^-- (.+)\n(WHERE .+)$", block.text, re.M)
]


def test_every_where_clause_in_a_sql_sample_names_its_query():
    wheres = [line for block in BLOCKS if block.lang == "sql" for line in block.text.splitlines()]
    assert len([line for line in wheres if line.startswith("WHERE")]) == len(SQL_SAMPLES) >= 3


@pytest.mark.parametrize(
    ("expression", "where"), [sample[1:] for sample in SQL_SAMPLES], ids=[s[1] for s in SQL_SAMPLES]
)
def test_every_sql_sample_is_what_django_compiles(expression, where):
    from tests.testapp.models import Order

    with override_settings(USE_TZ=True, TIME_ZONE="UTC"):
        queryset = eval(expression, {"Order": Order, "dt": dt})
        # The README quotes names as PostgreSQL and SQLite do; MariaDB uses backticks.
        sql = str(queryset.query).replace("`", '"')
    assert sql.endswith(" " + where.replace('"shop_order"', '"testapp_order"'))


def test_the_ids_for_a_time_example_prints_what_it_says():
    text = section("### IDs for a time")
    found = re.search(r"```python\n(.*?)```", text, re.S)
    assert found is not None
    code = found.group(1)
    expected = re.findall(r"^print\(.*\n# (.*)$", code, re.M)
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        exec(code, {})
    assert out.getvalue().splitlines() == expected
    assert len(expected) == 2


# A time given in a query string (created_after=...) is asked for, not claimed of an ID.
FIELDS_BESIDE = re.compile(
    r"datacenter|machine|sequence|\bDC\b|(?<!=)\b\d{4}-\d\d-\d\d[T ]\d\d:\d\d"
)


def checked_numbers(block: Block) -> set[int]:
    """The numbers of a block that a test above compares with what they decode to."""
    checked = {raw for sample, raw, _ in decoded_reprs() if sample == block}
    for command in COMMANDS:
        if command.block == block and command.argv[:2] == ["flakeid", "decode"]:
            checked |= big_numbers(" ".join(command.argv)) | big_numbers(command.output)
    # A WHERE clause is compared with what Django compiles for the query named above it.
    checked |= {
        n for sample, _, where in SQL_SAMPLES if sample == block for n in big_numbers(where)
    }
    if block in DEMO_BLOCKS:
        checked |= {int(row["id"]) for row in demo_rows(block)}
        checked |= {int(uid) for uid in re.findall(r"newest first by ID alone: (\d+)", block.text)}
    return checked


@pytest.mark.parametrize(
    "block",
    [block for block in BLOCKS if FIELDS_BESIDE.search(block.text) and big_numbers(block.text)],
    ids=lambda block: f"line {block.line}",
)
def test_every_id_printed_beside_its_fields_is_checked(block):
    assert big_numbers(block.text) - LIMITS <= checked_numbers(block)


@pytest.mark.parametrize(
    "block", [block for block in BLOCKS if big_numbers(block.text)], ids=lambda b: f"line {b.line}"
)
def test_every_number_in_a_sample_is_an_id_of_the_layout_or_one_of_its_limits(block):
    for number in big_numbers(block.text) - LIMITS:
        assert LAYOUT.min_snowflake_id < number <= django_flakeid.MAX_ID


def test_the_backfill_recipe_creates_the_empty_migration_its_code_goes_in():
    recipe = section("### Adding a Snowflake column to a table with rows")
    command = re.search(r"python manage\.py makemigrations (\w+) --empty --name (\w+)", recipe)
    assert command is not None
    app, name = command.groups()
    dependency = re.search(r'dependencies = \[\("(\w+)", "(\d{4})_\w+"\)\]', recipe)
    assert dependency is not None
    assert dependency.group(1) == app
    assert f"`{app}/migrations/{int(dependency.group(2)) + 1:04d}_{name}.py`" in recipe
    assert f'apps.get_model("{app}", ' in recipe


# Leases when a process ends: what the README's table says, tried on a real process.

LEASE_HOLDER = """
import multiprocessing, sys
import django
from django.conf import settings

settings.configure(
    INSTALLED_APPS=["django_flakeid"],
    DATABASES={"default": {"ENGINE": "django.db.backends.sqlite3", "NAME": sys.argv[1]}},
    FLAKEID={"machine_id": "lease"},
    USE_TZ=True,
)
django.setup()

from django.core.management import call_command
from django.db import connections
import django_flakeid

call_command("migrate", verbosity=0)
if sys.argv[2] == "in a child":
    connections.close_all()
    child = multiprocessing.get_context("fork").Process(target=django_flakeid.next_id)
    child.start()
    child.join()
else:
    django_flakeid.next_id()
print("leased", flush=True)
sys.stdin.read()
"""

# Each way a process can end, and the row of the README's table that says what becomes of its
# lease.
ENDINGS = {
    "its end": (None, "| `manage.py` commands, `manage.py shell`, scripts: their end"),
    "Ctrl-C": (signal.SIGINT, "| `manage.py` commands, `manage.py shell`, scripts: their end"),
    "SIGTERM": (signal.SIGTERM, "| the same: `SIGTERM` or `SIGHUP` |"),
    "SIGHUP": (signal.SIGHUP, "| the same: `SIGTERM` or `SIGHUP` |"),
    "SIGKILL": (signal.SIGKILL, "| any process: `SIGKILL`"),
    "in a child": (None, "| a child of `multiprocessing` started with `fork`"),
}


def documented_fate(row_start: str) -> str:
    table = section("### Leases when a process ends")
    (row,) = [line for line in table.splitlines() if line.startswith(row_start)]
    fate = row.rstrip(" |").rsplit(" | ", 1)[1]
    assert fate.startswith(("given back", "expires")), row
    return "given back" if fate.startswith("given back") else "expires"


@pytest.mark.slow
@pytest.mark.skipif(not hasattr(signal, "SIGKILL"), reason="POSIX signals")
@pytest.mark.parametrize("ending", ENDINGS)
def test_a_lease_is_given_back_or_expires_as_the_readme_says(ending, tmp_path):
    how, row_start = ENDINGS[ending]
    database = tmp_path / "leases.sqlite3"
    with subprocess.Popen(
        [sys.executable, "-c", LEASE_HOLDER, str(database), ending],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    ) as holder:
        try:
            assert holder.stdin is not None
            assert holder.stdout is not None
            ready, _, _ = select.select([holder.stdout], [], [], 60)
            assert ready, "the lease holder did not start within a minute"
            assert holder.stdout.readline() == "leased\n", holder.communicate()[1]
            if how is None:
                holder.stdin.close()
            else:
                holder.send_signal(how)
            holder.wait(60)
        finally:
            if holder.poll() is None:
                holder.kill()
    with contextlib.closing(sqlite3.connect(database)) as db:
        held = db.execute("SELECT machine_id FROM django_flakeid_nodelease WHERE holder <> ''")
        fate = "expires" if held.fetchall() else "given back"
    assert fate == documented_fate(row_start)


# The partitions samples: a PostgreSQL table partitioned by month on 2026-12-01, as migrate made
# it then, and the same table a month and a half later.
PARTITIONS_MIGRATED = dt.datetime(2026, 12, 1, 7, tzinfo=dt.timezone.utc)
PARTITIONS_LATER = dt.datetime(2027, 1, 15, 7, tzinfo=dt.timezone.utc)


@pytest.mark.skipif(
    connection.vendor != "postgresql",
    reason="the README shows what the command prints on PostgreSQL (MariaDB names partitions "
    "without the table's name, as the README says)",
)
@pytest.mark.django_db(transaction=True)
def test_the_partitions_samples_are_what_the_command_prints(monkeypatch):
    from types import SimpleNamespace

    from django_flakeid import partitions
    from django_flakeid.management import partitions_cli
    from tests.partapp.models import Event
    from tests.test_partitions_cli import rebuild

    samples = flakeid_samples("partitions")
    assert [command.argv for command in samples] == [
        ["flakeid", "partitions", "partapp.Event"],
        ["flakeid", "partitions", "partapp.Event", "--keep", "1"],
    ]
    monkeypatch.setattr(partitions, "timezone", SimpleNamespace(now=lambda: PARTITIONS_MIGRATED))
    try:
        rebuild(Event)
        monkeypatch.setattr(partitions_cli, "clock", lambda: PARTITIONS_MIGRATED)
        assert flakeid_output(samples[0].argv) == samples[0].output
        # A key made ahead of time, in April 2027: it waits in the catch-all.
        Event.objects.create(id=LAYOUT.encode(1_807_315_200_000, 1, 1, 0), kind="early")
        monkeypatch.setattr(partitions_cli, "clock", lambda: PARTITIONS_LATER)
        assert flakeid_output(samples[1].argv) == samples[1].output
    finally:
        monkeypatch.undo()
        rebuild(Event)


def flakeid_output(argv: list[str]) -> str:
    out = io.StringIO()
    call_command(*argv, stdout=out, stderr=out)
    return out.getvalue().rstrip("\n")
