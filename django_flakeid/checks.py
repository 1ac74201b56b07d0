"""System checks for the FLAKEID setting and the node identity.

Misused fields are reported by ``SnowflakeField.check()``; their IDs are listed here too so that
one table holds every ID this app can report.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Iterable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from django.apps import AppConfig, apps
from django.core.checks import CheckMessage, Error, Warning
from django.db import DatabaseError, connections, router, transaction
from django.db.models import F, Field, ForeignKey, Model, Q, UniqueConstraint
from django.utils import timezone

from . import conf, lockdir
from .errors import FlakeIDError
from .fields import SnowflakeField
from .layout import DEFAULT_EPOCH_MS, Layout
from .partition_plan import count, plan_partitions
from .partition_sql import backend_for
from .partitions import SnowflakePartitions
from .settings_reader import (
    PROBLEM_CHECKS,
    Config,
    Problem,
    ProblemKind,
    validate,
    validation_inputs,
)
from .timefmt import ms_to_iso, unix_ms

if TYPE_CHECKING:
    from .partition_sql import Partition

# The IDs of the checks below, with what each reports. A retired check keeps its line: numbers
# are never reused. The IDs of problems with the setting are declared with those problems.
_OWN_CHECKS: tuple[tuple[str, str], ...] = (
    ("django_flakeid.E014", "The epoch is in the future."),
    ("django_flakeid.E015", "The layout has run out: its timestamp cannot hold the current time."),
    ("django_flakeid.E022", "FLAKEID_LOCK_DIR, the folder of host claims, is unusable or unsafe."),
    ("django_flakeid.W001", "The layout runs out within 10 years."),
    ("django_flakeid.W002", "Deploy: machine IDs are unique per host only, and no datacenter_id "
     "tells the hosts apart."),
    ("django_flakeid.W003", "Deploy: a fixed machine_id lets only one process per host make IDs."),
    ("django_flakeid.E101", "A unique SnowflakeField has a constant default."),
    ("django_flakeid.E102", "A SnowflakeField has a db_default."),
    ("django_flakeid.W201", "Database: a partitioned model's database cannot partition: its "
     "table stays whole there."),
    ("django_flakeid.E202", "MariaDB: a foreign key to or from a partitioned model keeps its "
     "database constraint."),
    ("django_flakeid.E203", "A partitioned model has a unique field or constraint without its "
     "primary key."),
    ("django_flakeid.E204", "A partitioned model's primary key is not a SnowflakeField, or it "
     "declares SnowflakePartitions twice."),
    ("django_flakeid.W205", "Database: a partitioned table's partitions run out within 'ahead' "
     "intervals, or its catch-all holds rows."),
)  # fmt: skip


def _table_order(entry: tuple[str, str]) -> tuple[int, str, int]:
    # The README's order: errors in the setting, then its warnings, then the fields' E1xx,
    # then the partitioned models' 2xx.
    level, number = entry[0][-4], int(entry[0][-3:])
    return number // 100, level, number


# Every ID, with what it reports.
CHECKS: tuple[tuple[str, str], ...] = tuple(
    sorted((*PROBLEM_CHECKS.values(), *_OWN_CHECKS), key=_table_order)
)
PROBLEM_IDS: dict[ProblemKind, str] = {
    kind: check_id for kind, (check_id, _summary) in PROBLEM_CHECKS.items()
}

WARN_WITHIN_YEARS = 10
_MS_PER_YEAR = 365.25 * 24 * 60 * 60 * 1000

_last_validation: tuple[tuple[object, ...], tuple[Config | None, list[Problem]]] | None = None


def _validated() -> tuple[Config | None, list[Problem]]:
    """:func:`validate`, run once for all the checks of one ``manage.py check``.

    The result is kept only while what validation reads is unchanged, so a check never reports
    on a setting or an environment that is no longer the one in effect.
    """
    global _last_validation
    inputs = validation_inputs()
    if _last_validation is None or _last_validation[0] != inputs:
        _last_validation = (inputs, validate())
    return _last_validation[1]


def check_setting(**kwargs: Any) -> list[CheckMessage]:
    """Report everything wrong with ``settings.FLAKEID`` and the environment variables."""
    _config, problems = _validated()
    return [Error(problem.message, hint=problem.hint, id=problem.check_id) for problem in problems]


def check_layout_lifetime(**kwargs: Any) -> list[CheckMessage]:
    """Report an epoch in the future, and a layout that has run out or soon will."""
    config, _problems = _validated()
    if config is None:
        return []
    layout, epoch = config.layout, config.epoch_ms
    now_ms = time.time_ns() // 1_000_000
    if now_ms < layout.epoch_ms:
        return [
            Error(
                f"The epoch {ms_to_iso(layout.epoch_ms)} from {epoch.describe()} is in the "
                "future; no ID can be generated before then.",
                hint=f"Set {epoch.target} to a time in the past, "
                f"e.g. {DEFAULT_EPOCH_MS} (2020-01-01).",
                id="django_flakeid.E014",
            )
        ]
    runs_out = ms_to_iso(layout.max_timestamp_ms)
    if now_ms > layout.max_timestamp_ms:
        return [
            Error(
                f"The ID layout ran out at {runs_out}: a {layout.timestamp_bits}-bit timestamp "
                "cannot hold the current time.",
                hint="A later epoch_ms or more timestamp_bits re-stamps times already used, "
                "so new IDs can repeat stored ones: use such a layout only for tables that "
                "start empty (see 'Changing the layout' in the README).",
                id="django_flakeid.E015",
            )
        ]
    if layout.max_timestamp_ms - now_ms < WARN_WITHIN_YEARS * _MS_PER_YEAR:
        return [
            Warning(
                f"The ID layout runs out at {runs_out}, less than {WARN_WITHIN_YEARS} years "
                "from now.",
                hint="After that time no ID can be generated. A later epoch_ms or more "
                "timestamp_bits re-stamps times already used, so new IDs can repeat stored "
                "ones: plan it for tables that start empty (see 'Changing the layout' in the "
                "README).",
                id="django_flakeid.W001",
            )
        ]
    return []


def check_node_identity(**kwargs: Any) -> list[CheckMessage]:
    """Deploy check: warn when processes on several hosts, or on one host, could share a node."""
    config, _problems = _validated()
    if config is None:
        return []
    node = config.node
    if node.machine_mode == "fixed":
        return [
            Warning(
                f"machine_id is fixed at {node.machine_id.value} ({node.machine_id.describe()}): "
                "only one process per host can generate IDs with it; others get NodeInUseError.",
                hint="If a host runs several worker processes, set FLAKEID['machine_id'] to "
                "'lease' (or to 'auto', with a datacenter_id per host).",
                id="django_flakeid.W003",
            )
        ]
    if node.machine_mode == "auto" and node.datacenter_id.source == "default":
        return [
            Warning(
                "Machine IDs are claimed per host ('auto') and no datacenter_id is set, so two "
                "hosts can generate the same IDs.",
                hint="Give each host its own FLAKEID_DATACENTER_ID (or 'datacenter_id': "
                "'hostname' on a StatefulSet), or set FLAKEID['machine_id'] to 'lease'."
                if config.layout.datacenter_bits
                else "This layout has no datacenter field to tell hosts apart: set "
                "FLAKEID['machine_id'] to 'lease'.",
                id="django_flakeid.W002",
            )
        ]
    return []


def check_lock_dir(**kwargs: Any) -> list[CheckMessage]:
    """Report a folder of host claims that is relative, unusable, or open to other users."""
    found = lockdir.problem()
    if found is None:
        return []
    message, hint = found
    return [Error(f"{message[:1].upper()}{message[1:]}.", hint=hint, id="django_flakeid.E022")]


# Partitioned models -----------------------------------------------------------------------------


def _declarations(
    app_configs: Sequence[AppConfig] | None,
) -> list[tuple[type[Model], list[SnowflakePartitions]]]:
    """The models that declare SnowflakePartitions, each with every declaration it has."""
    if app_configs is None:
        models = apps.get_models()
    else:
        models = [model for config in app_configs for model in config.get_models()]
    return _declared_in(models)


def _declared_in(
    models: Iterable[type[Model]],
) -> list[tuple[type[Model], list[SnowflakePartitions]]]:
    found = []
    for model in models:
        if model._meta.proxy:
            continue  # its concrete model has the table, and the declaration
        declared = [c for c in model._meta.constraints if isinstance(c, SnowflakePartitions)]
        if declared:
            found.append((model, declared))
    return found


def _unpartitioned(model: type[Model], alias: str) -> CheckMessage:
    return Warning(
        f"SnowflakePartitions does nothing on database '{alias}' "
        f"({connections[alias].display_name}): the table stays whole there.",
        hint="Time partitions need PostgreSQL or MariaDB; elsewhere the model works unpartitioned "
        "and 'manage.py flakeid partitions' refuses to run.",
        obj=model,
        id="django_flakeid.W201",
    )


def check_partition_key(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E204: a partitioned model keyed by anything but a SnowflakeField, or declared twice."""
    found: list[CheckMessage] = []
    for model, declared in _declarations(app_configs):
        pk = model._meta.pk
        if not isinstance(pk, SnowflakeField):
            found.append(
                Error(
                    f"The table is partitioned by its primary key, which is a "
                    f"{type(pk).__name__}, not a SnowflakeField: it holds no time.",
                    hint="Give the model a SnowflakeField primary key (or a "
                    "SnowflakeAutoField), or remove SnowflakePartitions from Meta.constraints.",
                    obj=model,
                    id="django_flakeid.E204",
                )
            )
        if len(declared) > 1:
            names = ", ".join(repr(declaration.name) for declaration in declared)
            found.append(
                Error(
                    f"Meta.constraints holds {len(declared)} SnowflakePartitions ({names}); a "
                    "table is cut one way.",
                    hint="Keep one SnowflakePartitions.",
                    obj=model,
                    id="django_flakeid.E204",
                )
            )
    return found


