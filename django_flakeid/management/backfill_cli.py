"""``manage.py flakeid backfill``: its arguments, and its output with a progress bar."""

from __future__ import annotations

from argparse import _SubParsersAction
from typing import Any

from django.apps import apps
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections, models

from ..backfill import DEFAULT_BATCH_SIZE, backfill
from ..errors import FlakeIDError
from ..progress import Progress, ProgressDisplay


def add_backfill_parser(subcommands: _SubParsersAction[CommandParser]) -> None:
    parser = subcommands.add_parser(
        "backfill",
        help="Fill the empty values of a SnowflakeField added to a table with rows.",
        description="Give each row whose FIELD is NULL a Snowflake ID, in batches committed "
        "one by one; run it again to resume. With --from-field, each ID carries the time in "
        "that row's field, and ID order follows it.",
    )
    parser.add_argument("model", metavar="app_label.Model", help="The model, e.g. shop.Order.")
    parser.add_argument("field", help="The SnowflakeField to fill (nullable).")
    parser.add_argument(
        "--from-field",
        metavar="FIELD",
        help="A DateTimeField of the model, e.g. created_at, whose value becomes each ID's "
        "time (default: new IDs, in primary key order).",
    )
    parser.add_argument(
        "--batch-size",
        type=int,
        default=DEFAULT_BATCH_SIZE,
        metavar="N",
        help=f"Rows per batch, each batch its own transaction (default: {DEFAULT_BATCH_SIZE}).",
    )
    parser.add_argument(
        "--database",
        metavar="ALIAS",
        help="The database to fill (default: where the router writes the model).",
    )


def run_backfill(command: BaseCommand, options: dict[str, Any]) -> None:
    stdout = command.stdout
    model = _model(options["model"])
    label = f"{model._meta.label}.{options['field']}"
    source = options["from_field"]
    database = options["database"]
    if database is not None and database not in connections:
        raise CommandError(f"There is no database {database!r} in DATABASES.")

    display = ProgressDisplay.on(stdout)

    def announce(progress: Progress) -> None:
        how = f"each ID stamped with the row's {source}" if source else "new IDs in key order"
        stdout.write(f"Filling {label}: {_rows(progress.total, 'empty row')}, {how}.")

    try:
        result = backfill(
            model,
            options["field"],
            from_field=source,
            batch_size=options["batch_size"],
            using=database,
            progress=display.announcing(announce),
        )
    except (FlakeIDError, DatabaseError) as error:
        raise CommandError(str(error).strip()) from None
    finally:
        display.close()
    if result.filled:
        stdout.write(f"Filled {_rows(result.filled, 'row')} in {result.seconds:.1f} s.")
    else:
        stdout.write(f"{label} has no empty rows: nothing to do.")


def _model(label: str) -> type[models.Model]:
    try:
        return apps.get_model(label)
    except (LookupError, ValueError):
        raise CommandError(
            f"{label!r} is not an installed model: expected app_label.Model, e.g. shop.Order."
        ) from None


def _rows(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"
