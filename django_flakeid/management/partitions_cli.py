"""``manage.py flakeid partitions``: its arguments, the changes it makes, and how it shows them."""

from __future__ import annotations

import argparse
import datetime as dt
import hashlib
import json
import time
from argparse import _SubParsersAction
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, router
from django.db.backends.utils import truncate_name
from django.utils import timezone

from .. import conf
from ..errors import FlakeIDError
from ..intervals import Span
from ..layout import Layout
from ..partition_convert import ConversionResult, convert
from ..partition_plan import Plan, count, keep_cut, plan_partitions
from ..partition_sql import Partition, PartitionBackend, PostgresPartitions, backend_for
from ..partitions import SnowflakePartitions, declaration
from ..progress import Progress, ProgressDisplay
from ..timefmt import UTC, ms_to_iso, unix_ms
from .backfill_cli import _model, _rows

if TYPE_CHECKING:
    from django.core.management.base import OutputWrapper
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.models import Model

#: The time the command plans from; tests move it.
clock: Callable[[], dt.datetime] = timezone.now
#: How long a run waits for another run on the same table to end.
WAIT_SECONDS = 60.0


def add_partitions_parser(subcommands: _SubParsersAction[CommandParser]) -> None:
    parser = subcommands.add_parser(
        "partitions",
        help="Create a partitioned table's partitions ahead of time, and drop old ones.",
        description="Show the partitions of a model's table (declared with "
        "SnowflakePartitions), create those missing up to --ahead intervals after the current "
        "one, moving their rows out of the catch-all, and with --keep or --drop-before drop "
        "the partitions that end on or before the cut. A run with nothing to do changes "
        "nothing: run it daily from cron.",
    )
    parser.add_argument("model", metavar="app_label.Model", help="The model, e.g. shop.Event.")
    parser.add_argument(
        "--ahead",
        type=int,
        metavar="N",
        help="Intervals to have partitions for after the current one (default: the "
        "declaration's ahead).",
    )
    retention = parser.add_mutually_exclusive_group()
    retention.add_argument(
        "--drop-before",
        type=_date,
        metavar="DATE",
        help="Drop the partitions that end on or before DATE, midnight UTC (YYYY-MM-DD); not "
        "later than the start of the current interval.",
    )
    retention.add_argument(
        "--keep",
        type=int,
        metavar="N",
        help="Keep N intervals, the current one and N-1 before it; drop the partitions that "
        "end before them.",
    )
    parser.add_argument(
        "--detach",
        action="store_true",
        help="Keep each partition --keep or --drop-before takes off as a table of its own, "
        "<table>_p20260101, instead of dropping its rows (MariaDB 10.7 or later).",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Show what would be created and dropped, and change nothing.",
    )
    parser.add_argument(
        "--convert",
        action="store_true",
        help="Partition a table that is not partitioned yet, keeping its rows: on PostgreSQL "
        "by an online copy that holds writes for a moment at the end, on MariaDB by an ALTER "
        "TABLE that holds writes until it ends.",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        metavar="N",
        help="With --convert: rows copied per batch, each batch its own transaction "
        "(default: 10000).",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json"),
        default="text",
        help="Output format (default: text). In JSON low and high are strings (JavaScript "
        "and jq would round IDs as numbers); progress goes to stderr.",
    )
    parser.add_argument(
        "--database",
        metavar="ALIAS",
        help="The database of the table (default: where the router writes the model).",
    )


