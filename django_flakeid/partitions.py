"""``SnowflakePartitions``: a model's table cut into day, week or month partitions by its key.

The declaration lives in ``Meta.constraints`` so that ``makemigrations`` records it and
``migrate`` builds the partitions: an AddConstraint converts an existing table, a RemoveConstraint
turns it back into a plain one, rows kept both ways. On databases that cannot partition it is a
no-op.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from django.apps import apps
from django.db.models import BaseConstraint, Model
from django.utils import timezone

from . import conf
from .intervals import Interval, Span, check_interval, spans_from

if TYPE_CHECKING:
    from django.db.backends.base.schema import BaseDatabaseSchemaEditor

__all__ = ["SnowflakePartitions", "declaration", "partitioned_models"]


class SnowflakePartitions(BaseConstraint):
    """Partition the table by the time in its primary key: one partition per ``interval``.

    ``migrate`` makes a partition for everything older than the current interval, the current
    interval and ``ahead`` more, and a catch-all for IDs past the newest one, so that no write
    ever fails for want of a partition.
    """

    def __init__(
        self,
        *,
        name: str,
        interval: Interval = "month",
        ahead: int = 3,
        violation_error_code: str | None = None,
        violation_error_message: str | None = None,
    ) -> None:
        self.interval = check_interval(interval)
        if isinstance(ahead, bool) or not isinstance(ahead, int) or ahead < 0:
            raise ValueError(f"ahead must be a whole number from 0 up, not {ahead!r}")
        self.ahead = ahead
        super().__init__(
            name=name,
            violation_error_code=violation_error_code,
            violation_error_message=violation_error_message,
        )

    def spans(self, now: dt.datetime | None = None) -> list[Span]:
        """The current interval and ``ahead`` more, with their ID ranges under the layout."""
        return spans_from(conf.get_layout(), self.interval, now or timezone.now(), self.ahead + 1)

    # Django skips a constraint whose SQL is None (the stubs say str): that is the no-op.
    def constraint_sql(  # type: ignore[override]
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> None:
        # Called inside CREATE TABLE, which has no clause for partitioning: the table is made
        # plain, then converted while still empty, once the rest of the migration has run.
        if model is not None and schema_editor is not None:
            sql = self.create_sql(model, schema_editor)
            if sql:
                schema_editor.deferred_sql.append(sql)

    def create_sql(  # type: ignore[override]
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> str | None:
        from .partition_sql import backend_for

        backend = backend_for(schema_editor.connection) if schema_editor else None
        if backend is None or model is None:
            return None
        return backend.convert_sql(model._meta.db_table, _pk_column(model), self.spans())

    def remove_sql(  # type: ignore[override]
        self, model: type[Model] | None, schema_editor: BaseDatabaseSchemaEditor | None
    ) -> str | None:
        from .partition_sql import backend_for

        backend = backend_for(schema_editor.connection) if schema_editor else None
        if backend is None or model is None:
            return None
        return backend.unconvert_sql(model._meta.db_table)

    def validate(self, *args: Any, **kwargs: Any) -> None:
        # A partition scheme constrains no row: every ID has a partition (the catch-all).
        return None

    def deconstruct(self) -> tuple[str, Sequence[Any], dict[str, Any]]:
        path, args, kwargs = super().deconstruct()
        kwargs["interval"] = self.interval
        kwargs["ahead"] = self.ahead
        return path, args, kwargs

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SnowflakePartitions):
            return NotImplemented
        return self.deconstruct() == other.deconstruct()

    def __hash__(self) -> int:
        return hash((self.name, self.interval, self.ahead))

    def __repr__(self) -> str:
        return (
            f"<{type(self).__name__}: name={self.name!r} interval={self.interval!r} "
            f"ahead={self.ahead}>"
        )


def _pk_column(model: type[Model]) -> str:
    pk = model._meta.pk
    if pk is None:  # pragma: no cover - every concrete model has one
        raise ValueError(f"{model._meta.label} has no primary key")
    return str(pk.column)


def declaration(model: type[Model]) -> SnowflakePartitions | None:
    """The model's ``SnowflakePartitions``, or None when its table is not partitioned."""
    for constraint in model._meta.constraints:
        if isinstance(constraint, SnowflakePartitions):
            return constraint
    return None


def partitioned_models() -> list[tuple[type[Model], SnowflakePartitions]]:
    """Every installed model declaring ``SnowflakePartitions``, with its declaration."""
    found = []
    for model in apps.get_models():
        declared = declaration(model)
        if declared is not None:
            found.append((model, declared))
    return found
