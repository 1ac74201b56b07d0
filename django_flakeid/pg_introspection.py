"""Hide the foreign keys PostgreSQL clones for each partition from Django's schema editor.

A foreign key pointing at a partitioned table is stored once as declared and once more per
partition (``pg_constraint.conparentid`` names the declared one), all on the referencing table
under names of their own. Django's introspection lists them all, so its schema editor finds
several foreign keys on a column where it expects one: altering or removing a ``ForeignKey`` to
a partitioned model fails. The clones come and go with the declared key, so leaving them out
of ``get_constraints`` is all the schema editor needs.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from django.db.backends.signals import connection_created

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper
    from django.db.backends.base.introspection import BaseDatabaseIntrospection

__all__ = ["install"]

_CLONES = """
    SELECT c.conname
    FROM pg_constraint AS c
    JOIN pg_class AS cl ON c.conrelid = cl.oid
    WHERE cl.relname = %s AND pg_catalog.pg_table_is_visible(cl.oid)
    GROUP BY c.conname
    HAVING bool_and(c.conparentid <> 0)
"""


def install() -> None:
    """Fix the introspection of every PostgreSQL connection as it opens (idempotent)."""
    # Patched through the first connection rather than by importing the backend: its modules
    # need psycopg, and on Django 6.1 importing its introspection module alone is circular.
    connection_created.connect(_on_connection, dispatch_uid=__name__)


def _on_connection(sender: Any, connection: BaseDatabaseWrapper, **kwargs: Any) -> None:
    if connection.vendor == "postgresql":
        leave_out_partition_clones(type(connection.introspection))


def leave_out_partition_clones(introspection: type[BaseDatabaseIntrospection]) -> None:
    """Make ``introspection.get_constraints`` leave out per-partition clones (idempotent)."""
    original = introspection.get_constraints
    if getattr(original, "leaves_out_partition_clones", False):
        return

    def get_constraints(self: BaseDatabaseIntrospection, cursor: Any, table_name: str) -> Any:
        constraints = original(self, cursor, table_name)
        cursor.execute(_CLONES, [table_name])
        for (name,) in cursor.fetchall():
            constraints.pop(name, None)
        return constraints

    get_constraints.leaves_out_partition_clones = True  # type: ignore[attr-defined]
    get_constraints.__wrapped__ = original  # type: ignore[attr-defined]
    get_constraints.__doc__ = original.__doc__
    introspection.get_constraints = get_constraints  # type: ignore[method-assign]