def check_partition_unique(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E203: a unique field or constraint that leaves out the primary key (the partition key)."""
    found: list[CheckMessage] = []
    for model, _declared in _declarations(app_configs):
        pk = model._meta.pk
        if pk is None:  # pragma: no cover - every concrete model has one
            continue
        key = {pk.name, pk.attname}
        found.extend(
            _unique_without_key(field, "The field is unique", pk.name)
            for field in model._meta.local_fields
            if field.unique and not field.primary_key
        )
        for fields in model._meta.unique_together:
            if not key.intersection(fields):
                what = f"unique_together {tuple(fields)!r} leaves out the primary key"
                found.append(_unique_without_key(model, what, pk.name))
        for constraint in model._meta.constraints:
            if isinstance(constraint, UniqueConstraint) and not key & _named(constraint):
                what = f"The unique constraint {constraint.name!r} leaves out the primary key"
                found.append(_unique_without_key(model, what, pk.name))
    return found


def _named(constraint: UniqueConstraint) -> set[str]:
    """The field names a unique constraint is made of, in its fields or its expressions."""
    names = set(constraint.fields)
    pending: list[Any] = list(constraint.expressions)
    while pending:
        expression = pending.pop()
        if isinstance(expression, F):
            names.add(str(getattr(expression, "name", "")))
        elif hasattr(expression, "get_source_expressions"):
            pending.extend(expression.get_source_expressions())
    return names


def _unique_without_key(obj: object, what: str, pk: str) -> Error:
    return Error(
        f"{what}, but the table is partitioned: PostgreSQL and MariaDB require every unique "
        f"index of a partitioned table to include the partition key, the primary key {pk!r}.",
        hint=f"Remove the uniqueness, or add {pk!r} to it (which makes only the pair unique).",
        obj=obj,
        id="django_flakeid.E203",
    )


def check_partition_foreign_keys(
    app_configs: Sequence[AppConfig] | None = None, **kwargs: Any
) -> list[CheckMessage]:
    """E202: a foreign key constraint to or from a table MariaDB is to partition."""
    # A key can join any two apps: all of them are read, from the registry of the apps checked.
    registry = (app_configs[0].apps if app_configs else None) or apps
    models = registry.get_models()
    # MySQL refuses them too, though it cannot partition at all (W201 from the database check).
    partitioned = {
        model
        for model, _declared in _declared_in(models)
        if connections[router.db_for_write(model)].vendor == "mysql"
    }
    labels = None if app_configs is None else {config.label for config in app_configs}
    found: list[CheckMessage] = []
    for shown, key in _foreign_keys(models) if partitioned else ():
        target = key.related_model
        if not getattr(key, "db_constraint", True) or isinstance(target, str):
            continue  # an unresolved target is reported by Django's own field checks
        if labels is not None and shown.model._meta.app_label not in labels:
            continue
        through = shown is not key
        if target._meta.concrete_model in partitioned:
            subject = target
            what = (
                f"The field's table {key.model._meta.db_table!r} has a foreign key to"
                if through
                else "The field is a foreign key to"
            )
        elif key.model._meta.concrete_model in partitioned and not through:
            subject, what = key.model, "The field is a foreign key of"
        else:
            continue
        found.append(
            Error(
                f"{what} {subject._meta.label}, whose table is partitioned: MariaDB refuses "
                "foreign key constraints to and from partitioned tables.",
                hint="Pass db_constraint=False to the field: Django follows, joins and cascades "
                "the relation the same, without a constraint in the database.",
                obj=shown,
                id="django_flakeid.E202",
            )
        )
    return found


def _foreign_keys(
    models: list[type[Model]],
) -> Iterator[tuple[Field[Any, Any], ForeignKey[Any, Any]]]:
    """Each foreign key Django makes a table with, and the field to report it on.

    A many-to-many field's own table is made by Django: its keys are reported on the field.
    """
    for model in models:
        opts = model._meta
        if opts.proxy or not opts.managed:
            continue
        for field in opts.local_fields:
            if isinstance(field, ForeignKey):
                yield field, field
        for many in opts.local_many_to_many:
            through = many.remote_field.through
            if isinstance(through, type) and through._meta.auto_created:
                for key in through._meta.local_fields:
                    if isinstance(key, ForeignKey):
                        yield many, key


def check_partition_runway(
    app_configs: Sequence[AppConfig] | None = None,
    databases: Sequence[str] | None = None,
    now: dt.datetime | None = None,
    **kwargs: Any,
) -> list[CheckMessage]:
    """W201: a database that cannot partition; W205: partitions running out, or catch-all rows.

    A database check (``migrate``, ``check --database``): it reads the partitions. ``now`` is
    for tests.
    """
    if not databases:
        return []
    try:
        layout = conf.get_layout()
    except FlakeIDError:
        return []  # check_setting reports it
    moment = now or timezone.now()
    found: list[CheckMessage] = []
    for model, declared in _declarations(app_configs):
        alias = router.db_for_write(model)
        if alias not in databases:
            continue
        connection = connections[alias]
        backend = backend_for(connection)
        if backend is None:
            # Said here rather than by every 'check' and 'runserver': a project on SQLite in
            # development and PostgreSQL in production hears of it where it matters, from
            # migrate. Only a connection tells MariaDB from MySQL, which cannot partition.
            found.append(_unpartitioned(model, alias))
            continue
        table = model._meta.db_table
        if not backend.is_partitioned(connection, table):
            continue  # migrate has yet to partition it
        partitions = backend.partitions(connection, table)
        found.extend(_runway(model, alias, declared[0], partitions, layout=layout, now=moment))
    return found


def _runway(
    model: type[Model],
    alias: str,
    declared: SnowflakePartitions,
    partitions: list[Partition],
    *,
    layout: Layout,
    now: dt.datetime,
) -> list[CheckMessage]:
    interval, ahead = declared.interval, declared.ahead
    plan = plan_partitions(partitions, layout, interval, now, ahead=ahead)
    table = model._meta.db_table
    hint = (
        f"Run 'manage.py flakeid partitions {model._meta.label}' daily, from cron: it creates "
        f"the partitions up to {count(ahead, interval)} ahead and moves rows out of the catch-all."
    )
    catch_all = next((part for part in partitions if part.catch_all), None)
    found: list[CheckMessage] = []
    if not plan.covers_now:
        then = "go to its catch-all" if catch_all else "cannot be inserted"
        message = f"No partition of table {table!r} holds the IDs made now: new rows {then}."
        found.append(Warning(message, hint=hint, obj=model, id="django_flakeid.W205"))
    elif plan.create and plan.ends_at is not None:
        found.append(
            Warning(
                f"The partitions of table {table!r} end at "
                f"{ms_to_iso(unix_ms(plan.ends_at))}, fewer than {count(ahead, interval)} after "
                f"the current {interval}.",
                hint=hint,
                obj=model,
                id="django_flakeid.W205",
            )
        )
    if catch_all is not None and _catch_all_holds_rows(model, alias, partitions):
        found.append(
            Warning(
                f"The catch-all partition {catch_all.name!r} of table {table!r} holds rows: "
                "they belong in partitions of their own, and creating one has to move them, "
                "holding a lock while it does.",
                hint=hint,
                obj=model,
                id="django_flakeid.W205",
            )
        )
    return found


def _catch_all_holds_rows(model: type[Model], alias: str, partitions: list[Partition]) -> bool:
    """Whether a row has an ID no other partition takes: a search of the key's index."""
    ranged = [part for part in partitions if not part.catch_all]
    rows = model._base_manager.using(alias)
    if ranged:
        top = max(part.high for part in ranged if part.high is not None)
        outside = Q(pk__gte=top)
        # PostgreSQL's catch-all also takes IDs below the oldest partition once 'before' is gone.
        if ranged[0].low is not None:
            outside |= Q(pk__lt=ranged[0].low)
        rows = rows.filter(outside)
    try:
        with transaction.atomic(using=alias):
            return bool(rows.exists())
    except DatabaseError:
        # migrate runs the checks before the migrations that bring the table in line with the
        # model (a key column renamed, say): nothing is known until they have run.
        return False
