from __future__ import annotations

import difflib
import json
import os
import re
import sys
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any, TypeVar

from django.apps import AppConfig, apps
from django.conf import global_settings, settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.db import DatabaseError, models
from django.db.models.fields import AutoFieldMixin
from django.utils import timezone

from ... import conf
from ...errors import FlakeIDError
from ...fields import SnowflakeField
from ...generator import SnowflakeGenerator
from ...hostclaim import held_on_host
from ...layout import MAX_ID, WIDTH_NAMES, DecodedID, Layout
from ...presets import ALL_PRESETS
from ...serialization import SnowflakeJSONEncoder
from ...timefmt import ms_to_iso
from ..backfill_cli import add_backfill_parser, run_backfill
from ..partitions_cli import add_partitions_parser, run_partitions
from ..rekey_cli import add_rekey_parser, run_rekey

if TYPE_CHECKING:
    from ...models import NodeLease

_DIGITS = re.compile(r"[0-9]+", re.ASCII)
# IDs asked of the generator at once by 'generate': its memory stays the same for any -n.
GENERATE_BATCH = 10_000
_T = TypeVar("_T")


class Command(BaseCommand):
    help = (
        "Decode Snowflake IDs, generate new ones, show the ID layout in effect, or fill a "
        "Snowflake column added to a table with rows."
    )

    # The subcommands read FLAKEID themselves and explain what is wrong with it; 'decode'
    # must work with a broken setting too, given the layout on the command line.
    requires_system_checks = ()

    def add_arguments(self, parser: CommandParser) -> None:
        subcommands = parser.add_subparsers(
            dest="subcommand",
            required=True,
            title="subcommands",
            metavar="{decode,generate,info,leases,backfill,rekey,partitions}",
        )

        decode = subcommands.add_parser(
            "decode",
            help="Show the time, datacenter, machine and sequence in each ID.",
            description="Show the time, datacenter, machine and sequence in each ID. A value "
            "below the layout's first Snowflake ID is an integer key from before Snowflake IDs "
            "(a legacy key): it holds none of them.",
        )
        decode.add_argument("ids", nargs="+", metavar="id", help="An ID, e.g. 4327518543572992001.")
        self.add_format_argument(
            decode,
            "In JSON each id is a string, as is any other integer above 2**53 - 1 (JavaScript "
            "and jq would round it), such as a timestamp_ms past the year 287396.",
        )
        layout = decode.add_argument_group(
            "layout", "Decode IDs made with another layout; FLAKEID gives the rest."
        )
        layout.add_argument(
            "--preset", help=f"Start from a named preset: {', '.join(ALL_PRESETS)}."
        )
        for name in WIDTH_NAMES:
            layout.add_argument(
                f"--{name.replace('_', '-')}",
                type=int,
                metavar="BITS",
                help=f"Width of the {name.removesuffix('_bits')} field.",
            )
        layout.add_argument(
            "--epoch-ms", type=int, metavar="MS", help="The epoch, in Unix milliseconds."
        )

        generate = subcommands.add_parser(
            "generate",
            help="Print new IDs from the generator FLAKEID describes.",
            description="Print new IDs from the generator FLAKEID describes, one per line, as "
            "they are made: any count runs in the same memory.",
        )
        generate.add_argument(
            "-n", "--count", type=int, default=1, help="How many IDs to print (default: 1)."
        )
        self.add_format_argument(
            generate, "JSON is an array of strings (JavaScript and jq would round IDs as numbers)."
        )

        info = subcommands.add_parser(
            "info",
            help="Show the layout, node identity and capacity in effect.",
            description="Show the layout, node identity (and where it came from) and capacity, "
            "and the installed apps whose models get another auto field than Snowflake's.",
        )
        self.add_format_argument(
            info,
            "In JSON runs_out_ms is a string (above 2**53 with the minimal preset), as is any "
            "other integer above 2**53 - 1 (JavaScript and jq would round it); epoch_ms is a "
            "number.",
        )

        leases = subcommands.add_parser(
            "leases",
            help="List the machine IDs leased in the database.",
            description="List the machine IDs leased in the database (machine_id 'lease'): "
            "datacenter, machine, holder host and pid, expiry and high-water mark.",
        )
        leases.add_argument(
            "--all", action="store_true", help="Also list machine IDs that are free now."
        )
        self.add_format_argument(
            leases,
            "In JSON high_water_ms is a number: a time in milliseconds stays below 2**53 until "
            "the year 287396.",
        )

        add_backfill_parser(subcommands)
        add_rekey_parser(subcommands)
        add_partitions_parser(subcommands)

    def add_format_argument(self, parser: CommandParser, in_json: str) -> None:
        # in_json says which numbers stay numbers: jq and JavaScript read each as a double,
        # which rounds an integer above 2**53.
        parser.add_argument(
            "--format",
            choices=("text", "json"),
            default="text",
            help=f"Output format (default: text). {in_json}",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        subcommand = options["subcommand"]
        if subcommand == "decode":
            self.decode(options)
        elif subcommand == "generate":
            self.generate(options)
        elif subcommand == "leases":
            self.leases(options)
        elif subcommand == "backfill":
            self.backfill(options)
        elif subcommand == "rekey":
            run_rekey(self, options)
        elif subcommand == "partitions":
            run_partitions(self, options)
        else:
            self.info(options)

    def decode(self, options: dict[str, Any]) -> None:
        layout = self.layout_from(options)
        decoded = [layout.decode(_parse_id(text)) for text in options["ids"]]
        # The boundary is the one of the layout the IDs are read with, options included.
        legacy = {item.raw for item in decoded if item.raw < layout.min_snowflake_id}
        if options["format"] == "json":
            self.write_json(
                [
                    {"id": str(item.raw), "legacy": True}
                    if item.raw in legacy
                    else _decoded_as_dict(item)
                    for item in decoded
                ]
            )
            return
        blocks = []
        for item in decoded:
            if item.raw in legacy:
                blocks.append(
                    f"{item.raw}\n  legacy key    an integer key from before Snowflake IDs "
                    f"(they start at {layout.min_snowflake_id}): it holds no time"
                )
                continue
            local = _local_time(item)
            blocks.append(
                "\n".join(
                    (
                        str(item.raw),
                        f"  generated at  {item.generated_at}",
                        f"  local time    {local} ({timezone.get_current_timezone_name()})"
                        if local
                        else "  local time    -",
                        f"  datacenter    {item.datacenter_id}",
                        f"  machine       {item.machine_id}",
                        f"  sequence      {item.sequence}",
                    )
                )
            )
        self.stdout.write("\n\n".join(blocks))

    def layout_from(self, options: dict[str, Any]) -> Layout:
        widths: dict[str, int] = {}
        preset = options["preset"]
        if preset is not None:
            if preset not in ALL_PRESETS:
                close = difflib.get_close_matches(preset, list(ALL_PRESETS), n=1)
                suggestion = f" Did you mean {close[0]!r}?" if close else ""
                raise CommandError(
                    f"Unknown preset {preset!r}; choose one of {', '.join(ALL_PRESETS)}."
                    + suggestion
                )
            widths.update(ALL_PRESETS[preset])
        for name in WIDTH_NAMES:
            if options[name] is not None:
                widths[name] = options[name]
        epoch_ms = options["epoch_ms"]
        if len(widths) < len(WIDTH_NAMES) or epoch_ms is None:
            configured = _configured(conf.get_layout)
            widths = {name: getattr(configured, name) for name in WIDTH_NAMES} | widths
            if epoch_ms is None:
                epoch_ms = configured.epoch_ms
        try:
            return Layout(**widths, epoch_ms=epoch_ms)
        except FlakeIDError as error:
            raise CommandError(f"Invalid layout: {error}.") from None

    def generate(self, options: dict[str, Any]) -> None:
        count = options["count"]
        if count < 1:
            raise CommandError(f"-n/--count must be 1 or more, got {count}.")
        generator = _configured(conf.get_generator)
        try:
            self.stream_ids(generator, count, as_json=options["format"] == "json")
        except BrokenPipeError:
            # The reader has what it wanted (`generate -n 1000000 | head`): stop quietly, as
            # shell tools do. What is left in the buffer would fail again at exit.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())

    def stream_ids(self, generator: SnowflakeGenerator, count: int, *, as_json: bool) -> None:
        written = 0
        while written < count:
            try:
                batch = generator.next_ids(min(GENERATE_BATCH, count - written))
            except FlakeIDError as error:
                raise CommandError(str(error)) from None
            if as_json:
                # The same text as json.dumps(ids, indent=2), one batch at a time.
                items = ",\n".join(map('  "{}"'.format, batch))
                self.stdout.write(("," if written else "[") + "\n" + items, ending="")
            else:
                self.stdout.write("\n".join(map(str, batch)))
            self.stdout.flush()
            written += len(batch)
        if as_json:
            self.stdout.write("\n]")

    def info(self, options: dict[str, Any]) -> None:
        config = _configured(conf.get_config)
        layout, node, epoch = config.layout, config.node, config.epoch_ms
        capacity = layout.capacity()
        claims = self.claims(config)
        others = _other_auto_fields()
        if options["format"] == "json":
            self.write_json(
                {
                    "preset": config.preset_name,
                    **{name: getattr(layout, name) for name in WIDTH_NAMES},
                    "epoch_ms": layout.epoch_ms,
                    "epoch": ms_to_iso(layout.epoch_ms),
                    "epoch_source": epoch.source,
                    "datacenter_id": node.datacenter_id.value,
                    "datacenter_id_source": node.datacenter_id.source,
                    "machine_id": node.machine_id.value,
                    "machine_id_source": node.machine_id.source,
                    "claims": claims,
                    "capacity": {
                        "years": capacity.timestamp_range_years,
                        "datacenters": capacity.max_datacenters,
                        "machines_per_datacenter": capacity.max_machines_per_dc,
                        "nodes": capacity.total_nodes,
                        "ids_per_second_per_node": capacity.ids_per_sec_per_node,
                        # Above 2**53 for 53 timestamp bits or more, the minimal preset's.
                        "runs_out_ms": str(capacity.runs_out_ms),
                        "runs_out_at": capacity.runs_out_at,
                    },
                    "default_auto_field": settings.DEFAULT_AUTO_FIELD,
                    "other_auto_fields": others,
                }
            )
            return
        widths = ", ".join(
            f"{getattr(layout, name)} {name.removesuffix('_bits')}" for name in WIDTH_NAMES
        )
        self.stdout.write(
            "\n".join(
                (
                    f"Layout      {config.preset_name or 'custom'} ({widths} bits)",
                    f"Epoch       {ms_to_iso(layout.epoch_ms)} "
                    f"({layout.epoch_ms} ms, {epoch.describe()})",
                    f"Datacenter  {node.datacenter_id.value} ({node.datacenter_id.describe()})",
                    f"Machine     {node.machine_id.value} ({node.machine_id.describe()})"
                    + _MACHINE_MODES[node.machine_mode].format(database=config.lease_database),
                    f"Claims      {_describe_claims(claims, node.machine_mode)}",
                    f"Capacity    {capacity.timestamp_range_years} years, "
                    f"{_count(capacity.max_datacenters, 'datacenter')} x "
                    f"{_count(capacity.max_machines_per_dc, 'machine')} "
                    f"({_count(capacity.total_nodes, 'node')}), "
                    f"{capacity.ids_per_sec_per_node:,} IDs/s per node",
                    f"Runs out    {capacity.runs_out_at}",
                    f"Auto field  {settings.DEFAULT_AUTO_FIELD} ("
                    + (
                        "Django's default"
                        if settings.DEFAULT_AUTO_FIELD == global_settings.DEFAULT_AUTO_FIELD
                        else "setting DEFAULT_AUTO_FIELD"
                    )
                    + ")",
                    f"Other keys  {_describe_other_auto_fields(others)}",
                )
            )
        )

    def claims(self, config: conf.Config) -> list[dict[str, Any]]:
        """Who holds machine IDs of this layout and datacenter now, without claiming any."""
        datacenter = config.node.datacenter_id.value
        if config.node.machine_mode == "lease":
            return [
                {"machine_id": row.machine_id, "holder": f"{row.host} pid {row.pid}"}
                for row in self.lease_rows(config.lease_database, config.layout, datacenter)
            ]
        return [
            {"machine_id": machine, "holder": holder}
            for machine, holder in held_on_host(config.layout, datacenter)
        ]

    def lease_rows(
        self,
        using: str,
        layout: Layout | None = None,
        datacenter: int | None = None,
        *,
        free_too: bool = False,
    ) -> list[NodeLease]:
        """The lease table's rows (held ones only, unless ``free_too``), as a clear error."""
        from ...leases import TABLE_MARKER, layout_key
        from ...models import NodeLease

        rows = NodeLease.objects.using(using).exclude(layout=TABLE_MARKER["layout"])
        if not free_too:
            rows = rows.exclude(holder="")
        if layout is not None:
            rows = rows.filter(layout=layout_key(layout), datacenter_id=datacenter)
        try:
            return list(rows)
        except DatabaseError as error:
            raise CommandError(
                f"Cannot read the leases from database '{using}' ({error}); "
                "run 'manage.py migrate django_flakeid'."
            ) from None

    def leases(self, options: dict[str, Any]) -> None:
        using = _configured(conf.get_config).lease_database
        found = self.lease_rows(using, free_too=options["all"])
        records = [
            {
                "layout": row.layout,
                "datacenter_id": row.datacenter_id,
                "machine_id": row.machine_id,
                "host": row.host if row.holder else None,
                "pid": row.pid if row.holder else None,
                "expires_at": row.expires_at.isoformat() if row.expires_at and row.holder else None,
                "high_water_ms": row.high_water_ms,
                "high_water_at": ms_to_iso(row.high_water_ms) if row.high_water_ms else None,
            }
            for row in found
        ]
        if options["format"] == "json":
            self.write_json(records)
            return
        if not records:
            self.stdout.write("No machine ID is leased." if not options["all"] else "No leases.")
            return
        lines = [f"{'layout':24} {'dc':>3} {'machine':>7}  {'holder':32} {'expires':25} high-water"]
        for row, record in zip(found, records, strict=True):
            holder = f"{row.host} pid {row.pid}" if row.holder else "free"
            expires = (
                _local(row.expires_at).isoformat(timespec="seconds")
                if row.expires_at and row.holder
                else "-"
            )
            lines.append(
                f"{row.layout:24} {row.datacenter_id:>3} {row.machine_id:>7}  "
                f"{holder:32} {expires:25} {record['high_water_at'] or '-'}"
            )
        self.stdout.write("\n".join(lines))

    def backfill(self, options: dict[str, Any]) -> None:
        run_backfill(self, options)

    def write_json(self, data: object) -> None:
        self.stdout.write(json.dumps(data, indent=2, cls=SnowflakeJSONEncoder))


_MACHINE_MODES = {
    "fixed": "",
    "auto": ": each process claims the lowest machine ID free on this host",
    "lease": ": each process leases a machine ID from database '{database}'",
}


def _describe_claims(claims: list[dict[str, Any]], mode: str) -> str:
    where = "leased in the database" if mode == "lease" else "held on this host"
    if not claims:
        return f"none {where}"
    listed = ", ".join(f"{claim['machine_id']} ({claim['holder']})" for claim in claims)
    return f"{where}: {listed}"


def _other_auto_fields() -> list[dict[str, Any]]:
    """The apps with models whose auto-created key is another auto field than Snowflake's."""
    found = []
    for config in apps.get_app_configs():
        count = sum(
            1 for model in config.get_models(include_auto_created=True) if _keeps_other_key(model)
        )
        if count:
            path, source = _default_auto_field(config)
            found.append(
                {
                    "app": config.label,
                    "auto_field": path,
                    "source": source,
                    "models": count,
                    # Their migrations create the tables with this key: a project cannot
                    # change it.
                    "django_contrib": config.name.startswith("django.contrib."),
                }
            )
    return found


def _keeps_other_key(model: type[models.Model]) -> bool:
    opts = model._meta
    key = opts.pk
    # A proxy shares its table, and a child of multi-table inheritance keys on its parent.
    return (
        not opts.proxy
        and key is not None
        and key.auto_created
        and isinstance(key, AutoFieldMixin)
        and not isinstance(key, SnowflakeField)
    )


def _default_auto_field(config: AppConfig) -> tuple[str, str]:
    """The auto field an app's models get, and where it is set, as Django chooses it."""
    for klass in type(config).__mro__:
        if klass is AppConfig:
            break
        if "default_auto_field" in vars(klass):
            return (
                str(vars(klass)["default_auto_field"]),
                f"{klass.__module__}.{klass.__qualname__}.default_auto_field",
            )
    return settings.DEFAULT_AUTO_FIELD, "DEFAULT_AUTO_FIELD"


def _describe_other_auto_fields(others: list[dict[str, Any]]) -> str:
    lines = [
        f"{other['app']}: {_count(other['models'], 'model')} with {other['auto_field']} "
        f"({other['source']})"
        for other in others
        if not other["django_contrib"]
    ]
    # Listed apart and grouped: they are in every project and nothing there is to be done.
    kept: dict[str, list[dict[str, Any]]] = {}
    for other in others:
        if other["django_contrib"]:
            kept.setdefault(other["auto_field"], []).append(other)
    for path, group in kept.items():
        labels = ", ".join(other["app"] for other in group)
        total = sum(other["models"] for other in group)
        lines.append(
            f"{labels}: {_count(total, 'model')} with {path} "
            "(Django's own apps; their migrations fix it)"
        )
    return "\n            ".join(lines) or "none"


def _configured(getter: Callable[[], _T]) -> _T:
    try:
        return getter()
    except FlakeIDError as error:
        raise CommandError(str(error)) from None


def _count(number: int, noun: str) -> str:
    return f"{number:,} {noun}{'' if number == 1 else 's'}"


def _parse_id(text: str) -> int:
    # The same rule as the REST field and the URL converter: digits only, no spaces or signs.
    if not _DIGITS.fullmatch(text):
        raise CommandError(
            f"{_shorten(text)!r} is not an ID: expected a whole number from 0 to {MAX_ID}."
        )
    # Compared as text first: int() refuses numbers of more than 4,300 digits.
    significant = text.lstrip("0") or "0"
    if len(significant) > len(str(MAX_ID)) or int(significant) > MAX_ID:
        raise CommandError(f"{_shorten(text)!r} is not an ID: IDs go from 0 to {MAX_ID}.")
    return int(significant)


def _shorten(text: str) -> str:
    return text if len(text) <= 40 else f"{text[:20]}...{text[-10:]} ({len(text)} characters)"


def _local(moment: datetime) -> datetime:
    # With USE_TZ = False the database hands back naive datetimes, already in local time.
    return timezone.localtime(moment) if timezone.is_aware(moment) else moment


def _local_time(decoded: DecodedID) -> str | None:
    try:
        moment = decoded.datetime
    except FlakeIDError:
        return None
    return timezone.localtime(moment).isoformat(timespec="milliseconds")


def _decoded_as_dict(decoded: DecodedID) -> dict[str, Any]:
    return {
        "id": str(decoded.raw),
        "timestamp_ms": decoded.timestamp_ms,
        "generated_at": decoded.generated_at,
        "local_time": _local_time(decoded),
        "datacenter_id": decoded.datacenter_id,
        "machine_id": decoded.machine_id,
        "sequence": decoded.sequence,
    }
