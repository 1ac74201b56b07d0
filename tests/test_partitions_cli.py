"""``manage.py flakeid partitions`` against the tables of tests.partapp, with time moved.

Each test that changes partitions builds the table again afterwards, as migrate made it.
"""

from __future__ import annotations

import datetime as dt
import itertools
import json
import re
import threading
from collections.abc import Iterator
from io import StringIO
from typing import Any

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import connection, connections, models
from django.test import override_settings
from django.utils import timezone

from django_flakeid import conf
from django_flakeid.intervals import Span, next_start, spans_from
from django_flakeid.management import partitions_cli
from django_flakeid.partition_sql import Partition, backend_for
from django_flakeid.timefmt import unix_ms
from tests.partapp.models import Event

PG = connection.vendor == "postgresql"
PARTITIONING = connection.vendor in {"postgresql", "mysql"}
needs_partitions = pytest.mark.skipif(
    not PARTITIONING,
    reason=f"{connection.vendor} cannot partition tables: the command refuses to run there "
    "(tested on SQLite below)",
)
# Keys of a node the test settings' generator never stamps, so they meet none of its own.
NODE = (2, 9)
EVENTS = "partapp_event"
NAME_WIDTH = 23 if PG else 9  # the longest partition name: partapp_event_p20261201 or p20261201
HEADER = f"  {'partition':<{NAME_WIDTH}}  {'from':<24}  {'to':<24}  est. rows"


def run(*args: str, verbosity: int = 1) -> str:
    stdout, stderr = StringIO(), StringIO()
    call_command("flakeid", "partitions", *args, verbosity=verbosity, stdout=stdout, stderr=stderr)
    assert stderr.getvalue() == ""
    return stdout.getvalue()


def fails(*args: str) -> str:
    with pytest.raises(CommandError) as caught:
        run(*args)
    return str(caught.value)


def months(since: dt.datetime, count: int) -> list[Span]:
    return spans_from(conf.get_layout(), "month", since, count)


def this_month() -> Span:
    return months(timezone.now(), 1)[0]


def later(count: int) -> dt.datetime:
    """The start of the month ``count`` months after the current one."""
    start = this_month().start
    for _ in range(count):
        start = next_start(start, "month")
    return start


def name(suffix: str, table: str = EVENTS) -> str:
    """A partition's name as the command shows it: the table's on PostgreSQL."""
    if suffix == "catch-all":
        return f"{table}_default" if PG else "pmax"
    return f"{table}_{suffix}" if PG else suffix


def iso(moment: dt.datetime) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%S.000Z")


def row(suffix: str, start: dt.datetime | None, end: dt.datetime | None, rows: int = 0) -> str:
    """One line of the listing the command prints."""
    if suffix == "catch-all":
        frm, to = "(catch-all)", ""
    else:
        frm = "(everything earlier)" if start is None else iso(start)
        to = iso(end) if end is not None else ""
    return f"  {name(suffix):<{NAME_WIDTH}}  {frm:<24}  {to:<24}  {rows:>9,}"


def listing(first: dt.datetime | None, spans: list[Span], *, before: bool = True) -> str:
    """The listing of a table holding ``before`` (up to ``first``), ``spans`` and the catch-all."""
    lines = [HEADER]
    if before:
        lines.append(row("before", None, first))
    lines += [row(span.suffix, span.start, span.end) for span in spans]
    lines.append(row("catch-all", None, None))
    return "\n".join(lines)


def partitions(table: str = EVENTS) -> list[Partition]:
    backend = backend_for(connection)
    assert backend is not None
    return backend.partitions(connection, table)


def names(table: str = EVENTS) -> list[str]:
    return [partition.name for partition in partitions(table)]


def keys_in(partition: str, table: str = EVENTS) -> set[int]:
    """The keys stored in one partition, read from the partition itself."""
    quote = connection.ops.quote_name
    source = quote(partition) if PG else f"{quote(table)} PARTITION ({quote(partition)})"
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT id FROM {source}")
        return {key for (key,) in cursor.fetchall()}


def key_at(moment: dt.datetime, sequence: int = 0) -> int:
    return conf.get_layout().encode(unix_ms(moment), *NODE, sequence)


