"""``manage.py flakeid rekey``: its arguments, the plan it shows, and its progress."""

from __future__ import annotations

from argparse import _SubParsersAction
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, connections

from ..backfill import DEFAULT_BATCH_SIZE, check_batch_size
from ..errors import FlakeIDError
from ..progress import ProgressDisplay
from ..rekey import RekeyError, RekeyPlan, plan_rekey, rekey
from .backfill_cli import _model, _rows


def add_rekey_parser(subcommands: _SubParsersAction[CommandParser]) -> None:
    parser = subcommands.add_parser(
        "rekey",
        help="Give a model's legacy rows Snowflake keys, and every reference the new keys.",
        description="Give each row whose key is below the layout's first Snowflake ID a "
        "Snowflake key, and rewrite every column that refers to it: foreign keys and "
        "one-to-ones of any installed app, self-references, many-to-many tables, multi-table "
        "children and, when asked, generic relations. Batches commit one by one; run it again "
        "to resume. What it cannot do safely is refused before anything is written.",
    )
    parser.add_argument("model", metavar="app_label.Model", help="The model, e.g. shop.Order.")
    parser.add_argument(
        "--from-field",
        metavar="FIELD",
        help="A DateTimeField of the model, e.g. created_at, whose value becomes each new "
        "key's time (default: new IDs, in key order).",
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
        help="The database to rewrite (default: where the router writes the model).",
    )
    generic = parser.add_mutually_exclusive_group()
    generic.add_argument(
        "--generic-relations",
        action="store_true",
        dest="generic_relations",
        help="Also rewrite the object IDs of generic relations that point at the rows.",
    )
    generic.add_argument(
        "--no-generic-relations",
        action="store_false",
        dest="generic_relations",
        help="Leave generic relations as they are, pointing at the old keys.",
    )
    parser.set_defaults(generic_relations=None)
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="Show what would be rewritten, after every check, and write nothing.",
    )
    parser.add_argument(
        "--noinput",
        "--no-input",
        action="store_false",
        dest="interactive",
        help="Do not ask for confirmation.",
    )


def run_rekey(command: BaseCommand, options: dict[str, Any]) -> None:
    stdout = command.stdout
    model = _model(options["model"])
    source = options["from_field"]
    database = options["database"]
    if database is not None and database not in connections:
        raise CommandError(f"There is no database {database!r} in DATABASES.")
    arguments: dict[str, Any] = {
        "from_field": source,
        "using": database,
        "generic_relations": options["generic_relations"],
    }

    display = ProgressDisplay.on(stdout)
    try:
        check_batch_size(options["batch_size"], RekeyError)
        plan = plan_rekey(model, **arguments)
        if not plan.legacy:
            stdout.write(f"{plan.model} has no legacy keys (below {plan.below}): nothing to do.")
            return
        how = f"each stamped with the row's {source}" if source else "new IDs in key order"
        stdout.write(
            f"Rekeying {plan.model}: {_rows(plan.legacy, 'legacy row')} (keys below "
            f"{plan.below}), {how}."
        )
        stdout.write(_described(plan))
        if options["dry_run"]:
            stdout.write("Dry run: nothing was written.")
            return
        if options["interactive"] and not _confirmed():
            raise CommandError("Rekeying cancelled.")
        result = rekey(
            model, batch_size=options["batch_size"], progress=display.update, **arguments
        )
    except (FlakeIDError, DatabaseError) as error:
        raise CommandError(str(error).strip()) from None
    finally:
        display.close()
    stdout.write(
        f"Rekeyed {_rows(result.rekeyed, 'row')} and {_rows(result.references, 'reference')} "
        f"in {result.seconds:.1f} s."
    )


def _described(plan: RekeyPlan) -> str:
    width = max(len(label) for label in (*plan.left, *(ref.label for ref in plan.references)))
    lines = ["It rewrites:"]
    for reference in plan.references:
        note = "" if reference.indexed else " (no index: each batch reads the whole table)"
        lines.append(f"  {reference.label:<{width}}  {reference.kind}{note}")
    if plan.left:
        lines.append("It leaves as they are (they will keep pointing at the old keys):")
        lines.extend(f"  {label:<{width}}  generic relation" for label in plan.left)
    return "\n".join(lines)


def _confirmed() -> bool:
    answer = input(
        "Links, caches, search indexes, exports and other systems that hold these keys will "
        "not follow.\nType 'yes' to rekey, or 'no' to cancel: "
    )
    return answer.strip().lower() == "yes"
