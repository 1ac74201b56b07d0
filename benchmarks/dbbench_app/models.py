"""One model per primary key scheme, otherwise alike: a key, a payload, and for some a time.

The Snowflake rows have no ``created_at``: their key carries the time, so "rows since T" is a
range on the primary key. The others come twice: as they are used, with a ``created_at`` that
has an index of its own for that query, and bare (the key and the payload, like the Snowflake
rows), which leaves the key's own cost. Tables are created by the benchmark itself (no
migrations).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, ClassVar

from django.db import models
from django.utils import timezone

from django_flakeid.fields import SnowflakeAutoField, SnowflakeField

if TYPE_CHECKING:
    from django.db.backends.base.base import BaseDatabaseWrapper


def _find_uuid7() -> tuple[Callable[[], uuid.UUID] | None, str]:
    try:
        # The compat module returns the standard library's UUID, which UUIDField expects.
        from uuid_utils.compat import uuid7 as utils_uuid7
    except ImportError:
        stdlib_uuid7: Callable[[], uuid.UUID] | None = getattr(uuid, "uuid7", None)
        return stdlib_uuid7, "uuid.uuid7" if stdlib_uuid7 else ""
    return utils_uuid7, "uuid_utils.compat.uuid7"


_uuid7, UUID7_SOURCE = _find_uuid7()


def new_uuid7() -> uuid.UUID:
    """A new UUIDv7, from uuid-utils, else from Python 3.14's ``uuid.uuid7``."""
    if _uuid7 is None:
        raise RuntimeError("no UUIDv7 source: pip install uuid-utils, or use Python 3.14+")
    return _uuid7()


class BigintSnowflakeField(SnowflakeField[Any, Any]):
    """A Snowflake key declared ``bigint`` on SQLite too, as SnowflakeField's once was.

    SQLite then keeps the key in an index of its own beside a hidden rowid, where
    ``integer primary key`` makes the key the rowid itself. Elsewhere it is SnowflakeField.
    """

    def db_type(self, connection: BaseDatabaseWrapper) -> str | None:
        return models.BigIntegerField().db_type(connection)


class BenchRow(models.Model):
    value = models.IntegerField(default=0)

    class Meta:
        abstract = True

    def __str__(self) -> str:
        return f"{type(self).__name__} {self.pk}"


class TimedRow(BenchRow):
    created_at = models.DateTimeField(db_index=True, default=timezone.now)

    class Meta:
        abstract = True


class SnowflakeRow(BenchRow):
    id = SnowflakeField(primary_key=True)

    objects: ClassVar[models.Manager[SnowflakeRow]] = models.Manager()


class SnowflakeAutoRow(BenchRow):
    id = SnowflakeAutoField(primary_key=True)

    objects: ClassVar[models.Manager[SnowflakeAutoRow]] = models.Manager()


class SnowflakeBigintRow(BenchRow):
    id = BigintSnowflakeField(primary_key=True)

    objects: ClassVar[models.Manager[SnowflakeBigintRow]] = models.Manager()


class BigAutoRow(TimedRow):
    id = models.BigAutoField(primary_key=True)

    objects: ClassVar[models.Manager[BigAutoRow]] = models.Manager()


class UUID4Row(TimedRow):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)

    objects: ClassVar[models.Manager[UUID4Row]] = models.Manager()


class UUID7Row(TimedRow):
    id = models.UUIDField(primary_key=True, default=new_uuid7)

    objects: ClassVar[models.Manager[UUID7Row]] = models.Manager()


class BigAutoBareRow(BenchRow):
    id = models.BigAutoField(primary_key=True)

    objects: ClassVar[models.Manager[BigAutoBareRow]] = models.Manager()


class UUID4BareRow(BenchRow):
    id = models.UUIDField(primary_key=True, default=uuid.uuid4)

    objects: ClassVar[models.Manager[UUID4BareRow]] = models.Manager()


class UUID7BareRow(BenchRow):
    id = models.UUIDField(primary_key=True, default=new_uuid7)

    objects: ClassVar[models.Manager[UUID7BareRow]] = models.Manager()