def move_clock(monkeypatch: pytest.MonkeyPatch, moment: dt.datetime) -> None:
    monkeypatch.setattr(partitions_cli, "clock", lambda: moment)


def rebuild(model: type[models.Model]) -> None:
    """Make the model's table again as migrate does, dropping what the command left apart."""
    table = model._meta.db_table
    with connection.schema_editor() as editor:
        editor.delete_model(model)
    with connection.cursor() as cursor:
        for leftover in connection.introspection.table_names(cursor):
            if leftover.startswith(f"{table}_"):
                cursor.execute(f"DROP TABLE {connection.ops.quote_name(leftover)}")
    with connection.schema_editor() as editor:
        editor.create_model(model)


@pytest.fixture
def events(transactional_db: None) -> Iterator[None]:
    """partapp_event as migrate made it now, and again after the test."""
    yield
    rebuild(Event)


@needs_partitions
@pytest.mark.usefixtures("events")
class TestCreate:
    def test_a_table_as_migrate_made_it(self) -> None:
        spans = months(timezone.now(), 4)

        output = run("partapp.Event")

        assert output == (
            "partapp.Event: table 'partapp_event' on database 'default', month partitions, "
            "3 months ahead.\n"
            f"Nothing to create or drop: the partitions reach {iso(spans[-1].end)}.\n"
            f"{listing(spans[0].start, spans)}\n"
        )
        assert run("partapp.Event", "--database", "default") == output

    def test_once_a_month_has_passed_and_a_second_run_does_nothing(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        move_clock(monkeypatch, later(1) + dt.timedelta(hours=2))
        spans = months(this_month().start, 5)

        first = run("partapp.Event")
        after_first = partitions()
        second = run("partapp.Event")

        new = spans[-1]
        assert first == (
            "partapp.Event: table 'partapp_event' on database 'default', month partitions, "
            "3 months ahead.\n"
            f"Created {name(new.suffix)}: {iso(new.start)} to {iso(new.end)}.\n"
            f"{listing(spans[0].start, spans)}\n"
        )
        assert second == (
            "partapp.Event: table 'partapp_event' on database 'default', month partitions, "
            "3 months ahead.\n"
            f"Nothing to create or drop: the partitions reach {iso(new.end)}.\n"
            f"{listing(spans[0].start, spans)}\n"
        )
        assert partitions() == after_first

    def test_months_missed_are_made_one_after_the_other(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        move_clock(monkeypatch, later(5))

        output = run("partapp.Event", verbosity=0)

        spans = months(this_month().start, 9)
        assert output == "".join(
            f"Created {name(span.suffix)}: {iso(span.start)} to {iso(span.end)}.\n"
            for span in spans[4:]
        )
        assert names() == [name("before")] + [name(s.suffix) for s in spans] + [name("catch-all")]
        ranged = [part for part in partitions() if not part.catch_all]
        assert all(a.high == b.low for a, b in itertools.pairwise(ranged))

    def test_more_ahead_than_declared(self) -> None:
        spans = months(timezone.now(), 6)

        output = run("partapp.Event", "--ahead", "5", verbosity=0)

        assert output == "".join(
            f"Created {name(span.suffix)}: {iso(span.start)} to {iso(span.end)}.\n"
            for span in spans[4:]
        )

    def test_rows_in_the_catch_all_move_to_their_partitions(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        spans = months(this_month().start, 8)
        # Rows made ahead of the partitions (a clock that ran fast, or made-up keys).
        now_key = key_at(spans[0].start + dt.timedelta(days=2))
        first = key_at(spans[4].start)
        last = key_at(spans[5].end - dt.timedelta(milliseconds=1), 7)
        beyond = key_at(spans[7].start + dt.timedelta(days=3))
        Event.objects.bulk_create(Event(id=key, kind="k") for key in (now_key, first, last, beyond))
        assert keys_in(name("catch-all")) == {first, last, beyond}

        move_clock(monkeypatch, spans[2].start)
        run("partapp.Event")

        assert keys_in(name(spans[4].suffix)) == {first}
        assert keys_in(name(spans[5].suffix)) == {last}
        assert keys_in(name("catch-all")) == {beyond}
        assert keys_in(name(spans[0].suffix)) == {now_key}
        assert set(Event.objects.values_list("id", flat=True)) == {now_key, first, last, beyond}

    def test_writes_go_on_while_it_runs(self, monkeypatch: pytest.MonkeyPatch) -> None:
        # Cron on two hosts at once, with rows coming in: both runs end well, no row is lost.
        move_clock(monkeypatch, later(3))
        spans = months(this_month().start, 7)
        made: list[int] = []
        errors: list[BaseException] = []
        stop = threading.Event()

        def writer() -> None:
            try:
                while not stop.is_set():
                    key = key_at(spans[5].start + dt.timedelta(milliseconds=len(made)))
                    Event.objects.create(id=key, kind="w")
                    made.append(key)
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        def cron() -> None:
            try:
                run("partapp.Event", verbosity=0)
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=writer)] + [
            threading.Thread(target=cron) for _ in range(2)
        ]
        for thread in threads:
            thread.start()
        for thread in threads[1:]:
            thread.join(timeout=120)
        stop.set()
        threads[0].join(timeout=30)

        assert errors == []
        assert made
        assert keys_in(name(spans[5].suffix)) == set(made)
        assert keys_in(name("catch-all")) == set()
        assert names()[-2] == name(spans[-1].suffix)


@needs_partitions
@pytest.mark.django_db(transaction=True)
def test_days(monkeypatch: pytest.MonkeyPatch) -> None:
    today = spans_from(conf.get_layout(), "day", timezone.now(), 4)
    move_clock(monkeypatch, today[1].start)

    output = run("partapp.Reading", "--dry-run", "--keep", "1")

    table = "partapp_reading"
    assert output.splitlines()[:4] == [
        "partapp.Reading: table 'partapp_reading' on database 'default', day partitions, "
        "2 days ahead.",
        f"Would create {name(today[3].suffix, table)}: {iso(today[3].start)} to "
        f"{iso(today[3].end)}.",
        f"Would drop {name('before', table)}: everything earlier to {iso(today[0].start)}, "
        "about 0 rows.",
        f"Would drop {name(today[0].suffix, table)}: {iso(today[0].start)} to "
        f"{iso(today[0].end)}, about 0 rows.",
    ]


@needs_partitions
@pytest.mark.usefixtures("events")
class TestDrop:
    def prepare(self, monkeypatch: pytest.MonkeyPatch, months_later: int) -> list[Span]:
        """Time moved on by some months, with the partitions made for them."""
        move_clock(monkeypatch, later(months_later) + dt.timedelta(days=9))
        run("partapp.Event")
        return months(this_month().start, months_later + 4)

    def test_keep(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 3)
        rows = [key_at(span.start) for span in spans[:3]]
        Event.objects.bulk_create(Event(id=key, kind="old") for key in rows)
        estimates = {part.name: part.rows for part in partitions()}

        output = run("partapp.Event", "--keep", "2", verbosity=0)

        # The current month is spans[3]: it and the one before are kept.
        assert output == "".join(
            f"Dropped {name(suffix)}: {frm} to {iso(end)}, about "
            f"{estimates[name(suffix)]:,} row{'' if estimates[name(suffix)] == 1 else 's'}.\n"
            for suffix, frm, end in [
                ("before", "everything earlier", spans[0].start),
                (spans[0].suffix, iso(spans[0].start), spans[0].end),
                (spans[1].suffix, iso(spans[1].start), spans[1].end),
            ]
        )
        assert names()[0] == name(spans[2].suffix)
        assert set(Event.objects.values_list("id", flat=True)) == {rows[2]}

    def test_keep_one_keeps_the_current_month_alone(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 2)

        run("partapp.Event", "--keep", "1")

        assert names() == [name(span.suffix) for span in spans[2:]] + [name("catch-all")]

    def test_drop_before_the_end_of_a_partition(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 3)
        cut = spans[1].end  # the end of one partition exactly: it goes, the next one stays

        output = run("partapp.Event", "--drop-before", f"{cut:%Y-%m-%d}", verbosity=0)

        assert [line.split(":")[0] for line in output.splitlines()] == [
            f"Dropped {name('before')}",
            f"Dropped {name(spans[0].suffix)}",
            f"Dropped {name(spans[1].suffix)}",
        ]
        assert names()[0] == name(spans[2].suffix)

    def test_drop_before_a_day_before_the_end(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 3)
        cut = spans[1].end - dt.timedelta(days=1)

        run("partapp.Event", "--drop-before", f"{cut:%Y-%m-%d}")

        assert names()[0] == name(spans[1].suffix)

    def test_drop_before_the_current_month_is_the_limit(
        self, monkeypatch: pytest.MonkeyPatch
    ) -> None:
        spans = self.prepare(monkeypatch, 1)

        run("partapp.Event", "--drop-before", f"{spans[1].start:%Y-%m-%d}")

        assert names()[0] == name(spans[1].suffix)

    def test_refuses_to_drop_the_current_month(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 1)
        before = partitions()
        cut = spans[1].start + dt.timedelta(days=1)

        stdout = StringIO()
        with pytest.raises(CommandError) as caught:
            call_command(
                "flakeid",
                "partitions",
                "partapp.Event",
                "--drop-before",
                f"{cut:%Y-%m-%d}",
                stdout=stdout,
            )

        assert stdout.getvalue() == ""  # the refusal comes alone
        assert str(caught.value) == (
            f"The cut {iso(cut)} is after the start of the current "
            f"month ({iso(spans[1].start)}): it would drop the partition new rows go to."
        )
        assert partitions() == before

    def test_detach_keeps_the_rows_as_a_table(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 1)
        old = key_at(spans[0].start + dt.timedelta(days=3))
        Event.objects.create(id=old, kind="old")
        kept = f"{EVENTS}_{spans[0].suffix}"

        output = run("partapp.Event", "--keep", "1", "--detach", verbosity=0)

        assert output.splitlines()[1] == (
            f"Detached {name(spans[0].suffix)}: {iso(spans[0].start)} to {iso(spans[0].end)}, "
            f"as table {kept!r}."
        )
        assert names()[0] == name(spans[1].suffix)
        assert not Event.objects.filter(id=old).exists()
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT id, kind FROM {connection.ops.quote_name(kept)}")
            assert list(cursor.fetchall()) == [(old, "old")]

    def test_dry_run_changes_nothing(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = self.prepare(monkeypatch, 1)
        move_clock(monkeypatch, later(2))
        new = months(this_month().start, 6)[-1]
        before = partitions()

        output = run("partapp.Event", "--keep", "1", "--dry-run")

        assert output == (
            "partapp.Event: table 'partapp_event' on database 'default', month partitions, "
            "3 months ahead.\n"
            f"Would create {name(new.suffix)}: {iso(new.start)} to {iso(new.end)}.\n"
            f"Would drop {name('before')}: everything earlier to {iso(spans[0].start)}, "
            "about 0 rows.\n"
            f"Would drop {name(spans[0].suffix)}: {iso(spans[0].start)} to {iso(spans[0].end)}, "
            "about 0 rows.\n"
            f"Would drop {name(spans[1].suffix)}: {iso(spans[1].start)} to {iso(spans[1].end)}, "
            "about 0 rows.\n"
            f"{listing(spans[0].start, spans)}\n"
            "Dry run: nothing was changed.\n"
        )
        assert partitions() == before


@needs_partitions
@pytest.mark.usefixtures("events")
class TestJSON:
    def test_ids_are_strings(self, monkeypatch: pytest.MonkeyPatch) -> None:
        move_clock(monkeypatch, later(1))
        spans = months(this_month().start, 5)

        document = json.loads(run("partapp.Event", "--keep", "1", "--format", "json"))

        def entry(span: Span) -> dict[str, Any]:
            return {
                "name": name(span.suffix),
                "from": iso(span.start),
                "to": iso(span.end),
                "low": str(span.low),
                "high": str(span.high),
            }

        listed = [{**entry(span), "rows": 0, "catch_all": False} for span in spans[1:]]
        catch_all: dict[str, str | None] = {"from": None, "to": None, "low": None, "high": None}
        if not PG:
            # MariaDB's first partition takes every ID below it, and pmax every ID above the
            # newest one.
            listed[0].update({"from": None, "low": None})
            catch_all.update({"from": iso(spans[-1].end), "low": str(spans[-1].high)})
        assert document == {
            "model": "partapp.Event",
            "table": "partapp_event",
            "database": "default",
            "interval": "month",
            "ahead": 3,
            "dry_run": False,
            "partitioned": True,
            "converted": None,
            "partitions": [
                *listed,
                {"name": name("catch-all"), **catch_all, "rows": 0, "catch_all": True},
            ],
            "created": [entry(spans[-1])],
            "dropped": [
                {
                    "name": name("before"),
                    "from": None,
                    "to": iso(spans[0].start),
                    "low": None,
                    "high": str(spans[0].low),
                    "rows": 0,
                },
                {**entry(spans[0]), "rows": 0},
            ],
            "detached": [],
        }
        assert isinstance(document["partitions"][1]["low"], str)


@needs_partitions
class TestConvert:
    def unpartition(self) -> None:
        backend = backend_for(connection)
        assert backend is not None
        with connection.cursor() as cursor:
            cursor.execute(backend.unconvert_sql(EVENTS))

    @pytest.mark.usefixtures("events")
    def test_a_table_with_rows(self) -> None:
        self.unpartition()
        spans = months(timezone.now(), 4)
        old = key_at(spans[0].start - dt.timedelta(days=40))
        keys = [old] + [key_at(span.start + dt.timedelta(hours=5)) for span in spans]
        Event.objects.bulk_create(Event(id=key, kind="c") for key in keys)

        output = run("partapp.Event", "--convert", "--batch-size", "2")

        lines = output.splitlines()
        done = next(at for at, line in enumerate(lines) if line.startswith("Converted "))
        assert lines[1] == "Converting table 'partapp_event' into month partitions: 5 rows."
        if PG:  # batches of 2 rows: the first is reported, then (within 5 s) only the last
            assert lines[2].startswith("2/5 rows (40%), ")
            assert done == 4
        assert re.fullmatch(r"5/5 rows \(100%\), [\d,]+ rows/s, ETA 0:00:00", lines[done - 1])
        kept = (
            " The old table is kept as 'partapp_event_unpartitioned': drop it once you are "
            "done with it."
            if PG
            else ""
        )
        assert re.fullmatch(
            r"Converted table 'partapp_event' \(5 rows\) in \d+\.\d s; writes were held for "
            rf"\d+\.\d\d s\.{re.escape(kept)}",
            lines[done],
        )
        assert lines[done + 1] == (
            f"Nothing to create or drop: the partitions reach {iso(spans[-1].end)}."
        )

        # The row estimates aside (the database's, after its own sampling).
        def ranges(text: list[str]) -> list[str]:
            return [line.rsplit(maxsplit=1)[0] for line in text]

        assert ranges(lines[done + 2 :]) == ranges(listing(spans[0].start, spans).splitlines())
        assert keys_in(name("before")) == {old}
        for key, span in zip(keys[1:], spans, strict=True):
            assert keys_in(name(span.suffix)) == {key}

    @pytest.mark.usefixtures("events")
    def test_json_keeps_the_progress_on_stderr(self) -> None:
        self.unpartition()
        Event.objects.create(id=key_at(timezone.now()), kind="c")
        stdout, stderr = StringIO(), StringIO()

        call_command(
            "flakeid",
            "partitions",
            "partapp.Event",
            "--convert",
            "--format",
            "json",
            stdout=stdout,
            stderr=stderr,
        )

        document = json.loads(stdout.getvalue())
        assert document["partitioned"] is True
        assert document["converted"]["rows"] == 1
        assert document["converted"]["kept"] == ("partapp_event_unpartitioned" if PG else None)
        assert stderr.getvalue().startswith(
            "Converting table 'partapp_event' into month partitions: 1 row.\n1/1 rows (100%)"
        )

    @pytest.mark.usefixtures("events")
    def test_dry_run(self) -> None:
        self.unpartition()

        output = run("partapp.Event", "--convert", "--dry-run")

        assert output == (
            "partapp.Event: table 'partapp_event' on database 'default', month partitions, "
            "3 months ahead.\n"
            "Would convert table 'partapp_event' into month partitions, keeping its rows.\n"
            "Dry run: nothing was changed.\n"
        )
        assert partitions() == []

    @pytest.mark.usefixtures("events")
    def test_not_partitioned_without_convert(self) -> None:
        self.unpartition()

        assert fails("partapp.Event") == (
            "Table 'partapp_event' is not partitioned yet: run 'manage.py migrate', which "
            "partitions it holding writes while it copies the rows, or run this command with "
            "--convert first, which copies them online on PostgreSQL."
        )

    @pytest.mark.django_db
    def test_a_partitioned_table_is_left_as_it_is(self) -> None:
        output = run("partapp.Event", "--convert", verbosity=0)

        assert output == ""
        assert run("partapp.Event", "--convert").splitlines()[1] == (
            "Table 'partapp_event' is partitioned already: nothing to convert."
        )


@needs_partitions
class TestBadInput:
    @pytest.mark.parametrize(
        ("args", "message"),
        [
            (
                ("partapp.Nope",),
                "'partapp.Nope' is not an installed model: expected app_label.Model, e.g. "
                "shop.Order.",
            ),
            (
                ("partapp.Sensor",),
                "partapp.Sensor is not partitioned: add SnowflakePartitions(...) to its "
                "Meta.constraints, then run makemigrations and migrate.",
            ),
            (
                ("partapp.Event", "--database", "old"),
                "There is no database 'old' in DATABASES.",
            ),
            (
                ("partapp.Event", "--keep", "0"),
                "--keep must be 1 or more (the current interval), got 0.",
            ),
            (("partapp.Event", "--ahead", "-1"), "--ahead must be 0 or more, got -1."),
            (
                ("partapp.Event", "--detach"),
                "--detach goes with --keep or --drop-before: it keeps what they take off.",
            ),
            (
                ("partapp.Event", "--batch-size", "10"),
                "--batch-size goes with --convert.",
            ),
            (
                ("partapp.Event", "--drop-before", "2026-13-01"),
                "Error: argument --drop-before: '2026-13-01' is not a date: expected YYYY-MM-DD",
            ),
        ],
    )
    @pytest.mark.django_db
    def test_refused(self, args: tuple[str, ...], message: str) -> None:
        before = partitions()

        assert fails(*args) == message
        assert partitions() == before

    def test_drop_before_or_keep(self) -> None:
        with pytest.raises(CommandError, match="not allowed with argument"):
            run("partapp.Event", "--keep", "2", "--drop-before", "2026-01-01")

    @pytest.mark.django_db
    def test_an_invalid_setting(self) -> None:
        with override_settings(FLAKEID={"preset": "nope"}):
            message = fails("partapp.Event")

        assert message.startswith("Invalid FLAKEID: FLAKEID['preset'] 'nope' is not a known")

    @pytest.mark.django_db(transaction=True)
    def test_another_run_holds_the_table(self, monkeypatch: pytest.MonkeyPatch) -> None:
        monkeypatch.setattr(partitions_cli, "WAIT_SECONDS", 0.5)
        other = connections.create_connection("default")
        try:
            with partitions_cli.one_at_a_time(other, EVENTS):
                message = fails("partapp.Event")
                # A dry run reads only: it does not wait.
                assert run("partapp.Event", "--dry-run", verbosity=0) == ""
            assert run("partapp.Event", verbosity=0) == ""
        finally:
            other.close()

        assert message == (
            "Another run of this command has held table 'partapp_event' for 0.5 s: try again "
            "once it is done."
        )

    @pytest.mark.usefixtures("events")
    def test_no_catch_all_and_no_partition_for_now(self, monkeypatch: pytest.MonkeyPatch) -> None:
        spans = months(timezone.now(), 4)
        catch_all = name("catch-all")
        with connection.cursor() as cursor:
            if PG:
                cursor.execute(f'DROP TABLE "{catch_all}"')
            else:
                cursor.execute(f"ALTER TABLE {EVENTS} DROP PARTITION {catch_all}")
        move_clock(monkeypatch, spans[-1].end)

        assert fails("partapp.Event") == (
            f"The table ends at {iso(spans[-1].end)} and has no "
            f"catch-all partition, so the IDs made now ({iso(spans[-1].end)}) fit in no "
            "partition and new rows cannot be inserted."
        )


@pytest.mark.skipif(
    PARTITIONING,
    reason=f"{connection.vendor} can partition: the refusal is tested where it cannot (SQLite)",
)
def test_a_database_that_cannot_partition() -> None:
    assert fails("partapp.Event") == (
        "Database 'default' is SQLite, which cannot partition tables: time partitions need "
        "PostgreSQL or MariaDB."
    )
