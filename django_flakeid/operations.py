"""AlterThroughKeys: the migration operation that gives many-to-many tables Snowflake keys.

``makemigrations`` never alters the key of a table Django creates for a ``ManyToManyField``.
A project that switches to ``SnowflakeAutoField`` by ``DEFAULT_AUTO_FIELD`` (or by an
``AppConfig.default_auto_field``) writes Snowflake IDs into those tables at run time, while
their key columns stay what an older auto field made them: a 32-bit column overflows, and an
identity or ``AUTO_INCREMENT`` is left over.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from django.db import models
from django.db.migrations.exceptions import IrreversibleError
from django.db.migrations.operations.base import Operation, OperationCategory

from .fields import SnowflakeAutoField

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor
    from django.db.migrations.state import ProjectState

# Quoted names and string literals, which could spell any keyword.
_QUOTED = re.compile(r"\"[^\"]*\"|'[^']*'|`[^`]*`|\[[^\]]*\]")
_AUTOINCREMENT = re.compile(r"\bAUTOINCREMENT\b", re.IGNORECASE)


class AlterThroughKeys(Operation):
    """Give the auto-created many-to-many tables of the migration's app Snowflake keys.

    A table whose key Django fills with a ``SnowflakeAutoField`` at run time gets that field's
    column: a plain 64-bit integer (on SQLite the rowid), with no identity, sequence or
    ``AUTO_INCREMENT``, whatever auto field made it. Every other table is left alone, as is a
    table whose key is already that column, so running it again changes nothing.
    """

    # Once a table holds Snowflake keys, no auto field can take it back, and which one made
    # the table is not known any more.
    reversible = False
    # Only DDL: as for Django's schema operations, a database that cannot roll DDL back
    # (MariaDB, MySQL) runs it outside a transaction, every other one inside the migration's.
    atomic = False
    # django-stubs derive OperationCategory from StrEnum, which Python 3.10 (mypy's target)
    # lacks, so mypy takes its members for plain strings.
    category = OperationCategory.ALTERATION  # type: ignore[assignment]

    def state_forwards(self, app_label: str, state: ProjectState) -> None:
        # The state already says what the key is; only the database lags behind.
        pass

    def database_forwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        connection = schema_editor.connection
        for model in to_state.apps.get_models(include_auto_created=True):
            opts = model._meta
            if opts.app_label != app_label or not opts.auto_created:
                continue
            if not self.allow_migrate_model(connection.alias, model):
                continue
            # An auto-created table's key is always there: Django adds it.
            pk = cast("models.Field[Any, Any]", opts.pk)
            key = _snowflake_key(model, pk)
            if key is None:
                continue
            current = _current_key(connection, model, pk)
            if current is None or _same_column(connection, current, key):
                continue
            schema_editor.alter_field(model, current, key)

    def database_backwards(
        self,
        app_label: str,
        schema_editor: BaseDatabaseSchemaEditor,
        from_state: ProjectState,
        to_state: ProjectState,
    ) -> None:
        raise IrreversibleError(
            f"{self.describe()} cannot be undone: keys written since do not fit the auto "
            "field that made each table, and which one that was is not recorded"
        )

    def describe(self) -> str:
        return "Alter the key of each auto-created many-to-many table to a Snowflake key"

    @property
    def migration_name_fragment(self) -> str:
        return "snowflake_through_keys"


def _snowflake_key(
    model: type[models.Model], pk: models.Field[Any, Any]
) -> SnowflakeAutoField[Any, Any] | None:
    # In migrations an auto-created table's key is DEFAULT_AUTO_FIELD, at run time its app's
    # default_auto_field: the table follows the running one, which is what writes its rows.
    if isinstance(pk, SnowflakeAutoField):
        key = pk
    else:
        key = SnowflakeAutoField(primary_key=True)
        key.set_attributes_from_name(pk.name)
        key.model = model
    return None if key._keeps_another_auto_field() else key


def _current_key(
    connection: BaseDatabaseWrapper, model: type[models.Model], pk: models.Field[Any, Any]
) -> models.Field[Any, Any] | None:
    # The field that would make the key column the database has: compared, and altered from.
    introspection = connection.introspection
    table = model._meta.db_table
    with connection.cursor() as cursor:
        # sqlmigrate shows this migration also where the ones that make the table have not run.
        if table not in introspection.table_names(cursor):
            return None
        (info,) = [
            each
            for each in introspection.get_table_description(cursor, table)
            if each.name == pk.column
        ]
        kind = introspection.get_field_type(info.type_code, info)
        # SQLite's introspection names every integer key AutoField; only AUTOINCREMENT is one.
        if connection.vendor == "sqlite" and not _autoincrement(cursor, table):
            kind = introspection.data_types_reverse[info.type_code]
    field: models.Field[Any, Any] = getattr(models, kind)(primary_key=True)
    field.set_attributes_from_name(pk.name)
    field.model = model
    return field


def _autoincrement(cursor: Any, table: str) -> bool:
    cursor.execute("SELECT sql FROM sqlite_master WHERE type = 'table' AND name = %s", [table])
    (sql,) = cursor.fetchone()
    return bool(_AUTOINCREMENT.search(_QUOTED.sub("", sql)))


def _same_column(
    connection: BaseDatabaseWrapper, current: models.Field[Any, Any], key: models.Field[Any, Any]
) -> bool:
    # The whole column definition: MySQL spells AUTO_INCREMENT in the type, PostgreSQL and
    # SQLite spell an identity or AUTOINCREMENT in the suffix.
    made = (current.db_type(connection), current.db_type_suffix(connection))
    return made == (key.db_type(connection), key.db_type_suffix(connection))