def _date(text: str) -> dt.datetime:
    try:
        day = dt.date.fromisoformat(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a date: expected YYYY-MM-DD") from None
    return dt.datetime(day.year, day.month, day.day, tzinfo=UTC)


@dataclass
class _Run:
    """One run of the command: what it was asked, and what it did."""

    model: type[Model]
    declared: SnowflakePartitions
    alias: str
    connection: BaseDatabaseWrapper
    backend: PartitionBackend
    layout: Layout
    ahead: int
    options: dict[str, Any]
    converted: ConversionResult | None = None
    created: list[dict[str, Any]] = field(default_factory=list)
    dropped: list[dict[str, Any]] = field(default_factory=list)
    detached: list[dict[str, Any]] = field(default_factory=list)

    @property
    def table(self) -> str:
        return self.model._meta.db_table


def run_partitions(command: BaseCommand, options: dict[str, Any]) -> None:
    model = _model(options["model"])
    declared = declaration(model)
    if declared is None:
        raise CommandError(
            f"{model._meta.label} is not partitioned: add SnowflakePartitions(...) to its "
            "Meta.constraints, then run makemigrations and migrate."
        )
    alias = options["database"] or router.db_for_write(model)
    if alias not in connections:
        raise CommandError(f"There is no database {alias!r} in DATABASES.")
    connection = connections[alias]
    backend = backend_for(connection)
    if backend is None:
        raise CommandError(
            f"Database {alias!r} is {connection.display_name}, which cannot partition "
            "tables: time partitions need PostgreSQL or MariaDB."
        )
    _refuse_bad_options(options)
    try:
        layout = conf.get_layout()
        table = model._meta.db_table
        run = _Run(
            model, declared, alias, connection, backend, layout, _ahead(options, declared), options
        )
        if options["dry_run"]:
            _run(command, run)
        else:
            with one_at_a_time(connection, table):
                _run(command, run)
    except (FlakeIDError, DatabaseError) as error:
        raise CommandError(str(error).strip()) from None


@contextmanager
def one_at_a_time(connection: BaseDatabaseWrapper, table: str) -> Iterator[None]:
    """Hold the lock of the runs on ``table``, waiting up to :data:`WAIT_SECONDS` for it.

    Two hosts running the command from cron at the same minute would both find a partition
    missing and both make it; the second run waits instead, then finds nothing to do.
    """
    # Hashed: MariaDB's lock names are server-wide and at most 64 characters long.
    where = f"{connection.settings_dict['NAME']}.{table}"
    name = "flakeid-partitions-" + hashlib.sha256(where.encode()).hexdigest()[:32]
    postgres = connection.vendor == "postgresql"
    with connection.cursor() as cursor:
        if postgres:
            # pg_advisory_lock() would wait without end: asked again and again, up to a limit.
            deadline = time.monotonic() + WAIT_SECONDS
            while True:
                cursor.execute("SELECT pg_try_advisory_lock(hashtext(%s))", [name])
                acquired = bool((cursor.fetchone() or (False,))[0])
                if acquired or time.monotonic() >= deadline:
                    break
                time.sleep(0.2)
        else:
            cursor.execute("SELECT GET_LOCK(%s, %s)", [name, WAIT_SECONDS])
            acquired = (cursor.fetchone() or (0,))[0] == 1
    if not acquired:
        raise CommandError(
            f"Another run of this command has held table {table!r} for {WAIT_SECONDS:g} s: "
            "try again once it is done."
        )
    try:
        yield
    finally:
        release = "pg_advisory_unlock(hashtext(%s))" if postgres else "RELEASE_LOCK(%s)"
        with connection.cursor() as cursor:
            cursor.execute(f"SELECT {release}", [name])


def _refuse_bad_options(options: dict[str, Any]) -> None:
    if options["ahead"] is not None and options["ahead"] < 0:
        raise CommandError(f"--ahead must be 0 or more, got {options['ahead']}.")
    if options["keep"] is not None and options["keep"] < 1:
        raise CommandError(
            f"--keep must be 1 or more (the current interval), got {options['keep']}."
        )
    if options["detach"] and options["keep"] is None and options["drop_before"] is None:
        raise CommandError(
            "--detach goes with --keep or --drop-before: it keeps what they take off."
        )
    if options["batch_size"] is not None and not options["convert"]:
        raise CommandError("--batch-size goes with --convert.")


def _ahead(options: dict[str, Any], declared: SnowflakePartitions) -> int:
    return declared.ahead if options["ahead"] is None else int(options["ahead"])


def _run(command: BaseCommand, run: _Run) -> None:
    options, table, interval = run.options, run.table, run.declared.interval
    now = clock()
    dry_run = options["dry_run"]
    out = _Output(command, run)
    if not run.backend.is_partitioned(run.connection, table):
        if not options["convert"]:
            raise CommandError(
                f"Table {table!r} is not partitioned yet: run 'manage.py migrate', which "
                "partitions it holding writes while it copies the rows, or run this command "
                "with --convert first, which copies them online on PostgreSQL."
            )
        if dry_run:
            out.line(
                f"Would convert table {table!r} into {interval} partitions, keeping its rows.",
                always=True,
            )
            out.finish([], dry_run=True, partitioned=False)
            return
        run.converted = _convert(command, run, now, out)
        out.converted(run.converted)
    elif options["convert"]:
        out.line(f"Table {table!r} is partitioned already: nothing to convert.")
    if options["keep"] is not None:
        cut: dt.datetime | None = keep_cut(interval, now, options["keep"])
    else:
        cut = options["drop_before"]
    partitions = run.backend.partitions(run.connection, table)
    plan = plan_partitions(partitions, run.layout, interval, now, ahead=run.ahead, cut=cut)
    if plan.problems:
        raise CommandError(" ".join(plan.problems))
    _apply(run, plan, dry_run=dry_run)
    out.changes(plan, dry_run=dry_run)
    if not dry_run:
        partitions = run.backend.partitions(run.connection, table)
    out.finish(partitions, dry_run=dry_run, partitioned=True)


def _apply(run: _Run, plan: Plan[Partition], *, dry_run: bool) -> None:
    if plan.create and not dry_run:
        run.backend.add(run.connection, run.table, list(plan.create))
    run.created = [_span(run, span) for span in plan.create]
    detach = run.options["detach"]
    for partition in plan.drop:
        kept = None
        if not dry_run:
            kept = run.backend.drop(run.connection, run.table, partition, detach=detach)
        shown = _partition(run.layout, partition)
        del shown["catch_all"]
        if detach:
            run.detached.append({**shown, "table": kept or _detached_name(run, partition)})
        else:
            run.dropped.append(shown)


def _convert(command: BaseCommand, run: _Run, now: dt.datetime, out: _Output) -> ConversionResult:
    # In JSON the progress goes to stderr, so that stdout stays one document.
    stream = command.stderr if out.json else command.stdout

    display = ProgressDisplay.on(stream)

    def announce(progress: Progress) -> None:
        text = (
            f"Converting table {run.table!r} into {run.declared.interval} partitions: "
            f"{_rows(progress.total, 'row')}."
        )
        if out.json:
            stream.write(text)
        else:
            out.line(text, always=True)

    batch_size = run.options["batch_size"]
    try:
        return convert(
            run.connection,
            run.model,
            run.declared,
            run.layout,
            now=now,
            progress=display.announcing(announce),
            **({} if batch_size is None else {"batch_size": batch_size}),
        )
    finally:
        display.close()


def _name(run: _Run, span: Span) -> str:
    if isinstance(run.backend, PostgresPartitions):
        return run.backend.name(run.table, span.suffix)
    return span.suffix


def _detached_name(run: _Run, partition: Partition) -> str:
    # What drop(detach=True) names the table: on PostgreSQL the partition is a table already.
    if isinstance(run.backend, PostgresPartitions):
        return partition.name
    return truncate_name(f"{run.table}_{partition.name}", run.connection.ops.max_name_length())


def _span(run: _Run, span: Span) -> dict[str, Any]:
    return {
        "name": _name(run, span),
        "from": ms_to_iso(unix_ms(span.start)),
        "to": ms_to_iso(unix_ms(span.end)),
        "low": str(span.low),
        "high": str(span.high),
    }


def _partition(layout: Layout, partition: Partition) -> dict[str, Any]:
    def moment(uid: int | None) -> str | None:
        return None if uid is None else ms_to_iso(layout.decode(uid).timestamp_ms)

    return {
        "name": partition.name,
        "from": moment(partition.low),
        "to": moment(partition.high),
        "low": None if partition.low is None else str(partition.low),
        "high": None if partition.high is None else str(partition.high),
        "rows": partition.rows,
        "catch_all": partition.catch_all,
    }


class _Output:
    """Text for people (less of it at verbosity 0, for cron), or one JSON document."""

    def __init__(self, command: BaseCommand, run: _Run) -> None:
        self.stdout: OutputWrapper = command.stdout
        self.run = run
        self.json = run.options["format"] == "json"
        self.verbosity = int(run.options.get("verbosity", 1))
        # Written before the first line, so that a refusal comes alone.
        self.header = self.verbosity >= 1

    def line(self, text: str, *, always: bool = False) -> None:
        if self.json or not (always or self.verbosity >= 1):
            return
        if self.header:
            run, interval = self.run, self.run.declared.interval
            self.stdout.write(
                f"{run.model._meta.label}: table {run.table!r} on database {run.alias!r}, "
                f"{interval} partitions, {count(run.ahead, interval)} ahead."
            )
            self.header = False
        self.stdout.write(text)

    def converted(self, result: ConversionResult) -> None:
        held = f"writes were held for {result.lock_seconds:.2f} s"
        kept = (
            f" The old table is kept as {result.kept!r}: drop it once you are done with it."
            if result.kept
            else ""
        )
        self.line(
            f"Converted table {result.table!r} ({_rows(result.rows, 'row')}) in "
            f"{result.seconds:.1f} s; {held}.{kept}",
            always=True,
        )

    def changes(self, plan: Plan[Partition], *, dry_run: bool) -> None:
        run = self.run
        verbs = (
            ("Would create", "Would drop", "Would detach")
            if dry_run
            else ("Created", "Dropped", "Detached")
        )
        for made in run.created:
            self.line(f"{verbs[0]} {made['name']}: {made['from']} to {made['to']}.", always=True)
        for gone in run.dropped:
            self.line(
                f"{verbs[1]} {gone['name']}: {_range(gone)}, about {_rows(gone['rows'], 'row')}.",
                always=True,
            )
        for kept in run.detached:
            self.line(
                f"{verbs[2]} {kept['name']}: {_range(kept)}, as table {kept['table']!r}.",
                always=True,
            )
        if not (run.created or run.dropped or run.detached):
            reach = (
                ""
                if plan.ends_at is None
                else f": the partitions reach {ms_to_iso(unix_ms(plan.ends_at))}"
            )
            self.line(f"Nothing to create or drop{reach}.")

    def finish(self, partitions: list[Partition], *, dry_run: bool, partitioned: bool) -> None:
        run = self.run
        listed = [_partition(run.layout, partition) for partition in partitions]
        if self.json:
            converted = run.converted
            self.stdout.write(
                json.dumps(
                    {
                        "model": run.model._meta.label,
                        "table": run.table,
                        "database": run.alias,
                        "interval": run.declared.interval,
                        "ahead": run.ahead,
                        "dry_run": dry_run,
                        "partitioned": partitioned,
                        "converted": None
                        if converted is None
                        else {
                            "rows": converted.rows,
                            "seconds": round(converted.seconds, 3),
                            "lock_seconds": round(converted.lock_seconds, 3),
                            "kept": converted.kept,
                        },
                        "partitions": listed,
                        "created": run.created,
                        "dropped": run.dropped,
                        "detached": run.detached,
                    },
                    indent=2,
                )
            )
            return
        if partitioned:
            self.line(_table(listed))
        if dry_run:
            self.line("Dry run: nothing was changed.")


def _range(partition: dict[str, Any]) -> str:
    return f"{partition['from'] or 'everything earlier'} to {partition['to']}"


def _table(listed: list[dict[str, Any]]) -> str:
    rows = [("partition", "from", "to", "est. rows")]
    for partition in listed:
        if partition["catch_all"]:
            span = ("(catch-all)", "")
        else:
            span = (partition["from"] or "(everything earlier)", partition["to"])
        rows.append((partition["name"], *span, f"{partition['rows']:,}"))
    widths = [max(len(row[column]) for row in rows) for column in range(3)]
    return "\n".join(
        f"  {name:<{widths[0]}}  {low:<{widths[1]}}  {high:<{widths[2]}}  {estimate:>9}"
        for name, low, high, estimate in rows
    )
