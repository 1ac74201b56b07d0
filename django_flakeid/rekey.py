"""Re-keying: giving the legacy rows of a table Snowflake keys, and every reference to them.

A table switched in place from an ``AutoField`` keeps its old keys 1, 2, 3, ... (legacy keys,
below ``Layout.min_snowflake_id``). :func:`rekey` gives each such row a Snowflake ID and writes
it into every column that holds the old key: foreign keys and one-to-ones of any installed
app, self-references, the through tables of many-to-many fields, the keys of multi-table
children (and what refers to those), and, when asked, the ``object_id`` of generic relations.

One batch of rows is one transaction: its rows are locked, the references are rewritten,
then the keys. PostgreSQL and SQLite check Django's foreign keys at commit, when they hold
again; MariaDB checks each statement, so its checks are off for the batch's session, and on
again after it, whatever happens. A batch that fails is rolled back whole, and a new run
carries on with the legacy rows that are left.

Everything that would make that unsafe is refused before any row is written: a key that is
not a Snowflake field, a reference it cannot follow (several columns, a table Django does
not manage, another database, a foreign key only the database knows), a column too narrow
for a 64-bit ID, and generic relations the caller neither asked to follow nor to leave.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from django.apps import apps as global_apps
from django.core.exceptions import FieldDoesNotExist
from django.db import DatabaseError, connections, models, router, transaction
from django.db.models import Q

from . import conf
from .backfill import (
    DEFAULT_BATCH_SIZE,
    NewIDs,
    Numbering,
    ProgressCallback,
    StampedIDs,
    check_batch_size,
    source_field,
    update_pairs,
)

# The explicit re-export keeps ``django_flakeid.rekey.RekeyError`` valid for type checkers.
from .errors import RekeyError as RekeyError  # noqa: PLC0414
from .fields import SnowflakeField

if TYPE_CHECKING:
    from django.apps.registry import Apps
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.utils import CursorWrapper

__all__ = [
    "DEFAULT_BATCH_SIZE",
    "Reference",
    "RekeyError",
    "RekeyPlan",
    "RekeyResult",
    "plan_rekey",
    "rekey",
]

#: Digits of the largest ID, 2**63 - 1: the shortest text column that holds every key.
ID_DIGITS = 19
#: The databases whose foreign key checks a batch knows how to put off.
VENDORS = frozenset({"postgresql", "mysql", "sqlite"})
_WIDE_INTEGERS = frozenset({"BigIntegerField", "PositiveBigIntegerField", "BigAutoField"})
_TEXTS = frozenset({"CharField", "TextField"})


@dataclass(frozen=True)
class Reference:
    """A column that holds keys of the re-keyed rows, and what it is.

    ``kind`` is ``key``, ``foreign key``, ``one-to-one``, ``self-reference``,
    ``many-to-many``, ``multi-table child`` (a child model's key), ``foreign object`` or
    ``generic relation``; a generic relation holds the key as text when ``text``, and only in
    the rows of ``content_types``. ``indexed`` is False when no index starts with the column,
    so each batch reads the whole table to find its rows.
    """

    label: str
    kind: str
    table: str
    column: str
    cast: str | None
    text: bool = False
    content_type_column: str | None = None
    content_types: tuple[int, ...] = ()
    indexed: bool = True


@dataclass(frozen=True)
class RekeyPlan:
    """What :func:`rekey` would do: the legacy rows, and every column it rewrites.

    ``references[0]`` is the key itself. ``left`` names the generic relations left as they
    are (``generic_relations=False``, or a narrow ``object_id`` no row of the model is in).
    """

    model: str
    database: str
    legacy: int
    below: int
    references: tuple[Reference, ...]
    left: tuple[str, ...] = ()


@dataclass(frozen=True)
class RekeyResult:
    """How many rows got a new key, how many references followed, and in how many seconds."""

    rekeyed: int
    references: int
    seconds: float


def rekey(
    model: type[models.Model],
    *,
    from_field: str | None = None,
    batch_size: int = DEFAULT_BATCH_SIZE,
    using: str | None = None,
    progress: ProgressCallback | None = None,
    generic_relations: bool | None = None,
) -> RekeyResult:
    """Give every legacy row of ``model`` a Snowflake key, and every reference the new key.

    Legacy rows are those whose key is below ``Layout.min_snowflake_id``. With ``from_field``
    (a ``DateTimeField``) each key is stamped with that row's time on the layout's backfill
    node, as :func:`~django_flakeid.backfill.backfill` does; without it the keys are new IDs
    of the project's generator, in key order. ``generic_relations`` says whether generic
    relations that may hold the keys are rewritten (True) or left (False); when there are
    any, one of the two is required. Each batch is one transaction, so an interrupted run
    resumes. What cannot be done safely raises :class:`RekeyError` before any row is
    written. In a ``RunPython`` migration pass the historical model and
    ``using=schema_editor.connection.alias``.
    """
    check_batch_size(batch_size, RekeyError)
    job = _Job(model, from_field, using, generic_relations)
    plan = job.plan()
    if not plan.legacy:
        return RekeyResult(0, 0, 0.0)
    numbering = job.numbering or NewIDs(job.legacy_rows, conf.get_generator(), lock=True)
    rewrite = _Rewrite(connections[job.db], plan.references)
    done, seconds = numbering.run(batch_size, progress, rewrite, partial(_batch, job.db))
    return RekeyResult(done, rewrite.followed, seconds)


def plan_rekey(
    model: type[models.Model],
    *,
    from_field: str | None = None,
    using: str | None = None,
    generic_relations: bool | None = None,
) -> RekeyPlan:
    """What :func:`rekey` would rewrite, after the same checks, without writing anything."""
    return _Job(model, from_field, using, generic_relations).plan()


class _Job:
    def __init__(
        self,
        model: type[models.Model],
        from_field: str | None,
        using: str | None,
        generic_relations: bool | None,
    ) -> None:
        concrete = model._meta.concrete_model
        assert concrete is not None
        self.model = concrete
        self.key = _key(concrete)
        self.db = using or router.db_for_write(concrete)
        self.generic = generic_relations
        self.layout = conf.get_layout()
        self.legacy_rows: models.QuerySet[Any] = concrete._base_manager.db_manager(self.db).filter(
            pk__lt=self.layout.min_snowflake_id
        )
        self.numbering: Numbering | None = None
        if from_field is not None:
            layout = self.layout
            self.numbering = StampedIDs(
                self.legacy_rows,
                source_field(concrete, from_field, RekeyError),
                layout,
                column=self.key.name,
                floor=layout.min_snowflake_id,
                earliest_ms=layout.decode(layout.min_snowflake_id).timestamp_ms,
                too_early="before {at}, a day after the layout's epoch: its ID would be below "
                "Layout.min_snowflake_id and read as a legacy key.",
                job="rekey",
                error=RekeyError,
                lock=True,
            )

    def plan(self) -> RekeyPlan:
        label = self.model._meta.label
        vendor = connections[self.db].vendor
        if vendor not in VENDORS:
            raise RekeyError(
                f"rekey knows how PostgreSQL, MariaDB, MySQL and SQLite check foreign keys, "
                f"not how {connections[self.db].display_name} does."
            )
        below = self.layout.min_snowflake_id
        legacy = self.legacy_rows.count()
        if not legacy:
            return RekeyPlan(label, self.db, 0, below, (self.reference(self.model, self.key),))
        holders, references = self.follow()
        left: list[str] = []
        references += self.generic_references(holders, left)
        references = _checked(connections[self.db], references, left)
        if self.numbering is not None:
            self.numbering.check()
        return RekeyPlan(label, self.db, legacy, below, tuple(references), tuple(left))

    def reference(
        self,
        model: type[models.Model],
        field: models.Field[Any, Any],
        column: models.Field[Any, Any] | None = None,
    ) -> Reference:
        """``field`` of ``model``, whose ``column`` (the field's own by default) holds keys."""
        connection = connections[self.db]
        column = column or field
        if field is self.key:
            kind = "key"
        elif model._meta.auto_created:
            kind = "many-to-many"
        elif isinstance(field, models.OneToOneField) and field.remote_field.parent_link:
            kind = "multi-table child"
        elif not isinstance(field, models.ForeignKey):
            kind = "foreign object"
        elif model._meta.concrete_model is self.model:
            kind = "self-reference"
        elif field.one_to_one:
            kind = "one-to-one"
        else:
            kind = "foreign key"
        return Reference(
            f"{model._meta.label}.{field.name}",
            kind,
            model._meta.db_table,
            str(column.column),
            column.cast_db_type(connection),
        )

    def follow(self) -> tuple[list[models.Field[Any, Any]], list[Reference]]:
        """The fields that hold the keys, and the references among them, key first.

        A field that refers to a field holding the keys holds them too, so what refers to it
        is followed in turn: a multi-table child's key, and the foreign keys to that child.
        """
        tables = [
            model
            for model in self.model._meta.apps.get_models(include_auto_created=True)
            if not model._meta.proxy
        ]
        holders: list[models.Field[Any, Any]] = [self.key]
        references = [self.reference(self.model, self.key)]
        for target in holders:
            for model in tables:
                for field in model._meta.local_fields:
                    column = self.refers(model, field, target)
                    if column is not None and column not in holders:
                        holders.append(column)
                        references.append(self.reference(model, field, column))
        return holders, references

    def refers(
        self,
        model: type[models.Model],
        field: models.Field[Any, Any],
        target: models.Field[Any, Any],
    ) -> models.Field[Any, Any] | None:
        """The column of ``field`` that holds ``target``'s values, if ``field`` refers to it."""
        if not isinstance(field, models.ForeignObject):
            return None
        remote = field.remote_field.model
        if (
            isinstance(remote, str)
            or remote._meta.concrete_model is not target.model._meta.concrete_model
        ):
            return None
        if not any(other is target for other in field.foreign_related_fields):
            return None
        label = f"{model._meta.label}.{field.name}"
        if len(field.foreign_related_fields) > 1:
            raise RekeyError(
                f"{label} refers to {self.model._meta.label} through several columns: rekey "
                "follows single-column references only, so it cannot rewrite it."
            )
        self.check_table(model, label)
        column: models.Field[Any, Any] = field.local_related_fields[0]
        return column

    def check_table(self, model: type[models.Model], label: str) -> None:
        meta = model._meta
        if not meta.managed:
            raise RekeyError(
                f"{label} refers to {self.model._meta.label}, but {meta.label} is not managed "
                "by Django (managed = False): its table may be a view or belong to another "
                "system, so rekey will not rewrite it."
            )
        if not router.allow_migrate_model(self.db, model):
            raise RekeyError(
                f"{label} refers to {self.model._meta.label}, but {meta.label} is not in the "
                f"database {self.db!r}: rekey rewrites one database at a time, in one "
                "transaction per batch."
            )

    def generic_references(
        self, holders: list[models.Field[Any, Any]], left: list[str]
    ) -> list[Reference]:
        """Generic relations that may hold the keys; refused unless the caller chose."""
        registry = self.model._meta.apps
        try:
            content_type = registry.get_model("contenttypes", "ContentType")
        except LookupError:
            return []
        relations = _generic_relations(registry)
        if not relations:
            return []
        # Rows of the models whose keys are the re-keyed ones: proxies, multi-table children.
        keyed = [
            model
            for model in registry.get_models(include_auto_created=True)
            if any(model._meta.pk is holder for holder in holders)
        ]
        lookup = Q()
        for model in keyed:
            lookup |= Q(app_label=model._meta.app_label, model=model._meta.model_name)
        ids = tuple(
            content_type._base_manager.db_manager(self.db)
            .filter(lookup)
            .values_list("pk", flat=True)
        )
        if not ids:
            # No row of any generic relation can name a model that has no content type.
            return []
        names = ", ".join(f"{model._meta.label}.{name}" for model, name, _ct, _fk in relations)
        if self.generic is None:
            raise RekeyError(
                f"Generic relations may point at {self.model._meta.label}: {names}. Pass "
                "generic_relations=True (--generic-relations) to rewrite those that do, or "
                "False (--no-generic-relations) to leave them pointing at the old keys."
            )
        if not self.generic:
            left.extend(f"{model._meta.label}.{name}" for model, name, _ct, _fk in relations)
            return []
        connection = connections[self.db]
        references = []
        for model, name, ct_field, fk_field in relations:
            label = f"{model._meta.label}.{name}"
            self.check_table(model, label)
            references.append(
                Reference(
                    label,
                    "generic relation",
                    model._meta.db_table,
                    str(fk_field.column),
                    fk_field.cast_db_type(connection),
                    content_type_column=str(ct_field.column),
                    content_types=ids,
                )
            )
        return references


def _key(model: type[models.Model]) -> SnowflakeField[Any, Any]:
    meta = model._meta
    if meta.swapped:
        raise RekeyError(f"{meta.label} is swapped for {meta.swapped}: rekey that model.")
    key = meta.pk
    assert key is not None
    if meta.parents:
        parent = next(iter(meta.parents))._meta.label
        raise RekeyError(
            f"{meta.label} takes its key from {parent} (multi-table inheritance): rekey "
            f"{parent}, which rewrites the keys of {meta.label} with its own."
        )
    if not isinstance(key, SnowflakeField):
        raise RekeyError(
            f"The key of {meta.label}, {key.name}, is a {type(key).__name__}, not a "
            "SnowflakeField or SnowflakeAutoField: switch the field first, then rekey its "
            "legacy rows."
        )
    return key


def _generic_relations(
    registry: Apps,
) -> list[tuple[type[models.Model], str, models.Field[Any, Any], models.Field[Any, Any]]]:
    """(model, name, content type field, object ID field) of each generic foreign key.

    Migrations do not record generic foreign keys, so they come from the installed models,
    found in ``registry`` (the historical models of a migration) when it has them.
    """
    if not global_apps.is_installed("django.contrib.contenttypes"):
        return []
    from django.contrib.contenttypes.fields import GenericForeignKey

    found = []
    for installed in global_apps.get_models():
        for relation in installed._meta.private_fields:
            if not isinstance(relation, GenericForeignKey) or relation.model is not installed:
                continue
            try:
                model = registry.get_model(installed._meta.label)
                ct_field = model._meta.get_field(relation.ct_field)
                fk_field = model._meta.get_field(relation.fk_field)
            except (LookupError, FieldDoesNotExist):
                # Not in the database yet at this point of the migrations.
                continue
            found.append((model, relation.name, ct_field, fk_field))
    return found


def _checked(
    connection: BaseDatabaseWrapper, references: list[Reference], left: list[str]
) -> list[Reference]:
    """The references, once the database shows it can take them all; marks their indexes."""
    introspection = connection.introspection
    checked = []
    with connection.cursor() as cursor:
        described: dict[str, dict[str, Any]] = {}
        for reference in references:
            table = reference.table
            if table not in described:
                described[table] = {
                    info.name: info for info in introspection.get_table_description(cursor, table)
                }
                if connection.vendor == "mysql":
                    _check_engine(connection, cursor, table)
            info = described[table].get(reference.column)
            if info is None:
                raise RekeyError(
                    f"{reference.label} has no column {reference.column} in {table}: apply "
                    "the migrations first."
                )
            holds = _holds(connection, info)
            if holds is None or (holds == "text" and reference.kind != "generic relation"):
                if reference.kind == "generic relation" and not _points_at(
                    connection, cursor, reference
                ):
                    left.append(reference.label)
                    continue
                fix = "make it a BigIntegerField first"
                if reference.kind == "key":
                    fix = "apply the migration that switches it to a Snowflake field first"
                elif reference.kind == "generic relation":
                    fix += ", or leave generic relations as they are (generic_relations=False)"
                raise RekeyError(
                    f"{reference.label} ({reference.kind}) is "
                    f"{_described_type(connection, info)} in the database: it cannot hold a "
                    f"Snowflake ID (64 bits); {fix}."
                )
            checked.append(
                Reference(
                    reference.label,
                    reference.kind,
                    reference.table,
                    reference.column,
                    reference.cast,
                    holds == "text",
                    reference.content_type_column,
                    reference.content_types,
                )
            )
        indexed = _scan_constraints(connection, cursor, checked)
        if connection.vendor == "postgresql":
            _check_deferrable(cursor, checked)
    return [
        reference if (reference.table, reference.column) in indexed else _unindexed(reference)
        for reference in checked
    ]


def _unindexed(reference: Reference) -> Reference:
    return Reference(
        reference.label,
        reference.kind,
        reference.table,
        reference.column,
        reference.cast,
        reference.text,
        reference.content_type_column,
        reference.content_types,
        indexed=False,
    )


def _holds(connection: BaseDatabaseWrapper, info: Any) -> str | None:
    """``integer`` or ``text`` for a column that holds every ID, else None."""
    kind = connection.introspection.get_field_type(info.type_code, info)
    if kind in _TEXTS:
        size = _length(info)
        return "text" if size is None or size >= ID_DIGITS else None
    if kind in _WIDE_INTEGERS:
        return "integer"
    # SQLite stores every integer in up to 8 bytes, whatever the declared type.
    if connection.vendor == "sqlite" and kind.endswith(("IntegerField", "AutoField")):
        return "integer"
    return None


def _length(info: Any) -> int | None:
    """The declared length of a text column; None for text without one."""
    for size in (info.display_size, info.internal_size):
        if isinstance(size, int) and 0 < size < 2**31 - 1:
            return size
    return None


def _described_type(connection: BaseDatabaseWrapper, info: Any) -> str:
    kind = str(connection.introspection.get_field_type(info.type_code, info))
    if kind in _TEXTS:
        return f"a text column of {_length(info)} characters"
    if "Small" in kind:
        return "a 16-bit integer column"
    if kind.endswith(("IntegerField", "AutoField")):
        return "a 32-bit integer column"
    return f"a column of type {kind}"


def _points_at(
    connection: BaseDatabaseWrapper, cursor: CursorWrapper, reference: Reference
) -> bool:
    """Whether a row of a generic relation names one of the re-keyed models."""
    quote = connection.ops.quote_name
    assert reference.content_type_column is not None
    ids = reference.content_types
    cursor.execute(
        f"SELECT 1 FROM {quote(reference.table)} "
        f"WHERE {quote(reference.content_type_column)} IN ({', '.join(['%s'] * len(ids))}) "
        "LIMIT 1",
        list(ids),
    )
    return cursor.fetchone() is not None


def _check_engine(connection: BaseDatabaseWrapper, cursor: CursorWrapper, table: str) -> None:
    engine = connection.introspection.get_storage_engine(cursor, table)  # type: ignore[attr-defined]
    if engine != "InnoDB":
        raise RekeyError(
            f"{table} uses the {engine} storage engine, which cannot roll a batch back: "
            "convert it to InnoDB first."
        )


def _scan_constraints(
    connection: BaseDatabaseWrapper, cursor: CursorWrapper, references: list[Reference]
) -> set[tuple[str, str]]:
    """Refuse foreign keys to the keys that no model declares; return the indexed columns."""
    known = {(reference.table, reference.column) for reference in references}
    generic = {
        (reference.table, reference.content_type_column)
        for reference in references
        if reference.content_type_column
    }
    tables = {reference.table for reference in references}
    indexed = set()
    introspection = connection.introspection
    for table in introspection.table_names(cursor):
        for name, constraint in introspection.get_constraints(cursor, table).items():
            columns = constraint["columns"] or []
            target = constraint.get("foreign_key")
            if target and tuple(target) in known and (table, columns[0]) not in known:
                raise RekeyError(
                    f"The database has a foreign key {name} from {table}.{', '.join(columns)} "
                    f"to {target[0]}.{target[1]} that no installed model declares: rekey "
                    "cannot rewrite a reference it does not know. Drop the constraint, or "
                    "install the app that declares it."
                )
            if (
                table in tables
                and columns
                and (constraint["index"] or constraint["unique"] or constraint["primary_key"])
            ):
                first = columns[0]
                indexed.add((table, first))
                if len(columns) > 1 and (table, first) in generic:
                    indexed.add((table, columns[1]))
    return indexed


def _check_deferrable(cursor: CursorWrapper, references: list[Reference]) -> None:
    """Refuse a foreign key between the columns that PostgreSQL cannot check at commit."""
    known = {(reference.table, reference.column) for reference in references}
    cursor.execute(
        "SELECT c.conname, src.relname, a.attname, dst.relname, b.attname "
        "FROM pg_constraint c "
        "JOIN pg_class src ON src.oid = c.conrelid "
        "JOIN pg_class dst ON dst.oid = c.confrelid "
        "JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = c.conkey[1] "
        "JOIN pg_attribute b ON b.attrelid = c.confrelid AND b.attnum = c.confkey[1] "
        "WHERE c.contype = 'f' AND NOT c.condeferrable AND dst.relname = ANY(%s)",
        [sorted({table for table, _column in known})],
    )
    for name, table, column, target, target_column in cursor.fetchall():
        if (table, column) in known and (target, target_column) in known:
            raise RekeyError(
                f"The foreign key {name} from {table}.{column} to {target}.{target_column} is "
                "NOT DEFERRABLE: PostgreSQL would check it between the statements of a batch, "
                "before the key and its references agree. Make it DEFERRABLE INITIALLY "
                "DEFERRED, as Django makes foreign keys."
            )


class _Rewrite:
    """Writes one batch's new keys into every reference, then into the key itself."""

    def __init__(self, connection: BaseDatabaseWrapper, references: tuple[Reference, ...]) -> None:
        self.connection = connection
        self.key, *self.references = references
        self.followed = 0

    def __call__(self, pks: list[Any], ids: list[int]) -> int:
        pairs = list(zip(pks, ids, strict=True))
        for reference in self.references:
            self.followed += self.rewrite(reference, pairs)
        return self.rewrite(self.key, pairs)

    def rewrite(self, reference: Reference, pairs: list[tuple[Any, Any]]) -> int:
        where, params = "", reference.content_types
        if reference.text:
            pairs = [(str(old), str(new)) for old, new in pairs]
        if reference.content_type_column is not None:
            column = self.connection.ops.quote_name(reference.content_type_column)
            where = f"{column} IN ({', '.join(['%s'] * len(params))})"
        return update_pairs(
            self.connection,
            reference.table,
            reference.column,
            reference.column,
            pairs,
            cast=reference.cast,
            where=where,
            params=params,
        )


@contextmanager
def _batch(db: str) -> Iterator[None]:
    """One batch's transaction, with the foreign keys checked when the batch is whole."""
    connection = connections[db]
    if connection.vendor != "mysql":
        with transaction.atomic(using=db):
            with connection.cursor() as cursor:
                if connection.vendor == "postgresql":
                    # Django's are DEFERRABLE INITIALLY DEFERRED; this also defers those
                    # made DEFERRABLE INITIALLY IMMEDIATE by hand.
                    cursor.execute("SET CONSTRAINTS ALL DEFERRED")
                else:
                    # SQLite's pragma ends with the transaction; Django's are deferred already.
                    cursor.execute("PRAGMA defer_foreign_keys = ON")
            yield
        return
    # MariaDB and MySQL check foreign keys at each statement, and cannot defer them: a key
    # and its references cannot all be rewritten at once. The setting is the session's.
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@foreign_key_checks")
        (checks,) = cursor.fetchone()
        cursor.execute("SET foreign_key_checks = 0")
    try:
        with transaction.atomic(using=db):
            yield
    finally:
        _restore(connection, checks)


def _restore(connection: BaseDatabaseWrapper, checks: Any) -> None:
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET foreign_key_checks = %s", [checks])
    except DatabaseError:
        # A lost connection takes its session, and the setting, with it.
        if connection.is_usable():
            raise
